//! The key ring against real databases: every scenario runs once on SQLite and once on PostgreSQL.
//!
//! Each scenario is written once as `async fn name(env: Env)`; `on_both!`
//! generates `name::sqlite` and `name::postgres` wrappers that give it a
//! fresh, migrated database, a fresh key-encryption key and a
//! [`ManualClock`]. The PostgreSQL wrappers need `GATEHOUSE_TEST_POSTGRES_URL`
//! (see `crates/storage/tests/support/db.rs`); without it they are skipped
//! loudly (and fail under CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../storage/tests/support/db.rs"]
mod db;

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
use db::{DbKind, TestDb};
use gatehouse_keys::{
    generate, sign, Alg, Kek, KeyError, KeyRing, ManualClock, PrivateKey, RotationPolicy, Snapshot,
    OWN_ENCRYPTION_ALG, SIGNING_ALGS,
};
use gatehouse_storage::{
    model::{KeyRecord, KeyState},
    Rotation, Store,
};
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
    assert_eq!(store.backend(), kind.backend());
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
                super::run(super::DbKind::Sqlite, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::run(super::DbKind::Postgres, super::$name).await;
            }
        }
    )*};
}

on_both! {
    open_empty_database,
    default_signing_algs_only,
    scheduled_lifecycle,
    schedule_waits_for_prepublish,
    two_instances_one_database,
    rotation_while_signing,
    revocation,
    crash_mid_rotation_rolls_back,
    wrong_kek_refused,
    verify_refuses_attacks,
    revoke_racing_refresh,
    own_tokens_direct_encryption,
    access_tokens_with_derived_cek,
}

// ---------------------------------------------------------------- helpers

fn of(keys: &[KeyRecord], alg: Alg, state: KeyState) -> Vec<&KeyRecord> {
    keys.iter()
        .filter(|k| k.alg == alg.as_str() && k.state == state)
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

fn jwks_kids(snap: &Snapshot) -> HashSet<String> {
    jwks_entries(snap)
        .iter()
        .map(|k| k["kid"].as_str().expect("JWK has a kid").to_owned())
        .collect()
}

fn kids(keys: &[KeyRecord], states: &[KeyState]) -> HashSet<String> {
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

fn kid_of(token: &str) -> String {
    header_of(token)["kid"]
        .as_str()
        .expect("kid in header")
        .to_owned()
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
        Err(KeyError::InvalidToken(_)) => {}
        other => panic!("{what}: expected InvalidToken, got {other:?}"),
    }
}

/// The rotation of `alg` in a tick's or rotate's result, if any.
fn rotation_of(done: &[(Alg, Rotation)], alg: Alg) -> Option<&Rotation> {
    done.iter().find(|(a, _)| *a == alg).map(|(_, r)| r)
}

/// Private or symmetric JWK members that must never be published.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

// ---------------------------------------------------------------- 1. open

/// The default `signing_algs` (RS256, ES256): keys only for those; keys of
/// another signing algorithm already in the store are neither published
/// nor used.
async fn default_signing_algs_only(env: Env) {
    // A fresh database under the default policy: no EdDSA or PS256 key.
    let _ring = env.ring(RotationPolicy::default()).await;
    let keys = env.keys().await;
    assert_eq!(keys.len(), 6, "3 algs x (active + next)");
    assert!(keys.iter().all(|k| k.alg != "EdDSA" && k.alg != "PS256"));
    // Another instance (or an earlier configuration) made EdDSA keys.
    let _wide = env.ring(every_alg()).await;
    let eddsa = one(&env.keys().await, Alg::EdDSA, KeyState::Active).kid;
    let ring = env.ring(RotationPolicy::default()).await;
    let snap = ring.snapshot();
    assert!(!jwks_kids(&snap).contains(&eddsa));
    let algs: std::collections::BTreeSet<String> = jwks_entries(&snap)
        .iter()
        .map(|k| k["alg"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        algs.into_iter().collect::<Vec<_>>(),
        ["ECDH-ES+A256KW", "ES256", "RS256"]
    );
    assert!(ring.sign(Alg::EdDSA, "JWT", &claims(1)).is_err());
    ring.sign(Alg::RS256, "JWT", &claims(1)).unwrap();
}

async fn open_empty_database(env: Env) {
    assert!(env.keys().await.is_empty());
    let ring = env.ring(every_alg()).await;

    // Exactly one active and one next key per (use, alg); nothing else.
    let keys = env.keys().await;
    assert_eq!(keys.len(), 10, "5 algs x (active + next)");
    for alg in all_algs() {
        let active = one(&keys, alg, KeyState::Active);
        let next = one(&keys, alg, KeyState::Next);
        assert_ne!(active.kid, next.kid);
        assert_eq!(active.key_use, alg.key_use().as_str());
        assert_eq!(active.activated_at, Some(T0));
        assert_eq!(next.activated_at, None);
        assert_eq!((active.created_at, next.created_at), (T0, T0));
    }
    assert!(keys
        .iter()
        .all(|k| k.alg != Alg::RsaOaep256.as_str() && k.sealed_private_key.len() > 28));

    // The snapshot knows the same keys; the JWKS publishes all 10, public only.
    let snap = ring.snapshot();
    assert_eq!(snap.keys().len(), 10);
    assert_eq!(snap.epoch(), env.epoch().await);
    assert!(snap.jwks_etag().starts_with('"') && snap.jwks_etag().ends_with('"'));
    let entries = jwks_entries(&snap);
    assert_eq!(entries.len(), 10);
    assert_eq!(
        jwks_kids(&snap),
        kids(&keys, &[KeyState::Active, KeyState::Next])
    );
    for jwk in &entries {
        let kid = jwk["kid"].as_str().unwrap();
        let rec = keys.iter().find(|k| k.kid == kid).unwrap();
        assert_eq!(jwk["alg"].as_str(), Some(rec.alg.as_str()), "{jwk:?}");
        assert_eq!(jwk["use"].as_str(), Some(rec.key_use.as_str()), "{jwk:?}");
        for m in PRIVATE_MEMBERS {
            assert!(
                !jwk.contains_key(m),
                "JWK {kid} publishes private member {m}"
            );
        }
        let expected_kty = match rec.alg.as_str() {
            "RS256" | "PS256" => "RSA",
            "ES256" | "ECDH-ES+A256KW" => "EC",
            "EdDSA" => "OKP",
            other => panic!("unexpected alg {other}"),
        };
        assert_eq!(jwk["kty"].as_str(), Some(expected_kty));
    }

    // ES256: the token's kid is published, the active key signed it, verify accepts it.
    let es_active = one(&keys, Alg::ES256, KeyState::Active);
    let token = ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    let h = header_of(&token);
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["kid"].as_str(), Some(es_active.kid.as_str()));
    assert!(jwks_kids(&snap).contains(&kid_of(&token)));
    let v = ring.verify(&token, &[Alg::ES256]).unwrap();
    assert_eq!(v.claims, claims(1));
    // Not accepted when ES256 is not allowed.
    assert_invalid_token(
        ring.verify(&token, &[Alg::RS256]),
        "ES256 outside allow-list",
    );

    // Every signing alg signs with its active key and verifies.
    for alg in SIGNING_ALGS {
        let t = ring.sign(alg, "at+jwt", &claims(2)).unwrap();
        assert_eq!(kid_of(&t), one(&keys, alg, KeyState::Active).kid);
        assert_eq!(header_of(&t)["alg"], alg.as_str());
        assert_eq!(ring.verify(&t, &SIGNING_ALGS).unwrap().claims, claims(2));
    }
    // The encryption alg is no signing alg.
    assert!(ring.sign(OWN_ENCRYPTION_ALG, "JWT", &claims(3)).is_err());

    // encrypt_to_self → decrypt round-trips, addressed to the active enc key.
    let enc_active = one(&keys, OWN_ENCRYPTION_ALG, KeyState::Active);
    let jwe = ring
        .encrypt_to_self("{\"hello\":\"world\"}", Some("JSON"), None)
        .unwrap();
    assert_eq!(jwe.split('.').count(), 5);
    let (header, plain) = ring.decrypt(&jwe).unwrap();
    assert_eq!(plain, b"{\"hello\":\"world\"}");
    assert_eq!(header["kid"].as_str(), Some(enc_active.kid.as_str()));
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["cty"], "JSON");

    // A second open on the same database generates nothing.
    let epoch = env.epoch().await;
    let again = env.ring(every_alg()).await;
    assert_eq!(env.keys().await, keys);
    assert_eq!(env.epoch().await, epoch);
    assert_eq!(again.snapshot().jwks_etag(), snap.jwks_etag());
    assert!(!ring.refresh().await.unwrap(), "nothing changed");
}

