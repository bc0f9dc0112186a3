//! Server-side request forgery: Gatehouse contacts the URLs clients
//! register (`jwks_uri`, `backchannel_logout_uri`) only over https and
//! never at internal addresses, checked at registration and again on every
//! connection after DNS resolution; loopback only for a development issuer;
//! other internal hosts only through `outbound_allow`.

use gatehouse_server::oauth::GrantType;
use std::sync::atomic::Ordering;

use gatehouse_server::{clients::ClientSpec, config::RawConfig};
use gatehouse_storage::model::Session;
use serde_json::{json, Value};

use crate::{
    private_key_jwt::{assertion, keypair, token_with},
    support::{
        configured::{counting_listener, https_issuer, spawn_app_with, FixedLookup},
        DbKind, TestApp, TestClient,
    },
};

async fn register(app: &TestApp, meta: Value) -> reqwest::Response {
    let token = app
        .initial_access_token(Some(&gatehouse_storage::model::RegistrationPolicy {
            grant_types: vec![GrantType::ClientCredentials],
            scopes: Vec::new(),
        }))
        .await;
    app.http
        .post(app.url("/register"))
        .bearer_auth(token)
        .json(&meta)
        .send()
        .await
        .unwrap()
}

fn jwt_client(jwks_uri: &str) -> Value {
    json!({
        "client_name": "jwt client",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": jwks_uri,
    })
}

/// The registration is refused with invalid_client_metadata, saying why.
async fn refused(app: &TestApp, meta: Value, because: &str) {
    let r = register(app, meta.clone()).await;
    assert_eq!(r.status(), 400, "{meta}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata", "{meta}");
    let d = body["error_description"].as_str().unwrap();
    assert!(d.contains(because), "{meta}: {d}");
}

/// A client authenticating with private_key_jwt from `jwks_uri`; the
/// status of its token request.
async fn try_jwks_uri(app: &TestApp, jwks_uri: &str) -> u16 {
    let (key, _) = keypair("k1");
    let c: TestClient = app
        .create_client(ClientSpec {
            name: "jwt client".into(),
            grant_types: vec!["client_credentials".into()],
            auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(jwks_uri.into()),
            ..ClientSpec::default()
        })
        .await;
    let aud = app.state.settings.issuer.clone();
    let jti = uuid::Uuid::new_v4().to_string();
    token_with(app, &assertion(app, &c.id, &key, &aud, 60, &jti)).await
}

/// A production issuer refuses plain http and internal targets at
/// registration, whatever the notation of the address.
#[tokio::test]
async fn registration_refuses_plain_http_and_internal_targets() {
    let app = spawn_app_with(DbKind::Sqlite, https_issuer(RawConfig::default()))
        .await
        .unwrap();
    refused(
        &app,
        jwt_client("http://rp.example/jwks"),
        "jwks_uri must use https",
    )
    .await;
    for internal in [
        "https://127.0.0.1/jwks",
        "https://127.1.2.3:8443/jwks",
        "https://[::1]/jwks",
        "https://localhost/jwks",
        "https://api.localhost/jwks",
        "https://10.0.0.8/jwks",
        "https://172.16.5.4/jwks",
        "https://192.168.1.1/jwks",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/jwks",
        "https://[fd00::1]/jwks",
        "https://[fe80::1]/jwks",
        "https://[::ffff:10.0.0.1]/jwks",
        "https://224.0.0.1/jwks",
        "https://0.0.0.0/jwks",
        "https://2130706433/jwks",
    ] {
        refused(&app, jwt_client(internal), "address").await;
    }
    refused(
        &app,
        jwt_client("https://user:pw@rp.example/jwks"),
        "credentials",
    )
    .await;
    let mut bc = jwt_client("https://rp.example/jwks");
    bc["backchannel_logout_uri"] = "https://192.168.0.10/logout".into();
    refused(
        &app,
        bc,
        "backchannel_logout_uri points at a private address",
    )
    .await;
    let mut bc = jwt_client("https://rp.example/jwks");
    bc["backchannel_logout_uri"] = "http://rp.example/logout".into();
    refused(&app, bc, "backchannel_logout_uri must use https").await;
    // A public https target is fine.
    let mut ok = jwt_client("https://rp.example/jwks");
    ok["backchannel_logout_uri"] = "https://rp.example/logout".into();
    assert_eq!(register(&app, ok).await.status(), 201);
    app.stop().await;
}

/// A development issuer (http on loopback) may reach loopback, over http
/// too, but nothing else internal, and no other http.
#[tokio::test]
async fn a_development_issuer_reaches_loopback_only() {
    let app = crate::support::spawn_app(DbKind::Sqlite).await.unwrap();
    assert!(app.state.settings.dev_mode);
    assert_eq!(
        register(&app, jwt_client("http://127.0.0.1:9/jwks"))
            .await
            .status(),
        201
    );
    refused(&app, jwt_client("http://rp.example/jwks"), "must use https").await;
    refused(&app, jwt_client("https://10.0.0.8/jwks"), "private address").await;
    refused(
        &app,
        jwt_client("https://169.254.169.254/x"),
        "link-local address",
    )
    .await;
    app.stop().await;
}

