//! `id_token_hint` must be an ID token of this issuer (OIDC Core 3.1.2.1;
//! RP-Initiated Logout 1.0 section 2), not any JWS Gatehouse signed; at
//! /logout its `aud` must contain the client_id the request names.

use gatehouse_keys::Alg;
use serde_json::{json, Map, Value};

use crate::support::{pkce, query_param, TestApp, TestClient};

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A JWS signed with Gatehouse's own key, with this `typ` and these claims.
fn signed(app: &TestApp, typ: &str, claims: Value) -> String {
    let Value::Object(c) = claims else {
        panic!("claims must be an object")
    };
    let c: Map<String, Value> = c;
    app.state.keys.sign(Alg::RS256, typ, &c).unwrap()
}

async fn dave_signed_in(app: &TestApp, c: &TestClient) -> (String, String) {
    let (code, verifier) = app.code(c, "openid", "").await;
    let t = app.redeem(c, &code, &verifier).await;
    let sub = app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .unwrap()
        .id;
    (
        t["id_token"].as_str().unwrap().to_owned(),
        sub.into_string(),
    )
}

/// The inner JWS of an access token or a logout token carries our `iss`
/// and the user's `sub`, but is not an ID token.
async fn authorize_refuses_other_gatehouse_tokens(app: &TestApp) {
    let c = app.web_client().await;
    let (id_token, sub) = dave_signed_in(app, &c).await;
    let now = app.state.now();
    let silent = |hint: &str| {
        app.authorize_url(
            &c,
            "openid",
            &pkce().1,
            &format!("&prompt=none&id_token_hint={hint}"),
        )
    };
    let r = app.browser.get(silent(&id_token)).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(query_param(loc, "code").is_some(), "{loc}");

    for typ in ["at+jwt", "logout+jwt", "statuslist+jwt"] {
        let other = signed(
            app,
            typ,
            json!({"iss": app.base, "sub": sub, "aud": c.id, "iat": now, "exp": now + 300}),
        );
        let r = app.browser.get(silent(&other)).send().await.unwrap();
        let loc = r.headers()["location"].to_str().unwrap();
        assert_eq!(
            query_param(loc, "error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(
            query_param(loc, "error_description").as_deref(),
            Some("id_token_hint is not an ID token (its typ is that of another kind of token)"),
            "{typ}"
        );
    }
    let foreign = signed(
        app,
        "JWT",
        json!({"iss": "https://elsewhere.example", "sub": sub, "aud": c.id}),
    );
    let r = app.browser.get(silent(&foreign)).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert_eq!(
        query_param(loc, "error_description").as_deref(),
        Some("id_token_hint was issued by another issuer")
    );
}

/// At /logout: only an ID token, and one issued to the named client.
async fn logout_hint_must_be_an_id_token_for_the_client(app: &TestApp) {
    let c = app.web_client().await;
    let other = app.web_client().await;
    let (id_token, sub) = dave_signed_in(app, &c).await;
    let now = app.state.now();
    let signed_out = enc("http://127.0.0.1:9999/signed-out");
    let logout = |hint: &str, client_id: &str| {
        format!(
            "{}?id_token_hint={hint}&client_id={client_id}&post_logout_redirect_uri={signed_out}",
            app.url("/logout")
        )
    };
    let still_signed_in = || async {
        let r = app
            .browser
            .get(app.authorize_url(&c, "openid", &pkce().1, "&prompt=none"))
            .send()
            .await
            .unwrap();
        query_param(r.headers()["location"].to_str().unwrap(), "code").is_some()
    };

    let access = signed(
        app,
        "at+jwt",
        json!({"iss": app.base, "sub": sub, "aud": c.id, "client_id": c.id, "iat": now, "exp": now + 300}),
    );
    let r = app
        .browser
        .get(logout(&access, &c.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("not an ID token"));
    assert!(still_signed_in().await);

    // c's ID token names c, not `other`.
    let r = app
        .browser
        .get(logout(&id_token, &other.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(still_signed_in().await);

    // An ID token for several audiences serves any of them.
    let shared = signed(
        app,
        "JWT",
        json!({"iss": app.base, "sub": sub, "aud": [other.id, c.id], "iat": now, "exp": now + 300}),
    );
    let r = app
        .browser
        .get(logout(&shared, &c.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "http://127.0.0.1:9999/signed-out");
    assert!(!still_signed_in().await);
}

/// A client whose stored settings this release cannot read (an ID-token
/// algorithm a newer release wrote) still lets its user sign out: the
/// session ends and the signed-out page is shown, without a redirect.
async fn logout_through_an_unreadable_client_still_signs_out(app: &TestApp) {
    use sea_orm::{ConnectionTrait, Statement};
    let c = app.web_client().await;
    let (id_token, sub) = dave_signed_in(app, &c).await;
    assert_eq!(
        app.state.store.sessions_of_user(&sub).await.unwrap().len(),
        1
    );
    let conn = sea_orm::Database::connect(app.db_url()).await.unwrap();
    let backend = conn.get_database_backend();
    for sql in [
        format!(
            "UPDATE clients SET id_token_signed_response_alg = 'ES384' WHERE id = '{}'",
            c.id
        ),
        "UPDATE epochs SET value = value + 1 WHERE name = 'clients'".to_owned(),
    ] {
        conn.execute(Statement::from_string(backend, sql))
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
    // What the housekeeping task does every second on every instance.
    app.state.registry.refresh().await.unwrap();
    let r = app
        .browser
        .get(app.url(&format!(
            "/logout?id_token_hint={id_token}&client_id={}&post_logout_redirect_uri={}",
            c.id,
            enc("http://127.0.0.1:9999/signed-out")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the signed-out page, no redirect");
    assert!(r.headers().get("location").is_none());
    assert!(app
        .state
        .store
        .sessions_of_user(&sub)
        .await
        .unwrap()
        .is_empty());
}

crate::both_backends!(
    authorize_refuses_other_gatehouse_tokens,
    logout_hint_must_be_an_id_token_for_the_client,
    logout_through_an_unreadable_client_still_signs_out
);
