//! API scopes: opt-in per client (an empty list grants none), limited by
//! the registration policy for registered clients, and tied to the one
//! resource server a token is for (RFC 8707 2).

use gatehouse_server::clients::ClientSpec;
use gatehouse_server::oauth::GrantType;
use gatehouse_storage::model::{RegistrationPolicy, ResourceServer};
use serde_json::{json, Value};

use crate::support::{introspect, pkce, query_param, TestApp, TestClient};

/// Registers a JWE resource server defining `scopes`.
pub async fn api(app: &TestApp, audience: &str, scopes: &[&str]) {
    let kp = josekit::jwe::ECDH_ES_A256KW
        .generate_ec_key_pair(josekit::jwk::alg::ec::EcCurve::P256)
        .unwrap();
    let mut jwk: Value = serde_json::from_str(&kp.to_jwk_public_key().to_string()).unwrap();
    jwk["alg"] = "ECDH-ES+A256KW".into();
    jwk["kid"] = "api".into();
    app.state
        .store
        .create_resource(&ResourceServer {
            audience: audience.into(),
            encryption_jwk: jwk.to_string(),
            signing_alg: "ES256".parse().unwrap(),
            token_format: "jwe".parse().unwrap(),
            access_token_lifetime: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: 0,
            clients: Vec::new(),
            allow_exchange_from: Vec::new(),
        })
        .await
        .unwrap();
}

/// A client_credentials client allowed `scopes`.
async fn service(app: &TestApp, scopes: &[&str]) -> TestClient {
    app.create_client(ClientSpec {
        name: "svc".into(),
        grant_types: vec!["client_credentials".into()],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..ClientSpec::default()
    })
    .await
}

/// A code-flow client allowed `scopes`.
async fn web(app: &TestApp, scopes: &[&str]) -> TestClient {
    app.create_client(ClientSpec {
        name: "web".into(),
        redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..ClientSpec::default()
    })
    .await
}