/// DNS rebinding: a name that passed registration and resolves to loopback
/// when Gatehouse connects is never contacted; nor is one that answers a
/// private and a loopback address. The check runs in the resolver, on
/// every connection.
#[tokio::test]
async fn a_name_resolving_to_an_internal_address_is_never_contacted() {
    let app = spawn_app_with(DbKind::Sqlite, https_issuer(RawConfig::default()))
        .await
        .unwrap();
    let (port, accepted) = counting_listener("127.0.0.1").await;
    let dns = FixedLookup::default();
    dns.install(&app);
    dns.answer("keys.rebind.test", &["127.0.0.1"]);
    dns.answer("mixed.rebind.test", &["10.1.1.1", "127.0.0.1", "::1"]);
    for host in ["keys.rebind.test", "mixed.rebind.test"] {
        let uri = format!("https://{host}:{port}/jwks");
        assert_eq!(try_jwks_uri(&app, &uri).await, 401, "{uri}");
    }
    assert!(dns.calls() >= 2, "the names were resolved at connect time");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "no connection reached loopback"
    );

    // Back-channel logout goes through the same guard (and is not retried).
    let (bc_port, bc_accepted) = counting_listener("127.0.0.1").await;
    dns.answer("logout.rebind.test", &["127.0.0.1"]);
    let c = app
        .create_client(ClientSpec {
            name: "rp".into(),
            grant_types: vec!["client_credentials".into()],
            backchannel_logout_uri: Some(format!("https://logout.rebind.test:{bc_port}/bc")),
            ..ClientSpec::default()
        })
        .await;
    let user = app.create_user("erin", "pw-erin-123456").await;
    let now = app.state.now();
    let session = Session {
        id_hash: "h".into(),
        sid: "sid-1".into(),
        user_id: user.id.clone(),
        auth_time: now,
        amr: vec!["pwd".into()],
        acr: None,
        created_at: now,
        last_seen_at: now,
        expires_at: now + 600,
        ip: None,
        user_agent: None,
    };
    app.state.store.create_session(&session).await.unwrap();
    app.state
        .store
        .add_session_client("sid-1", &c.id, now)
        .await
        .unwrap();
    let done = gatehouse_server::session_end::force_logout(&app.state, &user)
        .await
        .unwrap();
    assert_eq!(done.backchannel.len(), 1);
    assert!(!done.backchannel[0].delivered);
    assert_eq!(done.backchannel[0].attempts, 1);
    assert_eq!(bc_accepted.load(Ordering::SeqCst), 0);
    app.stop().await;
}

/// `outbound_allow` opens exactly the listed names and networks; a listed
/// name does not open its address for other names.
#[tokio::test]
async fn the_allow_list_opens_listed_hosts_and_networks() {
    let app = spawn_app_with(
        DbKind::Sqlite,
        https_issuer(RawConfig {
            outbound_allow: Some(vec!["keys.internal.test".into(), "127.0.0.2/32".into()]),
            ..RawConfig::default()
        }),
    )
    .await
    .unwrap();
    let (port, accepted) = counting_listener("127.0.0.1").await;
    let (port2, accepted2) = counting_listener("127.0.0.2").await;
    let dns = FixedLookup::default();
    dns.install(&app);
    dns.answer("keys.internal.test", &["127.0.0.1"]);
    dns.answer("other.internal.test", &["127.0.0.1"]);

    // Not listed: never contacted.
    try_jwks_uri(&app, &format!("https://other.internal.test:{port}/jwks")).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    // The listed name is contacted (the test listener speaks no TLS, so
    // authentication still fails; what matters is the connection).
    try_jwks_uri(&app, &format!("https://keys.internal.test:{port}/jwks")).await;
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "the listed host was contacted"
    );
    // The listed network, as an IP literal, passes registration and is contacted.
    try_jwks_uri(&app, &format!("https://127.0.0.2:{port2}/jwks")).await;
    assert!(
        accepted2.load(Ordering::SeqCst) >= 1,
        "the listed network was contacted"
    );
    // Other loopback addresses stay closed, at registration already.
    refused(
        &app,
        jwt_client(&format!("https://127.0.0.1:{port}/jwks")),
        "loopback address",
    )
    .await;
    app.stop().await;
}

/// Concurrent token requests for one jwks_uri cause one fetch.
#[tokio::test]
async fn concurrent_requests_share_one_jwks_fetch() {
    use axum::{routing::get, Json, Router};
    let app = crate::support::spawn_app(DbKind::Sqlite).await.unwrap();
    let (key, public) = keypair("k1");
    let jwks = json!({ "keys": [public] });
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = fetches.clone();
    let router = Router::new().route(
        "/jwks",
        get(move || {
            let j = jwks.clone();
            let f = f.clone();
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Json(j)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let c = app
        .create_client(ClientSpec {
            name: "jwt client".into(),
            grant_types: vec!["client_credentials".into()],
            auth_method: Some("private_key_jwt".into()),
            jwks_uri: Some(uri),
            ..ClientSpec::default()
        })
        .await;
    let aud = app.state.settings.issuer.clone();
    let jwts: Vec<String> = (0..8)
        .map(|i| assertion(&app, &c.id, &key, &aud, 60, &format!("c-{i}")))
        .collect();
    let mut tasks = Vec::new();
    for jwt in jwts {
        let (http, url) = (app.http.clone(), app.url("/token"));
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", jwt.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch for all");
    app.stop().await;
}
