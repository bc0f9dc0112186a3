//! DPoP (RFC 9449) at an API: a small local issuer serves its JWKS, tokens
//! and proofs are made with josekit (independently of the crate), and an
//! axum API using the `BearerClaims` extractor is called over real HTTP,
//! on both cryptography backends. The attacks next to the happy path:
//! replay, another key, wrong method or URL (and a spoofed Host header),
//! stale proofs, `ath`, `typ`, `none`/HMAC, a private key in the proof,
//! scheme downgrades, missing and doubled proofs, oversized proofs and a
//! flood against the bounded replay cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::{routing::get, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse_verifier::{
    Backend, BearerClaims, Verifier, VerifierConfig, VerifierError, MAX_DPOP_PROOF_LEN,
};
use josekit::{
    jwe::{JweHeader, ECDH_ES_A256KW},
    jwk::{
        alg::{ec::EcCurve, ed::EdCurve},
        Jwk,
    },
    jws::{EdDSA, JwsHeader, JwsSigner, ES256, HS256, PS256, RS256},
    jwt::{self, JwtPayload},
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const AUDIENCE: &str = "https://api.example/orders";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A clock the test can move: the system's time plus an offset.
#[derive(Clone, Default)]
struct Clock(Arc<AtomicI64>);

impl Clock {
    fn now(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        real + self.0.load(Ordering::SeqCst)
    }
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

/// The issuer (its JWKS on a real port) and the API's key pair.
struct Issuer {
    url: String,
    signing: Jwk,
    api_private: String,
    api_public: Jwk,
    clock: Clock,
}

async fn issuer() -> Issuer {
    let mut signing = ES256.generate_key_pair().unwrap().to_jwk_key_pair();
    signing.set_key_id("sig-1");
    let mut public: Value =
        serde_json::from_str(&signing.to_public_key().unwrap().to_string()).unwrap();
    public["use"] = "sig".into();
    public["kid"] = "sig-1".into();
    public["alg"] = "ES256".into();
    let jwks = json!({ "keys": [public] }).to_string();
    let api = ECDH_ES_A256KW
        .generate_ec_key_pair(EcCurve::P256)
        .unwrap()
        .to_jwk_key_pair();
    let mut api_private: Value = serde_json::from_str(&api.to_string()).unwrap();
    api_private["kid"] = "api-1".into();
    api_private["alg"] = "ECDH-ES+A256KW".into();
    let mut api_public = api.to_public_key().unwrap();
    api_public.set_key_id("api-1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route("/jwks", get(move || async move { jwks }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer {
        url,
        signing,
        api_private: api_private.to_string(),
        api_public,
        clock: Clock::default(),
    }
}

impl Issuer {
    /// An access token as Gatehouse makes them (RFC 9068 claims, ES256 JWS
    /// in an ECDH-ES+A256KW JWE), bound to `jkt` when given.
    fn token(&self, jkt: Option<&str>) -> String {
        let now = self.clock.now();
        let mut claims = json!({
            "iss": self.url, "aud": AUDIENCE, "sub": "alice", "client_id": "c1",
            "scope": "orders:read", "iat": now, "exp": now + 600,
            "jti": b64(now.to_be_bytes()) + &b64(rand_bytes()),
        });
        if let Some(jkt) = jkt {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        let mut h = JwsHeader::new();
        h.set_token_type("at+jwt");
        h.set_key_id("sig-1");
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        let jws =
            jwt::encode_with_signer(&payload, &h, &ES256.signer_from_jwk(&self.signing).unwrap())
                .unwrap();
        let mut jh = JweHeader::new();
        jh.set_content_encryption("A256GCM");
        jh.set_content_type("JWT");
        jh.set_key_id("api-1");
        josekit::jwe::serialize_compact(
            jws.as_bytes(),
            &jh,
            &ECDH_ES_A256KW.encrypter_from_jwk(&self.api_public).unwrap(),
        )
        .unwrap()
    }

    fn config(&self, backend: Backend) -> VerifierConfig {
        let clock = self.clock.clone();
        let mut c = VerifierConfig::new(self.url.clone(), AUDIENCE, self.api_private.clone())
            .jwks_uri(format!("{}/jwks", self.url))
            .backend(backend);
        c.now = Some(Arc::new(move || clock.now()));
        c
    }
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    b.copy_from_slice(&n.to_le_bytes());
    static COUNTER: AtomicI64 = AtomicI64::new(0);
    b[..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::SeqCst).to_le_bytes());
    b
}

/// A client's DPoP key.
struct ClientKey {
    private: Jwk,
    public: Value,
    signer: Box<dyn JwsSigner>,
}

impl ClientKey {
    fn new(alg: &str) -> ClientKey {
        let (private, signer): (Jwk, Box<dyn JwsSigner>) = match alg {
            "ES256" => {
                let k = ES256.generate_key_pair().unwrap().to_jwk_key_pair();
                let s = ES256.signer_from_jwk(&k).unwrap();
                (k, Box::new(s))
            }
            "EdDSA" => {
                let k = EdDSA
                    .generate_key_pair(EdCurve::Ed25519)
                    .unwrap()
                    .to_jwk_key_pair();
                let s = EdDSA.signer_from_jwk(&k).unwrap();
                (k, Box::new(s))
            }
            "RS256" => {
                let k = RS256.generate_key_pair(2048).unwrap().to_jwk_key_pair();
                let s = RS256.signer_from_jwk(&k).unwrap();
                (k, Box::new(s))
            }
            "PS256" => {
                let k = PS256.generate_key_pair(2048).unwrap().to_jwk_key_pair();
                let s = PS256.signer_from_jwk(&k).unwrap();
                (k, Box::new(s))
            }
            other => panic!("{other}"),
        };
        let public = serde_json::from_str(&private.to_public_key().unwrap().to_string()).unwrap();
        ClientKey {
            private,
            public,
            signer,
        }
    }

    /// RFC 7638 thumbprint, computed here from the required members.
    fn jkt(&self) -> String {
        let p = &self.public;
        let canonical = match p["kty"].as_str().unwrap() {
            "EC" => json!({"crv": p["crv"], "kty": "EC", "x": p["x"], "y": p["y"]}),
            "OKP" => json!({"crv": p["crv"], "kty": "OKP", "x": p["x"]}),
            "RSA" => json!({"e": p["e"], "kty": "RSA", "n": p["n"]}),
            other => panic!("{other}"),
        };
        // serde_json's map keeps keys sorted: the RFC 7638 order.
        b64(Sha256::digest(canonical.to_string().as_bytes()))
    }

    /// A proof for `method` `url`, with the token's `ath`, fresh now;
    /// `edit` changes the header and claims first.
    fn proof_with(
        &self,
        clock: &Clock,
        method: &str,
        url: &str,
        token: &str,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> String {
        let mut header = json!({ "typ": "dpop+jwt", "jwk": self.public });
        let mut claims = json!({
            "jti": b64(rand_bytes()), "htm": method, "htu": url,
            "iat": clock.now(), "ath": ath(token),
        });
        edit(&mut header, &mut claims);
        // A member set to null is left out.
        claims.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        let mut h = JwsHeader::new();
        for (k, v) in header.as_object().unwrap() {
            if !v.is_null() {
                h.set_claim(k, Some(v.clone())).unwrap();
            }
        }
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        jwt::encode_with_signer(&payload, &h, &*self.signer).unwrap()
    }

    fn proof(&self, clock: &Clock, method: &str, url: &str, token: &str) -> String {
        self.proof_with(clock, method, url, token, |_, _| {})
    }
}

fn ath(token: &str) -> String {
    b64(Sha256::digest(token.as_bytes()))
}

/// The API under test: `/orders` and, nested, `/v1/items`, each answering
/// the caller's `sub`.
struct Api {
    url: String,
    http: reqwest::Client,
    verifier: Arc<Verifier>,
}

async fn api(cfg: impl FnOnce(String) -> VerifierConfig) -> Api {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let verifier = Arc::new(Verifier::new(cfg(url.clone())).unwrap());
    async fn whoami(BearerClaims(c): BearerClaims) -> String {
        c.sub
    }
    let app = Router::new()
        .route("/orders", get(whoami).post(whoami))
        .nest("/v1", Router::new().route("/items", get(whoami)))
        .with_state(verifier.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Api {
        url,
        http: reqwest::Client::new(),
        verifier,
    }
}

impl Api {
    fn orders(&self) -> String {
        format!("{}/orders", self.url)
    }

    /// GET /orders with `Authorization: DPoP token` and the proofs given.
    async fn dpop_get(&self, token: &str, proofs: &[&str]) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.orders())
            .header("authorization", format!("DPoP {token}"));
        for p in proofs {
            req = req.header("dpop", *p);
        }
        req.send().await.unwrap()
    }
}

fn challenges(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The answer is 401 with one DPoP challenge carrying `error` and `algs`.
#[track_caller]
fn refused(r: &reqwest::Response, error: &str, what: &str) -> String {
    assert_eq!(r.status(), 401, "{what}");
    let c = challenges(r);
    assert_eq!(c.len(), 1, "{what}: {c:?}");
    assert!(
        c[0].starts_with(&format!("DPoP error=\"{error}\", error_description=\"")),
        "{what}: {}",
        c[0]
    );
    assert!(
        c[0].ends_with("algs=\"ES256 EdDSA RS256 PS256\""),
        "{what}: {}",
        c[0]
    );
    c[0].clone()
}

async fn ok(r: reqwest::Response, what: &str) {
    let status = r.status();
    let c = challenges(&r);
    assert_eq!(status, 200, "{what}: {c:?}");
    assert_eq!(r.text().await.unwrap(), "alice", "{what}");
}

const BACKENDS: [Backend; 2] = [Backend::OpenSsl, Backend::RustCrypto];

#[tokio::test]
async fn a_right_proof_passes_once_for_each_alg_on_both_backends() {
    let iss = issuer().await;
    let keys: Vec<ClientKey> = ["ES256", "EdDSA", "RS256", "PS256"]
        .into_iter()
        .map(ClientKey::new)
        .collect();
    for backend in BACKENDS {
        let api = api(|url| iss.config(backend).dpop_base_url(url)).await;
        for key in &keys {
            let what = format!("{backend:?} {}", key.public["kty"]);
            let token = iss.token(Some(&key.jkt()));
            let proof = key.proof(&iss.clock, "GET", &api.orders(), &token);
            ok(api.dpop_get(&token, &[&proof]).await, &what).await;
            // Replayed: refused, however soon.
            let r = api.dpop_get(&token, &[&proof]).await;
            let c = refused(&r, "invalid_dpop_proof", &what);
            assert!(c.contains("already used"), "{c}");
            // POST, and a nested route (its full path is the htu).
            let proof = key.proof(&iss.clock, "POST", &api.orders(), &token);
            let r = api
                .http
                .post(api.orders())
                .header("authorization", format!("dpop {token}"))
                .header("dpop", proof)
                .send()
                .await
                .unwrap();
            ok(r, &what).await;
            let items = format!("{}/v1/items", api.url);
            let proof = key.proof(&iss.clock, "GET", &items, &token);
            let r = api
                .http
                .get(format!("{items}?page=2"))
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .send()
                .await
                .unwrap();
            ok(r, &what).await;
        }
        // Without an axum router: the same checks.
        let key = &keys[0];
        let token = iss.token(Some(&key.jkt()));
        let proof = key.proof(&iss.clock, "DELETE", &format!("{}/x", api.url), &token);
        let claims = api
            .verifier
            .verify_dpop(&token, &proof, "DELETE", "/x")
            .await
            .unwrap();
        assert_eq!(claims.cnf.unwrap().jkt, key.jkt());
        assert_eq!(
            api.verifier
                .verify_dpop(&token, &proof, "DELETE", "/x")
                .await,
            Err(VerifierError::DpopReplay)
        );
    }
}

#[tokio::test]
async fn proofs_that_do_not_fit_the_request_or_token_are_refused() {
    let iss = issuer().await;
    let key = ClientKey::new("ES256");
    let other = ClientKey::new("ES256");
    for backend in BACKENDS {
        let api = api(|url| iss.config(backend).dpop_base_url(url)).await;
        let token = iss.token(Some(&key.jkt()));
        let url = api.orders();
        let clock = &iss.clock;
        let now = clock.now();
        let proof = |edit: &dyn Fn(&mut Value, &mut Value)| {
            key.proof_with(clock, "GET", &url, &token, |h, c| edit(h, c))
        };
        let mut private_jwk: Value = serde_json::from_str(&key.private.to_string()).unwrap();
        private_jwk.as_object_mut().unwrap().remove("kid");
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "wrong method",
                proof(&|_, c| c["htm"] = "POST".into()),
                "htm",
            ),
            (
                "another host",
                proof(&|_, c| c["htu"] = "http://evil.example/orders".into()),
                "htu",
            ),
            (
                "another path",
                proof(&|_, c| c["htu"] = format!("{}/admin", api.url).into()),
                "htu",
            ),
            ("stale", proof(&|_, c| c["iat"] = (now - 120).into()), "iat"),
            (
                "future",
                proof(&|_, c| c["iat"] = (now + 120).into()),
                "iat",
            ),
            ("no iat", proof(&|_, c| c["iat"] = Value::Null), "iat"),
            (
                "no ath",
                proof(&|_, c| {
                    c.as_object_mut().unwrap().remove("ath");
                }),
                "ath",
            ),
            (
                "ath of another token",
                proof(&|_, c| c["ath"] = ath(&iss.token(Some(&key.jkt()))).into()),
                "ath",
            ),
            ("no jti", proof(&|_, c| c["jti"] = Value::Null), "jti"),
            ("typ JWT", proof(&|h, _| h["typ"] = "JWT".into()), "typ"),
            ("no typ", proof(&|h, _| h["typ"] = Value::Null), "typ"),
            (
                "private key in jwk",
                proof(&|h, _| h["jwk"] = private_jwk.clone()),
                "private",
            ),
            ("no jwk", proof(&|h, _| h["jwk"] = Value::Null), "jwk"),
            (
                "another key in the header",
                proof(&|h, _| h["jwk"] = other.public.clone()),
                "signature",
            ),
            (
                "jku instead of jwk",
                proof(&|h, _| h["jku"] = "http://evil.example/jwks".into()),
                "point to a key",
            ),
            ("alg none", unsigned(&key, &url, &token, "none"), "alg"),
            ("alg HS256", hmac_signed(&key, &url, &token), "alg"),
            (
                "oversized",
                proof(&|_, c| c["pad"] = "x".repeat(MAX_DPOP_PROOF_LEN).into()),
                "8 KiB",
            ),
            ("not a JWS", "not.a.jws".to_owned(), "compact JWS"),
        ];
        for (what, p, needle) in cases {
            let r = api.dpop_get(&token, &[&p]).await;
            let c = refused(&r, "invalid_dpop_proof", what);
            assert!(c.contains(needle), "{backend:?} {what}: {c}");
        }

        // A valid proof made with another key than the token's binding.
        let p = other.proof(clock, "GET", &url, &token);
        let c = refused(
            &api.dpop_get(&token, &[&p]).await,
            "invalid_token",
            "another key",
        );
        assert!(c.contains("not the key the token is bound to"), "{c}");

        // The Host header is the attacker's: it changes nothing. A proof
        // for the spoofed host is refused, the real one still passes.
        let spoofed = key.proof(clock, "GET", "http://evil.example/orders", &token);
        let r = api
            .http
            .get(&url)
            .header("host", "evil.example")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", spoofed)
            .send()
            .await
            .unwrap();
        let c = refused(&r, "invalid_dpop_proof", "spoofed host");
        assert!(c.contains("htu"), "{c}");
        let r = api
            .http
            .get(&url)
            .header("host", "evil.example")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof(clock, "GET", &url, &token))
            .send()
            .await
            .unwrap();
        ok(r, "real htu, spoofed host").await;
    }
}

