//! The session in the browser, usable from Rust without JavaScript:
//! `openSession` as [`Session::open`]. The session engine
//! ([`crate::core::session::engine`]: the store, the link and the
//! session's own decisions, sans-IO) driven over the store driver's
//! backends, Web Locks, BroadcastChannel and page helpers
//! ([`crate::web::store`]) and the link driver's transports
//! ([`crate::web::link`]), with the server's HTTP API called by `fetch`.
//!
//! ```no_run
//! # async fn page() -> Result<(), sessile::SessileError> {
//! use sessile::web::session::{ServerOptions, Session, SessionEvent, SessionOptions};
//! use serde_json::json;
//!
//! let session = Session::open(
//!     SessionOptions::new("checkout")
//!         .initial(json!({ "step": "cart", "items": [] }))
//!         .server(ServerOptions::new("https://shop.example/sessile")),
//! )
//! .await?;
//! let _sub = session.subscribe(|e| {
//!     if let SessionEvent::Conflict { server, .. } = e {
//!         let _ = server; // the server's value won: show it
//!     }
//! });
//! session.update(json!({ "items": [{ "sku": "X", "qty": 1 }] }))?;
//! session.step("checkout", Some(json!({ "email": "shopper@example.com" })))?;
//! session.flush().await.ok();
//! session.end(Some("completed"), false).await.ok();
//! # Ok(()) }
//! ```
//!
//! Where the parts live: `options.rs` (the options), `handle.rs` (the
//! API), `open.rs` (opening), `driver.rs` (the engine's inputs, the pump), `outputs.rs` (each
//! output's work), `page.rs` (page events, the other tabs), `records.rs`
//! (the link record), `identity.rs` (this tab's client id), `calls.rs`
//! (the server's HTTP API).

mod calls;
mod driver;
mod handle;
mod identity;
mod open;
mod options;
mod outputs;
mod page;
mod records;

pub use self::handle::{Diagnostics, Session, Subscription};
pub use self::options::{ServerOptions, SessionHandler, SessionOptions};
pub use crate::core::session::engine::{
    EnginePhase, Failure, ServerSession, SessionDiagnostics, SessionEvent, Validity,
};
pub use crate::core::session::link::{ConflictWinner, LossReason, Transport};
pub use crate::core::session::store::{BackendKind, StoreEvent};
