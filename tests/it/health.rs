//! `/healthz` and `/readyz`, and what unknown paths and wrong methods get.

use crate::support::TestApp;

async fn health_and_readiness(app: &TestApp) {
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    assert!(app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .headers()
        .contains_key("x-request-id"));
}

async fn unknown_paths_and_wrong_methods(app: &TestApp) {
    assert_eq!(
        app.http
            .get(app.url("/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.http
            .get(app.url("/token"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        app.http
            .delete(app.url("/authorize"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        app.http
            .put(app.url("/jwks"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

crate::both_backends!(health_and_readiness, unknown_paths_and_wrong_methods);
