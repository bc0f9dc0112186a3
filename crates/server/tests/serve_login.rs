//! Sign-in against a real `gatehouse serve` process: memory stays bounded
//! under a burst of concurrent sign-ins (argon2 behind a per-core gate,
//! the rest turned away with 503), and every security event leaves one
//! `gatehouse::audit` line carrying no secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::Write,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use gatehouse_keys::Kek;
use gatehouse_testkit::db::{self, DbKind, TestDb};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A `gatehouse serve` on a fresh SQLite database; killed on drop.
struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
    kek: String,
    db: TestDb,
}

impl Serve {
    /// Creates user `alice` and, if asked, a client_credentials client
    /// (its id and secret), then starts serving with `log_filter`.
    async fn start(log_filter: &str, with_client: bool) -> (Serve, Option<(String, String)>) {
        let db = db::fresh(DbKind::Sqlite).await.unwrap();
        let kek = Kek::generate().to_base64url();
        let cmd = |args: &[&str]| {
            let mut c = Command::new(BIN);
            c.args(args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("GATEHOUSE_DATABASE_URL", &db.url)
                .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &kek)
                .env("GATEHOUSE_LOG", "warn");
            c
        };
        let mut create = cmd(&["users", "create", "--username", "alice", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        create
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(create.wait().unwrap().success());
        let client = with_client.then(|| {
            let out = cmd(&[
                "clients",
                "create",
                "--name",
                "machine",
                "--grant-type",
                "client_credentials",
            ])
            .output()
            .unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            (
                v["client_id"].as_str().unwrap().to_owned(),
                v["client_secret"].as_str().unwrap().to_owned(),
            )
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let log =
            std::env::temp_dir().join(format!("gatehouse-serve-{}.log", uuid::Uuid::new_v4()));
        let child = cmd(&[
            "--log-format",
            "json",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &base,
        ])
        .env("GATEHOUSE_LOG", log_filter)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
        let mut serve = Serve {
            child,
            base,
            log,
            kek: kek.clone(),
            db,
        };
        serve.wait_healthy().await;
        (serve, client)
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("serve exited ({status}):\n{}", self.log());
            }
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.base)).await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not become healthy:\n{}", self.log());
    }

    /// Runs an admin command on the same database and KEK, with JSON logs
    /// at `log_filter`; returns its stderr.
    fn admin(&self, args: &[&str], log_filter: &str) -> String {
        let out = Command::new(BIN)
            .arg("--log-format")
            .arg("json")
            .args(args)
            .env_clear()
            .env("GATEHOUSE_DATABASE_URL", &self.db.url)
            .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &self.kek)
            .env("GATEHOUSE_LOG", log_filter)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?} failed: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process's peak resident set (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// The CSRF token of a fresh browser (its cookie has the same value).
    async fn csrf(&self, http: &reqwest::Client) -> String {
        let r = http
            .get(format!("{}/login", self.base))
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        let value = cookie.split(';').next().unwrap();
        value.strip_prefix("gatehouse_csrf=").unwrap().to_owned()
    }

    /// One sign-in with `csrf` (cookie and field) and extra cookies.
    async fn sign_in(
        &self,
        http: &reqwest::Client,
        csrf: &str,
        cookies: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        http.post(format!("{}/login", self.base))
            .header("cookie", format!("gatehouse_csrf={csrf}{cookies}"))
            .form(&[
                ("csrf", csrf),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

const PASSWORD: &str = "S3cret-Pa55word-xyz";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// 500 concurrent sign-ins with the right password: the server's peak RSS
/// stays under 100 MiB; each sign-in that got to check its password
/// succeeds (303), the others are told to come back (503, Retry-After,
/// the busy message on the sign-in page).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_sign_ins_keeps_memory_bounded() {
    let (serve, _) = Serve::start("warn", false).await;
    let http = client();
    let csrf = serve.csrf(&http).await;
    let before = serve.peak_rss_kib();
    let started = Instant::now();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let (http, csrf, url) = (http.clone(), csrf.clone(), format!("{}/login", serve.base));
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("cookie", format!("gatehouse_csrf={csrf}"))
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("username", "alice"),
                        ("password", PASSWORD),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").is_some();
                let body = r.text().await.unwrap_or_default();
                (status, retry, body)
            })
        })
        .collect();
    let (mut ok, mut busy) = (0, 0);
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            303 => ok += 1,
            503 => {
                assert!(retry, "503 without Retry-After");
                assert!(
                    body.contains("busy right now") && body.contains("try again in a moment"),
                    "the sign-in page says it is busy: {body}"
                );
                assert!(
                    body.contains("action=\"/login\""),
                    "the form is shown again"
                );
                busy += 1;
            }
            other => panic!("a sign-in got {other}: {body}"),
        }
    }
    let elapsed = started.elapsed();
    let peak = serve.peak_rss_kib();
    assert!(ok >= 1, "some sign-ins got through ({busy} busy)");
    assert_eq!(ok + busy, 500);
    assert!(
        elapsed < Duration::from_secs(60),
        "the burst took {elapsed:?}"
    );
    assert!(
        peak < 100 * 1024,
        "peak RSS {peak} KiB (before the burst {before} KiB; {ok} signed in, {busy} busy)"
    );
    println!("peak RSS {peak} KiB (before {before} KiB); {ok} signed in, {busy} turned away in {elapsed:?}");
}

