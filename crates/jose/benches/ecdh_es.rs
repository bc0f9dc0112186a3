//! The cost of one resource-server access token (ES256 sign, then
//! ECDH-ES+A256KW/A256GCM encrypt) beside the raw primitives it cannot
//! avoid, measured in the same binary with the same OpenSSL calls the
//! token uses: ephemeral P-256 key generation, one ECDH point
//! multiplication, one ES256 signature (SHA-256 and ECDSA). The whole token
//! should cost at most 1.2x the sum of the three (docs/benchmarks.md §7).
//!
//! `cargo bench -p gatehouse-jose --bench ecdh_es` first runs the four
//! interleaved (rounds of short batches in rotating order, so load on the
//! host hits them alike) and prints the medians and the ratio, then
//! criterion measures each on its own.
//!
//! Instruction counts, which load does not change: run the bench binary
//! with `ECDH_ES_COUNT=<op>:<n>` (op `keygen`, `ecdh`, `sign`, `whole` or
//! `setup`) under `valgrind --tool=callgrind`; it runs the op n times and
//! exits, so (count(op) - count(setup)) / n is the cost of one.

// Benchmark setup fails loudly; there is no caller to hand an error to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use gatehouse_jose::{encrypt, generate_key_pair, sign, Alg, PrivateKey, PublicKey};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

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

/// The keys, as the token path holds them and as raw OpenSSL objects.
struct Fixture {
    signer: PrivateKey,
    recipient: PublicKey,
    claims: Map<String, Value>,
    group: EcGroup,
    raw_signer: EcKey<Private>,
    peer: EcKey<Public>,
    ephemeral: EcKey<Private>,
    signing_input: String,
}

impl Fixture {
    fn new() -> Fixture {
        let signing = generate_key_pair(Alg::ES256, "sig").unwrap();
        let signer = PrivateKey::from_pkcs8("sig", Alg::ES256, signing.private_pkcs8()).unwrap();
        let api = generate_key_pair(Alg::EcdhEsA256kw, "api").unwrap();
        let recipient = PublicKey::from_jwk_json(&api.public_jwk).unwrap();
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let raw_signer = PKey::private_key_from_pkcs8(signing.private_pkcs8())
            .unwrap()
            .ec_key()
            .unwrap();
        let api_key = PKey::private_key_from_pkcs8(api.private_pkcs8())
            .unwrap()
            .ec_key()
            .unwrap();
        let peer = EcKey::from_public_key(&group, api_key.public_key()).unwrap();
        let ephemeral = EcKey::generate(&group).unwrap();
        let claims = claims();
        let token = sign(&signer, "at+jwt", &claims).unwrap();
        let signing_input = token.rsplit_once('.').unwrap().0.to_owned();
        Fixture {
            signer,
            recipient,
            claims,
            group,
            raw_signer,
            peer,
            ephemeral,
            signing_input,
        }
    }

    fn keygen(&self) -> EcKey<Private> {
        EcKey::generate(&self.group).unwrap()
    }

    fn ecdh(&self) -> Vec<u8> {
        let mut ctx = BigNumContext::new_secure().unwrap();
        let mut shared = EcPoint::new(&self.group).unwrap();
        shared
            .mul2(
                &self.group,
                self.peer.public_key(),
                self.ephemeral.private_key(),
                &mut ctx,
            )
            .unwrap();
        let mut x = BigNum::new_secure().unwrap();
        let mut y = BigNum::new_secure().unwrap();
        shared
            .affine_coordinates(&self.group, &mut x, &mut y, &mut ctx)
            .unwrap();
        x.to_vec_padded(32).unwrap()
    }

    fn sign(&self) -> Vec<u8> {
        let digest = Sha256::digest(self.signing_input.as_bytes());
        let signature = EcdsaSig::sign(&digest, &self.raw_signer).unwrap();
        let mut raw = signature.r().to_vec_padded(32).unwrap();
        raw.extend_from_slice(&signature.s().to_vec_padded(32).unwrap());
        raw
    }

