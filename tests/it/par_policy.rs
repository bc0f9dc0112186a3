//! The pushed authorization request endpoint's errors (RFC 9126 2.3: JSON,
//! the codes of RFC 6749 4.1.2.1, 401, 405, 413, 429), and the policy that
//! requires pushing: per client (`require_pushed_authorization_requests`,
//! RFC 9126 6) and server-wide (RFC 9126 5).

use gatehouse_server::{clients::ClientSpec, config::RawConfig};
use serde_json::{json, Value};

use crate::{
    par::{authorize_url, push, pushed, request},
    support::{pkce, query_param, spawn_app_with, DbKind, TestApp, TestClient},
};

/// `push` expecting `status` and `error`; the description.
async fn push_refused(
    app: &TestApp,
    c: &TestClient,
    form: &[(&str, &str)],
    status: u16,
    error: &str,
) -> String {
    let (s, body) = push(app, c, form).await;
    assert_eq!((s, body["error"].as_str()), (status, Some(error)), "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

/// The whole request is checked at /par, each error as JSON.
async fn par_checks_the_whole_request(app: &TestApp) {
    let c = app.web_client().await;
    let (_, challenge) = pkce();
    let base = request(&c, &challenge);
    let with = |name: &'static str, value: &'static str| -> Vec<(&str, &str)> {
        let mut f: Vec<(&str, &str)> = base.iter().filter(|(k, _)| *k != name).copied().collect();
        if !value.is_empty() {
            f.push((name, value));
        }
        f
    };
    let d = push_refused(app, &c, &with("redirect_uri", ""), 400, "invalid_request").await;
    assert!(d.contains("no redirect_uri"), "{d}");
    let d = push_refused(
        app,
        &c,
        &with("redirect_uri", "https://evil.example/cb"),
        400,
        "invalid_request",
    )
    .await;
    assert!(d.contains("not registered"), "{d}");
    push_refused(
        app,
        &c,
        &with("response_type", "token"),
        400,
        "unsupported_response_type",
    )
    .await;
    push_refused(app, &c, &with("scope", "openid nope"), 400, "invalid_scope").await;
    push_refused(
        app,
        &c,
        &with("code_challenge_method", "plain"),
        400,
        "invalid_request",
    )
    .await;
    push_refused(app, &c, &with("prompt", "bogus"), 400, "invalid_request").await;
    let d = push_refused(
        app,
        &c,
        &with("request_uri", "urn:ietf:params:oauth:request_uri:abc"),
        400,
        "invalid_request",
    )
    .await;
    assert!(d.contains("request_uri must not be sent"), "{d}");
    // A repeated parameter (RFC 6749 3.1).
    let mut twice = base.clone();
    twice.push(("scope", "email"));
    push_refused(app, &c, &twice, 400, "invalid_request").await;
}

/// Client authentication exactly as at /token.
async fn par_authenticates_the_client(app: &TestApp) {
    let c = app.web_client().await;
    let (_, challenge) = pkce();
    let wrong = TestClient {
        secret: Some("wrong".into()),
        ..c.clone()
    };
    push_refused(app, &wrong, &request(&c, &challenge), 401, "invalid_client").await;
    let unknown = TestClient {
        id: "nobody".into(),
        ..wrong.clone()
    };
    push_refused(
        app,
        &unknown,
        &request(&c, &challenge),
        401,
        "invalid_client",
    )
    .await;
    // A confidential client without its secret (as a public one).
    let bare = TestClient {
        secret: None,
        ..c.clone()
    };
    let d = push_refused(app, &bare, &request(&c, &challenge), 401, "invalid_client").await;
    assert!(d.contains("client_secret_basic"), "{d}");
    // client_id in the body must be the authenticated client.
    let other = app.web_client().await;
    let mut form = request(&c, &challenge);
    form.push(("client_id", &other.id));
    push_refused(app, &c, &form, 400, "invalid_request").await;
}

/// 405 for another method, 413 for a body beyond 64 KiB, a body that is
/// not a form `invalid_request`: each with no-store.
async fn par_method_and_size(app: &TestApp) {
    let r = app.http.get(app.url("/par")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let c = app.web_client().await;
    let big = "x".repeat(70 * 1024);
    // On a connection of its own: the server closes it after a 413 with
    // the body unread, and a pooled connection would fail the next request.
    let r = reqwest::Client::new()
        .post(app.url("/par"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("state", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = app
        .http
        .post(app.url("/par"))
        .basic_auth(&c.id, c.secret.as_deref())
        .json(&json!({"response_type": "code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");
}

/// Public clients push anonymously: too many from one address is 429.
async fn par_public_pushes_are_limited(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "native".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/native".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    let (_, challenge) = pkce();
    let form = request(&c, &challenge);
    let limit = gatehouse_server::http::authorize::MAX_STARTS_PER_MINUTE;
    for _ in 0..limit {
        assert_eq!(push(app, &c, &form).await.0, 201);
    }
    let mut form = form.clone();
    form.push(("client_id", &c.id));
    let r = app
        .http
        .post(app.url("/par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests", "{body}");
    // A confidential client is not held off by them.
    let web = app.web_client().await;
    pushed(app, &web).await;
}

/// `/authorize` without a pushed request, from a client that must push:
/// `invalid_request` at its redirect URI; the pushed way works.
async fn client_requires_par(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "strict".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/strict".into()],
            require_pushed_authorization_requests: true,
            ..ClientSpec::default()
        })
        .await;
    let (_, challenge) = pkce();
    let r = app
        .http
        .get(app.authorize_url(&c, "openid", &challenge, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert_eq!(query_param(to, "error").as_deref(), Some("invalid_request"));
    assert!(query_param(to, "error_description")
        .unwrap()
        .contains("this client must use pushed authorization requests"));
    let (uri, _) = pushed(app, &c).await;
    let r = app
        .http
        .get(authorize_url(app, &c.id, &uri, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?tx="));
    // Other clients are not concerned.
    let plain = app.web_client().await;
    let r = app
        .http
        .get(app.authorize_url(&plain, "openid", &challenge, ""))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?tx="));
}

/// `require_pushed_authorization_requests` is registration metadata (RFC
/// 9126 6): stored, answered, false by default.
async fn registration_metadata_require_par(app: &TestApp) {
    let mut answers = Vec::new();
    for flag in [Some(true), None] {
        let token = app.initial_access_token(None).await;
        let mut meta = json!({
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
        });
        if let Some(f) = flag {
            meta["require_pushed_authorization_requests"] = f.into();
        }
        let r = app
            .http
            .post(app.url("/register"))
            .bearer_auth(token)
            .json(&meta)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        answers.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0]["require_pushed_authorization_requests"], true);
    assert_eq!(answers[1]["require_pushed_authorization_requests"], false);
    let id = answers[0]["client_id"].as_str().unwrap();
    let stored = app.state.store.client(id).await.unwrap().unwrap();
    assert!(stored.require_pushed_authorization_requests);
}

/// The server-wide switch: every client must push; discovery says so.
async fn server_requires_par(kind: DbKind) {
    let Some(app) = spawn_app_with(
        kind,
        RawConfig {
            require_pushed_authorization_requests: Some(true),
            ..RawConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let d: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["require_pushed_authorization_requests"], true);
    let c = app.web_client().await;
    let (_, challenge) = pkce();
    let r = app
        .http
        .get(app.authorize_url(&c, "openid", &challenge, ""))
        .send()
        .await
        .unwrap();
    let to = r.headers()["location"].to_str().unwrap();
    assert_eq!(query_param(to, "error").as_deref(), Some("invalid_request"));
    assert!(query_param(to, "error_description")
        .unwrap()
        .contains("this server requires pushed authorization requests"));
    let (uri, _) = pushed(&app, &c).await;
    let r = app
        .http
        .get(authorize_url(&app, &c.id, &uri, ""))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?tx="));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_requires_par_sqlite() {
    server_requires_par(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_requires_par_postgres() {
    server_requires_par(DbKind::Postgres).await;
}

crate::both_backends!(
    par_checks_the_whole_request,
    par_authenticates_the_client,
    par_method_and_size,
    par_public_pushes_are_limited,
    client_requires_par,
    registration_metadata_require_par,
);