/// The audit lines of a log written with `--log-format json`.
fn audit_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "gatehouse::audit")
        .map(|v| serde_json::from_str(v["fields"]["message"].as_str().unwrap()).unwrap())
        .collect()
}

/// Sign-in success and failure and the throttle engaging (for an account
/// and for a client) each leave one `gatehouse::audit` line of the
/// documented schema, even when the rest of the log is at warn, and no
/// line holds a password, a typed username, a cookie or a client secret.
#[tokio::test]
async fn security_events_leave_audit_lines_without_secrets() {
    let (serve, client_creds) = Serve::start("warn,gatehouse::audit=info", true).await;
    let (client_id, client_secret) = client_creds.unwrap();
    let http = client();
    let csrf = serve.csrf(&http).await;
    let typed_unknown = "Wr0ng-Typed-Username";
    let wrong = "Wr0ng-Pa55word-abc";
    assert_eq!(
        serve
            .sign_in(&http, &csrf, "", typed_unknown, wrong)
            .await
            .status(),
        401
    );
    let r = serve.sign_in(&http, &csrf, "", "alice", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let device = cookies
        .iter()
        .find(|c| c.starts_with("gatehouse_device="))
        .unwrap();
    let with_device = format!("; {device}");
    assert_eq!(
        serve
            .sign_in(&http, &csrf, &with_device, "alice", PASSWORD)
            .await
            .status(),
        303
    );
    for _ in 0..6 {
        assert_eq!(
            serve
                .sign_in(&http, &csrf, "", "alice", wrong)
                .await
                .status(),
            401
        );
    }
    for _ in 0..6 {
        let r = http
            .post(format!("{}/token", serve.base))
            .basic_auth(&client_id, Some("wrong-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = http
        .post(format!("{}/token", serve.base))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The lines are written as the events happen; give the writer a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = serve.log();
    let lines = audit_lines(&log);
    let of =
        |event: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event"] == event).collect() };
    for l in &lines {
        assert_eq!(l["audit"], 1, "{l}");
        assert!(l["at"].as_i64().unwrap() > 1_700_000_000, "{l}");
    }
    let failed = of("sign_in_failed");
    assert_eq!(failed.len(), 7, "{lines:?}");
    assert_eq!(failed[0]["reason"], "unknown_account");
    assert_eq!(failed[0]["user_id"], Value::Null);
    assert_eq!(failed[0]["ip"], "127.0.0.1");
    assert_eq!(failed[1]["reason"], "wrong_password");
    let alice = failed[1]["user_id"].as_str().unwrap().to_owned();
    let succeeded = of("sign_in_succeeded");
    assert_eq!(succeeded.len(), 2, "{lines:?}");
    assert_eq!(succeeded[0]["user_id"], alice.as_str());
    assert_eq!(succeeded[0]["known_device"], false);
    assert_eq!(succeeded[1]["known_device"], true);
    let engaged = of("throttle_engaged");
    assert_eq!(engaged.len(), 2, "{lines:?}");
    assert_eq!(engaged[0]["scope"], "account_ip");
    assert_eq!(engaged[0]["user_id"], alice.as_str());
    assert_eq!(engaged[0]["retry_after"], 1);
    assert_eq!(engaged[1]["scope"], "client");
    assert_eq!(engaged[1]["client_id"], client_id.as_str());

    // A forced logout (an admin command) leaves its line too.
    let stderr = serve.admin(
        &["sessions", "revoke", "--user", "alice"],
        "warn,gatehouse::audit=info",
    );
    let forced = audit_lines(&stderr);
    assert_eq!(forced.len(), 1, "{stderr}");
    assert_eq!(forced[0]["event"], "forced_logout");
    assert_eq!(forced[0]["user_id"], alice.as_str());
    assert_eq!(forced[0]["sessions_ended"], 2);

    let mut secrets = vec![
        PASSWORD.to_owned(),
        wrong.to_owned(),
        typed_unknown.to_owned(),
        typed_unknown.to_lowercase(),
        client_secret,
        csrf,
    ];
    secrets.extend(
        cookies
            .iter()
            .map(|c| c.split_once('=').unwrap().1.to_owned()),
    );
    for s in secrets {
        assert!(
            !log.contains(&s),
            "the log holds a secret ({} chars):\n{log}",
            s.len()
        );
    }
}

/// A `trusted_proxies` entry that is not a CIDR is refused with one line
/// naming it; a valid list (environment, comma-separated) is accepted.
#[test]
fn trusted_proxies_must_be_cidrs() {
    let run = |value: &str| {
        let dir = std::env::temp_dir().join(format!("gatehouse-tp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(BIN)
            .args(["users", "list", "--json"])
            .current_dir(&dir)
            .env_clear()
            .env("GATEHOUSE_DATABASE_URL", "sqlite://gh.db?mode=rwc")
            .env("GATEHOUSE_LOG", "warn")
            .env("GATEHOUSE_TRUSTED_PROXIES", value)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        out
    };
    let out = run("10.0.0.0/8,10.0.0.0/40");
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: trusted_proxies:") && err.contains("10.0.0.0/40"),
        "{err}"
    );
    let out = run("10.0.0.0/8, fd00::/8,192.0.2.7");
    assert!(out.status.success(), "{out:?}");
}
