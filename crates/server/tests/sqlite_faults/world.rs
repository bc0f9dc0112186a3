//! The harness: a SQLite database with a user and a confidential client
//! made by the CLI, and `gatehouse serve` processes on it.

use std::{
    io::{Read, Write},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use gatehouse_keys::Kek;
use serde_json::Value;

use gatehouse_testkit::db::{self, DbKind, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const PASSWORD: &str = "S3cret-Pa55word-xyz";
const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// 50 x 'v' and its S256 challenge.
const VERIFIER: &str = "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv";
const CHALLENGE: &str = "CrlVwe1WSHWuTQYh3iczmx3aS-faRx6C92k9_hNxl4A";

/// A SQLite database with user `grace` and a confidential client, and the
/// port its servers listen on (the same across restarts: same issuer).
pub struct World {
    db: TestDb,
    kek: String,
    port: u16,
    pub id: String,
    pub secret: String,
}

impl World {
    pub async fn new() -> World {
        let db = db::fresh(DbKind::Sqlite).await.unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut w = World {
            db,
            kek: Kek::generate().to_base64url(),
            port,
            id: String::new(),
            secret: String::new(),
        };
        let mut create = w
            .cmd(&["users", "create", "--username", "grace", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = create.stdin.take().unwrap();
        stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
        drop(stdin);
        assert!(create.wait().unwrap().success());
        let out = w
            .cmd(&[
                "clients",
                "create",
                "--name",
                "App",
                "--redirect-uri",
                REDIRECT,
            ])
            .args(["--grant-type", "authorization_code"])
            .args(["--grant-type", "refresh_token"])
            .args(["--grant-type", "client_credentials"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        w.id = v["client_id"].as_str().unwrap().to_owned();
        w.secret = v["client_secret"].as_str().unwrap().to_owned();
        w
    }

    /// `program` with only this world's environment.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GATEHOUSE_DATABASE_URL", &self.db.url)
            .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &self.kek)
            .env("GATEHOUSE_LOG", "warn");
        c
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command(BIN);
        c.args(args);
        c
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts `gatehouse serve` with SIGXFSZ ignored; stderr is collected
    /// through a pipe (a log file would itself hit a file-size limit).
    pub fn serve(&self) -> Serve {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut sh = self.command("sh");
        sh.args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\"", BIN])
            .args(["serve", "--listen", &listen, "--issuer", &self.base()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = sh.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (mut stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Serve {
            child,
            log,
            started,
        }
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Result<reqwest::Response> {
        http()
            .post(format!("{}/token", self.base()))
            .basic_auth(&self.id, Some(&self.secret))
            .form(form)
            .send()
            .await
    }

    pub async fn refresh(&self, rt: &str) -> reqwest::Response {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .await
            .unwrap()
    }

    pub async fn redeem(&self, code: &str) -> reqwest::Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await
        .unwrap()
    }

    /// A fresh browser signs `grace` in, consents, and brings back a code.
    pub async fn code(&self) -> String {
        let base = self.base();
        let browser = browser();
        let mut next = format!(
            "{base}/authorize?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid%20offline_access&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
            self.id
        );
        for _ in 0..10 {
            let r = browser.get(&next).send().await.unwrap();
            let r = if r.status().is_redirection() {
                r
            } else {
                let html = r.text().await.unwrap();
                let mut form = vec![("csrf", hidden(&html, "csrf")), ("tx", hidden(&html, "tx"))];
                let action = if html.contains("action=\"/login\"") {
                    form.push(("username", "grace".into()));
                    form.push(("password", PASSWORD.into()));
                    "/login"
                } else {
                    form.push(("decision", "allow".into()));
                    "/consent"
                };
                let url = format!("{base}{action}");
                browser.post(url).form(&form).send().await.unwrap()
            };
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            if let Some(q) = loc.strip_prefix(&format!("{REDIRECT}?")) {
                let code = q.split('&').find_map(|p| p.strip_prefix("code="));
                return code.unwrap_or_else(|| panic!("{loc}")).to_owned();
            }
            next = if loc.starts_with('/') {
                format!("{base}{loc}")
            } else {
                loc
            };
        }
        panic!("the code flow did not end");
    }

    /// Signs `grace` in from a fresh browser; the response.
    pub async fn sign_in(&self) -> reqwest::Response {
        let browser = browser();
        let url = format!("{}/login", self.base());
        let html = browser
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let form = [
            ("csrf", hidden(&html, "csrf")),
            ("username", "grace".into()),
            ("password", PASSWORD.into()),
        ];
        browser.post(&url).form(&form).send().await.unwrap()
    }

    /// The database is sound after the fault.
    pub async fn assert_sound(&self) {
        gatehouse_testkit::sqlite_sound::assert_sqlite_sound(&self.db.url).await;
    }
}

/// A running `gatehouse serve`; SIGKILLed on drop if still running.
pub struct Serve {
    child: Child,
    log: Arc<Mutex<String>>,
    pub started: Instant,
}

impl Serve {
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sets the process's soft file-size limit (`prlimit --fsize`).
    pub fn file_size_limit(&self, soft: &str) {
        let out = Command::new("prlimit")
            .args(["--pid", &self.child.id().to_string()])
            .arg(format!("--fsize={soft}:"))
            .output()
            .expect("prlimit (util-linux) must be installed");
        assert!(out.status.success(), "prlimit: {out:?}");
    }

    pub async fn wait_ready(&mut self, base: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("serve exited ({status}):\n{}", self.log());
            }
            if let Ok(r) = http().get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("serve did not become ready:\n{}", self.log());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A browser: keeps cookies, does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let Some(start) = html.find(&marker) else {
        return String::new();
    };
    let rest = &html[start + marker.len()..];
    rest[..rest.find('"').unwrap()]
        .replace("&#x2F;", "/")
        .replace("&#x3D;", "=")
        .replace("&amp;", "&")
}
