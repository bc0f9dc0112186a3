//! Clients: create, update, list, delete, PKCE requirement, and the grants a client holds
//! (for everyone, or for one user).

use gatehouse_storage::{
    model::{AuthCode, Client, RefreshToken, RegistrationPolicy},
    Store, StoreError,
};

use crate::{
    fixtures::{client, code, refresh},
    NOW,
};

contract! {
    clients => sqlite_clients, postgres_clients;
    clients_require_pkce => sqlite_clients_require_pkce, postgres_clients_require_pkce;
    clients_require_par => sqlite_clients_require_par, postgres_clients_require_par;
    client_grants => sqlite_client_grants, postgres_client_grants;
    user_grants_at_client => sqlite_user_grants_at_client, postgres_user_grants_at_client;
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
        token_endpoint_auth_method: "none".parse().unwrap(),
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
        .map(|c| c.id.into_string())
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
        token_endpoint_auth_method: "client_secret_jwt".parse().unwrap(),
        // Arbitrary bytes, including non-UTF-8 ones, round-trip exactly.
        client_secret_sealed: Some(vec![1, 0, 255, 128, 7, 0xfe]),
        token_endpoint_auth_signing_alg: Some("HS512".to_owned()),
        registration_policy: Some(RegistrationPolicy {
            grant_types: vec!["client_credentials".parse().unwrap()],
            scopes: vec!["api:read".to_owned()],
        }),
        // The flag round-trips (stored false for every earlier client).
        legacy_assertion_audience: true,
        require_acr: Some(gatehouse_protocol::Acr::Mfa),
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
        .map(|c| c.id.into_string())
        .collect();
    assert_eq!(ids, ["c0", "c2"]);
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

/// `require_pushed_authorization_requests` round-trips through create,
/// update and list, and is false for a client that never set it.
async fn clients_require_par(store: Store) {
    let plain = client("par-plain", NOW);
    store.create_client(&plain).await.unwrap();
    assert!(
        !store
            .client("par-plain")
            .await
            .unwrap()
            .unwrap()
            .require_pushed_authorization_requests
    );
    let strict = Client {
        require_pushed_authorization_requests: true,
        ..client("par-strict", NOW + 1)
    };
    store.create_client(&strict).await.unwrap();
    assert_eq!(store.client("par-strict").await.unwrap().unwrap(), strict);
    let relaxed = Client {
        require_pushed_authorization_requests: false,
        updated_at: NOW + 2,
        ..strict.clone()
    };
    store.update_client(&relaxed).await.unwrap();
    let made_strict = Client {
        require_pushed_authorization_requests: true,
        updated_at: NOW + 2,
        ..plain
    };
    store.update_client(&made_strict).await.unwrap();
    assert_eq!(
        store.list_clients().await.unwrap(),
        vec![made_strict, relaxed]
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
            client_id: "client-2".into(),
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

/// One user's grants at one client, and revoking her refresh tokens there
/// (a consent withdrawn): other users and other clients keep theirs.
async fn user_grants_at_client(store: Store) {
    assert!(store
        .grants_of_user_at_client("user-1", "client-1")
        .await
        .unwrap()
        .is_empty());
    for (h, fam, user, client) in [
        ("u0", "famA", "user-1", "client-1"),
        ("u1", "famA", "user-1", "client-1"),
        ("u2", "famB", "user-1", "client-1"),
        ("o0", "famO", "user-2", "client-1"),
        ("c0", "famC", "user-1", "client-2"),
    ] {
        store
            .create_refresh_token(&RefreshToken {
                client_id: client.into(),
                ..refresh(h, fam, user, NOW + 1000)
            })
            .await
            .unwrap();
    }
    // A code not yet redeemed is a grant too; another user's is not hers.
    store
        .create_code(&code("uc1", "famD", NOW + 60))
        .await
        .unwrap();
    store
        .create_code(&AuthCode {
            user_id: "user-2".into(),
            ..code("uc2", "famP", NOW + 60)
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .grants_of_user_at_client("user-1", "client-1")
            .await
            .unwrap(),
        vec!["famA".to_owned(), "famB".to_owned(), "famD".to_owned()]
    );
    assert_eq!(
        store
            .revoke_refresh_tokens_of_user_at_client("user-1", "client-1", NOW + 1)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .revoke_refresh_tokens_of_user_at_client("user-1", "client-1", NOW + 2)
            .await
            .unwrap(),
        0,
        "already revoked"
    );
    for h in ["u0", "u1", "u2"] {
        assert_eq!(
            store.refresh_token(h).await.unwrap().unwrap().revoked_at,
            Some(NOW + 1),
            "{h}"
        );
    }
    for h in ["o0", "c0"] {
        assert_eq!(
            store.refresh_token(h).await.unwrap().unwrap().revoked_at,
            None,
            "{h}: another user's or another client's token stays"
        );
    }
}
