//! `/metrics`: behind a bearer token on the main listener (absent there
//! without one), open on its own `metrics_listen` address, and a scrape
//! reads memory only.

use gatehouse_server::{clients::ClientSpec, config::RawConfig};

use crate::support::{configured::spawn_app_with, DbKind, TestApp};

const TOKEN: &str = "metrics-0123456789-abcdef";

/// The config every test here uses: a token and a metrics listener.
fn with_token_and_listener() -> RawConfig {
    RawConfig {
        metrics_token: Some(TOKEN.into()),
        metrics_listen: Some("127.0.0.1:0".into()),
        ..RawConfig::default()
    }
}

/// Scrapes the metrics listener; the body.
async fn scrape(app: &TestApp) -> String {
    let r = app
        .http
        .get(app.metrics_url().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn gauge(body: &str, name: &str) -> i64 {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("missing {name} in:\n{body}"))
        .parse()
        .unwrap()
}

/// Without `metrics_token` the main listener has no /metrics.
async fn no_metrics_on_the_main_listener_by_default(kind: DbKind) {
    let Some(app) = spawn_app_with(kind, RawConfig::default()).await else {
        return;
    };
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        app.metrics_url().is_none(),
        "no metrics listener by default"
    );
    // Not even with a made-up token.
    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

/// With a token: 401 without it or with another (RFC 6750 3.1), 200 with it.
async fn the_main_listener_needs_the_token(kind: DbKind) {
    let Some(app) = spawn_app_with(kind, with_token_and_listener()).await else {
        return;
    };
    let get = || app.http.get(app.url("/metrics"));
    let r = get().send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"gatehouse\""
    );
    for wrong in ["nope", "metrics-0123456789-abcdeF", &format!("{TOKEN}x")] {
        let r = get().bearer_auth(wrong).send().await.unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(!challenge.contains(TOKEN));
    }
    let r = get()
        .basic_auth("metrics", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "only a bearer token");
    let r = get().bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("gatehouse_http_requests_total"));
    app.stop().await;
}

/// `metrics_listen` serves /metrics without a token, and nothing else.
async fn the_metrics_listener_needs_no_token(kind: DbKind) {
    let Some(app) = spawn_app_with(
        kind,
        RawConfig {
            metrics_listen: Some("127.0.0.1:0".into()),
            ..RawConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let url = app.metrics_url().unwrap();
    assert_ne!(url, app.url("/metrics"), "a port of its own");
    let body = scrape(&app).await;
    assert!(body.contains("gatehouse_db_pool_max_connections"));
    let other = url.replace("/metrics", "/token");
    assert_eq!(app.http.get(other).send().await.unwrap().status(), 404);
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404, "still not on the main listener");
    app.stop().await;
}

async fn access_token(app: &TestApp, c: &crate::support::TestClient) -> String {
    let v: serde_json::Value = app
        .token(c, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// A scrape does not count the revocation list: the gauge is what
/// housekeeping last counted.
async fn a_scrape_reads_memory_only(kind: DbKind) {
    let Some(app) = spawn_app_with(kind, with_token_and_listener()).await else {
        return;
    };
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            ..ClientSpec::default()
        })
        .await;
    // Revoking a grantless token lists its jti and the grant named by it
    // (what was exchanged from it): the gauge follows the list's size.
    let entries =
        || async { i64::try_from(app.state.store.revocation_list_size().await.unwrap()).unwrap() };
    let first = access_token(&app, &c).await;
    crate::support::revoke(&app, &c, &first).await;
    let after_first = entries().await;
    assert!(after_first >= 1);
    // Housekeeping counts (the one at start-up may still be under way, so
    // until its count and ours agree).
    let mut seen = 0;
    for _ in 0..50 {
        gatehouse_server::app::housekeep(&app.state).await.unwrap();
        seen = gauge(&scrape(&app).await, "gatehouse_revocation_list_entries");
        if seen == after_first {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, after_first);
    let second = access_token(&app, &c).await;
    crate::support::revoke(&app, &c, &second).await;
    let after_second = entries().await;
    assert!(after_second > after_first);
    gatehouse_server::app::housekeep(&app.state).await.unwrap();
    assert_eq!(
        gauge(&scrape(&app).await, "gatehouse_revocation_list_entries"),
        after_second
    );
    // A scrape never touches the database: with the pool closed it still
    // answers, from the count housekeeping last made. (Asserting that a
    // scrape between a revocation and housekeeping still shows the old
    // count would race the background housekeeping task.)
    app.state.store.clone().close().await.unwrap();
    assert_eq!(
        gauge(&scrape(&app).await, "gatehouse_revocation_list_entries"),
        after_second,
        "a scrape reads memory only"
    );
    app.stop().await;
}

/// Extension methods (any token, RFC 9110 9.1) all count under one
/// `other` label: a stranger cannot add a series per made-up method.
async fn unknown_methods_share_one_label(kind: DbKind) {
    let Some(app) = spawn_app_with(kind, with_token_and_listener()).await else {
        return;
    };
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let r = app
            .http
            .request(method, app.url("/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }
    let body = scrape(&app).await;
    let closed = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other",
    ];
    let token_series: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("gatehouse_http_requests_total{"))
        .filter(|l| l.contains("route=\"/token\""))
        .collect();
    for line in &token_series {
        let method = line
            .split("method=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no method label in {line}"));
        assert!(
            closed.contains(&method),
            "method label {method:?} in {line}"
        );
    }
    assert!(
        token_series.contains(
            &"gatehouse_http_requests_total{route=\"/token\",method=\"other\",status=\"405\"} 50"
        ),
        "{body}"
    );
    app.stop().await;
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::DbKind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::DbKind::Postgres).await;
                }
            )*
        }
    };
}

on_both!(
    no_metrics_on_the_main_listener_by_default,
    the_main_listener_needs_the_token,
    the_metrics_listener_needs_no_token,
    a_scrape_reads_memory_only,
    unknown_methods_share_one_label,
);
