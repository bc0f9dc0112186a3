//! `max_age` (OIDC Core 3.1.2.1): a sign-in performed during this
//! authorization satisfies it, even `max_age=0` and even when the clock
//! moved on before the browser came back; nothing else does.

use crate::support::{hidden, pkce, query_param, TestApp};

/// Follows `/authorize` once with the browser; the Location it answers.
async fn step(app: &TestApp, url: &str) -> String {
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
async fn sign_in(app: &TestApp, login: &str) -> String {
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
            ("return", hidden(&html, "return").as_str()),
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
    assert!(login.starts_with("/login?"), "{login}");
    let signed_in_at = app.state.now();
    let back = sign_in(app, &login).await;
    assert!(back.starts_with("/authorize?"), "{back}");

    // The browser comes back seconds later: no second login.
    app.clock.advance(5);
    let next = step(app, &back).await;
    assert!(
        next.starts_with("/consent?"),
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
    assert!(again.starts_with("/login?"), "{again}");
    // The mark does not fit a changed request...
    let changed = back.replace("scope=openid", "scope=openid+email");
    assert_ne!(changed, back);
    assert!(step(app, &changed).await.starts_with("/login?"));
    // ...nor the same one once its window has passed.
    app.clock.advance(600);
    assert!(step(app, &back).await.starts_with("/login?"));
}

/// The mark is bound to the session it was made for: another browser,
/// signed in at the same moment, cannot use it.
async fn the_mark_is_bound_to_its_session(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let url = app.authorize_url(&c, "openid", &pkce().1, "&max_age=0");
    let login = step(app, &url).await;
    let back = sign_in(app, &login).await;

    let other = app.second_instance().await;
    let login = step(&other, &other.url(&url.replace(&app.base, ""))).await;
    let _ = sign_in(&other, &login).await;
    other.clock.advance(5);
    let next = step(&other, &back).await;
    assert!(next.starts_with("/login?"), "{next}");
    other.stop().await;
}

crate::both_backends!(
    max_age_zero_is_met_by_this_sign_in,
    the_mark_is_bound_to_its_session
);
