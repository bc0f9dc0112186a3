//! The store contract: every test below runs once on SQLite and once on PostgreSQL.
//!
//! Each test is written once as `async fn name(store: Store)`; `contract!`
//! generates a `sqlite_name` and a `postgres_name` wrapper that give it a
//! fresh, migrated database. The PostgreSQL wrappers need
//! `GATEHOUSE_TEST_POSTGRES_URL` (see `support/db.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/db.rs"]
mod db;

use std::{future::Future, sync::Arc};

use db::DbKind;
use gatehouse_storage::{
    model::{
        AuthCode, Client, CodeLookup, CodeRedemption, GrantWrites, KeyRecord, KeyState,
        OpaqueToken, RefreshToken, RegistrationPolicy, ResourceServer, Session, TokenRecord, User,
    },
    KeyRevocation, RefreshRefusal, RefreshUse, RetryWindow, Rotation, StatusEntry, Store,
    StoreError,
};
use tokio::sync::Barrier;

/// A fixed "now" (Unix seconds); tests move time explicitly.
const NOW: i64 = 1_700_000_000;

/// Gives `test` a fresh, migrated store on `kind`, then cleans up.
async fn run<F, Fut>(kind: DbKind, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = db::fresh(kind).await else {
        return; // skipped; `fresh` said so loudly
    };
    let store = Store::connect(&db.url).await.expect("connect");
    assert_eq!(store.backend(), kind.backend());
    store.migrate().await.expect("migrate");
    test(store.clone()).await;
    // Nothing here (concurrent writers included) looks like an outage.
    assert!(store.database_up(), "the database was marked down");
    store.close().await.expect("close");
    drop(db);
}

/// `contract! { test => sqlite_test, postgres_test; ... }`
macro_rules! contract {
    ($($test:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            run(DbKind::Sqlite, $test).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            run(DbKind::Postgres, $test).await;
        }
    )*};
}

contract! {
    migrations => sqlite_migrations, postgres_migrations;
    users => sqlite_users, postgres_users;
    clients => sqlite_clients, postgres_clients;
    resources => sqlite_resources, postgres_resources;
    keys_lifecycle => sqlite_keys_lifecycle, postgres_keys_lifecycle;
    keys_revocation => sqlite_keys_revocation, postgres_keys_revocation;
    keys_concurrent_rotation => sqlite_keys_concurrent_rotation, postgres_keys_concurrent_rotation;
    keys_concurrent_ensure => sqlite_keys_concurrent_ensure, postgres_keys_concurrent_ensure;
    sessions => sqlite_sessions, postgres_sessions;
    sessions_prune => sqlite_sessions_prune, postgres_sessions_prune;
    codes => sqlite_codes, postgres_codes;
    codes_concurrent_redeem => sqlite_codes_concurrent_redeem, postgres_codes_concurrent_redeem;
    consents => sqlite_consents, postgres_consents;
    refresh_rotation_and_reuse => sqlite_refresh_rotation_and_reuse, postgres_refresh_rotation_and_reuse;
    refresh_grace_expiry_revocation => sqlite_refresh_grace_expiry_revocation, postgres_refresh_grace_expiry_revocation;
    refresh_concurrent_use => sqlite_refresh_concurrent_use, postgres_refresh_concurrent_use;
    revocation_list => sqlite_revocation_list, postgres_revocation_list;
    registration_tokens => sqlite_registration_tokens, postgres_registration_tokens;
    token_status => sqlite_token_status, postgres_token_status;
    codes_find => sqlite_codes_find, postgres_codes_find;
    clients_require_pkce => sqlite_clients_require_pkce, postgres_clients_require_pkce;
    refresh_retry_window => sqlite_refresh_retry_window, postgres_refresh_retry_window;
    opaque_token_revocation => sqlite_opaque_token_revocation, postgres_opaque_token_revocation;
    client_grants => sqlite_client_grants, postgres_client_grants;
    pending_codes_of_user => sqlite_pending_codes_of_user, postgres_pending_codes_of_user;
    registration_token_policy => sqlite_registration_token_policy, postgres_registration_token_policy;
    resources_update => sqlite_resources_update, postgres_resources_update;
    grant_writes_all_or_nothing => sqlite_grant_writes_all_or_nothing, postgres_grant_writes_all_or_nothing;
}

// ---------------------------------------------------------------- fixtures

fn user(id: &str, username: &str) -> User {
    User {
        id: id.to_owned(),
        username: username.to_owned(),
        email: Some(format!("{username}@example.org")),
        email_verified: true,
        name: Some(format!("Ms. {username} O'Brien")),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${username}"),
        disabled: false,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn client(id: &str, created_at: i64) -> Client {
    Client {
        id: id.to_owned(),
        secret_hash: Some(format!("hash-of-{id}")),
        name: format!("Client {id}"),
        redirect_uris: vec![
            "https://app.example/cb".to_owned(),
            "https://app.example/cb?q=\"quoted\"&x=1".to_owned(),
            "https://例え.jp/コールバック".to_owned(),
        ],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        response_types: vec!["code".to_owned()],
        token_endpoint_auth_method: "client_secret_basic".to_owned(),
        scopes: vec!["api:read".to_owned(), "api:write".to_owned()],
        jwks: None,
        jwks_uri: Some("https://app.example/jwks.json".to_owned()),
        id_token_signed_response_alg: "RS256".to_owned(),
        access_token_lifetime: Some(300),
        refresh_token_lifetime: None,
        backchannel_logout_uri: None,
        registration_token_hash: Some(format!("reg-{id}")),
        created_at,
        updated_at: created_at,
        client_secret_sealed: None,
        token_endpoint_auth_signing_alg: None,
        require_pkce: false,
        registration_policy: None,
        legacy_assertion_audience: false,
    }
}

fn resource(audience: &str) -> ResourceServer {
    ResourceServer {
        audience: audience.to_owned(),
        encryption_jwk: r#"{"kty":"RSA","n":"abc","e":"AQAB"}"#.to_owned(),
        signing_alg: "RS256".to_owned(),
        token_format: "jwe".to_owned(),
        access_token_lifetime: Some(600),
        scopes: vec!["read".to_owned(), "write".to_owned()],
        created_at: NOW,
        clients: vec!["c1".to_owned()],
    }
}

/// A key candidate. The store does not interpret the sealed bytes or the JWK.
fn key(kid: &str, key_use: &str, alg: &str) -> KeyRecord {
    let mut sealed = vec![0u8, 1, 2, 255, 254];
    sealed.extend_from_slice(kid.as_bytes());
    KeyRecord {
        kid: kid.to_owned(),
        key_use: key_use.to_owned(),
        alg: alg.to_owned(),
        state: KeyState::Next,
        sealed_private_key: sealed,
        public_jwk: "{}".to_owned(),
        created_at: NOW,
        activated_at: None,
        retired_at: None,
        revoked_at: None,
    }
}

fn session(id_hash: &str, sid: &str, user_id: &str, created_at: i64, expires_at: i64) -> Session {
    Session {
        id_hash: id_hash.to_owned(),
        sid: sid.to_owned(),
        user_id: user_id.to_owned(),
        auth_time: created_at,
        amr: vec!["pwd".to_owned(), "otp".to_owned()],
        acr: Some("urn:gatehouse:acr:mfa".to_owned()),
        created_at,
        last_seen_at: created_at,
        expires_at,
    }
}

fn code(code_hash: &str, family_id: &str, expires_at: i64) -> AuthCode {
    AuthCode {
        code_hash: code_hash.to_owned(),
        client_id: "client-1".to_owned(),
        user_id: "user-1".to_owned(),
        redirect_uri: "https://app.example/cb".to_owned(),
        scope: "openid profile".to_owned(),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        resource: Some("https://api.example".to_owned()),
        auth_time: NOW - 5,
        sid: Some("sid-1".to_owned()),
        acr: None,
        amr: vec!["pwd".to_owned()],
        family_id: family_id.to_owned(),
        created_at: NOW,
        expires_at,
    }
}

fn refresh(token_hash: &str, family_id: &str, user_id: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        token_hash: token_hash.to_owned(),
        family_id: family_id.to_owned(),
        client_id: "client-1".to_owned(),
        user_id: user_id.to_owned(),
        scope: "openid offline_access".to_owned(),
        resource: None,
        auth_time: NOW - 5,
        sid: Some("sid-1".to_owned()),
        acr: Some("1".to_owned()),
        amr: vec!["pwd".to_owned()],
        successor_hash: None,
        created_at: NOW,
        expires_at,
        used_at: None,
        revoked_at: None,
    }
}

/// The `make_successor` closure callers of `use_refresh_token` pass.
fn successor(hash: &str, now: i64) -> impl FnOnce(&RefreshToken) -> RefreshToken + Send + 'static {
    let hash = hash.to_owned();
    move |old: &RefreshToken| RefreshToken {
        token_hash: hash,
        successor_hash: None,
        created_at: now,
        used_at: None,
        revoked_at: None,
        ..old.clone()
    }
}

async fn key_state(store: &Store, kid: &str) -> Option<KeyRecord> {
    store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == kid)
}

