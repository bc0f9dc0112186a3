//! The verifier's caches against a small local issuer (axum on a real
//! port): the JWKS honours its `Cache-Control: max-age` within the
//! configured bounds, and token status lists are fetched, checked, cached
//! for their ttl and refetched once that lapses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse_verifier::{Backend, Verifier, VerifierConfig, VerifierError};
use josekit::{
    jwe::{JweHeader, ECDH_ES_A256KW},
    jwk::{alg::ec::EcCurve, Jwk},
    jws::{JwsHeader, ES256},
    jwt::{self, JwtPayload},
};
use serde_json::{json, Value};

const AUDIENCE: &str = "https://api.example/orders";

/// What the fake issuer serves; tests change it as they go.
struct Issuer {
    jwks: Mutex<Value>,
    jwks_cache_control: Mutex<Option<String>>,
    jwks_fail: AtomicBool,
    jwks_fetches: AtomicUsize,
    /// The status list response: body, content type, cache-control.
    list: Mutex<(String, String, Option<String>)>,
    list_fetches: AtomicUsize,
}

async fn jwks(State(s): State<Arc<Issuer>>) -> Response {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if s.jwks_fail.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(cc) = s.jwks_cache_control.lock().unwrap().clone() {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cc).unwrap());
    }
    (h, s.jwks.lock().unwrap().to_string()).into_response()
}

async fn status_list(State(s): State<Arc<Issuer>>) -> Response {
    s.list_fetches.fetch_add(1, Ordering::SeqCst);
    let (body, content_type, cache_control) = s.list.lock().unwrap().clone();
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap(),
    );
    if let Some(cc) = cache_control {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cc).unwrap());
    }
    (h, body).into_response()
}

struct Fixture {
    issuer: String,
    state: Arc<Issuer>,
    signing: Jwk,
    api_private: String,
    api_public: Jwk,
}

fn signing_key(kid: &str) -> (Jwk, Value) {
    let mut private = ES256.generate_key_pair().unwrap().to_jwk_key_pair();
    private.set_key_id(kid);
    private.set_algorithm("ES256");
    let mut public: Value =
        serde_json::from_str(&private.to_public_key().unwrap().to_string()).unwrap();
    public["use"] = "sig".into();
    public["kid"] = kid.into();
    public["alg"] = "ES256".into();
    (private, public)
}

