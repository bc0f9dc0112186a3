//! Who may introspect what (RFC 7662 2.2, 4): the client a token was
//! issued to, or a client linked to the token's resource server; everyone
//! else is told `active: false`, and too many of those answers are 429.

use gatehouse_server::clients::ClientSpec;
use serde_json::Value;

use crate::{
    scopes::api,
    support::{introspect, TestApp, TestClient},
};

async fn service(app: &TestApp, name: &str, scopes: &[&str]) -> TestClient {
    app.create_client(ClientSpec {
        name: name.into(),
        grant_types: vec!["client_credentials".into()],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..ClientSpec::default()
    })
    .await
}

async fn access_token(app: &TestApp, c: &TestClient, resource: &str, scope: &str) -> String {
    let r = app
        .token(
            c,
            &[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", scope),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

async fn link(app: &TestApp, audience: &str, client: &TestClient) {
    let mut r = app.state.store.resource(audience).await.unwrap().unwrap();
    r.clients.push(client.id.clone().into());
    app.state.store.update_resource(&r).await.unwrap();
    app.state.registry.refresh().await.unwrap();
}

async fn only_entitled_callers_learn_about_a_token(app: &TestApp) {
    api(app, "https://orders.example", &["orders:read"]).await;
    api(app, "https://billing.example", &["billing:read"]).await;
    let owner = service(app, "owner", &["orders:read", "billing:read"]).await;
    let orders_api = service(app, "orders-api", &[]).await;
    let billing_api = service(app, "billing-api", &[]).await;
    let token = access_token(app, &owner, "https://orders.example", "orders:read").await;

    // The client it was issued to.
    let i = introspect(app, &owner, &token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], owner.id);

    // Another client, not linked to the token's API: nothing at all.
    let i = introspect(app, &orders_api, &token).await;
    assert_eq!(i, serde_json::json!({ "active": false }));

    // Linked to the API: it may. Linked to another API: it may not.
    link(app, "https://orders.example", &orders_api).await;
    link(app, "https://billing.example", &billing_api).await;
    let i = introspect(app, &orders_api, &token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["aud"], "https://orders.example");
    assert_eq!(i["scope"], "orders:read");
    let i = introspect(app, &billing_api, &token).await;
    assert_eq!(i, serde_json::json!({ "active": false }));

    // A token for Gatehouse itself: only its own client.
    let own = app
        .token(&owner, &[("grant_type", "client_credentials")])
        .await
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(introspect(app, &owner, &own).await["active"], true);
    assert_eq!(introspect(app, &orders_api, &own).await["active"], false);

    // Refresh tokens: only their own client, linked or not.
    let web = app.web_client().await;
    let (code, verifier) = app.code(&web, "openid offline_access", "").await;
    let t = app.redeem(&web, &code, &verifier).await;
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(app, &web, rt).await["active"], true);
    assert_eq!(introspect(app, &orders_api, rt).await["active"], false);
}

async fn status_of(app: &TestApp, c: &TestClient, token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/introspect"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn inactive_answers_are_capped_per_client(app: &TestApp) {
    api(app, "https://orders.example", &["orders:read"]).await;
    let prober = service(app, "prober", &["orders:read"]).await;
    let other = service(app, "other", &[]).await;
    let mine = access_token(app, &prober, "https://orders.example", "orders:read").await;
    for n in 0..600 {
        let r = status_of(app, &prober, &format!("guess-{n}")).await;
        assert_eq!(r.status(), 200, "answer {n}");
    }
    // The 601st guess in the minute, and even a real token, get 429.
    let r = status_of(app, &prober, "guess-600").await;
    assert_eq!(r.status(), 429);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(status_of(app, &prober, &mine).await.status(), 429);
    // Another client is not affected.
    assert_eq!(status_of(app, &other, "guess").await.status(), 200);
    // A minute later the prober may ask again.
    app.clock.advance(61);
    let r = status_of(app, &prober, &mine).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
}

crate::both_backends!(
    only_entitled_callers_learn_about_a_token,
    inactive_answers_are_capped_per_client,
);
