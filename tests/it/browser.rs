//! The whole sign-in and sign-out in a real browser: headless Chromium,
//! driven by chromedriver over the W3C WebDriver protocol (plain JSON over
//! HTTP with reqwest), through the example relying party
//! (`examples/rp-web`, run in-process) and Gatehouse's own login, consent
//! and logout. Screenshots of the pages land in `tests/artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test
//! says SKIPPED, except under `CI=true`, where it fails.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use gatehouse_server::clients::ClientSpec;
use serde_json::{json, Value};

use crate::support::{spawn_app, DbKind};

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long to wait for a page or an element.
const WAIT: Duration = Duration::from_secs(10);
/// How often to look again while waiting.
const POLL: Duration = Duration::from_millis(100);
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(crate) fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// chromedriver's path, or `None` (after saying SKIPPED) when Chromium or
/// chromedriver is missing. Under `CI=true` a missing browser fails.
pub(crate) fn prerequisites() -> Option<PathBuf> {
    let driver = on_path("chromedriver");
    if Path::new(CHROMIUM).is_file() {
        if let Some(d) = driver {
            return Some(d);
        }
    }
    let why =
        "needs /usr/bin/chromium and chromedriver (apt-get install -y chromium chromium-driver)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("browser test {why}");
    }
    eprintln!("\n======== SKIPPED browser::sign_in_and_out_in_chromium: {why} ========\n");
    None
}

/// axe-core's script (`npm ci` in tests/a11y), or `None` (after saying
/// SKIPPED) when it is not installed. Under `CI=true` missing fails.
pub(crate) fn axe_source() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("a11y/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("accessibility checks need axe-core: cd tests/a11y && npm ci")
        }
        Err(_) => {
            eprintln!(
                "\n======== SKIPPED accessibility checks: cd tests/a11y && npm ci ========\n"
            );
            None
        }
    }
}

