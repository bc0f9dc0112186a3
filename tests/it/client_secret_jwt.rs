//! client_secret_jwt client authentication (RFC 7523 2.2 and 3; OIDC Core
//! 9): assertions MACed with the client secret, which Gatehouse keeps
//! sealed with the key-encryption key. Registered by the admin path and by
//! dynamic registration (RFC 7591), rotated by RFC 7592 update.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_server::clients::ClientSpec;
use gatehouse_server::oauth::GrantType;
use josekit::{
    jws::{JwsHeader, JwsSigner, HS256, HS384, HS512, RS256},
    jwt::JwtPayload,
};
use serde_json::{json, Value};

use crate::support::{TestApp, TestClient};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The claims of an assertion; `edit` changes them before signing.
fn claims(
    app: &TestApp,
    client_id: &str,
    aud: &str,
    exp_in: i64,
    jti: &str,
    edit: impl FnOnce(&mut JwtPayload),
) -> JwtPayload {
    let mut p = JwtPayload::new();
    let now = app.state.now();
    p.set_claim("iss", Some(client_id.into())).unwrap();
    p.set_claim("sub", Some(client_id.into())).unwrap();
    p.set_claim("aud", Some(aud.into())).unwrap();
    p.set_claim("iat", Some(now.into())).unwrap();
    p.set_claim("exp", Some((now + exp_in).into())).unwrap();
    p.set_claim("jti", Some(jti.into())).unwrap();
    edit(&mut p);
    p
}

fn sign_with(p: &JwtPayload, signer: &dyn JwsSigner) -> String {
    josekit::jwt::encode_with_signer(p, &JwsHeader::new(), signer).unwrap()
}

fn hs(alg: &str, secret: &str) -> Box<dyn JwsSigner> {
    let key = secret.as_bytes();
    match alg {
        "HS256" => Box::new(HS256.signer_from_bytes(key).unwrap()),
        "HS384" => Box::new(HS384.signer_from_bytes(key).unwrap()),
        _ => Box::new(HS512.signer_from_bytes(key).unwrap()),
    }
}

/// A well-formed HS256 assertion for `client_id` with `secret`.
fn assertion(app: &TestApp, client_id: &str, secret: &str, jti: &str) -> String {
    let aud = app.state.settings.issuer.clone();
    sign_with(
        &claims(app, client_id, &aud, 60, jti, |_| {}),
        hs("HS256", secret).as_ref(),
    )
}

/// POST `path` with a client assertion; returns status, WWW-Authenticate and body.
async fn post_assertion(
    app: &TestApp,
    path: &str,
    jwt: &str,
    extra: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut form = vec![
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", jwt),
    ];
    form.extend_from_slice(extra);
    let r = app
        .http
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, www, body)
}

async fn token_with(app: &TestApp, jwt: &str) -> (u16, Option<String>, Value) {
    post_assertion(app, "/token", jwt, &[("grant_type", "client_credentials")]).await
}

/// Asserts the answer is `invalid_client`, 401, and no Basic challenge
/// (Basic was not used).
fn assert_invalid_client(answer: (u16, Option<String>, Value), what: &str) {
    let (status, www, body) = answer;
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(body["error"], "invalid_client", "{what}");
    assert_eq!(www, None, "{what}: no Basic challenge without Basic");
}

async fn jwt_client(app: &TestApp, signing_alg: Option<&str>) -> TestClient {
    app.create_client(ClientSpec {
        name: "hmac client".into(),
        grant_types: vec!["client_credentials".into()],
        auth_method: Some("client_secret_jwt".into()),
        token_endpoint_auth_signing_alg: signing_alg.map(str::to_owned),
        ..ClientSpec::default()
    })
    .await
}