async fn kids_in(store: &Store, key_use: &str, alg: &str, state: KeyState) -> Vec<String> {
    store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.key_use == key_use && k.alg == alg && k.state == state)
        .map(|k| k.kid)
        .collect()
}

// ------------------------------------------------------------------ tests

async fn migrations(store: Store) {
    assert!(store.pending_migrations().await.unwrap().is_empty());
    // Running again is a no-op, not an error.
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    for name in ["keys", "clients", "resources"] {
        assert_eq!(
            store.epoch(name).await.unwrap(),
            0,
            "epoch {name} starts at 0"
        );
    }
    assert_eq!(store.epoch("no-such-epoch").await.unwrap(), 0);
}

async fn users(store: Store) {
    assert!(store.list_users().await.unwrap().is_empty());
    let bob = user("u-bob", "bob");
    let alice = user("u-alice", "alice");
    let carol = User {
        email: None,
        name: None,
        email_verified: false,
        ..user("u-carol", "carol")
    };
    store.create_user(&bob).await.unwrap();
    store.create_user(&carol).await.unwrap();
    store.create_user(&alice).await.unwrap();

    // Duplicate username (different id) is a conflict; so is a duplicate id.
    let err = store
        .create_user(&user("u-bob-2", "bob"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .create_user(&user("u-bob", "robert"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.user_by_username("robert").await.unwrap(), None);

    // Lookups round-trip every field.
    assert_eq!(
        store.user_by_username("bob").await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        store.user_by_id("u-alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.user_by_id("u-carol").await.unwrap(),
        Some(carol.clone())
    );
    assert_eq!(store.user_by_username("dave").await.unwrap(), None);
    assert_eq!(store.user_by_id("u-dave").await.unwrap(), None);
    // Lookup by username is by username, not by id.
    assert_eq!(store.user_by_username("u-bob").await.unwrap(), None);

    // Ordered by username.
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);

    // Disable and re-enable.
    let disabled = store
        .set_user_disabled("bob", true, NOW + 10)
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.updated_at, NOW + 10);
    assert_eq!(disabled.id, "u-bob");
    assert!(store.user_by_id("u-bob").await.unwrap().unwrap().disabled);
    assert!(
        !store.user_by_id("u-alice").await.unwrap().unwrap().disabled,
        "only bob was disabled"
    );
    let enabled = store
        .set_user_disabled("bob", false, NOW + 20)
        .await
        .unwrap();
    assert!(!enabled.disabled);
    assert_eq!(enabled.updated_at, NOW + 20);
    assert_eq!(enabled.created_at, NOW);

    let err = store
        .set_user_disabled("dave", true, NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

async fn clients(store: Store) {
    let mut epoch = store.epoch("clients").await.unwrap();
    let mut bumped = |new: i64, what: &str| {
        assert!(
            new > epoch,
            "clients epoch must increase on {what}: {epoch} -> {new}"
        );
        epoch = new;
    };

    assert!(store.list_clients().await.unwrap().is_empty());
    let c1 = client("c1", NOW);
    store.create_client(&c1).await.unwrap();
    bumped(store.epoch("clients").await.unwrap(), "create");
    // Every field, the JSON lists included (quotes, non-ASCII, empty), round-trips.
    assert_eq!(store.client("c1").await.unwrap(), Some(c1.clone()));
    assert_eq!(store.client("nope").await.unwrap(), None);

    // A duplicate id is a conflict, and the failed transaction does not bump the epoch.
    let before = store.epoch("clients").await.unwrap();
    let err = store
        .create_client(&client("c1", NOW + 5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.epoch("clients").await.unwrap(), before);
    assert_eq!(store.client("c1").await.unwrap(), Some(c1.clone()));

    // Listed oldest first, ties by id.
    let c2 = Client {
        secret_hash: None,
        token_endpoint_auth_method: "none".to_owned(),
        scopes: vec![],
        ..client("c2", NOW + 1)
    };
    let c0 = client("c0", NOW + 1);
    store.create_client(&c2).await.unwrap();
    bumped(store.epoch("clients").await.unwrap(), "create");
    store.create_client(&c0).await.unwrap();
    bumped(store.epoch("clients").await.unwrap(), "create");
    let ids: Vec<String> = store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["c1", "c0", "c2"]);
    assert_eq!(store.client("c2").await.unwrap(), Some(c2.clone()));

    // Update replaces the registration.
    let c1b = Client {
        name: "Renamed".to_owned(),
        secret_hash: None,
        redirect_uris: vec!["https://new.example/cb".to_owned()],
        post_logout_redirect_uris: vec!["https://new.example/bye".to_owned()],
        scopes: vec![],
        jwks: Some(r#"{"keys":[]}"#.to_owned()),
        jwks_uri: None,
        refresh_token_lifetime: Some(86_400),
        backchannel_logout_uri: Some("https://new.example/bcl".to_owned()),
        token_endpoint_auth_method: "client_secret_jwt".to_owned(),
        // Arbitrary bytes, including non-UTF-8 ones, round-trip exactly.
        client_secret_sealed: Some(vec![1, 0, 255, 128, 7, 0xfe]),
        token_endpoint_auth_signing_alg: Some("HS512".to_owned()),
        registration_policy: Some(RegistrationPolicy {
            grant_types: vec!["client_credentials".to_owned()],
            scopes: vec!["api:read".to_owned()],
        }),
        // The flag round-trips (stored false for every earlier client).
        legacy_assertion_audience: true,
        updated_at: NOW + 100,
        ..c1.clone()
    };
    store.update_client(&c1b).await.unwrap();
    bumped(store.epoch("clients").await.unwrap(), "update");
    assert_eq!(store.client("c1").await.unwrap(), Some(c1b.clone()));
    assert_eq!(
        store.client("c0").await.unwrap(),
        Some(c0.clone()),
        "update touched only c1"
    );

    // Updating an unknown client is NotFound, and changes nothing.
    let before = store.epoch("clients").await.unwrap();
    let err = store
        .update_client(&client("ghost", NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.epoch("clients").await.unwrap(), before);
    assert_eq!(store.client("ghost").await.unwrap(), None);

    // Delete: true once, false after.
    assert!(store.delete_client("c1").await.unwrap());
    bumped(store.epoch("clients").await.unwrap(), "delete");
    assert!(!store.delete_client("c1").await.unwrap());
    assert_eq!(store.client("c1").await.unwrap(), None);
    let ids: Vec<String> = store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["c0", "c2"]);
}

async fn resources(store: Store) {
    let e0 = store.epoch("resources").await.unwrap();
    assert!(store.list_resources().await.unwrap().is_empty());
    let b = resource("https://b.api.example");
    let a = ResourceServer {
        token_format: "opaque".to_owned(),
        access_token_lifetime: None,
        scopes: vec![],
        clients: vec![],
        ..resource("https://a.api.example")
    };
    store.create_resource(&b).await.unwrap();
    let e1 = store.epoch("resources").await.unwrap();
    assert!(e1 > e0);
    store.create_resource(&a).await.unwrap();
    let e2 = store.epoch("resources").await.unwrap();
    assert!(e2 > e1);

    // Ordered by audience, every field round-trips.
    assert_eq!(
        store.list_resources().await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    let err = store
        .create_resource(&resource("https://b.api.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.epoch("resources").await.unwrap(),
        e2,
        "a failed create changes nothing"
    );

    assert!(store
        .delete_resource("https://b.api.example")
        .await
        .unwrap());
    assert!(store.epoch("resources").await.unwrap() > e2);
    assert!(!store
        .delete_resource("https://b.api.example")
        .await
        .unwrap());
    assert_eq!(store.list_resources().await.unwrap(), vec![a]);
    // The clients and keys epochs are separate counters.
    assert_eq!(store.epoch("clients").await.unwrap(), 0);
    assert_eq!(store.epoch("keys").await.unwrap(), 0);
}

async fn keys_lifecycle(store: Store) {
    let e0 = store.epoch("keys").await.unwrap();

    // ensure_keys fills both roles once.
    let inserted = store
        .ensure_keys(
            "sig",
            "RS256",
            key("k1", "sig", "RS256"),
            key("k2", "sig", "RS256"),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(inserted, ["k1", "k2"]);
    let e1 = store.epoch("keys").await.unwrap();
    assert!(e1 > e0);
    let k1 = key_state(&store, "k1").await.unwrap();
    assert_eq!(k1.state, KeyState::Active);
    assert_eq!(k1.activated_at, Some(NOW));
    assert_eq!(
        k1.sealed_private_key,
        key("k1", "sig", "RS256").sealed_private_key,
        "bytes round-trip"
    );
    assert_eq!(k1.public_jwk, "{}");
    let k2 = key_state(&store, "k2").await.unwrap();
    assert_eq!(k2.state, KeyState::Next);
    assert_eq!(k2.activated_at, None);

    // Second call: nothing to do, nothing inserted, nothing changed.
    let inserted = store
        .ensure_keys(
            "sig",
            "RS256",
            key("k3", "sig", "RS256"),
            key("k4", "sig", "RS256"),
            NOW,
        )
        .await
        .unwrap();
    assert!(inserted.is_empty(), "{inserted:?}");
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
    assert_eq!(store.epoch("keys").await.unwrap(), e1);

    // Another (use, alg) is independent.
    let inserted = store
        .ensure_keys(
            "enc",
            "RSA-OAEP-256",
            key("e1", "enc", "RSA-OAEP-256"),
            key("e2", "enc", "RSA-OAEP-256"),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(inserted, ["e1", "e2"]);
    let e2 = store.epoch("keys").await.unwrap();
    assert!(e2 > e1);

    // Revoking the next key refills the reserve.
    let revoked = store
        .revoke_key("e2", key("e3", "enc", "RSA-OAEP-256"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(revoked.next.as_deref(), Some("e3"));

    // Rotation: next -> active, active -> retired, new next inserted.
    let e3 = store.epoch("keys").await.unwrap();
    let rot = store
        .rotate_keys(
            "sig",
            "RS256",
            Some("k2"),
            key("k3", "sig", "RS256"),
            NOW + 100,
        )
        .await
        .unwrap();
    assert_eq!(
        rot,
        Some(Rotation {
            activated: "k2".to_owned(),
            retired: Some("k1".to_owned()),
            next: "k3".to_owned()
        })
    );
    let e4 = store.epoch("keys").await.unwrap();
    assert!(e4 > e3);
    let k1 = key_state(&store, "k1").await.unwrap();
    assert_eq!(
        (k1.state, k1.retired_at),
        (KeyState::Retired, Some(NOW + 100))
    );
    let k2 = key_state(&store, "k2").await.unwrap();
    assert_eq!(
        (k2.state, k2.activated_at),
        (KeyState::Active, Some(NOW + 100))
    );
    assert_eq!(key_state(&store, "k3").await.unwrap().state, KeyState::Next);
    // The enc keys were not touched.
    assert_eq!(
        kids_in(&store, "enc", "RSA-OAEP-256", KeyState::Active).await,
        ["e1"]
    );

    // A stale expected_next (another instance already rotated) does nothing.
    let rot = store
        .rotate_keys(
            "sig",
            "RS256",
            Some("k2"),
            key("k4", "sig", "RS256"),
            NOW + 200,
        )
        .await
        .unwrap();
    assert_eq!(rot, None);
    assert_eq!(key_state(&store, "k4").await, None);
    assert_eq!(store.epoch("keys").await.unwrap(), e4);
    assert_eq!(
        kids_in(&store, "sig", "RS256", KeyState::Active).await,
        ["k2"]
    );

    // Rotating a (use, alg) without keys does nothing.
    let rot = store
        .rotate_keys("sig", "ES256", None, key("x1", "sig", "ES256"), NOW)
        .await
        .unwrap();
    assert_eq!(rot, None);
    assert_eq!(key_state(&store, "x1").await, None);

    // Unconditional rotation.
    let rot = store
        .rotate_keys("sig", "RS256", None, key("k4", "sig", "RS256"), NOW + 300)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            rot.activated.as_str(),
            rot.retired.as_deref(),
            rot.next.as_str()
        ),
        ("k3", Some("k2"), "k4")
    );
    assert_eq!(
        kids_in(&store, "sig", "RS256", KeyState::Retired).await,
        ["k1", "k2"]
    );

    // Pruning removes retired keys retired before the cutoff, and only those.
    let e5 = store.epoch("keys").await.unwrap();
    assert_eq!(
        store.prune_retired_keys(NOW + 100).await.unwrap(),
        0,
        "cutoff is exclusive"
    );
    assert_eq!(store.prune_retired_keys(NOW + 101).await.unwrap(), 1);
    assert_eq!(key_state(&store, "k1").await, None);
    let e6 = store.epoch("keys").await.unwrap();
    assert!(e6 > e5);
    assert_eq!(store.prune_retired_keys(NOW + 101).await.unwrap(), 0);
    assert_eq!(store.prune_retired_keys(NOW + 10_000).await.unwrap(), 1);
    assert_eq!(key_state(&store, "k2").await, None);
    assert!(store.epoch("keys").await.unwrap() > e6);
    // Active, next and revoked keys survive any cutoff.
    assert_eq!(store.prune_retired_keys(i64::MAX).await.unwrap(), 0);
    let mut kids: Vec<String> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    kids.sort();
    assert_eq!(kids, ["e1", "e2", "e3", "k3", "k4"]);
}

async fn keys_revocation(store: Store) {
    store
        .ensure_keys(
            "sig",
            "ES256",
            key("a1", "sig", "ES256"),
            key("n1", "sig", "ES256"),
            NOW,
        )
        .await
        .unwrap();
    let e0 = store.epoch("keys").await.unwrap();

    // Revoking the active key promotes the next one and refills the reserve.
    let rev = store
        .revoke_key("a1", key("n2", "sig", "ES256"), NOW + 10)
        .await
        .unwrap();
    assert_eq!(
        rev,
        KeyRevocation {
            kid: "a1".to_owned(),
            was: KeyState::Active,
            activated: Some("n1".to_owned()),
            next: Some("n2".to_owned()),
        }
    );
    let e1 = store.epoch("keys").await.unwrap();
    assert!(e1 > e0);
    let a1 = key_state(&store, "a1").await.unwrap();
    assert_eq!(
        (a1.state, a1.revoked_at),
        (KeyState::Revoked, Some(NOW + 10))
    );
    let n1 = key_state(&store, "n1").await.unwrap();
    assert_eq!(
        (n1.state, n1.activated_at),
        (KeyState::Active, Some(NOW + 10))
    );
    assert_eq!(
        kids_in(&store, "sig", "ES256", KeyState::Next).await,
        ["n2"]
    );

    // Revoking the next key replaces it; the active key stays.
    let rev = store
        .revoke_key("n2", key("n3", "sig", "ES256"), NOW + 20)
        .await
        .unwrap();
    assert_eq!(
        rev,
        KeyRevocation {
            kid: "n2".to_owned(),
            was: KeyState::Next,
            activated: None,
            next: Some("n3".to_owned())
        }
    );
    assert_eq!(
        kids_in(&store, "sig", "ES256", KeyState::Active).await,
        ["n1"]
    );
    assert_eq!(
        kids_in(&store, "sig", "ES256", KeyState::Next).await,
        ["n3"]
    );

    // Revoking a retired key needs no replacement.
    store
        .rotate_keys(
            "sig",
            "ES256",
            Some("n3"),
            key("n4", "sig", "ES256"),
            NOW + 30,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        key_state(&store, "n1").await.unwrap().state,
        KeyState::Retired
    );
    let rev = store
        .revoke_key("n1", key("unused", "sig", "ES256"), NOW + 40)
        .await
        .unwrap();
    assert_eq!(
        rev,
        KeyRevocation {
            kid: "n1".to_owned(),
            was: KeyState::Retired,
            activated: None,
            next: None
        }
    );
    assert_eq!(key_state(&store, "unused").await, None);

    // Unknown and already revoked kids are NotFound, and change nothing.
    let before = store.list_keys().await.unwrap();
    let e2 = store.epoch("keys").await.unwrap();
    let err = store
        .revoke_key("no-such-kid", key("r1", "sig", "ES256"), NOW + 50)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .revoke_key("a1", key("r2", "sig", "ES256"), NOW + 50)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.list_keys().await.unwrap(), before);
    assert_eq!(store.epoch("keys").await.unwrap(), e2);

    // The store is still writable after those aborted transactions.
    let rev = store
        .revoke_key("n3", key("n5", "sig", "ES256"), NOW + 60)
        .await
        .unwrap();
    assert_eq!(rev.activated.as_deref(), Some("n4"));
    assert_eq!(rev.next.as_deref(), Some("n5"));
    assert!(store.epoch("keys").await.unwrap() > e2);

    // Revoked keys are listed with their state and are never pruned.
    assert_eq!(store.prune_retired_keys(i64::MAX).await.unwrap(), 0);
    let mut revoked = kids_in(&store, "sig", "ES256", KeyState::Revoked).await;
    revoked.sort();
    assert_eq!(revoked, ["a1", "n1", "n2", "n3"]);
}

async fn keys_concurrent_rotation(store: Store) {
    store
        .ensure_keys(
            "sig",
            "PS256",
            key("act", "sig", "PS256"),
            key("nxt", "sig", "PS256"),
            NOW,
        )
        .await
        .unwrap();
    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .rotate_keys(
                    "sig",
                    "PS256",
                    Some("nxt"),
                    key(&format!("new-{i}"), "sig", "PS256"),
                    NOW + 1,
                )
                .await
        }));
    }
    let mut rotations = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(Some(r)) => rotations.push(r),
            Ok(None) => {}
            Err(e) => panic!("concurrent rotate_keys failed: {e:?}"),
        }
    }
    assert_eq!(rotations.len(), 1, "exactly one rotation: {rotations:?}");
    let rot = &rotations[0];
    assert_eq!(rot.activated, "nxt");
    assert_eq!(rot.retired.as_deref(), Some("act"));
    assert_eq!(
        kids_in(&store, "sig", "PS256", KeyState::Active).await,
        ["nxt"]
    );
    assert_eq!(
        kids_in(&store, "sig", "PS256", KeyState::Next).await,
        vec![rot.next.clone()]
    );
    assert_eq!(
        kids_in(&store, "sig", "PS256", KeyState::Retired).await,
        ["act"]
    );
    assert_eq!(
        store.list_keys().await.unwrap().len(),
        3,
        "the losers inserted nothing"
    );
}

async fn keys_concurrent_ensure(store: Store) {
    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .ensure_keys(
                    "enc",
                    "ECDH-ES",
                    key(&format!("a-{i}"), "enc", "ECDH-ES"),
                    key(&format!("n-{i}"), "enc", "ECDH-ES"),
                    NOW,
                )
                .await
        }));
    }
    let mut inserted = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(kids) if kids.is_empty() => {}
            Ok(kids) => inserted.push(kids),
            Err(e) => panic!("concurrent ensure_keys failed: {e:?}"),
        }
    }
    assert_eq!(
        inserted.len(),
        1,
        "exactly one caller inserts: {inserted:?}"
    );
    let kids = &inserted[0];
    assert_eq!(kids.len(), 2);
    assert_eq!(
        kids_in(&store, "enc", "ECDH-ES", KeyState::Active).await,
        vec![kids[0].clone()]
    );
    assert_eq!(
        kids_in(&store, "enc", "ECDH-ES", KeyState::Next).await,
        vec![kids[1].clone()]
    );
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
}

