//! The device flow's limits: user codes entered at `/device` (per browser,
//! per address, counted as they start) and starts at
//! `/device_authorization` (per address, per confidential client).

use gatehouse_server::config::RawConfig;
use serde_json::Value;

use crate::support::{hidden, spawn_app_with, DbKind, TestApp, TestClient};

use super::*;

/// Wrong user codes per browser: after five in a minute the sixth try,
/// even with the right code, is a 429 page; another browser is not
/// affected, and after the minute the first may try again.
async fn wrong_codes_are_throttled_per_browser(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    let guesser = new_browser();
    for _ in 0..5 {
        let r = enter_code(app, &guesser, "BBBB-BBBB").await;
        assert_eq!(r.status(), 400);
    }
    let r = enter_code(app, &guesser, &d.user_code).await;
    assert_eq!(r.status(), 429, "even the right code is held off");
    assert_eq!(retry_after(&r), 60, "the rest of the minute");
    let held = r.text().await.unwrap();
    assert!(!held.contains("tx="), "no transaction started: {held}");

    // Another browser (same IP) enters the right code.
    let r = enter_code(app, &new_browser(), &d.user_code).await;
    assert!(path_of(&location(app, &r)).starts_with("/login?tx="));

    // A minute later the first browser may try again.
    app.clock.advance(60);
    let r = enter_code(app, &guesser, &d.user_code).await;
    assert!(path_of(&location(app, &r)).starts_with("/login?tx="));
}

/// The `Retry-After` of a 429, in seconds.
#[track_caller]
fn retry_after(r: &reqwest::Response) -> i64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Wrong user codes per client IP: twenty in a minute, from browsers each
/// below its own limit, hold off every browser of that IP; a minute later
/// they may try again.
async fn wrong_codes_are_throttled_per_ip(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    for _ in 0..4 {
        let b = new_browser();
        for _ in 0..5 {
            let r = enter_code(app, &b, "BBBB-BBBB").await;
            assert_eq!(r.status(), 400);
        }
    }
    let fresh = new_browser();
    let r = enter_code(app, &fresh, &d.user_code).await;
    assert_eq!(
        r.status(),
        429,
        "the IP is held off, even for a new browser"
    );
    assert_eq!(retry_after(&r), 60, "the rest of the minute");
    app.clock.advance(60);
    let r = enter_code(app, &fresh, &d.user_code).await;
    assert!(path_of(&location(app, &r)).starts_with("/login?tx="));
}

/// Wrong codes sent all at once from one browser are counted as they
/// start: no more than the browser's five get an answer on the code
/// (400); the rest are held off (429).
async fn concurrent_wrong_codes_are_counted_as_they_start(app: &TestApp) {
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    let browser = new_browser();
    let html = browser
        .get(app.url("/device"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf");
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let (browser, csrf, url) = (browser.clone(), csrf.clone(), app.url("/device"));
            // Well-formed codes that were never issued.
            let guess = format!("BBBB-{}", ["BBBC", "BBBD", "BBBF"][i % 3]);
            tokio::spawn(async move {
                browser
                    .post(url)
                    .form(&[("csrf", csrf.as_str()), ("user_code", guess.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    let answered = statuses.iter().filter(|s| **s == 400).count();
    assert!(
        statuses.iter().all(|s| *s == 400 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        answered <= 5,
        "{answered} wrong codes answered from one browser in a minute (limit 5): {statuses:?}"
    );
    // The right code is held off too, in that browser.
    let r = enter_code(app, &browser, &d.user_code).await;
    assert_eq!(r.status(), 429);
}

/// `POST /device_authorization` is rate-limited per client IP (with the
/// authorization requests started from it: 300 a minute) and, for a
/// confidential client, per client (600 a minute; a public client's id is
/// no secret, so anyone could use its budget up): beyond, 429
/// `too_many_requests` with `Retry-After`, until the minute is over;
/// other addresses and other clients go on. Behind a trusted proxy, so
/// that each address is a forwarded one.
async fn starts_are_rate_limited(kind: DbKind) {
    let Some(app) = spawn_app_with(
        kind,
        RawConfig {
            trusted_proxies: Some(vec!["127.0.0.0/8".into()]),
            ..RawConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let public = tv(&app).await;
    let confidential = device_client(&app, "client_secret_basic", &[DEVICE_GRANT]).await;
    let start = |c: &TestClient, ip: &str| {
        let mut req = app
            .http
            .post(app.url("/device_authorization"))
            .header("x-forwarded-for", ip)
            .form(&[("client_id", c.id.as_str()), ("scope", "openid")]);
        if let Some(s) = &c.secret {
            req = req.basic_auth(&c.id, Some(s));
        }
        req.send()
    };
    let starts = |c: &TestClient, ip: &str, n: usize| {
        let (c, ip) = (c.clone(), ip.to_owned());
        let start = &start;
        async move {
            for i in 0..n {
                let r = start(&c, &ip).await.unwrap();
                assert_eq!(r.status(), 200, "start {i} from {ip}");
            }
        }
    };
    let held_off = |r: reqwest::Response, why: &'static str| async move {
        assert_eq!(r.status(), 429, "{why}");
        let wait: i64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{why}: Retry-After {wait}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "too_many_requests", "{why}: {body}");
    };

    // One address: 300 a minute, whichever client.
    starts(&public, "203.0.113.1", 300).await;
    held_off(
        start(&confidential, "203.0.113.1").await.unwrap(),
        "the 301st from one address",
    )
    .await;
    // The public client, from elsewhere: no budget of its own.
    starts(&public, "203.0.113.2", 300).await;
    let r = start(&public, "203.0.113.3").await.unwrap();
    assert_eq!(r.status(), 200, "a public client's 601st");
    // The confidential client: 600 a minute, wherever from.
    starts(&confidential, "203.0.113.4", 300).await;
    starts(&confidential, "203.0.113.5", 300).await;
    held_off(
        start(&confidential, "203.0.113.6").await.unwrap(),
        "a confidential client's 601st, from a new address",
    )
    .await;
    let r = start(&public, "203.0.113.6").await.unwrap();
    assert_eq!(r.status(), 200, "another client from that address");
    // A minute later the first address and the confidential client may
    // start again.
    app.clock.advance(60);
    let r = start(&confidential, "203.0.113.1").await.unwrap();
    assert_eq!(r.status(), 200, "after the minute");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_are_rate_limited_sqlite() {
    starts_are_rate_limited(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_are_rate_limited_postgres() {
    starts_are_rate_limited(DbKind::Postgres).await;
}

crate::both_backends!(
    wrong_codes_are_throttled_per_browser,
    wrong_codes_are_throttled_per_ip,
    concurrent_wrong_codes_are_counted_as_they_start,
);
