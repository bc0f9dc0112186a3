//! Revoking a grant reaches every token of it, opaque access tokens too;
//! the one retry rule of refresh rotation (unlimited while the successor is
//! unused for confidential clients, `refresh_grace` for public ones); and
//! every refused refresh says why.

use gatehouse_server::clients::ClientSpec;
use gatehouse_storage::model::ResourceServer;
use serde_json::Value;

use crate::support::{introspect, TestApp, TestClient};

const OPAQUE_API: &str = "https://api.example/opaque";
const OPAQUE_RESOURCE: &str = "&resource=https%3A%2F%2Fapi.example%2Fopaque";

/// Registers a resource server that takes opaque reference tokens.
async fn opaque_api(app: &TestApp) {
    let kp = josekit::jwe::ECDH_ES_A256KW
        .generate_ec_key_pair(josekit::jwk::alg::ec::EcCurve::P256)
        .unwrap();
    let mut jwk: Value = serde_json::from_str(&kp.to_jwk_public_key().to_string()).unwrap();
    jwk["alg"] = "ECDH-ES+A256KW".into();
    jwk["kid"] = "opaque-api".into();
    app.state
        .store
        .create_resource(&ResourceServer {
            audience: OPAQUE_API.into(),
            encryption_jwk: jwk.to_string(),
            signing_alg: "ES256".parse().unwrap(),
            token_format: "opaque".parse().unwrap(),
            access_token_lifetime: None,
            scopes: vec!["read".into()],
            created_at: 0,
            clients: Vec::new(),
            allow_exchange_from: Vec::new(),
        })
        .await
        .unwrap();
}

/// Presents a refresh token (with `client_id` in the form, for public clients).
async fn refresh(app: &TestApp, c: &TestClient, rt: &str) -> (u16, Value) {
    let r = app
        .token(
            c,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &c.id),
            ],
        )
        .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

fn field(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .to_owned()
}

/// An opaque access token and a refresh token from a fresh grant.
async fn opaque_grant(app: &TestApp, c: &TestClient) -> (String, String, String, String) {
    let (code, verifier) = app
        .code(c, "openid offline_access read", OPAQUE_RESOURCE)
        .await;
    let t = app.redeem(c, &code, &verifier).await;
    let at = field(&t, "access_token");
    assert!(!at.contains('.'), "an opaque reference token");
    (at, field(&t, "refresh_token"), code, verifier)
}

async fn assert_inactive(app: &TestApp, c: &TestClient, tokens: &[&str], why: &str) {
    for (i, t) in tokens.iter().enumerate() {
        let v = introspect(app, c, t).await;
        assert_eq!(v["active"], false, "{why}: token {i} still active: {v}");
    }
}

/// Opaque access tokens carry their grant: refresh reuse, revoking the
/// refresh token and replaying the code each revoke every one of them.
async fn opaque_access_tokens_die_with_their_grant(app: &TestApp) {
    opaque_api(app).await;
    let c = app
        .create_client(ClientSpec {
            name: "Example App".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            scopes: vec!["read".into()],
            ..ClientSpec::default()
        })
        .await;

    // Refresh token reuse.
    let (at1, rt1, _, _) = opaque_grant(app, &c).await;
    let (s, t2) = refresh(app, &c, &rt1).await;
    assert_eq!(s, 200, "{t2}");
    let (at2, rt2) = (field(&t2, "access_token"), field(&t2, "refresh_token"));
    assert_eq!(introspect(app, &c, &at2).await["active"], true);
    let (s, t3) = refresh(app, &c, &rt2).await;
    assert_eq!(s, 200, "{t3}");
    let at3 = field(&t3, "access_token");
    let (s, _) = refresh(app, &c, &rt1).await;
    assert_eq!(s, 400, "reuse after the successor was used");
    assert_inactive(app, &c, &[&at1, &at2, &at3], "refresh reuse").await;

    // Revoking the refresh token (RFC 7009 2.1: and the grant's access tokens).
    let (at1, rt1, _, _) = opaque_grant(app, &c).await;
    let (_, t2) = refresh(app, &c, &rt1).await;
    let (at2, rt2) = (field(&t2, "access_token"), field(&t2, "refresh_token"));
    crate::support::revoke(app, &c, &rt2).await;
    assert_inactive(app, &c, &[&at1, &at2], "refresh token revoked").await;

    // Replaying the code: not only the first access token, every one.
    let (at1, rt1, code, verifier) = opaque_grant(app, &c).await;
    let (_, t2) = refresh(app, &c, &rt1).await;
    let at2 = field(&t2, "access_token");
    assert_eq!(introspect(app, &c, &at2).await["active"], true);
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &c.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"], "invalid_grant");
    assert_inactive(app, &c, &[&at1, &at2], "code replay").await;
    let (s, err) = refresh(app, &c, &field(&t2, "refresh_token")).await;
    assert_eq!((s, field(&err, "error")), (400, "invalid_grant".into()));
}

