//! DPoP bindings as stored: a code's `dpop_jkt`, a refresh token's (kept
//! by its successor when the caller copies it), an opaque token's, and a
//! client's `dpop_bound_access_tokens`.

use gatehouse_protocol::Jkt;
use gatehouse_storage::{
    model::{AuthCode, CodeLookup, RefreshToken},
    RefreshUse, RetryWindow, Store,
};

use crate::{
    fixtures::{client, code, opaque, refresh, successor},
    NOW,
};

contract! {
    dpop_bindings_round_trip => sqlite_dpop_bindings_round_trip, postgres_dpop_bindings_round_trip;
}

async fn dpop_bindings_round_trip(store: Store) {
    let jkt = Jkt::parse("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").unwrap();

    let mut c = client("bound-client", NOW);
    c.dpop_bound_access_tokens = true;
    store.create_client(&c).await.unwrap();
    assert!(
        store
            .client("bound-client")
            .await
            .unwrap()
            .unwrap()
            .dpop_bound_access_tokens
    );
    c.dpop_bound_access_tokens = false;
    store.update_client(&c).await.unwrap();
    assert!(
        !store
            .client("bound-client")
            .await
            .unwrap()
            .unwrap()
            .dpop_bound_access_tokens
    );

    let bound = AuthCode {
        dpop_jkt: Some(jkt.clone()),
        ..code("dc1", "famD", NOW + 60)
    };
    store.create_code(&bound).await.unwrap();
    store
        .create_code(&code("dc2", "famE", NOW + 60))
        .await
        .unwrap();
    match store.find_code("dc1", NOW).await.unwrap() {
        CodeLookup::Live(found) => assert_eq!(found.dpop_jkt.as_ref(), Some(&jkt)),
        other => panic!("{other:?}"),
    }
    match store.find_code("dc2", NOW).await.unwrap() {
        CodeLookup::Live(found) => assert!(found.dpop_jkt.is_none()),
        other => panic!("{other:?}"),
    }

    store
        .create_refresh_token(&RefreshToken {
            dpop_jkt: Some(jkt.clone()),
            ..refresh("dr1", "famD", "user-1", NOW + 1000)
        })
        .await
        .unwrap();
    let found = store.refresh_token("dr1").await.unwrap().unwrap();
    assert_eq!(found.dpop_jkt.as_ref(), Some(&jkt));
    match store
        .use_refresh_token(
            "dr1",
            "dr2",
            NOW + 1,
            RetryWindow::Unlimited,
            successor("dr2", NOW + 1),
            None,
        )
        .await
        .unwrap()
    {
        RefreshUse::Rotated(next) => assert_eq!(next.dpop_jkt.as_ref(), Some(&jkt)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .refresh_token("dr2")
            .await
            .unwrap()
            .unwrap()
            .dpop_jkt
            .as_ref(),
        Some(&jkt)
    );

    let mut t = opaque("do1", "client-1", None);
    t.dpop_jkt = Some(jkt.clone());
    store.create_opaque_token(&t).await.unwrap();
    assert_eq!(
        store.opaque_token("do1").await.unwrap().unwrap().dpop_jkt,
        Some(jkt)
    );
    store
        .create_opaque_token(&opaque("do2", "client-1", None))
        .await
        .unwrap();
    assert!(store
        .opaque_token("do2")
        .await
        .unwrap()
        .unwrap()
        .dpop_jkt
        .is_none());
}
