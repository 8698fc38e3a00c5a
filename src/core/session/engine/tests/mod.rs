//! Native tests of the session engine, one decision each, on an in-memory
//! browser with the server's side played by hand-made frames
//! (`harness.rs`). The same engine against the real server engine, with
//! two tabs and a faulty network: `server/tests/session_sim.rs`.

mod harness;
mod local_tests;
mod sync_tests;
mod tabs_tests;
