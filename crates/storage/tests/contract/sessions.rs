//! Browser sessions and their pruning; remembered consents.

use gatehouse_storage::{
    model::{Consent, Session},
    Store, StoreError,
};

use crate::{fixtures::session, NOW};

contract! {
    sessions => sqlite_sessions, postgres_sessions;
    sessions_prune => sqlite_sessions_prune, postgres_sessions_prune;
    consents => sqlite_consents, postgres_consents;
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

    // A user's consents, the most recently granted first.
    store
        .save_consent("u1", "c2", &first, NOW + 5)
        .await
        .unwrap();
    let of_u1 = store.consents_of_user("u1").await.unwrap();
    assert_eq!(
        of_u1,
        vec![
            Consent {
                client_id: "c1".into(),
                scopes: second.clone(),
                created_at: NOW,
                updated_at: NOW + 10,
            },
            Consent {
                client_id: "c2".into(),
                scopes: first.clone(),
                created_at: NOW + 5,
                updated_at: NOW + 5,
            },
        ]
    );
    assert!(store.consents_of_user("nobody").await.unwrap().is_empty());

    // Deleting one consent leaves the user's others and other users' alone.
    assert!(store.delete_consent("u1", "c1").await.unwrap());
    assert!(!store.delete_consent("u1", "c1").await.unwrap(), "once");
    assert!(store.consented_scopes("u1", "c1").await.unwrap().is_empty());
    assert_eq!(store.consented_scopes("u1", "c2").await.unwrap(), first);
    let of_u2 = store.consents_of_user("u2").await.unwrap();
    assert_eq!(of_u2.len(), 1);
    assert_eq!(of_u2[0].client_id.as_str(), "c1");
}
