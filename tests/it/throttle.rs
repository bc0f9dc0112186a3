//! Throttling that nobody can turn against someone else: sign-in failures
//! keyed on (account, client IP) with a per-account limit that only the
//! account's own device cookies get past; the client IP taken from
//! `X-Forwarded-For` only behind trusted proxies; clients with the right
//! credentials never throttled; concurrent guesses counted as they start.

use std::sync::Arc;

use gatehouse_server::{clients::ClientSpec, config::RawConfig};
use josekit::{
    jws::{JwsHeader, HS256},
    jwt::JwtPayload,
};
use reqwest::cookie::Jar;

use crate::support::{hidden, spawn_app_with, DbKind, TestApp};

/// Failures per account from browsers without its device cookie before
/// they are held off (crates/server/src/throttle.rs).
const ACCOUNT_LIMIT: usize = 20;

fn browser_with(jar: Option<Arc<Jar>>) -> reqwest::Client {
    let b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    match jar {
        Some(j) => b.cookie_provider(j),
        None => b.cookie_store(true),
    }
    .build()
    .unwrap()
}

/// Posts the sign-in form from `browser` (which keeps cookies), optionally
/// through a proxy that says the client is `xff`.
async fn sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    username: &str,
    password: &str,
    xff: Option<&str>,
) -> reqwest::Response {
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut req = browser.post(app.url("/login")).form(&[
        ("csrf", hidden(&html, "csrf").as_str()),
        ("username", username),
        ("password", password),
    ]);
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap()
}

async fn strangers_cannot_lock_out_the_accounts_own_browser(app: &TestApp) {
    app.create_user("ivy", "pw-ivy-123456").await;
    // Ivy signs in once on her browser: it gets a device cookie.
    let r = sign_in(app, &app.browser, "ivy", "pw-ivy-123456", None).await;
    assert_eq!(r.status(), 303);
    let device = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gatehouse_device="))
        .expect("a device cookie after a successful sign-in");
    assert!(
        device.contains("HttpOnly") && device.contains("Max-Age=31536000"),
        "{device}"
    );

    // A stranger (same IP here) guesses until the account limit is reached,
    // waiting out each delay.
    let stranger = browser_with(None);
    for _ in 0..ACCOUNT_LIMIT {
        let r = sign_in(app, &stranger, "ivy", "wrong", None).await;
        assert_eq!(r.status(), 401);
        app.clock.advance(301);
    }
    // Now browsers without Ivy's device cookie are held off, even with the
    // right password ...
    let r = sign_in(app, &stranger, "ivy", "pw-ivy-123456", None).await;
    assert_eq!(r.status(), 429);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 300 && wait <= 900, "{wait}");
    assert!(r.text().await.unwrap().contains("Too many failed attempts"));
    let new_browser = browser_with(None);
    let r = sign_in(app, &new_browser, "ivy", "pw-ivy-123456", None).await;
    assert_eq!(r.status(), 429, "a browser Ivy never signed in on");
    // ... a forged device cookie does not help ...
    let jar = Arc::new(Jar::default());
    let forged = format!("gatehouse_device={}.AAAAAAAAAAAAAAAAAAAAAA.forged", 1_000);
    jar.add_cookie_str(&forged, &app.base.parse().unwrap());
    let r = sign_in(app, &browser_with(Some(jar)), "ivy", "pw-ivy-123456", None).await;
    assert_eq!(r.status(), 429, "a forged device cookie");
    // ... nor does another account's device cookie.
    app.create_user("jay", "pw-jay-123456").await;
    let jays = browser_with(None);
    assert_eq!(
        sign_in(app, &jays, "jay", "pw-jay-123456", None)
            .await
            .status(),
        303
    );
    let r = sign_in(app, &jays, "ivy", "pw-ivy-123456", None).await;
    assert_eq!(r.status(), 429, "jay's device cookie is not ivy's");
    // Ivy's own browser still gets in.
    let r = sign_in(app, &app.browser, "ivy", "pw-ivy-123456", None).await;
    assert_eq!(
        r.status(),
        303,
        "the account's own device is not locked out"
    );
}

