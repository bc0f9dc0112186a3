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

async fn prometheus_metrics(app: &TestApp) {
    let c = app
        .create_client(gatehouse_server::clients::ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(
        app.token(&c, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
    app.http.get(app.url("/healthz")).send().await.unwrap();
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let body = r.text().await.unwrap();
    for needle in [
        "gatehouse_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1",
        "gatehouse_http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"} 1",
        "gatehouse_tokens_issued_total{grant=\"client_credentials\",format=\"jwe\"} 1",
        "gatehouse_http_request_duration_seconds_bucket{le=",
        "gatehouse_key_age_seconds{kid=",
        "state=\"next\"",
        "gatehouse_revocation_list_entries 0",
    ] {
        assert!(body.contains(needle), "missing {needle} in:\n{body}");
    }
}

crate::both_backends!(
    health_and_readiness,
    unknown_paths_and_wrong_methods,
    prometheus_metrics
);
