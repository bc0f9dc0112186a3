//! A full SQLite database under a running server, through real HTTP.
//!
//! The fault is real: `Store::sqlite_page_limit` sets SQLite's
//! `PRAGMA max_page_count` on every connection of the server's own pool, so
//! a write that needs a new page fails with SQLITE_FULL exactly as on a
//! full disk (writes that fit in pages the file already has still succeed,
//! as they would). Writes (refresh rotations, code issuance and redemption,
//! sign-ins) must answer 503 `temporarily_unavailable` with `Retry-After`,
//! never 500, and spend nothing (the refresh token and the code of a 503
//! work afterwards); reads go on; once the limit is lifted traffic resumes
//! and the file passes `PRAGMA integrity_check`. (An I/O error, SQLITE_IOERR, is
//! caused for real on a `gatehouse serve` process: see
//! crates/server/tests/sqlite_faults.rs.)

use gatehouse_server::clients::ClientSpec;
use serde_json::Value;

use crate::support::{
    hidden, introspect, query_param, spawn_app, userinfo_status, DbKind, TestApp,
};

/// More fresh writes of one kind than a full file can take: each needs
/// room, and the free room in the pages the file already has runs out.
const WRITES_UNTIL_FULL: usize = 300;

/// A 503 with the JSON error `temporarily_unavailable`, `Retry-After` and no caching.
async fn assert_unavailable_json(what: &str, r: reqwest::Response) {
    assert_eq!(r.status(), 503, "{what}");
    assert!(r.headers().contains_key("retry-after"), "{what}");
    assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
}

/// One sign-in of `dave` from a fresh browser; the response.
async fn sign_in(app: &TestApp) -> reqwest::Response {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("username", "dave"),
            ("password", "pw-dave-123456"),
        ])
        .send()
        .await
        .unwrap()
}

/// The database is sound after the fault.
async fn assert_sound(app: &TestApp) {
    crate::support::sqlite_sound::assert_sqlite_sound(app.db_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_answers_503_and_recovers() {
    let app = spawn_app(DbKind::Sqlite).await.unwrap();
    let web = app.web_client().await;
    let svc = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        })
        .await;
    let (code, verifier) = app.code(&web, "openid offline_access", "").await;
    let tokens = app.redeem(&web, &code, &verifier).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Codes issued before the fault, redeemed during it.
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(app.code(&web, "openid offline_access", "").await);
    }
    // client_credentials takes a block of status indices before the fault.
    let cc = [("grant_type", "client_credentials")];
    assert_eq!(app.token(&svc, &cc).await.status(), 200);

    app.state.store.sqlite_page_limit(Some(1)).await.unwrap();

    // A refresh chain: each 200 moves on, until the file has no room.
    let mut rotations = 0;
    loop {
        let r = app.refresh(&web, &rt).await;
        if r.status() == 200 {
            rt = r.json::<Value>().await.unwrap()["refresh_token"]
                .as_str()
                .unwrap()
                .to_owned();
            rotations += 1;
            assert!(rotations < WRITES_UNTIL_FULL, "the file never filled up");
            continue;
        }
        assert_unavailable_json("a refresh in a full database", r).await;
        break;
    }
    // The same token again (a client's retry): still no room.
    assert_unavailable_json("a retried refresh", app.refresh(&web, &rt).await).await;

    // Code redemptions, each a fresh code: 503 once there is no room.
    let mut redeemed = 0;
    loop {
        let (code, verifier) = codes.pop().expect("a redemption answered 503");
        let r = app.redeem_response(&web, &code, &verifier).await;
        if r.status() == 200 {
            redeemed += 1;
            continue;
        }
        assert_unavailable_json("a code redemption in a full database", r).await;
        codes.push((code, verifier));
        break;
    }

    // Sign-ins: the 503 page with Retry-After once there is no room.
    let mut signed_in = 0;
    loop {
        let r = sign_in(&app).await;
        if r.status() == 303 {
            signed_in += 1;
            assert!(signed_in < WRITES_UNTIL_FULL, "sign-ins never filled up");
            continue;
        }
        assert_eq!(r.status(), 503, "a sign-in in a full database");
        assert!(r.headers().contains_key("retry-after"));
        assert!(r.text().await.unwrap().contains("temporarily unavailable"));
        break;
    }

    // Code issuance: the browser goes back to the client with the error.
    let (_, challenge) = crate::support::pkce();
    let mut issued = 0;
    loop {
        let back = app
            .authorize_in_browser(
                &app.authorize_url(&web, "openid", &challenge, ""),
                "dave",
                "pw-dave-123456",
            )
            .await;
        if query_param(&back, "code").is_some() {
            issued += 1;
            assert!(issued < WRITES_UNTIL_FULL, "codes never filled up");
            continue;
        }
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("temporarily_unavailable"),
            "{back}"
        );
        break;
    }
    println!(
        "before 503: {rotations} rotations, {redeemed} redemptions, {signed_in} sign-ins, {issued} codes"
    );

    // Reads go on: userinfo, introspection, keys, discovery, and
    // client_credentials (its status index comes from memory).
    assert_eq!(userinfo_status(&app, &access).await, 200);
    assert_eq!(introspect(&app, &web, &access).await["active"], true);
    for path in ["/jwks", "/.well-known/openid-configuration"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    assert_eq!(app.token(&svc, &cc).await.status(), 200);

    // The limit lifted: the same refresh token continues the chain, and new
    // sign-ins, codes and redemptions work.
    app.state.store.sqlite_page_limit(None).await.unwrap();
    let r = app.refresh(&web, &rt).await;
    assert_eq!(r.status(), 200);
    let next = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.refresh(&web, &next).await.status(), 200);
    // The code whose redemption answered 503 was not spent: it redeems, once.
    let (code, verifier) = codes.pop().unwrap();
    let r = app.redeem_response(&web, &code, &verifier).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = app.redeem_response(&web, &code, &verifier).await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    assert_eq!(sign_in(&app).await.status(), 303);
    let (code, verifier) = app.code(&web, "openid offline_access", "").await;
    let fresh = app.redeem(&web, &code, &verifier).await;
    assert!(fresh["refresh_token"].is_string());

    // A read beside the running server (WAL); stopping it deletes the file.
    assert_sound(&app).await;
    app.stop().await;
}
