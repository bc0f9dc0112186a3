//! Second factors: TOTP enrolment, confirmation and single-use steps;
//! recovery codes spent once; step-up of a session; policies.

use gatehouse_protocol::Acr;
use gatehouse_storage::{model::Factors, Store, StoreError};

use crate::{
    fixtures::{session, user},
    NOW,
};

contract! {
    totp => sqlite_totp, postgres_totp;
    recovery => sqlite_recovery, postgres_recovery;
    step_up_and_policies => sqlite_step_up_and_policies, postgres_step_up_and_policies;
    failure_limit => sqlite_failure_limit, postgres_failure_limit;
    factor_summary => sqlite_factor_summary, postgres_factor_summary;
}

async fn failure_limit(store: Store) {
    const DAY: i64 = 86_400;
    // Three in a row are allowed; the fourth is held off until a day
    // after the last counted one.
    for i in 0..3 {
        assert_eq!(
            store
                .count_factor_attempt("u1", 3, DAY, NOW + i)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .count_factor_attempt("u1", 3, DAY, NOW + 10)
            .await
            .unwrap(),
        Some(DAY - 8)
    );
    // Another account is not held off.
    assert_eq!(
        store.count_factor_attempt("u2", 3, DAY, NOW).await.unwrap(),
        None
    );
    // Concurrent attempts at the limit: at most the limit is counted.
    store.clear_factor_failures("u3").await.unwrap();
    let t = || store.count_factor_attempt("u3", 3, DAY, NOW);
    let (a, b, c, d, e, f) = tokio::join!(t(), t(), t(), t(), t(), t());
    let allowed = [a, b, c, d, e, f]
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_none())
        .count();
    assert_eq!(allowed, 3);
    // A day after the last failure the count starts over.
    assert_eq!(
        store
            .count_factor_attempt("u1", 3, DAY, NOW + 2 + DAY)
            .await
            .unwrap(),
        None
    );
    // A success (or a reset) clears it.
    store.clear_factor_failures("u1").await.unwrap();
    for i in 0..3 {
        assert_eq!(
            store
                .count_factor_attempt("u1", 3, DAY, NOW + DAY + 10 + i)
                .await
                .unwrap(),
            None
        );
    }
}

async fn factor_summary(store: Store) {
    use gatehouse_storage::model::PasskeyRecord;
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    assert_eq!(
        store.factors_of_user("u1").await.unwrap(),
        Factors::default()
    );
    assert_eq!(
        store.factors_of_user("nobody").await.unwrap(),
        Factors::default()
    );
    store.begin_totp("u1", vec![1], "s1", NOW).await.unwrap();
    // A pending enrolment is not a factor.
    assert!(!store.factors_of_user("u1").await.unwrap().totp);
    assert!(store
        .confirm_totp("u1", "s1", NOW - 1, 5, NOW)
        .await
        .unwrap());
    store
        .create_passkey(&PasskeyRecord {
            credential_id: "k2".into(),
            user_id: "u2".into(),
            name: "Key".into(),
            credential: "{}".into(),
            created_at: NOW,
            last_used_at: None,
            counter: 0,
            backup_eligible: false,
            backup_state: false,
        })
        .await
        .unwrap();
    assert_eq!(
        store.factors_of_user("u1").await.unwrap(),
        Factors {
            totp: true,
            passkey: false
        }
    );
    assert_eq!(
        store.factors_of_user("u2").await.unwrap(),
        Factors {
            totp: false,
            passkey: true
        }
    );
}