// ---------------------------------------------------------------- 2. schedule

async fn scheduled_lifecycle(env: Env) {
    let ring = env.ring(small_policy()).await;
    assert_eq!(ring.policy().rotate_after, 100);
    let gen0 = env.keys().await;
    let gen0_active: HashMap<Alg, String> = all_algs()
        .into_iter()
        .map(|a| (a, one(&gen0, a, KeyState::Active).kid))
        .collect();
    let gen0_next: HashMap<Alg, String> = all_algs()
        .into_iter()
        .map(|a| (a, one(&gen0, a, KeyState::Next).kid))
        .collect();
    let tok0 = ring.sign(Alg::ES256, "JWT", &claims(0)).unwrap();
    let tok0_rs = ring.sign(Alg::RS256, "JWT", &claims(0)).unwrap();
    let jwe0 = ring.encrypt_to_self("gen0 secret", None, None).unwrap();
    let etag0 = ring.snapshot().jwks_etag().to_owned();
    let epoch0 = env.epoch().await;

    // Before rotate_after: nothing happens (not even an epoch bump).
    env.clock.set(T0 + 99);
    assert!(ring.tick().await.unwrap().is_empty());
    assert_eq!(env.keys().await, gen0);
    assert_eq!(env.epoch().await, epoch0);
    assert_eq!(ring.snapshot().jwks_etag(), etag0);

    // Past rotate_after: every alg rotates once.
    env.clock.set(T0 + 101);
    let done = ring.tick().await.unwrap();
    assert_eq!(done.len(), 5, "{done:?}");
    let gen1 = env.keys().await;
    for alg in all_algs() {
        let r = rotation_of(&done, alg).unwrap_or_else(|| panic!("{alg} not rotated"));
        assert_eq!(r.activated, gen0_next[&alg], "{alg}: next → active");
        assert_eq!(r.retired.as_deref(), Some(gen0_active[&alg].as_str()));
        let active = one(&gen1, alg, KeyState::Active);
        let retired = one(&gen1, alg, KeyState::Retired);
        let next = one(&gen1, alg, KeyState::Next);
        assert_eq!(active.kid, gen0_next[&alg]);
        assert_eq!(active.activated_at, Some(T0 + 101));
        assert_eq!(retired.kid, gen0_active[&alg]);
        assert_eq!(retired.retired_at, Some(T0 + 101));
        assert_eq!(next.kid, r.next);
        assert_eq!(next.created_at, T0 + 101);
        assert!(!gen0.iter().any(|k| k.kid == next.kid), "a new next key");
    }
    let snap = ring.snapshot();
    assert_ne!(snap.jwks_etag(), etag0);
    assert_eq!(jwks_entries(&snap).len(), 15, "active + next + retired, x5");
    assert_eq!(
        jwks_kids(&snap),
        kids(
            &gen1,
            &[KeyState::Active, KeyState::Next, KeyState::Retired]
        )
    );
    // Tokens of the old keys still verify; JWEs to the old enc key still decrypt.
    assert_eq!(ring.verify(&tok0, &[Alg::ES256]).unwrap().claims, claims(0));
    ring.verify(&tok0_rs, &[Alg::RS256]).unwrap();
    assert_eq!(ring.decrypt(&jwe0).unwrap().1, b"gen0 secret");
    // New tokens use the new active key.
    let tok1 = ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    assert_eq!(kid_of(&tok1), gen0_next[&Alg::ES256]);
    let jwe1 = ring.encrypt_to_self("gen1 secret", None, None).unwrap();
    assert_eq!(
        header_of(&jwe1)["kid"].as_str(),
        Some(gen0_next[&OWN_ENCRYPTION_ALG].as_str())
    );
    // Right after a rotation the schedule has nothing to do.
    assert!(ring.tick().await.unwrap().is_empty());

    // Exactly retain_retired after the retirement the retired keys are still
    // kept (the schedule rotates again meanwhile: gen1 retires).
    env.clock.set(T0 + 101 + 200);
    let done = ring.tick().await.unwrap();
    assert_eq!(done.len(), 5);
    let keys = env.keys().await;
    for alg in all_algs() {
        assert_eq!(count(&keys, alg, KeyState::Retired), 2, "{alg}");
        assert!(keys.iter().any(|k| k.kid == gen0_active[&alg]));
    }
    ring.verify(&tok0, &[Alg::ES256]).unwrap();

    // Past retain_retired: gen0's retired keys are deleted and their tokens die.
    env.clock.set(T0 + 101 + 201);
    let done = ring.tick().await.unwrap();
    assert!(done.is_empty(), "active keys are 1 s old: {done:?}");
    let keys = env.keys().await;
    let snap = ring.snapshot();
    for alg in all_algs() {
        let gone = &gen0_active[&alg];
        assert!(
            !keys.iter().any(|k| &k.kid == gone),
            "{alg}: {gone} deleted"
        );
        assert!(!jwks_kids(&snap).contains(gone));
        // gen1 (retired one second ago) is still there.
        let retired = one(&keys, alg, KeyState::Retired);
        assert_eq!(retired.kid, gen0_next[&alg]);
        assert_eq!(retired.retired_at, Some(T0 + 301));
    }
    assert_eq!(keys.len(), 15);
    assert_eq!(jwks_entries(&snap).len(), 15);
    assert_invalid_token(ring.verify(&tok0, &[Alg::ES256]), "token of a deleted key");
    assert_invalid_token(
        ring.verify(&tok0_rs, &[Alg::RS256]),
        "RS256 token of a deleted key",
    );
    assert_invalid_token(ring.decrypt(&jwe0), "JWE to a deleted key");
    // gen1's tokens are still good.
    ring.verify(&tok1, &[Alg::ES256]).unwrap();
    assert_eq!(ring.decrypt(&jwe1).unwrap().1, b"gen1 secret");
}

