//! Passkeys and WebAuthn ceremonies: per-user listing, removal only by
//! their owner, a counter that only moves forward, ceremonies taken once.

use gatehouse_storage::{
    model::{Ceremony, PasskeyRecord},
    Store, StoreError,
};

use crate::{fixtures::user, NOW};

contract! {
    passkeys => sqlite_passkeys, postgres_passkeys;
    ceremonies => sqlite_ceremonies, postgres_ceremonies;
}

fn passkey(id: &str, user: &str) -> PasskeyRecord {
    PasskeyRecord {
        credential_id: id.to_owned(),
        user_id: user.into(),
        name: format!("key {}", &id[..id.len().min(8)]),
        credential: "{}".to_owned(),
        created_at: NOW,
        last_used_at: None,
        counter: 3,
        backup_eligible: true,
        backup_state: false,
    }
}

async fn passkeys(store: Store) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    let long_id = "A".repeat(1364);
    store.create_passkey(&passkey("k1", "u1")).await.unwrap();
    store
        .create_passkey(&passkey(&long_id, "u1"))
        .await
        .unwrap();
    store.create_passkey(&passkey("k3", "u2")).await.unwrap();
    let e = store
        .create_passkey(&passkey("k1", "u2"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert_eq!(store.passkeys_of_user("u1").await.unwrap().len(), 2);
    assert_eq!(
        store.passkey("k1").await.unwrap(),
        Some(passkey("k1", "u1"))
    );
    // The counter moves forward only.
    assert!(store
        .record_passkey_use("k1", "{\"c\":5}", 5, true, NOW + 1)
        .await
        .unwrap());
    assert!(!store
        .record_passkey_use("k1", "{\"c\":4}", 4, false, NOW + 2)
        .await
        .unwrap());
    let k1 = store.passkey("k1").await.unwrap().unwrap();
    assert_eq!((k1.counter, k1.backup_state), (5, true));
    assert_eq!(k1.last_used_at, Some(NOW + 1));
    assert_eq!(k1.credential, "{\"c\":5}");
    // Only its owner removes it.
    assert!(!store.delete_passkey("u2", "k1").await.unwrap());
    assert!(store.delete_passkey("u1", "k1").await.unwrap());
    assert_eq!(store.delete_passkeys_of_user("u1").await.unwrap(), 1);
    assert!(store.passkeys_of_user("u1").await.unwrap().is_empty());
    assert_eq!(store.passkeys_of_user("u2").await.unwrap().len(), 1);
}

async fn ceremonies(store: Store) {
    let c = Ceremony {
        kind: "register".into(),
        user_id: Some("u1".into()),
        state: "{\"s\":1}".into(),
        session_hash: Some("sess".into()),
    };
    store.put_ceremony("h1", &c, NOW, NOW + 300).await.unwrap();
    // Another kind does not take it.
    assert_eq!(
        store.take_ceremony("h1", "discover", NOW).await.unwrap(),
        None
    );
    let (a, b) = tokio::join!(
        store.take_ceremony("h1", "register", NOW + 1),
        store.take_ceremony("h1", "register", NOW + 1)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() ^ b.is_some(), "taken once");
    assert_eq!(a.or(b), Some(c.clone()));
    // Expired: gone, and not returned.
    store.put_ceremony("h2", &c, NOW, NOW + 300).await.unwrap();
    assert_eq!(
        store
            .take_ceremony("h2", "register", NOW + 300)
            .await
            .unwrap(),
        None
    );
    store.put_ceremony("h3", &c, NOW, NOW + 300).await.unwrap();
    assert_eq!(store.prune_ceremonies(NOW + 301).await.unwrap(), 1);
    assert_eq!(
        store.take_ceremony("h3", "register", NOW).await.unwrap(),
        None
    );
}
