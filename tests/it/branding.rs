//! An operator's branding over real HTTP: a templates directory replacing
//! `login.html` and the stylesheet, an assets directory with a logo and a
//! font served at `/assets/` (and nothing beside it, however the path is
//! written), templates refused at start-up; and the branded sign-in page
//! in headless Chromium, whose screenshot docs/branding.md shows.

use std::path::{Path, PathBuf};

use gatehouse_server::{clients::ClientSpec, config::RawConfig, views::Views};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    browser::{prerequisites, ChromeDriver},
    support::{spawn_app_with, DbKind, TestApp},
};

/// The replaced sign-in page: a whole page of its own (not extending
/// `base.html`), with everything the built-in form sends.
const LOGIN: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Sign in · Example Corp</title>
<link rel="stylesheet" href="/assets/gatehouse.css">
</head>
<body>
<main class="card" role="main">
  <header class="brand"><img class="logo" id="logo" src="/assets/logo.svg" alt="Example Corp" width="180" height="40"></header>
  <h1 id="branded-heading">Sign in to Example Corp</h1>
  {% if client_name %}<p class="lead">to continue to <strong>{{ client_name }}</strong></p>{% endif %}
  {% if busy %}<div class="alert" role="alert" id="login-error">We are busy right now. Please try again in a moment.</div>
  {% elif error %}<div class="alert" role="alert" id="login-error">{{ error }}</div>{% endif %}
  <form method="post" action="/login" novalidate>
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <input type="hidden" name="tx" value="{% if tx %}{{ tx }}{% endif %}">
    <label for="username">Username</label>
    <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="{{ username }}"{% if error %} aria-describedby="login-error"{% endif %}>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit" class="primary">Sign in</button>
  </form>
  <p class="fine">Trouble signing in? Write to it-help@example.com.</p>
</main>
<footer class="foot">Example Corp · Single sign-on</footer>
</body>
</html>
"#;

/// The operator's stylesheet: the built-in one (copied, as docs/branding.md
/// suggests) with the brand's colours and font after it.
fn stylesheet() -> String {
    format!(
        "{}\n/* Example Corp */\n\
         @font-face{{font-family:\"Brand Sans\";src:url(/assets/fonts/brand.ttf) format(\"truetype\");font-display:swap}}\n\
         :root{{--brand:#0f766e;--bg:#e6f4f1;--ink:#0b3b36}}\n\
         body{{font-family:\"Brand Sans\",system-ui,sans-serif;background:linear-gradient(160deg,#e6f4f1,#c8e9e2)}}\n\
         .card{{border-top:6px solid var(--brand)}}\n\
         .brand .logo{{display:block;height:40px;width:auto}}\n",
        include_str!("../../templates/gatehouse.css")
    )
}

/// The logo.
const LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="180" height="40" viewBox="0 0 180 40">
<rect x="0" y="4" width="32" height="32" rx="8" fill="#0f766e"/>
<path d="M9 20h14M16 13v14" stroke="#fff" stroke-width="4" stroke-linecap="round"/>
<text x="42" y="27" font-family="sans-serif" font-size="18" font-weight="700" fill="#0b3b36">Example Corp</text>
</svg>
"##;

/// What must never come back from `/assets/`.
const SECRET: &str = "not-for-the-web-5f1c";

/// An operator's directories under one temporary root: `templates/`,
/// `assets/` (the logo, a font in `fonts/`, a hidden file), and beside
/// them a secret file no request may reach.
pub(crate) struct Branding {
    root: PathBuf,
}

impl Branding {
    pub(crate) fn new() -> Branding {
        let root =
            std::env::temp_dir().join(format!("gatehouse-branding-{}", uuid::Uuid::new_v4()));
        let templates = root.join("templates");
        let fonts = root.join("assets").join("fonts");
        std::fs::create_dir_all(&templates).unwrap();
        std::fs::create_dir_all(&fonts).unwrap();
        std::fs::write(templates.join("login.html"), LOGIN).unwrap();
        std::fs::write(templates.join("gatehouse.css"), stylesheet()).unwrap();
        std::fs::write(root.join("assets").join("logo.svg"), LOGO).unwrap();
        std::fs::write(root.join("assets").join(".htpasswd"), SECRET).unwrap();
        // A real font where the system has one (Chromium's Debian package
        // brings DejaVu), else bytes that are served all the same.
        let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
            .unwrap_or_else(|_| b"\0\x01\0\0not a font".to_vec());
        std::fs::write(fonts.join("brand.ttf"), font).unwrap();
        std::fs::write(fonts.join("brand.woff2"), b"wOF2 not really").unwrap();
        std::fs::write(root.join("secret.txt"), SECRET).unwrap();
        // A link out of the directory (at a key file, say), one inside it,
        // and a FIFO, which would block whoever opened it.
        std::os::unix::fs::symlink(root.join("secret.txt"), root.join("assets").join("out.txt"))
            .unwrap();
        std::os::unix::fs::symlink(
            root.join("assets").join("logo.svg"),
            root.join("assets").join("linked.svg"),
        )
        .unwrap();
        let fifo = root.join("assets").join("pipe.txt");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        Branding { root }
    }