/// chromedriver as a child process in its own process group, so that
/// dropping it ends chromedriver and any browser it left behind.
pub(crate) struct ChromeDriver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl ChromeDriver {
    pub(crate) async fn start(path: &Path) -> ChromeDriver {
        use std::os::unix::process::CommandExt;
        std::fs::create_dir_all(artifacts()).unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(path)
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--log-path={}",
                    artifacts().join("chromedriver.log").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver");
            let mut driver = ChromeDriver {
                child,
                url: format!("http://127.0.0.1:{port}"),
                profile: std::env::temp_dir()
                    .join(format!("gatehouse-chromium-{}", uuid::Uuid::new_v4())),
            };
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline {
                if driver.child.try_wait().unwrap().is_some() {
                    break; // exited, e.g. the port was taken meanwhile: try another
                }
                if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await {
                    if let Ok(status) = r.json::<Value>().await {
                        if status["value"]["ready"] == true {
                            return driver;
                        }
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        }
        panic!("chromedriver did not become ready; see tests/artifacts/chromedriver.log");
    }

    /// Opens a browser window: a fresh headless Chromium profile.
    pub(crate) async fn session(&self) -> Browser {
        self.session_in(None).await
    }

    /// Opens a browser window whose user reads `languages` (Chromium's
    /// `intl.accept_languages`, e.g. `de-DE,de,en`: its Accept-Language),
    /// or the browser's own default.
    pub(crate) async fn session_in(&self, languages: Option<&str>) -> Browser {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", self.profile.display()),
        ];
        let mut options = json!({"binary": CHROMIUM, "args": args});
        if let Some(l) = languages {
            options["prefs"] = json!({ "intl.accept_languages": l });
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": options
        }}});
        let r = http
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        let id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session failed ({status}): {body}"));
        Browser {
            http,
            session: format!("{}/session/{id}", self.url),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and, if a session was not closed,
        // the browser it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One WebDriver session: a small client for the commands the test needs.
#[derive(Clone)]
pub(crate) struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    /// Sends a command; the `value` of the answer, or the WebDriver error.
    pub(crate) async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{} ({status}): {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, String> {
        self.cmd(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await.unwrap();
    }

    pub(crate) async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        v[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("not an element: {v}"))
    }

    /// Saves a PNG screenshot of the viewport as `tests/artifacts/<name>.png`.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.get("/screenshot").await.unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .unwrap();
        let path = artifacts().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Fails the test with where the browser is and what it shows.
    pub(crate) async fn fail(&self, what: &str) -> ! {
        let url = self.current_url().await;
        let shot = self.screenshot("failure").await;
        let text = self.body_text().await;
        panic!(
            "{what}; browser at {url} (screenshot {}):\n{text}",
            shot.display()
        );
    }

    /// Waits (up to 10 s) for an element matching `css` and returns it.
    pub(crate) async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.find(css).await {
                return e;
            }
            if Instant::now() > deadline {
                self.fail(&format!("no element `{css}` after {WAIT:?}"))
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits (up to 10 s) until the browser shows `path` on `origin`
    /// (any query); returns the full URL.
    pub(crate) async fn wait_for_page(&self, origin: &str, path: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.current_url().await;
            let at = url::Url::parse(&url)
                .map(|u| u.origin().ascii_serialization() == origin && u.path() == path)
                .unwrap_or(false);
            if at {
                return url;
            }
            if Instant::now() > deadline {
                self.fail(&format!("not at {origin}{path} after {WAIT:?}"))
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) async fn click(&self, css: &str) {
        let e = self.wait_for(css).await;
        self.post(&format!("/element/{e}/click"), json!({}))
            .await
            .unwrap();
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css).await;
        self.post(&format!("/element/{e}/clear"), json!({}))
            .await
            .unwrap();
        self.post(&format!("/element/{e}/value"), json!({ "text": text }))
            .await
            .unwrap();
    }

    pub(crate) async fn text_of(&self, css: &str) -> String {
        let e = self.wait_for(css).await;
        self.get(&format!("/element/{e}/text"))
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) async fn body_text(&self) -> String {
        match self.find("body").await {
            Ok(e) => self
                .get(&format!("/element/{e}/text"))
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            Err(e) => e,
        }
    }

    /// Runs axe-core (`source`, from [`axe_source`]) on the current page
    /// against WCAG 2.1 A and AA, and fails the test on any serious or
    /// critical violation, listing them. Injected through WebDriver, so the
    /// page's Content-Security-Policy is untouched.
    pub(crate) async fn check_accessibility(&self, source: &str, page: &str) {
        self.post(
            "/execute/sync",
            json!({ "script": format!("{source}\nreturn typeof axe;"), "args": [] }),
        )
        .await
        .unwrap();
        let run = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] })
              .then(r => done(r.violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.map(n => n.target.join(" ")) }))))
              .catch(e => done([{ id: "axe-error", help: String(e) }]));
        "#;
        let found = self
            .post("/execute/async", json!({ "script": run, "args": [] }))
            .await
            .unwrap();
        let found = found.as_array().cloned().unwrap_or_default();
        if !found.is_empty() {
            self.fail(&format!(
                "accessibility of {page}: {}",
                serde_json::to_string_pretty(&found).unwrap()
            ))
            .await;
        }
    }

    /// Checks the page with axe-core (when `axe` is given) and saves its
    /// screenshot as `name`.
    pub(crate) async fn look(&self, axe: Option<&str>, name: &str) {
        if let Some(source) = axe {
            self.check_accessibility(source, name).await;
        }
        self.screenshot(name).await;
    }

    /// A cookie visible to the current page, if any.
    pub(crate) async fn cookie(&self, name: &str) -> Option<Value> {
        self.get(&format!("/cookie/{name}")).await.ok()
    }

    pub(crate) async fn close(&self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}