/// A proof with `alg` and no signature.
fn unsigned(key: &ClientKey, url: &str, token: &str, alg: &str) -> String {
    let h = json!({ "typ": "dpop+jwt", "alg": alg, "jwk": key.public });
    let c = json!({ "jti": b64(rand_bytes()), "htm": "GET", "htu": url,
        "iat": Clock::default().now(), "ath": ath(token) });
    format!("{}.{}.", b64(h.to_string()), b64(c.to_string()))
}

/// A proof MACed with HS256 (a key the attacker picks), the client's
/// public key in the header.
fn hmac_signed(key: &ClientKey, url: &str, token: &str) -> String {
    let mut h = JwsHeader::new();
    h.set_token_type("dpop+jwt");
    h.set_claim("jwk", Some(key.public.clone())).unwrap();
    let c = json!({ "jti": b64(rand_bytes()), "htm": "GET", "htu": url,
        "iat": Clock::default().now(), "ath": ath(token) });
    let payload = JwtPayload::from_map(c.as_object().unwrap().clone()).unwrap();
    let signer = HS256
        .signer_from_bytes(b"0123456789abcdef0123456789abcdef")
        .unwrap();
    jwt::encode_with_signer(&payload, &h, &signer).unwrap()
}

#[tokio::test]
async fn schemes_and_headers_are_checked() {
    let iss = issuer().await;
    let key = ClientKey::new("ES256");
    let api = api(|url| iss.config(Backend::default()).dpop_base_url(url)).await;
    let bound = iss.token(Some(&key.jkt()));
    let unbound = iss.token(None);
    let url = api.orders();
    let clock = &iss.clock;

    // No credentials: both challenges, no error.
    let r = api.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        challenges(&r),
        vec![
            format!("Bearer realm=\"{AUDIENCE}\""),
            "DPoP algs=\"ES256 EdDSA RS256 PS256\"".to_owned()
        ]
    );

    // A bound token sent as a bearer token (RFC 9449 7.2).
    let r = api.http.get(&url).bearer_auth(&bound).send().await.unwrap();
    let c = refused(&r, "invalid_token", "bound token as Bearer");
    assert!(c.contains("DPoP-bound"), "{c}");
    // An unbound token: fine as Bearer, refused with the DPoP scheme even
    // with a proof that is right in every other way.
    let r = api
        .http
        .get(&url)
        .bearer_auth(&unbound)
        .send()
        .await
        .unwrap();
    ok(r, "unbound as Bearer").await;
    let p = key.proof(clock, "GET", &url, &unbound);
    let c = refused(
        &api.dpop_get(&unbound, &[&p]).await,
        "invalid_token",
        "unbound as DPoP",
    );
    assert!(c.contains("not DPoP-bound"), "{c}");

    // No proof; two proofs (each good on its own).
    let c = refused(
        &api.dpop_get(&bound, &[]).await,
        "invalid_dpop_proof",
        "no proof",
    );
    assert!(c.contains("no DPoP proof"), "{c}");
    let p1 = key.proof(clock, "GET", &url, &bound);
    let p2 = key.proof(clock, "GET", &url, &bound);
    let c = refused(
        &api.dpop_get(&bound, &[&p1, &p2]).await,
        "invalid_dpop_proof",
        "two proofs",
    );
    assert!(c.contains("more than one"), "{c}");
    // A proof with the Bearer scheme, bound or not.
    for token in [&bound, &unbound] {
        let p = key.proof(clock, "GET", &url, token);
        let r = api
            .http
            .get(&url)
            .bearer_auth(token)
            .header("dpop", p)
            .send()
            .await
            .unwrap();
        let c = refused(&r, "invalid_dpop_proof", "proof with Bearer");
        assert!(c.contains("Bearer scheme"), "{c}");
    }
    // The token itself is checked under the DPoP scheme too.
    let mut parts: Vec<String> = bound.split('.').map(str::to_owned).collect();
    parts[3] = b64(vec![0u8; 32]);
    let tampered = parts.join(".");
    let p = key.proof(clock, "GET", &url, &tampered);
    let c = refused(
        &api.dpop_get(&tampered, &[&p]).await,
        "invalid_token",
        "tampered token",
    );
    assert!(c.contains("decrypt"), "{c}");
    // And the right request still passes after all that.
    let p = key.proof(clock, "GET", &url, &bound);
    ok(api.dpop_get(&bound, &[&p]).await, "right").await;
}

