//! The harness: a fresh database, working directory and KEK per scenario, the
//! `gatehouse` binary run as a subprocess (`Invocation`), a `gatehouse serve`
//! process (`Server`), and the checks every run passes.

use std::{
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use gatehouse_keys::{Alg, Kek};
use gatehouse_testkit::db::{self, DbKind, TestDb};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
/// No admin command should come near this; it only stops a hung test.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// A directory removed again on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("gatehouse-cli-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn random_kek() -> String {
    Kek::generate().to_base64url()
}

/// One scenario's world: a fresh database, a working directory and a KEK.
pub struct Env {
    /// Held for its drop (which deletes the database); `None` when the
    /// test owns the database itself.
    pub _db: Option<TestDb>,
    pub url: String,
    pub kek: String,
    pub dir: TempDir,
}

impl Env {
    /// `None` when PostgreSQL is asked for and not configured (skipped loudly).
    pub async fn new(kind: DbKind) -> Option<Env> {
        let db = db::fresh(kind).await?;
        Some(Env {
            url: db.url.clone(),
            _db: Some(db),
            kek: random_kek(),
            dir: TempDir::new(),
        })
    }

    /// On a database the caller owns (a private PostgreSQL server).
    pub fn on_url(url: String) -> Env {
        Env {
            url,
            _db: None,
            kek: random_kek(),
            dir: TempDir::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `gatehouse ARGS` against this environment's database and KEK.
    pub fn cmd(&self, args: &[&str]) -> Invocation {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.dir());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("GATEHOUSE_") {
                cmd.env_remove(&k);
            }
        }
        // A panic should print its "run with RUST_BACKTRACE=1" hint, which we look for.
        cmd.env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env("GATEHOUSE_LOG", "warn")
            .env("GATEHOUSE_DATABASE_URL", &self.url)
            .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &self.kek);
        Invocation {
            cmd,
            label: format!("gatehouse {}", args.join(" ")),
            stdin: None,
        }
    }

    pub fn json(&self, args: &[&str]) -> Value {
        self.cmd(args).json()
    }

    pub fn fails(&self, args: &[&str]) -> String {
        self.cmd(args).fails()
    }
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Output {
    pub label: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// One command about to run.
pub struct Invocation {
    pub cmd: Command,
    pub label: String,
    pub stdin: Option<String>,
}

pub fn read_in_background(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = r.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// No panic message, no backtrace hint: whatever the outcome.
pub fn assert_no_panic(label: &str, stderr: &str) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !stderr.contains(bad),
            "{label}: stderr shows {bad:?}:\n{stderr}"
        );
    }
}

impl Invocation {
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.to_owned());
        self
    }

    /// Runs to completion (or kills it after [`COMMAND_TIMEOUT`]).
    pub fn run(mut self) -> Output {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.label));
        if let (Some(input), Some(mut w)) = (&self.stdin, child.stdin.take()) {
            // The command may exit before reading; a broken pipe is its answer.
            let _ = w.write_all(input.as_bytes());
        }
        let out = read_in_background(child.stdout.take().unwrap());
        let err = read_in_background(child.stderr.take().unwrap());
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not finish within {COMMAND_TIMEOUT:?}", self.label);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = Output {
            label: self.label,
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        };
        assert_no_panic(&output.label, &output.stderr);
        output
    }

    /// Runs and insists on exit status 0.
    pub fn ok(self) -> Output {
        let out = self.run();
        assert!(
            out.status.success(),
            "{} failed ({}):\nstdout: {}\nstderr: {}",
            out.label,
            out.status,
            out.stdout,
            out.stderr
        );
        out
    }

    /// Runs, insists on success, parses stdout as JSON.
    pub fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}):\n{}", out.label, out.stdout))
    }

    /// Runs and insists on a clean failure: non-zero exit, nothing on
    /// stdout, exactly one `error: ...` line on stderr. Returns that line.
    pub fn fails(self) -> String {
        let out = self.run();
        failure_line(&out)
    }
}

