//! A PostgreSQL restart in the middle of traffic, against a real server.
//!
//! The outage is real: the test runs its own PostgreSQL (see
//! `crates/storage/tests/support/pg_server.rs`), stops it with
//! `pg_ctl -m fast` while client-credentials requests keep arriving, and
//! starts it again. The shared test server is never touched. While the
//! database is away Gatehouse must answer 503 (`temporarily_unavailable`
//! with `Retry-After`; a redirect with that error at `/authorize` when the
//! client is known from the cache, an HTML page with 503 when not), never a
//! 500, and fail fast: from one second into the outage every 503, JSON,
//! page or `/readyz`, within [`FAST_503`] (the store knows the database is
//! down and does not wait for it); `gatehouse_db_up` reads 0 and the 503s
//! are counted. Afterwards it must recover by itself within a probe
//! interval and a second, with nothing lost or duplicated: a refresh token
//! rotated before the outage works once, an unredeemed code redeems once,
//! a redeemed code stays redeemed.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use gatehouse_server::clients::ClientSpec;
use sea_orm::sqlx::{self, Connection as _};
use serde_json::Value;

use crate::support::{self, pg_server::PgServer, query_param, TestApp, TestClient};

/// A DB-touching request in the first second of the outage must be
/// answered within this (before the store has found the database gone, a
/// request waits at most for the probe it asks for; the pool would wait 3 s).
const FAIL_FAST: Duration = Duration::from_secs(1);
/// Every 503 from one second into the outage: the store fails at once.
const FAST_503: Duration = Duration::from_millis(50);
/// How soon the store probes a database that is down (the default).
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
const METRICS_TOKEN: &str = "outage-metrics-0123456789";

/// A 503 with the JSON error `temporarily_unavailable`, `Retry-After` and
/// no caching, answered in time.
async fn assert_unavailable_json(what: &str, started: Instant, r: reqwest::Response) {
    assert!(
        started.elapsed() < FAIL_FAST,
        "{what}: took {:?} during the outage",
        started.elapsed()
    );
    assert_eq!(r.status(), 503, "{what}");
    assert!(
        r.headers().contains_key("retry-after"),
        "{what}: Retry-After"
    );
    assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
}

async fn one_value(pg: &PgServer, sql: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    let _ = conn.close().await;
    n
}

async fn wait_ready(app: &TestApp, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not turn 200 within {within:?} of the database coming back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One sample of an unlabelled metric on `/metrics`.
async fn metric(app: &TestApp, name: &str) -> i64 {
    let body = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
        .parse()
        .unwrap()
}

/// A 503 page for a person, answered within [`FAST_503`].
fn assert_fast_page(what: &str, took: Duration, r: &reqwest::Response) {
    assert!(took < FAST_503, "{what}: 503 took {took:?}");
    assert_eq!(r.status(), 503, "{what}");
    assert!(r.headers().contains_key("retry-after"), "{what}");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{what}"
    );
}