/// The scenario, given the example app's URL and Gatehouse's.
async fn scenario(b: Browser, app: String, issuer: String) {
    // The app, signed out.
    b.goto(&format!("{app}/")).await;
    b.click("#sign-in").await;

    // Gatehouse's login page.
    b.wait_for_page(&issuer, "/login").await;
    b.wait_for("form[action='/login'] #username").await;
    let lead = b.text_of("p.lead").await;
    assert!(
        lead.contains("Example App"),
        "login page names the app: {lead}"
    );
    b.screenshot("login").await;
    b.type_into("#username", "alice").await;
    b.type_into("#password", "correct horse battery staple")
        .await;
    b.click("form[action='/login'] button[type='submit']").await;

    // Gatehouse's consent page.
    b.wait_for_page(&issuer, "/consent").await;
    b.wait_for("button[name='decision'][value='allow']").await;
    let consent = b.body_text().await;
    assert!(consent.contains("Example App"), "{consent}");
    assert!(consent.contains("alice"), "{consent}");
    b.screenshot("consent").await;
    b.click("button[name='decision'][value='allow']").await;

    // Back at the app, signed in, with the validated ID token claims.
    b.wait_for_page(&app, "/").await;
    let claims = b.text_of("#claims").await;
    b.screenshot("app-signed-in").await;
    assert!(claims.contains("preferred_username"), "{claims}");
    assert!(claims.contains("alice"), "{claims}");
    assert!(claims.contains("alice@example.com"), "{claims}");
    assert!(claims.contains(&issuer), "iss is Gatehouse: {claims}");
    assert!(b.text_of("h1").await.contains("alice Example"));
    // Gatehouse's session cookie (no __Host- prefix on an http loopback
    // issuer) shares the host with the app, so the browser shows it here.
    let gh = b
        .cookie("gatehouse_session")
        .await
        .expect("Gatehouse session cookie");
    assert_eq!(gh["httpOnly"], true, "{gh}");
    assert_eq!(gh["sameSite"], "Lax", "{gh}");

    // Sign out: the app, then Gatehouse (id_token_hint), back to the app.
    b.click("#sign-out").await;
    b.wait_for_page(&app, "/").await;
    let notice = b.text_of("#signed-out").await;
    assert!(notice.contains("signed out"), "{notice}");
    b.wait_for("#sign-in").await;
    assert!(
        b.find("#claims").await.is_err(),
        "claims gone after sign-out"
    );
    b.screenshot("app-signed-out").await;
    assert!(
        b.cookie("gatehouse_session").await.is_none(),
        "Gatehouse's session cookie is cleared"
    );

    // Gatehouse's session is over too: signing in again asks for the password.
    b.click("#sign-in").await;
    b.wait_for_page(&issuer, "/login").await;
    b.wait_for("#password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_out_in_chromium() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let gh = spawn_app(DbKind::Sqlite).await.unwrap();
    gh.create_user("alice", "correct horse battery staple")
        .await;

    // The example app on a free port, registered with Gatehouse.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app_url = format!("http://{addr}");
    let client = gh
        .create_client(ClientSpec {
            name: "Example App".into(),
            redirect_uris: vec![format!("{app_url}/callback")],
            post_logout_redirect_uris: vec![format!("{app_url}/")],
            ..ClientSpec::default()
        })
        .await;
    let config = gatehouse_example_rp::Config {
        issuer: gh.base.clone(),
        client_id: client.id.clone(),
        client_secret: client.secret.clone(),
        listen: addr,
        base_url: app_url.clone(),
    };
    let rp = tokio::spawn(gatehouse_example_rp::serve(config, listener));

    let driver = ChromeDriver::start(&driver_path).await;
    let browser = driver.session().await;
    // The scenario runs as its own task so that the browser is closed
    // cleanly even when an assertion fails.
    let run = tokio::spawn(scenario(browser.clone(), app_url, gh.base.clone())).await;
    browser.close().await;
    drop(driver);
    rp.abort();
    gh.stop().await;
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}
