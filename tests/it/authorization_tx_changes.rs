//! An authorization transaction meets a changing world: its client's
//! registration changes while it is in flight (it is checked again at every
//! step, and ended), another request starts in the same browser (one
//! binding cookie per transaction: nothing is overwritten), another user
//! signs in after consent was given (the approval is that user's only).

use gatehouse_server::oauth::GrantType;
use std::sync::Arc;

use gatehouse_storage::model::Client;

use crate::{
    authorization_tx::{approve_with, refused},
    max_age::{sign_in, step},
    support::{hidden, pkce, query_param, TestApp},
};

/// Changes `id`'s registration, as an administrator would.
async fn change(app: &TestApp, id: &str, f: impl FnOnce(&mut Client)) {
    let mut client = app.state.store.client(id).await.unwrap().unwrap();
    f(&mut client);
    app.state.store.update_client(&client).await.unwrap();
    app.state.registry.refresh().await.unwrap();
}

/// The Location of a 303 from `url`, with `browser`.
async fn step_with(app: &TestApp, browser: &reqwest::Client, url: &str) -> String {
    let url = if url.starts_with('/') {
        app.url(url)
    } else {
        url.to_owned()
    };
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Signs `username` in with `browser` on the login page at `login`.
async fn sign_in_as(
    app: &TestApp,
    browser: &reqwest::Client,
    login: &str,
    username: &str,
    password: &str,
) -> String {
    let html = browser
        .get(app.url(login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn a_removed_redirect_uri_gets_no_code(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let login = step(app, &app.authorize_url(&c, "openid", &pkce().1, "")).await;
    assert!(login.starts_with("/login?tx="), "{login}");
    let back = sign_in(app, &login).await;
    change(app, &c.id, |client| {
        client.redirect_uris = vec!["http://127.0.0.1:9999/elsewhere".into()];
    })
    .await;
    let r = app.browser.get(app.url(&back)).send().await.unwrap();
    refused(r, "registration changed").await;
    // The transaction ended with it.
    let r = app.browser.get(app.url(&back)).send().await.unwrap();
    refused(r, "already completed").await;
}

/// Signed in, a request waits on the consent page; then the registration
/// changes (`how`): approving or continuing gets a page, never a code.
async fn refused_after(app: &TestApp, extra: &str, with_pkce: bool, how: impl FnOnce(&mut Client)) {
    let c = app.web_client().await;
    let url = if with_pkce {
        app.authorize_url(&c, "openid", &pkce().1, extra)
    } else {
        app.authorize_url(&c, "openid", "", extra)
            .replace("&code_challenge=&code_challenge_method=S256", "")
    };
    let consent = step(app, &url).await;
    assert!(consent.starts_with("/consent?tx="), "{consent}");
    change(app, &c.id, how).await;
    let resume = consent.replace("/consent?", "/authorize/continue?");
    let r = app.browser.get(app.url(&resume)).send().await.unwrap();
    refused(r, "registration changed").await;
    let r = app.browser.get(app.url(&consent)).send().await.unwrap();
    refused(r, "already completed").await;
}

async fn a_removed_grant_or_new_pkce_rule_gets_no_code(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    // Signs in once, so the next requests wait on the consent page.
    let c = app.web_client().await;
    let login = step(app, &app.authorize_url(&c, "openid", &pkce().1, "")).await;
    sign_in(app, &login).await;
    refused_after(app, "", true, |client| {
        client.grant_types = vec![GrantType::ClientCredentials];
    })
    .await;
    // A confidential client's OpenID request with a nonce may omit PKCE,
    // until the client is registered with require_pkce.
    refused_after(app, "&nonce=n1", false, |client| client.require_pkce = true).await;
    // A transaction begun at /authorize ends once the client must push.
    refused_after(app, "", true, |client| {
        client.require_pushed_authorization_requests = true;
    })
    .await;
}

async fn a_post_without_cookies_leaves_other_tabs_alone(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (verifier, challenge) = pkce();
    let tab_a = step_with(
        app,
        &browser,
        &app.authorize_url(&c, "openid", &challenge, ""),
    )
    .await;
    assert!(tab_a.starts_with("/login?tx="), "{tab_a}");
    // A cross-site form POST carries no SameSite=Lax cookie; its answer's
    // cookies land in the same browser.
    let (_, other) = pkce();
    let r = app
        .http
        .post(app.url("/authorize"))
        .form(&[
            ("client_id", c.id.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", other.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let base = url::Url::parse(&app.base).unwrap();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].contains("Max-Age=600"), "{cookies:?}");
    for sc in &cookies {
        jar.add_cookie_str(sc, &base);
    }
    // Tab A completes.
    let back = sign_in_as(app, &browser, &tab_a, "erin", "pw-erin-123456").await;
    let consent = step_with(app, &browser, &back).await;
    let resume = approve_with(app, &browser, &consent).await;
    let done = step_with(app, &browser, &resume).await;
    let code = query_param(&done, "code").unwrap_or_else(|| panic!("{done}"));
    app.redeem(&c, &code, &verifier).await;
}

async fn consent_holds_for_the_user_who_gave_it(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let bob = app.create_user("bob", "pw-bob-1234567").await;
    let c = app.web_client().await;
    // Bob consented to openid for this client before: only prompt=consent
    // makes Gatehouse ask him.
    app.state
        .store
        .save_consent(&bob.id, &c.id, &["openid".to_owned()], app.state.now())
        .await
        .unwrap();
    let login = step(
        app,
        &app.authorize_url(&c, "openid", &pkce().1, "&prompt=consent"),
    )
    .await;
    let back = sign_in(app, &login).await;
    let consent = step(app, &back).await;
    assert!(consent.starts_with("/consent?tx="), "{consent}");
    approve_with(app, &app.browser, &consent).await;
    // Bob signs in on this browser, in the same transaction.
    let back = sign_in_as(app, &app.browser, &login, "bob", "pw-bob-1234567").await;
    let next = step(app, &back).await;
    assert!(next.starts_with("/consent?tx="), "Bob is asked: {next}");
}

async fn an_empty_tx_is_no_transaction(app: &TestApp) {
    let r = app.browser.get(app.url("/login?tx=")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"password\""), "{html}");
}

crate::both_backends!(
    a_removed_redirect_uri_gets_no_code,
    a_removed_grant_or_new_pkce_rule_gets_no_code,
    a_post_without_cookies_leaves_other_tabs_alone,
    consent_holds_for_the_user_who_gave_it,
    an_empty_tx_is_no_transaction
);
