//! The client engine, sans-IO: what a page's session decides, with time,
//! randomness and IO fed in from outside (`handle_*(…, now)` in,
//! `poll_*()` out), driven by the browser drivers in `src/web`, by a Rust
//! app, or by a simulation on a virtual clock. [`store`] is the local copy:
//! backends, restore, migrations, debounced compare-and-set writes, the
//! rescue copy and other tabs. [`link`] is the connection to the server:
//! transport choice, heartbeat, backoff, the outbox, resume and conflicts.
//! [`engine`] composes both into one page's session: its status and TTL,
//! the page's changes, what the server sends back, and the events.

pub mod engine;
pub mod link;
pub mod server_api;
pub mod store;