async fn schedule_waits_for_prepublish(env: Env) {
    let ring = env.ring(small_policy()).await;
    let gen0 = env.keys().await;
    let ed_active = one(&gen0, Alg::EdDSA, KeyState::Active);
    let ed_next = one(&gen0, Alg::EdDSA, KeyState::Next);

    // At T0+60 the EdDSA next key is replaced (revoked): its successor is young.
    env.clock.set(T0 + 60);
    let rev = ring.revoke(&ed_next.kid).await.unwrap();
    assert_eq!(rev.was, KeyState::Next);
    let young = rev.next.expect("a replacement next key");
    let keys = env.keys().await;
    assert_eq!(one(&keys, Alg::EdDSA, KeyState::Next).kid, young);
    assert_eq!(one(&keys, Alg::EdDSA, KeyState::Next).created_at, T0 + 60);

    // T0+101: every active key is old enough, but the EdDSA next key has been
    // published for 41 s < prepublish (50 s): EdDSA waits.
    env.clock.set(T0 + 101);
    let done = ring.tick().await.unwrap();
    assert_eq!(done.len(), 4, "{done:?}");
    assert!(rotation_of(&done, Alg::EdDSA).is_none());
    let keys = env.keys().await;
    assert_eq!(one(&keys, Alg::EdDSA, KeyState::Active).kid, ed_active.kid);
    assert_eq!(one(&keys, Alg::EdDSA, KeyState::Next).kid, young);
    assert_eq!(count(&keys, Alg::EdDSA, KeyState::Retired), 0);
    assert_eq!(
        kid_of(&ring.sign(Alg::EdDSA, "JWT", &claims(1)).unwrap()),
        ed_active.kid
    );

    // T0+109: 49 s, still too young.
    env.clock.set(T0 + 109);
    assert!(ring.tick().await.unwrap().is_empty());
    assert_eq!(
        one(&env.keys().await, Alg::EdDSA, KeyState::Active).kid,
        ed_active.kid
    );

    // T0+110: published for prepublish → EdDSA rotates, and only EdDSA.
    env.clock.set(T0 + 110);
    let done = ring.tick().await.unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    let r = rotation_of(&done, Alg::EdDSA).unwrap();
    assert_eq!(r.activated, young);
    assert_eq!(r.retired.as_deref(), Some(ed_active.kid.as_str()));
    assert_eq!(
        kid_of(&ring.sign(Alg::EdDSA, "JWT", &claims(2)).unwrap()),
        young
    );
}

// ---------------------------------------------------------------- 3. two instances

