//! Second factors: TOTP enrolment, confirmation and single-use steps;
//! recovery codes spent once; step-up of a session; policies.

use gatehouse_storage::{Store, StoreError};

use crate::{
    fixtures::{session, user},
    NOW,
};

contract! {
    totp => sqlite_totp, postgres_totp;
    recovery => sqlite_recovery, postgres_recovery;
    step_up_and_policies => sqlite_step_up_and_policies, postgres_step_up_and_policies;
}

async fn totp(store: Store) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    assert_eq!(store.totp_factor("u1").await.unwrap(), None);
    store.begin_totp("u1", vec![1, 2, 3], NOW).await.unwrap();
    // A second enrolment before confirming replaces the first.
    store
        .begin_totp("u1", vec![4, 5, 6], NOW + 10)
        .await
        .unwrap();
    let pending = store.totp_factor("u1").await.unwrap().unwrap();
    assert_eq!(pending.secret_sealed, vec![4, 5, 6]);
    assert_eq!(pending.confirmed_at, None);
    // A pending factor accepts no sign-in code.
    assert!(!store.use_totp_step("u1", 100).await.unwrap());
    // Too old an enrolment cannot be confirmed.
    assert!(!store
        .confirm_totp("u1", NOW + 10, 100, NOW + 20)
        .await
        .unwrap());
    assert!(store.confirm_totp("u1", NOW, 100, NOW + 20).await.unwrap());
    assert!(!store.confirm_totp("u1", NOW, 101, NOW + 21).await.unwrap());
    let f = store.totp_factor("u1").await.unwrap().unwrap();
    assert_eq!((f.confirmed_at, f.last_step), (Some(NOW + 20), Some(100)));
    // Enrolling again over a confirmed factor is a conflict.
    let e = store.begin_totp("u1", vec![7], NOW).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    // Each step once, and never one at or before the last.
    assert!(!store.use_totp_step("u1", 100).await.unwrap());
    assert!(!store.use_totp_step("u1", 99).await.unwrap());
    assert!(store.use_totp_step("u1", 101).await.unwrap());
    assert!(!store.use_totp_step("u1", 101).await.unwrap());
    // Concurrent uses of one step: exactly one wins.
    let (a, b) = tokio::join!(
        store.use_totp_step("u1", 105),
        store.use_totp_step("u1", 105)
    );
    assert!(a.unwrap() ^ b.unwrap());
    assert!(!store.use_totp_step("u2", 200).await.unwrap());
    store
        .replace_recovery_codes("u1", &["h1".into()], NOW)
        .await
        .unwrap();
    assert!(store.delete_totp("u1").await.unwrap());
    assert_eq!(store.totp_factor("u1").await.unwrap(), None);
    assert!(store.recovery_codes("u1").await.unwrap().is_empty());
    assert!(!store.delete_totp("u1").await.unwrap());
}

async fn recovery(store: Store) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    let hashes: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    store
        .replace_recovery_codes("u1", &hashes, NOW)
        .await
        .unwrap();
    assert_eq!(store.recovery_codes("u1").await.unwrap().len(), 10);
    // Another user's code is not hers.
    assert!(!store.use_recovery_code("u2", "h1", NOW).await.unwrap());
    assert!(store.use_recovery_code("u1", "h1", NOW + 5).await.unwrap());
    assert!(!store.use_recovery_code("u1", "h1", NOW + 6).await.unwrap());
    let (a, b) = tokio::join!(
        store.use_recovery_code("u1", "h2", NOW),
        store.use_recovery_code("u1", "h2", NOW)
    );
    assert!(a.unwrap() ^ b.unwrap());
    let codes = store.recovery_codes("u1").await.unwrap();
    assert_eq!(codes.iter().filter(|c| c.used_at.is_some()).count(), 2);
    // New codes void the old ones.
    store
        .replace_recovery_codes("u1", &["n1".into()], NOW + 9)
        .await
        .unwrap();
    assert!(!store.use_recovery_code("u1", "h3", NOW).await.unwrap());
    assert_eq!(store.recovery_codes("u1").await.unwrap().len(), 1);
}

async fn step_up_and_policies(store: Store) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    let mut s = session("h1", "sid1", "u1", NOW, NOW + 3600);
    s.ip = Some("192.0.2.7".into());
    s.user_agent = Some("Firefox".into());
    store.create_session(&s).await.unwrap();
    let amr = vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
    let raised = store
        .raise_session("h1", "urn:gatehouse:acr:mfa", &amr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raised.acr.as_deref(), Some("urn:gatehouse:acr:mfa"));
    assert_eq!(raised.amr, amr);
    assert_eq!(raised.auth_time, s.auth_time);
    assert_eq!(raised.ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(raised.user_agent.as_deref(), Some("Firefox"));
    assert_eq!(store.raise_session("nope", "x", &amr).await.unwrap(), None);

    // A user ends one of her own sessions by sid; not someone else's.
    assert_eq!(store.delete_user_session("u2", "sid1").await.unwrap(), None);
    assert!(store
        .delete_user_session("u1", "sid1")
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.delete_user_session("u1", "sid1").await.unwrap(), None);

    store.set_mfa_required("u1", true, NOW).await.unwrap();
    assert!(store.user_by_id("u1").await.unwrap().unwrap().mfa_required);
    let e = store
        .set_mfa_required("nobody", true, NOW)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    store.set_password_hash("u1", "$new", NOW).await.unwrap();
    assert_eq!(
        store.user_by_id("u1").await.unwrap().unwrap().password_hash,
        "$new"
    );
}