/// A confidential client may retry a rotated refresh token at any later
/// time while its successor is unused (a lost answer, a 5xx); reuse after
/// the successor was used revokes the grant.
async fn confidential_retry_has_no_time_limit(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let rt1 = field(&app.redeem(&c, &code, &verifier).await, "refresh_token");
    let (s, t2) = refresh(app, &c, &rt1).await;
    assert_eq!(s, 200, "{t2}");
    let rt2 = field(&t2, "refresh_token");
    app.clock
        .advance(app.state.settings.lifetimes.refresh_grace + 3600);
    let (s, again) = refresh(app, &c, &rt1).await;
    assert_eq!(s, 200, "a late retry of a confidential client: {again}");
    assert_eq!(field(&again, "refresh_token"), rt2, "the same successor");
    assert_eq!(
        userinfo(app, &field(&again, "access_token")).await,
        200,
        "with a working access token"
    );
    let (s, t3) = refresh(app, &c, &rt2).await;
    assert_eq!(s, 200, "{t3}");
    let (s, err) = refresh(app, &c, &rt1).await;
    assert_eq!(s, 400);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(
        err["error_description"],
        "the refresh token has already been used; its grant is revoked"
    );
    let (s, err) = refresh(app, &c, &field(&t3, "refresh_token")).await;
    assert_eq!(s, 400);
    assert_eq!(
        err["error_description"],
        "the refresh token has been revoked"
    );
}

async fn userinfo(app: &TestApp, at: &str) -> u16 {
    crate::support::userinfo_status(app, at).await
}

/// A public client's bearer refresh token: a retry only within
/// `refresh_grace`; later, the old token is reuse and the grant dies.
async fn public_retry_only_within_grace(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "SPA".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/spa".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let rt1 = field(&app.redeem(&c, &code, &verifier).await, "refresh_token");
    let (s, t2) = refresh(app, &c, &rt1).await;
    assert_eq!(s, 200, "{t2}");
    let rt2 = field(&t2, "refresh_token");
    let (s, again) = refresh(app, &c, &rt1).await;
    assert_eq!(s, 200, "a retry within the grace window: {again}");
    assert_eq!(field(&again, "refresh_token"), rt2);
    app.clock
        .advance(app.state.settings.lifetimes.refresh_grace + 1);
    let (s, err) = refresh(app, &c, &rt1).await;
    assert_eq!(
        s, 400,
        "past the grace window a public client's retry is reuse"
    );
    assert_eq!(
        err["error_description"],
        "the refresh token has already been used; its grant is revoked"
    );
    let (s, err) = refresh(app, &c, &rt2).await;
    assert_eq!(s, 400, "the unused successor died with its grant");
    assert_eq!(
        err["error_description"],
        "the refresh token has been revoked"
    );
}

/// Every refused refresh names its reason.
async fn refused_refreshes_say_why(app: &TestApp) {
    let c = app.web_client().await;
    let other = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let rt = field(&app.redeem(&c, &code, &verifier).await, "refresh_token");
    for (client, token, why) in [
        (&c, "no-such-token", "the refresh token is unknown"),
        (
            &other,
            rt.as_str(),
            "the refresh token was issued to another client",
        ),
    ] {
        let (s, err) = refresh(app, client, token).await;
        assert_eq!(s, 400);
        assert_eq!(err["error"], "invalid_grant");
        assert_eq!(err["error_description"], why);
    }
    app.clock
        .advance(app.state.settings.lifetimes.refresh_token + 1);
    let (s, err) = refresh(app, &c, &rt).await;
    assert_eq!(s, 400);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(err["error_description"], "the refresh token has expired");
}

/// A rotated refresh token presented again is judged as reuse even when no
/// answer can be made for it (its resource server was removed meanwhile):
/// the grant is revoked, not left alive behind `invalid_target`.
async fn reuse_is_detected_when_no_answer_can_be_made(app: &TestApp) {
    opaque_api(app).await;
    let c = app
        .create_client(ClientSpec {
            name: "Example App".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            scopes: vec!["read".into()],
            ..ClientSpec::default()
        })
        .await;
    let (_, rt1, _, _) = opaque_grant(app, &c).await;
    let (s, t2) = refresh(app, &c, &rt1).await;
    assert_eq!(s, 200, "{t2}");
    let rt2 = field(&t2, "refresh_token");
    let (s, t3) = refresh(app, &c, &rt2).await;
    assert_eq!(s, 200, "{t3}");
    let rt3 = field(&t3, "refresh_token");

    assert!(app.state.store.delete_resource(OPAQUE_API).await.unwrap());
    app.state.registry.refresh().await.unwrap();
    // The newest token cannot be answered for: invalid_target, nothing spent.
    let (s, v) = refresh(app, &c, &rt3).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_target")),
        "{v}"
    );
    // The first token, whose successor was used: reuse, the grant revoked.
    let (s, v) = refresh(app, &c, &rt1).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    let newest = app
        .state
        .store
        .refresh_token(&app.state.hasher.hash(&rt3))
        .await
        .unwrap()
        .unwrap();
    assert!(newest.revoked_at.is_some(), "the family is revoked");
}

crate::both_backends!(
    opaque_access_tokens_die_with_their_grant,
    reuse_is_detected_when_no_answer_can_be_made,
    confidential_retry_has_no_time_limit,
    public_retry_only_within_grace,
    refused_refreshes_say_why,
);