#[tokio::test]
async fn a_flood_fills_the_cache_but_never_lets_a_replay_through() {
    let iss = issuer().await;
    let key = ClientKey::new("ES256");
    let api = api(|url| {
        iss.config(Backend::default())
            .dpop_base_url(url)
            .dpop_replay_cache_capacity(16)
    })
    .await;
    let token = iss.token(Some(&key.jkt()));
    let url = api.orders();
    let clock = &iss.clock;
    let first = key.proof(clock, "GET", &url, &token);
    ok(api.dpop_get(&token, &[&first]).await, "first").await;
    for i in 1..16 {
        let p = key.proof(clock, "GET", &url, &token);
        ok(api.dpop_get(&token, &[&p]).await, &format!("proof {i}")).await;
    }
    // Full of live proofs: a new one waits, a replay stays a replay.
    let r = api
        .dpop_get(&token, &[&key.proof(clock, "GET", &url, &token)])
        .await;
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    let c = refused(
        &api.dpop_get(&token, &[&first]).await,
        "invalid_dpop_proof",
        "replay while full",
    );
    assert!(c.contains("already used"), "{c}");
    // Once the window has passed, the old proofs are forgotten (and stale),
    // new ones pass again.
    clock.advance(62);
    let c = refused(
        &api.dpop_get(&token, &[&first]).await,
        "invalid_dpop_proof",
        "replay after the window",
    );
    assert!(c.contains("iat"), "{c}");
    for i in 0..16 {
        let p = key.proof(clock, "GET", &url, &token);
        ok(api.dpop_get(&token, &[&p]).await, &format!("after {i}")).await;
    }
}