async fn two_instances_one_database(env: Env) {
    let store_b = env.second_store().await;

    // Two instances starting at once on an empty database generate once.
    let (a, b) = tokio::join!(
        KeyRing::open(
            env.store.clone(),
            env.kek.clone(),
            small_policy(),
            Arc::new(env.clock.clone())
        ),
        KeyRing::open(
            store_b.clone(),
            env.kek.clone(),
            small_policy(),
            Arc::new(env.clock.clone())
        ),
    );
    let (a, b) = (a.expect("open ring a"), b.expect("open ring b"));
    let gen0 = env.keys().await;
    assert_eq!(gen0.len(), 10, "concurrent opens generated once");
    for alg in all_algs() {
        one(&gen0, alg, KeyState::Active);
        one(&gen0, alg, KeyState::Next);
    }
    a.refresh().await.unwrap();
    b.refresh().await.unwrap();
    let etag0 = a.snapshot().jwks_etag().to_owned();
    assert_eq!(b.snapshot().jwks_etag(), etag0);

    // Both schedules fire at the same moment, on different worker threads.
    env.clock.set(T0 + 101);
    let (ta, tb) = (a.clone(), b.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { ta.tick().await }),
        tokio::spawn(async move { tb.tick().await }),
    );
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    let keys = env.keys().await;
    for alg in all_algs() {
        let by_a = rotation_of(&ra, alg).is_some() as usize;
        let by_b = rotation_of(&rb, alg).is_some() as usize;
        assert_eq!(
            by_a + by_b,
            1,
            "{alg}: exactly one instance rotated ({ra:?} / {rb:?})"
        );
        let active = one(&keys, alg, KeyState::Active);
        let retired = one(&keys, alg, KeyState::Retired);
        one(&keys, alg, KeyState::Next);
        assert_eq!(active.kid, one(&gen0, alg, KeyState::Next).kid);
        assert_eq!(retired.kid, one(&gen0, alg, KeyState::Active).kid);
    }
    assert_eq!(keys.len(), 15, "no extra next keys from the loser");

    // After refresh both instances agree, and sign with the new active keys.
    a.refresh().await.unwrap();
    b.refresh().await.unwrap();
    let etag1 = a.snapshot().jwks_etag().to_owned();
    assert_ne!(etag1, etag0);
    assert_eq!(b.snapshot().jwks_etag(), etag1);
    let es_active = one(&keys, Alg::ES256, KeyState::Active).kid;
    let from_a = a.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    let from_b = b.sign(Alg::ES256, "JWT", &claims(2)).unwrap();
    assert_eq!(kid_of(&from_a), es_active);
    assert_eq!(kid_of(&from_b), es_active);
    b.verify(&from_a, &[Alg::ES256]).unwrap();
    a.verify(&from_b, &[Alg::ES256]).unwrap();

    // An admin rotation on A: B is stale until it refreshes, then picks it up.
    let done = a.rotate(None, Some(Alg::ES256)).await.unwrap();
    assert_eq!(done.len(), 1);
    let new_active = done[0].1.activated.clone();
    assert_ne!(new_active, es_active);
    assert_eq!(b.snapshot().jwks_etag(), etag1, "no refresh yet");
    let token_by_a = a.sign(Alg::ES256, "JWT", &claims(3)).unwrap();
    assert_eq!(kid_of(&token_by_a), new_active);
    assert!(b.refresh().await.unwrap(), "B sees the keys epoch move");
    assert!(!b.refresh().await.unwrap(), "and only once");
    let etag2 = b.snapshot().jwks_etag().to_owned();
    assert_ne!(etag2, etag1);
    assert_eq!(etag2, a.snapshot().jwks_etag());
    assert_eq!(b.snapshot().epoch(), env.epoch().await);
    assert_eq!(
        kid_of(&b.sign(Alg::ES256, "JWT", &claims(4)).unwrap()),
        new_active
    );
    b.verify(&token_by_a, &[Alg::ES256]).unwrap();
    // B's own tick also picks up the change (it refreshes first) and does nothing else.
    assert!(b.tick().await.unwrap().is_empty());
}

// ---------------------------------------------------------------- 4. rotation under load