async fn concurrent_guesses_are_counted_as_they_start(app: &TestApp) {
    app.create_user("lou", "pw-lou-123456").await;
    let browser = browser_with(None);
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf");
    let guesses = (0..24).map(|i| {
        let (browser, csrf, url) = (browser.clone(), csrf.clone(), app.url("/login"));
        async move {
            browser
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", "lou"),
                    ("password", &format!("guess-{i}")),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        statuses.iter().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        (1..=6).contains(&checked),
        "at most the free failures and the one that engages the delay are checked: {statuses:?}"
    );
}

/// Runs the futures concurrently (each on its own task).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<u16>
where
    F: std::future::Future<Output = u16> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn clients_with_the_right_credentials_are_never_throttled(app: &TestApp) {
    // client_secret_basic
    let c = app
        .create_client(ClientSpec {
            name: "machine".into(),
            grant_types: vec!["client_credentials".into()],
            ..ClientSpec::default()
        })
        .await;
    let basic = |secret: String| {
        let (http, url, id) = (app.http.clone(), app.url("/token"), c.id.clone());
        async move {
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..10 {
        basic("wrong".into()).await;
    }
    let r = basic("wrong".into()).await;
    assert_eq!(r.status(), 429, "wrong secrets are held off");
    assert!(r.headers().contains_key("retry-after"));
    let r = basic(c.secret.clone().unwrap()).await;
    assert_eq!(r.status(), 200, "the right secret is not");

    // client_secret_jwt: wrong MACs are held off, a valid assertion is not.
    let c = app
        .create_client(ClientSpec {
            name: "hmac machine".into(),
            grant_types: vec!["client_credentials".into()],
            auth_method: Some("client_secret_jwt".into()),
            ..ClientSpec::default()
        })
        .await;
    let secret = c.secret.clone().unwrap();
    let assertion = |key: &str, jti: &str| {
        let mut p = JwtPayload::new();
        let now = app.state.now();
        for (k, v) in [
            ("iss", &c.id),
            ("sub", &c.id),
            ("aud", &app.state.settings.issuer),
        ] {
            p.set_claim(k, Some(v.as_str().into())).unwrap();
        }
        p.set_claim("exp", Some((now + 60).into())).unwrap();
        p.set_claim("jti", Some(jti.into())).unwrap();
        let signer = HS256.signer_from_bytes(key.as_bytes()).unwrap();
        josekit::jwt::encode_with_signer(&p, &JwsHeader::new(), &signer).unwrap()
    };
    let post = |jwt: String| {
        let (http, url) = (app.http.clone(), app.url("/token"));
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", jwt.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let wrong_key = "w".repeat(64);
    for i in 0..10 {
        post(assertion(&wrong_key, &format!("bad-{i}"))).await;
    }
    assert_eq!(post(assertion(&wrong_key, "bad-last")).await, 429);
    assert_eq!(post(assertion(&secret, "good")).await, 200);
}

crate::both_backends!(
    strangers_cannot_lock_out_the_accounts_own_browser,
    concurrent_guesses_are_counted_as_they_start,
    clients_with_the_right_credentials_are_never_throttled
);

/// Behind a trusted proxy the client IP is the rightmost `X-Forwarded-For`
/// entry the proxies did not write: one client's failures do not slow
/// another client down, and entries a client makes up do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_ip_comes_from_trusted_proxies_only() {
    let app = spawn_app_with(
        DbKind::Sqlite,
        RawConfig {
            trusted_proxies: Some(vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()]),
            ..RawConfig::default()
        },
    )
    .await
    .unwrap();
    app.create_user("kim", "pw-kim-123456").await;
    let attacker = browser_with(None);
    for _ in 0..6 {
        let r = sign_in(&app, &attacker, "kim", "wrong", Some("203.0.113.9")).await;
        assert_eq!(r.status(), 401);
    }
    let r = sign_in(&app, &attacker, "kim", "pw-kim-123456", Some("203.0.113.9")).await;
    assert_eq!(r.status(), 429, "the guessing address is held off");
    // Making up an address on the left does not escape (a second proxy hop
    // on the right is trusted and skipped).
    let spoofed = "198.51.100.7, 203.0.113.9, 10.1.2.3";
    let r = sign_in(&app, &attacker, "kim", "pw-kim-123456", Some(spoofed)).await;
    assert_eq!(r.status(), 429, "made-up entries are not believed");
    // Kim, from her own address and a browser new to her, gets in.
    let kim = browser_with(None);
    let r = sign_in(&app, &kim, "kim", "pw-kim-123456", Some("198.51.100.7")).await;
    assert_eq!(r.status(), 303, "another address is not slowed down");
    app.stop().await;
}

/// Without trusted proxies `X-Forwarded-For` is ignored: changing it does
/// not give a guesser a fresh budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_without_trusted_proxies() {
    let app = spawn_app_with(DbKind::Sqlite, RawConfig::default())
        .await
        .unwrap();
    app.create_user("max", "pw-max-123456").await;
    let attacker = browser_with(None);
    for i in 0..6 {
        let xff = format!("203.0.113.{i}");
        let r = sign_in(&app, &attacker, "max", "wrong", Some(&xff)).await;
        assert_eq!(r.status(), 401);
    }
    let r = sign_in(&app, &attacker, "max", "wrong", Some("192.0.2.200")).await;
    assert_eq!(r.status(), 429);
    app.stop().await;
}
