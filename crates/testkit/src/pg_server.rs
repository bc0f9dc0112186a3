//! A private PostgreSQL server for one test, which the test may stop and
//! start again: outages are rehearsed on it, never on the shared server
//! named by `GATEHOUSE_TEST_POSTGRES_URL`.
//!
//! Why a real server and not a proxy that cuts connections: a real restart
//! is what production sees (the server ends sessions with SQLSTATE 57P01,
//! refuses connections while down, answers "starting up" for a moment),
//! and it costs little here: `initdb` takes well under a second, a start or
//! stop a fraction of one. The data directory and socket live in a fresh
//! temporary directory; the server listens on 127.0.0.1 and a free port,
//! with `trust` authentication, user `postgres`.
//!
//! The binaries come from `GATEHOUSE_TEST_PG_BIN` if set, else the newest
//! `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`. PostgreSQL
//! refuses to run as root, so under root every command runs as the
//! `postgres` OS user (`runuser -u postgres --`), which then owns the
//! directory. Without the binaries the test is skipped loudly, except
//! under CI (`CI=true`) where that is an error.
//!
//! Self-contained: std only.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The environment variable naming a directory with `initdb` and `pg_ctl`.
pub const PG_BIN_VAR: &str = "GATEHOUSE_TEST_PG_BIN";

/// A PostgreSQL server of this test's own. Stopped and deleted on drop.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Run commands as the `postgres` OS user (we are root).
    as_postgres: bool,
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn find_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var(PG_BIN_VAR) {
        if !dir.trim().is_empty() {
            return Some(PathBuf::from(dir));
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    bin.join("initdb").exists().then_some(bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("cannot find a free port: {e}"),
    }
}

impl PgServer {
    /// Creates the cluster (not started). `None`: no PostgreSQL binaries
    /// here and not under CI (the caller skips its test; a loud line has
    /// been printed).
    pub fn init() -> Option<PgServer> {
        let Some(bin) = find_bin() else {
            if under_ci() {
                panic!("no PostgreSQL server binaries (initdb, pg_ctl): set {PG_BIN_VAR} or install postgresql");
            }
            eprintln!("SKIPPED: database-outage tests need PostgreSQL's initdb and pg_ctl (set {PG_BIN_VAR})");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("gatehouse-pg-{}", uuid_like()));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        let server = PgServer {
            bin,
            dir,
            port: free_port(),
            as_postgres: is_root(),
        };
        if server.as_postgres {
            let out = Command::new("chown")
                .args(["postgres:", &server.dir.to_string_lossy()])
                .output();
            server.check("chown postgres", out);
        }
        let data = server.data_dir();
        let out = server
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .arg("-D")
            .arg(&data)
            .output();
        server.check("initdb", out);
        Some(server)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "30", "-o", &opts, "start"])
            .output();
        self.check("pg_ctl start", out);
    }

    /// Stops the server the way a restart does (`-m fast`: sessions are
    /// ended, open transactions rolled back, then a clean shutdown).
    pub fn stop(&self) {
        let out = self.stop_with("fast");
        self.check("pg_ctl stop", out);
    }

    fn stop_with(&self, mode: &str) -> std::io::Result<Output> {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", "30", "stop"])
            .output()
    }

    /// The server's own log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn check(&self, what: &str, out: std::io::Result<Output>) {
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "{what} failed ({}):\n{}{}\n{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                self.log()
            ),
            Err(e) => panic!("cannot run {what}: {e}"),
        }
    }
}

/// A unique enough name without pulling in a crate.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!(
            "warning: could not remove PostgreSQL test directory {}: {e}",
            dir.display()
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Whatever state it is in: immediate stop (fails harmlessly when
        // the server is not running), then the files go.
        let _ = self.stop_with("immediate");
        remove(&self.dir);
    }
}
