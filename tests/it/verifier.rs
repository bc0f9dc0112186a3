//! `gatehouse-verifier` against the real server: tokens for a registered
//! API are accepted with their claims, the example API enforces them, a
//! key rotation at Gatehouse is picked up by a JWKS refetch, and with the
//! status list check on a token revoked at /revoke is refused.

use std::sync::Arc;

use gatehouse_server::clients::ClientSpec;
use gatehouse_storage::model::ResourceServer;
use gatehouse_verifier::{Backend, Verifier, VerifierConfig, VerifierError};
use serde_json::Value;

use crate::support::{TestApp, TestClient};

const AUDIENCE: &str = "https://api.example/orders";
const SHORT_AUDIENCE: &str = "https://api.example/short";

/// The API's ECDH-ES+A256KW key pair (private JSON, public JSON).
fn api_key() -> (String, String) {
    let kp = josekit::jwe::ECDH_ES_A256KW
        .generate_ec_key_pair(josekit::jwk::alg::ec::EcCurve::P256)
        .unwrap()
        .to_jwk_key_pair();
    let mut private: Value = serde_json::from_str(&kp.to_string()).unwrap();
    private["kid"] = "api-1".into();
    private["alg"] = "ECDH-ES+A256KW".into();
    private["use"] = "enc".into();
    let mut public = private.clone();
    public.as_object_mut().unwrap().remove("d");
    (private.to_string(), public.to_string())
}

async fn register(app: &TestApp, audience: &str, public: &str, lifetime: Option<i64>) {
    app.state
        .store
        .create_resource(&ResourceServer {
            audience: audience.into(),
            encryption_jwk: public.into(),
            signing_alg: "ES256".parse().unwrap(),
            token_format: "jwe".parse().unwrap(),
            access_token_lifetime: lifetime,
            scopes: vec!["orders:read".into(), "orders:audit".into()],
            created_at: 0,
            clients: Vec::new(),
            allow_exchange_from: Vec::new(),
        })
        .await
        .unwrap();
}