    pub(crate) fn templates(&self) -> PathBuf {
        self.root.join("templates")
    }

    pub(crate) fn assets(&self) -> PathBuf {
        self.root.join("assets")
    }

    pub(crate) fn config(&self) -> RawConfig {
        RawConfig {
            templates_dir: Some(self.templates()),
            assets_dir: Some(self.assets()),
            ..RawConfig::default()
        }
    }
}

impl Drop for Branding {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `GET target` written as is (no client normalizes `..` away), with the
/// status and the whole answer.
async fn raw_get(app: &TestApp, target: &str) -> (u16, String) {
    let host = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status for {target}: {answer:?}"));
    (status, answer)
}

async fn branded_pages(app: &TestApp) {
    // The replaced sign-in page, with the pages' security headers; images
    // and fonts from this origin are allowed, nothing else loosened.
    let r = app.browser.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    // (The sign-in page's one script is the passkey autofill, by its hash.)
    assert!(
        csp.starts_with(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; script-src 'sha256-"
        ) && csp.ends_with("'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("Sign in to Example Corp"), "{html}");
    assert!(
        html.contains("src=\"&#x2F;assets&#x2F;logo.svg\"")
            || html.contains("src=\"/assets/logo.svg\"")
    );

    // It works: a whole authorization through it, to the built-in consent
    // page and back to the client with a code.
    app.create_user("alice", "correct horse battery staple")
        .await;
    let c = app.web_client().await;
    let (_, challenge) = crate::support::pkce();
    let url = app.authorize_url(&c, "openid", &challenge, "");
    let back = app
        .authorize_in_browser(&url, "alice", "correct horse battery staple")
        .await;
    assert!(back.contains("code="), "{back}");

    // Pages not replaced are the built-in ones; error pages too, rendered
    // from an error the handler made without the templates at hand.
    let r = app
        .browser
        .get(app.url("/consent?tx=unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("Secured by Gatehouse"), "{html}");
    assert!(html.contains("class=\"alert\""), "{html}");

    // The replaced stylesheet.
    let r = app
        .http
        .get(app.url("/assets/gatehouse.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "public, max-age=3600");
    assert!(r.text().await.unwrap().contains("/* Example Corp */"));
}

async fn assets_are_served_with_their_types(app: &TestApp) {
    let r = app
        .http
        .get(app.url("/assets/logo.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/svg+xml");
    assert_eq!(h["cache-control"], "public, max-age=3600");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cross-origin-resource-policy"], "same-origin");
    // An SVG opened on its own runs nothing.
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(r.text().await.unwrap(), LOGO);
    // Revalidation of an unchanged file.
    let r = app
        .http
        .get(app.url("/assets/logo.svg"))
        .header("if-modified-since", h["last-modified"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    for (path, content_type) in [
        ("/assets/fonts/brand.woff2", "font/woff2"),
        ("/assets/fonts/brand.ttf", "font/ttf"),
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], content_type, "{path}");
    }
    // HEAD works; other methods do not.
    let r = app
        .http
        .head(app.url("/assets/logo.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .post(app.url("/assets/logo.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // A missing file is 404 and not cacheable.
    let r = app
        .http
        .get(app.url("/assets/missing.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("cache-control").is_none());
}

async fn nothing_outside_the_assets_dir_or_hidden_is_served(app: &TestApp) {
    // No directory listing, for the directory or one inside it.
    for dir in ["/assets", "/assets/", "/assets/fonts", "/assets/fonts/"] {
        let (status, answer) = raw_get(app, dir).await;
        assert!(
            status == 404 || (300..400).contains(&status),
            "{dir}: {answer}"
        );
        assert!(!answer.contains("brand.ttf"), "{dir} lists files: {answer}");
    }
    // `..` in every spelling, written raw so that nothing on the way
    // resolves it first.
    for target in [
        "/assets/../secret.txt",
        "/assets/../Cargo.toml",
        "/assets/fonts/../../secret.txt",
        "/assets/logo.svg/../../secret.txt",
        "/assets/./../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/%2E%2E/secret.txt",
        "/assets/%2e%2e%2fsecret.txt",
        "/assets/..%2fsecret.txt",
        "/assets/..%2Fsecret.txt",
        "/assets/fonts/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/assets/%252e%252e/secret.txt",
        "/assets/..%5csecret.txt",
        "/assets/..%c0%afsecret.txt",
        "/assets//../secret.txt",
        "/assets/%2fetc%2fpasswd",
        "/assets//etc/passwd",
    ] {
        let (status, answer) = raw_get(app, target).await;
        assert!((400..500).contains(&status), "{target}: {answer}");
        assert!(!answer.contains(SECRET), "{target}: {answer}");
        assert!(!answer.contains("[package]"), "{target}: {answer}");
        assert!(!answer.contains("root:"), "{target}: {answer}");
    }
    // A link out of the directory, a FIFO (answered at once), overlong
    // names: not found. A link inside the directory is served.
    let long = format!("/assets/{}", "a".repeat(300));
    for target in ["/assets/out.txt", "/assets/pipe.txt", long.as_str()] {
        let started = std::time::Instant::now();
        let (status, answer) = raw_get(app, target).await;
        assert_eq!(status, 404, "{target}: {answer}");
        assert!(!answer.contains(SECRET), "{target}: {answer}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
    let (status, answer) = raw_get(app, "/assets/linked.svg").await;
    assert_eq!(status, 200, "{answer}");
    // Hidden files, however the dot is written.
    for target in [
        "/assets/.htpasswd",
        "/assets/%2ehtpasswd",
        "/assets/fonts/..%2f.htpasswd",
    ] {
        let (status, answer) = raw_get(app, target).await;
        assert_eq!(status, 404, "{target}: {answer}");
        assert!(!answer.contains(SECRET), "{target}: {answer}");
    }
}

async fn branding(kind: DbKind) {
    let brand = Branding::new();
    let Some(app) = spawn_app_with(kind, brand.config()).await else {
        return;
    };
    branded_pages(&app).await;
    assets_are_served_with_their_types(&app).await;
    nothing_outside_the_assets_dir_or_hidden_is_served(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branding_on_sqlite() {
    branding(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branding_on_postgres() {
    branding(DbKind::Postgres).await;
}

/// Without an assets directory, `/assets/` has the stylesheet alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_assets_dir_only_the_stylesheet_is_served() {
    let app = crate::support::spawn_app(DbKind::Sqlite).await.unwrap();
    let r = app
        .http
        .get(app.url("/assets/gatehouse.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text().await.unwrap().contains(":root{"),
        "the built-in stylesheet"
    );
    let r = app
        .http
        .get(app.url("/assets/logo.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

/// A broken template stops the start, with the file and the problem; so
/// does an assets directory that is not one.
#[tokio::test]
async fn a_broken_template_is_a_start_up_error() {
    let brand = Branding::new();
    let login = brand.templates().join("login.html");
    let load = || {
        Views::load(Some(&brand.templates()))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(load(), Ok(()));

    std::fs::write(&login, LOGIN.replace("{{ csrf }}\">", "{{ csrf }\">")).unwrap();
    let e = load().unwrap_err();
    assert!(
        e.contains("login.html") && e.contains("line 18, column 53"),
        "{e}"
    );

    std::fs::write(&login, LOGIN.replace("{{ username }}", "{{ user.name }}")).unwrap();
    let e = load().unwrap_err();
    assert!(e.contains("login.html does not render"), "{e}");
    assert!(e.contains("Variable `user.name` not found"), "{e}");

    std::fs::write(&login, LOGIN.replace("{{ csrf }}", "")).unwrap();
    let e = load().unwrap_err();
    assert!(
        e.contains("login.html leaves out the value of `csrf`"),
        "{e}"
    );

    std::fs::write(&login, LOGIN).unwrap();
    std::fs::write(brand.templates().join("signin.html"), LOGIN).unwrap();
    let e = load().unwrap_err();
    assert!(
        e.contains("signin.html is not one of Gatehouse's templates"),
        "{e}"
    );
    std::fs::remove_file(brand.templates().join("signin.html")).unwrap();

    // The server itself refuses to start with it.
    std::fs::write(
        &login,
        "{% extends \"base.html\" %}{% block content %}{{ nope }}{% endblock content %}",
    )
    .unwrap();
    let db = gatehouse_testkit::db::fresh(DbKind::Sqlite).await.unwrap();
    let kek = gatehouse_keys::Kek::generate();
    let raw = brand.config().over(RawConfig {
        database_url: Some(db.url.clone()),
        ..RawConfig::default()
    });
    let settings =
        gatehouse_server::config::Settings::resolve(raw, Some(kek.to_base64url())).unwrap();
    let store = gatehouse_storage::Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let clock = std::sync::Arc::new(gatehouse_keys::SystemClock);
    let e =
        gatehouse_server::build_state(settings.clone(), store.clone(), kek.clone(), clock.clone())
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string();
    assert!(e.contains("login.html") && e.contains("nope"), "{e}");

    // An assets directory holding gatehouse.css (the stylesheet's path
    // would hide it), or none at all.
    std::fs::write(&login, LOGIN).unwrap();
    std::fs::write(brand.assets().join("gatehouse.css"), "").unwrap();
    let e =
        gatehouse_server::build_state(settings.clone(), store.clone(), kek.clone(), clock.clone())
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string();
    assert!(
        e.contains("assets_dir") && e.contains("templates_dir"),
        "{e}"
    );
    // An assets directory holding a key or database file: everything in it
    // is public.
    std::fs::remove_file(brand.assets().join("gatehouse.css")).unwrap();
    std::fs::write(brand.assets().join("gatehouse.db.kek"), "k").unwrap();
    let e =
        gatehouse_server::build_state(settings.clone(), store.clone(), kek.clone(), clock.clone())
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string();
    assert!(
        e.contains("gatehouse.db.kek") && e.contains("public"),
        "{e}"
    );
    let mut missing = settings;
    missing.assets_dir = Some(Path::new("/nonexistent-gatehouse-assets").to_owned());
    let e = gatehouse_server::build_state(missing, store, kek, clock)
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent-gatehouse-assets"), "{e}");
}

/// The branded sign-in page in headless Chromium: the logo and the font
/// load under the pages' Content-Security-Policy, the stylesheet applies,
/// and signing in through it works. Its screenshot is
/// `tests/artifacts/branded-login.png` (docs/images/branded-login.png).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branded_login_in_chromium() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let brand = Branding::new();
    let app = spawn_app_with(DbKind::Sqlite, brand.config())
        .await
        .unwrap();
    app.create_user("alice", "correct horse battery staple")
        .await;
    let c = app
        .create_client(ClientSpec {
            name: "Team Wiki".into(),
            redirect_uris: vec!["https://wiki.example.com/callback".into()],
            ..ClientSpec::default()
        })
        .await;
    let (_, challenge) = crate::support::pkce();
    let url = app.authorize_url(&c, "openid profile", &challenge, "");

    let driver = ChromeDriver::start(&driver_path).await;
    let b = driver.session().await;
    let run = tokio::spawn({
        let b = b.clone();
        let base = app.base.clone();
        async move {
            b.goto(&url).await;
            b.wait_for_page(&base, "/login").await;
            b.wait_for("#branded-heading").await;
            let script = |s: &str| json!({ "script": s, "args": [] });
            // Wait for the font to settle (loaded, or failed if the system
            // had no real one to copy).
            let _ = b
                .post("/execute/async", script("const done = arguments[arguments.length - 1]; document.fonts.ready.then(() => done(true));"))
                .await;
            let logo = b
                .post("/execute/sync", script("const i = document.getElementById('logo'); return [i.complete, i.naturalWidth];"))
                .await
                .unwrap();
            assert_eq!(logo, json!([true, 180]), "the logo loads under img-src 'self'");
            // Requests the CSP blocks never reach the resource timing list.
            let loaded = b
                .post("/execute/sync", script("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname);"))
                .await
                .unwrap();
            for path in ["/assets/gatehouse.css", "/assets/logo.svg", "/assets/fonts/brand.ttf"] {
                assert!(
                    loaded.as_array().unwrap().iter().any(|p| p == path),
                    "{path} was fetched: {loaded}"
                );
            }
            let accent = b
                .post("/execute/sync", script("return getComputedStyle(document.querySelector('button.primary')).backgroundColor;"))
                .await
                .unwrap();
            assert_eq!(accent, "rgb(15, 118, 110)", "the replaced stylesheet applies");
            let lead = b.text_of("p.lead").await;
            assert!(lead.contains("Team Wiki"), "{lead}");
            b.screenshot("branded-login").await;

            b.type_into("#username", "alice").await;
            b.type_into("#password", "correct horse battery staple").await;
            b.click("form[action='/login'] button[type='submit']").await;
            b.wait_for_page(&base, "/consent").await;
            b.wait_for("button[name='decision'][value='allow']").await;
            let accent = b
                .post("/execute/sync", script("return getComputedStyle(document.querySelector('button.primary')).backgroundColor;"))
                .await
                .unwrap();
            assert_eq!(accent, "rgb(15, 118, 110)", "built-in pages wear the stylesheet too");
            b.screenshot("branded-consent").await;
        }
    })
    .await;
    b.close().await;
    drop(driver);
    app.stop().await;
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}
