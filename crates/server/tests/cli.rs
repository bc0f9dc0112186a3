//! The `gatehouse` command line, run as a real subprocess: admin commands on
//! fresh SQLite and PostgreSQL databases, a running server picking up admin
//! changes, and the refusal of bad configuration with one clear line.
//!
//! Every run gets a fresh database, a fresh working directory, a random
//! key-encryption key and `GATEHOUSE_LOG=warn`; no `GATEHOUSE_*` variable of
//! the test's own environment leaks into the child. Whatever a command does,
//! its stderr must never show a panic or a backtrace hint; a failing command
//! must exit non-zero with exactly one `error: ...` line on stderr and
//! nothing on stdout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../storage/tests/support/db.rs"]
mod db;
#[path = "../../storage/tests/support/pg_server.rs"]
mod pg_server;

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use db::{DbKind, TestDb};
use gatehouse_keys::{Alg, Kek};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
/// No admin command should come near this; it only stops a hung test.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// The algorithms Gatehouse keeps an active and a next key for.
/// The algorithms keys are kept for by default (`signing_algs` RS256 and
/// ES256, and the own encryption key).
const OWN_ALGS: [&str; 3] = ["RS256", "ES256", "ECDH-ES+A256KW"];

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A directory removed again on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("gatehouse-cli-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn random_kek() -> String {
    Kek::generate().to_base64url()
}

/// One scenario's world: a fresh database, a working directory and a KEK.
struct Env {
    /// Held for its drop (which deletes the database); `None` when the
    /// test owns the database itself.
    _db: Option<TestDb>,
    url: String,
    kek: String,
    dir: TempDir,
}

impl Env {
    /// `None` when PostgreSQL is asked for and not configured (skipped loudly).
    async fn new(kind: DbKind) -> Option<Env> {
        let db = db::fresh(kind).await?;
        Some(Env {
            url: db.url.clone(),
            _db: Some(db),
            kek: random_kek(),
            dir: TempDir::new(),
        })
    }

    /// On a database the caller owns (a private PostgreSQL server).
    fn on_url(url: String) -> Env {
        Env {
            url,
            _db: None,
            kek: random_kek(),
            dir: TempDir::new(),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `gatehouse ARGS` against this environment's database and KEK.
    fn cmd(&self, args: &[&str]) -> Invocation {
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

    fn json(&self, args: &[&str]) -> Value {
        self.cmd(args).json()
    }

    fn fails(&self, args: &[&str]) -> String {
        self.cmd(args).fails()
    }
}

/// What a finished run left behind.
#[derive(Debug)]
struct Output {
    label: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// One command about to run.
struct Invocation {
    cmd: Command,
    label: String,
    stdin: Option<String>,
}

fn read_in_background(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = r.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// No panic message, no backtrace hint: whatever the outcome.
fn assert_no_panic(label: &str, stderr: &str) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !stderr.contains(bad),
            "{label}: stderr shows {bad:?}:\n{stderr}"
        );
    }
}

impl Invocation {
    fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.to_owned());
        self
    }

    /// Runs to completion (or kills it after [`COMMAND_TIMEOUT`]).
    fn run(mut self) -> Output {
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
    fn ok(self) -> Output {
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
    fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}):\n{}", out.label, out.stdout))
    }

    /// Runs and insists on a clean failure: non-zero exit, nothing on
    /// stdout, exactly one `error: ...` line on stderr. Returns that line.
    fn fails(self) -> String {
        let out = self.run();
        failure_line(&out)
    }
}

