//! private_key_jwt client authentication (RFC 7523; OIDC Core 9), with keys
//! registered inline (`jwks`) or fetched from a `jwks_uri`.

use axum::{routing::get, Json, Router};
use gatehouse_server::clients::ClientSpec;
use josekit::{
    jwk::Jwk,
    jws::{JwsHeader, ES256},
    jwt::JwtPayload,
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
    let mut header = JwsHeader::new();
    header.set_key_id(key.key_id().unwrap());
    let mut p = JwtPayload::new();
    let now = app.state.now();
    p.set_claim("iss", Some(client_id.into())).unwrap();
    p.set_claim("sub", Some(client_id.into())).unwrap();
    p.set_claim("aud", Some(aud.into())).unwrap();
    p.set_claim("iat", Some(now.into())).unwrap();
    p.set_claim("exp", Some((now + exp_in).into())).unwrap();
    p.set_claim("jti", Some(jti.into())).unwrap();
    josekit::jwt::encode_with_signer(&p, &header, &ES256.signer_from_jwk(key).unwrap()).unwrap()
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

async fn private_key_jwt_inline_keys(app: &TestApp) {
    let (key, public) = keypair("k1");
    let c = register(app, Some(json!({ "keys": [public] }).to_string()), None).await;
    assert!(c.secret.is_none(), "no shared secret for private_key_jwt");
    let token_endpoint = app.url("/token");
    let jwt = assertion(app, &c.id, &key, &token_endpoint, 60, "j-1");
    assert_eq!(token_with(app, &jwt).await, 200);
    assert_eq!(
        token_with(app, &jwt).await,
        401,
        "a replayed assertion is refused"
    );
    // The issuer is an accepted audience too.
    let issuer = app.state.settings.issuer.clone();
    assert_eq!(
        token_with(app, &assertion(app, &c.id, &key, &issuer, 60, "j-2")).await,
        200
    );
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
        token_with(
            app,
            &assertion(app, &c.id, &key, &token_endpoint, 3600, "j-4")
        )
        .await,
        401
    );
    assert_eq!(
        token_with(
            app,
            &assertion(app, &c.id, &key, &token_endpoint, -120, "j-5")
        )
        .await,
        401
    );
    let (other, _) = keypair("k1");
    assert_eq!(
        token_with(
            app,
            &assertion(app, &c.id, &other, &token_endpoint, 60, "j-6")
        )
        .await,
        401
    );
    assert_eq!(
        token_with(
            app,
            &assertion(app, "someone-else", &key, &token_endpoint, 60, "j-7")
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
            &assertion(app, &secret_client.id, &key, &token_endpoint, 60, "j-8")
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
    let jwt = assertion(app, &c.id, &key, &app.url("/token"), 60, "u-1");
    assert_eq!(token_with(app, &jwt).await, 200);
}

crate::both_backends!(private_key_jwt_inline_keys, private_key_jwt_from_jwks_uri);
