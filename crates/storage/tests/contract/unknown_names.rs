//! Names a newer release wrote (a rolling upgrade, a rollback): a grant
//! type this release does not know is left out when read and kept when
//! written back; a client, key or resource server it cannot read at all is
//! left out of listings, and the rest stay readable.

use gatehouse_storage::Store;
use sea_orm::{ConnectionTrait, Statement};

use crate::{db, fixtures::client, DbKind, NOW};

contract! {
    on unknown_names_are_skipped_and_kept => sqlite_unknown_names_are_skipped_and_kept, postgres_unknown_names_are_skipped_and_kept;
}

async fn unknown_names_are_skipped_and_kept(kind: DbKind) {
    let Some(db) = db::fresh(kind).await else {
        return;
    };
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.create_client(&client("mixed", NOW)).await.unwrap();
    store
        .create_client(&client("odd-method", NOW))
        .await
        .unwrap();
    store.create_client(&client("fine", NOW)).await.unwrap();

    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    for sql in [
        "UPDATE clients SET grant_types = '[\"authorization_code\",\"urn:example:future\"]' WHERE id = 'mixed'",
        "UPDATE clients SET token_endpoint_auth_method = 'tls_client_auth' WHERE id = 'odd-method'",
        "INSERT INTO resource_servers (audience, encryption_jwk, signing_alg, token_format, \
         scopes, created_at, clients) VALUES ('https://future.example', '{}', 'ES256', 'cbor', \
         '[]', 1, '[]')",
    ] {
        conn.execute(Statement::from_string(backend, sql))
            .await
            .unwrap();
    }

    // The known grant type is read; the unknown one is left out.
    let mixed = store.client("mixed").await.unwrap().unwrap();
    assert_eq!(mixed.grant_types, ["authorization_code".parse().unwrap()]);
    // A write-back keeps it.
    store.update_client(&mixed).await.unwrap();
    let row = conn
        .query_one(Statement::from_string(
            backend,
            "SELECT grant_types FROM clients WHERE id = 'mixed'",
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: String = row.try_get("", "grant_types").unwrap();
    assert_eq!(stored, r#"["authorization_code","urn:example:future"]"#);

    // A client this release cannot read: an error for that id, left out of
    // the listing, which still lists the others; it can be deleted.
    assert!(store.client("odd-method").await.is_err());
    let ids: Vec<String> = store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.into_string())
        .collect();
    assert_eq!(ids, ["fine", "mixed"]);
    assert!(store.delete_client("odd-method").await.unwrap());

    // Likewise a resource server with a token format of a newer release.
    assert!(store.list_resources().await.unwrap().is_empty());

    conn.close().await.unwrap();
    store.close().await.unwrap();
    drop(db);
}