/// A client_credentials request; status and body.
async fn cc(app: &TestApp, c: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let mut f = vec![("grant_type", "client_credentials")];
    f.extend_from_slice(form);
    let r = app.token(c, &f).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The error an authorization request is sent back with (no login needed:
/// scope checks come first).
async fn authorize_error(app: &TestApp, c: &TestClient, scope: &str, extra: &str) -> String {
    let (_, challenge) = pkce();
    let r = app
        .http
        .get(app.authorize_url(c, scope, &challenge, extra))
        .send()
        .await
        .unwrap();
    let loc = if r.status() == 303 {
        r.headers()["location"].to_str().unwrap().to_owned()
    } else {
        // A self-registered client: the error is shown on a page whose
        // "Continue" link carries it (RFC 9700 4.11.2), not redirected.
        assert_eq!(r.status(), 400);
        let page = r.text().await.unwrap();
        let href = page
            .split("id=\"continue\" href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no continue link in {page}"));
        href.replace("&#x2F;", "/").replace("&amp;", "&")
    };
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
    query_param(&loc, "error").unwrap_or_else(|| panic!("no error in {loc}"))
}

async fn empty_scope_list_grants_no_api_scope(app: &TestApp) {
    api(app, "https://orders.example", &["orders:read"]).await;
    // Asking for nothing is refused too: a grant of nothing would need no
    // consent, so a code could be sent without the user ever agreeing.
    let plain = app.web_client().await;
    assert_eq!(authorize_error(app, &plain, "", "").await, "invalid_scope");
    assert_eq!(
        authorize_error(app, &plain, "", "&resource=https%3A%2F%2Forders.example").await,
        "invalid_scope"
    );
    let none = service(app, &[]).await;
    let (status, body) = cc(
        app,
        &none,
        &[
            ("resource", "https://orders.example"),
            ("scope", "orders:read"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("orders:read"));
    // Without scope it may still get a token for the API, with no scope.
    let (status, body) = cc(app, &none, &[("resource", "https://orders.example")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "");

    let allowed = service(app, &["orders:read"]).await;
    let (status, body) = cc(
        app,
        &allowed,
        &[
            ("resource", "https://orders.example"),
            ("scope", "orders:read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "orders:read");

    // The same rule at the authorization endpoint; OIDC scopes need no list.
    let w = web(app, &[]).await;
    assert_eq!(
        authorize_error(
            app,
            &w,
            "openid orders:read",
            "&resource=https%3A%2F%2Forders.example"
        )
        .await,
        "invalid_scope"
    );
    let (code, verifier) = app.code(&w, "openid profile", "").await;
    let t = app.redeem(&w, &code, &verifier).await;
    assert_eq!(t["scope"], "openid profile");
}

async fn api_scopes_are_tied_to_the_resource(app: &TestApp) {
    api(app, "https://a.example", &["a:read", "shared"]).await;
    api(app, "https://b.example", &["b:read", "shared"]).await;
    let w = web(app, &["a:read", "b:read", "shared"]).await;
    // A scope of API A in a request for API B.
    assert_eq!(
        authorize_error(
            app,
            &w,
            "openid a:read",
            "&resource=https%3A%2F%2Fb.example"
        )
        .await,
        "invalid_scope"
    );
    // Without resource: scopes of two APIs, or one defined by both.
    assert_eq!(
        authorize_error(app, &w, "openid a:read b:read", "").await,
        "invalid_scope"
    );
    assert_eq!(
        authorize_error(app, &w, "openid shared", "").await,
        "invalid_scope"
    );
    // Without resource, the one API that defines them is the audience.
    let (code, verifier) = app.code(&w, "openid a:read", "").await;
    let t = app.redeem(&w, &code, &verifier).await;
    assert_eq!(t["scope"], "a:read openid");
    let i = introspect(app, &w, t["access_token"].as_str().unwrap()).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["aud"], "https://a.example");

    // client_credentials: the same rules.
    let s = service(app, &["a:read", "b:read", "shared"]).await;
    for form in [
        vec![("resource", "https://b.example"), ("scope", "a:read")],
        vec![("scope", "a:read b:read")],
        vec![("scope", "shared")],
        vec![("scope", "openid")],
    ] {
        let (status, body) = cc(app, &s, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{form:?}"
        );
    }
    let (status, body) = cc(app, &s, &[("scope", "b:read")]).await;
    assert_eq!(status, 200, "{body}");
    let i = introspect(app, &s, body["access_token"].as_str().unwrap()).await;
    assert_eq!(i["aud"], "https://b.example");
    assert_eq!(i["scope"], "b:read");
}

/// An initial access token with `policy` (`None`: the default one).
async fn initial_token(app: &TestApp, policy: Option<&RegistrationPolicy>) -> String {
    let token = gatehouse_server::secrets::random_token();
    let now = app.state.now();
    app.state
        .store
        .create_registration_token_with_policy(
            &app.state.hasher.hash(&token),
            None,
            None,
            policy,
            now,
        )
        .await
        .unwrap();
    token
}

/// Sends registration metadata with a bearer token; status and body.
async fn send(req: reqwest::RequestBuilder, token: &str, meta: Value) -> (u16, Value) {
    let r = req.bearer_auth(token).json(&meta).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn registration_gets_only_what_its_token_allows(app: &TestApp) {
    api(
        app,
        "https://orders.example",
        &["orders:read", "orders:write"],
    )
    .await;
    let register = || app.http.post(app.url("/register"));
    let web_meta = json!({ "redirect_uris": ["https://dyn.example/cb"] });

    // Without a policy: code flow and refresh, OIDC scopes only.
    let plain = initial_token(app, None).await;
    for extra in [
        json!({ "grant_types": ["client_credentials"] }),
        json!({ "scope": "openid orders:read" }),
    ] {
        let mut meta = web_meta.clone();
        meta.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, body) = send(register(), &plain, meta).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_client_metadata");
    }
    let (status, body) = send(register(), &plain, web_meta.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(body.get("scope").is_none(), "{body}");
    let c = TestClient {
        id: body["client_id"].as_str().unwrap().into(),
        secret: body["client_secret"].as_str().map(str::to_owned),
        redirect_uri: "https://dyn.example/cb".into(),
    };
    assert_eq!(
        authorize_error(app, &c, "openid orders:read", "").await,
        "invalid_scope"
    );

    // With a policy: what it names, and an update cannot go beyond it.
    let policy = RegistrationPolicy {
        grant_types: vec![GrantType::ClientCredentials],
        scopes: vec!["orders:read".into()],
    };
    let svc = initial_token(app, Some(&policy)).await;
    let (status, body) = send(
        register(),
        &svc,
        json!({ "grant_types": ["client_credentials"], "client_name": "svc" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["scope"], "orders:read",
        "an omitted scope is the policy's"
    );
    let id = body["client_id"].as_str().unwrap().to_owned();
    let rat = body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = TestClient {
        id: id.clone(),
        secret: body["client_secret"].as_str().map(str::to_owned),
        redirect_uri: String::new(),
    };
    let (status, t) = cc(app, &c, &[("scope", "orders:read")]).await;
    assert_eq!(status, 200, "{t}");
    let (status, t) = cc(app, &c, &[("scope", "orders:write")]).await;
    assert_eq!((status, t["error"].as_str()), (400, Some("invalid_scope")));

    let put = || app.http.put(app.url(&format!("/register/{id}")));
    for meta in [
        json!({ "client_id": id, "grant_types": ["client_credentials"], "scope": "orders:read orders:write" }),
        json!({ "client_id": id, "grant_types": ["client_credentials", "authorization_code"],
                "redirect_uris": ["https://dyn.example/cb"], "scope": "orders:read" }),
    ] {
        let (status, body) = send(put(), &rat, meta).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_client_metadata");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("not allowed"));
    }
    let (status, body) = send(
        put(),
        &rat,
        json!({ "client_id": id, "grant_types": ["client_credentials"], "client_name": "svc 2" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_name"], "svc 2");
    assert_eq!(body["scope"], "orders:read");
}

crate::both_backends!(
    empty_scope_list_grants_no_api_scope,
    api_scopes_are_tied_to_the_resource,
    registration_gets_only_what_its_token_allows,
);
