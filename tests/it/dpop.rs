//! DPoP (RFC 9449) at the token and userinfo endpoints, with proofs made
//! here by hand (josekit) and thumbprints computed here (RFC 7638): bound
//! tokens (`token_type` DPoP, `cnf.jkt` inside the JWE and at
//! introspection), public clients' refresh tokens bound to the key,
//! `dpop_jkt` binding the code, every refused proof, replay across
//! instances, and server nonces.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse_keys::Clock;
use gatehouse_server::{clients::ClientSpec, config::RawConfig};
use josekit::{
    jwk::Jwk,
    jws::{JwsHeader, ES256},
    jwt::{self, JwtPayload},
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::support::{ecdh_api, introspect, spawn_app_with, DbKind, TestApp, TestClient};

/// A client's DPoP key pair and its thumbprint.
pub(crate) struct DpopKey {
    private: Jwk,
    public: Jwk,
    pub jkt: String,
}

impl DpopKey {
    pub fn new() -> DpopKey {
        let kp = ES256.generate_key_pair().unwrap();
        let public = kp.to_jwk_public_key();
        // RFC 7638 3.2: the required members, in lexicographic order.
        let canonical = json!({
            "crv": public.parameter("crv").unwrap(),
            "kty": "EC",
            "x": public.parameter("x").unwrap(),
            "y": public.parameter("y").unwrap(),
        })
        .to_string();
        let jkt = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        DpopKey {
            private: kp.to_jwk_private_key(),
            public,
            jkt,
        }
    }

    /// A proof with these claims and `typ`.
    pub fn sign(&self, typ: &str, claims: Value) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_jwk(self.public.clone());
        let Value::Object(map) = claims else {
            panic!("claims must be an object")
        };
        let payload = JwtPayload::from_map(map).unwrap();
        let signer = ES256.signer_from_jwk(&self.private).unwrap();
        jwt::encode_with_signer(&payload, &header, &signer).unwrap()
    }

    /// A fresh proof for `method` at `url` (RFC 9449 4.2).
    pub fn proof(&self, app: &TestApp, method: &str, url: &str) -> String {
        self.proof_with(app, method, url, Map::new())
    }

    /// A fresh proof with extra claims (`ath`, `nonce`).
    pub fn proof_with(
        &self,
        app: &TestApp,
        method: &str,
        url: &str,
        extra: Map<String, Value>,
    ) -> String {
        let mut claims = json!({
            "htm": method,
            "htu": url,
            "iat": app.clock.now(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        claims.as_object_mut().unwrap().extend(extra);
        self.sign("dpop+jwt", claims)
    }

    /// A proof for userinfo carrying the token's hash (`ath`).
    pub fn userinfo_proof(&self, app: &TestApp, method: &str, token: &str) -> String {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        let mut extra = Map::new();
        extra.insert("ath".into(), ath.into());
        self.proof_with(app, method, &app.url("/userinfo"), extra)
    }
}

/// POSTs `form` to /token as `c` (Basic when it has a secret) with the
/// given DPoP headers.
pub(crate) async fn token_with(
    app: &TestApp,
    c: &TestClient,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> reqwest::Response {
    let mut req = app.http.post(app.url("/token")).form(form);
    if let Some(s) = &c.secret {
        req = req.basic_auth(&c.id, Some(s));
    }
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    req.send().await.unwrap()
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn refused(answer: &(u16, Value), error: &str, description: &str) {
    assert_eq!(answer.0, 400, "{answer:?}");
    assert_eq!(answer.1["error"], error, "{answer:?}");
    assert!(
        answer.1["error_description"]
            .as_str()
            .unwrap()
            .contains(description),
        "{answer:?}"
    );
}

/// A resource server `https://api.example` (JWE to a key the test holds)
/// and a client_credentials client allowed its scope.
async fn api_and_service(app: &TestApp) -> (josekit::jwk::alg::ec::EcKeyPair, TestClient) {
    let kp = ecdh_api(app, "https://api.example").await;
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            ..ClientSpec::default()
        })
        .await;
    (kp, c)
}

const CC: [(&str, &str); 3] = [
    ("grant_type", "client_credentials"),
    ("resource", "https://api.example"),
    ("scope", "read"),
];

/// The claims of a token to the API, as the API reads them.
fn api_claims(kp: &josekit::jwk::alg::ec::EcKeyPair, token: &str) -> Value {
    let decrypter = josekit::jwe::ECDH_ES_A256KW
        .decrypter_from_jwk(&kp.to_jwk_private_key())
        .unwrap();
    let (jws, _) = josekit::jwe::deserialize_compact(token, &decrypter).unwrap();
    let payload = std::str::from_utf8(&jws)
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// client_credentials with a proof: a DPoP token whose `cnf.jkt` (inside
/// the JWE, and at introspection) is the key's thumbprint; without one, a
/// Bearer token without `cnf`.
async fn client_credentials_tokens_are_bound_to_the_proof_key(app: &TestApp) {
    let (kp, c) = api_and_service(app).await;
    let key = DpopKey::new();
    let r = token_with(app, &c, &CC, &[&key.proof(app, "POST", &app.url("/token"))]).await;
    let (status, t) = json_of(r).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(api_claims(&kp, at)["cnf"]["jkt"], key.jkt);
    let i = introspect(app, &c, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], key.jkt);

    let (status, t) = json_of(token_with(app, &c, &CC, &[]).await).await;
    assert_eq!(status, 200);
    assert_eq!(t["token_type"], "Bearer");
    let at = t["access_token"].as_str().unwrap();
    assert!(api_claims(&kp, at).get("cnf").is_none());
    let i = introspect(app, &c, at).await;
    assert_eq!(i["token_type"], "Bearer");
    assert!(i.get("cnf").is_none());
}

/// Every broken rule is `invalid_dpop_proof` naming it; a proof is
/// accepted once, also across instances.
async fn bad_proofs_are_refused_by_name(app: &TestApp) {
    let (_, c) = api_and_service(app).await;
    let key = DpopKey::new();
    let url = app.url("/token");
    let now = app.clock.now();
    let claims = |htm: &str, htu: &str, iat: i64| json!({"htm": htm, "htu": htu, "iat": iat, "jti": uuid::Uuid::new_v4().to_string()});
    let cases = [
        (key.sign("dpop+jwt", claims("GET", &url, now)), "htm"),
        (
            key.sign(
                "dpop+jwt",
                claims("POST", "https://elsewhere.example/token", now),
            ),
            "htu",
        ),
        (key.sign("dpop+jwt", claims("POST", &url, now - 120)), "iat"),
        (key.sign("dpop+jwt", claims("POST", &url, now + 120)), "iat"),
        (key.sign("JWT", claims("POST", &url, now)), "typ"),
        ("not-a-jws".to_owned(), "compact JWS"),
    ];
    for (proof, named) in cases {
        let a = json_of(token_with(app, &c, &CC, &[&proof]).await).await;
        refused(&a, "invalid_dpop_proof", named);
    }
    // Unsigned (alg none), and a private key in the header.
    let body = URL_SAFE_NO_PAD.encode(claims("POST", &url, now).to_string());
    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": serde_json::from_str::<Value>(&key.public.to_string()).unwrap()}).to_string())
    );
    refused(
        &json_of(token_with(app, &c, &CC, &[&none]).await).await,
        "invalid_dpop_proof",
        "alg",
    );
    let mut header = JwsHeader::new();
    header.set_token_type("dpop+jwt");
    header.set_jwk(key.private.clone());
    let Value::Object(m) = claims("POST", &url, now) else {
        unreachable!()
    };
    let leaky = jwt::encode_with_signer(
        &JwtPayload::from_map(m).unwrap(),
        &header,
        &ES256.signer_from_jwk(&key.private).unwrap(),
    )
    .unwrap();
    refused(
        &json_of(token_with(app, &c, &CC, &[&leaky]).await).await,
        "invalid_dpop_proof",
        "jwk",
    );

    // Two DPoP headers.
    let (p1, p2) = (key.proof(app, "POST", &url), key.proof(app, "POST", &url));
    refused(
        &json_of(token_with(app, &c, &CC, &[&p1, &p2]).await).await,
        "invalid_dpop_proof",
        "one DPoP header",
    );

    // Replay: the same proof twice, here and at another instance.
    let proof = key.proof(app, "POST", &url);
    assert_eq!(token_with(app, &c, &CC, &[&proof]).await.status(), 200);
    refused(
        &json_of(token_with(app, &c, &CC, &[&proof]).await).await,
        "invalid_dpop_proof",
        "used before",
    );
    // A second instance behind the same issuer shares the replay store.
    let b = app.second_instance().await;
    let other = key.proof(app, "POST", &url);
    assert_eq!(token_with(app, &c, &CC, &[&other]).await.status(), 200);
    let a = json_of(token_with(&b, &c, &CC, &[&other]).await).await;
    refused(&a, "invalid_dpop_proof", "used before");
    let fresh = key.proof(app, "POST", &url);
    assert_eq!(token_with(&b, &c, &CC, &[&fresh]).await.status(), 200);
    b.stop().await;
}

/// A public client: the access token and the refresh token are bound; the
/// refresh token works only with a proof of the same key, and failed
/// attempts neither spend it nor set off reuse detection.
async fn a_public_clients_refresh_token_is_bound_to_its_key(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "spa".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    let key = DpopKey::new();
    let (code, verifier) = app
        .code(&c, "openid offline_access", "&prompt=consent")
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
        ("client_id", c.id.as_str()),
    ];
    let proof = key.proof(app, "POST", &app.url("/token"));
    let (status, t) = json_of(token_with(app, &c, &form, &[&proof]).await).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", c.id.as_str()),
    ];
    let a = json_of(token_with(app, &c, &refresh, &[]).await).await;
    refused(&a, "invalid_grant", "bound to a DPoP key");
    let stranger = DpopKey::new();
    let a = json_of(
        token_with(
            app,
            &c,
            &refresh,
            &[&stranger.proof(app, "POST", &app.url("/token"))],
        )
        .await,
    )
    .await;
    refused(&a, "invalid_grant", "bound to another DPoP key");
    let (status, t) = json_of(
        token_with(
            app,
            &c,
            &refresh,
            &[&key.proof(app, "POST", &app.url("/token"))],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    // The successor is bound too.
    let next = t["refresh_token"].as_str().unwrap();
    let refresh2 = [
        ("grant_type", "refresh_token"),
        ("refresh_token", next),
        ("client_id", c.id.as_str()),
    ];
    refused(
        &json_of(token_with(app, &c, &refresh2, &[]).await).await,
        "invalid_grant",
        "bound to a DPoP key",
    );
}

/// A confidential client's refresh token is not bound (RFC 9449 5): a
/// refresh without a proof gets a Bearer token.
async fn a_confidential_clients_refresh_token_is_not_bound(app: &TestApp) {
    let c = app.web_client().await;
    let key = DpopKey::new();
    let (code, verifier) = app
        .code(&c, "openid offline_access", "&prompt=consent")
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, t) = json_of(
        token_with(
            app,
            &c,
            &form,
            &[&key.proof(app, "POST", &app.url("/token"))],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let r = app.refresh(&c, t["refresh_token"].as_str().unwrap()).await;
    let (status, t) = json_of(r).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
}

/// Userinfo takes a bound token only as `Authorization: DPoP` with a
/// proof of its key carrying `ath` (RFC 9449 7); anything else is 401
/// with a DPoP challenge.
async fn userinfo_wants_the_proof_of_a_bound_token(app: &TestApp) {
    let c = app.web_client().await;
    let key = DpopKey::new();
    let (code, verifier) = app.code(&c, "openid profile", "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, t) = json_of(
        token_with(
            app,
            &c,
            &form,
            &[&key.proof(app, "POST", &app.url("/token"))],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    let at = t["access_token"].as_str().unwrap();
    let get = |auth: String, proof: Option<String>| {
        let mut req = app
            .http
            .get(app.url("/userinfo"))
            .header("Authorization", auth);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    let r = get(
        format!("DPoP {at}"),
        Some(key.userinfo_proof(app, "GET", at)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["preferred_username"], "dave");

    let challenge = |r: &reqwest::Response| {
        r.headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let cases = [
        (format!("Bearer {at}"), None, "invalid_token"),
        (format!("DPoP {at}"), None, "invalid_dpop_proof"),
        (
            format!("DPoP {at}"),
            Some(DpopKey::new().userinfo_proof(app, "GET", at)),
            "invalid_token",
        ),
        // No ath, and a proof for another method.
        (
            format!("DPoP {at}"),
            Some(key.proof(app, "GET", &app.url("/userinfo"))),
            "invalid_dpop_proof",
        ),
        (
            format!("DPoP {at}"),
            Some(key.userinfo_proof(app, "POST", at)),
            "invalid_dpop_proof",
        ),
    ];
    for (auth, proof, error) in cases {
        let r = get(auth.clone(), proof).await.unwrap();
        assert_eq!(r.status(), 401, "{auth:.10}");
        let ch = challenge(&r);
        assert!(ch.starts_with(&format!("DPoP error=\"{error}\"")), "{ch}");
        assert!(ch.contains("algs=\"ES256 EdDSA RS256 PS256\""), "{ch}");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    // A replayed proof.
    let proof = key.userinfo_proof(app, "GET", at);
    assert_eq!(
        get(format!("DPoP {at}"), Some(proof.clone()))
            .await
            .unwrap()
            .status(),
        200
    );
    let r = get(format!("DPoP {at}"), Some(proof)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("used before"));

    // An unbound token under the DPoP scheme; no credentials at all.
    let (code, verifier) = app.code(&c, "openid", "").await;
    let plain = app.redeem(&c, &code, &verifier).await;
    let plain = plain["access_token"].as_str().unwrap();
    let r = get(
        format!("DPoP {plain}"),
        Some(key.userinfo_proof(app, "GET", plain)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        challenge(&r).contains("not DPoP-bound"),
        "{}",
        challenge(&r)
    );
    let r = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let ch = challenge(&r);
    assert!(
        ch.starts_with("Bearer realm=\"gatehouse\"") && ch.contains("DPoP algs="),
        "{ch}"
    );
}

/// `dpop_jkt` at /authorize binds the code: another key's proof is
/// `invalid_grant`, none is `invalid_dpop_proof`, and neither spends it.
async fn dpop_jkt_binds_the_code(app: &TestApp) {
    let c = app.web_client().await;
    let key = DpopKey::new();
    let (code, verifier) = app
        .code(&c, "openid", &format!("&dpop_jkt={}", key.jkt))
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    refused(
        &json_of(token_with(app, &c, &form, &[]).await).await,
        "invalid_dpop_proof",
        "dpop_jkt",
    );
    let other = DpopKey::new().proof(app, "POST", &app.url("/token"));
    refused(
        &json_of(token_with(app, &c, &form, &[&other]).await).await,
        "invalid_grant",
        "dpop_jkt",
    );
    let (status, t) = json_of(
        token_with(
            app,
            &c,
            &form,
            &[&key.proof(app, "POST", &app.url("/token"))],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");

    // A malformed dpop_jkt goes back to the client as invalid_request.
    let (_, challenge) = crate::support::pkce();
    let url = app.authorize_url(&c, "openid", &challenge, "&dpop_jkt=short");
    let r = app.browser.get(url).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.contains("error=invalid_request") && loc.contains("dpop_jkt"),
        "{loc}"
    );
}

/// A client registered with `dpop_bound_access_tokens` gets no token
/// without a proof (RFC 9449 5.2).
async fn a_dpop_bound_client_must_send_a_proof(app: &TestApp) {
    let _ = ecdh_api(app, "https://api.example").await;
    let c = app
        .create_client(ClientSpec {
            name: "bound".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            dpop_bound_access_tokens: true,
            ..ClientSpec::default()
        })
        .await;
    let a = json_of(token_with(app, &c, &CC, &[]).await).await;
    refused(&a, "invalid_dpop_proof", "dpop_bound_access_tokens");
    let key = DpopKey::new();
    let (status, t) =
        json_of(token_with(app, &c, &CC, &[&key.proof(app, "POST", &app.url("/token"))]).await)
            .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
}

/// An API using `gatehouse-verifier` takes Gatehouse's bound token only
/// with a proof of its key (and never as a bearer token).
async fn the_verifier_holds_the_binding(app: &TestApp) {
    use gatehouse_verifier::{Verifier, VerifierConfig, VerifierError};
    let (kp, c) = api_and_service(app).await;
    let key = DpopKey::new();
    let (_, t) =
        json_of(token_with(app, &c, &CC, &[&key.proof(app, "POST", &app.url("/token"))]).await)
            .await;
    let at = t["access_token"].as_str().unwrap();
    let mut private: Value = serde_json::from_str(&kp.to_jwk_private_key().to_string()).unwrap();
    private["kid"] = "api".into();
    private["alg"] = "ECDH-ES+A256KW".into();
    let verifier = Verifier::new(
        VerifierConfig::new(app.base.clone(), "https://api.example", private.to_string())
            .dpop_base_url("https://api.example"),
    )
    .unwrap();
    let proof_for = |k: &DpopKey| {
        let mut extra = Map::new();
        extra.insert(
            "ath".into(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(at.as_bytes())).into(),
        );
        k.proof_with(app, "GET", "https://api.example/orders", extra)
    };
    let claims = verifier
        .verify_dpop(at, &proof_for(&key), "GET", "/orders")
        .await
        .unwrap();
    assert_eq!(claims.cnf.unwrap().jkt, key.jkt);
    assert!(matches!(
        verifier.verify(at).await,
        Err(VerifierError::DpopBound)
    ));
    assert!(matches!(
        verifier
            .verify_dpop(at, &proof_for(&DpopKey::new()), "GET", "/orders")
            .await,
        Err(VerifierError::DpopKeyMismatch)
    ));
}

/// Dynamic registration takes `dpop_bound_access_tokens` (RFC 9449 5.2)
/// and answers with it.
async fn registration_takes_dpop_bound_access_tokens(app: &TestApp) {
    let iat = app.initial_access_token(None).await;
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&iat)
        .json(&json!({
            "client_name": "Bound App",
            "redirect_uris": ["https://bound.example/cb"],
            "dpop_bound_access_tokens": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["dpop_bound_access_tokens"], true);
    let stored = app
        .state
        .store
        .client(c["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.dpop_bound_access_tokens);
}

/// Discovery lists the proof algorithms.
async fn discovery_lists_the_proof_algorithms(app: &TestApp) {
    let d: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
}

crate::both_backends!(
    client_credentials_tokens_are_bound_to_the_proof_key,
    bad_proofs_are_refused_by_name,
    a_public_clients_refresh_token_is_bound_to_its_key,
    a_confidential_clients_refresh_token_is_not_bound,
    userinfo_wants_the_proof_of_a_bound_token,
    dpop_jkt_binds_the_code,
    a_dpop_bound_client_must_send_a_proof,
    discovery_lists_the_proof_algorithms,
    the_verifier_holds_the_binding,
    registration_takes_dpop_bound_access_tokens,
);

/// With nonces on: a proof without one gets `use_dpop_nonce` and the
/// nonce; every instance accepts every other's; an old one is refused.
async fn nonces_round_trip(kind: DbKind) {
    let Some(app) = spawn_app_with(
        kind,
        RawConfig {
            dpop_nonce: Some(true),
            ..RawConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, c) = api_and_service(&app).await;
    let key = DpopKey::new();
    let url = app.url("/token");
    let r = token_with(&app, &c, &CC, &[&key.proof(&app, "POST", &url)]).await;
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    refused(&json_of(r).await, "use_dpop_nonce", "nonce");
    let with_nonce = |n: &str| {
        let mut extra = Map::new();
        extra.insert("nonce".into(), n.into());
        key.proof_with(&app, "POST", &url, extra)
    };
    let r = token_with(&app, &c, &CC, &[&with_nonce(&nonce)]).await;
    assert!(r.headers().contains_key("dpop-nonce"));
    let (status, t) = json_of(r).await;
    assert_eq!(status, 200, "{t}");
    // Another instance (same key-encryption key) hands out and accepts
    // the same nonce.
    let b = app.second_instance().await;
    assert_eq!(b.state.dpop_nonces.current(b.state.now()), nonce);
    assert!(b.state.dpop_nonces.accepts(&nonce, b.state.now()));
    b.stop().await;
    // Eleven minutes on, the nonce is stale.
    app.clock.advance(660);
    let r = token_with(&app, &c, &CC, &[&with_nonce(&nonce)]).await;
    let fresh = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_ne!(fresh, nonce);
    refused(&json_of(r).await, "use_dpop_nonce", "not current");
    // Userinfo answers use_dpop_nonce as a DPoP challenge with the nonce.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", "DPoP abc")
        .header("DPoP", key.userinfo_proof(&app, "GET", "abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("dpop-nonce"));
    let ch = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(ch.starts_with("DPoP error=\"use_dpop_nonce\""), "{ch}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_round_trip_sqlite() {
    nonces_round_trip(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_round_trip_postgres() {
    nonces_round_trip(DbKind::Postgres).await;
}
