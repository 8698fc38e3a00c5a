//! `sessile-server`: parses the command line, opens the session store, binds,
//! prints the URL, serves until Ctrl-C or SIGTERM.

use sessile_server::{app, bind, Config};

/// mimalloc rather than glibc's malloc: under `make load` glibc's malloc,
/// free and heap trimming took about a third of the engine thread's time
/// (docs/SCALING.md, "One node").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. With them, the
/// allocator's memory came in 2 MiB pages, each zeroed whole when first
/// touched and again after the allocator gave it back: under `make load`
/// (10,000 sessions, 10,000 ops/s) the zeroing was a tenth of the engine
/// thread, and the ack p99 of four runs was 49 to 208 ms with them, 32 to
/// 54 ms without (docs/SCALING.md, "One node"). The same as
/// `MIMALLOC_ALLOW_THP=0`, whatever the machine's THP setting.
#[cfg(target_os = "linux")]
fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes an int flag and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        eprintln!(
            "sessile-server: warning: transparent huge pages stay on ({}): acks may be slower under load",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn no_huge_pages() {}

#[tokio::main]
async fn main() {
    no_huge_pages();
    let mut config = match Config::from_args(std::env::args().skip(1), std::env::var("PORT").ok()) {
        Ok(c) => c,
        // `--help` is an answer, not a mistake.
        Err(message) if message == sessile_server::config::USAGE => {
            println!("{message}");
            std::process::exit(0);
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    config.admin_token = std::env::var("SESSILE_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    config.database_url = std::env::var("SESSILE_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if let Some(why) = config
        .database_url
        .as_deref()
        .and_then(Config::database_url_error)
    {
        eprintln!("sessile-server: {why}");
        std::process::exit(2);
    }
    if let Some(why) = config.origin_policy_error() {
        eprintln!("sessile-server: {why}");
        std::process::exit(2);
    }
    let router = match app(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sessile-server: cannot open {}: {e}", config.store_name());
            std::process::exit(1);
        }
    };
    let (listener, addr) = match bind(&config).await {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!(
                "sessile-server: cannot listen on {}:{}: {e}",
                config.host, config.port
            );
            std::process::exit(1);
        }
    };
    for (what, dir) in [
        ("www", &config.www),
        ("pkg", &config.pkg),
        ("js", &config.js),
    ] {
        if !dir.is_dir() {
            eprintln!(
                "sessile-server: warning: {what} directory {} does not exist (run `make demo` to build it)",
                dir.display()
            );
        }
    }
    // Tests and scripts read this line to learn the port.
    println!("sessile-server listening on http://{addr}/");
    // The peer's address feeds the per-address limits.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(e) = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        eprintln!("sessile-server: {e}");
        std::process::exit(1);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