async fn totp(store: Store) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    assert_eq!(store.totp_factor("u1").await.unwrap(), None);
    store
        .begin_totp("u1", vec![1, 2, 3], "s1", NOW)
        .await
        .unwrap();
    // A second enrolment before confirming replaces the first, and two at
    // once both succeed (one statement, no unique-key race).
    let (a, b) = tokio::join!(
        store.begin_totp("u1", vec![9], "s1", NOW + 5),
        store.begin_totp("u1", vec![8], "s1", NOW + 5)
    );
    a.unwrap();
    b.unwrap();
    store
        .begin_totp("u1", vec![4, 5, 6], "s2", NOW + 10)
        .await
        .unwrap();
    let pending = store.totp_factor("u1").await.unwrap().unwrap();
    assert_eq!(pending.secret_sealed, vec![4, 5, 6]);
    assert_eq!(pending.confirmed_at, None);
    // A pending factor accepts no sign-in code.
    assert!(!store.use_totp_step("u1", 100).await.unwrap());
    // Too old an enrolment cannot be confirmed.
    assert!(!store
        .confirm_totp("u1", "s2", NOW + 10, 100, NOW + 20)
        .await
        .unwrap());
    // Only the session that began it confirms it.
    assert!(!store
        .confirm_totp("u1", "s1", NOW, 100, NOW + 20)
        .await
        .unwrap());
    assert!(store
        .confirm_totp("u1", "s2", NOW, 100, NOW + 20)
        .await
        .unwrap());
    assert!(!store
        .confirm_totp("u1", "s2", NOW, 101, NOW + 21)
        .await
        .unwrap());
    let f = store.totp_factor("u1").await.unwrap().unwrap();
    assert_eq!((f.confirmed_at, f.last_step), (Some(NOW + 20), Some(100)));
    // Enrolling again over a confirmed factor is a conflict.
    let e = store
        .begin_totp("u1", vec![7], "s3", NOW)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    let f = store.totp_factor("u1").await.unwrap().unwrap();
    assert_eq!(f.secret_sealed, vec![4, 5, 6], "a confirmed secret is kept");
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
    // Unused first, then used ones by when, on both backends.
    let used: Vec<Option<i64>> = codes.iter().map(|c| c.used_at).collect();
    assert_eq!(used[..8], [None; 8]);
    assert_eq!(used[8..], [Some(NOW), Some(NOW + 5)]);
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
        .raise_session("h1", "h2", Acr::Mfa, &amr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raised.acr.as_deref(), Some("urn:gatehouse:acr:mfa"));
    assert_eq!(raised.amr, amr);
    assert_eq!(raised.auth_time, s.auth_time);
    assert_eq!(raised.ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(raised.user_agent.as_deref(), Some("Firefox"));
    // Under its new id only: the old one is worth nothing.
    assert_eq!(raised.id_hash, "h2");
    assert_eq!(raised.sid, "sid1");
    assert_eq!(store.live_session("h1", NOW, 3600).await.unwrap(), None);
    assert_eq!(
        store
            .raise_session("nope", "h9", Acr::Mfa, &amr)
            .await
            .unwrap(),
        None
    );
    // A level never goes down: a slower, weaker step-up after a passkey
    // leaves the level; its methods are there already, so nothing changes
    // (not even the id).
    let phr = vec!["swk".to_owned(), "user".to_owned(), "mfa".to_owned()];
    store
        .raise_session("h2", "h3", Acr::Phr, &phr)
        .await
        .unwrap();
    let after = store
        .raise_session("h3", "h4", Acr::Mfa, &amr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.acr.as_deref(), Some("urn:gatehouse:acr:phr"));
    assert_eq!(after.amr, ["pwd", "otp", "mfa", "swk", "user"]);
    assert_eq!(after.id_hash, "h3");
    // Two at once on one session: both methods are kept.
    let mut t = session("t1", "sidt", "u1", NOW, NOW + 3600);
    t.amr = vec!["pwd".into()];
    store.create_session(&t).await.unwrap();
    let otp = vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
    let key = vec!["pwd".to_owned(), "swk".to_owned(), "user".to_owned()];
    let (a, b) = tokio::join!(
        store.raise_session("t1", "t2", Acr::Mfa, &otp),
        store.raise_session("t1", "t3", Acr::Phr, &key)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let last = store
        .raise_session(
            &a.or(b).unwrap().id_hash,
            "t4",
            Acr::Pwd,
            &["pwd".to_owned()],
        )
        .await
        .unwrap();
    // One of them may have found the session gone (renamed by the other):
    // then its own write did not happen, and its caller starts over.
    if let Some(last) = last {
        assert!(last.amr.iter().any(|m| m == "otp" || m == "swk"));
    }
    // A level this release does not know is raised like one factor.
    let mut legacy = session("l1", "sidl", "u1", NOW, NOW + 3600);
    legacy.acr = Some("urn:gatehouse:acr:legacy".into());
    store.create_session(&legacy).await.unwrap();
    let raised = store
        .raise_session("l1", "l2", Acr::Mfa, &amr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raised.acr.as_deref(), Some("urn:gatehouse:acr:mfa"));

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