#[tokio::test]
async fn without_a_base_url_dpop_is_off_and_bound_tokens_are_refused() {
    let iss = issuer().await;
    let key = ClientKey::new("ES256");
    let api = api(|_| iss.config(Backend::default())).await;
    let bound = iss.token(Some(&key.jkt()));
    let url = api.orders();
    // No credentials: the Bearer challenge alone, as before.
    let r = api.http.get(&url).send().await.unwrap();
    assert_eq!(challenges(&r), vec![format!("Bearer realm=\"{AUDIENCE}\"")]);
    let p = key.proof(&iss.clock, "GET", &url, &bound);
    let r = api.dpop_get(&bound, &[&p]).await;
    assert_eq!(r.status(), 401);
    let c = challenges(&r);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].starts_with("Bearer error=\"invalid_token\"") && c[0].contains("DPoP scheme"),
        "{c:?}"
    );
    let r = api.http.get(&url).bearer_auth(&bound).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        challenges(&r)[0].contains("DPoP-bound"),
        "{:?}",
        challenges(&r)
    );
    assert_eq!(
        api.verifier.verify(&bound).await,
        Err(VerifierError::DpopBound)
    );
    assert_eq!(
        api.verifier.verify_dpop(&bound, &p, "GET", "/orders").await,
        Err(VerifierError::DpopDisabled)
    );
    ok(
        api.http
            .get(&url)
            .bearer_auth(iss.token(None))
            .send()
            .await
            .unwrap(),
        "unbound bearer",
    )
    .await;
}

