//! The authorization transaction: `/authorize` keeps a request that needs
//! the user server-side, bound to the browser; the code is issued once per
//! transaction; another browser's, an unknown, an expired or a finished
//! transaction is an error page (400, no redirect), never a 500.

use crate::{
    max_age::{sign_in, step},
    support::{hidden, pkce, query_param, TestApp},
};

/// A browser of its own (own cookie jar), not following redirects.
fn other_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A 400 error page without a redirect, saying `says`.
pub(crate) async fn refused(r: reqwest::Response, says: &str) {
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains(says), "{html}");
}

/// Approves on the consent page `consent` leads to; the Location after it.
async fn approve(app: &TestApp, consent: &str) -> String {
    approve_with(app, &app.browser, consent).await
}

/// Approves with `browser` on the consent page at `consent`; the Location
/// after it.
pub(crate) async fn approve_with(
    app: &TestApp,
    browser: &reqwest::Client,
    consent: &str,
) -> String {
    let html = browser
        .get(app.url(consent))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(app.url("/consent"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn a_transaction_issues_one_code(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let (verifier, challenge) = pkce();
    let login = step(app, &app.authorize_url(&c, "openid", &challenge, "")).await;
    let back = sign_in(app, &login).await;
    let consent = step(app, &back).await;
    assert!(consent.starts_with("/consent?tx="), "{consent}");
    let resume = approve(app, &consent).await;
    assert!(resume.starts_with("/authorize/continue?tx="), "{resume}");
    let done = step(app, &resume).await;
    let code = query_param(&done, "code").unwrap_or_else(|| panic!("{done}"));
    assert_eq!(
        query_param(&done, "iss").as_deref(),
        Some(app.base.as_str())
    );
    app.redeem(&c, &code, &verifier).await;

    // Replayed: every step of it is refused.
    for url in [&resume, &back, &consent, &login] {
        let r = app.browser.get(app.url(url)).send().await.unwrap();
        refused(r, "already completed").await;
    }
}

async fn another_browser_cannot_use_it(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let login = step(app, &app.authorize_url(&c, "openid", &pkce().1, "")).await;
    let stranger = other_browser();
    let r = stranger.get(app.url(&login)).send().await.unwrap();
    refused(r, "another browser").await;
    // Signed in on its own, it still cannot continue this browser's.
    let html = stranger
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = stranger
        .post(app.url("/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", login.trim_start_matches("/login?tx=")),
            ("username", "erin"),
            ("password", "pw-erin-123456"),
        ])
        .send()
        .await
        .unwrap();
    refused(r, "another browser").await;
    let resume = login.replace("/login?", "/authorize/continue?");
    let r = stranger.get(app.url(&resume)).send().await.unwrap();
    refused(r, "another browser").await;
    // Unknown ids are refused the same way, even in the right browser.
    let r = app
        .browser
        .get(app.url("/authorize/continue?tx=not-a-transaction"))
        .send()
        .await
        .unwrap();
    refused(r, "another browser").await;
    let r = app.browser.get(app.url("/consent")).send().await.unwrap();
    refused(r, "another browser").await;
}

async fn an_expired_transaction_is_refused(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let login = step(app, &app.authorize_url(&c, "openid", &pkce().1, "")).await;
    let html = app
        .browser
        .get(app.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Example App"), "{html}");
    app.clock.advance(601);
    let r = app.browser.get(app.url(&login)).send().await.unwrap();
    refused(r, "expired").await;
    let r = app
        .browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("username", "erin"),
            ("password", "pw-erin-123456"),
        ])
        .send()
        .await
        .unwrap();
    refused(r, "expired").await;
    // Housekeeping removes it.
    gatehouse_server::app::housekeep(&app.state).await.unwrap();
}

/// Two tabs, two requests, one browser: both complete.
async fn two_tabs_both_complete(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let (v1, ch1) = pkce();
    let (v2, ch2) = pkce();
    let tab1 = step(app, &app.authorize_url(&c, "openid", &ch1, "")).await;
    let tab2 = step(app, &app.authorize_url(&c, "openid", &ch2, "")).await;
    assert_ne!(tab1, tab2);
    let back = sign_in(app, &tab1).await;
    let consent = step(app, &back).await;
    let done1 = step(app, &approve(app, &consent).await).await;
    // The second tab's sign-in page is still there; signed in already, its
    // transaction goes on to the code.
    let back = sign_in(app, &tab2).await;
    let done2 = step(app, &back).await;
    let code1 = query_param(&done1, "code").unwrap_or_else(|| panic!("{done1}"));
    let code2 = query_param(&done2, "code").unwrap_or_else(|| panic!("{done2}"));
    assert_ne!(code1, code2);
    app.redeem(&c, &code1, &v1).await;
    app.redeem(&c, &code2, &v2).await;
}

/// Signed in with consent given, `/authorize` answers at once: no
/// transaction, no binding cookie.
async fn single_sign_on_needs_no_transaction(app: &TestApp) {
    let c = app.web_client().await;
    let (_, challenge) = pkce();
    app.code(&c, "openid", "").await;
    let r = app
        .browser
        .get(app.authorize_url(&c, "openid", &challenge, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("set-cookie").is_none());
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(query_param(loc, "code").is_some(), "{loc}");
}

crate::both_backends!(
    a_transaction_issues_one_code,
    another_browser_cannot_use_it,
    an_expired_transaction_is_refused,
    two_tabs_both_complete,
    single_sign_on_needs_no_transaction
);
