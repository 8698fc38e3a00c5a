//! The pure-Rust core of sessile: no web APIs, no clock, no randomness, no
//! I/O. Everything here compiles and is tested natively; `src/web` and the
//! server feed it bytes and time from outside.

pub mod checksum;
pub mod envelope;
pub mod error;
pub mod error_text;
pub mod flow_table;
pub mod lifecycle;
pub mod merge_patch;
pub mod protocol;
mod protocol_read;
pub mod sealed;
pub mod sealed_text;
pub mod session;
pub mod slots;
pub mod vec_map;