async fn client_secret_jwt_authenticates_at_token_and_introspection(app: &TestApp) {
    let c = jwt_client(app, None).await;
    let secret = c
        .secret
        .clone()
        .expect("client_secret_jwt clients get a secret");
    assert!(
        secret.len() >= 64,
        "the secret is long enough for HS512 (RFC 7518 3.2)"
    );
    // Stored as a keyed hash and sealed: never in clear.
    let stored = app.state.store.client(&c.id).await.unwrap().unwrap();
    let sealed = stored.client_secret_sealed.clone().unwrap();
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert_eq!(stored.secret_hash, Some(app.state.hasher.hash(&secret)));
    let shown = serde_json::to_string(&stored).unwrap();
    assert!(!shown.contains("client_secret_sealed") && !shown.contains(&secret));

    // Each HMAC algorithm, with the issuer as audience (a string or a
    // one-element array).
    let issuer = app.state.settings.issuer.clone();
    let issuer_id = issuer.clone();
    let mut access_token = String::new();
    for (i, (alg, aud)) in [
        ("HS256", &issuer_id),
        ("HS384", &issuer),
        ("HS512", &issuer_id),
    ]
    .into_iter()
    .enumerate()
    {
        let jwt = sign_with(
            &claims(app, &c.id, aud, 60, &format!("ok-{i}"), |_| {}),
            hs(alg, &secret).as_ref(),
        );
        let (status, _, body) = token_with(app, &jwt).await;
        assert_eq!(status, 200, "{alg}: {body}");
        access_token = body["access_token"].as_str().unwrap().to_owned();
    }

    // Introspection takes the same authentication.
    let jwt = assertion(app, &c.id, &secret, "introspect-1");
    let (status, _, body) =
        post_assertion(app, "/introspect", &jwt, &[("token", &access_token)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], c.id.as_str());
    // A bad assertion there is invalid_client too.
    let jwt = assertion(
        app,
        &c.id,
        "not-the-secret-but-long-enough-for-hs256-1234567",
        "i-2",
    );
    assert_invalid_client(
        post_assertion(app, "/introspect", &jwt, &[("token", &access_token)]).await,
        "wrong secret at introspection",
    );
    // Revocation too (RFC 7009: 200 whatever the token).
    let jwt = assertion(app, &c.id, &secret, "revoke-1");
    let (status, _, _) = post_assertion(app, "/revoke", &jwt, &[("token", "unknown")]).await;
    assert_eq!(status, 200);

    // --- Everything below is invalid_client, 401. ---
    let wrong = URL_SAFE_NO_PAD.encode([42u8; 64]);
    assert_invalid_client(
        token_with(app, &assertion(app, &c.id, &wrong, "bad-1")).await,
        "wrong secret",
    );
    let jwt = assertion(app, &c.id, &secret, "replayed");
    assert_eq!(token_with(app, &jwt).await.0, 200);
    assert_invalid_client(token_with(app, &jwt).await, "replayed jti");
    let no_jti = sign_with(
        &claims(app, &c.id, &issuer_id, 60, "x", |p| {
            p.set_claim("jti", None).unwrap();
        }),
        hs("HS256", &secret).as_ref(),
    );
    assert_invalid_client(token_with(app, &no_jti).await, "no jti");
    for (exp_in, what) in [(-120, "expired"), (3600, "exp too far ahead")] {
        let jwt = sign_with(
            &claims(app, &c.id, &issuer_id, exp_in, what, |_| {}),
            hs("HS256", &secret).as_ref(),
        );
        assert_invalid_client(token_with(app, &jwt).await, what);
    }
    let jwt = sign_with(
        &claims(app, &c.id, "https://elsewhere.example", 60, "aud", |_| {}),
        hs("HS256", &secret).as_ref(),
    );
    assert_invalid_client(token_with(app, &jwt).await, "wrong aud");
    let jwt = sign_with(
        &claims(app, &c.id, &issuer_id, 60, "sub", |p| {
            p.set_subject("someone-else");
        }),
        hs("HS256", &secret).as_ref(),
    );
    assert_invalid_client(token_with(app, &jwt).await, "iss != sub");
    // alg none: no MAC at all.
    let p = claims(app, &c.id, &issuer_id, 60, "none", |_| {});
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(p.to_string())
    );
    assert_invalid_client(token_with(app, &none).await, "alg none");
    // An RS256 assertion (a key the client chose) is not accepted in place of the MAC.
    let rsa = RS256.generate_key_pair(2048).unwrap().to_jwk_private_key();
    let jwt = sign_with(
        &claims(app, &c.id, &issuer_id, 60, "rs256", |_| {}),
        &RS256.signer_from_jwk(&rsa).unwrap(),
    );
    assert_invalid_client(token_with(app, &jwt).await, "RS256 assertion");

    // The secret still works after all that (no lockout below the throttle).
    assert_eq!(
        token_with(app, &assertion(app, &c.id, &secret, "after"))
            .await
            .0,
        200
    );

    // The client cannot fall back to sending its secret with Basic or in the form.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&c.id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm="),
        "Basic was used, so the 401 challenges Basic"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", c.id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn client_secret_jwt_is_only_for_its_clients(app: &TestApp) {
    let issuer_id = app.state.settings.issuer.clone();
    // A client_secret_basic client MACing an assertion with its own secret.
    let basic = app
        .create_client(ClientSpec {
            name: "basic".into(),
            grant_types: vec!["client_credentials".into()],
            ..ClientSpec::default()
        })
        .await;
    let secret = basic.secret.clone().unwrap();
    let answer = token_with(app, &assertion(app, &basic.id, &secret, "b-1")).await;
    assert_eq!(
        answer.2["error_description"],
        "client is registered for client_secret_basic; the request used client_secret_jwt"
    );
    assert_invalid_client(answer, "client_secret_basic client using client_secret_jwt");
    // Basic still works for it, and a failure there carries the Basic challenge.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&basic.id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));

    // A private_key_jwt client: an HS256 assertion, whatever key it is
    // MACed with (here the client's public JWK text, the classic confusion).
    let mut private = josekit::jws::ES256
        .generate_key_pair()
        .unwrap()
        .to_jwk_key_pair();
    private.set_key_id("k1");
    private.set_algorithm("ES256");
    let mut public: Value =
        serde_json::from_str(&private.to_public_key().unwrap().to_string()).unwrap();
    public["use"] = "sig".into();
    public["alg"] = "ES256".into();
    public["kid"] = "k1".into();
    let public_text = public.to_string();
    let pkj = app
        .create_client(ClientSpec {
            name: "pkj".into(),
            grant_types: vec!["client_credentials".into()],
            auth_method: Some("private_key_jwt".into()),
            jwks: Some(json!({ "keys": [public] }).to_string()),
            ..ClientSpec::default()
        })
        .await;
    let mut header = JwsHeader::new();
    header.set_key_id("k1");
    let p = claims(app, &pkj.id, &issuer_id, 60, "p-1", |_| {});
    let jwt = josekit::jwt::encode_with_signer(
        &p,
        &header,
        &HS256.signer_from_bytes(public_text.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_invalid_client(
        token_with(app, &jwt).await,
        "HS256 for a private_key_jwt client",
    );
    // Its real ES256 assertion still works.
    let p = claims(app, &pkj.id, &issuer_id, 60, "p-2", |_| {});
    let jwt = josekit::jwt::encode_with_signer(
        &p,
        &header,
        &josekit::jws::ES256.signer_from_jwk(&private).unwrap(),
    )
    .unwrap();
    assert_eq!(token_with(app, &jwt).await.0, 200);

    // A registered algorithm narrows the allow-list to itself.
    let c = jwt_client(app, Some("HS512")).await;
    let secret = c.secret.clone().unwrap();
    let jwt = sign_with(
        &claims(app, &c.id, &issuer_id, 60, "r-1", |_| {}),
        hs("HS256", &secret).as_ref(),
    );
    assert_invalid_client(
        token_with(app, &jwt).await,
        "HS256 when HS512 is registered",
    );
    let jwt = sign_with(
        &claims(app, &c.id, &issuer_id, 60, "r-2", |_| {}),
        hs("HS512", &secret).as_ref(),
    );
    assert_eq!(token_with(app, &jwt).await.0, 200);
    // One client's secret does not authenticate another client_secret_jwt client.
    let other = jwt_client(app, None).await;
    assert_invalid_client(
        token_with(app, &assertion(app, &other.id, &secret, "x-1")).await,
        "another client's secret",
    );
    // Using Basic and an assertion at once is a malformed request.
    let jwt = assertion(app, &other.id, other.secret.as_deref().unwrap(), "two");
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&other.id, other.secret.as_deref())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// An initial access token that allows client_credentials registrations.
async fn initial_token(app: &TestApp) -> String {
    let token = gatehouse_server::secrets::random_token();
    let now = app.state.now();
    let policy = gatehouse_storage::model::RegistrationPolicy {
        grant_types: vec![GrantType::ClientCredentials],
        scopes: Vec::new(),
    };
    app.state
        .store
        .create_registration_token_with_policy(
            &app.state.hasher.hash(&token),
            Some(now + 600),
            None,
            Some(&policy),
            now,
        )
        .await
        .unwrap();
    token
}

async fn client_secret_jwt_dynamic_registration_and_rotation(app: &TestApp) {
    let iat = initial_token(app).await;
    let register = |meta: Value| {
        app.http
            .post(app.url("/register"))
            .bearer_auth(&iat)
            .json(&meta)
            .send()
    };
    // Algorithms that do not fit the method are refused.
    for (method, alg) in [
        ("client_secret_jwt", "RS256"),
        ("client_secret_jwt", "none"),
        ("private_key_jwt", "HS256"),
        ("client_secret_basic", "HS256"),
    ] {
        let r = register(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": method,
            "token_endpoint_auth_signing_alg": alg,
            "jwks": {"keys": []},
        }))
        .await
        .unwrap();
        assert_eq!(r.status(), 400, "{method} with {alg}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_client_metadata"
        );
    }

    let r = register(json!({
        "client_name": "Dyn HMAC",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_jwt",
        "token_endpoint_auth_signing_alg": "HS384",
    }))
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_jwt");
    assert_eq!(reg["token_endpoint_auth_signing_alg"], "HS384");
    assert_eq!(reg["client_secret_expires_at"], 0);
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = reg["registration_client_uri"].as_str().unwrap().to_owned();
    let issuer_id = app.state.settings.issuer.clone();
    let hs384 = |secret: &str, jti: &str| {
        sign_with(
            &claims(app, &id, &issuer_id, 60, jti, |_| {}),
            hs("HS384", secret).as_ref(),
        )
    };
    assert_eq!(token_with(app, &hs384(&secret, "d-1")).await.0, 200);
    assert_invalid_client(
        token_with(app, &assertion(app, &id, &secret, "d-2")).await,
        "HS256 when HS384 was registered",
    );
    let sealed_before = app
        .state
        .store
        .client(&id)
        .await
        .unwrap()
        .unwrap()
        .client_secret_sealed;

    let update = |body: Value| app.http.put(&uri).bearer_auth(&rat).json(&body).send();
    let base = json!({
        "client_id": id,
        "client_name": "Dyn HMAC renamed",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_jwt",
        "token_endpoint_auth_signing_alg": "HS384",
    });
    // A plain update keeps the secret.
    let r = update(base.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("client_secret").is_none());
    assert_eq!(body["client_name"], "Dyn HMAC renamed");
    assert_eq!(token_with(app, &hs384(&secret, "d-3")).await.0, 200);
    // A client_secret in the request must be the current one.
    let mut wrong = base.clone();
    wrong["client_secret"] = "chosen-by-the-client".into();
    let r = update(wrong).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );
    // Rotation: a new secret, resealed; the old one stops working at once.
    let mut rotate = base.clone();
    rotate["client_secret"] = secret.clone().into();
    rotate["rotate_client_secret"] = true.into();
    let r = update(rotate).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let new_secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(new_secret.len() >= 64);
    let stored = app.state.store.client(&id).await.unwrap().unwrap();
    assert_ne!(stored.client_secret_sealed, sealed_before);
    assert_eq!(stored.secret_hash, Some(app.state.hasher.hash(&new_secret)));
    // At once on the instance that took the update.
    assert_eq!(token_with(app, &hs384(&new_secret, "d-5")).await.0, 200);
    assert_invalid_client(
        token_with(app, &hs384(&secret, "d-4")).await,
        "the old secret after rotation",
    );
    // Reading the registration never shows the secret.
    let r = app.http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body.get("client_secret").is_none());
    assert_eq!(body["token_endpoint_auth_signing_alg"], "HS384");
}

async fn discovery_advertises_client_secret_jwt(app: &TestApp) {
    let d: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = d[format!("{endpoint}_endpoint_auth_methods_supported")]
            .as_array()
            .unwrap();
        assert!(methods.contains(&json!("client_secret_jwt")), "{endpoint}");
        assert!(methods.contains(&json!("private_key_jwt")), "{endpoint}");
        let algs = d[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")]
            .as_array()
            .unwrap();
        for alg in ["HS256", "HS384", "HS512", "RS256", "ES256"] {
            assert!(algs.contains(&json!(alg)), "{endpoint} {alg}");
        }
        assert!(!algs.contains(&json!("none")));
    }
}

crate::both_backends!(
    client_secret_jwt_authenticates_at_token_and_introspection,
    client_secret_jwt_is_only_for_its_clients,
    client_secret_jwt_dynamic_registration_and_rotation,
    discovery_advertises_client_secret_jwt,
);