async fn sessions(store: Store) {
    let s1 = session("h1", "sid1", "u1", NOW, NOW + 3600);
    let s2 = session("h2", "sid2", "u1", NOW + 10, NOW + 3600);
    let s3 = Session {
        amr: vec![],
        acr: None,
        ..session("h3", "sid3", "u2", NOW, NOW + 3600)
    };
    for s in [&s1, &s2, &s3] {
        store.create_session(s).await.unwrap();
    }
    // A session id hash and a sid are unique.
    let err = store
        .create_session(&session("h1", "sid9", "u1", NOW, NOW + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .create_session(&session("h9", "sid1", "u1", NOW, NOW + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    assert_eq!(
        store.live_session("h1", NOW + 60, 600).await.unwrap(),
        Some(s1.clone())
    );
    assert_eq!(
        store.live_session("h3", NOW + 60, 600).await.unwrap(),
        Some(s3.clone())
    );
    assert_eq!(store.live_session("nope", NOW, 600).await.unwrap(), None);

    // Absolute expiry wins over activity.
    assert!(store
        .live_session("h1", NOW + 3599, 100_000)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.live_session("h1", NOW + 3600, 100_000).await.unwrap(),
        None
    );
    // Idle timeout.
    assert!(store
        .live_session("h1", NOW + 599, 600)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.live_session("h1", NOW + 600, 600).await.unwrap(),
        None
    );

    // Touching slides the idle window (and only for that session).
    store.touch_session("h1", NOW + 500).await.unwrap();
    let live = store
        .live_session("h1", NOW + 900, 600)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.last_seen_at, NOW + 500);
    assert_eq!(live.created_at, NOW);
    assert_eq!(
        store.live_session("h3", NOW + 900, 600).await.unwrap(),
        None
    );
    store.touch_session("nope", NOW + 500).await.unwrap();

    // Newest first.
    let of_u1: Vec<String> = store
        .sessions_of_user("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id_hash)
        .collect();
    assert_eq!(of_u1, ["h2", "h1"]);
    assert!(store.sessions_of_user("nobody").await.unwrap().is_empty());

    // Delete returns what it deleted, once.
    assert_eq!(store.delete_session("h2").await.unwrap(), Some(s2.clone()));
    assert_eq!(store.delete_session("h2").await.unwrap(), None);
    assert_eq!(store.live_session("h2", NOW + 20, 600).await.unwrap(), None);

    // Deleting all of a user's sessions leaves others alone.
    store
        .create_session(&session("h4", "sid4", "u1", NOW + 20, NOW + 3600))
        .await
        .unwrap();
    assert_eq!(store.delete_sessions_of_user("u1").await.unwrap(), 2);
    assert!(store.sessions_of_user("u1").await.unwrap().is_empty());
    assert_eq!(store.delete_sessions_of_user("u1").await.unwrap(), 0);
    assert_eq!(store.sessions_of_user("u2").await.unwrap(), vec![s3]);
}

async fn sessions_prune(store: Store) {
    let idle = 600;
    let now = NOW + 1000;
    // Past its absolute expiry, though recently seen.
    let expired = Session {
        last_seen_at: now - 1,
        ..session("expired", "s-expired", "u", NOW, now)
    };
    // Idle for exactly the timeout.
    let idle_out = Session {
        last_seen_at: now - idle,
        ..session("idle", "s-idle", "u", NOW, NOW + 10_000)
    };
    // Live: seen just within the window, expiring later.
    let live = Session {
        last_seen_at: now - idle + 1,
        ..session("live", "s-live", "u", NOW, now + 1)
    };
    for s in [&expired, &idle_out, &live] {
        store.create_session(s).await.unwrap();
    }
    // What prune removes is exactly what live_session no longer returns.
    assert_eq!(
        store.live_session("expired", now, idle).await.unwrap(),
        None
    );
    assert_eq!(store.live_session("idle", now, idle).await.unwrap(), None);
    assert_eq!(
        store.live_session("live", now, idle).await.unwrap(),
        Some(live.clone())
    );
    assert_eq!(store.prune_sessions(now, idle).await.unwrap(), 2);
    assert_eq!(store.prune_sessions(now, idle).await.unwrap(), 0);
    assert_eq!(store.sessions_of_user("u").await.unwrap(), vec![live]);
}

async fn codes(store: Store) {
    let c = code("ch1", "fam1", NOW + 60);
    store.create_code(&c).await.unwrap();
    let err = store.create_code(&c).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // First redemption returns the code, every field intact.
    assert_eq!(
        store
            .redeem_code("ch1", NOW + 1, "jti-1", NOW + 301, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(c.clone())
    );
    // A second one is a replay, carrying what the first recorded.
    let replay = CodeRedemption::Replayed {
        family_id: "fam1".to_owned(),
        access_token_jti: Some("jti-1".to_owned()),
        access_token_expires_at: Some(NOW + 301),
    };
    assert_eq!(
        store
            .redeem_code("ch1", NOW + 2, "jti-2", NOW + 302, &GrantWrites::default())
            .await
            .unwrap(),
        replay
    );
    assert_eq!(
        store
            .redeem_code("ch1", NOW + 3, "jti-3", NOW + 303, &GrantWrites::default())
            .await
            .unwrap(),
        replay
    );

    // An expired code is invalid (the expiry instant itself included), and stays so.
    let c2 = AuthCode {
        nonce: None,
        code_challenge: None,
        resource: None,
        sid: None,
        amr: vec![],
        ..code("ch2", "fam2", NOW + 60)
    };
    store.create_code(&c2).await.unwrap();
    assert_eq!(
        store
            .redeem_code("ch2", NOW + 60, "jti-x", NOW + 360, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .redeem_code("ch2", NOW + 61, "jti-y", NOW + 361, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );

    // A fresh code with the optional fields empty round-trips too.
    let c3 = AuthCode {
        expires_at: NOW + 600,
        ..c2.clone()
    };
    let c3 = AuthCode {
        code_hash: "ch3".to_owned(),
        ..c3
    };
    store.create_code(&c3).await.unwrap();
    assert_eq!(
        store
            .redeem_code("ch3", NOW + 59, "jti-3", NOW + 359, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(c3)
    );

    // Unknown.
    assert_eq!(
        store
            .redeem_code("nope", NOW, "jti-z", NOW + 300, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );

    // Pruning drops codes that expired before the cutoff; a pruned code is unknown.
    assert_eq!(
        store.prune_codes(NOW + 60).await.unwrap(),
        0,
        "cutoff is exclusive"
    );
    assert_eq!(store.prune_codes(NOW + 61).await.unwrap(), 2);
    assert_eq!(
        store
            .redeem_code("ch1", NOW + 62, "jti-4", NOW + 362, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert!(matches!(
        store
            .redeem_code("ch3", NOW + 62, "jti-5", NOW + 362, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Replayed { .. }
    ));
}

async fn codes_concurrent_redeem(store: Store) {
    store
        .create_code(&code("hot", "fam-hot", NOW + 60))
        .await
        .unwrap();
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (
                i,
                store
                    .redeem_code(
                        "hot",
                        NOW + 1,
                        &format!("jti-{i}"),
                        NOW + 301,
                        &GrantWrites::default(),
                    )
                    .await,
            )
        }));
    }
    let mut winners = Vec::new();
    let mut replays = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (i, Ok(CodeRedemption::Redeemed(c))) => {
                assert_eq!(c.code_hash, "hot");
                winners.push(i);
            }
            (
                _,
                Ok(CodeRedemption::Replayed {
                    family_id,
                    access_token_jti,
                    ..
                }),
            ) => {
                assert_eq!(family_id, "fam-hot");
                replays.push(access_token_jti);
            }
            (i, Ok(CodeRedemption::Invalid)) => panic!("task {i}: Invalid for a live code"),
            (i, Err(e)) => panic!("task {i}: concurrent redeem_code failed: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption: {winners:?}");
    assert_eq!(replays.len(), N - 1);
    let jti = format!("jti-{}", winners[0]);
    assert!(
        replays.iter().all(|j| j.as_deref() == Some(jti.as_str())),
        "every replay names the winner's jti {jti}"
    );
}

async fn consents(store: Store) {
    assert!(store.consented_scopes("u1", "c1").await.unwrap().is_empty());
    let first = vec![
        "openid".to_owned(),
        "profile".to_owned(),
        "api:read".to_owned(),
    ];
    store.save_consent("u1", "c1", &first, NOW).await.unwrap();
    assert_eq!(store.consented_scopes("u1", "c1").await.unwrap(), first);
    // Scoped to the (user, client) pair.
    assert!(store.consented_scopes("u1", "c2").await.unwrap().is_empty());
    assert!(store.consented_scopes("u2", "c1").await.unwrap().is_empty());

    // Saving again replaces, not merges.
    let second = vec!["openid".to_owned(), "email".to_owned()];
    store
        .save_consent("u1", "c1", &second, NOW + 10)
        .await
        .unwrap();
    assert_eq!(store.consented_scopes("u1", "c1").await.unwrap(), second);
    store.save_consent("u2", "c1", &[], NOW).await.unwrap();
    assert!(store.consented_scopes("u2", "c1").await.unwrap().is_empty());
    assert_eq!(store.consented_scopes("u1", "c1").await.unwrap(), second);
}

async fn refresh_rotation_and_reuse(store: Store) {
    let window = 30;
    let grace = RetryWindow::Seconds(window);
    let r0 = refresh("r0", "famA", "user-1", NOW + 10_000);
    store.create_refresh_token(&r0).await.unwrap();
    assert_eq!(store.refresh_token("r0").await.unwrap(), Some(r0.clone()));
    let err = store.create_refresh_token(&r0).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // First use rotates.
    let RefreshUse::Rotated(r1) = store
        .use_refresh_token("r0", "r1", NOW + 10, grace, successor("r1", NOW + 10), None)
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    assert_eq!(r1.token_hash, "r1");
    assert_eq!(r1.family_id, "famA");
    assert_eq!(r1.used_at, None);
    assert_eq!(store.refresh_token("r1").await.unwrap(), Some(r1.clone()));
    let old = store.refresh_token("r0").await.unwrap().unwrap();
    assert_eq!(old.used_at, Some(NOW + 10));
    assert_eq!(old.successor_hash.as_deref(), Some("r1"));
    assert_eq!(old.revoked_at, None);

    // The old token again, within grace, successor unused: a retry with the same successor.
    let again = store
        .use_refresh_token(
            "r0",
            "r1-bis",
            NOW + 20,
            grace,
            successor("r1-bis", NOW + 20),
            None,
        )
        .await
        .unwrap();
    assert_eq!(again, RefreshUse::Retry(r1.clone()));
    assert_eq!(
        store.refresh_token("r1-bis").await.unwrap(),
        None,
        "a retry stores nothing"
    );
    let at_edge = store
        .use_refresh_token(
            "r0",
            "r1-ter",
            NOW + 10 + window,
            grace,
            successor("r1-ter", NOW + 40),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        at_edge,
        RefreshUse::Retry(r1.clone()),
        "the grace window includes its end"
    );

    // The successor is used ...
    let RefreshUse::Rotated(r2) = store
        .use_refresh_token("r1", "r2", NOW + 25, grace, successor("r2", NOW + 25), None)
        .await
        .unwrap()
    else {
        panic!("successor's first use must rotate");
    };
    assert_eq!(r2.family_id, "famA");
    // ... so the old token coming back is reuse, even within grace: the family dies.
    let reuse = store
        .use_refresh_token(
            "r0",
            "r1-x",
            NOW + 26,
            grace,
            successor("r1-x", NOW + 26),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        reuse,
        RefreshUse::Reused {
            family_id: "famA".to_owned()
        }
    );
    for h in ["r0", "r1", "r2"] {
        let t = store.refresh_token(h).await.unwrap().unwrap();
        assert_eq!(t.revoked_at, Some(NOW + 26), "{h} revoked with its family");
    }
    assert_eq!(store.refresh_token("r1-x").await.unwrap(), None);
    // Every member is now invalid, including the latest, unused one.
    for (h, s) in [("r1", "r2-x"), ("r2", "r3"), ("r0", "r1-y")] {
        assert_eq!(
            store
                .use_refresh_token(h, s, NOW + 27, grace, successor(s, NOW + 27), None)
                .await
                .unwrap(),
            RefreshUse::Invalid(RefreshRefusal::Revoked),
            "{h}"
        );
    }
    assert_eq!(
        store
            .use_refresh_token("unknown", "s", NOW, grace, successor("s", NOW), None)
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Unknown)
    );
}

async fn refresh_grace_expiry_revocation(store: Store) {
    let window = 30;
    let grace = RetryWindow::Seconds(window);
    // Outside the grace window: reuse, the family is revoked.
    store
        .create_refresh_token(&refresh("b0", "famB", "user-1", NOW + 10_000))
        .await
        .unwrap();
    let RefreshUse::Rotated(_) = store
        .use_refresh_token("b0", "b1", NOW, grace, successor("b1", NOW), None)
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    assert_eq!(
        store
            .use_refresh_token(
                "b0",
                "b1-x",
                NOW + window + 1,
                grace,
                successor("b1-x", NOW + window + 1),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Reused {
            family_id: "famB".to_owned()
        }
    );
    assert_eq!(
        store
            .use_refresh_token(
                "b1",
                "b2",
                NOW + window + 2,
                grace,
                successor("b2", NOW + window + 2),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Revoked),
        "the successor died with its family"
    );

    // Expired: invalid, and nothing is written.
    let c0 = refresh("c0", "famC", "user-1", NOW + 100);
    store.create_refresh_token(&c0).await.unwrap();
    assert_eq!(
        store
            .use_refresh_token(
                "c0",
                "c1",
                NOW + 100,
                grace,
                successor("c1", NOW + 100),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Expired)
    );
    assert_eq!(store.refresh_token("c0").await.unwrap(), Some(c0.clone()));
    assert_eq!(store.refresh_token("c1").await.unwrap(), None);

    // Revoked by family: invalid.
    store
        .create_refresh_token(&refresh("d0", "famD", "user-1", NOW + 10_000))
        .await
        .unwrap();
    assert_eq!(
        store.revoke_refresh_family("famD", NOW + 5).await.unwrap(),
        1
    );
    assert_eq!(
        store.revoke_refresh_family("famD", NOW + 6).await.unwrap(),
        0,
        "already revoked"
    );
    assert_eq!(
        store.refresh_token("d0").await.unwrap().unwrap().revoked_at,
        Some(NOW + 5)
    );
    assert_eq!(
        store
            .use_refresh_token("d0", "d1", NOW + 10, grace, successor("d1", NOW + 10), None)
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Revoked)
    );

    // Revoked by user: only that user's tokens.
    store
        .create_refresh_token(&refresh("e0", "famE", "user-2", NOW + 10_000))
        .await
        .unwrap();
    store
        .create_refresh_token(&refresh("f0", "famF", "user-3", NOW + 10_000))
        .await
        .unwrap();
    assert_eq!(
        store
            .revoke_refresh_tokens_of_user("user-2", NOW + 7)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .use_refresh_token("e0", "e1", NOW + 10, grace, successor("e1", NOW + 10), None)
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Revoked)
    );
    assert!(matches!(
        store
            .use_refresh_token("f0", "f1", NOW + 10, grace, successor("f1", NOW + 10), None)
            .await
            .unwrap(),
        RefreshUse::Rotated(_)
    ));

    // Pruning by expiry (cutoff exclusive).
    assert_eq!(store.prune_refresh_tokens(NOW + 100).await.unwrap(), 0);
    assert_eq!(store.prune_refresh_tokens(NOW + 101).await.unwrap(), 1);
    assert_eq!(store.refresh_token("c0").await.unwrap(), None);
    assert!(store.refresh_token("b0").await.unwrap().is_some());
}

async fn refresh_concurrent_use(store: Store) {
    let grace = RetryWindow::Seconds(30);
    store
        .create_refresh_token(&refresh("hot", "famH", "user-1", NOW + 10_000))
        .await
        .unwrap();
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let succ = format!("succ-{i}");
            barrier.wait().await;
            (
                i,
                store
                    .use_refresh_token(
                        "hot",
                        &succ,
                        NOW + 1,
                        grace,
                        successor(&succ, NOW + 1),
                        None,
                    )
                    .await,
            )
        }));
    }
    let mut rotated = Vec::new();
    let mut retries = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (_, Ok(RefreshUse::Rotated(s))) => rotated.push(s),
            (_, Ok(RefreshUse::Retry(s))) => retries.push(s),
            (i, Ok(other)) => panic!("task {i}: unexpected outcome {other:?}"),
            (i, Err(e)) => panic!("task {i}: concurrent use_refresh_token failed: {e:?}"),
        }
    }
    assert_eq!(rotated.len(), 1, "exactly one rotation");
    assert_eq!(retries.len(), N - 1);
    let winner = &rotated[0];
    assert!(
        retries.iter().all(|s| s == winner),
        "every retry hands out the winner's successor"
    );
    let hot = store.refresh_token("hot").await.unwrap().unwrap();
    assert_eq!(
        hot.successor_hash.as_deref(),
        Some(winner.token_hash.as_str())
    );
    assert_eq!(hot.revoked_at, None);
    for i in 0..N {
        let h = format!("succ-{i}");
        assert_eq!(
            store.refresh_token(&h).await.unwrap().is_some(),
            h == winner.token_hash,
            "{h}"
        );
    }
}

