//! Resource servers: create, list, update, delete.

use gatehouse_storage::{model::ResourceServer, Store, StoreError};

use crate::fixtures::resource;

contract! {
    resources => sqlite_resources, postgres_resources;
    resources_update => sqlite_resources_update, postgres_resources_update;
}

async fn resources(store: Store) {
    let e0 = store.epoch("resources").await.unwrap();
    assert!(store.list_resources().await.unwrap().is_empty());
    let b = resource("https://b.api.example");
    let a = ResourceServer {
        token_format: "opaque".parse().unwrap(),
        access_token_lifetime: None,
        scopes: vec![],
        clients: vec![],
        allow_exchange_from: vec![],
        ..resource("https://a.api.example")
    };
    store.create_resource(&b).await.unwrap();
    let e1 = store.epoch("resources").await.unwrap();
    assert!(e1 > e0);
    store.create_resource(&a).await.unwrap();
    let e2 = store.epoch("resources").await.unwrap();
    assert!(e2 > e1);

    // Ordered by audience, every field round-trips.
    assert_eq!(
        store.list_resources().await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    let err = store
        .create_resource(&resource("https://b.api.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.epoch("resources").await.unwrap(),
        e2,
        "a failed create changes nothing"
    );

    assert!(store
        .delete_resource("https://b.api.example")
        .await
        .unwrap());
    assert!(store.epoch("resources").await.unwrap() > e2);
    assert!(!store
        .delete_resource("https://b.api.example")
        .await
        .unwrap());
    assert_eq!(store.list_resources().await.unwrap(), vec![a]);
    // The clients and keys epochs are separate counters.
    assert_eq!(store.epoch("clients").await.unwrap(), 0);
    assert_eq!(store.epoch("keys").await.unwrap(), 0);
}

async fn resources_update(store: Store) {
    let a = resource("https://a.api.example");
    store.create_resource(&a).await.unwrap();
    assert_eq!(
        store.resource("https://a.api.example").await.unwrap(),
        Some(a.clone())
    );
    let e1 = store.epoch("resources").await.unwrap();
    let a2 = ResourceServer {
        scopes: vec!["read".to_owned()],
        clients: vec!["c1".into(), "c2".into()],
        allow_exchange_from: vec!["c2".into(), "c3".into()],
        token_format: "opaque".parse().unwrap(),
        access_token_lifetime: None,
        ..a.clone()
    };
    store.update_resource(&a2).await.unwrap();
    assert!(
        store.epoch("resources").await.unwrap() > e1,
        "update bumps the epoch"
    );
    assert_eq!(
        store.resource("https://a.api.example").await.unwrap(),
        Some(a2)
    );
    let e2 = store.epoch("resources").await.unwrap();
    let err = store
        .update_resource(&resource("https://ghost.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.epoch("resources").await.unwrap(), e2);
    assert_eq!(store.resource("https://ghost.example").await.unwrap(), None);
}