async fn start() -> Fixture {
    let (signing, public) = signing_key("sig-1");
    let api = ECDH_ES_A256KW
        .generate_ec_key_pair(EcCurve::P256)
        .unwrap()
        .to_jwk_key_pair();
    let mut api_private: Value = serde_json::from_str(&api.to_string()).unwrap();
    api_private["kid"] = "api-1".into();
    api_private["alg"] = "ECDH-ES+A256KW".into();
    let mut api_public = api.to_public_key().unwrap();
    api_public.set_key_id("api-1");
    let state = Arc::new(Issuer {
        jwks: Mutex::new(json!({ "keys": [public] })),
        jwks_cache_control: Mutex::new(None),
        jwks_fail: AtomicBool::new(false),
        jwks_fetches: AtomicUsize::new(0),
        list: Mutex::new((String::new(), "application/statuslist+jwt".into(), None)),
        list_fetches: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/jwks", get(jwks))
        .route("/statuslists/{id}", get(status_list))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fixture {
        issuer,
        state,
        signing,
        api_private: api_private.to_string(),
        api_public,
    }
}

impl Fixture {
    fn config(&self) -> VerifierConfig {
        VerifierConfig::new(self.issuer.clone(), AUDIENCE, self.api_private.clone())
            .jwks_uri(format!("{}/jwks", self.issuer))
    }

    /// An access token as Gatehouse makes them: ES256 JWS (at+jwt) in a JWE.
    fn token(&self, signing: &Jwk, status: Option<Value>) -> String {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer, "aud": AUDIENCE, "sub": "alice", "client_id": "c1",
            "scope": "orders:read", "iat": now, "exp": now + 600, "jti": uuid(),
        });
        if let Some(s) = status {
            claims["status"] = s;
        }
        let mut h = JwsHeader::new();
        h.set_token_type("at+jwt");
        h.set_key_id(signing.key_id().unwrap());
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        let jws = jwt::encode_with_signer(&payload, &h, &ES256.signer_from_jwk(signing).unwrap())
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

    fn list_uri(&self) -> String {
        format!("{}/statuslists/1", self.issuer)
    }

    fn status(&self, idx: u64) -> Value {
        json!({"status_list": {"idx": idx, "uri": self.list_uri()}})
    }

    /// Serves a status list with `revoked` indexes set, signed as given.
    fn serve_list(&self, revoked: &[usize], edit: impl FnOnce(&mut Value, &mut JwsHeader)) {
        let mut bytes = vec![0u8; 16];
        for i in revoked {
            bytes[i / 8] |= 1 << (i % 8);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&bytes).unwrap();
        let lst = URL_SAFE_NO_PAD.encode(z.finish().unwrap());
        let now = now();
        let mut claims = json!({
            "sub": self.list_uri(), "iat": now, "exp": now + 3600, "ttl": 1,
            "status_list": {"bits": 1, "lst": lst},
        });
        let mut h = JwsHeader::new();
        h.set_token_type("statuslist+jwt");
        h.set_key_id(self.signing.key_id().unwrap());
        edit(&mut claims, &mut h);
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        let body =
            jwt::encode_with_signer(&payload, &h, &ES256.signer_from_jwk(&self.signing).unwrap())
                .unwrap();
        self.state.list.lock().unwrap().0 = body;
    }

    fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    fn list_fetches(&self) -> usize {
        self.state.list_fetches.load(Ordering::SeqCst)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn uuid() -> String {
    URL_SAFE_NO_PAD.encode(rand_bytes())
}

fn rand_bytes() -> [u8; 12] {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut b = [0u8; 12];
    b.copy_from_slice(&n.to_le_bytes()[..12]);
    b
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test]
async fn jwks_cache_follows_max_age_within_bounds() {
    let f = start().await;
    let secs = Duration::from_secs;
    let verifier = Verifier::new(f.config().jwks_cache_bounds(secs(1), secs(2))).unwrap();
    let token = f.token(&f.signing, None);

    // max-age=1: fresh for a second, then fetched again although the kid is known.
    *f.state.jwks_cache_control.lock().unwrap() = Some("public, max-age=1".into());
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.jwks_fetches(), 1);
    sleep_ms(1200).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.jwks_fetches(), 2, "refetched once max-age lapsed");
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.jwks_fetches(), 2);

    // No header: the 10-minute default, held to the 2 s ceiling here.
    *f.state.jwks_cache_control.lock().unwrap() = None;
    sleep_ms(1200).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.jwks_fetches(), 3);
    sleep_ms(1200).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.jwks_fetches(), 3, "still fresh after 1.2 s (ceiling 2 s)");
    sleep_ms(1000).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.jwks_fetches(), 4, "refetched at the ceiling");

    // no-store: the floor (1 s), not a fetch per token.
    *f.state.jwks_cache_control.lock().unwrap() = Some("no-store".into());
    sleep_ms(2100).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.jwks_fetches(), 5);
    for _ in 0..5 {
        verifier.verify(&token).await.unwrap();
    }
    assert_eq!(f.jwks_fetches(), 5, "held for the floor");

    // A failed refresh keeps the known keys in use.
    f.state.jwks_fail.store(true, Ordering::SeqCst);
    sleep_ms(1200).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.jwks_fetches(), 6, "a refresh was attempted");
    f.state.jwks_fail.store(false, Ordering::SeqCst);
}

#[tokio::test]
async fn jwks_unknown_kid_refetch_stays_rate_limited() {
    let f = start().await;
    *f.state.jwks_cache_control.lock().unwrap() = Some("max-age=3600".into());
    let verifier = Verifier::new(f.config()).unwrap();
    verifier.verify(&f.token(&f.signing, None)).await.unwrap();
    assert_eq!(f.jwks_fetches(), 1);
    // A key published after the fetch: one refetch finds it.
    let (new_key, new_public) = signing_key("sig-2");
    f.state.jwks.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .push(new_public);
    verifier.verify(&f.token(&new_key, None)).await.unwrap();
    assert_eq!(f.jwks_fetches(), 2);
    // Forged kids right after: no further fetch.
    for i in 0..5 {
        let (forged, _) = signing_key(&format!("forged-{i}"));
        assert_eq!(
            verifier.verify(&f.token(&forged, None)).await,
            Err(VerifierError::UnknownKey)
        );
    }
    assert_eq!(f.jwks_fetches(), 2);
}

#[test]
fn cache_bounds_are_validated() {
    let c = VerifierConfig::new("https://i", "https://a", "{}");
    let secs = Duration::from_secs;
    for bad in [
        c.clone().jwks_cache_bounds(secs(0), secs(10)),
        c.clone().jwks_cache_bounds(secs(20), secs(10)),
        c.clone().status_list_cache_bounds(secs(5), secs(1)),
    ] {
        let err = Verifier::new(bad).unwrap_err();
        assert!(matches!(err, VerifierError::Config(m) if m.contains("floor")));
    }
}