async fn revocation_list(store: Store) {
    assert!(!store.is_jti_revoked("j1").await.unwrap());
    store.revoke_jti("j1", NOW + 100, NOW).await.unwrap();
    // Idempotent: revoking again (even with another expiry) is fine and keeps the entry.
    store.revoke_jti("j1", NOW + 100, NOW + 1).await.unwrap();
    store.revoke_jti("j1", NOW + 50, NOW + 2).await.unwrap();
    store.revoke_jti("j2", NOW + 200, NOW).await.unwrap();
    assert!(store.is_jti_revoked("j1").await.unwrap());
    assert!(store.is_jti_revoked("j2").await.unwrap());
    assert!(!store.is_jti_revoked("j3").await.unwrap());

    // Entries go once their tokens would have expired (strictly before `now`).
    assert_eq!(store.prune_revoked(NOW + 100).await.unwrap(), 0);
    assert_eq!(store.prune_revoked(NOW + 101).await.unwrap(), 1);
    assert!(!store.is_jti_revoked("j1").await.unwrap());
    assert!(store.is_jti_revoked("j2").await.unwrap());
    assert_eq!(store.prune_revoked(NOW + 101).await.unwrap(), 0);
}

async fn registration_tokens(store: Store) {
    // Limited uses.
    store
        .create_registration_token("two", None, Some(2), NOW)
        .await
        .unwrap();
    assert!(store.spend_registration_token("two", NOW).await.unwrap());
    assert!(store.spend_registration_token("two", NOW).await.unwrap());
    assert!(!store.spend_registration_token("two", NOW).await.unwrap());
    assert!(!store.spend_registration_token("two", NOW).await.unwrap());

    // Unlimited.
    store
        .create_registration_token("unlimited", None, None, NOW)
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(store
            .spend_registration_token("unlimited", NOW)
            .await
            .unwrap());
    }

    // Expiring: usable before, not at or after its expiry.
    store
        .create_registration_token("expiring", Some(NOW + 10), None, NOW)
        .await
        .unwrap();
    assert!(store
        .spend_registration_token("expiring", NOW + 9)
        .await
        .unwrap());
    assert!(!store
        .spend_registration_token("expiring", NOW + 10)
        .await
        .unwrap());
    store
        .create_registration_token("expiring-limited", Some(NOW + 10), Some(5), NOW)
        .await
        .unwrap();
    assert!(!store
        .spend_registration_token("expiring-limited", NOW + 11)
        .await
        .unwrap());
    assert!(store
        .spend_registration_token("expiring-limited", NOW + 1)
        .await
        .unwrap());

    // Zero uses, unknown, duplicate.
    store
        .create_registration_token("zero", None, Some(0), NOW)
        .await
        .unwrap();
    assert!(!store.spend_registration_token("zero", NOW).await.unwrap());
    assert!(!store
        .spend_registration_token("unknown", NOW)
        .await
        .unwrap());
    let err = store
        .create_registration_token("two", None, Some(2), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // Concurrent spenders never overspend.
    store
        .create_registration_token("five", None, Some(5), NOW)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.spend_registration_token("five", NOW).await
        }));
    }
    let mut spent = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            spent += 1;
        }
    }
    assert_eq!(spent, 5);
}

