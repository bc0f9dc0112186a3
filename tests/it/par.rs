//! Pushed authorization requests (RFC 9126): the code flow through `/par`,
//! and every way a `request_uri` must be refused at `/authorize` (used
//! twice, concurrently, by another client, expired, unknown, someone
//! else's URL), always a 400 page, never a redirect. Two instances on one
//! database: pushed at one, redeemed at the other.

use gatehouse_server::clients::ClientSpec;
use serde_json::Value;

use crate::{
    authorization_tx::refused,
    support::{pkce, query_param, TestApp, TestClient},
};

pub(crate) const URN: &str = "urn:ietf:params:oauth:request_uri:";

/// POSTs `form` to `/par` as `c` (Basic with a secret, else `client_id`
/// in the body); the status and the JSON body, after checking no-store.
pub(crate) async fn push(app: &TestApp, c: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let mut form = form.to_vec();
    let mut req = app.http.post(app.url("/par"));
    match &c.secret {
        Some(s) => req = req.basic_auth(&c.id, Some(s)),
        None => form.push(("client_id", &c.id)),
    }
    let r = req.form(&form).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store", "RFC 9126 2.2");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The parameters of an ordinary code request of `c` with `challenge`.
pub(crate) fn request<'a>(c: &'a TestClient, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("redirect_uri", &c.redirect_uri),
        ("scope", "openid email"),
        ("state", "pushed-state"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// Pushes an ordinary request of `c`; the `request_uri` and the PKCE verifier.
pub(crate) async fn pushed(app: &TestApp, c: &TestClient) -> (String, String) {
    let (verifier, challenge) = pkce();
    let (status, body) = push(app, c, &request(c, &challenge)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["expires_in"], 60, "{body}");
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with(URN), "{uri}");
    assert!(
        uri.len() >= URN.len() + 43,
        "a random part of 256 bits: {uri}"
    );
    (uri, verifier)
}

/// `/authorize` with only `client_id` and `request_uri` (and `extra`).
pub(crate) fn authorize_url(app: &TestApp, client_id: &str, uri: &str, extra: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    app.url(&format!(
        "/authorize?client_id={client_id}&request_uri={enc}{extra}"
    ))
}

/// Runs the browser part for `url` (signing dave in); the code.
async fn code_at(app: &TestApp, url: &str, c: &TestClient) -> String {
    if app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .is_none()
    {
        app.create_user("dave", "pw-dave-123456").await;
    }
    let back = app
        .authorize_in_browser(url, "dave", "pw-dave-123456")
        .await;
    assert!(back.starts_with(&c.redirect_uri), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("pushed-state"));
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.state.settings.issuer.as_str())
    );
    query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"))
}

/// Push, authorize with the request_uri, sign in, consent, code, tokens.
async fn code_flow_with_par(app: &TestApp) {
    let c = app.web_client().await;
    let (uri, verifier) = pushed(app, &c).await;
    let code = code_at(app, &authorize_url(app, &c.id, &uri, ""), &c).await;
    let tokens = app.redeem(&c, &code, &verifier).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
    assert_eq!(tokens["scope"], "email openid", "{tokens}");
}

/// A public client pushes with `none` (RFC 9126 2), identified by client_id.
async fn public_client_pushes(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "native".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/native".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    assert!(c.secret.is_none());
    let (uri, verifier) = pushed(app, &c).await;
    let code = code_at(app, &authorize_url(app, &c.id, &uri, ""), &c).await;
    let r = app.redeem_response(&c, &code, &verifier).await;
    assert_eq!(r.status(), 200);
}

/// RFC 9126 4: at /authorize every parameter beside client_id and
/// request_uri is ignored, even one that would be an error on its own.
async fn parameters_beside_request_uri_are_ignored(app: &TestApp) {
    let c = app.web_client().await;
    let (uri, verifier) = pushed(app, &c).await;
    let extra = "&state=evil&redirect_uri=https%3A%2F%2Fevil.example%2F&scope=nope%22&response_type=token&prompt=bogus&request=x";
    let code = code_at(app, &authorize_url(app, &c.id, &uri, extra), &c).await;
    app.redeem(&c, &code, &verifier).await;
}

/// The request_uri is spent at its first visit: a second one (this
/// browser or another) is a page, not a redirect.
async fn request_uri_used_twice(app: &TestApp) {
    let c = app.web_client().await;
    let (uri, _) = pushed(app, &c).await;
    let url = authorize_url(app, &c.id, &uri, "");
    let first = app.browser.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 303);
    assert!(first.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?tx="));
    let again = app.browser.get(&url).send().await.unwrap();
    refused(again, "was already used: each one can be used once").await;
    let elsewhere = app.http.get(&url).send().await.unwrap();
    refused(elsewhere, "was already used").await;
}