    fn whole(&self) -> String {
        let jws = sign(&self.signer, "at+jwt", black_box(&self.claims)).unwrap();
        encrypt(&jws, &self.recipient, Some("JWT"), None).unwrap()
    }

    fn run(&self, op: Op) {
        match op {
            Op::Keygen => drop(black_box(self.keygen())),
            Op::Ecdh => drop(black_box(self.ecdh())),
            Op::Sign => drop(black_box(self.sign())),
            Op::Whole => drop(black_box(self.whole())),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Keygen,
    Ecdh,
    Sign,
    Whole,
}

const OPS: [(Op, &str); 4] = [
    (Op::Keygen, "primitive/ephemeral_keygen"),
    (Op::Ecdh, "primitive/ecdh_derive"),
    (Op::Sign, "primitive/es256_sign"),
    (Op::Whole, "whole/sign_then_encrypt"),
];

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Rounds of short batches of the four, in an order that rotates every
/// round, so load on the host hits them alike; prints each one's fastest
/// and median batch (time per call), the sums of the three primitives,
/// and the whole's ratio to them: fastest to fastest (the least disturbed
/// batches), median to median, and the median of the per-round ratios
/// (whose batches ran next to each other).
fn interleaved(fixture: &Fixture) {
    const ROUNDS: usize = 300;
    const BATCH: usize = 20;
    for _ in 0..BATCH * 4 {
        for (op, _) in OPS {
            fixture.run(op);
        }
    }
    let mut times = vec![Vec::with_capacity(ROUNDS); OPS.len()];
    for round in 0..ROUNDS {
        for k in 0..OPS.len() {
            let index = (round + k) % OPS.len();
            let start = Instant::now();
            for _ in 0..BATCH {
                fixture.run(OPS[index].0);
            }
            times[index].push(start.elapsed().as_secs_f64() * 1e6 / BATCH as f64);
        }
    }
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|r| times[3][r] / (times[0][r] + times[1][r] + times[2][r]))
        .collect();
    let fastest: Vec<f64> = times
        .iter()
        .map(|t| t.iter().copied().fold(f64::INFINITY, f64::min))
        .collect();
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    let sum = |v: &[f64]| v[0] + v[1] + v[2];
    println!(
        "resource_server_token, interleaved ({ROUNDS} rounds of {BATCH} calls each), µs per call:"
    );
    println!("  {:<28} {:>8} {:>8}", "", "fastest", "median");
    for (((_, name), fast), med) in OPS.iter().zip(&fastest).zip(&medians) {
        println!("  {name:<28} {fast:>8.1} {med:>8.1}");
    }
    println!(
        "  {:<28} {:>8.1} {:>8.1}",
        "sum of the primitives",
        sum(&fastest),
        sum(&medians)
    );
    println!(
        "  whole / sum of primitives:   {:.3} fastest, {:.3} median, {:.3} median per round",
        fastest[3] / sum(&fastest),
        medians[3] / sum(&medians),
        median(&mut ratios)
    );
}

fn bench(c: &mut Criterion) {
    let fixture = Fixture::new();
    let mut g = c.benchmark_group("resource_server_token");
    for (op, name) in OPS {
        g.bench_function(name, |b| b.iter(|| fixture.run(op)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}

fn main() {
    if let Ok(spec) = std::env::var("ECDH_ES_COUNT") {
        let (op, n) = spec.split_once(':').expect("ECDH_ES_COUNT=<op>:<n>");
        let n: usize = n.parse().expect("a count");
        let fixture = Fixture::new();
        let op = match op {
            "setup" => return,
            "keygen" => Op::Keygen,
            "ecdh" => Op::Ecdh,
            "sign" => Op::Sign,
            "whole" => Op::Whole,
            other => panic!("unknown op {other}"),
        };
        for _ in 0..n {
            fixture.run(op);
        }
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|a| a == "--bench")
        && !args.iter().any(|a| a == "--profile-time" || a == "--list");
    if measuring {
        interleaved(&Fixture::new());
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
