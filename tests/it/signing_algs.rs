//! The published signing algorithms are an operator setting
//! (`signing_algs`, default RS256 and ES256): keys exist and are published
//! only for those, discovery lists exactly those, and a client asking for
//! another is refused with a message saying what is published.

use gatehouse_server::config::RawConfig;
use serde_json::{json, Value};

use crate::support::{spawn_app_with, DbKind, TestApp};

async fn get_json(app: &TestApp, path: &str) -> Value {
    app.http
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The signing algorithms of the published keys, sorted and deduplicated.
async fn jwks_sig_algs(app: &TestApp) -> Vec<String> {
    let jwks = get_json(app, "/jwks").await;
    let mut algs: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "sig")
        .map(|k| k["alg"].as_str().unwrap().to_owned())
        .collect();
    algs.sort();
    algs.dedup();
    algs
}

async fn register(app: &TestApp, alg: &str) -> (u16, Value) {
    let token = app.initial_access_token(None).await;
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&token)
        .json(&json!({
            "redirect_uris": ["https://app.example/cb"],
            "id_token_signed_response_alg": alg,
        }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn by_default_only_rs256_and_es256(kind: DbKind) {
    let Some(app) = spawn_app_with(kind, RawConfig::default()).await else {
        return;
    };
    // No OKP key: cjose-based relying parties cannot parse one.
    let jwks = get_json(&app, "/jwks").await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kty"] != "OKP"),
        "{jwks}"
    );
    assert_eq!(jwks_sig_algs(&app).await, ["ES256", "RS256"]);
    let d = get_json(&app, "/.well-known/openid-configuration").await;
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );
    for alg in ["EdDSA", "PS256"] {
        let (status, body) = register(&app, alg).await;
        assert_eq!(status, 400, "{alg}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata");
        assert_eq!(
            body["error_description"],
            format!(
                "id_token_signed_response_alg {alg} is not published by this server (signing_algs is RS256, ES256); use one of those, or ask the operator to add {alg} to signing_algs"
            )
        );
    }
    assert_eq!(register(&app, "ES256").await.0, 201);
    app.stop().await;
}

async fn added_algorithms_are_published(kind: DbKind) {
    let config = RawConfig {
        signing_algs: Some(vec![
            "RS256".into(),
            "ES256".into(),
            "PS256".into(),
            "EdDSA".into(),
        ]),
        ..RawConfig::default()
    };
    let Some(app) = spawn_app_with(kind, config).await else {
        return;
    };
    assert_eq!(
        jwks_sig_algs(&app).await,
        ["ES256", "EdDSA", "PS256", "RS256"]
    );
    let d = get_json(&app, "/.well-known/openid-configuration").await;
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256", "PS256", "EdDSA"])
    );
    let (status, body) = register(&app, "EdDSA").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id_token_signed_response_alg"], "EdDSA");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_only_rs256_and_es256_sqlite() {
    by_default_only_rs256_and_es256(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_only_rs256_and_es256_postgres() {
    by_default_only_rs256_and_es256(DbKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_algorithms_are_published_sqlite() {
    added_algorithms_are_published(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_algorithms_are_published_postgres() {
    added_algorithms_are_published(DbKind::Postgres).await;
}
