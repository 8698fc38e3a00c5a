//! sessile-server: the reference server for sessile. It speaks the session
//! protocol (docs/PROTOCOL.md) over WebSocket and HTTP, keeps sessions in
//! SQLite (or PostgreSQL) with the lifecycle of the core crate, sweeps and reports on them,
//! and serves the demo page, the built package and snapshot verification.
#![deny(missing_docs)]

mod admin;
mod admin_page;
mod api;
mod batch;
pub mod clients;
pub mod config;
pub mod engine;
pub mod fanout;
mod http_errors;
pub mod ids;
pub mod limits;
pub mod maintenance;
pub mod observe;
mod routes;
pub mod sessions;
pub mod store;
mod ws;

pub use config::Config;
pub use routes::{app, app_and_engine};

use std::net::SocketAddr;
use std::sync::Arc;

/// What every handler shares: the engine, the configuration and the
/// per-address limits.
#[derive(Clone)]
pub struct AppState {
    /// The session engine.
    pub engine: engine::Engine,
    /// The server's configuration.
    pub config: Arc<Config>,
    /// Rate limits and connection caps per client address.
    pub limits: Arc<limits::Limits>,
    /// This server's name among those sharing one database (random at start).
    pub instance: Arc<str>,
}

impl AppState {
    /// The time, ms since the Unix epoch, by the server's clock.
    pub fn now(&self) -> u64 {
        self.config.clock.now_ms()
    }
}

/// Binds `config.host:config.port` (port 0 picks a free one) and returns the
/// listener and the address actually bound. Refuses (`InvalidInput`) a
/// configuration whose origin policy forbids that address
/// ([`Config::origin_policy_error`]). Serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the limits per
/// client address need the peer's address.
pub async fn bind(config: &Config) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    if let Some(why) = config.origin_policy_error() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
    }
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
