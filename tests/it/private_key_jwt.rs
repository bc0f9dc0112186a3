//! private_key_jwt client authentication (RFC 7523; OIDC Core 9), with keys
//! registered inline (`jwks`) or fetched from a `jwks_uri`.

use axum::{routing::get, Json, Router};
use gatehouse_server::clients::ClientSpec;
use josekit::{
    jwk::Jwk,
    jws::{JwsHeader, ES256},
};
use serde_json::{json, Value};

use crate::support::{TestApp, TestClient};

pub(crate) fn keypair(kid: &str) -> (Jwk, Value) {
    let mut private = ES256.generate_key_pair().unwrap().to_jwk_key_pair();
    private.set_key_id(kid);
    private.set_algorithm("ES256");
    let mut public: Value =
        serde_json::from_str(&private.to_public_key().unwrap().to_string()).unwrap();
    public["use"] = "sig".into();
    public["alg"] = "ES256".into();
    public["kid"] = kid.into();
    (private, public)
}

pub(crate) fn assertion(
    app: &TestApp,
    client_id: &str,
    key: &Jwk,
    aud: &str,
    exp_in: i64,
    jti: &str,
) -> String {
    assertion_for(app, client_id, key, aud.into(), exp_in, jti)
}

/// An assertion with any JSON `aud` (string, array, or something else).
fn assertion_for(
    app: &TestApp,
    client_id: &str,
    key: &Jwk,
    aud: Value,
    exp_in: i64,
    jti: &str,
) -> String {
    let mut header = JwsHeader::new();
    header.set_key_id(key.key_id().unwrap());
    header.set_token_type("JWT");
    let now = app.state.now();
    // Signed as raw JSON: josekit's JwtPayload refuses the malformed `aud`
    // values an attacker would send.
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + exp_in,
        "jti": jti,
    });
    josekit::jws::serialize_compact(
        claims.to_string().as_bytes(),
        &header,
        &ES256.signer_from_jwk(key).unwrap(),
    )
    .unwrap()
}

