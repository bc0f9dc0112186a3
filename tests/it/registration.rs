//! Dynamic client registration (RFC 7591) and management (RFC 7592).

use serde_json::{json, Value};

use crate::support::TestApp;

async fn initial_token(app: &TestApp, uses: Option<i64>) -> String {
    let token = gatehouse_server::secrets::random_token();
    let now = app.state.now();
    app.state
        .store
        .create_registration_token(&app.state.hasher.hash(&token), Some(now + 600), uses, now)
        .await
        .unwrap();
    token
}

async fn register_read_update_delete(app: &TestApp) {
    let iat = initial_token(app, Some(1)).await;
    let meta = json!({
        "client_name": "Dyn App",
        "redirect_uris": ["https://dyn.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
    });
    // No token, a wrong token: 401.
    let r = app
        .http
        .post(app.url("/register"))
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth("nope")
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&iat)
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    // RFC 9449 5.2: unset means false, and the answer says so.
    assert_eq!(c["dpop_bound_access_tokens"], false);
    let id = c["client_id"].as_str().unwrap().to_owned();
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    let rat = c["registration_access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        c["registration_client_uri"],
        app.url(&format!("/register/{id}"))
    );
    // The token had one use.
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&iat)
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The new client works at the token endpoint (wrong grant, but authenticated).
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    // Read, update, delete with the registration access token.
    let uri = app.url(&format!("/register/{id}"));
    let r = app.http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .json::<Value>()
        .await
        .unwrap()
        .get("client_secret")
        .is_none());
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = app
        .http
        .put(&uri)
        .bearer_auth(&rat)
        .json(&json!({ "client_id": id, "client_name": "Renamed", "redirect_uris": ["https://dyn.example/cb2"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["redirect_uris"],
        json!(["https://dyn.example/cb2"])
    );
    assert_eq!(
        app.http
            .delete(&uri)
            .bearer_auth(&rat)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.http
            .get(&uri)
            .bearer_auth(&rat)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

async fn registration_metadata_is_validated(app: &TestApp) {
    let iat = initial_token(app, None).await;
    let cases = [
        (
            json!({ "redirect_uris": ["not a url"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["http://evil.example/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb#frag"] }),
            "invalid_redirect_uri",
        ),
        (json!({ "redirect_uris": [] }), "invalid_redirect_uri"),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["password"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "magic" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": "https://a.example/cb" }),
            "invalid_client_metadata",
        ),
    ];
    for (meta, expected) in cases {
        let r = app
            .http
            .post(app.url("/register"))
            .bearer_auth(&iat)
            .json(&meta)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{meta}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            expected,
            "{meta}"
        );
    }
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&iat)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A public client gets no secret.
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&iat)
        .json(&json!({ "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r
        .json::<Value>()
        .await
        .unwrap()
        .get("client_secret")
        .is_none());
}

crate::both_backends!(
    register_read_update_delete,
    registration_metadata_is_validated
);
