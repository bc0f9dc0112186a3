//! Benchmarks of Gatehouse's JOSE operations against the same work done
//! directly with josekit/OpenSSL, to show what the checks and the wrapper
//! cost on top of the cryptography.
//!
//! Run: `cargo bench -p gatehouse-jose --bench jose`.

// Benchmark setup fails loudly; there is no caller to hand an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_jose::{
    decrypt, encrypt, generate_key_pair, sign, verify, Alg, PrivateKey, PublicKey,
};
use josekit::jwe::{self, JweDecrypter, JweEncrypter, JweHeader};
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsHeader, JwsSigner, JwsVerifier};
use serde_json::{json, Map, Value};

/// One key in both forms: Gatehouse's opened key and raw josekit material.
struct Fixture {
    kid: String,
    private: PrivateKey,
    public: PublicKey,
    /// PKCS#8 DER of the private key (for the raw josekit side).
    der: Vec<u8>,
    /// The public JWK as josekit parses it.
    jwk: Jwk,
}

fn fixture(alg: Alg) -> Fixture {
    let kid = format!("bench-{alg}");
    let generated = generate_key_pair(alg, &kid).unwrap();
    Fixture {
        private: PrivateKey::from_pkcs8(&kid, alg, generated.private_pkcs8()).unwrap(),
        public: PublicKey::from_jwk_json(&generated.public_jwk).unwrap(),
        der: generated.private_pkcs8().to_vec(),
        jwk: Jwk::from_bytes(generated.public_jwk.as_bytes()).unwrap(),
        kid,
    }
}

/// A typical ID token's claims.
fn claims() -> Map<String, Value> {
    json!({
        "iss": "https://login.example.com",
        "sub": "248289761001",
        "aud": "s6BhdRkqt3",
        "nonce": "n-0S6_WzA2Mj",
        "exp": 1_700_003_600u64,
        "iat": 1_700_000_000u64,
        "auth_time": 1_699_999_990u64,
        "acr": "urn:gatehouse:pwd",
        "email": "alice@example.com",
        "email_verified": true,
    })
    .as_object()
    .unwrap()
    .clone()
}

fn raw_signer(alg: Alg, der: &[u8]) -> Box<dyn JwsSigner> {
    match alg {
        Alg::RS256 => Box::new(jws::RS256.signer_from_der(der).unwrap()),
        Alg::ES256 => Box::new(jws::ES256.signer_from_der(der).unwrap()),
        other => unreachable!("no raw signer for {other} in this bench"),
    }
}

/// josekit's own compact JWS: header {typ, kid}, alg added by josekit.
fn josekit_sign(signer: &dyn JwsSigner, kid: &str, claims: &Map<String, Value>) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    let payload = serde_json::to_vec(claims).unwrap();
    jws::serialize_compact(&payload, &header, signer).unwrap()
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30)
}

fn bench_sign(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("sign");
    for alg in [Alg::RS256, Alg::ES256] {
        let key = fixture(alg);
        let signer = raw_signer(alg, &key.der);
        // The exact signing input our `sign` produces, for the bare signer.
        let token = sign(&key.private, "JWT", &claims).unwrap();
        let signing_input = token.rsplit_once('.').unwrap().0.as_bytes().to_vec();

        group.bench_function(format!("gatehouse/{alg}"), |b| {
            b.iter(|| sign(black_box(&key.private), "JWT", black_box(&claims)).unwrap())
        });
        group.bench_function(format!("josekit_compact/{alg}"), |b| {
            b.iter(|| josekit_sign(signer.as_ref(), &key.kid, black_box(&claims)))
        });
        group.bench_function(format!("raw_signer_same_bytes/{alg}"), |b| {
            b.iter(|| signer.sign(black_box(&signing_input)).unwrap())
        });
    }
    group.finish();
}