/// Many browsers at once with one request_uri: exactly one goes on.
async fn request_uri_redeemed_once_under_concurrency(app: &TestApp) {
    let c = app.web_client().await;
    let (uri, _) = pushed(app, &c).await;
    let url = authorize_url(app, &c.id, &uri, "");
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (http, url) = (app.http.clone(), url.clone());
            tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        11,
        "{statuses:?}"
    );
}

/// Another client's request_uri is refused and left unspent.
async fn request_uri_of_another_client(app: &TestApp) {
    let c = app.web_client().await;
    let other = app.web_client().await;
    let (uri, verifier) = pushed(app, &c).await;
    let r = app
        .http
        .get(authorize_url(app, &other.id, &uri, ""))
        .send()
        .await
        .unwrap();
    refused(
        r,
        "was made by another application than the one named by client_id",
    )
    .await;
    // Without client_id (RFC 9126 4 requires it), or an unknown one.
    let enc: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    let r = app
        .http
        .get(app.url(&format!("/authorize?request_uri={enc}")))
        .send()
        .await
        .unwrap();
    refused(r, "client_id is missing").await;
    let r = app
        .http
        .get(authorize_url(app, "nobody", &uri, ""))
        .send()
        .await
        .unwrap();
    refused(r, "is not registered").await;
    // Its own client still redeems it.
    let code = code_at(app, &authorize_url(app, &c.id, &uri, ""), &c).await;
    app.redeem(&c, &code, &verifier).await;
}

/// 60 seconds to redeem; then expired, and after housekeeping unknown.
async fn request_uri_expired(app: &TestApp) {
    let c = app.web_client().await;
    let (uri, _) = pushed(app, &c).await;
    app.clock.advance(60);
    let url = authorize_url(app, &c.id, &uri, "");
    refused(
        app.http.get(&url).send().await.unwrap(),
        "expired before it was used: it is valid for 60 seconds",
    )
    .await;
    gatehouse_server::app::housekeep(&app.state).await.unwrap();
    refused(
        app.http.get(&url).send().await.unwrap(),
        "is unknown or has expired",
    )
    .await;
}

/// Unknown, malformed and oversized request_uri values of ours.
async fn request_uri_unknown(app: &TestApp) {
    let c = app.web_client().await;
    let long = format!("{URN}{}", "a".repeat(4000));
    for uri in [
        format!("{URN}{}", gatehouse_server::secrets::random_token()),
        URN.to_owned(),
        long,
    ] {
        let r = app
            .http
            .get(authorize_url(app, &c.id, &uri, ""))
            .send()
            .await
            .unwrap();
        refused(r, "is unknown or has expired").await;
    }
}

/// A request_uri that is not ours (a client-hosted URL) is never fetched:
/// `request_uri_not_supported` at the registered redirect URI.
async fn client_hosted_request_uri_refused(app: &TestApp) {
    let c = app.web_client().await;
    let (_, challenge) = pkce();
    let url = app.authorize_url(
        &c,
        "openid",
        &challenge,
        "&request_uri=https%3A%2F%2F127.0.0.1%3A1%2Frequest.jwt",
    );
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(&c.redirect_uri), "{to}");
    assert_eq!(
        query_param(to, "error").as_deref(),
        Some("request_uri_not_supported")
    );
}

/// The sign-in after redemption may take as long as the transaction
/// lives: the pushed request's 60 seconds bind only its redemption.
async fn sign_in_may_outlast_the_pushed_request(app: &TestApp) {
    let c = app.web_client().await;
    app.create_user("dave", "pw-dave-123456").await;
    let (uri, verifier) = pushed(app, &c).await;
    let r = app
        .browser
        .get(authorize_url(app, &c.id, &uri, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    app.clock.advance(300);
    gatehouse_server::app::housekeep(&app.state).await.unwrap();
    let code = code_at(app, &app.url(&login), &c).await;
    app.redeem(&c, &code, &verifier).await;
}

/// Behind a load balancer: pushed at one instance, redeemed and signed in
/// at the other.
async fn pushed_at_one_instance_redeemed_at_another(app: &TestApp) {
    let c = app.web_client().await;
    let other = app.second_instance().await;
    let (uri, verifier) = pushed(app, &c).await;
    let code = code_at(&other, &authorize_url(&other, &c.id, &uri, ""), &c).await;
    let tokens = other.redeem(&c, &code, &verifier).await;
    assert!(tokens["access_token"].is_string());
    // Spent for both.
    refused(
        app.http
            .get(authorize_url(app, &c.id, &uri, ""))
            .send()
            .await
            .unwrap(),
        "was already used",
    )
    .await;
    other.stop().await;
}

crate::both_backends!(
    code_flow_with_par,
    public_client_pushes,
    parameters_beside_request_uri_are_ignored,
    request_uri_used_twice,
    request_uri_redeemed_once_under_concurrency,
    request_uri_of_another_client,
    request_uri_expired,
    request_uri_unknown,
    client_hosted_request_uri_refused,
    sign_in_may_outlast_the_pushed_request,
    pushed_at_one_instance_redeemed_at_another,
);
