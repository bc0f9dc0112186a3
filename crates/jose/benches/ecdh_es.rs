//! The cost of one resource-server access token (ES256 sign, then
//! ECDH-ES+A256KW/A256GCM encrypt) beside the raw primitives it cannot
//! avoid, measured in the same binary: ephemeral P-256 key generation, one
//! ECDH derivation, one ES256 signature. The whole token should cost at
//! most 1.2x the sum of the three (docs/benchmarks.md).
//!
//! Run on a quiet host, twice, and compare the runs:
//! `cargo bench -p gatehouse-jose --bench ecdh_es`.

// Benchmark setup fails loudly; there is no caller to hand an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_jose::{encrypt, generate_key_pair, sign, Alg, PrivateKey, PublicKey};
use openssl::{
    derive::Deriver,
    ec::{EcGroup, EcKey},
    hash::MessageDigest,
    nid::Nid,
    pkey::PKey,
    sign::Signer,
};
use serde_json::{json, Map, Value};

/// An access token's claims as Gatehouse issues them to an API.
fn claims() -> Map<String, Value> {
    json!({
        "iss": "https://login.example.com",
        "sub": "6c924119-5bcc-4d23-9bea-3c33fee8fc5a",
        "aud": "https://api.example.com",
        "exp": 1_700_000_900u64,
        "iat": 1_700_000_000u64,
        "jti": "a7b24f1e-8322-4f6e-b128-1c091c5d7a5a",
        "client_id": "6c9241195bcc4d239bea3c33fee8fc5a",
        "scope": "openid profile email",
        "auth_time": 1_699_999_990u64,
        "status": {"status_list": {"idx": 2, "uri": "https://login.example.com/statuslists/0"}},
    })
    .as_object()
    .unwrap()
    .clone()
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

fn bench(c: &mut Criterion) {
    let signing = generate_key_pair(Alg::ES256, "sig").unwrap();
    let signer = PrivateKey::from_pkcs8("sig", Alg::ES256, signing.private_pkcs8()).unwrap();
    let recipient = generate_key_pair(Alg::EcdhEsA256kw, "api").unwrap();
    let recipient_public = PublicKey::from_jwk_json(&recipient.public_jwk).unwrap();

    // The same keys as raw OpenSSL objects, parsed once.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let raw_signer = PKey::private_key_from_pkcs8(signing.private_pkcs8()).unwrap();
    let api = PKey::private_key_from_pkcs8(recipient.private_pkcs8()).unwrap();
    let api_public = EcKey::from_public_key(&group, api.ec_key().unwrap().public_key()).unwrap();
    let peer = PKey::from_ec_key(api_public).unwrap();
    let ephemeral = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let claims = claims();
    let signing_input = sign(&signer, "at+jwt", &claims).unwrap();
    let signing_input = signing_input.rsplit_once('.').unwrap().0.to_owned();

    let mut g = c.benchmark_group("resource_server_token");
    g.bench_function("primitive/ephemeral_keygen", |b| {
        b.iter(|| black_box(EcKey::generate(&group).unwrap()))
    });
    g.bench_function("primitive/ecdh_derive", |b| {
        b.iter(|| {
            let mut d = Deriver::new(&ephemeral).unwrap();
            d.set_peer(&peer).unwrap();
            black_box(d.derive_to_vec().unwrap())
        })
    });
    g.bench_function("primitive/es256_sign", |b| {
        b.iter(|| {
            let mut s = Signer::new(MessageDigest::sha256(), &raw_signer).unwrap();
            black_box(s.sign_oneshot_to_vec(signing_input.as_bytes()).unwrap())
        })
    });
    g.bench_function("whole/sign_then_encrypt", |b| {
        b.iter(|| {
            let jws = sign(&signer, "at+jwt", black_box(&claims)).unwrap();
            black_box(encrypt(&jws, &recipient_public, Some("JWT"), None).unwrap())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