/// Times one request.
async fn timed(req: reqwest::RequestBuilder) -> (Duration, reqwest::Response) {
    let t = Instant::now();
    let r = req.send().await.unwrap();
    (t.elapsed(), r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_traffic() {
    let Some(pg) = PgServer::init() else { return };
    pg.start();
    let app = support::configured::spawn_app_on_with(
        pg.url(),
        gatehouse_server::config::RawConfig {
            metrics_token: Some(METRICS_TOKEN.into()),
            ..Default::default()
        },
    )
    .await;
    let web = app.web_client().await;
    let svc = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        })
        .await;

    // Before the outage: a grant whose refresh token was rotated once, a
    // code redeemed, and a code issued but not redeemed yet.
    let (code, verifier) = app.code(&web, "openid offline_access", "").await;
    let first = app.redeem(&web, &code, &verifier).await;
    let r0 = first["refresh_token"].as_str().unwrap().to_owned();
    let r = app.refresh(&web, &r0).await;
    assert_eq!(r.status(), 200);
    let r1 = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pending, pending_verifier) = app.code(&web, "openid", "").await;

    // Traffic through the outage, two streams back to back: refresh-token
    // rotations on a grant of their own (each 200 moves on to the new
    // token, anything else retries the same one, as a client would), and
    // client-credentials requests (stateless: no database on their path).
    let chain_client = app.web_client().await;
    let (c, v) = app.code(&chain_client, "openid offline_access", "").await;
    let chain_start = app.redeem(&chain_client, &c, &v).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let rotations = {
        let (http, url, c, stop) = (
            app.http.clone(),
            app.url("/token"),
            chain_client.clone(),
            stop.clone(),
        );
        let mut current = chain_start.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut tokens = vec![current.clone()];
            while !stop.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let r = http
                    .post(&url)
                    .basic_auth(&c.id, c.secret.as_deref())
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &current)])
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                seen.push((Instant::now(), status, sent.elapsed()));
                if status == 200 {
                    let body: Value = r.json().await.unwrap();
                    current = body["refresh_token"].as_str().unwrap().to_owned();
                    tokens.push(current.clone());
                } else {
                    // A client pauses before it retries.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (seen, tokens)
        })
    };
    let stateless = {
        let (http, url, svc, stop) = (
            app.http.clone(),
            app.url("/token"),
            svc.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r = http
                    .post(&url)
                    .basic_auth(&svc.id, svc.secret.as_deref())
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap();
                seen.push((Instant::now(), r.status().as_u16()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A sign-in form, fetched while all is well, to submit during the outage.
    let login_page = app
        .browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = support::hidden(&login_page, "csrf");
    assert!(!csrf.is_empty());
    // An authorization transaction of this browser, started while all is
    // well, to continue during the outage.
    let (_, challenge) = support::pkce();
    let r = app
        .browser
        .get(app.authorize_url(&web, "openid", &challenge, "&prompt=login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let pending_tx = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(pending_tx.starts_with("/login?tx="), "{pending_tx}");
    // A browser signed in to the account page, for its pages and forms.
    app.create_user("erin", "pw-erin-123456").await;
    let signed = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = signed.get(app.url("/login")).send().await.unwrap();
    let signed_csrf = support::hidden(&page.text().await.unwrap(), "csrf");
    let r = signed
        .post(app.url("/login"))
        .form(&[
            ("csrf", signed_csrf.as_str()),
            ("tx", ""),
            ("username", "erin"),
            ("password", "pw-erin-123456"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/account");
    assert_eq!(metric(&app, "gatehouse_db_up").await, 1);
    let unavailable_before = metric(&app, "gatehouse_db_unavailable_responses_total").await;

    // The outage.
    // From the moment the stop begins, requests in flight may be cut off.
    let down_at = Instant::now();
    tokio::task::block_in_place(|| pg.stop());

    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.status(),
        200,
        "liveness does not depend on the database"
    );
    let (ready, refreshed, redeemed, known, unknown) = tokio::join!(
        async {
            let t = Instant::now();
            (t, app.http.get(app.url("/readyz")).send().await.unwrap())
        },
        async { (Instant::now(), app.refresh(&web, &r1).await) },
        async {
            (
                Instant::now(),
                app.redeem_response(&web, &pending, &pending_verifier).await,
            )
        },
        async {
            let (_, challenge) = support::pkce();
            let url = app.authorize_url(&web, "openid", &challenge, "");
            (Instant::now(), app.browser.get(url).send().await.unwrap())
        },
        async {
            let (_, challenge) = support::pkce();
            let stranger = TestClient {
                id: "not-cached-or-registered".into(),
                secret: None,
                redirect_uri: web.redirect_uri.clone(),
            };
            let url = app.authorize_url(&stranger, "openid", &challenge, "");
            (Instant::now(), app.browser.get(url).send().await.unwrap())
        },
    );
    assert_eq!(ready.1.status(), 503, "/readyz during the outage");
    assert!(ready.0.elapsed() < FAIL_FAST);
    assert_unavailable_json("refresh", refreshed.0, refreshed.1).await;
    assert_unavailable_json("code redemption", redeemed.0, redeemed.1).await;

    // A known client: back to its redirect URI with the error and state.
    let (t, r) = known;
    assert!(t.elapsed() < FAIL_FAST);
    assert_eq!(r.status(), 303, "/authorize for a cached client");
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(&web.redirect_uri), "{loc}");
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.state.settings.issuer.as_str())
    );
    assert!(query_param(&loc, "code").is_none());
    // A client that is not in the cache cannot be checked: a page, never a redirect.
    let (t, r) = unknown;
    assert!(t.elapsed() < FAIL_FAST);
    assert_eq!(r.status(), 503, "/authorize for an unknown client");
    assert!(r.headers().get("location").is_none());
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("temporarily unavailable"), "{page}");
    for leak in ["sqlx", "PostgreSQL", "Connection refused", "pool"] {
        assert!(!page.contains(leak), "the page leaks {leak:?}");
    }
    // A signed-out browser (no cookies): the transaction cannot be
    // stored, so the known client hears temporarily_unavailable.
    let (_, challenge) = support::pkce();
    let (took, r) = timed(
        app.http
            .get(app.authorize_url(&web, "openid", &challenge, "")),
    )
    .await;
    assert!(took < FAIL_FAST, "signed-out /authorize took {took:?}");
    assert_eq!(r.status(), 303, "signed-out /authorize for a cached client");
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(&web.redirect_uri), "{loc}");
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st"));
    // A person signing in meets the same page, not an API's JSON.
    let t = Instant::now();
    let r = app
        .browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "dave"),
            ("password", "pw-dave-123456"),
        ])
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() < FAIL_FAST);
    assert_eq!(r.status(), 503, "POST /login during the outage");
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("temporarily unavailable"));

    // From one second into the outage: every 503 at once, each measured.
    tokio::time::sleep(
        (down_at + Duration::from_secs(1)).saturating_duration_since(Instant::now()),
    )
    .await;
    let fast_from = Instant::now();
    for round in 0..5 {
        let (took, r) = timed(app.http.get(app.url("/readyz"))).await;
        assert_eq!(r.status(), 503, "/readyz");
        assert!(took < FAST_503, "/readyz took {took:?}");
        let t = Instant::now();
        let r = app.refresh(&web, &r1).await;
        let took = t.elapsed();
        assert!(took < FAST_503, "refresh: 503 took {took:?}");
        assert_unavailable_json("refresh", t, r).await;
        let t = Instant::now();
        let r = app.redeem_response(&web, &pending, &pending_verifier).await;
        let took = t.elapsed();
        assert!(took < FAST_503, "code redemption: 503 took {took:?}");
        assert_unavailable_json("code redemption", t, r).await;
        let login = app.browser.post(app.url("/login")).form(&[
            ("csrf", csrf.as_str()),
            ("username", "dave"),
            ("password", "pw-dave-123456"),
        ]);
        let (took, r) = timed(login).await;
        assert_fast_page("POST /login", took, &r);
        // A transaction cannot even be looked up: a fast page, never a 500.
        let consent = pending_tx.replace("/login?", "/consent?");
        let (took, r) = timed(app.browser.get(app.url(&consent))).await;
        assert_fast_page("GET /consent", took, &r);
        // The account and second-factor pages and their forms: a page.
        for path in ["/account", "/login/second-factor"] {
            let (took, r) = timed(signed.get(app.url(path))).await;
            assert_fast_page(path, took, &r);
        }
        for path in ["/account/totp/begin", "/login/second-factor"] {
            let form = signed
                .post(app.url(path))
                .form(&[("csrf", signed_csrf.as_str()), ("code", "123456")]);
            let (took, r) = timed(form).await;
            assert_fast_page(path, took, &r);
        }
        let (took, r) = timed(app.browser.get(app.url("/logout"))).await;
        assert_fast_page("GET /logout", took, &r);
        let page = r.text().await.unwrap();
        assert!(
            page.contains("temporarily unavailable"),
            "round {round}: {page}"
        );
        let (_, challenge) = support::pkce();
        let stranger = TestClient {
            id: "not-cached-or-registered".into(),
            secret: None,
            redirect_uri: web.redirect_uri.clone(),
        };
        let url = app.authorize_url(&stranger, "openid", &challenge, "");
        let (took, r) = timed(app.browser.get(url)).await;
        assert_fast_page("/authorize for an unknown client", took, &r);
    }
    assert_eq!(
        metric(&app, "gatehouse_db_up").await,
        0,
        "during the outage"
    );
    let unavailable_during = metric(&app, "gatehouse_db_unavailable_responses_total").await;
    // At least the 45 pages and JSON answers of the rounds above.
    assert!(
        unavailable_during >= unavailable_before + 45,
        "503s counted: {unavailable_before} before, {unavailable_during} during"
    );

    // Back up, and nothing to do but wait: ready within a probe interval
    // and a second of the server accepting connections.
    tokio::task::block_in_place(|| pg.start());
    let up_at = Instant::now();
    wait_ready(&app, PROBE_INTERVAL + Duration::from_secs(1)).await;
    // Traffic recovers too.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    let (seen, tokens) = rotations.await.unwrap();
    eprintln!(
        "rotations: {} requests, {} rotations, {} answered 503",
        seen.len(),
        tokens.len() - 1,
        seen.iter().filter(|(_, s, _)| *s == 503).count()
    );
    let slow: Vec<_> = seen
        .iter()
        .filter(|(at, s, took)| {
            *s == 503 && *at > fast_from + *took && *at < up_at && *took >= FAST_503
        })
        .collect();
    assert!(
        slow.is_empty(),
        "rotations: slow 503s in the outage: {slow:?}"
    );
    assert!(
        seen.iter()
            .any(|(at, s, took)| *s == 503 && *at > fast_from + *took && *at < up_at),
        "rotations: 503s measured in the outage"
    );
    let odd: Vec<_> = seen
        .iter()
        .filter(|(_, s, _)| ![200, 503].contains(s))
        .collect();
    assert!(
        odd.is_empty(),
        "rotations: only 200 and 503, never anything else: {odd:?}"
    );
    assert!(
        seen.iter().any(|(t, s, _)| *s == 503 && *t > down_at),
        "rotations saw the outage"
    );
    assert!(
        seen.iter().any(|(t, s, _)| *s == 200 && *t > up_at),
        "rotations recovered by themselves"
    );
    assert!(
        seen.iter().all(|(t, s, _)| *s == 200 || *t > down_at),
        "no failure before the outage"
    );
    // Every successor handed out is new, and each rotation stored exactly
    // one: a rotation cut off by the restart either never happened or was
    // answered again with the same successor.
    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "a successor handed out twice");
    assert_eq!(
        one_value(
            &pg,
            &format!(
                "SELECT count(*) FROM refresh_tokens WHERE client_id = '{}'",
                chain_client.id
            )
        )
        .await,
        i64::try_from(tokens.len()).unwrap(),
        "stored refresh tokens = tokens the client saw"
    );
    // The last one works.
    let last = tokens.last().unwrap();
    assert_eq!(app.refresh(&chain_client, last).await.status(), 200);
    let seen = stateless.await.unwrap();
    assert!(
        seen.iter().all(|(_, s)| *s == 200),
        "client credentials (no database on the path) kept working: {:?}",
        seen.iter().filter(|(_, s)| *s != 200).collect::<Vec<_>>()
    );

    // The refresh token rotated before the outage works, once.
    let r = app.refresh(&web, &r1).await;
    assert_eq!(r.status(), 200, "r1 after the outage");
    let r2 = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(r2, r1);
    // Nothing was written twice: the family holds r0, r1, r2 and no more.
    assert_eq!(
        one_value(
            &pg,
            &format!(
                "SELECT count(*) FROM refresh_tokens WHERE client_id = '{}'",
                web.id
            )
        )
        .await,
        3,
        "one stored refresh token per rotation"
    );
    // Past the grace window, r1 again is still a retry while r2 is unused
    // (a confidential client: no time limit) ...
    app.clock
        .advance(app.state.settings.lifetimes.refresh_grace + 1);
    let r = app.refresh(&web, &r1).await;
    assert_eq!(r.status(), 200, "a late retry of a confidential client");
    assert_eq!(
        r.json::<Value>().await.unwrap()["refresh_token"].as_str(),
        Some(r2.as_str())
    );
    // ... and reuse once r2 was used: refused, and the family ends.
    assert_eq!(app.refresh(&web, &r2).await.status(), 200);
    let r = app.refresh(&web, &r1).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // The code refused during the outage redeems now, once.
    let r = app.redeem_response(&web, &pending, &pending_verifier).await;
    assert_eq!(r.status(), 200, "the pending code after the outage");
    let r = app.redeem_response(&web, &pending, &pending_verifier).await;
    assert_eq!(r.status(), 400, "a code redeems once");
    // And the code redeemed before the outage stays redeemed.
    let r = app.redeem_response(&web, &code, &verifier).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let web_codes = format!(
        "SELECT count(*) FROM authorization_codes WHERE client_id = '{}'",
        web.id
    );
    assert_eq!(
        one_value(&pg, &format!("{web_codes} AND consumed_at IS NOT NULL")).await,
        2
    );
    assert_eq!(
        one_value(&pg, &web_codes).await,
        2,
        "the /authorize refused during the outage stored no code"
    );

    // A fresh browser flow works end to end again.
    let (code3, verifier3) = app.code(&web, "openid", "").await;
    app.redeem(&web, &code3, &verifier3).await;

    assert_eq!(metric(&app, "gatehouse_db_up").await, 1, "after the outage");
    assert!(metric(&app, "gatehouse_db_unavailable_responses_total").await >= unavailable_during);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("status=\"500\""),
        "no request failed with 500:\n{metrics}"
    );
    app.stop().await;
    drop(pg);
}