fn failure_line(out: &Output) -> String {
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

fn assert_mentions(line: &str, needles: &[&str]) {
    for n in needles {
        assert!(line.contains(n), "expected {n:?} in the message: {line}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A `gatehouse serve` child process; killed on drop if still running, so a
/// failing assertion never leaves a server behind.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Invocation {
    /// Starts a long-running command (serve) with its output in files.
    fn spawn_server(mut self, port: u16, log_dir: &Path) -> Server {
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
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/healthz` until it answers 200 (up to 20 s).
    async fn wait_healthy(&mut self) {
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

    async fn get_json(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    async fn jwks_kids(&self) -> Vec<String> {
        self.get_json("/jwks").await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `POST /token` with `grant_type=client_credentials` and HTTP Basic.
    async fn client_credentials(
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
    fn terminate(mut self) -> ExitStatus {
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

/// `(alg, state) -> kids` of a `keys list --json` output.
fn key_states(list: &Value) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for k in list.as_array().expect("keys list --json is an array") {
        out.entry((
            k["alg"].as_str().unwrap().to_owned(),
            k["state"].as_str().unwrap().to_owned(),
        ))
        .or_default()
        .push(k["kid"].as_str().unwrap().to_owned());
    }
    out
}

fn kids_in(list: &Value, alg: &str, state: &str) -> Vec<String> {
    key_states(list)
        .remove(&(alg.to_owned(), state.to_owned()))
        .unwrap_or_default()
}

fn the_one(list: &Value, alg: &str, state: &str) -> String {
    let kids = kids_in(list, alg, state);
    assert_eq!(
        kids.len(),
        1,
        "{alg} should have exactly one {state} key: {list:#}"
    );
    kids[0].clone()
}

fn state_of(list: &Value, kid: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not listed"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A public P-256 JWK for ECDH-ES+A256KW, as a resource server would hold.
fn resource_jwk() -> Value {
    let g = gatehouse_keys::generate(Alg::EcdhEsA256kw, "api-enc-1", &Kek::generate()).unwrap();
    let jwk: Value = serde_json::from_str(&g.public_jwk).unwrap();
    assert_eq!(jwk["alg"], "ECDH-ES+A256KW");
    assert_eq!(jwk["crv"], "P-256");
    assert!(jwk.get("d").is_none());
    jwk
}

/// Runs each scenario on SQLite and on PostgreSQL: `sqlite::NAME` and
/// `postgres::NAME`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let env = super::Env::new(super::DbKind::Sqlite).await.unwrap();
                    super::$name(&env).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(env) = super::Env::new(super::DbKind::Postgres).await else {
                        return;
                    };
                    super::$name(&env).await;
                }
            )*
        }
    };
}

both_backends!(
    migrate_prints_json_and_is_idempotent,
    users_create_list_disable,
    clients_create_show_list_delete,
    clients_create_refuses_bad_metadata,
    resources_create_list_delete,
    keys_list_rotate_generate_revoke,
    running_server_sees_admin_changes,
    wrong_kek_is_refused,
    bench_measures_and_cleans_up,
    clients_and_resources_update,
    registration_token_policy,
);

// ---------------------------------------------------------------------------
// 1. migrate
// ---------------------------------------------------------------------------

/// `gatehouse bench --json` measures every figure it names and leaves no
/// throwaway client or resource server behind.
async fn bench_measures_and_cleans_up(env: &Env) {
    let r = env.json(&["bench", "--seconds", "1", "--json"]);
    for size in [
        "id_token",
        "access_token_jwe_own",
        "access_token_jwe_resource_server",
        "access_token_opaque",
        "refresh_token",
        "session_cookie",
    ] {
        assert!(
            r["sizes_bytes"][size].as_u64().unwrap_or(0) > 20,
            "{size}: {r}"
        );
    }
    for (section, name) in [
        (
            "issuance_per_second",
            "raw_crypto_es256_sign_ecdh_es_encrypt",
        ),
        ("issuance_per_second", "jwe_resource_server_es256_ecdh_es"),
        ("issuance_per_second", "jwe_own_key"),
        ("issuance_per_second", "opaque_with_database_write"),
        ("check_per_second", "own_token_read_with_revocation_check"),
        ("check_per_second", "jwe_local_decrypt_and_verify"),
        ("check_per_second", "introspection_round_trip"),
        ("check_per_second", "session_lookup"),
    ] {
        assert!(
            r[section][name]["rate"].as_f64().unwrap_or(0.0) > 0.0,
            "{name}: {r}"
        );
    }
    assert_eq!(
        env.json(&["clients", "list", "--json"]),
        serde_json::json!([])
    );
    assert_eq!(
        env.json(&["resources", "list", "--json"]),
        serde_json::json!([])
    );
}

async fn migrate_prints_json_and_is_idempotent(env: &Env) {
    let first = env.json(&["migrate"]);
    let applied = first["applied"].as_array().expect("applied is an array");
    assert!(
        !applied.is_empty(),
        "a fresh database has migrations to apply: {first}"
    );
    assert!(applied.iter().all(Value::is_string), "{first}");

    let again = env.json(&["migrate"]);
    assert_eq!(again, serde_json::json!({ "applied": [] }));

    // The schema is there: an admin command works on it.
    assert_eq!(
        env.json(&["users", "list", "--json"]),
        serde_json::json!([])
    );
}

// ---------------------------------------------------------------------------
// 2. users
// ---------------------------------------------------------------------------

async fn users_create_list_disable(env: &Env) {
    let created = env
        .cmd(&[
            "users",
            "create",
            "--username",
            "Alice",
            "--email",
            "a@example.com",
            "--name",
            "Alice A",
            "--password-stdin",
        ])
        .stdin("correct horse battery staple\n")
        .json();
    let sub = created["sub"].as_str().expect("sub").to_owned();
    assert!(uuid::Uuid::parse_str(&sub).is_ok(), "sub {sub:?} is a UUID");
    assert_eq!(created["username"], "alice", "the username is normalized");

    // Same name in another case: a duplicate, refused by name.
    let dup = env
        .cmd(&["users", "create", "--username", "ALICE", "--password-stdin"])
        .stdin("another password\n")
        .fails();
    assert_mentions(&dup, &["alice"]);

    // No password on stdin, or only a newline: refused, and nothing created.
    for input in ["", "\n"] {
        let empty = env
            .cmd(&["users", "create", "--username", "bob", "--password-stdin"])
            .stdin(input)
            .fails();
        assert_mentions(&empty, &["password", "empty"]);
    }
    // --password-stdin is required (clap's usage error is its own, multi-line format).
    let out = env.cmd(&["users", "create", "--username", "bob"]).run();
    assert!(!out.status.success());
    assert!(out.stderr.contains("--password-stdin"), "{}", out.stderr);

    let list = env.json(&["users", "list", "--json"]);
    let users = list.as_array().unwrap();
    assert_eq!(users.len(), 1, "only alice exists: {list:#}");
    let alice = &users[0];
    assert_eq!(alice["id"], sub.as_str());
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "a@example.com");
    assert_eq!(alice["name"], "Alice A");
    assert_eq!(alice["disabled"], false);
    let raw = env.cmd(&["users", "list", "--json"]).ok().stdout;
    assert!(
        !raw.contains("argon2") && !raw.contains("password"),
        "no password hash in the listing: {raw}"
    );

    let table = env.cmd(&["users", "list"]).ok().stdout;
    let row = table
        .lines()
        .find(|l| l.contains("alice"))
        .unwrap_or_else(|| panic!("alice in the table:\n{table}"));
    assert!(row.contains(&sub) && row.contains("active"), "{row}");

    let disabled = env.json(&["users", "disable", "alice"]);
    assert_eq!(disabled["sub"], sub.as_str());
    assert_eq!(disabled["username"], "alice");
    assert_eq!(disabled["disabled"], true);

    assert_eq!(env.json(&["users", "list", "--json"])[0]["disabled"], true);
    let table = env.cmd(&["users", "list"]).ok().stdout;
    let row = table.lines().find(|l| l.contains("alice")).unwrap();
    assert!(row.contains("disabled"), "{row}");

    let unknown = env.fails(&["users", "disable", "nobody"]);
    assert_mentions(&unknown, &["nobody"]);
}

// ---------------------------------------------------------------------------
// 3. clients
// ---------------------------------------------------------------------------

fn assert_no_secret_fields(v: &Value) {
    let o = v.as_object().expect("a client is an object");
    for k in o.keys() {
        assert!(
            !k.contains("secret") && !k.contains("hash"),
            "field {k:?} must not be shown: {v:#}"
        );
    }
}

async fn clients_create_show_list_delete(env: &Env) {
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "https://app.example/cb",
    ]);
    let id = created["client_id"].as_str().expect("client_id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    assert!(!id.is_empty() && secret.len() >= 32, "{created:#}");
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["name"], "App");
    assert_eq!(
        created["redirect_uris"],
        serde_json::json!(["https://app.example/cb"])
    );
    assert_eq!(
        created["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert!(created.get("secret_hash").is_none(), "{created:#}");

    let shown_raw = env.cmd(&["clients", "show", &id]).ok().stdout;
    assert!(
        !shown_raw.contains(&secret),
        "the secret is shown once only"
    );
    let shown: Value = serde_json::from_str(&shown_raw).unwrap();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["grant_types"], created["grant_types"]);
    assert_no_secret_fields(&shown);

    // A public client gets no secret.
    let public = env.json(&[
        "clients",
        "create",
        "--name",
        "SPA",
        "--redirect-uri",
        "http://127.0.0.1:3000/cb",
        "--auth-method",
        "none",
    ]);
    assert_eq!(public["token_endpoint_auth_method"], "none");
    assert!(public.get("client_secret").is_none(), "{public:#}");
    let public_id = public["client_id"].as_str().unwrap().to_owned();

    // client_secret_jwt: a secret long enough for HS512, shown once, kept
    // sealed (never printed, not even sealed).
    let hmac = env.json(&[
        "clients",
        "create",
        "--name",
        "Service",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "client_secret_jwt",
        "--auth-signing-alg",
        "HS512",
    ]);
    assert_eq!(hmac["token_endpoint_auth_method"], "client_secret_jwt");
    assert_eq!(hmac["token_endpoint_auth_signing_alg"], "HS512");
    let hmac_secret = hmac["client_secret"].as_str().expect("client_secret");
    assert!(hmac_secret.len() >= 64, "{hmac:#}");
    let hmac_id = hmac["client_id"].as_str().unwrap().to_owned();
    let shown_raw = env.cmd(&["clients", "show", &hmac_id]).ok().stdout;
    assert!(!shown_raw.contains(hmac_secret));
    assert_no_secret_fields(&serde_json::from_str(&shown_raw).unwrap());
    assert_eq!(
        env.json(&["clients", "delete", &hmac_id]),
        serde_json::json!({ "deleted": hmac_id })
    );

    let list_raw = env.cmd(&["clients", "list", "--json"]).ok().stdout;
    assert!(!list_raw.contains(&secret));
    let list: Value = serde_json::from_str(&list_raw).unwrap();
    let mut ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![id.as_str(), public_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    list.as_array()
        .unwrap()
        .iter()
        .for_each(assert_no_secret_fields);

    let table = env.cmd(&["clients", "list"]).ok().stdout;
    assert!(
        table.contains(&id) && table.contains("https://app.example/cb"),
        "{table}"
    );

    assert_eq!(
        env.json(&["clients", "delete", &id]),
        serde_json::json!({ "deleted": id })
    );
    assert_mentions(&env.fails(&["clients", "show", &id]), &[&id]);
    assert_mentions(&env.fails(&["clients", "delete", &id]), &[&id]);
    assert_eq!(
        env.json(&["clients", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn clients_create_refuses_bad_metadata(env: &Env) {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--redirect-uri", "not a url"],
            &["not a url", "absolute URL"],
        ),
        (
            &["--redirect-uri", "http://evil.example/cb"],
            &["http://evil.example/cb", "https"],
        ),
        (
            &["--redirect-uri", "https://app.example/cb#top"],
            &["fragment"],
        ),
        (
            &[
                "--redirect-uri",
                "https://app.example/cb",
                "--grant-type",
                "password",
            ],
            &["grant type", "password", "authorization_code"],
        ),
        (
            &[
                "--redirect-uri",
                "https://app.example/cb",
                "--auth-method",
                "magic",
            ],
            &["auth method", "magic", "client_secret_basic"],
        ),
        (
            &[
                "--auth-method",
                "none",
                "--grant-type",
                "client_credentials",
            ],
            &["none", "client_credentials"],
        ),
        (
            &[
                "--grant-type",
                "client_credentials",
                "--auth-method",
                "client_secret_jwt",
                "--auth-signing-alg",
                "RS256",
            ],
            &["RS256", "client_secret_jwt", "HS256"],
        ),
        // The code grant (the default) needs somewhere to send the code.
        (&[], &["--redirect-uri"]),
    ];
    for (extra, needles) in cases {
        let mut args = vec!["clients", "create", "--name", "App"];
        args.extend_from_slice(extra);
        let line = env.fails(&args);
        assert_mentions(&line, needles);
    }
    // None of them left a client behind.
    assert_eq!(
        env.json(&["clients", "list", "--json"]),
        serde_json::json!([])
    );
}

// ---------------------------------------------------------------------------
// 4. resources
// ---------------------------------------------------------------------------

async fn resources_create_list_delete(env: &Env) {
    let jwk = resource_jwk();
    fs::write(env.dir().join("api.jwk"), jwk.to_string()).unwrap();

    // A relative --jwk-file is read from the working directory.
    let created = env.json(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
    ]);
    assert_eq!(created["audience"], "https://api.example");
    assert_eq!(created["token_format"], "jwe");
    assert_eq!(created["signing_alg"], "ES256");
    let stored: Value =
        serde_json::from_str(created["encryption_jwk"].as_str().expect("encryption_jwk")).unwrap();
    assert_eq!(stored["x"], jwk["x"]);
    assert_eq!(stored["y"], jwk["y"]);
    assert!(stored.get("d").is_none());

    let opaque = env.json(&[
        "resources",
        "create",
        "--audience",
        "https://reports.example",
        "--jwk-file",
        "api.jwk",
        "--format",
        "opaque",
        "--scope",
        "reports.read",
    ]);
    assert_eq!(opaque["token_format"], "opaque");
    assert_eq!(opaque["scopes"], serde_json::json!(["reports.read"]));

    // A private key, a signing key, a missing file, a bad format, a duplicate.
    let mut private = jwk.clone();
    private["d"] = Value::from("8sq1YvHx0rGIbCB8m-mwgVB_GsoEBJHjHAOc-Oyf5-A");
    fs::write(env.dir().join("private.jwk"), private.to_string()).unwrap();
    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://other.example",
        "--jwk-file",
        "private.jwk",
    ]);
    assert_mentions(&line, &["private.jwk", "private"]);

    let sig = gatehouse_keys::generate(Alg::ES256, "sig-1", &Kek::generate()).unwrap();
    fs::write(env.dir().join("sig.jwk"), &sig.public_jwk).unwrap();
    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://other.example",
        "--jwk-file",
        "sig.jwk",
    ]);
    assert_mentions(&line, &["encryption key"]);

    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://other.example",
        "--jwk-file",
        "missing.jwk",
    ]);
    assert_mentions(&line, &["missing.jwk"]);

    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://other.example",
        "--jwk-file",
        "api.jwk",
        "--format",
        "paseto",
    ]);
    assert_mentions(&line, &["--format", "jwe", "opaque"]);

    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
    ]);
    assert_mentions(&line, &["https://api.example"]);

    let list = env.json(&["resources", "list", "--json"]);
    let mut auds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["audience"].as_str().unwrap())
        .collect();
    auds.sort_unstable();
    assert_eq!(auds, ["https://api.example", "https://reports.example"]);
    let table = env.cmd(&["resources", "list"]).ok().stdout;
    assert!(
        table.contains("https://reports.example") && table.contains("opaque"),
        "{table}"
    );

    assert_eq!(
        env.json(&["resources", "delete", "https://reports.example"]),
        serde_json::json!({ "deleted": "https://reports.example" })
    );
    let list = env.json(&["resources", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["audience"], "https://api.example");
    let line = env.fails(&["resources", "delete", "https://reports.example"]);
    assert_mentions(&line, &["https://reports.example"]);
}

// ---------------------------------------------------------------------------
// 5. keys
// ---------------------------------------------------------------------------

async fn keys_list_rotate_generate_revoke(env: &Env) {
    // First use generates an active and a next key per algorithm.
    let list = env.json(&["keys", "list", "--json"]);
    for alg in OWN_ALGS {
        the_one(&list, alg, "active");
        the_one(&list, alg, "next");
    }
    assert_eq!(
        list.as_array().unwrap().len(),
        2 * OWN_ALGS.len(),
        "{list:#}"
    );
    for k in list.as_array().unwrap() {
        let use_ = if k["alg"] == "ECDH-ES+A256KW" {
            "enc"
        } else {
            "sig"
        };
        assert_eq!(k["use"], use_, "{k}");
        assert!(k.get("sealed_private_key").is_none() && k.get("d").is_none());
    }
    // Opening the ring again changes nothing.
    assert_eq!(env.json(&["keys", "list", "--json"]), list);
    let table = env.cmd(&["keys", "list"]).ok().stdout;
    for alg in OWN_ALGS {
        assert!(table.contains(alg), "{alg} in:\n{table}");
    }

    // rotate --alg ES256: next → active, active → retired, a new next.
    let es_active = the_one(&list, "ES256", "active");
    let es_next = the_one(&list, "ES256", "next");
    let rotated = env.json(&["keys", "rotate", "--alg", "ES256"]);
    let r = rotated["rotated"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{rotated:#}");
    assert_eq!(r[0]["alg"], "ES256");
    assert_eq!(r[0]["activated"], es_next.as_str());
    assert_eq!(r[0]["retired"], es_active.as_str());
    let new_next = r[0]["next"].as_str().unwrap().to_owned();
    assert!(new_next != es_next && new_next != es_active);
    let after = env.json(&["keys", "list", "--json"]);
    assert_eq!(state_of(&after, &es_active), "retired");
    assert_eq!(state_of(&after, &es_next), "active");
    assert_eq!(state_of(&after, &new_next), "next");
    assert_eq!(the_one(&after, "ES256", "active"), es_next);
    assert_eq!(the_one(&after, "ES256", "next"), new_next);
    for alg in OWN_ALGS.iter().filter(|a| **a != "ES256") {
        for state in ["active", "next"] {
            assert_eq!(
                kids_in(&after, alg, state),
                kids_in(&list, alg, state),
                "{alg} {state}"
            );
        }
    }

    // rotate --use enc: only the encryption key.
    let before = after;
    let enc_active = the_one(&before, "ECDH-ES+A256KW", "active");
    let enc_next = the_one(&before, "ECDH-ES+A256KW", "next");
    let rotated = env.json(&["keys", "rotate", "--use", "enc"]);
    let r = rotated["rotated"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{rotated:#}");
    assert_eq!(r[0]["alg"], "ECDH-ES+A256KW");
    assert_eq!(r[0]["activated"], enc_next.as_str());
    assert_eq!(r[0]["retired"], enc_active.as_str());
    let after = env.json(&["keys", "list", "--json"]);
    assert_eq!(state_of(&after, &enc_active), "retired");
    assert_eq!(the_one(&after, "ECDH-ES+A256KW", "active"), enc_next);
    for alg in OWN_ALGS.iter().filter(|a| **a != "ECDH-ES+A256KW") {
        for state in ["active", "next", "retired"] {
            assert_eq!(
                kids_in(&after, alg, state),
                kids_in(&before, alg, state),
                "{alg} {state}"
            );
        }
    }

    // generate --alg RS256: one more next key.
    let rs_next_before = kids_in(&after, "RS256", "next");
    let generated = env.json(&["keys", "generate", "--alg", "RS256"]);
    assert_eq!(generated["alg"], "RS256");
    assert_eq!(generated["state"], "next");
    let kid = generated["generated"].as_str().unwrap().to_owned();
    let after = env.json(&["keys", "list", "--json"]);
    let rs_next = kids_in(&after, "RS256", "next");
    assert_eq!(rs_next.len(), rs_next_before.len() + 1);
    assert!(rs_next.contains(&kid) && state_of(&after, &kid) == "next");

    // revoke the active ES256 key: the next one is promoted, with a warning.
    let ps_active = the_one(&after, "ES256", "active");
    let ps_next = the_one(&after, "ES256", "next");
    let out = env.cmd(&["keys", "revoke", &ps_active]).ok();
    let revoked: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(revoked["revoked"], ps_active.as_str());
    assert_eq!(revoked["was"], "active");
    assert_eq!(revoked["activated"], ps_next.as_str());
    assert!(revoked["next"].is_string());
    assert!(
        out.stderr.contains(&ps_active) && out.stderr.contains(&ps_next),
        "revoking an active key warns on stderr: {:?}",
        out.stderr
    );
    let after = env.json(&["keys", "list", "--json"]);
    assert_eq!(state_of(&after, &ps_active), "revoked");
    assert_eq!(the_one(&after, "ES256", "active"), ps_next);
    assert_eq!(
        the_one(&after, "ES256", "next"),
        revoked["next"].as_str().unwrap()
    );

    // Refusals.
    assert_mentions(
        &env.fails(&["keys", "revoke", "no-such-kid"]),
        &["no-such-kid"],
    );
    assert_mentions(
        &env.fails(&["keys", "revoke", &ps_active]),
        &[&ps_active, "revoked"],
    );
    for args in [
        &["keys", "generate", "--alg", "HS256"][..],
        &["keys", "rotate", "--alg", "HS256"][..],
    ] {
        assert_mentions(&env.fails(args), &["HS256", "RS256", "ES256"]);
    }
    // RSA-OAEP-256 exists only for resource servers' keys: a Gatehouse key of
    // it would never become active.
    assert_mentions(
        &env.fails(&["keys", "generate", "--alg", "RSA-OAEP-256"]),
        &["RSA-OAEP-256"],
    );
    // EdDSA and PS256 keys are kept only when signing_algs lists them.
    assert_mentions(
        &env.fails(&["keys", "generate", "--alg", "EdDSA"]),
        &["EdDSA", "signing_algs"],
    );
    assert_mentions(
        &env.fails(&["keys", "rotate", "--use", "both"]),
        &["both", "sig", "enc"],
    );
    assert_mentions(
        &env.fails(&["keys", "rotate", "--use", "sig", "--alg", "ECDH-ES+A256KW"]),
        &["ECDH-ES+A256KW", "enc", "sig"],
    );
    // ... and none of them changed anything.
    assert_eq!(env.json(&["keys", "list", "--json"]), after);
}

// ---------------------------------------------------------------------------
// 6. a running server and the admin CLI side by side
// ---------------------------------------------------------------------------

async fn running_server_sees_admin_changes(env: &Env) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let mut server = env
        .cmd(&["serve", "--listen", &listen, "--issuer", &issuer])
        .spawn_server(port, env.dir());
    server.wait_healthy().await;

    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(discovery["jwks_uri"], format!("{issuer}/jwks").as_str());
    assert_eq!(
        discovery["token_endpoint"],
        format!("{issuer}/token").as_str()
    );

    // Rotate with the admin CLI; the running server publishes the new next key.
    let before = server.jwks_kids().await;
    let rotated = env.json(&["keys", "rotate", "--alg", "RS256"]);
    let r = &rotated["rotated"][0];
    assert_eq!(r["alg"], "RS256", "{rotated:#}");
    let new_next = r["next"].as_str().unwrap().to_owned();
    let retired = r["retired"].as_str().unwrap().to_owned();
    assert!(!before.contains(&new_next));
    assert!(before.contains(&retired));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = server.jwks_kids().await;
        if kids.contains(&new_next) {
            assert!(kids.contains(&retired), "a retired key stays published");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server's /jwks did not show {new_next} within 10 s: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A client registered while the server runs can use it at once.
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "Service",
        "--grant-type",
        "client_credentials",
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (status, body) = server.client_credentials(&id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0));
    let (status, body) = server.client_credentials(&id, "wrong-secret", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");

    // A resource server registered while it runs becomes a valid audience:
    // its token is a JWE (five parts).
    fs::write(env.dir().join("api.jwk"), resource_jwk().to_string()).unwrap();
    env.json(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server
            .client_credentials(&id, &secret, &[("resource", "https://api.example")])
            .await;
        if status == 200 {
            let token = body["access_token"].as_str().unwrap();
            assert_eq!(token.split('.').count(), 5, "a JWE: {token}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "resource not accepted within 10 s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An API-side client linked to the resource server may introspect its
    // tokens (RFC 7662 2.2).
    let auditor = env.json(&[
        "clients",
        "create",
        "--name",
        "Auditor",
        "--grant-type",
        "client_credentials",
    ]);
    let auditor_id = auditor["client_id"].as_str().unwrap().to_owned();
    let auditor_secret = auditor["client_secret"].as_str().unwrap().to_owned();
    env.json(&[
        "resources",
        "update",
        "https://api.example",
        "--client",
        &auditor_id,
    ]);
    let (_, body) = server
        .client_credentials(&id, &secret, &[("resource", "https://api.example")])
        .await;
    let api_token = body["access_token"].as_str().unwrap().to_owned();
    let introspect = |token: String| {
        let (http, url) = (server.http.clone(), server.url("/introspect"));
        let (aid, asec) = (auditor_id.clone(), auditor_secret.clone());
        async move {
            http.post(url)
                .basic_auth(aid, Some(asec))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while introspect(api_token.clone()).await["active"] != true {
        assert!(
            Instant::now() < deadline,
            "the linked client never saw the token active"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Deleting the client stops it within seconds and revokes its tokens
    // (as an RFC 7592 deletion does).
    env.json(&["clients", "delete", &id]);
    assert_eq!(
        introspect(api_token.clone()).await["active"],
        false,
        "a deleted client's token stays active"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = server.client_credentials(&id, &secret, &[]).await;
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a deleted client still got {status} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let log = server.log();
    let status = server.terminate();
    assert!(
        status.success(),
        "serve exited with {status} on SIGTERM:\n{log}"
    );
    assert_no_panic("gatehouse serve", &log);
}

// ---------------------------------------------------------------------------
// 7. configuration
// ---------------------------------------------------------------------------

async fn wrong_kek_is_refused(env: &Env) {
    // Keys sealed under the environment's KEK...
    let list = env.json(&["keys", "list", "--json"]);
    // Active and next for RS256, ES256 (the default signing_algs) and the own encryption key.
    assert_eq!(list.as_array().unwrap().len(), 6);

    // ...cannot be opened with another one: a clear error, not garbage.
    let other = random_kek();
    let line = env
        .cmd(&["keys", "list", "--json"])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(&line, &["key-encryption key"]);
    let line = env
        .cmd(&["keys", "rotate"])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(&line, &["key-encryption key"]);

    // Disabling a user needs the keys (forced logout): with the wrong KEK it
    // fails before anything changes.
    env.cmd(&["users", "create", "--username", "alice", "--password-stdin"])
        .stdin("correct horse battery staple\n")
        .json();
    let line = env
        .cmd(&["users", "disable", "alice"])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(&line, &["key-encryption key"]);
    assert_eq!(
        env.json(&["users", "list", "--json"])[0]["disabled"],
        false,
        "a failed disable left the user as she was"
    );

    // A client secret hashed under the wrong KEK would never match at the
    // server: registration is refused rather than handing out a dead secret.
    let line = env
        .cmd(&[
            "clients",
            "create",
            "--name",
            "App",
            "--grant-type",
            "client_credentials",
        ])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(
        &line,
        &["key-encryption key", "GATEHOUSE_KEY_ENCRYPTION_KEY"],
    );
    assert_eq!(
        env.json(&["clients", "list", "--json"]),
        serde_json::json!([])
    );

    // The server refuses to start with it.
    let port = free_port();
    let line = env
        .cmd(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &format!("http://127.0.0.1:{port}"),
        ])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(&line, &["key-encryption key"]);

    // The right KEK still works and nothing changed.
    assert_eq!(env.json(&["keys", "list", "--json"]), list);
}

async fn sqlite_env() -> Env {
    Env::new(DbKind::Sqlite).await.unwrap()
}

#[tokio::test]
async fn config_bad_database_urls() {
    let env = sqlite_env().await;

    let line = env
        .cmd(&["migrate"])
        .env("GATEHOUSE_DATABASE_URL", "mysql://x")
        .fails();
    assert_mentions(&line, &["mysql://x", "sqlite://", "postgres://"]);
    // The flag says the same.
    let line = env.fails(&["--database-url", "mysql://x", "users", "list"]);
    assert_mentions(&line, &["mysql://x"]);

    let started = Instant::now();
    let line = env.fails(&[
        "--database-url",
        "postgres://postgres@127.0.0.1:1/nope",
        "migrate",
    ]);
    assert_mentions(&line, &["127.0.0.1:1"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up in time"
    );

    let missing = env.dir().join("no-such-dir").join("gatehouse.db");
    let line = env.fails(&[
        "--database-url",
        &format!("sqlite://{}", missing.display()),
        "users",
        "list",
    ]);
    assert_mentions(&line, &["no-such-dir", "cannot open"]);
    assert!(
        !missing.parent().unwrap().exists(),
        "no directory was created"
    );

    // A read-only database: mode=ro says so even for root.
    let ro_dir = env.dir().join("ro");
    fs::create_dir(&ro_dir).unwrap();
    let ro_file = ro_dir.join("gatehouse.db");
    env.cmd(&["migrate"])
        .env(
            "GATEHOUSE_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", ro_file.display()),
        )
        .ok();
    let line = env.fails(&[
        "--database-url",
        &format!("sqlite://{}?mode=ro", ro_file.display()),
        "users",
        "list",
    ]);
    assert_mentions(&line, &["not writable"]);

    // And a file and directory without write permission. Root ignores the
    // mode bits, so there (as in CI containers) this case is skipped.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ro_file, fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(&ro_dir, fs::Permissions::from_mode(0o555)).unwrap();
    let privileged = fs::OpenOptions::new().append(true).open(&ro_file).is_ok();
    let out = if privileged {
        None
    } else {
        Some(
            env.cmd(&["users", "list"])
                .env(
                    "GATEHOUSE_DATABASE_URL",
                    format!("sqlite://{}", ro_file.display()),
                )
                .run(),
        )
    };
    fs::set_permissions(&ro_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&ro_file, fs::Permissions::from_mode(0o644)).unwrap();
    match out {
        None => eprintln!(
            "SKIPPED: chmod 0444 does not stop this user (root) from writing; \
             the read-only case is covered by ?mode=ro above"
        ),
        Some(out) => {
            let line = failure_line(&out);
            assert_mentions(&line, &["gatehouse.db"]);
        }
    }
}

#[tokio::test]
async fn config_file_errors() {
    let env = sqlite_env().await;

    let line = env.fails(&["--config", "/nonexistent.toml", "migrate"]);
    assert_mentions(&line, &["/nonexistent.toml"]);
    // Through the environment too.
    let line = env
        .cmd(&["migrate"])
        .env("GATEHOUSE_CONFIG", "/nonexistent.toml")
        .fails();
    assert_mentions(&line, &["/nonexistent.toml"]);

    // Errors in reading the file name the file, its line and the key.
    let cases: &[(&str, &[&str])] = &[
        // An unknown key (a typo must not be ignored).
        (
            "issuer = \"http://127.0.0.1:8080\"\nlisten_addr = \"127.0.0.1:9\"\n",
            &["listen_addr", "line 2"],
        ),
        // Malformed TOML.
        ("issuer = [1\n", &["line ", "column "]),
        // A wrong type.
        (
            "access_token_ttl = \"soon\"\n",
            &["access_token_ttl", "line 1"],
        ),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let name = format!("bad-{i}.toml");
        fs::write(env.dir().join(&name), text).unwrap();
        let line = env.fails(&["--config", &name, "migrate"]);
        assert_mentions(&line, needles);
        assert_mentions(&line, &[&name]);
    }
    // Values checked after merging the layers name the setting.
    let cases: &[(&str, &[&str])] = &[
        ("access_token_ttl = -5\n", &["access_token_ttl", "-5"]),
        ("log_format = \"xml\"\n", &["xml", "text", "json"]),
        ("key_prepublish = 60\n", &["key_prepublish", "jwks_max_age"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let name = format!("invalid-{i}.toml");
        fs::write(env.dir().join(&name), text).unwrap();
        assert_mentions(&env.fails(&["--config", &name, "migrate"]), needles);
    }

    let line = env.fails(&["--log-format", "xml", "migrate"]);
    assert_mentions(&line, &["xml"]);
    let line = env.fails(&["serve", "--listen", "everywhere"]);
    assert_mentions(&line, &["everywhere", "HOST:PORT"]);
}

#[tokio::test]
async fn config_db_probe_interval() {
    let env = sqlite_env().await;
    for bad in ["0", "60001"] {
        let line = env
            .cmd(&["migrate"])
            .env("GATEHOUSE_DB_PROBE_INTERVAL_MS", bad)
            .fails();
        assert_mentions(&line, &["db_probe_interval_ms", "10 and 60000", bad]);
    }
    fs::write(env.dir().join("probe.toml"), "db_probe_interval_ms = 5\n").unwrap();
    let line = env.fails(&["--config", "probe.toml", "migrate"]);
    assert_mentions(&line, &["db_probe_interval_ms", "got 5"]);
    // The flag beats the file.
    env.json(&[
        "--config",
        "probe.toml",
        "--db-probe-interval-ms",
        "100",
        "migrate",
    ]);
}

#[tokio::test]
async fn config_precedence_file_env_flag() {
    let env = sqlite_env().await;

    // The file is honoured: its non-loopback http issuer is refused...
    fs::write(
        env.dir().join("gatehouse.toml"),
        "issuer = \"http://file.example.com\"\n",
    )
    .unwrap();
    let line = env.fails(&["--config", "gatehouse.toml", "migrate"]);
    assert_mentions(&line, &["http://file.example.com"]);
    // ...the environment beats the file...
    let line = env
        .cmd(&["--config", "gatehouse.toml", "migrate"])
        .env("GATEHOUSE_ISSUER", "http://env.example.com")
        .fails();
    assert_mentions(&line, &["http://env.example.com"]);
    // ...and the flag beats both.
    env.cmd(&[
        "--config",
        "gatehouse.toml",
        "--issuer",
        "http://127.0.0.1:9",
        "migrate",
    ])
    .env("GATEHOUSE_ISSUER", "http://env.example.com")
    .json();

    // A server: listen comes from the file, the issuer from the flag.
    let port = free_port();
    fs::write(
        env.dir().join("server.toml"),
        format!("listen = \"127.0.0.1:{port}\"\nissuer = \"http://127.0.0.1:1\"\n"),
    )
    .unwrap();
    let issuer = format!("http://localhost:{port}");
    let mut server = env
        .cmd(&["serve", "--config", "server.toml", "--issuer", &issuer])
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["issuer"], issuer.as_str());
    let status = server.terminate();
    assert!(status.success(), "{status}");

    // The --listen flag beats the file's listen.
    fs::write(env.dir().join("listen.toml"), "listen = \"nowhere\"\n").unwrap();
    let line = env.fails(&["serve", "--config", "listen.toml"]);
    assert_mentions(&line, &["nowhere"]);
    let port = free_port();
    let mut server = env
        .cmd(&[
            "serve",
            "--config",
            "listen.toml",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &format!("http://127.0.0.1:{port}"),
        ])
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    assert!(server.terminate().success());
}

#[tokio::test]
async fn config_issuer_rules() {
    let env = sqlite_env().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");

    let line = env.fails(&[
        "serve",
        "--listen",
        &listen,
        "--issuer",
        "http://login.example.com",
    ]);
    assert_mentions(&line, &["http://login.example.com", "https", "loopback"]);
    let line = env.fails(&["--issuer", "http://login.example.com", "users", "list"]);
    assert_mentions(&line, &["https"]);
    let line = env.fails(&["--issuer", "https://login.example.com/?x=1", "migrate"]);
    assert_mentions(&line, &["query"]);
    let line = env.fails(&["--issuer", "login.example.com", "migrate"]);
    assert_mentions(&line, &["login.example.com", "absolute URL"]);
    // The refused server never listened.
    assert!(std::net::TcpListener::bind(&listen).is_ok());
}

#[tokio::test]
async fn config_key_encryption_key_rules() {
    let env = sqlite_env().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");

    // An https (production) issuer needs a KEK.
    let line = env
        .cmd(&[
            "serve",
            "--listen",
            &listen,
            "--issuer",
            "https://login.example.com",
        ])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .fails();
    assert_mentions(
        &line,
        &["GATEHOUSE_KEY_ENCRYPTION_KEY", "--key-encryption-key-file"],
    );
    let line = env
        .cmd(&["--issuer", "https://login.example.com", "keys", "list"])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .fails();
    assert_mentions(&line, &["GATEHOUSE_KEY_ENCRYPTION_KEY"]);

    // A malformed KEK is refused, even where none would be needed.
    let short = Kek::generate().to_base64url()[..40].to_owned();
    for bad in ["not a key!", "c2hvcnQ", short.as_str()] {
        let line = env
            .cmd(&["keys", "list"])
            .env("GATEHOUSE_KEY_ENCRYPTION_KEY", bad)
            .fails();
        assert_mentions(&line, &["GATEHOUSE_KEY_ENCRYPTION_KEY", "32 bytes"]);
        assert!(!line.contains(bad), "the key itself is not echoed: {line}");
    }

    // A KEK file: missing, malformed, or good.
    let line = env
        .cmd(&["--issuer", "https://login.example.com", "keys", "list"])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY_FILE", "missing.kek")
        .fails();
    assert_mentions(&line, &["missing.kek"]);
    fs::write(env.dir().join("bad.kek"), "garbage\n").unwrap();
    let line = env
        .cmd(&["--key-encryption-key-file", "bad.kek", "keys", "list"])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .fails();
    assert_mentions(&line, &["bad.kek", "32 bytes"]);
    fs::write(env.dir().join("good.kek"), format!("{}\n", env.kek)).unwrap();
    let via_file = env
        .cmd(&[
            "--issuer",
            "https://login.example.com",
            "--key-encryption-key-file",
            "good.kek",
            "keys",
            "list",
            "--json",
        ])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .json();
    // The same KEK as in the environment: the keys open either way.
    assert_eq!(env.json(&["keys", "list", "--json"]), via_file);
}

#[tokio::test]
async fn config_loopback_issuer_generates_a_development_kek() {
    let env = sqlite_env().await;
    // All defaults: sqlite://gatehouse.db in the working directory, loopback issuer, no KEK.
    let dev = |args: &[&str]| {
        env.cmd(args)
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
    };
    let out = dev(&["keys", "list", "--json"]).ok();
    let first: Value = serde_json::from_str(&out.stdout).unwrap();
    // Active and next for RS256, ES256 (the default signing_algs) and the own encryption key.
    assert_eq!(first.as_array().unwrap().len(), 6);
    let kek_file = env.dir().join("gatehouse.db.kek");
    assert!(env.dir().join("gatehouse.db").is_file());
    assert!(kek_file.is_file(), "gatehouse.db.kek beside the database");
    assert_mentions(&out.stderr, &["DEVELOPMENT ONLY", "gatehouse.db.kek"]);
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no colour codes in a piped log: {:?}",
        out.stderr
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&kek_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the KEK file is private");
    let text = fs::read_to_string(&kek_file).unwrap();
    assert!(Kek::from_base64url(&text).is_ok(), "a valid KEK: {text:?}");

    // The next run reuses it silently and opens the same keys.
    let out = dev(&["keys", "list", "--json"]).ok();
    assert!(!out.stderr.contains("DEVELOPMENT"), "{}", out.stderr);
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap(), first);
    assert_eq!(fs::read_to_string(&kek_file).unwrap(), text);

    // And it is the KEK: the same file given explicitly works too.
    let explicit = env
        .cmd(&[
            "--key-encryption-key-file",
            "gatehouse.db.kek",
            "keys",
            "list",
            "--json",
        ])
        .env_remove("GATEHOUSE_DATABASE_URL")
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .json();
    assert_eq!(explicit, first);
}

// ---------------------------------------------------------------------------
// Logs never carry secrets
// ---------------------------------------------------------------------------

/// The value of a hidden form field.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).map(|i| i + marker.len()).unwrap_or(0);
    let rest = &html[start..];
    rest[..rest.find('"').unwrap_or(0)]
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
        .replace("&#x3D;", "=")
}

/// Runs a whole login, code flow, refresh, introspection and a failed login
/// against a server logging at debug level, then searches its log for every
/// secret that crossed it: the password, the client secret, the code,
/// every token and the key-encryption key.
#[tokio::test]
async fn logs_never_contain_secrets() {
    let env = Env::new(DbKind::Sqlite).await.unwrap();
    let password = "S3cret-Pa55word-xyz";
    let wrong = "Wr0ng-Pa55word-abc";
    env.cmd(&["users", "create", "--username", "grace", "--password-stdin"])
        .stdin(&format!("{password}\n"))
        .ok();
    let redirect = "http://127.0.0.1:9/cb";
    let client = env.json(&[
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        redirect,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
    ]);
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut server = env
        .cmd(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &issuer,
        ])
        .env("GATEHOUSE_LOG", "debug")
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let loc = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();
    let abs = |l: String| {
        if l.starts_with('/') {
            format!("{issuer}{l}")
        } else {
            l
        }
    };

    // A failed login first.
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf");
    let r = browser
        .post(server.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "grace"),
            ("password", wrong),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The code flow: authorize -> login -> authorize -> consent -> authorize -> redirect.
    let verifier = "v".repeat(50);
    let challenge = "CrlVwe1WSHWuTQYh3iczmx3aS-faRx6C92k9_hNxl4A"; // S256 of 50 x 'v'
    let start = format!(
        "{issuer}/authorize?client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid%20offline_access&state=s&code_challenge={challenge}&code_challenge_method=S256"
    );
    let r = browser.get(&start).send().await.unwrap();
    let login = abs(loc(&r));
    let html = browser
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(server.url("/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("username", "grace"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = browser.get(abs(loc(&r))).send().await.unwrap();
    let html = browser
        .get(abs(loc(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(server.url("/consent"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let r = browser.get(abs(loc(&r))).send().await.unwrap();
    let back = loc(&r);
    assert!(back.starts_with(redirect), "{back}");
    let code = back
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    let token = |form: Vec<(&'static str, String)>| {
        let (http, url, id, secret) = (
            server.http.clone(),
            server.url("/token"),
            id.clone(),
            secret.clone(),
        );
        async move {
            let r = http
                .post(url)
                .basic_auth(&id, Some(&secret))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let t = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", redirect.into()),
        ("code_verifier", verifier),
    ])
    .await;
    let t2 = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", t["refresh_token"].as_str().unwrap().into()),
    ])
    .await;
    let r = server
        .http
        .post(server.url("/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", t2["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    let status = server.terminate();
    assert!(status.success());

    let log = fs::read_to_string(env.dir().join(server_log_name(&env))).unwrap_or_default();
    assert!(
        log.contains("login failed") && log.contains("login succeeded"),
        "the log is really at debug level:\n{log}"
    );
    let mut secrets = vec![
        password.to_owned(),
        wrong.to_owned(),
        secret.clone(),
        code.clone(),
        env.kek.clone(),
    ];
    for t in [&t, &t2] {
        for k in ["access_token", "refresh_token", "id_token"] {
            if let Some(v) = t[k].as_str() {
                secrets.push(v.to_owned());
                // Also any 40-character piece of it (a token split across fields).
                secrets.push(v.chars().skip(v.len() / 2).take(40).collect());
            }
        }
    }
    for s in secrets {
        assert!(
            !log.contains(&s),
            "the log contains a secret ({} chars)",
            s.len()
        );
    }
}

/// The stderr file of the only server a test started in `env`.
fn server_log_name(env: &Env) -> PathBuf {
    fs::read_dir(env.dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .find(|n| {
            n.to_string_lossy().starts_with("serve-") && n.to_string_lossy().ends_with(".stderr")
        })
        .map(PathBuf::from)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// 8. starting while the database is down
// ---------------------------------------------------------------------------

/// `serve --wait-for-database` started while PostgreSQL is down (a private
/// server of this test's own, see `pg_server.rs`): it listens at once,
/// `/healthz` 200 and `/readyz` 503, logs one line per attempt, and once
/// the database comes up turns ready and issues tokens. Without the flag
/// (and when the wait runs out) it exits with the one-line error.
#[tokio::test]
async fn serve_waits_for_the_database() {
    let Some(pg) = pg_server::PgServer::init() else {
        return;
    };
    let env = Env::on_url(pg.url());

    // Default: no waiting, the one-line error at once.
    let started = Instant::now();
    let line = env.fails(&["serve", "--listen", &format!("127.0.0.1:{}", free_port())]);
    assert_mentions(
        &line,
        &[
            "database unavailable",
            "cannot connect to PostgreSQL",
            &pg.url(),
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up at once"
    );

    // A wait that runs out: attempts logged, then the same error line last.
    let started = Instant::now();
    let out = env
        .cmd(&["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .env("GATEHOUSE_WAIT_FOR_DATABASE", "2")
        .run();
    assert!(!out.status.success(), "gave up after the wait");
    assert!(out.stdout.trim().is_empty());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(15),
        "waited {elapsed:?} for a 2 s wait"
    );
    let lines: Vec<&str> = out.stderr.trim().lines().collect();
    let last = lines.last().copied().unwrap_or("");
    assert!(last.starts_with("error: "), "{}", out.stderr);
    assert_mentions(
        last,
        &["database unavailable", "cannot connect to PostgreSQL"],
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{}",
        out.stderr
    );
    let attempts = lines
        .iter()
        .filter(|l| l.contains("cannot reach the database yet"))
        .count();
    assert!(attempts >= 2, "one line per attempt:\n{}", out.stderr);

    // The flag: started down, ready once the database is up.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = env
        .cmd(&["serve", "--listen", &listen, "--wait-for-database", "60"])
        .env("GATEHOUSE_LOG", "info")
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    let r = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503, "not ready while the database is down");
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "starting");
    let r = server
        .http
        .post(server.url("/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    // Let it fail a couple of attempts, then bring the database up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.start();
    let up = Instant::now();
    let deadline = up + Duration::from_secs(20);
    loop {
        let r = server.http.get(server.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 within 20 s of the database starting:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = server.log();
    assert!(
        log.lines()
            .filter(|l| l.contains("cannot reach the database yet"))
            .count()
            >= 2,
        "one line per attempt:\n{log}"
    );
    assert!(log.contains("reached the database"), "{log}");
    assert!(log.contains("gatehouse is serving"), "{log}");

    // The server migrated the database: the admin CLI can register a client
    // on it, which the server then serves.
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "Service",
        "--grant-type",
        "client_credentials",
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (status, body) = server.client_credentials(&id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    let log = server.log();
    let status = server.terminate();
    assert!(status.success(), "serve exited with {status}:\n{log}");
    assert_no_panic("gatehouse serve", &log);
    drop(pg);
}

/// The wait can come from the config file too; a negative one is refused.
#[tokio::test]
async fn wait_for_database_config_rules() {
    let env = sqlite_env().await;
    let file = env.dir().join("gatehouse.toml");
    fs::write(&file, "wait_for_database = -1\n").unwrap();
    let line = env.fails(&["--config", &file.to_string_lossy(), "serve"]);
    assert_mentions(&line, &["wait_for_database", "-1"]);
    let line = env
        .cmd(&["serve"])
        .env("GATEHOUSE_WAIT_FOR_DATABASE", "soon")
        .run();
    assert!(!line.status.success());
    assert!(
        line.stderr.contains("--wait-for-database"),
        "{}",
        line.stderr
    );
}

/// Access tokens live at most a day: the day keys of own tokens and sealed
/// references open for a day either side, and revocation entries last a day.
#[tokio::test]
async fn access_token_ttl_is_capped_at_a_day() {
    let env = sqlite_env().await;
    let file = env.dir().join("gatehouse.toml");
    fs::write(&file, "access_token_ttl = 172800\n").unwrap();
    let line = env.fails(&["--config", &file.to_string_lossy(), "serve"]);
    assert_mentions(&line, &["access_token_ttl", "86400", "172800"]);
}

// ---------------------------------------------------------------------------
// clients update, resources update, registration-token policies
// ---------------------------------------------------------------------------

/// `clients update` and `resources update`: the same flags as create; only
/// the flags given change, a list flag replaces the list, an empty value
/// empties it; the secret stays; bad values are refused with one line.
async fn clients_and_resources_update(env: &Env) {
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "https://app.example/cb",
        "--scope",
        "orders:read",
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"], serde_json::json!(["orders:read"]));

    let updated = env.json(&[
        "clients",
        "update",
        &id,
        "--scope",
        "orders:write",
        "--scope",
        "orders:audit",
        "--access-token-ttl",
        "120",
    ]);
    assert_eq!(updated["client_id"], id.as_str());
    assert!(updated.get("client_secret").is_none(), "{updated:#}");
    assert_eq!(
        updated["scopes"],
        serde_json::json!(["orders:write", "orders:audit"])
    );
    assert_eq!(updated["access_token_lifetime"], 120);
    assert_eq!(updated["name"], "App", "flags not given stay");
    assert_eq!(
        updated["redirect_uris"],
        serde_json::json!(["https://app.example/cb"])
    );
    let cleared = env.json(&["clients", "update", &id, "--scope", "", "--name", "App 2"]);
    assert_eq!(cleared["scopes"], serde_json::json!([]));
    assert_eq!(cleared["name"], "App 2");
    let mut stored = cleared.clone();
    stored.as_object_mut().unwrap().remove("client_id");
    assert_eq!(env.json(&["clients", "show", &id]), stored);

    let line = env.fails(&[
        "clients",
        "update",
        &id,
        "--redirect-uri",
        "http://app.example/cb",
    ]);
    assert_mentions(&line, &["https"]);
    let line = env.fails(&["clients", "update", &id, "--auth-method", "none"]);
    assert_mentions(&line, &["token_endpoint_auth_method", "cannot change"]);
    let line = env.fails(&["clients", "update", "no-such-client", "--name", "X"]);
    assert_mentions(&line, &["no-such-client"]);
    assert_eq!(
        env.json(&["clients", "show", &id]),
        stored,
        "failed updates change nothing"
    );

    fs::write(env.dir().join("api.jwk"), resource_jwk().to_string()).unwrap();
    let api = env.json(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
        "--scope",
        "orders:read",
        "--client",
        &id,
    ]);
    assert_eq!(api["clients"], serde_json::json!([id]));
    let line = env.fails(&["resources", "create", "--audience", "https://x.example"]);
    assert_mentions(&line, &["--jwk-file"]);

    let api = env.json(&[
        "resources",
        "update",
        "https://api.example",
        "--scope",
        "orders:read",
        "--scope",
        "orders:write",
        "--format",
        "opaque",
    ]);
    assert_eq!(
        api["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );
    assert_eq!(api["token_format"], "opaque");
    assert_eq!(
        api["clients"],
        serde_json::json!([id]),
        "flags not given stay"
    );
    let api = env.json(&["resources", "update", "https://api.example", "--client", ""]);
    assert_eq!(api["clients"], serde_json::json!([]));
    let line = env.fails(&[
        "resources",
        "update",
        "https://api.example",
        "--client",
        "ghost",
    ]);
    assert_mentions(&line, &["ghost"]);
    let line = env.fails(&[
        "resources",
        "update",
        "https://api.example",
        "--scope",
        "openid",
    ]);
    assert_mentions(&line, &["openid"]);
    let line = env.fails(&[
        "resources",
        "update",
        "https://nope.example",
        "--format",
        "jwe",
    ]);
    assert_mentions(&line, &["https://nope.example"]);
    let list = env.json(&["resources", "list", "--json"]);
    assert_eq!(list[0]["clients"], serde_json::json!([]));
    assert_eq!(list[0]["token_format"], "opaque");
}

/// `registration-token create --scope ... --grant-type ...` stores the
/// policy with the token; without them the default policy.
async fn registration_token_policy(env: &Env) {
    use gatehouse_storage::{model::RegistrationPolicy, Store};
    let hasher = gatehouse_keys::SecretHasher::new(&Kek::from_base64url(&env.kek).unwrap());
    let with = env
        .cmd(&[
            "registration-token",
            "create",
            "--scope",
            "orders:read",
            "--grant-type",
            "client_credentials",
        ])
        .ok()
        .stdout;
    let plain = env.cmd(&["registration-token", "create"]).ok().stdout;
    let line = env.fails(&["registration-token", "create", "--grant-type", "implicit"]);
    assert_mentions(&line, &["implicit"]);
    let line = env.fails(&["registration-token", "create", "--scope", "a b"]);
    assert_mentions(&line, &["scope"]);

    let store = Store::connect(&env.url).await.unwrap();
    assert_eq!(
        store
            .registration_token_policy(&hasher.hash(with.trim()))
            .await
            .unwrap(),
        Some(RegistrationPolicy {
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["orders:read".into()],
        })
    );
    assert_eq!(
        store
            .registration_token_policy(&hasher.hash(plain.trim()))
            .await
            .unwrap(),
        Some(RegistrationPolicy::default())
    );
    store.close().await.unwrap();
}

/// `clients create --require-pkce true|false`: stored and shown; false by
/// default; any other value is refused.
#[tokio::test]
async fn clients_create_require_pkce() {
    let env = sqlite_env().await;
    let base = [
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "https://app.example/cb",
    ];
    let strict = env.json(&[&base[..], &["--require-pkce", "true"]].concat());
    assert_eq!(strict["require_pkce"], true, "{strict:#}");
    let id = strict["client_id"].as_str().unwrap();
    assert_eq!(env.json(&["clients", "show", id])["require_pkce"], true);
    let relaxed = env.json(&[&base[..], &["--require-pkce", "false"]].concat());
    assert_eq!(relaxed["require_pkce"], false, "{relaxed:#}");
    assert_eq!(env.json(&base)["require_pkce"], false);
    // clap's usage error is its own, multi-line format.
    let out = env
        .cmd(&[&base[..], &["--require-pkce", "maybe"]].concat())
        .run();
    assert!(!out.status.success());
    assert!(out.stderr.contains("--require-pkce"), "{}", out.stderr);
    assert_eq!(
        env.json(&["clients", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
