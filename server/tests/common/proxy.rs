//! HAProxy in front of test servers: Debian's `haproxy` (which scripts/setup
//! installs), started in the foreground on a free loopback port with a
//! configuration written to a temporary directory, killed and removed on
//! drop. Round-robin over the servers, `mode http` with `timeout tunnel`
//! (a WebSocket upgrade becomes a tunnel), health checks on `/healthz`
//! every 100 ms, a server down after one failed check, and a request whose
//! connection to a server fails sent to the other. Without the binary a
//! test fails and says so: it never skips.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running HAProxy; killed, and its directory removed, when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// The HAProxy binary: `$SESSILE_HAPROXY`, else `haproxy` on `PATH`, else
/// Debian's `/usr/sbin/haproxy`; panics with what to do when nowhere.
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SESSILE_HAPROXY") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "HAProxy is not installed, and the failover test needs it: run scripts/setup \
             (it installs Debian's `haproxy` package), or set SESSILE_HAPROXY to its path"
        )
    })
}

/// The configuration: `port` in front of `servers`.
pub fn config(port: u16, servers: &[SocketAddr]) -> String {
    let mut cfg = format!(
        "global\n\
         \x20 maxconn 4096\n\
         defaults\n\
         \x20 mode http\n\
         \x20 timeout connect 2s\n\
         \x20 timeout client 60s\n\
         \x20 timeout server 60s\n\
         \x20 timeout tunnel 1h\n\
         \x20 retries 3\n\
         \x20 option redispatch 1\n\
         frontend sessile\n\
         \x20 bind 127.0.0.1:{port}\n\
         \x20 default_backend servers\n\
         backend servers\n\
         \x20 balance roundrobin\n\
         \x20 option httpchk GET /healthz\n\
         \x20 http-check expect status 200\n\
         \x20 default-server check inter 100ms fall 1 rise 2\n"
    );
    for (i, s) in servers.iter().enumerate() {
        cfg.push_str(&format!("  server s{} {s}\n", i + 1));
    }
    cfg
}

impl Proxy {
    /// Starts HAProxy in front of `servers` and waits until it takes
    /// connections; panics with its output if it exits instead.
    pub async fn start(servers: &[SocketAddr]) -> Proxy {
        let dir = tempfile::Builder::new()
            .prefix("sessile-haproxy")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config(port, servers)).unwrap();
        let log = dir.path().join("log");
        let mut child = Command::new(binary())
            .arg("-db") // foreground
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        for _ in 0..200 {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "haproxy exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Proxy {
                    addr,
                    _child: child,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("haproxy did not listen on {addr} within 10 s");
    }
}
