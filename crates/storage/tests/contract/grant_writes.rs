//! The writes a grant pays for commit with it, or not at all.

use gatehouse_storage::{
    model::{CodeLookup, CodeRedemption, GrantWrites, TokenRecord},
    RefreshUse, RetryWindow, Store, StoreError,
};

use crate::{
    fixtures::{code, opaque, refresh, successor},
    NOW,
};

contract! {
    grant_writes_all_or_nothing => sqlite_grant_writes_all_or_nothing, postgres_grant_writes_all_or_nothing;
}

/// A code redemption or a refresh rotation writes the tokens it pays for in
/// its own transaction: when one of those writes fails, nothing is spent.
async fn grant_writes_all_or_nothing(store: Store) {
    let o = |h: &str| TokenRecord::Opaque(opaque(h, "client-1", Some("famW")));
    let writes = |rt: &str, ot: &str| GrantWrites {
        refresh_token: Some(refresh(rt, "famW", "user-1", NOW + 10_000)),
        access_token: Some(o(ot)),
    };

    // A redemption stores the first refresh token and the access token's record.
    store
        .create_code(&code("w1", "famW", NOW + 60))
        .await
        .unwrap();
    let r = store
        .redeem_code("w1", NOW + 1, "jti-w1", NOW + 301, &writes("w-r1", "w-o1"))
        .await
        .unwrap();
    assert!(matches!(r, CodeRedemption::Redeemed(_)), "{r:?}");
    assert!(store.refresh_token("w-r1").await.unwrap().is_some());
    assert!(store.opaque_token("w-o1").await.unwrap().is_some());
    // A replay writes nothing.
    let r = store
        .redeem_code("w1", NOW + 2, "jti-w1b", NOW + 302, &writes("w-r9", "w-o9"))
        .await
        .unwrap();
    assert!(matches!(r, CodeRedemption::Replayed { .. }), "{r:?}");
    assert_eq!(store.refresh_token("w-r9").await.unwrap(), None);
    assert_eq!(store.opaque_token("w-o9").await.unwrap(), None);

    // A failing write (a duplicate row stands in for any failure) leaves
    // the code unspent and nothing else written, whichever write fails.
    store
        .create_code(&code("w2", "famW", NOW + 60))
        .await
        .unwrap();
    for (rt, ot) in [("w-r1", "w-o2"), ("w-r2", "w-o1")] {
        let err = store
            .redeem_code("w2", NOW + 3, "jti-w2", NOW + 303, &writes(rt, ot))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(
            matches!(
                store.find_code("w2", NOW + 3).await.unwrap(),
                CodeLookup::Live(_)
            ),
            "the code is still unspent after a failed write ({rt}, {ot})"
        );
        assert_eq!(store.refresh_token("w-r2").await.unwrap(), None);
        assert_eq!(store.opaque_token("w-o2").await.unwrap(), None);
    }
    // And the retry succeeds.
    let r = store
        .redeem_code("w2", NOW + 4, "jti-w2", NOW + 304, &writes("w-r2", "w-o2"))
        .await
        .unwrap();
    assert!(matches!(r, CodeRedemption::Redeemed(_)), "{r:?}");

    // A rotation whose access-token record fails is undone: the presented
    // token is unused and no successor exists.
    let unlimited = RetryWindow::Unlimited;
    let err = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 5,
            unlimited,
            successor("w-s1", NOW + 5),
            Some(&o("w-o1")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let r2 = store.refresh_token("w-r2").await.unwrap().unwrap();
    assert_eq!((r2.used_at, r2.successor_hash), (None, None));
    assert_eq!(store.refresh_token("w-s1").await.unwrap(), None);

    // Then the rotation succeeds with its record; a retry stores the record
    // of the access token it is handed.
    let r = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 6,
            unlimited,
            successor("w-s1", NOW + 6),
            Some(&o("w-o3")),
        )
        .await
        .unwrap();
    assert!(matches!(r, RefreshUse::Rotated(_)), "{r:?}");
    assert!(store.opaque_token("w-o3").await.unwrap().is_some());
    let r = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 7,
            unlimited,
            successor("w-s1", NOW + 7),
            Some(&o("w-o4")),
        )
        .await
        .unwrap();
    assert!(matches!(r, RefreshUse::Retry(_)), "{r:?}");
    assert!(store.opaque_token("w-o4").await.unwrap().is_some());
    // A failing record on a retry changes nothing: the retry can come again.
    let err = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 8,
            unlimited,
            successor("w-s1", NOW + 8),
            Some(&o("w-o4")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let s1 = store.refresh_token("w-s1").await.unwrap().unwrap();
    assert_eq!((s1.used_at, s1.revoked_at), (None, None));

    // Reuse writes no record.
    store
        .use_refresh_token(
            "w-s1",
            "w-s2",
            NOW + 9,
            unlimited,
            successor("w-s2", NOW + 9),
            None,
        )
        .await
        .unwrap();
    let r = store
        .use_refresh_token(
            "w-r2",
            "w-s1",
            NOW + 10,
            unlimited,
            successor("w-s1", NOW + 10),
            Some(&o("w-o5")),
        )
        .await
        .unwrap();
    assert!(matches!(r, RefreshUse::Reused { .. }), "{r:?}");
    assert_eq!(store.opaque_token("w-o5").await.unwrap(), None);
}