async fn registration_token_policy(store: Store) {
    // No policy stored: the default one (code flow, OIDC scopes only).
    store
        .create_registration_token("plain", None, None, NOW)
        .await
        .unwrap();
    assert_eq!(
        store.registration_token_policy("plain").await.unwrap(),
        Some(RegistrationPolicy::default())
    );
    assert_eq!(
        RegistrationPolicy::default().grant_types,
        ["authorization_code", "refresh_token"]
    );
    assert!(RegistrationPolicy::default().scopes.is_empty());

    // A stored policy round-trips, and stays readable once used up.
    let policy = RegistrationPolicy {
        grant_types: vec!["client_credentials".to_owned()],
        scopes: vec!["orders:read".to_owned(), "orders:write".to_owned()],
    };
    store
        .create_registration_token_with_policy("once", None, Some(1), Some(&policy), NOW)
        .await
        .unwrap();
    assert!(store.spend_registration_token("once", NOW).await.unwrap());
    assert!(!store.spend_registration_token("once", NOW).await.unwrap());
    assert_eq!(
        store.registration_token_policy("once").await.unwrap(),
        Some(policy)
    );
    assert_eq!(
        store.registration_token_policy("unknown").await.unwrap(),
        None
    );
}

async fn resources_update(store: Store) {
    let a = resource("https://a.api.example");
    store.create_resource(&a).await.unwrap();
    assert_eq!(
        store.resource("https://a.api.example").await.unwrap(),
        Some(a.clone())
    );
    let e1 = store.epoch("resources").await.unwrap();
    let a2 = ResourceServer {
        scopes: vec!["read".to_owned()],
        clients: vec!["c1".to_owned(), "c2".to_owned()],
        token_format: "opaque".to_owned(),
        access_token_lifetime: None,
        ..a.clone()
    };
    store.update_resource(&a2).await.unwrap();
    assert!(
        store.epoch("resources").await.unwrap() > e1,
        "update bumps the epoch"
    );
    assert_eq!(
        store.resource("https://a.api.example").await.unwrap(),
        Some(a2)
    );
    let e2 = store.epoch("resources").await.unwrap();
    let err = store
        .update_resource(&resource("https://ghost.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.epoch("resources").await.unwrap(), e2);
    assert_eq!(store.resource("https://ghost.example").await.unwrap(), None);
}

/// Upgrading to API scopes being opt-in: a client whose list was empty
/// ("every API scope" before) gets the API scopes that exist at upgrade; a
/// dynamically registered one also gets a registration policy of what it
/// has; resource servers start with no linked client.
async fn upgrade_keeps_api_scopes(kind: DbKind) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Statement};
    let Some(db) = db::fresh(kind).await else {
        return;
    };
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    // The schema as it was before API scopes became opt-in.
    Migrator::up(&conn, Some(3)).await.unwrap();
    let backend = conn.get_database_backend();
    for sql in [
        "INSERT INTO resource_servers (audience, encryption_jwk, signing_alg, token_format, \
         scopes, created_at) VALUES ('https://a.example', '{}', 'ES256', 'jwe', \
         '[\"a:read\",\"shared\"]', 1)",
        "INSERT INTO resource_servers (audience, encryption_jwk, signing_alg, token_format, \
         scopes, created_at) VALUES ('https://b.example', '{}', 'ES256', 'jwe', \
         '[\"b:write\",\"shared\"]', 1)",
        "INSERT INTO clients (id, name, redirect_uris, post_logout_redirect_uris, grant_types, \
         response_types, token_endpoint_auth_method, scopes, id_token_signed_response_alg, \
         created_at, updated_at) VALUES ('all', 'All', '[]', '[]', \
         '[\"client_credentials\"]', '[]', 'client_secret_basic', '[]', 'RS256', 1, 1)",
        "INSERT INTO clients (id, name, redirect_uris, post_logout_redirect_uris, grant_types, \
         response_types, token_endpoint_auth_method, scopes, id_token_signed_response_alg, \
         created_at, updated_at) VALUES ('some', 'Some', '[]', '[]', \
         '[\"client_credentials\"]', '[]', 'client_secret_basic', '[\"a:read\"]', 'RS256', 1, 1)",
        "INSERT INTO clients (id, name, redirect_uris, post_logout_redirect_uris, grant_types, \
         response_types, token_endpoint_auth_method, scopes, id_token_signed_response_alg, \
         registration_token_hash, created_at, updated_at) VALUES ('reg', 'Reg', \
         '[\"https://r.example/cb\"]', '[]', '[\"authorization_code\"]', '[\"code\"]', \
         'client_secret_basic', '[]', 'RS256', 'rat-hash', 1, 1)",
    ] {
        conn.execute(Statement::from_string(backend, sql))
            .await
            .unwrap();
    }
    conn.close().await.unwrap();

    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let every = ["a:read", "b:write", "shared"].map(str::to_owned).to_vec();
    let all = store.client("all").await.unwrap().unwrap();
    assert_eq!(all.scopes, every);
    assert_eq!(all.registration_policy, None);
    let some = store.client("some").await.unwrap().unwrap();
    assert_eq!(some.scopes, ["a:read"], "a chosen list is kept");
    let reg = store.client("reg").await.unwrap().unwrap();
    assert_eq!(reg.scopes, every);
    assert_eq!(
        reg.registration_policy,
        Some(RegistrationPolicy {
            grant_types: vec!["authorization_code".to_owned()],
            scopes: every.clone(),
        })
    );
    for r in store.list_resources().await.unwrap() {
        assert!(r.clients.is_empty());
    }
    store.close().await.unwrap();
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_upgrade_keeps_api_scopes() {
    upgrade_keeps_api_scopes(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_upgrade_keeps_api_scopes() {
    upgrade_keeps_api_scopes(DbKind::Postgres).await;
}

async fn token_status(store: Store) {
    // Concurrent reservations never overlap, and the high-water mark follows.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.reserve_status_block(100).await
        }));
    }
    let mut starts = Vec::new();
    for t in tasks {
        starts.push(t.await.unwrap().unwrap());
    }
    starts.sort_unstable();
    assert_eq!(starts, (0..16).map(|i| i * 100).collect::<Vec<_>>());
    assert_eq!(store.status_high_water().await.unwrap(), 1600);
    // A block starts at a multiple of its size (so a power of two never
    // spans two lists); the indices skipped to get there are never used.
    assert_eq!(store.reserve_status_block(1024).await.unwrap(), 2048);
    assert_eq!(store.reserve_status_block(4096).await.unwrap(), 4096);
    assert_eq!(store.reserve_status_block(1024).await.unwrap(), 8192);
    assert_eq!(store.status_high_water().await.unwrap(), 9216);

    let entry = |idx: i64, subject: &str, family: &str, expires_at: i64| StatusEntry {
        idx,
        list_id: idx / 1000,
        subject: Some(subject.to_owned()),
        family: Some(family.to_owned()),
        expires_at,
    };
    store
        .record_token_status(&entry(1, "alice", "f1", NOW + 900))
        .await
        .unwrap();
    store
        .record_token_status(&entry(2, "alice", "f2", NOW + 900))
        .await
        .unwrap();
    store
        .record_token_status(&entry(3, "bob", "f3", NOW + 900))
        .await
        .unwrap();
    store
        .record_token_status(&entry(4, "alice", "f2", NOW - 1))
        .await
        .unwrap();
    store
        .record_token_status(&entry(1001, "alice", "f1", NOW + 900))
        .await
        .unwrap();
    assert!(store
        .revoked_status_indices(0, NOW)
        .await
        .unwrap()
        .is_empty());

    // The lists that changed come back, each once.
    assert_eq!(
        store.revoke_status_family("f1", NOW).await.unwrap(),
        vec![0, 1]
    );
    assert_eq!(store.revoked_status_indices(0, NOW).await.unwrap(), vec![1]);
    assert_eq!(
        store.revoked_status_indices(1, NOW).await.unwrap(),
        vec![1001]
    );
    // Expired tokens are not touched; already revoked ones do not count:
    // only idx 2 changes (1 and 1001 were revoked with f1, 4 has expired).
    assert_eq!(
        store.revoke_status_subject("alice", NOW).await.unwrap(),
        vec![0]
    );
    assert!(store
        .revoke_status_subject("alice", NOW)
        .await
        .unwrap()
        .is_empty());
    let mut list0 = store.revoked_status_indices(0, NOW).await.unwrap();
    list0.sort_unstable();
    assert_eq!(list0, vec![1, 2]);
    // One token revoked by index, recorded or not; idempotent.
    store.revoke_status_index(3, 0, NOW + 900).await.unwrap();
    store.revoke_status_index(7, 0, NOW + 60).await.unwrap();
    store.revoke_status_index(7, 0, NOW + 60).await.unwrap();
    let mut list0 = store.revoked_status_indices(0, NOW).await.unwrap();
    list0.sort_unstable();
    assert_eq!(list0, vec![1, 2, 3, 7]);
    // Once their tokens have expired, rows go.
    assert_eq!(store.prune_token_status(NOW + 61).await.unwrap(), 2);
    assert_eq!(
        store
            .revoked_status_indices(0, NOW + 61)
            .await
            .unwrap()
            .len(),
        3
    );
}