pub(crate) async fn token_with(app: &TestApp, jwt: &str) -> u16 {
    app.http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn register(app: &TestApp, jwks: Option<String>, jwks_uri: Option<String>) -> TestClient {
    app.create_client(ClientSpec {
        name: "jwt client".into(),
        grant_types: vec!["client_credentials".into()],
        auth_method: Some("private_key_jwt".into()),
        jwks,
        jwks_uri,
        ..ClientSpec::default()
    })
    .await
}

/// POSTs an assertion to `path`; returns the status and the JSON body.
async fn post_assertion(app: &TestApp, path: &str, jwt: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .form(&[
            ("grant_type", "client_credentials"),
            ("token", "unknown"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn private_key_jwt_inline_keys(app: &TestApp) {
    let (key, public) = keypair("k1");
    let c = register(app, Some(json!({ "keys": [public] }).to_string()), None).await;
    assert!(c.secret.is_none(), "no shared secret for private_key_jwt");
    // The issuer identifier is the audience (draft-ietf-oauth-rfc7523bis).
    let issuer = app.state.settings.issuer.clone();
    let jwt = assertion(app, &c.id, &key, &issuer, 60, "j-1");
    assert_eq!(token_with(app, &jwt).await, 200);
    assert_eq!(
        token_with(app, &jwt).await,
        401,
        "a replayed assertion is refused"
    );
    // The longest jti allowed (256 bytes) is recorded and refused when
    // replayed, on PostgreSQL too (its key would not fit the column as is).
    let long = "j".repeat(256);
    let jwt = assertion(app, &c.id, &key, &issuer, 60, &long);
    assert_eq!(token_with(app, &jwt).await, 200);
    assert_eq!(token_with(app, &jwt).await, 401, "a long jti replayed");
    // The token endpoint URL is not (unless the client opted in, below).
    let jwt = assertion(app, &c.id, &key, &app.url("/token"), 60, "j-2");
    assert_eq!(token_with(app, &jwt).await, 401);
    // Wrong audience, too long, expired, another key, another client's name.
    assert_eq!(
        token_with(
            app,
            &assertion(app, &c.id, &key, "https://elsewhere.example", 60, "j-3")
        )
        .await,
        401
    );
    assert_eq!(
        token_with(app, &assertion(app, &c.id, &key, &issuer, 3600, "j-4")).await,
        401
    );
    assert_eq!(
        token_with(app, &assertion(app, &c.id, &key, &issuer, -120, "j-5")).await,
        401
    );
    let (other, _) = keypair("k1");
    assert_eq!(
        token_with(app, &assertion(app, &c.id, &other, &issuer, 60, "j-6")).await,
        401
    );
    assert_eq!(
        token_with(
            app,
            &assertion(app, "someone-else", &key, &issuer, 60, "j-7")
        )
        .await,
        401
    );
    // Wrong assertion type.
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "x"),
            ("client_assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A secret-based client cannot authenticate with an assertion.
    let secret_client = app
        .create_client(ClientSpec {
            name: "s".into(),
            grant_types: vec!["client_credentials".into()],
            ..ClientSpec::default()
        })
        .await;
    assert_eq!(
        token_with(
            app,
            &assertion(app, &secret_client.id, &key, &issuer, 60, "j-8")
        )
        .await,
        401
    );
}

async fn private_key_jwt_from_jwks_uri(app: &TestApp) {
    let (key, public) = keypair("uri-1");
    let jwks = json!({ "keys": [public] });
    let router = Router::new().route(
        "/jwks",
        get(move || {
            let j = jwks.clone();
            async move { Json(j) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let c = register(app, None, Some(uri)).await;
    let jwt = assertion(app, &c.id, &key, &app.state.settings.issuer, 60, "u-1");
    assert_eq!(token_with(app, &jwt).await, 200);
}

/// The audience-injection attack on private_key_jwt: an assertion whose
/// `aud` names this issuer only by prefix, or among other audiences, was
/// accepted; it must be exactly the issuer, a string or a one-element
/// array, at every endpoint that takes assertions.
async fn assertion_audience_is_exactly_the_issuer(app: &TestApp) {
    let (key, public) = keypair("k1");
    let jwks = json!({ "keys": [public] }).to_string();
    let c = register(app, Some(jwks.clone()), None).await;
    let issuer = app.state.settings.issuer.clone();
    let token_endpoint = app.url("/token");
    let mut n = 0;
    let mut jti = || {
        n += 1;
        format!("a-{n}")
    };
    for path in ["/token", "/introspect", "/revoke"] {
        for aud in [json!(issuer), json!([issuer])] {
            let jwt = assertion_for(app, &c.id, &key, aud.clone(), 60, &jti());
            let (status, body) = post_assertion(app, path, &jwt).await;
            assert_eq!(status, 200, "{path} {aud}: {body}");
        }
        for aud in [
            json!(format!("{issuer}/")),
            json!(format!("{issuer}/anything")),
            json!(format!("{issuer}.attacker.example")),
            json!(token_endpoint),
            json!([issuer, "https://attacker.example"]),
            json!(["https://attacker.example", issuer]),
            json!([issuer, issuer]),
            json!([]),
            json!([[issuer]]),
            json!({ "aud": issuer }),
            json!(1),
        ] {
            let jwt = assertion_for(app, &c.id, &key, aud.clone(), 60, &jti());
            let (status, body) = post_assertion(app, path, &jwt).await;
            assert_eq!(status, 401, "{path} {aud}: {body}");
            assert_eq!(body["error"], "invalid_client", "{path} {aud}");
            assert_eq!(
                body["error_description"], "the client assertion's aud must be the issuer",
                "{path} {aud}"
            );
        }
    }

    // A client that opted into legacy_assertion_audience may also name the
    // token endpoint URL; nothing else widens.
    let legacy = app
        .create_client(ClientSpec {
            name: "spring".into(),
            grant_types: vec!["client_credentials".into()],
            auth_method: Some("private_key_jwt".into()),
            jwks: Some(jwks),
            legacy_assertion_audience: true,
            ..ClientSpec::default()
        })
        .await;
    for aud in [
        json!(issuer),
        json!(token_endpoint),
        json!([token_endpoint]),
    ] {
        let jwt = assertion_for(app, &legacy.id, &key, aud.clone(), 60, &jti());
        assert_eq!(post_assertion(app, "/token", &jwt).await.0, 200, "{aud}");
    }
    for aud in [
        json!(format!("{token_endpoint}/x")),
        json!(format!("{issuer}/introspect")),
        json!([token_endpoint, issuer]),
    ] {
        let jwt = assertion_for(app, &legacy.id, &key, aud.clone(), 60, &jti());
        let (status, body) = post_assertion(app, "/token", &jwt).await;
        assert_eq!(status, 401, "{aud}");
        assert_eq!(
            body["error_description"],
            "the client assertion's aud must be the issuer or the token endpoint URL, as a string or a one-element array"
        );
    }
    // The flag is only for assertion clients.
    let refused = gatehouse_server::clients::build(
        ClientSpec {
            name: "basic".into(),
            grant_types: vec!["client_credentials".into()],
            legacy_assertion_audience: true,
            ..ClientSpec::default()
        },
        &app.state.hasher,
        &app.state.sealer,
        0,
        &app.state.settings.outbound,
    )
    .err()
    .unwrap();
    assert_eq!(
        refused.to_string(),
        "legacy_assertion_audience is only for client_secret_jwt and private_key_jwt"
    );
}

crate::both_backends!(
    private_key_jwt_inline_keys,
    private_key_jwt_from_jwks_uri,
    assertion_audience_is_exactly_the_issuer,
);