#[test]
fn the_dpop_configuration_is_validated() {
    let api = ECDH_ES_A256KW
        .generate_ec_key_pair(EcCurve::P256)
        .unwrap()
        .to_jwk_key_pair()
        .to_string();
    let c = VerifierConfig::new("https://i", AUDIENCE, api).dpop_base_url("https://api.example");
    Verifier::new(c.clone()).unwrap();
    let cases = [
        c.clone().dpop_base_url("api.example"),
        c.clone().dpop_base_url("https://api.example/?q"),
        c.clone().dpop_proof_window(Duration::ZERO),
        c.clone().dpop_proof_window(Duration::from_secs(3600)),
        c.clone().dpop_algs(["HS256"]),
        c.clone().dpop_algs(["none"]),
        c.clone().dpop_algs(Vec::<String>::new()),
        c.clone().dpop_algs(["ES384"]).backend(Backend::RustCrypto),
        c.clone().dpop_replay_cache_capacity(0),
    ];
    for bad in cases {
        let what = format!("{bad:?}");
        assert!(
            matches!(Verifier::new(bad), Err(VerifierError::Config(_))),
            "{what}"
        );
    }
    let v = Verifier::new(c.dpop_algs(["ES256", "PS256"])).unwrap();
    assert_eq!(v.dpop_algs(), Some("ES256 PS256"));
}
