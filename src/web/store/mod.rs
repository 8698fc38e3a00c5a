//! The browser driver of the store engine (`core::session::store`), in
//! Rust: IndexedDB through web-sys, localStorage through gloo-storage,
//! a memory table, sessionStorage for the client id, Web Locks,
//! BroadcastChannel, gloo-timers and the page's `visibilitychange` /
//! `pagehide`. It reads and writes the storage layout the TypeScript store
//! wrote (`core::session::store::layout`, docs/STORAGE.md). [`Store`] is
//! its API for a Rust page; it exports nothing to JavaScript.

mod backend;
mod commands;
mod driver;
mod handle;
mod idb;
mod identity;
mod local;
mod locks;
mod memory;
mod options;
mod page;
mod signal;
mod tabs;

pub use self::handle::{Diagnostics, Store, Subscription};
pub use self::options::{EventHandler, Migration, StoreOptions};
pub use crate::core::session::store::{
    BackendKind, ClientId, During, RestoreOutcome, StoreDiagnostics, StoreEvent, Winner,
};
