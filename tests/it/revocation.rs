//! Revocation end to end: grants, subjects (forced logout), tokens for
//! resource servers (read through the jti in their sealed header reference), back-channel
//! logout to a real HTTP receiver, and two instances on one database.

use std::sync::{Arc, Mutex};

use axum::{routing::post, Form, Router};
use gatehouse_server::clients::ClientSpec;
use serde_json::Value;

use crate::support::{introspect, query_param, userinfo_status as userinfo, TestApp};

/// Revoking a refresh token revokes the access tokens of its grant too.
async fn revoking_a_refresh_token_revokes_its_access_tokens(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    let r = app
        .token(
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    let at2 = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(userinfo(app, at).await, 200);
    assert_eq!(userinfo(app, &at2).await, 200);
    crate::support::revoke(app, &c, rt).await;
    assert_eq!(userinfo(app, at).await, 401);
    assert_eq!(userinfo(app, &at2).await, 401);
    assert_eq!(introspect(app, &c, &at2).await["active"], false);
}

/// Tokens encrypted to a resource server's key: Gatehouse introspects and
/// revokes them by decrypting them with the key derived from the jti in
/// their sealed reference.
async fn resource_server_tokens_are_introspectable_and_revocable(app: &TestApp) {
    crate::support::ecdh_api(app, "https://api.example").await;
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            ..ClientSpec::default()
        })
        .await;
    let t: Value = app
        .token(
            &c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example"),
                ("scope", "read"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let at = t["access_token"].as_str().unwrap();
    let i = introspect(app, &c, at).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["aud"], "https://api.example");
    assert_eq!(i["scope"], "read");
    // A forged reference: inactive.
    let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
    parts[0] = "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImdoX3JlZiI6IkFBQUEifQ".into();
    assert_eq!(introspect(app, &c, &parts.join(".")).await["active"], false);
    // Not usable at userinfo (another audience).
    assert_eq!(userinfo(app, at).await, 401);
    crate::support::revoke(app, &c, at).await;
    assert_eq!(introspect(app, &c, at).await["active"], false);
}

#[derive(Clone, Default)]
pub(crate) struct Received(pub(crate) Arc<Mutex<Vec<String>>>);

pub(crate) async fn receiver() -> (String, Received) {
    let got = Received::default();
    let g = got.clone();
    let app = Router::new().route(
        "/backchannel",
        post(
            move |Form(f): Form<std::collections::HashMap<String, String>>| {
                let g = g.clone();
                async move {
                    if let Some(t) = f.get("logout_token") {
                        g.0.lock().unwrap().push(t.clone());
                    }
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/backchannel"), got)
}

/// Verifies a logout token against the published JWKS with josekit.
pub(crate) async fn check_logout_token(app: &TestApp, token: &str, client_id: &str, sub: &str) {
    let header = josekit::jwt::decode_header(token).unwrap();
    let kid = header.claim("kid").unwrap().as_str().unwrap().to_owned();
    assert_eq!(header.claim("typ").unwrap(), "logout+jwt");
    let jwk = crate::support::published_jwk(app, &kid).await;
    let verifier = josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap();
    let (payload, _) = josekit::jwt::decode_with_verifier(token, &verifier).unwrap();
    assert_eq!(payload.issuer(), Some(app.state.settings.issuer.as_str()));
    assert_eq!(payload.audience(), Some(vec![client_id]));
    assert_eq!(payload.subject(), Some(sub));
    assert!(payload.claim("sid").is_some());
    assert!(payload.claim("nonce").is_none());
    assert!(payload
        .claim("events")
        .unwrap()
        .get("http://schemas.openid.net/event/backchannel-logout")
        .is_some());
}

/// `gatehouse sessions revoke`: sessions end, refresh and access tokens die,
/// and the client hears about it on its back-channel.
async fn forced_logout_revokes_everything_and_notifies(app: &TestApp) {
    let (uri, got) = receiver().await;
    let c = app
        .create_client(ClientSpec {
            name: "Bank".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            backchannel_logout_uri: Some(uri),
            ..ClientSpec::default()
        })
        .await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(userinfo(app, at).await, 200);
    let user = app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.state
            .store
            .sessions_of_user(&user.id)
            .await
            .unwrap()
            .len(),
        1
    );

    let done = gatehouse_server::session_end::force_logout(&app.state, &user)
        .await
        .unwrap();
    assert_eq!(done.sessions_ended, 1);
    assert_eq!(done.backchannel.len(), 1);
    assert!(done.backchannel[0].delivered);

    assert_eq!(userinfo(app, at).await, 401, "live access token revoked");
    let r = app
        .token(
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(r.status(), 400, "refresh token revoked");
    let (_, challenge) = crate::support::pkce();
    let r = app
        .browser
        .get(app.authorize_url(&c, "openid", &challenge, "&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(r.headers()["location"].to_str().unwrap(), "error").as_deref(),
        Some("login_required")
    );
    let tokens = got.0.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1);
    check_logout_token(app, &tokens[0], &c.id, &user.id).await;
    // A login after the forced logout works again, with fresh tokens (the
    // cut-off is by the second, so tokens of that very second stay revoked).
    app.clock.advance(1);
    let (code, verifier) = app.code(&c, "openid", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    assert_eq!(
        userinfo(app, t["access_token"].as_str().unwrap()).await,
        200
    );
}

/// Two instances on one database behave like one.
async fn two_instances_behave_like_one(app: &TestApp) {
    let other = app.second_instance().await;
    let c = app.web_client().await;
    // A code issued by one is redeemed at the other.
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t = other.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();
    // A session made on one is honoured by the other (prompt=none).
    let (_, challenge) = crate::support::pkce();
    let url = app
        .authorize_url(&c, "openid offline_access", &challenge, "&prompt=none")
        .replace(&app.base, &other.base);
    let r = app.browser.get(url).send().await.unwrap();
    assert!(query_param(r.headers()["location"].to_str().unwrap(), "code").is_some());
    // A refresh rotated at one and replayed at the other is detected.
    let r = app
        .token(
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
        )
        .await;
    let rt2 = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = other
        .token(
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = other
        .token(
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
        )
        .await;
    assert_eq!(r.status(), 400, "reuse detected across instances");
    // A revocation at one shows at the other on the next request.
    assert_eq!(
        introspect(&other, &c, at).await["active"],
        false,
        "the family was revoked by the reuse"
    );
    let (code, verifier) = app.code(&c, "openid", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(introspect(&other, &c, at).await["active"], true);
    crate::support::revoke(&other, &c, at).await;
    assert_eq!(introspect(app, &c, at).await["active"], false);
    other.stop().await;
}

crate::both_backends!(
    revoking_a_refresh_token_revokes_its_access_tokens,
    resource_server_tokens_are_introspectable_and_revocable,
    forced_logout_revokes_everything_and_notifies,
    two_instances_behave_like_one
);
