//! The checks behind sessile's fuzz targets, one module per target, each
//! with `check(data)`: it reads the fuzzer's bytes as that target's input,
//! runs the code under test and panics when an invariant does not hold.
//! The cargo-fuzz binaries in `fuzz/fuzz_targets/` are one-liners calling
//! them; `tests/corpus.rs` replays every file of `fuzz/corpus/<target>/`
//! through the same function under `cargo test`, without libFuzzer or a
//! nightly compiler. docs/FUZZING.md lists the targets and their invariants.
#![deny(missing_docs)]

pub mod client_session;
pub mod declared_flow;
mod frames;
pub mod input;
pub mod link_engine;
pub mod merge_patch;
pub mod session_engine;
mod session_model;
pub mod slot_restore;
pub mod snapshot_decode;

pub use frames::{check_frame, frame_to_client, frame_to_server};

/// A target's check: panics when the input breaks an invariant.
pub type Check = fn(&[u8]);

/// Every target by name (its directory under `fuzz/corpus/`) with its check.
pub const TARGETS: [(&str, Check); 9] = [
    ("snapshot_decode", snapshot_decode::check),
    ("frame_to_server", frame_to_server::check),
    ("frame_to_client", frame_to_client::check),
    ("merge_patch", merge_patch::check),
    ("declared_flow", declared_flow::check),
    ("slot_restore", slot_restore::check),
    ("session_engine", session_engine::check),
    ("link_engine", link_engine::check),
    ("client_session", client_session::check),
];
