//! Every answer of the endpoints that hand out or describe tokens and
//! credentials carries `Cache-Control: no-store` (RFC 6749 5.1, RFC 7662
//! 2.2, RFC 7591 3.2.1, OIDC Core 5.3.2), and the token endpoint's also
//! `Pragma: no-cache`: success, OAuth error, 405 and the answers made
//! before the route runs alike.

use gatehouse_server::clients::ClientSpec;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::support::TestApp;

#[track_caller]
fn assert_no_store(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status(), status, "{what}");
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{what}"
    );
}

#[track_caller]
fn assert_pragma(r: &Response, what: &str) {
    assert_eq!(
        r.headers().get("pragma").map(|v| v.to_str().unwrap()),
        Some("no-cache"),
        "{what}"
    );
}

async fn every_answer_of_the_credential_routes_is_no_store(app: &TestApp) {
    let http = &app.http;
    let send = |method: Method, path: &str| http.request(method, app.url(path));

    // /token: 200, 400, 405, each also with Pragma.
    let svc = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            ..ClientSpec::default()
        })
        .await;
    let r = app
        .token(&svc, &[("grant_type", "client_credentials")])
        .await;
    assert_no_store(&r, 200, "token 200");
    assert_pragma(&r, "token 200");
    let cc_token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.token(&svc, &[("scope", "openid")]).await;
    assert_no_store(&r, 400, "token 400");
    assert_pragma(&r, "token 400");
    let r = send(Method::GET, "/token").send().await.unwrap();
    assert_no_store(&r, 405, "token 405");
    assert_pragma(&r, "token 405");

    // /userinfo: 200, 401, 403 (a token without openid), 405.
    let web = app.web_client().await;
    let (code, verifier) = app.code(&web, "openid email", "").await;
    let tokens = app.redeem(&web, &code, &verifier).await;
    let user_token = tokens["access_token"].as_str().unwrap();
    let r = send(Method::GET, "/userinfo")
        .bearer_auth(user_token)
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 200, "userinfo 200");
    let r = send(Method::GET, "/userinfo")
        .bearer_auth("nonsense")
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 401, "userinfo 401");
    let r = send(Method::GET, "/userinfo")
        .bearer_auth(&cc_token)
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 403, "userinfo 403");
    let r = send(Method::DELETE, "/userinfo").send().await.unwrap();
    assert_no_store(&r, 405, "userinfo 405");

    // /introspect and /revoke: 200, 401, 405.
    for path in ["/introspect", "/revoke"] {
        let r = send(Method::POST, path)
            .basic_auth(&svc.id, svc.secret.as_deref())
            .form(&[("token", cc_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_no_store(&r, 200, &format!("{path} 200"));
        let r = send(Method::POST, path)
            .form(&[("token", cc_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_no_store(&r, 401, &format!("{path} 401"));
        let r = send(Method::GET, path).send().await.unwrap();
        assert_no_store(&r, 405, &format!("{path} 405"));
    }

    // /register: 201, 401, 405.
    let iat = app.initial_access_token(None).await;
    let meta = json!({
        "client_name": "Dyn App",
        "redirect_uris": ["https://dyn.example/cb"],
    });
    let r = send(Method::POST, "/register")
        .bearer_auth(&iat)
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 201, "register 201");
    let registered: Value = r.json().await.unwrap();
    let r = send(Method::POST, "/register")
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 401, "register 401");
    let r = send(Method::GET, "/register").send().await.unwrap();
    assert_no_store(&r, 405, "register 405");

    // /register/{id}: GET 200, PUT 200, 401, 405, DELETE 204.
    let id = registered["client_id"].as_str().unwrap();
    let rat = registered["registration_access_token"].as_str().unwrap();
    let path = format!("/register/{id}");
    let r = send(Method::GET, &path)
        .bearer_auth(rat)
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 200, "register/{id} GET");
    let r = send(Method::PUT, &path)
        .bearer_auth(rat)
        .json(&json!({ "client_id": id, "client_name": "Renamed", "redirect_uris": ["https://dyn.example/cb"] }))
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 200, "register/{id} PUT");
    let r = send(Method::GET, &path)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 401, "register/{id} 401");
    let r = send(Method::POST, &path)
        .bearer_auth(rat)
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 405, "register/{id} 405");
    let r = send(Method::DELETE, &path)
        .bearer_auth(rat)
        .send()
        .await
        .unwrap();
    assert_no_store(&r, 204, "register/{id} DELETE");

    // Public paths stay cacheable.
    let r = send(Method::GET, "/jwks").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
}

crate::both_backends!(every_answer_of_the_credential_routes_is_no_store);
