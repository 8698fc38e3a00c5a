//! The real `sessile-server` binary's own process settings: it runs with
//! transparent huge pages off (src/main.rs: zeroing them cost the engine
//! thread a tenth of its time under load).
#![cfg(target_os = "linux")]

mod common;

use common::binary::{spawn_server, Db};

#[tokio::test]
async fn the_server_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(Db::Sqlite(&dir.path().join("s.db")), &[]).await;
    let pid = server.child.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .expect("the kernel reports THP_enabled (Linux 5.0 and later)");
    assert_eq!(thp.trim(), "0", "{status}");
}