#[tokio::test]
async fn status_list_revokes_tokens_once_the_cache_lapses() {
    let f = start().await;
    f.serve_list(&[5], |_, _| {});
    let secs = Duration::from_secs;
    let verifier = Verifier::new(
        f.config()
            .check_status_list(true)
            .status_list_cache_bounds(secs(1), secs(600)),
    )
    .unwrap();
    let good = f.token(&f.signing, Some(f.status(0)));
    let revoked = f.token(&f.signing, Some(f.status(5)));
    assert_eq!(verifier.verify(&good).await.unwrap().sub, "alice");
    assert_eq!(verifier.verify(&revoked).await, Err(VerifierError::Revoked));
    assert_eq!(f.list_fetches(), 1, "one fetch, cached for the ttl");
    // Beyond the end of the list: refused, not guessed.
    let beyond = f.token(&f.signing, Some(f.status(16 * 8)));
    assert!(matches!(
        verifier.verify(&beyond).await,
        Err(VerifierError::StatusList(_))
    ));
    // No status claim: passes unless required.
    let plain = f.token(&f.signing, None);
    verifier.verify(&plain).await.unwrap();
    let strict = Verifier::new(
        f.config()
            .check_status_list(true)
            .require_status_claim(true),
    )
    .unwrap();
    assert!(matches!(
        strict.verify(&plain).await,
        Err(VerifierError::StatusList(_))
    ));
    // The check is off by default: the revoked token passes a plain verifier.
    let off = Verifier::new(f.config()).unwrap();
    off.verify(&revoked).await.unwrap();

    // Revoke index 0 at the issuer: seen once the 1 s ttl lapses.
    f.serve_list(&[0, 5], |_, _| {});
    verifier.verify(&good).await.unwrap();
    sleep_ms(1200).await;
    assert_eq!(verifier.verify(&good).await, Err(VerifierError::Revoked));
    assert_eq!(f.list_fetches(), 2);

    // A status list outside the issuer is never fetched.
    let before = f.list_fetches();
    for uri in [
        "http://127.0.0.1:9/statuslists/1".to_owned(),
        format!("{}.evil.example/statuslists/1", f.issuer),
        format!("{}@evil.example/statuslists/1", f.issuer),
        "/statuslists/1".to_owned(),
    ] {
        let t = f.token(
            &f.signing,
            Some(json!({"status_list": {"idx": 1, "uri": uri}})),
        );
        assert_eq!(
            verifier.verify(&t).await,
            Err(VerifierError::StatusList(
                "status list is not at the issuer"
            )),
            "{uri}"
        );
    }
    // Malformed claims.
    for status in [
        json!("revoked"),
        json!({"status_list": {"idx": -1, "uri": f.list_uri()}}),
        json!({"status_list": {"uri": f.list_uri()}}),
        json!({"status_list": {"idx": 1}}),
    ] {
        let t = f.token(&f.signing, Some(status.clone()));
        assert_eq!(
            verifier.verify(&t).await,
            Err(VerifierError::StatusList("malformed status claim")),
            "{status}"
        );
    }
    assert_eq!(f.list_fetches(), before);
}

