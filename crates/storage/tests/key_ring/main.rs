//! The key ring (gatehouse-keys) on this crate's store, against real
//! databases: every scenario runs once on SQLite and once on PostgreSQL.
//!
//! Each scenario is written once as `async fn name(env: Env)`; `on_both!`
//! generates `name::sqlite` and `name::postgres` wrappers that give it a
//! fresh, migrated database, a fresh key-encryption key and a
//! [`ManualClock`]. The PostgreSQL wrappers need `GATEHOUSE_TEST_POSTGRES_URL`
//! (see `gatehouse_testkit::db`); without it they are skipped
//! loudly (and fail under CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse_keys::{
    generate, sign, Alg, JoseError, Kek, KeyError, KeyRing, KeyUse, Kid, ManualClock, OpenSealed,
    PrivateKey, RotationPolicy, Snapshot, OWN_ENCRYPTION_ALG, SIGNING_ALGS,
};
use gatehouse_storage::{
    model::{KeyRecord, KeyState},
    Rotation, Store,
};
use gatehouse_testkit::db::{self, DbKind, TestDb};
use serde_json::{json, Map, Value};

/// A fixed start time (Unix seconds); scenarios move the clock explicitly.
const T0: i64 = 1_700_000_000;

/// Every (use, alg) the ring keeps keys for.
fn all_algs() -> Vec<Alg> {
    SIGNING_ALGS
        .iter()
        .copied()
        .chain([OWN_ENCRYPTION_ALG])
        .collect()
}

/// The default policy with every signing algorithm (the default publishes
/// RS256 and ES256 only), so each scenario covers them all.
fn every_alg() -> RotationPolicy {
    RotationPolicy {
        signing_algs: SIGNING_ALGS.to_vec(),
        ..RotationPolicy::default()
    }
}

/// Small numbers so the schedule can be driven with the manual clock.
fn small_policy() -> RotationPolicy {
    RotationPolicy {
        rotate_after: 100,
        prepublish: 50,
        retain_retired: 200,
        jwks_max_age: 10,
        // Every algorithm, so each scenario covers them all.
        signing_algs: SIGNING_ALGS.to_vec(),
    }
}

/// What every scenario gets: a fresh migrated database, a KEK and a clock at `T0`.
struct Env {
    store: Store,
    kek: Kek,
    clock: ManualClock,
    // Last: the database goes after the store that uses it.
    db: TestDb,
}

impl Env {
    async fn ring(&self, policy: RotationPolicy) -> Arc<KeyRing> {
        self.ring_on(self.store.clone(), policy).await
    }

    async fn ring_on(&self, store: Store, policy: RotationPolicy) -> Arc<KeyRing> {
        KeyRing::open(
            store,
            self.kek.clone(),
            policy,
            Arc::new(self.clock.clone()),
        )
        .await
        .expect("open key ring")
    }

    /// A second, independent connection pool to the same database (a second instance).
    async fn second_store(&self) -> Store {
        Store::connect(&self.db.url)
            .await
            .expect("second connection")
    }

    async fn keys(&self) -> Vec<KeyRecord> {
        self.store.list_keys().await.expect("list keys")
    }

    async fn epoch(&self) -> i64 {
        self.store.epoch("keys").await.expect("keys epoch")
    }
}

async fn run<F, Fut>(kind: DbKind, scenario: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = db::fresh(kind).await else {
        return; // skipped; `fresh` said so loudly
    };
    let store = Store::connect(&db.url).await.expect("connect");
    assert_eq!(
        store.backend(),
        match kind {
            DbKind::Sqlite => gatehouse_storage::Backend::Sqlite,
            DbKind::Postgres => gatehouse_storage::Backend::Postgres,
        }
    );
    store.migrate().await.expect("migrate");
    let clock = ManualClock::default();
    clock.set(T0);
    scenario(Env {
        store,
        kek: Kek::generate(),
        clock,
        db,
    })
    .await;
}

/// `on_both! { name, ... }` → `name::sqlite` and `name::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                crate::run(crate::DbKind::Sqlite, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                crate::run(crate::DbKind::Postgres, super::$name).await;
            }
        }
    )*};
}

// ---------------------------------------------------------------- helpers

fn of(keys: &[KeyRecord], alg: Alg, state: KeyState) -> Vec<&KeyRecord> {
    keys.iter()
        .filter(|k| k.alg == alg && k.state == state)
        .collect()
}

/// The one key of `alg` in `state`; fails if there is not exactly one.
fn one(keys: &[KeyRecord], alg: Alg, state: KeyState) -> KeyRecord {
    let found = of(keys, alg, state);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {state:?} {alg} key, found {:?}",
        found
    );
    found[0].clone()
}

fn count(keys: &[KeyRecord], alg: Alg, state: KeyState) -> usize {
    of(keys, alg, state).len()
}

fn jwks_entries(snap: &Snapshot) -> Vec<Map<String, Value>> {
    let doc: Value = serde_json::from_slice(&snap.jwks()).expect("JWKS is JSON");
    doc["keys"]
        .as_array()
        .expect("JWKS has a keys array")
        .iter()
        .map(|k| k.as_object().expect("JWK is an object").clone())
        .collect()
}

fn jwks_kids(snap: &Snapshot) -> HashSet<Kid> {
    jwks_entries(snap)
        .iter()
        .map(|k| k["kid"].as_str().expect("JWK has a kid").into())
        .collect()
}

fn kids(keys: &[KeyRecord], states: &[KeyState]) -> HashSet<Kid> {
    keys.iter()
        .filter(|k| states.contains(&k.state))
        .map(|k| k.kid.clone())
        .collect()
}

fn header_of(token: &str) -> Map<String, Value> {
    let first = token.split('.').next().expect("a header segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).expect("base64url header"))
        .expect("JSON header")
}

fn kid_of(token: &str) -> Kid {
    header_of(token)["kid"]
        .as_str()
        .expect("kid in header")
        .into()
}

fn claims(n: u64) -> Map<String, Value> {
    json!({"iss": "https://gatehouse.test", "sub": format!("user-{n}"), "n": n})
        .as_object()
        .expect("an object")
        .clone()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A key an attacker made, with a kid the attacker chose.
fn attacker_key(alg: Alg, kid: &str) -> PrivateKey {
    let kek = Kek::generate();
    let g = generate(alg, kid, &kek).expect("generate attacker key");
    PrivateKey::open(kid, alg, &g.sealed_private_key, &kek).expect("open attacker key")
}

fn assert_invalid_token(res: Result<impl std::fmt::Debug, KeyError>, what: &str) {
    match res {
        Err(KeyError::Jose(JoseError::InvalidToken(_))) => {}
        other => panic!("{what}: expected InvalidToken, got {other:?}"),
    }
}

/// The rotation of `alg` in a tick's or rotate's result, if any.
fn rotation_of(done: &[(Alg, Rotation)], alg: Alg) -> Option<&Rotation> {
    done.iter().find(|(a, _)| *a == alg).map(|(_, r)| r)
}

/// Private or symmetric JWK members that must never be published.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

mod attacks;
mod crash;
mod instances;
mod lifecycle;
mod revocation;
mod tokens;
