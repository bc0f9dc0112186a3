//! A resource server's view: access tokens encrypted to its own key,
//! opened and verified by an independent JOSE implementation (Python's
//! jwcrypto), and the opaque-token alternative.

use std::io::Write;

use gatehouse_server::clients::ClientSpec;
use gatehouse_storage::model::ResourceServer;
use serde_json::{json, Value};

use crate::support::{introspect, TestApp};

const AUDIENCE: &str = "https://api.example/orders";

/// Generates the resource server's key pair (its private half stays in the test).
fn rs_key(alg: &str) -> (Value, Value) {
    let kp = match alg {
        "RSA-OAEP-256" => josekit::jwe::RSA_OAEP_256
            .generate_key_pair(2048)
            .unwrap()
            .to_jwk_key_pair(),
        _ => josekit::jwe::ECDH_ES_A256KW
            .generate_ec_key_pair(josekit::jwk::alg::ec::EcCurve::P256)
            .unwrap()
            .to_jwk_key_pair(),
    };
    let mut private: Value = serde_json::from_str(&kp.to_string()).unwrap();
    private["kid"] = "rs-1".into();
    private["alg"] = alg.into();
    private["use"] = "enc".into();
    let mut public = private.clone();
    for m in ["d", "p", "q", "dp", "dq", "qi"] {
        public.as_object_mut().unwrap().remove(m);
    }
    (private, public)
}

async fn register(app: &TestApp, public: &Value, signing_alg: &str, format: &str) {
    app.state
        .store
        .create_resource(&ResourceServer {
            audience: AUDIENCE.into(),
            encryption_jwk: public.to_string(),
            signing_alg: signing_alg.parse().unwrap(),
            token_format: format.parse().unwrap(),
            access_token_lifetime: None,
            scopes: vec!["orders:read".into()],
            created_at: 0,
            clients: Vec::new(),
            allow_exchange_from: Vec::new(),
        })
        .await
        .unwrap();
}

fn jwcrypto(input: &Value) -> Option<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/it/verify_jwe.py");
    let have = std::process::Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with jwcrypto is required under CI"
        );
        eprintln!(
            "SKIPPED: independent JOSE check needs python3 with jwcrypto (pip install jwcrypto)"
        );
        return None;
    }
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "jwcrypto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

async fn check(app: &TestApp, enc_alg: &str, sig_alg: &str) {
    let (private, public) = rs_key(enc_alg);
    register(app, &public, sig_alg, "jwe").await;
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["orders:read".into()],
            ..ClientSpec::default()
        })
        .await;
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", AUDIENCE),
                ("scope", "orders:read"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let token = t["access_token"].as_str().unwrap();
    let jwks: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let Some(out) = jwcrypto(&json!({ "token": token, "private_jwk": private, "jwks": jwks }))
    else {
        return;
    };
    let claims = &out["claims"];
    assert_eq!(out["header"]["alg"], sig_alg);
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["sub"], c.id.as_str());
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(claims["scope"], "orders:read");
    assert!(claims["jti"].is_string() && claims["iat"].is_i64());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    // A scope the API does not define, and an unknown resource.
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", AUDIENCE),
                ("scope", "orders:write"),
            ],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://nope.example"),
            ],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_target");
}

async fn ecdh_es_token_opens_with_jwcrypto(app: &TestApp) {
    check(app, "ECDH-ES+A256KW", "ES256").await;
}

async fn rsa_oaep_token_opens_with_jwcrypto(app: &TestApp) {
    check(app, "RSA-OAEP-256", "RS256").await;
}

async fn opaque_format_gives_reference_tokens(app: &TestApp) {
    let (_, public) = rs_key("ECDH-ES+A256KW");
    register(app, &public, "ES256", "opaque").await;
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["orders:read".into()],
            ..ClientSpec::default()
        })
        .await;
    let r = app
        .token(
            &c,
            &[("grant_type", "client_credentials"), ("resource", AUDIENCE)],
        )
        .await;
    let t: Value = r.json().await.unwrap();
    let token = t["access_token"].as_str().unwrap();
    assert!(!token.contains('.'), "opaque tokens are not JWTs");
    let i = introspect(app, &c, token).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["aud"], AUDIENCE);
    crate::support::revoke(app, &c, token).await;
    let i = introspect(app, &c, token).await;
    assert_eq!(i, json!({ "active": false }));
}

crate::both_backends!(
    ecdh_es_token_opens_with_jwcrypto,
    rsa_oaep_token_opens_with_jwcrypto,
    opaque_format_gives_reference_tokens
);
