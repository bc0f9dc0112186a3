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

/// The metrics token of [`prometheus_metrics`].
const METRICS_TOKEN: &str = "metrics-0123456789-abcdef";

async fn prometheus_metrics(kind: crate::support::DbKind) {
    let Some(app) = crate::support::configured::spawn_app_with(
        kind,
        gatehouse_server::config::RawConfig {
            metrics_token: Some(METRICS_TOKEN.into()),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let app = &app;
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
    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
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
        "gatehouse_db_up 1",
        "gatehouse_db_unavailable_responses_total 0",
    ] {
        assert!(body.contains(needle), "missing {needle} in:\n{body}");
    }
    // The database pool: open connections (at least the one /metrics just
    // used), idle ones among them, and the pool's ceiling for this engine.
    let gauge = |name: &str| -> i64 {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("missing {name} in:\n{body}"))
            .parse()
            .unwrap()
    };
    let max = match app.state.store.backend() {
        gatehouse_storage::Backend::Sqlite => 8,
        gatehouse_storage::Backend::Postgres => 16,
    };
    assert_eq!(gauge("gatehouse_db_pool_max_connections"), max);
    let open = gauge("gatehouse_db_pool_connections");
    let idle = gauge("gatehouse_db_pool_idle_connections");
    assert!((1..=max).contains(&open), "open {open}");
    assert!((0..=open).contains(&idle), "idle {idle} of {open}");
    assert!(body.contains("# TYPE gatehouse_db_pool_connections gauge"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_sqlite() {
    prometheus_metrics(crate::support::DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_postgres() {
    prometheus_metrics(crate::support::DbKind::Postgres).await;
}

crate::both_backends!(health_and_readiness, unknown_paths_and_wrong_methods);
