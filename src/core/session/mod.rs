//! The client engine, sans-IO: the session's store (and its link), driven
//! by the browser drivers in `src/web`, by a Rust app, or by a simulation
//! on a virtual clock.

pub mod store;