pub fn failure_line(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{} succeeded but should have failed:\nstdout: {}\nstderr: {}",
        out.label,
        out.stdout,
        out.stderr
    );
    assert_ne!(out.status.code(), None, "{}: killed by a signal", out.label);
    assert!(
        out.stdout.trim().is_empty(),
        "{}: a failing command printed to stdout:\n{}",
        out.label,
        out.stdout
    );
    let err = out.stderr.trim();
    assert!(
        !err.is_empty(),
        "{}: failed with an empty stderr",
        out.label
    );
    assert_eq!(
        err.lines().count(),
        1,
        "{}: the error is not one line:\n{err}",
        out.label
    );
    assert!(
        err.starts_with("error: "),
        "{}: stderr is not an error line: {err}",
        out.label
    );
    assert!(
        !err.contains('\u{1b}'),
        "{}: terminal escape codes in {err:?}",
        out.label
    );
    err.to_owned()
}

pub fn assert_mentions(line: &str, needles: &[&str]) {
    for n in needles {
        assert!(line.contains(n), "expected {n:?} in the message: {line}");
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A `gatehouse serve` child process; killed on drop if still running, so a
/// failing assertion never leaves a server behind.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
    pub http: reqwest::Client,
}

impl Invocation {
    /// Starts a long-running command (serve) with its output in files.
    pub fn spawn_server(mut self, port: u16, log_dir: &Path) -> Server {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let log = log_dir.join(format!("serve-{name}.stderr"));
        self.cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(log_dir.join(format!("serve-{name}.stdout"))).unwrap())
            .stderr(fs::File::create(&log).unwrap());
        let child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.label));
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            http: http(),
        }
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/healthz` until it answers 200 (up to 20 s).
    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the server exited early ({status}):\n{}", self.log());
            }
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("/healthz did not answer within 20 s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn jwks_kids(&self) -> Vec<String> {
        self.get_json("/jwks").await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `POST /token` with `grant_type=client_credentials` and HTTP Basic.
    pub async fn client_credentials(
        &self,
        id: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let r = self
            .http
            .post(self.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").arg(&pid).status().unwrap();
        assert!(sent.success(), "kill {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "the server did not exit within 10 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A public P-256 JWK for ECDH-ES+A256KW, as a resource server would hold.
pub fn resource_jwk() -> Value {
    let g = gatehouse_keys::generate(Alg::EcdhEsA256kw, "api-enc-1", &Kek::generate()).unwrap();
    let jwk: Value = serde_json::from_str(&g.public_jwk).unwrap();
    assert_eq!(jwk["alg"], "ECDH-ES+A256KW");
    assert_eq!(jwk["crv"], "P-256");
    assert!(jwk.get("d").is_none());
    jwk
}

pub async fn sqlite_env() -> Env {
    Env::new(DbKind::Sqlite).await.unwrap()
}

/// A client's `backchannel_logout_uri` on this machine: a plain HTTP/1.1
/// listener on its own thread (the CLI under test blocks the test's
/// runtime) that answers 200 to every POST and keeps each body. Stopped on
/// drop.
pub struct BackchannelReceiver {
    pub uri: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BackchannelReceiver {
    pub fn start() -> BackchannelReceiver {
        use std::sync::{atomic::AtomicBool, Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let uri = format!("http://{}/backchannel", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(body) = answer_ok(stream) {
                            b.lock().unwrap().push(body);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        BackchannelReceiver {
            uri,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Reads one request (headers, then `Content-Length` bytes), answers 200.
fn answer_ok(mut stream: std::net::TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    Some(String::from_utf8_lossy(&buf[head_end..]).into_owned())
}

impl Drop for BackchannelReceiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `users create USERNAME` with a password the policy accepts; the `sub`.
pub fn create_user(env: &Env, username: &str, password: &str) -> String {
    let created = env
        .cmd(&[
            "users",
            "create",
            "--username",
            username,
            "--password-stdin",
        ])
        .stdin(&format!("{password}\n"))
        .json();
    created["sub"].as_str().expect("sub").to_owned()
}

/// The audit lines (`gatehouse::audit`) a run printed on stderr, parsed.
pub fn audit_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| l.find("{\"audit\"").map(|i| &l[i..]))
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect()
}

/// `GATEHOUSE_LOG` that lets audit lines through and little else.
pub const AUDIT_LOG: &str = "warn,gatehouse::audit=info";