/// Looking a code up consumes nothing: a live code stays redeemable, a used
/// one is told apart from an expired and an unknown one.
async fn codes_find(store: Store) {
    let c = code("fc1", "ffam1", NOW + 60);
    store.create_code(&c).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            store.find_code("fc1", NOW + 1).await.unwrap(),
            CodeLookup::Live(c.clone())
        );
    }
    assert_eq!(
        store.find_code("fc1", NOW + 60).await.unwrap(),
        CodeLookup::Expired,
        "the expiry instant itself is expired, as for redeem_code"
    );
    assert_eq!(
        store
            .redeem_code("fc1", NOW + 2, "jti-f", NOW + 302, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(c.clone())
    );
    assert_eq!(
        store.find_code("fc1", NOW + 3).await.unwrap(),
        CodeLookup::Used(c.clone())
    );
    assert_eq!(
        store.find_code("fc1", NOW + 61).await.unwrap(),
        CodeLookup::Used(c),
        "a used code stays recognisable as used until it is pruned"
    );
    assert_eq!(
        store.find_code("nope", NOW).await.unwrap(),
        CodeLookup::Unknown
    );
}

/// `require_pkce` round-trips through create, update and list, and is
/// false for a client that never set it.
async fn clients_require_pkce(store: Store) {
    let plain = client("rp-plain", NOW);
    store.create_client(&plain).await.unwrap();
    let strict = Client {
        require_pkce: true,
        ..client("rp-strict", NOW + 1)
    };
    store.create_client(&strict).await.unwrap();
    assert!(
        !store
            .client("rp-plain")
            .await
            .unwrap()
            .unwrap()
            .require_pkce
    );
    assert_eq!(store.client("rp-strict").await.unwrap().unwrap(), strict);
    let relaxed = Client {
        require_pkce: false,
        updated_at: NOW + 2,
        ..strict.clone()
    };
    store.update_client(&relaxed).await.unwrap();
    let made_strict = Client {
        require_pkce: true,
        updated_at: NOW + 2,
        ..plain
    };
    store.update_client(&made_strict).await.unwrap();
    assert_eq!(
        store.list_clients().await.unwrap(),
        vec![made_strict, relaxed]
    );
}

