//! Token exchange as stored: a resource server's `allow_exchange_from`
//! (set, replaced, emptied; `[]` for a row written before the column), and
//! an opaque token's delegation chain (`act`), kept through the grant's
//! write and reached by revoking the grant it was exchanged from.

use gatehouse_storage::{model::TokenRecord, Store};
use sea_orm::{ConnectionTrait, Statement};

use crate::{
    db,
    fixtures::{opaque, resource},
    DbKind, NOW,
};

contract! {
    exchange_allowances_round_trip => sqlite_exchange_allowances_round_trip, postgres_exchange_allowances_round_trip;
    exchanged_opaque_tokens_keep_their_chain => sqlite_exchanged_opaque_tokens_keep_their_chain, postgres_exchanged_opaque_tokens_keep_their_chain;
    on rows_without_allowances_read_empty => sqlite_rows_without_allowances_read_empty, postgres_rows_without_allowances_read_empty;
}

async fn exchange_allowances_round_trip(store: Store) {
    let mut r = resource("https://x.api.example");
    r.allow_exchange_from = vec!["svc-b".into(), "svc-c".into()];
    store.create_resource(&r).await.unwrap();
    let back = store.resource("https://x.api.example").await.unwrap();
    assert_eq!(back.as_ref(), Some(&r));
    let e1 = store.epoch("resources").await.unwrap();

    r.allow_exchange_from = vec!["svc-d".into()];
    store.update_resource(&r).await.unwrap();
    assert!(store.epoch("resources").await.unwrap() > e1);
    let listed = store.list_resources().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].allow_exchange_from, ["svc-d"]);
    // The other list is its own.
    assert_eq!(listed[0].clients, r.clients);

    r.allow_exchange_from.clear();
    store.update_resource(&r).await.unwrap();
    assert!(store
        .resource("https://x.api.example")
        .await
        .unwrap()
        .unwrap()
        .allow_exchange_from
        .is_empty());
}

async fn exchanged_opaque_tokens_keep_their_chain(store: Store) {
    let chain = r#"{"sub":"svc-c","act":{"sub":"svc-b"}}"#;
    let mut t = opaque("ex1", "svc-c", Some("famX"));
    t.act = Some(chain.to_owned());
    store
        .record_access_token(&TokenRecord::Opaque(t.clone()))
        .await
        .unwrap();
    let back = store.opaque_token("ex1").await.unwrap().unwrap();
    assert_eq!(back, t);
    assert_eq!(back.act.as_deref(), Some(chain));

    // A token that was not exchanged has none.
    store
        .create_opaque_token(&opaque("plain", "svc-c", None))
        .await
        .unwrap();
    assert!(store
        .opaque_token("plain")
        .await
        .unwrap()
        .unwrap()
        .act
        .is_none());

    // Revoking the grant it was exchanged from reaches it.
    assert_eq!(
        store.revoke_opaque_family("famX", NOW + 1).await.unwrap(),
        1
    );
    assert_eq!(
        store.opaque_token("ex1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 1)
    );
}

/// A resource server row written by the release before (no
/// `allow_exchange_from` given) reads with nobody allowed.
async fn rows_without_allowances_read_empty(kind: DbKind) {
    let Some(db) = db::fresh(kind).await else {
        return;
    };
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    conn.execute(Statement::from_string(
        backend,
        "INSERT INTO resource_servers (audience, encryption_jwk, signing_alg, token_format, \
         scopes, created_at, clients) VALUES ('https://old.example', '{}', 'ES256', 'jwe', \
         '[\"read\"]', 1, '[\"c1\"]')",
    ))
    .await
    .unwrap();
    let r = store
        .resource("https://old.example")
        .await
        .unwrap()
        .unwrap();
    assert!(r.allow_exchange_from.is_empty());
    assert_eq!(r.clients, ["c1"]);
    conn.close().await.unwrap();
    store.close().await.unwrap();
    drop(db);
}
