//! Users: create, look up, list, disable.

use gatehouse_storage::{model::User, Store, StoreError};

use crate::{fixtures::user, NOW};

contract! {
    users => sqlite_users, postgres_users;
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
