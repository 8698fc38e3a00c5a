//! The client engine, sans-IO: what a page's session decides, with time,
//! randomness and IO fed in from outside (`handle_*(…, now)` in,
//! `poll_*()` out). [`link`] is the connection to the server: transport
//! choice, heartbeat, backoff, the outbox, resume and conflicts.

pub mod link;