async fn token_for(app: &TestApp, c: &TestClient, audience: &str, scope: &str) -> String {
    let r = app
        .token(
            c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", audience),
                ("scope", scope),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

async fn get_orders(app: &TestApp, api: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(format!("{api}/orders"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Flips one character in the middle of the JWE ciphertext.
fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let ct = &mut parts[3];
    let i = ct.len() / 2;
    let c = if &ct[i..=i] == "A" { "B" } else { "A" };
    ct.replace_range(i..=i, c);
    parts.join(".")
}

async fn verifier_checks_real_tokens_and_follows_rotation(app: &TestApp) {
    let (private, public) = api_key();
    register(app, AUDIENCE, &public, None).await;
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["orders:read".into(), "orders:audit".into()],
            ..ClientSpec::default()
        })
        .await;
    let token = token_for(app, &c, AUDIENCE, "orders:read").await;

    let verifier = Arc::new(
        Verifier::new(VerifierConfig::new(
            app.base.clone(),
            AUDIENCE,
            private.clone(),
        ))
        .unwrap(),
    );
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.sub, c.id);
    assert_eq!(claims.client_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(claims.scope, vec!["orders:read".to_owned()]);
    assert!(claims.has_scope("orders:read") && !claims.has_scope("orders:audit"));
    assert!(claims.jti.is_some());
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.auth_time, None);
    assert_eq!(claims.raw["aud"], AUDIENCE);
    // The pure-Rust backend reads the server's token alike.
    let pure = Verifier::new(
        VerifierConfig::new(app.base.clone(), AUDIENCE, private.clone())
            .backend(Backend::RustCrypto),
    )
    .unwrap();
    assert_eq!(pure.verify(&token).await.unwrap(), claims);

    // Wrong audience / issuer configured: refused with the right variant.
    let other = Verifier::new(VerifierConfig::new(
        app.base.clone(),
        "https://api.example/other",
        private.clone(),
    ))
    .unwrap();
    assert_eq!(
        other.verify(&token).await,
        Err(VerifierError::WrongAudience)
    );
    let other = Verifier::new(VerifierConfig::new(
        "https://evil.example",
        AUDIENCE,
        private.clone(),
    ))
    .unwrap();
    let mut cfg = VerifierConfig::new("https://evil.example", AUDIENCE, private.clone());
    cfg.jwks_uri = Some(app.url("/jwks"));
    let other_with_jwks = Verifier::new(cfg).unwrap();
    assert!(other.verify(&token).await.is_err());
    assert_eq!(
        other_with_jwks.verify(&token).await,
        Err(VerifierError::WrongIssuer)
    );
    // Another API's key cannot open it.
    let (stranger, _) = api_key();
    let stranger =
        Verifier::new(VerifierConfig::new(app.base.clone(), AUDIENCE, stranger)).unwrap();
    assert!(matches!(
        stranger.verify(&token).await,
        Err(VerifierError::Decrypt(_))
    ));
    // Tampering and garbage.
    assert!(matches!(
        verifier.verify(&tamper(&token)).await,
        Err(VerifierError::Decrypt(_))
    ));
    assert!(matches!(
        verifier.verify("a.b.c").await,
        Err(VerifierError::Malformed(_))
    ));
    let huge = "a".repeat(17 * 1024);
    assert!(matches!(
        verifier.verify(&huge).await,
        Err(VerifierError::Malformed(_))
    ));
    // Hostile headers, encrypted to the API's real key. (A separate
    // verifier: the forged unknown kid below spends its JWKS refetch for
    // the next 30 s, which would delay picking up the rotation tested later.)
    let hostile = Verifier::new(VerifierConfig::new(
        app.base.clone(),
        AUDIENCE,
        private.clone(),
    ))
    .unwrap();
    let forged = |jws_header: Value| {
        format!(
            "{}.{}.c2ln",
            b64(&jws_header.to_string()),
            b64(r#"{"iss":"x"}"#)
        )
    };
    let none = encrypt(
        &public,
        &forged(serde_json::json!({"alg":"none","typ":"at+jwt","kid":"k"})),
        None,
    );
    assert!(matches!(
        hostile.verify(&none).await,
        Err(VerifierError::Signature(_))
    ));
    let hs = encrypt(
        &public,
        &forged(serde_json::json!({"alg":"HS256","typ":"at+jwt","kid":"k"})),
        None,
    );
    assert!(matches!(
        hostile.verify(&hs).await,
        Err(VerifierError::Signature(_))
    ));
    for member in ["jwk", "jku", "x5u", "x5c"] {
        let mut h = serde_json::json!({"alg":"ES256","typ":"at+jwt","kid":"k"});
        h[member] = "https://evil.example/key".into();
        let t = encrypt(&public, &forged(h), None);
        assert!(
            matches!(hostile.verify(&t).await, Err(VerifierError::Signature(_))),
            "{member}"
        );
    }
    let unknown = encrypt(
        &public,
        &forged(serde_json::json!({"alg":"ES256","typ":"at+jwt","kid":"nope"})),
        None,
    );
    assert_eq!(
        hostile.verify(&unknown).await,
        Err(VerifierError::UnknownKey)
    );
    let zipped = encrypt(
        &public,
        &forged(serde_json::json!({"alg":"ES256","kid":"k"})),
        Some("DEF"),
    );
    assert!(matches!(
        hostile.verify(&zipped).await,
        Err(VerifierError::Malformed(_))
    ));

    // An error never echoes the token.
    let e = verifier.verify(&tamper(&token)).await.unwrap_err();
    assert!(!e.to_string().contains(&token[..20]));

    // The example API, in-process.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, gatehouse_example_api::router(verifier.clone()))
            .await
            .unwrap();
    });
    let verifier = Arc::new(
        Verifier::new(VerifierConfig::new(
            app.base.clone(),
            AUDIENCE,
            private.clone(),
        ))
        .unwrap(),
    );

    let r = get_orders(app, &api, Some(&token)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["caller"]["client_id"], c.id.as_str());
    assert!(body["orders"].is_array());

    let r = get_orders(app, &api, None).await;
    assert_eq!(r.status(), 401);
    let challenge = www_authenticate(&r);
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");

    let no_scope = token_for(app, &c, AUDIENCE, "orders:audit").await;
    let r = get_orders(app, &api, Some(&no_scope)).await;
    assert_eq!(r.status(), 403);
    assert!(www_authenticate(&r).contains("error=\"insufficient_scope\""));

    let r = get_orders(app, &api, Some(&tamper(&token))).await;
    assert_eq!(r.status(), 401);
    let challenge = www_authenticate(&r);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(!challenge.contains(&token[..20]));

    // Rotation at Gatehouse. The first rotation promotes the key already
    // pre-published in the JWKS; the second promotes a key published after
    // the verifier fetched the JWKS, so its kid is unknown to the verifier,
    // which refetches the JWKS and accepts old and new tokens.
    let old_kid = kid_of_nested(&private, &token);
    verifier.verify(&token).await.unwrap();
    let jwks_before = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for _ in 0..2 {
        app.state
            .keys
            .rotate(None, Some(gatehouse_keys::Alg::ES256))
            .await
            .unwrap();
    }
    let new_token = token_for(app, &c, AUDIENCE, "orders:read").await;
    let new_kid = kid_of_nested(&private, &new_token);
    assert_ne!(old_kid, new_kid, "rotation changes the signing kid");
    assert!(
        !jwks_before.contains(&new_kid),
        "the new kid was not in the cached JWKS"
    );
    assert_eq!(verifier.verify(&new_token).await.unwrap().sub, c.id);
    assert_eq!(verifier.verify(&token).await.unwrap().sub, c.id);
    let r = get_orders(app, &api, Some(&new_token)).await;
    assert_eq!(r.status(), 200);

    // A further unknown kid within 30 s of that refetch is not refetched.
    for _ in 0..2 {
        app.state
            .keys
            .rotate(None, Some(gatehouse_keys::Alg::ES256))
            .await
            .unwrap();
    }
    let newer_token = token_for(app, &c, AUDIENCE, "orders:read").await;
    assert_eq!(
        verifier.verify(&newer_token).await,
        Err(VerifierError::UnknownKey)
    );

    server.abort();
}