async fn refresh_retry_window(store: Store) {
    // Unlimited: a retry long after the rotation still gets the successor,
    // as long as the successor was never used.
    store
        .create_refresh_token(&refresh("u0", "famU", "user-1", NOW + 100_000))
        .await
        .unwrap();
    let RefreshUse::Rotated(u1) = store
        .use_refresh_token(
            "u0",
            "u1",
            NOW,
            RetryWindow::Unlimited,
            successor("u1", NOW),
            None,
        )
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    let late = NOW + 50_000;
    assert_eq!(
        store
            .use_refresh_token(
                "u0",
                "u1-x",
                late,
                RetryWindow::Unlimited,
                successor("u1-x", late),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Retry(u1.clone())
    );
    // The same late retry with a window is reuse: the family dies.
    store
        .create_refresh_token(&refresh("w0", "famW", "user-1", NOW + 100_000))
        .await
        .unwrap();
    let RefreshUse::Rotated(_) = store
        .use_refresh_token(
            "w0",
            "w1",
            NOW,
            RetryWindow::Seconds(10),
            successor("w1", NOW),
            None,
        )
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    assert_eq!(
        store
            .use_refresh_token(
                "w0",
                "w1-x",
                late,
                RetryWindow::Seconds(10),
                successor("w1-x", late),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Reused {
            family_id: "famW".to_owned()
        }
    );
    // Unlimited ends when the successor is used: then it is reuse.
    let RefreshUse::Rotated(_) = store
        .use_refresh_token(
            "u1",
            "u2",
            late + 1,
            RetryWindow::Unlimited,
            successor("u2", late + 1),
            None,
        )
        .await
        .unwrap()
    else {
        panic!("the successor's first use must rotate");
    };
    assert_eq!(
        store
            .use_refresh_token(
                "u0",
                "u1-y",
                late + 2,
                RetryWindow::Unlimited,
                successor("u1-y", late + 2),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Reused {
            family_id: "famU".to_owned()
        }
    );
    // A successor that has expired is no retry either.
    store
        .create_refresh_token(&refresh("x0", "famX", "user-1", NOW + 100_000))
        .await
        .unwrap();
    let short = |old: &RefreshToken| RefreshToken {
        token_hash: "x1".to_owned(),
        successor_hash: None,
        expires_at: NOW + 5,
        used_at: None,
        revoked_at: None,
        ..old.clone()
    };
    let RefreshUse::Rotated(_) = store
        .use_refresh_token("x0", "x1", NOW, RetryWindow::Unlimited, short, None)
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    assert_eq!(
        store
            .use_refresh_token(
                "x0",
                "x1-x",
                NOW + 5,
                RetryWindow::Unlimited,
                successor("x1-x", NOW + 5),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Reused {
            family_id: "famX".to_owned()
        }
    );
}

fn opaque(hash: &str, client_id: &str, family: Option<&str>) -> OpaqueToken {
    OpaqueToken {
        token_hash: hash.to_owned(),
        jti: format!("jti-{hash}"),
        client_id: client_id.to_owned(),
        user_id: family.map(|_| "user-1".to_owned()),
        scope: "api:read".to_owned(),
        audience: "https://api.example".to_owned(),
        auth_time: family.map(|_| NOW - 5),
        created_at: NOW,
        expires_at: NOW + 300,
        revoked_at: None,
        family_id: family.map(str::to_owned),
    }
}

async fn opaque_token_revocation(store: Store) {
    let tokens = [
        opaque("o1", "client-1", Some("famO")),
        opaque("o2", "client-1", Some("famO")),
        opaque("o3", "client-1", Some("famP")),
        opaque("o4", "client-1", None),
        opaque("o5", "client-2", Some("famQ")),
    ];
    for t in &tokens {
        store.create_opaque_token(t).await.unwrap();
    }
    // The family round-trips.
    assert_eq!(
        store.opaque_token("o1").await.unwrap(),
        Some(tokens[0].clone())
    );
    assert_eq!(
        store.opaque_token("o4").await.unwrap(),
        Some(tokens[3].clone())
    );
    // A grant revokes exactly its tokens, once.
    assert_eq!(
        store.revoke_opaque_family("famO", NOW + 1).await.unwrap(),
        2
    );
    assert_eq!(
        store.revoke_opaque_family("famO", NOW + 2).await.unwrap(),
        0
    );
    for (h, revoked) in [("o1", true), ("o2", true), ("o3", false), ("o4", false)] {
        let t = store.opaque_token(h).await.unwrap().unwrap();
        assert_eq!(t.revoked_at.is_some(), revoked, "{h}");
    }
    // A client: every token it holds, with or without a grant, not others'.
    assert_eq!(
        store
            .revoke_opaque_tokens_of_client("client-1", NOW + 3)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.opaque_token("o1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 1),
        "the first revocation time stays"
    );
    assert_eq!(
        store.opaque_token("o4").await.unwrap().unwrap().revoked_at,
        Some(NOW + 3)
    );
    assert_eq!(
        store.opaque_token("o5").await.unwrap().unwrap().revoked_at,
        None
    );
}

async fn client_grants(store: Store) {
    assert!(store.grants_of_client("client-1").await.unwrap().is_empty());
    for (h, fam) in [("g0", "famA"), ("g1", "famA"), ("g2", "famB")] {
        store
            .create_refresh_token(&refresh(h, fam, "user-1", NOW + 1000))
            .await
            .unwrap();
    }
    store
        .create_refresh_token(&RefreshToken {
            client_id: "client-2".to_owned(),
            ..refresh("g3", "famZ", "user-1", NOW + 1000)
        })
        .await
        .unwrap();
    store
        .create_code(&code("gc1", "famB", NOW + 60))
        .await
        .unwrap();
    store
        .create_code(&code("gc2", "famC", NOW + 60))
        .await
        .unwrap();
    assert_eq!(
        store.grants_of_client("client-1").await.unwrap(),
        vec!["famA".to_owned(), "famB".to_owned(), "famC".to_owned()]
    );
    assert_eq!(
        store
            .revoke_refresh_tokens_of_client("client-1", NOW + 1)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .revoke_refresh_tokens_of_client("client-1", NOW + 2)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.refresh_token("g3").await.unwrap().unwrap().revoked_at,
        None,
        "another client's tokens stay"
    );
}

async fn pending_codes_of_user(store: Store) {
    store
        .create_code(&code("p1", "famP1", NOW + 60))
        .await
        .unwrap();
    store
        .create_code(&code("p2", "famP2", NOW + 60))
        .await
        .unwrap();
    store
        .create_code(&AuthCode {
            user_id: "user-2".to_owned(),
            ..code("p3", "famP3", NOW + 60)
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .redeem_code("p1", NOW + 1, "jti-p1", NOW + 301, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    // Only the unredeemed code of that user goes.
    assert_eq!(
        store.delete_pending_codes_of_user("user-1").await.unwrap(),
        1
    );
    assert_eq!(
        store
            .redeem_code("p2", NOW + 2, "jti-p2", NOW + 302, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    // The redeemed one is still known, so its replay is still caught.
    assert!(matches!(
        store
            .redeem_code("p1", NOW + 3, "jti-x", NOW + 303, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Replayed { .. }
    ));
    assert!(matches!(
        store
            .redeem_code("p3", NOW + 4, "jti-p3", NOW + 304, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
}

/// A code redemption or a refresh rotation writes the tokens it pays for in
/// its own transaction: when one of those writes fails, nothing is spent.
async fn grant_writes_all_or_nothing(store: Store) {
    let o = |h: &str| TokenRecord::Opaque(opaque(h, "client-1", Some("famW")));
    let writes = |rt: &str, ot: &str| GrantWrites {
        refresh_token: Some(refresh(rt, "famW", "user-1", NOW + 10_000)),
        access_token: Some(o(ot)),
    };

    // A redemption stores the first refresh token and the access token's record.
    store
        .create_code(&code("w1", "famW", NOW + 60))
        .await
        .unwrap();
    let r = store
        .redeem_code("w1", NOW + 1, "jti-w1", NOW + 301, &writes("w-r1", "w-o1"))
        .await
        .unwrap();
    assert!(matches!(r, CodeRedemption::Redeemed(_)), "{r:?}");
    assert!(store.refresh_token("w-r1").await.unwrap().is_some());
    assert!(store.opaque_token("w-o1").await.unwrap().is_some());
    // A replay writes nothing.
    let r = store
        .redeem_code("w1", NOW + 2, "jti-w1b", NOW + 302, &writes("w-r9", "w-o9"))
        .await
        .unwrap();
    assert!(matches!(r, CodeRedemption::Replayed { .. }), "{r:?}");
    assert_eq!(store.refresh_token("w-r9").await.unwrap(), None);
    assert_eq!(store.opaque_token("w-o9").await.unwrap(), None);

    // A failing write (a duplicate row stands in for any failure) leaves
    // the code unspent and nothing else written, whichever write fails.
    store
        .create_code(&code("w2", "famW", NOW + 60))
        .await
        .unwrap();
    for (rt, ot) in [("w-r1", "w-o2"), ("w-r2", "w-o1")] {
        let err = store
            .redeem_code("w2", NOW + 3, "jti-w2", NOW + 303, &writes(rt, ot))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(
            matches!(
                store.find_code("w2", NOW + 3).await.unwrap(),
                CodeLookup::Live(_)
            ),
            "the code is still unspent after a failed write ({rt}, {ot})"
        );
        assert_eq!(store.refresh_token("w-r2").await.unwrap(), None);
        assert_eq!(store.opaque_token("w-o2").await.unwrap(), None);
    }
    // And the retry succeeds.
    let r = store
        .redeem_code("w2", NOW + 4, "jti-w2", NOW + 304, &writes("w-r2", "w-o2"))
        .await
        .unwrap();
    assert!(matches!(r, CodeRedemption::Redeemed(_)), "{r:?}");

    // A rotation whose access-token record fails is undone: the presented
    // token is unused and no successor exists.
    let unlimited = RetryWindow::Unlimited;
    let err = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 5,
            unlimited,
            successor("w-s1", NOW + 5),
            Some(&o("w-o1")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let r2 = store.refresh_token("w-r2").await.unwrap().unwrap();
    assert_eq!((r2.used_at, r2.successor_hash), (None, None));
    assert_eq!(store.refresh_token("w-s1").await.unwrap(), None);

    // Then the rotation succeeds with its record; a retry stores the record
    // of the access token it is handed.
    let r = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 6,
            unlimited,
            successor("w-s1", NOW + 6),
            Some(&o("w-o3")),
        )
        .await
        .unwrap();
    assert!(matches!(r, RefreshUse::Rotated(_)), "{r:?}");
    assert!(store.opaque_token("w-o3").await.unwrap().is_some());
    let r = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 7,
            unlimited,
            successor("w-s1", NOW + 7),
            Some(&o("w-o4")),
        )
        .await
        .unwrap();
    assert!(matches!(r, RefreshUse::Retry(_)), "{r:?}");
    assert!(store.opaque_token("w-o4").await.unwrap().is_some());
    // A failing record on a retry changes nothing: the retry can come again.
    let err = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 8,
            unlimited,
            successor("w-s1", NOW + 8),
            Some(&o("w-o4")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let s1 = store.refresh_token("w-s1").await.unwrap().unwrap();
    assert_eq!((s1.used_at, s1.revoked_at), (None, None));

    // Reuse writes no record.
    store
        .use_refresh_token(
            "w-s1",
            "w-s2",
            NOW + 9,
            unlimited,
            successor("w-s2", NOW + 9),
            None,
        )
        .await
        .unwrap();
    let r = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 10,
            unlimited,
            successor("w-s1", NOW + 10),
            Some(&o("w-o5")),
        )
        .await
        .unwrap();
    assert!(matches!(r, RefreshUse::Reused { .. }), "{r:?}");
    assert_eq!(store.opaque_token("w-o5").await.unwrap(), None);
}