async fn rotation_while_signing(env: Env) {
    const SIGNERS: u64 = 4;
    const PER_SIGNER: usize = 200;
    const ROTATIONS: usize = 5;

    let ring = env.ring(every_alg()).await;
    let gen0 = env.keys().await;
    let first_active = one(&gen0, Alg::ES256, KeyState::Active).kid;
    let first_next = one(&gen0, Alg::ES256, KeyState::Next).kid;

    // Every kid any observer has seen in a published JWKS, so far.
    let seen: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(jwks_kids(&ring.snapshot())));
    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let mut signers = Vec::new();
    for t in 0..SIGNERS {
        let (ring, seen, started, done) =
            (ring.clone(), seen.clone(), started.clone(), done.clone());
        signers.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            let mut unpublished = Vec::new();
            loop {
                let rotations_over = done.load(Ordering::SeqCst);
                // What had been published before this sign.
                let current = jwks_kids(&ring.snapshot());
                let before: HashSet<String> = {
                    let mut s = seen.lock().unwrap();
                    s.extend(current.iter().cloned());
                    s.clone()
                };
                let token = ring
                    .sign(
                        Alg::ES256,
                        "JWT",
                        &claims(t * 1_000_000 + tokens.len() as u64),
                    )
                    .unwrap();
                let kid = kid_of(&token);
                if !before.contains(&kid) {
                    unpublished.push(kid);
                }
                tokens.push((token, rotations_over));
                if tokens.len() == 1 {
                    started.fetch_add(1, Ordering::SeqCst);
                }
                if rotations_over && tokens.len() >= PER_SIGNER {
                    break;
                }
                if tokens.len() >= PER_SIGNER {
                    // Keep signing through the rotations, without piling up tokens.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            (tokens, unpublished)
        }));
    }

    // Every signer has signed with the first key before the first rotation.
    while started.load(Ordering::SeqCst) < SIGNERS as usize {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut rotations = Vec::new();
    for _ in 0..ROTATIONS {
        let r = ring.rotate(None, Some(Alg::ES256)).await.unwrap();
        assert_eq!(r.len(), 1, "only ES256 rotates: {r:?}");
        assert_eq!(r[0].0, Alg::ES256);
        rotations.push(r[0].1.clone());
        seen.lock().unwrap().extend(jwks_kids(&ring.snapshot()));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    done.store(true, Ordering::SeqCst);

    // Each rotation activated the key the previous one had published as next.
    assert_eq!(rotations[0].activated, first_next);
    assert_eq!(rotations[0].retired.as_deref(), Some(first_active.as_str()));
    for w in rotations.windows(2) {
        assert_eq!(w[1].activated, w[0].next);
        assert_eq!(w[1].retired.as_deref(), Some(w[0].activated.as_str()));
    }
    let final_active = rotations[ROTATIONS - 1].activated.clone();
    let mut ever_active: HashSet<String> = rotations.iter().map(|r| r.activated.clone()).collect();
    ever_active.insert(first_active.clone());

    let mut all_tokens = Vec::new();
    for s in signers {
        let (tokens, unpublished) = s.await.unwrap();
        assert!(
            unpublished.is_empty(),
            "tokens signed with kids not yet published: {unpublished:?}"
        );
        assert!(tokens.len() >= PER_SIGNER);
        // Tokens signed after the last rotation returned use the final key.
        for (token, after) in &tokens {
            if *after {
                assert_eq!(kid_of(token), final_active);
            }
        }
        all_tokens.extend(tokens.into_iter().map(|(t, _)| t));
    }

    // The final ring (retired keys still published) verifies every token.
    let final_kids = jwks_kids(&ring.snapshot());
    let mut used = HashSet::new();
    for token in &all_tokens {
        let kid = kid_of(token);
        assert!(ever_active.contains(&kid), "{kid} was never active");
        assert!(final_kids.contains(&kid));
        ring.verify(token, &[Alg::ES256]).unwrap();
        used.insert(kid);
    }
    assert!(used.contains(&first_active) && used.contains(&final_active));
    assert!(used.len() >= 2, "signing spanned rotations");

    let keys = env.keys().await;
    assert_eq!(count(&keys, Alg::ES256, KeyState::Retired), ROTATIONS);
    assert_eq!(one(&keys, Alg::ES256, KeyState::Active).kid, final_active);
    one(&keys, Alg::ES256, KeyState::Next);
    for alg in all_algs().into_iter().filter(|a| *a != Alg::ES256) {
        assert_eq!(count(&keys, alg, KeyState::Retired), 0, "{alg} untouched");
    }
}

// ---------------------------------------------------------------- 5. revocation

async fn revocation(env: Env) {
    let ring = env.ring(every_alg()).await;
    let gen0 = env.keys().await;
    let active = one(&gen0, Alg::ES256, KeyState::Active);
    let next = one(&gen0, Alg::ES256, KeyState::Next);
    let token = ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    ring.verify(&token, &[Alg::ES256]).unwrap();

    env.clock.advance(5);
    let rev = ring.revoke(&active.kid).await.unwrap();
    assert_eq!(rev.kid, active.kid);
    assert_eq!(rev.was, KeyState::Active);
    assert_eq!(rev.activated.as_deref(), Some(next.kid.as_str()));
    let new_next = rev.next.clone().expect("a new next key");
    let keys = env.keys().await;
    let revoked = one(&keys, Alg::ES256, KeyState::Revoked);
    assert_eq!(revoked.kid, active.kid);
    assert_eq!(revoked.revoked_at, Some(T0 + 5));
    assert_eq!(one(&keys, Alg::ES256, KeyState::Active).kid, next.kid);
    assert_eq!(one(&keys, Alg::ES256, KeyState::Next).kid, new_next);
    // The ring reloaded: signs with the new key, refuses the revoked one, hides it.
    let snap = ring.snapshot();
    assert!(!jwks_kids(&snap).contains(&active.kid));
    assert!(jwks_kids(&snap).contains(&new_next));
    assert_eq!(jwks_entries(&snap).len(), 10);
    assert_eq!(
        kid_of(&ring.sign(Alg::ES256, "JWT", &claims(2)).unwrap()),
        next.kid
    );
    assert_invalid_token(ring.verify(&token, &[Alg::ES256]), "token of a revoked key");
    // Another instance opening now agrees.
    let other = env.ring(every_alg()).await;
    assert_invalid_token(
        other.verify(&token, &[Alg::ES256]),
        "token of a revoked key (fresh instance)",
    );

    // Unknown and already-revoked kids fail cleanly and change nothing.
    let epoch = env.epoch().await;
    for bad in ["no-such-kid", "", "' OR 1=1 --", "../../etc/passwd"] {
        let err = ring.revoke(bad).await.expect_err("unknown kid");
        assert!(
            matches!(err, KeyError::InvalidKey(_)),
            "{bad:?}: unexpected error {err:?}"
        );
    }
    let err = ring.revoke(&active.kid).await.expect_err("already revoked");
    assert!(
        matches!(
            err,
            KeyError::Storage(gatehouse_storage::StoreError::NotFound(_))
        ),
        "{err:?}"
    );
    assert_eq!(env.keys().await, keys);
    assert_eq!(env.epoch().await, epoch);

    // Revoking a retired key withdraws it at once.
    let rs_token = ring.sign(Alg::RS256, "JWT", &claims(3)).unwrap();
    let r = ring.rotate(None, Some(Alg::RS256)).await.unwrap();
    let rs_retired = r[0].1.retired.clone().unwrap();
    assert_eq!(kid_of(&rs_token), rs_retired);
    ring.verify(&rs_token, &[Alg::RS256]).unwrap();
    let rev = ring.revoke(&rs_retired).await.unwrap();
    assert_eq!(rev.was, KeyState::Retired);
    assert_eq!(
        (rev.activated, rev.next),
        (None, None),
        "next key untouched"
    );
    assert!(!jwks_kids(&ring.snapshot()).contains(&rs_retired));
    assert_invalid_token(
        ring.verify(&rs_token, &[Alg::RS256]),
        "token of a revoked retired key",
    );

    // Revoking the own encryption key: JWEs to it no longer decrypt.
    let jwe = ring.encrypt_to_self("for the old key", None, None).unwrap();
    let enc_active = one(&env.keys().await, OWN_ENCRYPTION_ALG, KeyState::Active);
    assert_eq!(kid_of(&jwe), enc_active.kid);
    let rev = ring.revoke(&enc_active.kid).await.unwrap();
    assert_invalid_token(ring.decrypt(&jwe), "JWE to a revoked key");
    let jwe2 = ring.encrypt_to_self("for the new key", None, None).unwrap();
    assert_eq!(Some(kid_of(&jwe2)), rev.activated);
    assert_eq!(ring.decrypt(&jwe2).unwrap().1, b"for the new key");

    // generate_next adds a second next key; the older one still activates first.
    let rs_next = one(&env.keys().await, Alg::RS256, KeyState::Next);
    env.clock.advance(1);
    let added = ring.generate_next(Alg::RS256).await.unwrap();
    let keys = env.keys().await;
    let nexts = of(&keys, Alg::RS256, KeyState::Next);
    assert_eq!(nexts.len(), 2);
    assert!(nexts
        .iter()
        .any(|k| k.kid == added && k.created_at == T0 + 6));
    assert!(jwks_kids(&ring.snapshot()).contains(&added));
    let r = ring.rotate(None, Some(Alg::RS256)).await.unwrap();
    assert_eq!(r[0].1.activated, rs_next.kid);
    let keys = env.keys().await;
    assert_eq!(count(&keys, Alg::RS256, KeyState::Next), 2, "added + new");
    assert!(of(&keys, Alg::RS256, KeyState::Next)
        .iter()
        .any(|k| k.kid == added));
}

// ---------------------------------------------------------------- 6. crash safety

async fn crash_mid_rotation_rolls_back(env: Env) {
    let ring = env.ring(every_alg()).await;
    let before = env.keys().await;
    let epoch = env.epoch().await;
    let active = one(&before, Alg::ES256, KeyState::Active);
    let next = one(&before, Alg::ES256, KeyState::Next);

    // The new next key's INSERT (the last step, after next → active and
    // active → retired) fails on a duplicate kid: the rotation dies midway.
    for (dup, expected) in [(&active, None), (&next, Some(next.kid.as_str()))] {
        let mut rec = dup.clone();
        rec.state = KeyState::Next;
        rec.activated_at = None;
        let res = env
            .store
            .rotate_keys("sig", "ES256", expected, rec, T0 + 10)
            .await;
        assert!(res.is_err(), "duplicate kid must fail: {res:?}");

        // Nothing half-done: same active, same next, no retired key, no epoch move.
        let after = env.keys().await;
        assert_eq!(after, before);
        assert_eq!(one(&after, Alg::ES256, KeyState::Active).kid, active.kid);
        assert_eq!(one(&after, Alg::ES256, KeyState::Next).kid, next.kid);
        assert_eq!(count(&after, Alg::ES256, KeyState::Retired), 0);
        assert_eq!(env.epoch().await, epoch);
    }
    assert!(!ring.refresh().await.unwrap());
    assert_eq!(
        kid_of(&ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap()),
        active.kid
    );

    // A second instance can still rotate (no lock left behind).
    let other = env.ring_on(env.second_store().await, every_alg()).await;
    let done = tokio::time::timeout(
        Duration::from_secs(20),
        other.rotate(None, Some(Alg::ES256)),
    )
    .await
    .expect("rotation after a failed one must not hang")
    .unwrap();
    assert_eq!(done[0].1.activated, next.kid);
    assert_eq!(done[0].1.retired.as_deref(), Some(active.kid.as_str()));
    assert!(ring.refresh().await.unwrap());
    assert_eq!(
        kid_of(&ring.sign(Alg::ES256, "JWT", &claims(2)).unwrap()),
        next.kid
    );
}

// ---------------------------------------------------------------- 7. wrong KEK

async fn wrong_kek_refused(env: Env) {
    let _ring = env.ring(every_alg()).await;
    let before = env.keys().await;
    let epoch = env.epoch().await;

    let wrong = Kek::generate();
    let err = KeyRing::open(
        env.store.clone(),
        wrong,
        every_alg(),
        Arc::new(env.clock.clone()),
    )
    .await
    .expect_err("a ring under the wrong KEK must not open");
    assert!(matches!(err, KeyError::Unseal(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("wrong key-encryption key"),
        "message should name the wrong KEK: {msg}"
    );
    // Nothing was generated or changed under the wrong KEK.
    assert_eq!(env.keys().await, before);
    assert_eq!(env.epoch().await, epoch);

    // The right KEK still opens (also via its base64url text form).
    let kek = Kek::from_base64url(&env.kek.to_base64url()).unwrap();
    let ring = KeyRing::open(
        env.store.clone(),
        kek,
        every_alg(),
        Arc::new(env.clock.clone()),
    )
    .await
    .unwrap();
    let t = ring.sign(Alg::PS256, "JWT", &claims(1)).unwrap();
    ring.verify(&t, &[Alg::PS256]).unwrap();

    // A database missing one alg's keys (written by a version without EdDSA,
    // or a first start that died midway). A start with the wrong KEK must
    // not generate the missing keys under that KEK before failing: that
    // would lock the right KEK out for good (regression test for a bug).
    {
        use sea_orm::ConnectionTrait;
        let raw = sea_orm::Database::connect(&env.db.url).await.unwrap();
        raw.execute_unprepared("DELETE FROM keys WHERE alg = 'EdDSA'")
            .await
            .unwrap();
        raw.close().await.unwrap();
    }
    let partial = env.keys().await;
    assert_eq!(partial.len(), 8);
    let err = KeyRing::open(
        env.store.clone(),
        Kek::generate(),
        every_alg(),
        Arc::new(env.clock.clone()),
    )
    .await
    .expect_err("the wrong KEK must not open a partial ring either");
    assert!(matches!(err, KeyError::Unseal(_)), "{err:?}");
    assert!(
        err.to_string().contains("wrong key-encryption key"),
        "{err}"
    );
    assert_eq!(
        env.keys().await,
        partial,
        "nothing sealed under the wrong KEK"
    );
    let ring = env.ring(every_alg()).await;
    let keys = env.keys().await;
    assert_eq!(keys.len(), 10, "the right KEK fills in EdDSA");
    one(&keys, Alg::EdDSA, KeyState::Active);
    one(&keys, Alg::EdDSA, KeyState::Next);
    let t = ring.sign(Alg::EdDSA, "JWT", &claims(2)).unwrap();
    ring.verify(&t, &[Alg::EdDSA]).unwrap();
}

// ---------------------------------------------------------------- 8. attacks on verify

async fn verify_refuses_attacks(env: Env) {
    let ring = env.ring(every_alg()).await;
    let keys = env.keys().await;
    let es = one(&keys, Alg::ES256, KeyState::Active);
    let rs = one(&keys, Alg::RS256, KeyState::Active);
    let payload = b64(&json!({"sub": "admin", "iss": "https://gatehouse.test"}));
    let all = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];

    // alg none, with and without a signature segment; also "None" and "NONE".
    for alg in ["none", "None", "NONE"] {
        let h = b64(&json!({"alg": alg, "kid": es.kid, "typ": "JWT"}));
        assert_invalid_token(ring.verify(&format!("{h}.{payload}."), &all), "alg none");
        assert_invalid_token(
            ring.verify(&format!("{h}.{payload}.AAAA"), &all),
            "alg none with signature",
        );
    }
    // No alg at all.
    let h = b64(&json!({"kid": es.kid}));
    assert_invalid_token(ring.verify(&format!("{h}.{payload}."), &all), "no alg");

    // HS256 keyed with the published RSA JWK (algorithm confusion).
    {
        use hmac::{Hmac, Mac};
        let h = b64(&json!({"alg": "HS256", "kid": rs.kid, "typ": "JWT"}));
        let input = format!("{h}.{payload}");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(rs.public_jwk.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_invalid_token(
            ring.verify(&format!("{input}.{sig}"), &all),
            "HS256 with the public key",
        );
    }

    // A real ES256 token relabelled RS256 (alg/key mismatch).
    let real = ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    let parts: Vec<&str> = real.split('.').collect();
    let h = b64(&json!({"alg": "RS256", "kid": es.kid, "typ": "JWT"}));
    assert_invalid_token(
        ring.verify(&format!("{h}.{}.{}", parts[1], parts[2]), &all),
        "alg relabelled",
    );
    // An attacker's own key claiming a real kid: bad signature.
    let forged = sign(&attacker_key(Alg::ES256, &es.kid), "JWT", &claims(1)).unwrap();
    assert_eq!(kid_of(&forged), es.kid);
    assert_invalid_token(ring.verify(&forged, &all), "attacker key with a real kid");

    // Kids that try to escape a lookup: validly signed by the attacker, refused as unknown.
    for kid in [
        "' OR 1=1 --",
        "x' OR '1'='1",
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%",
        "*",
    ] {
        let forged = sign(&attacker_key(Alg::ES256, kid), "JWT", &claims(2)).unwrap();
        assert_eq!(kid_of(&forged), kid);
        assert_invalid_token(ring.verify(&forged, &all), kid);
        // The same kid with a real signature segment taken from a real token.
        let h = b64(&json!({"alg": "ES256", "kid": kid, "typ": "JWT"}));
        assert_invalid_token(
            ring.verify(&format!("{h}.{}.{}", parts[1], parts[2]), &all),
            kid,
        );
    }

    // A kid naming a revoked key: its genuine tokens are refused.
    ring.verify(&real, &all).unwrap();
    ring.revoke(&es.kid).await.unwrap();
    assert_invalid_token(ring.verify(&real, &all), "revoked kid");
    assert_invalid_token(ring.verify(&real, &[Alg::ES256]), "revoked kid, ES256 only");

    // None of this touched the store: only the one revocation happened.
    let after = env.keys().await;
    assert_eq!(after.len(), keys.len() + 1, "the revocation's new next key");
    assert_eq!(count(&after, Alg::ES256, KeyState::Revoked), 1);
    for alg in all_algs() {
        one(&after, alg, KeyState::Active);
        one(&after, alg, KeyState::Next);
    }
}

// ---------------------------------------------------------------- revoke vs. poll

/// Once `revoke` has returned, the instance it ran on refuses the key, even
/// when its background poll reloads at the same moment (regression test:
/// an older snapshot used to be put back by the slower reload). The race is
/// timing-dependent, so it is provoked many times over.
async fn revoke_racing_refresh(env: Env) {
    const ROUNDS: u64 = 40;
    let ring = env.ring(every_alg()).await;
    let other = env.ring_on(env.second_store().await, every_alg()).await;
    for i in 0..ROUNDS {
        let token = ring.sign(Alg::ES256, "JWT", &claims(i)).unwrap();
        let kid = kid_of(&token);
        // Another instance changes the keys, so this ring's poll reloads...
        other.rotate(None, Some(Alg::EdDSA)).await.unwrap();
        // ...while an admin revokes the ES256 key through this ring.
        let (poll, admin) = (ring.clone(), ring.clone());
        let (polled, revoked) = tokio::join!(
            tokio::spawn(async move { poll.refresh().await }),
            tokio::spawn(async move { admin.revoke(&kid).await }),
        );
        polled.unwrap().unwrap();
        let rev = revoked.unwrap().unwrap();
        assert_invalid_token(
            ring.verify(&token, &[Alg::ES256]),
            &format!("round {i}: token of the key revoked a moment ago"),
        );
        assert!(!jwks_kids(&ring.snapshot()).contains(&rev.kid), "round {i}");
        let signed = ring.sign(Alg::ES256, "JWT", &claims(i)).unwrap();
        assert_eq!(Some(kid_of(&signed)), rev.activated, "round {i}");
        assert_eq!(ring.snapshot().epoch(), env.epoch().await, "round {i}");
    }
}

/// Access tokens addressed to Gatehouse: `dir` + A256GCM under a per-day key
/// derived from the KEK. Every instance with the KEK opens them; nothing
/// else does; keys of days outside yesterday..tomorrow are refused.
async fn own_tokens_direct_encryption(env: Env) {
    let ring = env.ring(small_policy()).await;
    let mut extra = Map::new();
    extra.insert("gh_ref".into(), "sealed".into());
    let jwe = ring
        .encrypt_own_token("a.b.c", Some("JWT"), Some(&extra))
        .unwrap();
    let parts: Vec<&str> = jwe.split('.').collect();
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[1], "", "direct encryption has no encrypted key");
    let header = header_of(&jwe);
    assert_eq!(header["alg"], "dir");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(header["cty"], "JWT");
    assert_eq!(header["gh_ref"], "sealed");
    let kid = header["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid, format!("gh-dir-{}", T0 / 86_400));
    assert!(KeyRing::is_own_token_kid(&kid));
    let (h, plain) = ring.decrypt_own_token(&jwe).unwrap();
    assert_eq!(plain, b"a.b.c");
    assert_eq!(h["gh_ref"], "sealed");

    // Another instance with the same KEK opens it; a ring with another KEK does not.
    let other = env.ring_on(env.second_store().await, small_policy()).await;
    assert_eq!(other.decrypt_own_token(&jwe).unwrap().1, b"a.b.c");
    // Any altered part fails: header (the AAD), IV, ciphertext, tag.
    for i in [0, 2, 3, 4] {
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        let mut bytes = URL_SAFE_NO_PAD.decode(&p[i]).unwrap();
        bytes[0] ^= 1;
        p[i] = URL_SAFE_NO_PAD.encode(bytes);
        assert!(ring.decrypt_own_token(&p.join(".")).is_err(), "part {i}");
    }
    // A non-empty encrypted-key part, another alg, or a foreign kid: refused.
    assert!(ring
        .decrypt_own_token(&jwe.replacen("..", ".AAAA.", 1))
        .is_err());
    assert!(ring.decrypt(&jwe).is_err(), "not an ECDH token");
    let forged = |h: Value| {
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        p[0] = URL_SAFE_NO_PAD.encode(h.to_string());
        p.join(".")
    };
    let mut h2 = header.clone();
    h2["alg"] = "A256KW".into();
    assert!(ring.decrypt_own_token(&forged(Value::Object(h2))).is_err());
    let mut h3 = header.clone();
    h3["kid"] = "gh-dir-not-a-day".into();
    assert!(ring.decrypt_own_token(&forged(Value::Object(h3))).is_err());

    // Tomorrow it still opens; two days later its key is no longer accepted.
    env.clock.set(T0 + 86_400);
    assert!(ring.decrypt_own_token(&jwe).is_ok());
    env.clock.set(T0 + 2 * 86_400 + 1);
    assert!(ring.decrypt_own_token(&jwe).is_err());
    // Sealed references follow the same days.
    env.clock.set(T0);
    let sealed = ring.seal_reference(b"ref").unwrap();
    assert_eq!(other.open_reference(&sealed).unwrap(), b"ref");
    let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    bytes[3] ^= 1; // the neighbouring day: within the window, but another key
    assert!(ring
        .open_reference(&URL_SAFE_NO_PAD.encode(&bytes))
        .is_none());
    env.clock.set(T0 + 86_400);
    assert_eq!(ring.open_reference(&sealed).unwrap(), b"ref");
    env.clock.set(T0 + 2 * 86_400 + 1);
    assert!(ring.open_reference(&sealed).is_none());
    // References sealed by earlier versions (undated key, version byte 1)
    // still open: tokens issued before an upgrade stay revocable.
    let legacy = env
        .kek
        .derive(b"gatehouse token-reference v1")
        .seal("gh_ref", b"old")
        .unwrap();
    assert_eq!(
        ring.open_reference(&URL_SAFE_NO_PAD.encode(&legacy))
            .unwrap(),
        b"old"
    );
    // New tokens use the new day's key.
    let later = ring.encrypt_own_token("x", None, None).unwrap();
    assert_ne!(header_of(&later)["kid"], kid.as_str());
}

/// Access tokens for resource servers: the CEK is derived from the KEK and
/// the jti, wrapped as usual (the resource server decrypts normally). Any
/// instance with the KEK opens a token given its jti; a genuine header on
/// another body, another jti, a re-encrypted JWS with another jti or a
/// forged signature, and a token whose signing key was revoked all fail.
async fn access_tokens_with_derived_cek(env: Env) {
    let ring = env.ring(small_policy()).await;
    let api = attacker_key(Alg::RsaOaep256, "api-1");
    let signed = |jti: &str| {
        let mut c = claims(1);
        c.insert("jti".into(), jti.into());
        ring.sign(Alg::ES256, "at+jwt", &c).unwrap()
    };
    let (jws_a, jws_b) = (signed("jti-a"), signed("jti-b"));
    let mut extra = Map::new();
    extra.insert("gh_ref".into(), "ref".into());
    let token = ring
        .encrypt_access_token(
            &jws_a,
            &api.public_key(),
            "jti-a",
            Some("JWT"),
            Some(&extra),
        )
        .unwrap();
    let other = ring
        .encrypt_access_token(
            &jws_b,
            &api.public_key(),
            "jti-b",
            Some("JWT"),
            Some(&extra),
        )
        .unwrap();
    // The resource server decrypts it with its private key, as always.
    let (header, plain) = gatehouse_keys::decrypt(&token, |_| Some(&api)).unwrap();
    assert_eq!(plain, jws_a.as_bytes());
    assert_eq!(header["gh_ref"], "ref");
    assert_eq!(header["kid"], "api-1");

    let opened = ring
        .open_access_token(&token, "jti-a", &SIGNING_ALGS)
        .unwrap();
    assert_eq!(opened.claims["jti"], "jti-a");
    let other_instance = env.ring_on(env.second_store().await, small_policy()).await;
    assert!(other_instance
        .open_access_token(&token, "jti-a", &SIGNING_ALGS)
        .is_ok());
    // Another jti derives another CEK; the empty jti none at all.
    assert_invalid_token(
        ring.open_access_token(&token, "jti-b", &SIGNING_ALGS),
        "wrong jti",
    );
    assert_invalid_token(
        ring.open_access_token(&token, "", &SIGNING_ALGS),
        "empty jti",
    );
    // The genuine header on another token's body.
    let parts: Vec<&str> = token.split('.').collect();
    let spliced = format!("{}.{}", parts[0], other.split_once('.').unwrap().1);
    assert_invalid_token(
        ring.open_access_token(&spliced, "jti-a", &SIGNING_ALGS),
        "spliced",
    );
    // The resource server knows this token's CEK: what it re-encrypts
    // under the genuine header must still be the JWS Gatehouse signed.
    let cek = env
        .kek
        .derive(b"gatehouse access-token cek v1")
        .derive(b"jti-a");
    let reencrypt = |payload: &str| {
        use josekit::jwe::{enc::A256GCM, JweContentEncryption as _};
        let iv = [7u8; 12];
        let (ct, tag) = A256GCM
            .encrypt(
                &cek_bytes(&cek),
                Some(&iv),
                payload.as_bytes(),
                parts[0].as_bytes(),
            )
            .unwrap();
        format!(
            "{}.{}.{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(ct),
            URL_SAFE_NO_PAD.encode(tag.unwrap())
        )
    };
    assert!(ring
        .open_access_token(&reencrypt(&jws_a), "jti-a", &SIGNING_ALGS)
        .is_ok());
    assert_invalid_token(
        ring.open_access_token(&reencrypt(&jws_b), "jti-a", &SIGNING_ALGS),
        "a signed token with another jti",
    );
    let mut forged = claims(1);
    forged.insert("jti".into(), "jti-a".into());
    let impostor = sign(
        &attacker_key(Alg::ES256, &kid_of(&jws_a)),
        "at+jwt",
        &forged,
    )
    .unwrap();
    assert_invalid_token(
        ring.open_access_token(&reencrypt(&impostor), "jti-a", &SIGNING_ALGS),
        "signed by someone else under Gatehouse's kid",
    );
    // Revoking the signing key ends the token on every instance.
    ring.revoke(&kid_of(&jws_a)).await.unwrap();
    other_instance.refresh().await.unwrap();
    assert_invalid_token(
        ring.open_access_token(&token, "jti-a", &SIGNING_ALGS),
        "revoked key",
    );
    assert_invalid_token(
        other_instance.open_access_token(&token, "jti-a", &SIGNING_ALGS),
        "revoked key, other instance",
    );
}

/// The raw bytes of a derived key, as the resource server learns them by
/// unwrapping a token's CEK.
fn cek_bytes(key: &Kek) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(key.to_base64url()).unwrap()
}
