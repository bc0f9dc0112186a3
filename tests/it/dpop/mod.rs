//! DPoP (RFC 9449) at the token and userinfo endpoints, with proofs made
//! here by hand (josekit) and thumbprints computed here (RFC 7638): bound
//! tokens (`token_type` DPoP, `cnf.jkt` inside the JWE and at
//! introspection), public clients' refresh tokens bound to the key,
//! `dpop_jkt` binding the code, every refused proof, replay across
//! instances, and server nonces. This file holds what the tests share:
//! a client's key and its proofs, and token requests with them.

mod proofs;
mod tokens;
mod userinfo;

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
pub struct DpopKey {
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

    /// A fresh proof for `POST /token`.
    pub fn token_proof(&self, app: &TestApp) -> String {
        self.proof(app, "POST", &app.url("/token"))
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
pub async fn token_with(
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

/// Signs `dave` in for `c` (the code flow with `scope` and `extra`) and
/// redeems the code with a proof of `key`: the token answer (200).
async fn bound_tokens(
    app: &TestApp,
    c: &TestClient,
    scope: &str,
    extra: &str,
    key: &DpopKey,
) -> Value {
    let (code, verifier) = app.code(c, scope, extra).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, t) = json_of(token_with(app, c, &form, &[&key.token_proof(app)]).await).await;
    assert_eq!(status, 200, "{t}");
    t
}
