//! Criterion benchmarks of the token builder: what issuing and reading an
//! access token costs inside Gatehouse, next to the raw crypto of the same
//! token (one ES256 signature and one ECDH-ES+A256KW/A256GCM encryption),
//! on a real SQLite database in a temporary directory.
//!
//! Run: `cargo bench -p gatehouse-server --bench token_builder`.

// Benchmark setup fails loudly; there is no caller to hand an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_keys::{Kek, SystemClock};
use gatehouse_server::{
    admin::bench::{Fixture, Target},
    build_state,
    config::{RawConfig, Settings},
};
use gatehouse_storage::Store;

fn token_builder(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/bench.db", dir.display());
    let kek = Kek::generate();
    let fixture = rt.block_on(async {
        let raw = RawConfig {
            issuer: Some("http://127.0.0.1:8080".into()),
            database_url: Some(url.clone()),
            ..RawConfig::default()
        };
        let settings = Settings::resolve(raw, Some(kek.to_base64url())).unwrap();
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let state = build_state(settings, store, kek.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        Fixture::create(&state, &kek).await.unwrap()
    });

    let mut g = c.benchmark_group("token_builder");
    g.measurement_time(Duration::from_secs(5));
    let claims = fixture.sample_claims();
    g.bench_function("raw crypto: ES256 sign + ECDH-ES encrypt", |b| {
        b.iter(|| black_box(fixture.raw_nested(&claims).unwrap()))
    });
    g.bench_function("issue: resource server (ES256 + ECDH-ES)", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(fixture.issue(Target::ResourceServer, false))
                    .unwrap(),
            )
        })
    });
    g.bench_function("issue: own (ES256 + dir A256GCM)", |b| {
        b.iter(|| black_box(rt.block_on(fixture.issue(Target::Own, false)).unwrap()))
    });
    let own = rt.block_on(fixture.issue(Target::Own, true)).unwrap();
    g.bench_function("read: own token (decrypt + revocation read)", |b| {
        b.iter(|| rt.block_on(fixture.read(black_box(&own))).unwrap())
    });
    let to_rs = rt
        .block_on(fixture.issue(Target::ResourceServer, true))
        .unwrap();
    g.bench_function("read: resource-server token (derived CEK + verify)", |b| {
        b.iter(|| rt.block_on(fixture.read(black_box(&to_rs))).unwrap())
    });
    g.finish();
    rt.block_on(fixture.remove());
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, token_builder);
criterion_main!(benches);
