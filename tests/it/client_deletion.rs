//! What outlives what: deleting a client (RFC 7592 2.3) revokes its tokens;
//! registration answers carry `jwks`/`jwks_uri` and refuse them where no
//! one would check them; a forced logout deletes the user's unredeemed
//! codes.

use gatehouse_server::oauth::GrantType;
use serde_json::{json, Value};

use crate::support::{introspect, userinfo_status, TestApp, TestClient};

async fn initial_token(app: &TestApp) -> String {
    app.initial_access_token(Some(&gatehouse_storage::model::RegistrationPolicy {
        grant_types: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ],
        scopes: vec!["read".into()],
    }))
    .await
}

async fn register(app: &TestApp, meta: &Value) -> reqwest::Response {
    app.http
        .post(app.url("/register"))
        .bearer_auth(initial_token(app).await)
        .json(meta)
        .send()
        .await
        .unwrap()
}

/// A client registered dynamically, and its registration access token.
async fn dynamic_client(app: &TestApp) -> (TestClient, String) {
    let r = register(
        app,
        &json!({
            "client_name": "Dyn",
            "redirect_uris": ["http://127.0.0.1:9999/dyn"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    let client = TestClient {
        id: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().map(str::to_owned),
        redirect_uri: "http://127.0.0.1:9999/dyn".into(),
    };
    (
        client,
        c["registration_access_token"].as_str().unwrap().to_owned(),
    )
}

async fn client_credentials(app: &TestApp, c: &TestClient, resource: &str) -> String {
    let r = app
        .token(
            c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// RFC 7592 2.3: deleting a client revokes its refresh tokens and its
/// access tokens, whatever their form (JWE for Gatehouse, JWE for a
/// resource server, opaque).
async fn deleting_a_client_revokes_its_tokens(app: &TestApp) {
    // The auditor introspects the tokens: a client linked to both APIs.
    let auditor = app.web_client().await;
    crate::support::ecdh_api(app, "https://api.example/jwe").await;
    let jwe_api = gatehouse_storage::model::ResourceServer {
        clients: vec![auditor.id.clone().into()],
        ..app.state.store.list_resources().await.unwrap().remove(0)
    };
    app.state.store.update_resource(&jwe_api).await.unwrap();
    app.state
        .store
        .create_resource(&gatehouse_storage::model::ResourceServer {
            audience: "https://api.example/opaque".into(),
            token_format: "opaque".parse().unwrap(),
            ..jwe_api
        })
        .await
        .unwrap();
    app.state.registry.refresh().await.unwrap();
    let (c, rat) = dynamic_client(app).await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    );
    let jwe = client_credentials(app, &c, "https://api.example/jwe").await;
    let opaque = client_credentials(app, &c, "https://api.example/opaque").await;
    assert!(!opaque.contains('.'));
    assert_eq!(userinfo_status(app, &at).await, 200);
    for t in [&jwe, &opaque] {
        assert_eq!(introspect(app, &auditor, t).await["active"], true);
    }

    let r = app
        .http
        .delete(app.url(&format!("/register/{}", c.id)))
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    assert_eq!(userinfo_status(app, &at).await, 401, "user access token");
    for (t, what) in [(&jwe, "resource-server JWE"), (&opaque, "opaque token")] {
        assert_eq!(
            introspect(app, &auditor, t).await["active"],
            false,
            "{what} of the deleted client"
        );
    }
    let stored = app
        .state
        .store
        .refresh_token(&app.state.hasher.hash(&rt))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.revoked_at.is_some(), "refresh token revoked");
    // And the client is gone.
    let r = app.token(&c, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status(), 401);
}

/// RFC 7591 3.2.1 / RFC 7592 2.1: the answers carry jwks and jwks_uri;
/// clients that do not authenticate with private_key_jwt cannot register
/// keys nobody would check.
async fn registration_answers_carry_client_keys(app: &TestApp) {
    let jwks = json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }]});
    let r = register(
        app,
        &json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks,
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["jwks"], jwks, "{c}");
    let read: Value = app
        .http
        .get(c["registration_client_uri"].as_str().unwrap())
        .bearer_auth(c["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["jwks"], jwks, "{read}");

    let r = register(
        app,
        &json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://client.example/jwks.json",
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["jwks_uri"], "https://client.example/jwks.json");

    for method in ["client_secret_basic", "client_secret_post", "none"] {
        for keys in [
            json!({ "jwks": jwks }),
            json!({ "jwks_uri": "https://client.example/jwks.json" }),
        ] {
            let mut meta = json!({
                "redirect_uris": ["https://client.example/cb"],
                "token_endpoint_auth_method": method,
            });
            meta.as_object_mut()
                .unwrap()
                .extend(keys.as_object().unwrap().clone());
            let r = register(app, &meta).await;
            assert_eq!(r.status(), 400, "{method} with {keys}");
            let err: Value = r.json().await.unwrap();
            assert_eq!(err["error"], "invalid_client_metadata");
            assert_eq!(
                err["error_description"],
                format!(
                    "jwks and jwks_uri are only for private_key_jwt; this client uses {method}"
                )
            );
        }
    }
}

/// A forced logout deletes the codes the user was issued and has not
/// redeemed: none can be turned into tokens afterwards.
async fn forced_logout_deletes_unredeemed_codes(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let user = app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    let done = gatehouse_server::session_end::force_logout(&app.state, &user)
        .await
        .unwrap();
    assert_eq!(done.codes_deleted, 1);
    app.clock.advance(1);
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
    assert_eq!(r.status(), 400, "the code died with the sessions");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

crate::both_backends!(
    deleting_a_client_revokes_its_tokens,
    registration_answers_carry_client_keys,
    forced_logout_deletes_unredeemed_codes,
);
