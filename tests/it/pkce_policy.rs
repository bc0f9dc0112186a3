//! When PKCE may be left out (RFC 9700 2.1.1): only by a confidential
//! client, in an OpenID request with a nonce, and only when neither the
//! client's `require_pkce` nor the server's `require_pkce` demands it.

use gatehouse_server::{clients::ClientSpec, config::RawConfig};
use serde_json::{json, Value};

use crate::support::{pkce, query_param, spawn_app_with, DbKind, TestApp, TestClient};

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/authorize` for `c` without PKCE; `extra` is appended as is. Returns
/// the Location header.
async fn authorize(app: &TestApp, c: &TestClient, extra: &str) -> String {
    let url = format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&state=S{extra}",
        app.url("/authorize"),
        c.id,
        enc(&c.redirect_uri)
    );
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303, "{extra}");
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn proceeds(loc: &str) {
    assert!(loc.starts_with("/login?"), "the request was refused: {loc}");
}

fn refused(loc: &str, description: &str) {
    assert_eq!(
        query_param(loc, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        query_param(loc, "error_description").as_deref(),
        Some(description),
        "{loc}"
    );
}

const GENERAL: &str =
    "PKCE is required (code_challenge with S256) unless the request has scope openid and a nonce";

/// A confidential client may leave PKCE out only in an OpenID request with
/// a nonce (what mod_auth_openidc and Spring Security send by default).
async fn confidential_clients_need_openid_and_nonce(app: &TestApp) {
    let c = app.web_client().await;
    proceeds(&authorize(app, &c, "&scope=openid%20email&nonce=n-1").await);
    refused(&authorize(app, &c, "&scope=openid").await, GENERAL);
    refused(&authorize(app, &c, "&scope=email&nonce=n-1").await, GENERAL);
    let with_pkce = format!(
        "&scope=email&code_challenge={}&code_challenge_method=S256",
        pkce().1
    );
    proceeds(&authorize(app, &c, &with_pkce).await);

    let public = app
        .create_client(ClientSpec {
            name: "SPA".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/spa".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    refused(
        &authorize(app, &public, "&scope=openid&nonce=n-1").await,
        "public clients must use PKCE (code_challenge with S256)",
    );
}

/// A client created with `require_pkce` needs PKCE even with openid and a nonce.
async fn client_require_pkce(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "Strict".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            require_pkce: true,
            ..ClientSpec::default()
        })
        .await;
    refused(
        &authorize(app, &c, "&scope=openid&nonce=n-1").await,
        "this client is registered with require_pkce: send code_challenge with S256",
    );
    let with_pkce = format!(
        "&scope=openid&nonce=n-1&code_challenge={}&code_challenge_method=S256",
        pkce().1
    );
    proceeds(&authorize(app, &c, &with_pkce).await);
}

/// `require_pkce` is client metadata at the registration endpoint: stored,
/// returned, enforced, and false when left out.
async fn registration_metadata_require_pkce(app: &TestApp) {
    let token = app.initial_access_token(None).await;
    let mut answers = Vec::new();
    for require in [Some(true), None] {
        let mut meta = json!({
            "client_name": "Dyn",
            "redirect_uris": ["http://127.0.0.1:9999/dyn"],
        });
        if let Some(r) = require {
            meta["require_pkce"] = r.into();
        }
        let r = app
            .http
            .post(app.url("/register"))
            .bearer_auth(&token)
            .json(&meta)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        answers.push(v);
    }
    assert_eq!(answers[0]["require_pkce"], true);
    assert_eq!(answers[1]["require_pkce"], false);
    let strict = TestClient {
        id: answers[0]["client_id"].as_str().unwrap().to_owned(),
        secret: None,
        redirect_uri: "http://127.0.0.1:9999/dyn".into(),
    };
    // A dynamically registered client gets its errors on a page.
    let url = format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&state=S&scope=openid&nonce=n",
        app.url("/authorize"),
        strict.id,
        enc(&strict.redirect_uri)
    );
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("require_pkce"), "{html}");
    let relaxed = TestClient {
        id: answers[1]["client_id"].as_str().unwrap().to_owned(),
        ..strict
    };
    proceeds(&authorize(app, &relaxed, "&scope=openid&nonce=n-1").await);
}

/// The server's `require_pkce` makes every client send PKCE.
async fn global_require_pkce(kind: DbKind) {
    let Some(app) = spawn_app_with(
        kind,
        RawConfig {
            require_pkce: Some(true),
            ..RawConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let c = app.web_client().await;
    refused(
        &authorize(&app, &c, "&scope=openid&nonce=n-1").await,
        "this server requires PKCE: send code_challenge with S256",
    );
    let with_pkce = format!(
        "&scope=openid&nonce=n-1&code_challenge={}&code_challenge_method=S256",
        pkce().1
    );
    proceeds(&authorize(&app, &c, &with_pkce).await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_require_pkce_sqlite() {
    global_require_pkce(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_require_pkce_postgres() {
    global_require_pkce(DbKind::Postgres).await;
}

crate::both_backends!(
    confidential_clients_need_openid_and_nonce,
    client_require_pkce,
    registration_metadata_require_pkce
);
