//! Dynamic client registration: registration tokens and the policy each carries.

use gatehouse_storage::{model::RegistrationPolicy, Store, StoreError};

use crate::NOW;

contract! {
    registration_tokens => sqlite_registration_tokens, postgres_registration_tokens;
    registration_token_policy => sqlite_registration_token_policy, postgres_registration_token_policy;
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
        RegistrationPolicy::default()
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>(),
        ["authorization_code", "refresh_token"]
    );
    assert!(RegistrationPolicy::default().scopes.is_empty());

    // A stored policy round-trips, and stays readable once used up.
    let policy = RegistrationPolicy {
        grant_types: vec!["client_credentials".parse().unwrap()],
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
