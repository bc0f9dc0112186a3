//! `max_age` and `prompt=login` (OIDC Core 3.1.2.1): a sign-in performed
//! during this authorization transaction satisfies them, even `max_age=0`
//! and even when the clock moved on before the browser came back; nothing
//! else does.

use crate::support::{hidden, pkce, query_param, TestApp};

/// Follows one URL with the browser; the Location it answers (303).
pub async fn step(app: &TestApp, url: &str) -> String {
    let url = if url.starts_with('/') {
        app.url(url)
    } else {
        url.to_owned()
    };
    let r = app.browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Signs in on the login page `login` leads to; the Location after it.
pub async fn sign_in(app: &TestApp, login: &str) -> String {
    let html = app
        .browser
        .get(app.url(login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn max_age_zero_is_met_by_this_sign_in(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&c, "openid", &challenge, "&max_age=0");
    let login = step(app, &url).await;
    assert!(login.starts_with("/login?tx="), "{login}");
    let signed_in_at = app.state.now();
    let back = sign_in(app, &login).await;
    assert!(back.starts_with("/authorize/continue?tx="), "{back}");

    // The browser comes back seconds later: no second login.
    app.clock.advance(5);
    let next = step(app, &back).await;
    assert!(
        next.starts_with("/consent?tx="),
        "asked to sign in again: {next}"
    );
    let done = app.authorize_in_browser(&app.url(&next), "erin", "-").await;
    let code = query_param(&done, "code").unwrap_or_else(|| panic!("{done}"));
    let t = app.redeem(&c, &code, &verifier).await;
    let claims: serde_json::Value = {
        use base64::Engine;
        let payload = t["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["auth_time"], signed_in_at);

    // A new request with max_age=0 asks again: the sign-in was for the other one.
    let again = step(app, &url).await;
    assert!(again.starts_with("/login?tx="), "{again}");
    assert_ne!(again, login);
    // The finished transaction cannot be continued again...
    let r = app.browser.get(app.url(&back)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // ...nor the new one once its ten minutes have passed.
    app.clock.advance(601);
    let r = app.browser.get(app.url(&again)).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

/// A transaction is bound to its browser: another browser, signed in at
/// the same moment on another instance, cannot continue it.
async fn the_transaction_is_bound_to_its_browser(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let url = app.authorize_url(&c, "openid", &pkce().1, "&max_age=0");
    let login = step(app, &url).await;
    let back = sign_in(app, &login).await;

    let other = app.second_instance().await;
    let login = step(&other, &other.url(&url.replace(&app.base, ""))).await;
    let _ = sign_in(&other, &login).await;
    other.clock.advance(5);
    let r = other.browser.get(other.url(&back)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // Its own browser continues it on the other instance (any instance can).
    let r = app.browser.get(other.url(&back)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let next = r.headers()["location"].to_str().unwrap();
    assert!(next.starts_with("/consent?tx="), "{next}");
    other.stop().await;
}

/// `prompt=login` with a live session: one sign-in, then on, no loop.
async fn prompt_login_completes_without_looping(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let (_, challenge) = pkce();
    let first = app.authorize_url(&c, "openid", &challenge, "");
    let done = app
        .authorize_in_browser(&first, "erin", "pw-erin-123456")
        .await;
    assert!(query_param(&done, "code").is_some(), "{done}");

    let url = app.authorize_url(&c, "openid", &challenge, "&prompt=login");
    let login = step(app, &url).await;
    assert!(login.starts_with("/login?tx="), "{login}");
    let back = sign_in(app, &login).await;
    let done = step(app, &back).await;
    assert!(query_param(&done, "code").is_some(), "{done}");
}

crate::both_backends!(
    max_age_zero_is_met_by_this_sign_in,
    the_transaction_is_bound_to_its_browser,
    prompt_login_completes_without_looping
);
