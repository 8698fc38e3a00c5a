//! sessile: session state for checkout and funnel pages, kept versioned,
//! checksummed, compressed, persisted and (later) synced with a server.
//!
//! [`core`] is pure Rust and runs anywhere (the reference server links it);
//! `web` holds the WebAssembly bindings and exists only on `wasm32`.
#![deny(missing_docs)]

pub mod core;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use crate::core::envelope::{decode, encode, EnvelopeConfig, Snapshot, SnapshotMeta};
pub use crate::core::error::SessileError;
