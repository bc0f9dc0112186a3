//! The DPoP tests' fixtures: a moveable clock, the issuer (its JWKS on a
//! real port, tokens made with josekit), client keys and their proofs, and
//! the API under test with its HTTP helpers.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::{routing::get, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse_verifier::{Backend, BearerClaims, Verifier, VerifierConfig};
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

pub const AUDIENCE: &str = "https://api.example/orders";

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A clock the test can move: the system's time plus an offset.
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    pub fn now(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        real + self.0.load(Ordering::SeqCst)
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

/// The issuer (its JWKS on a real port) and the API's key pair.
pub struct Issuer {
    pub url: String,
    pub signing: Jwk,
    pub api_private: String,
    pub api_public: Jwk,
    pub clock: Clock,
}

pub async fn issuer() -> Issuer {
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
    pub fn token(&self, jkt: Option<&str>) -> String {
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

    pub fn config(&self, backend: Backend) -> VerifierConfig {
        let clock = self.clock.clone();
        let mut c = VerifierConfig::new(self.url.clone(), AUDIENCE, self.api_private.clone())
            .jwks_uri(format!("{}/jwks", self.url))
            .backend(backend);
        c.now = Some(Arc::new(move || clock.now()));
        c
    }
}

pub fn rand_bytes() -> [u8; 16] {
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
pub struct ClientKey {
    pub private: Jwk,
    pub public: Value,
    pub signer: Box<dyn JwsSigner>,
}

impl ClientKey {
    pub fn new(alg: &str) -> ClientKey {
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
    pub fn jkt(&self) -> String {
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
    pub fn proof_with(
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

    pub fn proof(&self, clock: &Clock, method: &str, url: &str, token: &str) -> String {
        self.proof_with(clock, method, url, token, |_, _| {})
    }
}

pub fn ath(token: &str) -> String {
    b64(Sha256::digest(token.as_bytes()))
}

/// The API under test: `/orders` and, nested, `/v1/items`, each answering
/// the caller's `sub`.
pub struct Api {
    pub url: String,
    pub http: reqwest::Client,
    pub verifier: Arc<Verifier>,
}

pub async fn api(cfg: impl FnOnce(String) -> VerifierConfig) -> Api {
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
    pub fn orders(&self) -> String {
        format!("{}/orders", self.url)
    }

    /// GET /orders with `Authorization: DPoP token` and the proofs given.
    pub async fn dpop_get(&self, token: &str, proofs: &[&str]) -> reqwest::Response {
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

pub fn challenges(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The answer is 401 with one DPoP challenge carrying `error` and `algs`.
#[track_caller]
pub fn refused(r: &reqwest::Response, error: &str, what: &str) -> String {
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

pub async fn ok(r: reqwest::Response, what: &str) {
    let status = r.status();
    let c = challenges(&r);
    assert_eq!(status, 200, "{what}: {c:?}");
    assert_eq!(r.text().await.unwrap(), "alice", "{what}");
}

/// A proof with `alg` and no signature.
pub fn unsigned(key: &ClientKey, url: &str, token: &str, alg: &str) -> String {
    let h = json!({ "typ": "dpop+jwt", "alg": alg, "jwk": key.public });
    let c = json!({ "jti": b64(rand_bytes()), "htm": "GET", "htu": url,
        "iat": Clock::default().now(), "ath": ath(token) });
    format!("{}.{}.", b64(h.to_string()), b64(c.to_string()))
}

/// A proof MACed with HS256 (a key the attacker picks), the client's
/// public key in the header.
pub fn hmac_signed(key: &ClientKey, url: &str, token: &str) -> String {
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
