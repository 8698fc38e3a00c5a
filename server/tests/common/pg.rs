//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary
//! directory, `postgres` on a free loopback port with fsync on, run as a
//! non-root user (the package's `postgres`, else `nobody`, when the tests run
//! as root), stopped and deleted on drop. The binaries come from
//! `$SESSILE_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`
//! (Debian's `postgresql`, which scripts/setup installs), else `PATH`.
//! Without them a test fails and says so: it never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The superuser of every throwaway cluster (trust auth on loopback: the
/// password in URLs is there to be hidden, not checked).
pub const USER: &str = "sessile";

/// A running (or stopped) throwaway cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The user the server runs as (`None`: the current one).
    run_as: Option<String>,
    /// The loopback port it listens on (kept across [`Cluster::stop`] and
    /// [`Cluster::start_again`]).
    pub port: u16,
}

/// Where the PostgreSQL programs are; panics with what to do when nowhere.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SESSILE_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "SESSILE_PG_BIN is {}, which holds no initdb",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = Command::new("pg_config").arg("--bindir").output();
    if let Some(out) = on_path.ok().filter(|o| o.status.success()) {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    panic!(
        "PostgreSQL is not installed, and the PostgreSQL tests need it: run scripts/setup \
         (it installs Debian's `postgresql` package), or set SESSILE_PG_BIN to the directory \
         of initdb, pg_ctl and postgres"
    );
}

/// The user to run PostgreSQL as: none (the current one) unless we are root,
/// whom initdb refuses.
fn run_as() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let exists = |u: &str| {
        Command::new("id")
            .arg(u)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    Some(
        ["postgres", "nobody"]
            .into_iter()
            .find(|u| exists(u))
            .expect("running as root, and neither user `postgres` nor `nobody` exists to run PostgreSQL")
            .to_string(),
    )
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Cluster {
    /// initdb and start a new cluster; panics with the logs if either fails.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let run_as = run_as();
        let dir = tempfile::Builder::new()
            .prefix("sessile-pg")
            .tempdir()
            .unwrap();
        if let Some(user) = &run_as {
            let out = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {out:?}");
        }
        let cluster = Cluster {
            dir,
            bin,
            run_as,
            port: free_port(),
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                USER,
                "--auth=trust",
                "--no-sync",
                "--no-locale",
                "-E",
                "UTF8",
            ],
        );
        cluster.start_again();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a PostgreSQL program as the cluster's user; panics unless it succeeds.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self.command(program, args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
        out
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut c = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        c.args(args).current_dir(self.dir.path());
        c
    }

    /// Starts the server (again) on [`Cluster::port`], and waits until it
    /// takes connections.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server at once, as a crash would (`-m immediate`): clients
    /// lose their connections, nothing is shut down cleanly.
    pub fn stop(&self) {
        self.stop_with("immediate");
    }

    /// Stops the server as an operator would (`-m fast`): each client's
    /// connection gets `57P01` (terminating connection due to administrator
    /// command) and closes.
    pub fn stop_fast(&self) {
        self.stop_with("fast");
    }

    fn stop_with(&self, mode: &str) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", mode, "-w", "stop"],
        );
    }

    /// The URL of database `db`, with a password to hide.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:hidden-pw@127.0.0.1:{}/{db}", self.port)
    }

    /// A new empty database; its name.
    pub fn create_db(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// Runs `sql` in database `db` with psql; its output, unaligned, tuples only.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let host = "127.0.0.1";
        let out = self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                host,
                "-p",
                &port,
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stopped already (a test's outage) or not: either way the directory goes.
        let data = self.data();
        let _ = self
            .command(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            )
            .output();
    }
}

/// The cluster the tests of one binary share while any of them runs; a new
/// one when the last user dropped the previous.
pub fn shared() -> Arc<Cluster> {
    static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = slot.upgrade() {
        return c;
    }
    let c = Arc::new(Cluster::start());
    *slot = Arc::downgrade(&c);
    c
}

/// The PostgreSQL database standing in for each test server's SQLite path
/// (so that `sql(&srv.db, …)` and `restart()` reach it).
type Databases = Mutex<Vec<(PathBuf, Weak<Cluster>, String)>>;
static DATABASES: Databases = Mutex::new(Vec::new());

/// Records that `path` stands for database `db` of `cluster`.
pub fn register(path: &Path, cluster: &Arc<Cluster>, db: &str) {
    let mut all = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|(_, c, _)| c.strong_count() > 0);
    all.push((path.to_path_buf(), Arc::downgrade(cluster), db.to_string()));
}

/// The cluster and database that `path` stands for, if any.
pub fn lookup(path: &Path) -> Option<(Arc<Cluster>, String)> {
    let all = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .find(|(p, _, _)| p == path)
        .and_then(|(_, c, db)| Some((c.upgrade()?, db.clone())))
}

/// Whether the tests' servers keep their sessions in PostgreSQL
/// (`SESSILE_TEST_DATABASE=postgres`) rather than SQLite.
pub fn selected() -> bool {
    match std::env::var("SESSILE_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("SESSILE_TEST_DATABASE must be `postgres` or `sqlite`, not `{other}`"),
    }
}
