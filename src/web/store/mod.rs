//! The browser driver of the store engine (`core::session::store`), in
//! Rust: IndexedDB through web-sys, localStorage through gloo-storage,
//! a memory table, sessionStorage for the client id, Web Locks,
//! BroadcastChannel, gloo-timers and the page's `visibilitychange` /
//! `pagehide`. It reads and writes the storage layout the TypeScript store
//! wrote (`core::session::store::layout`, docs/STORAGE.md). [`Store`] is
//! its API for a Rust page; `web::store_api` exports it to JavaScript. The session
//! driver (`web::session`) runs its storage commands, backends, locks,
//! tab channel and page helpers too.

pub(crate) mod backend;
pub(crate) mod commands;
mod driver;
mod handle;
pub(crate) mod idb;
pub(crate) mod identity;
pub(crate) mod local;
pub(crate) mod locks;
mod memory;
mod options;
pub(crate) mod page;
pub(crate) mod signal;
pub(crate) mod tabs;

pub(crate) use self::handle::Request;
pub use self::handle::{Diagnostics, Store, Subscription};
pub use self::options::{EventHandler, Migration, StoreOptions};
pub use crate::core::session::store::{
    BackendKind, ClientId, During, RestoreOutcome, StoreDiagnostics, StoreEvent, Winner,
};