/// The `kid` of the nested JWS (opened with josekit directly).
fn kid_of_nested(private: &str, token: &str) -> String {
    let jwk = josekit::jwk::Jwk::from_bytes(private.as_bytes()).unwrap();
    let dec = josekit::jwe::ECDH_ES_A256KW
        .decrypter_from_jwk(&jwk)
        .unwrap();
    let (jws, _) = josekit::jwe::deserialize_compact(token, &dec).unwrap();
    let jws = String::from_utf8(jws).unwrap();
    let header = jws.split('.').next().unwrap();
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// A JWE (ECDH-ES+A256KW, A256GCM, cty JWT) of `payload` to `public`.
fn encrypt(public: &str, payload: &str, zip: Option<&str>) -> String {
    let jwk = josekit::jwk::Jwk::from_bytes(public.as_bytes()).unwrap();
    let enc = josekit::jwe::ECDH_ES_A256KW
        .encrypter_from_jwk(&jwk)
        .unwrap();
    let mut h = josekit::jwe::JweHeader::new();
    h.set_content_encryption("A256GCM");
    h.set_content_type("JWT");
    if let Some(z) = zip {
        h.set_claim("zip", Some(z.into())).unwrap();
    }
    josekit::jwe::serialize_compact(payload.as_bytes(), &h, &enc).unwrap()
}

async fn verifier_refuses_expired_tokens(app: &TestApp) {
    // A resource with a 1 s lifetime (the 30 s minimum is a CLI rule); the
    // verifier runs on the wall clock with no leeway.
    let (private, public) = api_key();
    register(app, SHORT_AUDIENCE, &public, Some(1)).await;
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["orders:read".into(), "orders:audit".into()],
            ..ClientSpec::default()
        })
        .await;
    let token = token_for(app, &c, SHORT_AUDIENCE, "orders:read").await;
    let mut cfg = VerifierConfig::new(app.base.clone(), SHORT_AUDIENCE, private.clone());
    cfg.leeway_secs = 0;
    let verifier = Verifier::new(cfg).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(verifier.verify(&token).await, Err(VerifierError::Expired));
    // The same token is fine for a verifier with the default 60 s leeway.
    let lenient = Verifier::new(VerifierConfig::new(
        app.base.clone(),
        SHORT_AUDIENCE,
        private,
    ))
    .unwrap();
    assert!(lenient.verify(&token).await.is_ok());
}

/// With the status list check on, a token revoked at `/revoke` (RFC 7009)
/// is refused once the verifier's cached list lapses; until then the cached
/// list still passes it (the documented staleness).
async fn verifier_status_list_refuses_revoked_tokens(app: &TestApp) {
    let (private, public) = api_key();
    register(app, AUDIENCE, &public, None).await;
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["orders:read".into(), "orders:audit".into()],
            ..ClientSpec::default()
        })
        .await;
    let token = token_for(app, &c, AUDIENCE, "orders:read").await;
    let other = token_for(app, &c, AUDIENCE, "orders:read").await;
    let one_second = std::time::Duration::from_secs(1);
    let strict = Verifier::new(
        VerifierConfig::new(app.base.clone(), AUDIENCE, private.clone())
            .check_status_list(true)
            .require_status_claim(true)
            .status_list_cache_bounds(one_second, one_second),
    )
    .unwrap();
    // A verifier that caches the list for the default ceiling (10 min).
    let patient = Verifier::new(
        VerifierConfig::new(app.base.clone(), AUDIENCE, private.clone()).check_status_list(true),
    )
    .unwrap();
    let claims = strict.verify(&token).await.unwrap();
    let uri = claims.raw["status"]["status_list"]["uri"].as_str().unwrap();
    assert!(
        uri.starts_with(&format!("{}/statuslists/", app.base)),
        "{uri}"
    );
    assert!(claims.raw["status"]["status_list"]["idx"].is_u64());
    patient.verify(&token).await.unwrap();
    strict.verify(&other).await.unwrap();

    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(strict.verify(&token).await, Err(VerifierError::Revoked));
    assert_eq!(strict.verify(&other).await.unwrap().sub, c.id);
    // The long-caching verifier has not looked again yet.
    assert!(patient.verify(&token).await.is_ok());
    // A fresh verifier with the check sees the revocation at once.
    let fresh = Verifier::new(
        VerifierConfig::new(app.base.clone(), AUDIENCE, private.clone()).check_status_list(true),
    )
    .unwrap();
    assert_eq!(fresh.verify(&token).await, Err(VerifierError::Revoked));
    // Without the check the token still verifies (it has not expired).
    let plain = Verifier::new(VerifierConfig::new(app.base.clone(), AUDIENCE, private)).unwrap();
    assert!(plain.verify(&token).await.is_ok());
}

crate::both_backends!(
    verifier_checks_real_tokens_and_follows_rotation,
    verifier_refuses_expired_tokens,
    verifier_status_list_refuses_revoked_tokens,
);
