//! The schema: no migration is left pending and running them again is harmless; an upgrade keeps what clients had.

use gatehouse_storage::{model::RegistrationPolicy, Store};

use crate::{db, DbKind};

contract! {
    migrations => sqlite_migrations, postgres_migrations;
    on upgrade_keeps_api_scopes => sqlite_upgrade_keeps_api_scopes, postgres_upgrade_keeps_api_scopes;
}

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
            grant_types: vec!["authorization_code".parse().unwrap()],
            scopes: every.clone(),
        })
    );
    for r in store.list_resources().await.unwrap() {
        assert!(r.clients.is_empty());
    }
    store.close().await.unwrap();
    drop(db);
}