#[tokio::test]
async fn status_lists_that_fail_their_checks_are_not_used() {
    let f = start().await;
    let (stranger, _) = signing_key("sig-1");
    let uri = f.list_uri();
    type Edit = Box<dyn Fn(&Fixture)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "wrong typ",
            Box::new(|f| f.serve_list(&[], |_, h| h.set_token_type("JWT"))),
        ),
        (
            "wrong sub",
            Box::new(|f| f.serve_list(&[], |c, _| c["sub"] = "https://elsewhere/list".into())),
        ),
        (
            "expired",
            Box::new(|f| f.serve_list(&[], |c, _| c["exp"] = (now() - 10).into())),
        ),
        (
            "bad bits",
            Box::new(|f| f.serve_list(&[], |c, _| c["status_list"]["bits"] = 3.into())),
        ),
        (
            "not zlib",
            Box::new(|f| {
                f.serve_list(&[], |c, _| {
                    c["status_list"]["lst"] = URL_SAFE_NO_PAD.encode([0u8; 4]).into()
                })
            }),
        ),
        (
            "wrong content type",
            Box::new(|f| {
                f.serve_list(&[], |_, _| {});
                f.state.list.lock().unwrap().1 = "application/json".into();
            }),
        ),
        (
            "signed by another key with the same kid",
            Box::new(move |f| {
                f.serve_list(&[], |_, _| {});
                let now = now();
                let claims = json!({
                    "sub": f.list_uri(), "iat": now, "exp": now + 60,
                    "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"},
                });
                let mut h = JwsHeader::new();
                h.set_token_type("statuslist+jwt");
                h.set_key_id("sig-1");
                let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
                f.state.list.lock().unwrap().0 = jwt::encode_with_signer(
                    &payload,
                    &h,
                    &ES256.signer_from_jwk(&stranger).unwrap(),
                )
                .unwrap();
            }),
        ),
    ];
    let token = f.token(&f.signing, Some(f.status(0)));
    for (what, edit) in cases {
        edit(&f);
        let verifier = Verifier::new(f.config().check_status_list(true)).unwrap();
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifierError::StatusList("status list unavailable")),
            "{what}"
        );
        f.state.list.lock().unwrap().1 = "application/statuslist+jwt".into();
    }
    // And the good list works with the same token, `max-age` shorter than ttl.
    f.serve_list(&[], |c, _| c["ttl"] = 3600.into());
    f.state.list.lock().unwrap().2 = Some("public, max-age=1".into());
    let verifier = Verifier::new(
        f.config()
            .check_status_list(true)
            .status_list_cache_bounds(Duration::from_secs(1), Duration::from_secs(600)),
    )
    .unwrap();
    let before = f.list_fetches();
    verifier.verify(&token).await.unwrap();
    sleep_ms(1200).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(f.list_fetches(), before + 2, "max-age=1 won over ttl=3600");
    assert!(uri.starts_with(&f.issuer));
}

/// The same tokens (made with OpenSSL) pass and fail alike on both
/// backends: decryption, the nested signature, the status list's signature.
#[tokio::test]
async fn tokens_verify_alike_on_both_backends() {
    let f = start().await;
    f.serve_list(&[3], |_, _| {});
    for backend in [Backend::OpenSsl, Backend::RustCrypto] {
        let verifier = Verifier::new(f.config().backend(backend).check_status_list(true)).unwrap();
        let claims = verifier.verify(&f.token(&f.signing, None)).await.unwrap();
        assert_eq!(claims.sub, "alice", "{backend:?}");
        assert_eq!(
            verifier
                .verify(&f.token(&f.signing, Some(f.status(3))))
                .await,
            Err(VerifierError::Revoked),
            "{backend:?}"
        );
        verifier
            .verify(&f.token(&f.signing, Some(f.status(4))))
            .await
            .unwrap();
        // A changed ciphertext, and a token signed by a key the JWKS does
        // not hold under that kid, are refused.
        let token = f.token(&f.signing, None);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut bytes = URL_SAFE_NO_PAD.decode(&parts[3]).unwrap();
        bytes[0] ^= 1;
        parts[3] = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            verifier.verify(&parts.join(".")).await,
            Err(VerifierError::Decrypt("decryption failed")),
            "{backend:?}"
        );
        let (impostor, _) = signing_key("sig-1");
        assert_eq!(
            verifier.verify(&f.token(&impostor, None)).await,
            Err(VerifierError::Signature("signature verification failed")),
            "{backend:?}"
        );
    }
    // RSA-OAEP decryption stays on OpenSSL.
    let rsa = josekit::jwe::RSA_OAEP_256
        .generate_key_pair(2048)
        .unwrap()
        .to_jwk_key_pair()
        .to_string();
    let cfg = VerifierConfig::new(f.issuer.clone(), AUDIENCE, rsa);
    Verifier::new(cfg.clone()).unwrap();
    let refused = Verifier::new(cfg.backend(Backend::RustCrypto)).unwrap_err();
    assert!(
        refused.to_string().contains("needs the openssl backend"),
        "{refused}"
    );
}

#[test]
fn es384_needs_the_openssl_backend() {
    let api = ECDH_ES_A256KW
        .generate_ec_key_pair(EcCurve::P256)
        .unwrap()
        .to_jwk_key_pair()
        .to_string();
    let mut cfg = VerifierConfig::new("https://i", AUDIENCE, api);
    cfg.allowed_algs = vec!["ES256".into(), "ES384".into()];
    Verifier::new(cfg.clone()).unwrap();
    let refused = Verifier::new(cfg.backend(Backend::RustCrypto)).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("ES384 needs the openssl backend"),
        "{refused}"
    );
}
