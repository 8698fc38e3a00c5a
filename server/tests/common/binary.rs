//! The real `sessile-server` binary as a child process: started on a free
//! loopback port with no pages to serve, no pacing of WebSocket messages
//! (the tests send bursts far past a page's outbox) and the test admin
//! token, on a SQLite file or a PostgreSQL database; killed when dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::ADMIN;

/// Where a spawned server keeps its sessions.
pub enum Db<'a> {
    /// A SQLite file (`--db`).
    Sqlite(&'a Path),
    /// A PostgreSQL URL (`SESSILE_DATABASE_URL`).
    Postgres(&'a str),
}

/// A server process and where it listens; killed when dropped.
pub struct Proc {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The process (SIGKILL: `child.start_kill()`).
    pub child: Child,
}

/// Starts the binary on `db` with `more` arguments, and reads the address
/// it prints.
pub async fn spawn_server(db: Db<'_>, more: &[&str]) -> Proc {
    let mut child = start_server(db, more);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(rest) = line.strip_prefix("sessile-server listening on http://") {
            let addr = rest.trim_end_matches('/').parse().unwrap();
            return Proc { addr, child };
        }
    }
    panic!("the server exited before listening");
}

/// Starts the binary on `db` with `more` arguments, without waiting for
/// it to listen (its address is the first line of its stdout).
pub fn start_server(db: Db<'_>, more: &[&str]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessile-server"));
    command
        .args([
            "--port",
            "0",
            "--www",
            "/nonexistent",
            "--pkg",
            "/nonexistent",
            "--js",
            "/nonexistent",
            "--ws-messages-per-sec",
            "0",
        ])
        .args(more)
        .env("SESSILE_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match db {
        Db::Sqlite(path) => command.arg("--db").arg(path),
        Db::Postgres(url) => command.env("SESSILE_DATABASE_URL", url),
    };
    command.spawn().unwrap()
}
