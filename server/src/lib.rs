//! sessile-server: the reference server for sessile. Today it serves the demo
//! page and the built package, and verifies snapshots with the same core code
//! the browser runs; the session protocol and its SQLite store come next.
#![deny(missing_docs)]

pub mod config;
mod routes;

pub use config::Config;
pub use routes::app;

use std::net::SocketAddr;

/// Binds `config.host:config.port` (port 0 picks a free one) and returns the
/// listener and the address actually bound.
pub async fn bind(config: &Config) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