/// A recipient for the nested-token benches: the Gatehouse key, and the raw
/// josekit encrypter and decrypter for the same key.
type Recipient = (Fixture, Box<dyn JweEncrypter>, Box<dyn JweDecrypter>);

fn recipients() -> Vec<Recipient> {
    [Alg::EcdhEsA256kw, Alg::RsaOaep256]
        .into_iter()
        .map(|alg| {
            let key = fixture(alg);
            let (encrypter, decrypter): (Box<dyn JweEncrypter>, Box<dyn JweDecrypter>) = match alg {
                Alg::EcdhEsA256kw => (
                    Box::new(jwe::ECDH_ES_A256KW.encrypter_from_jwk(&key.jwk).unwrap()),
                    Box::new(jwe::ECDH_ES_A256KW.decrypter_from_der(&key.der).unwrap()),
                ),
                _ => (
                    Box::new(jwe::RSA_OAEP_256.encrypter_from_jwk(&key.jwk).unwrap()),
                    Box::new(jwe::RSA_OAEP_256.decrypter_from_der(&key.der).unwrap()),
                ),
            };
            (key, encrypter, decrypter)
        })
        .collect()
}

fn josekit_jwe_header(kid: &str) -> JweHeader {
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_content_type("JWT");
    header.set_key_id(kid);
    header
}

fn bench_nested_encrypt(c: &mut Criterion) {
    let claims = claims();
    let signing = fixture(Alg::ES256);
    let signer = raw_signer(Alg::ES256, &signing.der);
    let mut group = c.benchmark_group("nested_sign_es256_then_encrypt");
    for (recipient, encrypter, _) in recipients() {
        let alg = recipient.public.alg();
        let jwe_header = josekit_jwe_header(&recipient.kid);
        group.bench_function(format!("gatehouse/{alg}"), |b| {
            b.iter(|| {
                let inner = sign(&signing.private, "JWT", black_box(&claims)).unwrap();
                encrypt(&inner, &recipient.public, Some("JWT"), None).unwrap()
            })
        });
        group.bench_function(format!("josekit/{alg}"), |b| {
            b.iter(|| {
                let inner = josekit_sign(signer.as_ref(), &signing.kid, black_box(&claims));
                jwe::serialize_compact(inner.as_bytes(), &jwe_header, encrypter.as_ref()).unwrap()
            })
        });
    }
    group.finish();
}

fn bench_nested_decrypt(c: &mut Criterion) {
    let claims = claims();
    let signing = fixture(Alg::ES256);
    let verifier = jws::ES256.verifier_from_jwk(&signing.jwk).unwrap();
    let mut group = c.benchmark_group("nested_decrypt_then_verify_es256");
    for (recipient, _, decrypter) in recipients() {
        let alg = recipient.public.alg();
        let inner = sign(&signing.private, "JWT", &claims).unwrap();
        let token = encrypt(&inner, &recipient.public, Some("JWT"), None).unwrap();
        let dec_lookup = |_: Option<&str>| vec![recipient.private.clone()];
        let sig_lookup = |kid: &str| (kid == signing.kid).then(|| signing.public.clone());

        group.bench_function(format!("gatehouse/{alg}"), |b| {
            b.iter(|| {
                let (_, inner) = decrypt(black_box(&token), dec_lookup).unwrap();
                let inner = String::from_utf8(inner).unwrap();
                verify(&inner, &[Alg::ES256], sig_lookup).unwrap()
            })
        });
        group.bench_function(format!("josekit/{alg}"), |b| {
            b.iter(|| {
                let (inner, _) =
                    jwe::deserialize_compact(black_box(&token), decrypter.as_ref()).unwrap();
                let (payload, header) =
                    jws::deserialize_compact(&inner, &verifier as &dyn JwsVerifier).unwrap();
                let claims: Map<String, Value> = serde_json::from_slice(&payload).unwrap();
                (header, claims)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_sign, bench_nested_encrypt, bench_nested_decrypt
}
criterion_main!(benches);
