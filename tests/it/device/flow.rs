//! The device flow end to end over plain HTTP: answers to polling,
//! expiry, denial, concurrent and repeated polls, other clients, refresh
//! tokens, DPoP, the user code's spelling, the confirmation always asked,
//! a second factor, a forced logout, discovery.

use serde_json::Value;

use crate::{
    dpop::{token_with, DpopKey},
    step_up::{claims, enrol_totp},
    support::{hidden, userinfo_status, TestApp, TestClient},
};

use super::*;

/// The whole flow: the device polls (pending) while the user signs in and
/// approves; then one poll gets the tokens, which name the user and the
/// client, and the access token works at userinfo.
async fn device_flow_happy_path(app: &TestApp) {
    let user = tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid profile email").await;

    assert_error(
        &poll_after(app, &c, &d.device_code, INTERVAL).await,
        "authorization_pending",
    );
    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;

    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "email openid profile", "{t}");
    assert!(t["expires_in"].as_i64().unwrap() > 0, "{t}");
    assert!(t.get("refresh_token").is_none(), "no offline_access: {t}");
    let id = verified(app, t["id_token"].as_str().unwrap()).await;
    assert_eq!(id["sub"], user.id.as_str());
    assert_eq!(id["aud"], c.id.as_str());
    assert_eq!(id["iss"], app.state.settings.issuer.as_str());
    assert_eq!(id["preferred_username"], USER);
    assert!(id.get("nonce").is_none(), "{id}");

    let access = t["access_token"].as_str().unwrap();
    let info: Value = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], user.id.as_str(), "{info}");
    assert_eq!(info["email"], format!("{USER}@example.com"), "{info}");
}

/// A confidential client authenticates at both endpoints; without its
/// secret (or with a wrong one) it is `invalid_client`.
async fn a_confidential_client_authenticates(app: &TestApp) {
    tess(app).await;
    let c = device_client(app, "client_secret_basic", &[DEVICE_GRANT]).await;
    let d = device_authorization(app, &c, "openid").await;
    let wrong = TestClient {
        secret: Some("not-the-secret".into()),
        ..c.clone()
    };
    let (status, body) = device_authorization_answer(app, &wrong, &[]).await;
    assert_eq!((status, &body["error"]), (401, &"invalid_client".into()));
    let bare = TestClient {
        secret: None,
        ..c.clone()
    };
    let (status, body) = device_authorization_answer(app, &bare, &[]).await;
    assert_eq!((status, &body["error"]), (401, &"invalid_client".into()));

    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;
    app.clock.advance(INTERVAL);
    let (status, body) = poll(app, &bare, &d.device_code).await;
    assert_eq!((status, &body["error"]), (401, &"invalid_client".into()));
    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    assert!(t["id_token"].is_string());
}

/// RFC 8628 3.5: polling faster than the interval is `slow_down`, and the
/// interval grows by 5 s for every later poll.
async fn polling_too_fast_slows_the_device_down(app: &TestApp) {
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    let dc = &d.device_code;
    assert_error(
        &poll_after(app, &c, dc, INTERVAL).await,
        "authorization_pending",
    );
    assert_error(&poll(app, &c, dc).await, "slow_down");
    // The interval is now 10 s: 10 s later the device may poll again ...
    assert_error(
        &poll_after(app, &c, dc, INTERVAL + 5).await,
        "authorization_pending",
    );
    // ... but not after the old 5 s (now 15 s) ...
    assert_error(&poll_after(app, &c, dc, INTERVAL).await, "slow_down");
    // ... and again after 15.
    assert_error(
        &poll_after(app, &c, dc, INTERVAL + 10).await,
        "authorization_pending",
    );
}

/// After `expires_in` the device code is `expired_token`, and its user
/// code is refused at `/device` like an unknown one.
async fn an_expired_code_is_expired_token(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    assert_error(
        &poll_after(app, &c, &d.device_code, INTERVAL).await,
        "authorization_pending",
    );
    app.clock.advance(EXPIRES_IN + 1);
    assert_error(&poll(app, &c, &d.device_code).await, "expired_token");

    let expired = enter_code(app, &app.browser, &d.user_code).await;
    assert_eq!(expired.status(), 400);
    let expired = expired.text().await.unwrap();
    let unknown = enter_code(app, &app.browser, "BBBB-BBBB").await;
    assert_eq!(unknown.status(), 400);
    let unknown = unknown.text().await.unwrap();
    for html in [&expired, &unknown] {
        assert!(
            html.contains("action=\"/device\""),
            "the form again: {html}"
        );
        assert!(html.contains("id=\"device-continue\""), "{html}");
    }
    // Nothing tells an expired code from one that never was.
    assert_eq!(
        alert(&expired),
        alert(&unknown),
        "expired and unknown codes read the same"
    );
}

/// The text of the first `role="alert"` element of a page.
fn alert(html: &str) -> String {
    let at = html
        .find("role=\"alert\"")
        .unwrap_or_else(|| panic!("no message on the page: {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest.find("</").unwrap();
    rest[start..end].trim().to_owned()
}

/// The device code expires while the user is on the confirmation page
/// (her transaction still alive): her approval is not recorded, and the
/// device hears `expired_token`.
async fn an_approval_after_expiry_approves_nothing(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    app.clock.advance(EXPIRES_IN / 2);
    let page = to_confirmation(app, &app.browser, &d.user_code, TESS).await;
    app.clock.advance(EXPIRES_IN / 2 + 1);
    let r = decide(app, &app.browser, &page, "allow").await;
    let (status, html) = finish_page(app, &app.browser, r).await;
    assert!(
        !html.contains("id=\"device-approved\""),
        "approved after expiry: {status} {html}"
    );
    assert_error(&poll(app, &c, &d.device_code).await, "expired_token");
}

/// Signing out of the browser that approved does not sign the device out
/// (the confirmation page says so): its tokens are not tied to that
/// browser session.
async fn signing_out_of_the_browser_keeps_the_device(app: &TestApp) {
    tess(app).await;
    let c = device_client(app, "none", &[DEVICE_GRANT, "refresh_token"]).await;
    let t = approved_tokens(app, &c, "openid offline_access").await;
    let html = app
        .browser
        .get(app.url("/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = app
        .browser
        .post(app.url("/logout"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("return", hidden(&html, "return").as_str()),
            ("decision", "logout"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status() == 303,
        "{}",
        r.status()
    );
    let account = app.browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303, "signed out of the browser");

    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(app, access).await, 200);
    let r = app.refresh(&c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
}

/// The user denies: the device hears `access_denied`.
async fn a_denied_request_is_access_denied(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    approve_over_http(app, &d.user_code, USER, PASSWORD, "deny").await;
    assert_error(
        &poll_after(app, &c, &d.device_code, INTERVAL).await,
        "access_denied",
    );
}

/// Eight concurrent polls of an approved code: exactly one gets tokens;
/// a later poll is `invalid_grant`.
async fn concurrent_polls_get_one_token_answer(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;
    app.clock.advance(INTERVAL);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url) = (app.http.clone(), app.url("/token"));
            let form = [
                ("grant_type", DEVICE_GRANT.to_owned()),
                ("device_code", d.device_code.clone()),
                ("client_id", c.id.clone()),
            ];
            tokio::spawn(async move {
                let r = http.post(url).form(&form).send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let ok: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(ok.len(), 1, "exactly one success: {answers:?}");
    let access = ok[0].1["access_token"].as_str().unwrap();
    // The device's own hurried polls did not cost it the tokens it got.
    assert_eq!(userinfo_status(app, access).await, 200, "{answers:?}");
    // The others raced it (or came within seconds of its redemption):
    // told to slow down, never a replay.
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(
            (*status, body["error"].as_str()),
            (400, Some("slow_down")),
            "{body}"
        );
    }
    assert_error(
        &poll_after(app, &c, &d.device_code, 60).await,
        "invalid_grant",
    );
}

/// A poll sooner than the interval is `slow_down` (RFC 8628 3.5), also
/// right after the poll that got the tokens: it is the device hurrying (a
/// retry, a second thread), not a replay that revokes what the device
/// just got. (It was a replay once: then the outcome of parallel polls
/// depended on timing, those that read the device code after the
/// winner's redemption revoking the winner's tokens.)
async fn a_hurried_poll_after_the_success_is_slow_down(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;
    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    // The same second: sooner than the interval.
    let hurried = poll(app, &c, &d.device_code).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo_status(app, access).await,
        200,
        "the device's tokens survive its own hurried poll ({hurried:?})"
    );
    assert_error(&hurried, "slow_down");
}

/// One success per device code, polled one after the other. A device
/// code presented again after its success is `invalid_grant` and, as a
/// replayed code (RFC 6749 10.5; `grants/device_code.rs`), revokes what it
/// produced: the first redeemer may have been a thief.
async fn a_second_poll_after_success_is_invalid_grant(app: &TestApp) {
    tess(app).await;
    let c = device_client(app, "none", &[DEVICE_GRANT, "refresh_token"]).await;
    let d = device_authorization(app, &c, "openid offline_access").await;
    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;
    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(app, access).await, 200);
    assert_error(
        &poll_after(app, &c, &d.device_code, INTERVAL).await,
        "invalid_grant",
    );
    assert_eq!(userinfo_status(app, access).await, 401, "revoked");
    let refreshed = app.refresh(&c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 400, "the refresh token is revoked too");
}

/// Another client presenting the device code gets `invalid_grant`; the
/// client it was issued to still gets its tokens.
async fn another_clients_poll_is_invalid_grant(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let thief = tv(app).await;
    let confidential = device_client(app, "client_secret_basic", &[DEVICE_GRANT]).await;
    let d = device_authorization(app, &c, "openid").await;
    assert_error(
        &poll_after(app, &thief, &d.device_code, INTERVAL).await,
        "invalid_grant",
    );
    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;
    assert_error(
        &poll_after(app, &thief, &d.device_code, INTERVAL).await,
        "invalid_grant",
    );
    assert_error(
        &poll_after(app, &confidential, &d.device_code, INTERVAL).await,
        "invalid_grant",
    );
    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["aud"],
        c.id.as_str()
    );
}

/// A refresh token only with `offline_access`, and only for a client
/// registered for refresh_token; it refreshes.
async fn refresh_token_only_with_offline_access(app: &TestApp) {
    tess(app).await;
    let c = device_client(app, "none", &[DEVICE_GRANT, "refresh_token"]).await;
    let without = device_client(app, "none", &[DEVICE_GRANT]).await;

    let t = approved_tokens(app, &c, "openid").await;
    assert!(t.get("refresh_token").is_none(), "{t}");

    let t = approved_tokens(app, &c, "openid offline_access").await;
    let refresh = t["refresh_token"].as_str().expect("a refresh token");
    let r = app.refresh(&c, refresh).await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert!(again["access_token"].is_string(), "{again}");

    let t = approved_tokens(app, &without, "openid offline_access").await;
    assert!(
        t.get("refresh_token").is_none(),
        "not registered for refresh_token: {t}"
    );
}

/// A client not registered for the device grant is `unauthorized_client`
/// at `/device_authorization`, and at `/token`; scopes and resources it
/// may not have are `invalid_scope` and `invalid_target`; all no-store.
async fn refusals_at_device_authorization(app: &TestApp) {
    let web = app.web_client().await;
    let r = device_authorization_response(app, &web, &[("scope", "openid")]).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    assert_error(
        &poll(app, &web, "not-a-device-code").await,
        "unauthorized_client",
    );

    let c = tv(app).await;
    let (status, body) =
        device_authorization_answer(app, &c, &[("scope", "openid no-such-scope")]).await;
    assert_eq!((status, &body["error"]), (400, &"invalid_scope".into()));
    let (status, body) = device_authorization_answer(
        app,
        &c,
        &[("scope", "openid"), ("resource", "https://unknown.example")],
    )
    .await;
    assert_eq!((status, &body["error"]), (400, &"invalid_target".into()));
    let (status, body) =
        device_authorization_answer(app, &c, &[("resource", "not an absolute uri")]).await;
    assert_eq!(status, 400, "{body}");

    let unknown = TestClient {
        id: "no-such-client".into(),
        secret: None,
        redirect_uri: String::new(),
    };
    let (status, body) = device_authorization_answer(app, &unknown, &[]).await;
    assert_eq!((status, &body["error"]), (401, &"invalid_client".into()));

    // An unknown device code; none at all.
    assert_error(&poll(app, &c, "not-a-device-code").await, "invalid_grant");
    let r = app
        .token(&c, &[("grant_type", DEVICE_GRANT), ("client_id", &c.id)])
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
}

/// What a user typed comes back escaped, prefilled or refused.
async fn typed_codes_are_escaped(app: &TestApp) {
    let typed = "\"><script>alert(1)</script>";
    let enc: String = url::form_urlencoded::byte_serialize(typed.as_bytes()).collect();
    let r = app
        .browser
        .get(app.url(&format!("/device?user_code={enc}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(
        html.contains("&lt;script&gt;"),
        "prefilled, escaped: {html}"
    );
    let r = enter_code(app, &app.browser, typed).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
}

/// With DPoP proofs on its polls (RFC 9449), the device gets DPoP-bound
/// tokens, and a public client's refresh token works only with a proof of
/// the same key, as in the code flow.
async fn dpop_binds_the_device_tokens(app: &TestApp) {
    tess(app).await;
    let c = device_client(app, "none", &[DEVICE_GRANT, "refresh_token"]).await;
    let d = device_authorization(app, &c, "openid offline_access").await;
    let key = DpopKey::new();
    let form = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", d.device_code.as_str()),
        ("client_id", c.id.as_str()),
    ];
    app.clock.advance(INTERVAL);
    let r = token_with(app, &c, &form, &[&key.token_proof(app)]).await;
    assert_error(
        &(r.status().as_u16(), r.json().await.unwrap()),
        "authorization_pending",
    );
    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;
    app.clock.advance(INTERVAL);
    let r = token_with(app, &c, &form, &[&key.token_proof(app)]).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "DPoP", "{t}");
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo_status(app, access).await,
        401,
        "not as a bearer token"
    );
    let info = app
        .http
        .get(app.url("/userinfo"))
        .header("authorization", format!("DPoP {access}"))
        .header("DPoP", key.userinfo_proof(app, "GET", access))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);

    let rt = t["refresh_token"].as_str().unwrap();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", c.id.as_str()),
    ];
    let r = token_with(app, &c, &refresh, &[]).await;
    assert_eq!(r.status(), 400, "without a proof");
    let r = token_with(app, &c, &refresh, &[&DpopKey::new().token_proof(app)]).await;
    assert_eq!(r.status(), 400, "with another key");
    let r = token_with(app, &c, &refresh, &[&key.token_proof(app)]).await;
    assert_eq!(r.status(), 200, "with the key");
}

/// The user code is read without regard to case, dashes and spaces:
/// each spelling leads to the sign-in for the same request.
async fn user_codes_are_read_loosely(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    let plain: String = d.user_code.chars().filter(|c| *c != '-').collect();
    let lower = d.user_code.to_lowercase();
    let spaced = format!(" {} {} ", &lower[..4], &lower[5..]);
    for typed in [lower.clone(), plain.clone(), plain.to_lowercase(), spaced] {
        let r = enter_code(app, &new_browser(), &typed).await;
        let to = location(app, &r);
        assert!(
            path_of(&to).starts_with("/login?tx="),
            "{typed:?} is the code: {to}"
        );
    }
    // Approved with one of those spellings, the device gets its tokens.
    let browser = new_browser();
    approve_as(app, &browser, &plain.to_lowercase(), TESS, "allow").await;
    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
}

/// Opening `verification_uri_complete` fills the form in and approves
/// nothing, even for a signed-in user who approved this client before:
/// the device confirmation is asked every time (RFC 8628 5.4).
async fn the_prefilled_link_still_asks(app: &TestApp) {
    tess(app).await;
    let c = tv(app).await;
    // A first device approved: the user is signed in and has consented.
    let first = device_authorization(app, &c, "openid").await;
    approve_over_http(app, &first.user_code, USER, PASSWORD, "allow").await;

    let d = device_authorization(app, &c, "openid").await;
    let r = app
        .browser
        .get(&d.verification_uri_complete)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"user_code\""), "{html}");
    assert!(
        html.contains(&format!("value=\"{}\"", d.user_code)),
        "prefilled: {html}"
    );
    assert!(html.contains("id=\"device-continue\""), "{html}");
    assert_error(
        &poll_after(app, &c, &d.device_code, INTERVAL).await,
        "authorization_pending",
    );

    // Submitting it goes to the confirmation, not past it.
    let r = app
        .browser
        .post(app.url("/device"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("user_code", d.user_code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let to = location(app, &r);
    assert!(
        path_of(&to).starts_with("/consent?tx="),
        "signed in: straight to the confirmation: {to}"
    );
    let consent = app.browser.get(&to).send().await.unwrap();
    assert_eq!(consent.status(), 200);
    assert_device_confirmation(&consent.text().await.unwrap(), &d.user_code);
    assert_error(
        &poll_after(app, &c, &d.device_code, INTERVAL).await,
        "authorization_pending",
    );
    let (status, html) = follow_through(app, &app.browser, to, &d.user_code, TESS, "allow").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"device-approved\""), "{html}");
    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
}

/// Two people enter the same user code and both reach the confirmation:
/// the first to answer decides; the second cannot approve it again for
/// herself, and the code cannot be entered anew. The device gets the
/// first user's tokens.
async fn a_user_code_is_confirmed_once(app: &TestApp) {
    let user = tess(app).await;
    app.create_user("mallory", "pw-mallory-123456").await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    let (hers, his) = (new_browser(), new_browser());
    let tess_page = to_confirmation(app, &hers, &d.user_code, TESS).await;
    let mallory_page = to_confirmation(
        app,
        &his,
        &d.user_code,
        User {
            username: "mallory",
            password: "pw-mallory-123456",
            totp: None,
        },
    )
    .await;

    let r = decide(app, &hers, &tess_page, "allow").await;
    let (status, html) = finish_page(app, &hers, r).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"device-approved\""), "{html}");

    let r = decide(app, &his, &mallory_page, "allow").await;
    let (status, html) = finish_page(app, &his, r).await;
    assert!(
        !html.contains("id=\"device-approved\""),
        "a second approval of a decided code: {status} {html}"
    );
    let again = enter_code(app, &new_browser(), &d.user_code).await;
    assert_eq!(again.status(), 400, "a decided code is spent");

    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["sub"],
        user.id.as_str()
    );
}

/// Follows the redirects of `r` within the app; the last page's status
/// and HTML.
async fn finish_page(
    app: &TestApp,
    browser: &reqwest::Client,
    mut r: reqwest::Response,
) -> (u16, String) {
    for _ in 0..6 {
        if r.status() != 303 {
            let status = r.status().as_u16();
            return (status, r.text().await.unwrap());
        }
        let next = location(app, &r);
        assert!(next.starts_with(&app.base), "left Gatehouse for {next}");
        r = browser.get(&next).send().await.unwrap();
    }
    panic!("more than six redirects");
}

/// A user with an authenticator app gives her second factor before the
/// confirmation, as in the code flow; the ID token says so.
async fn a_second_factor_is_asked_as_in_the_code_flow(app: &TestApp) {
    let u = tess(app).await;
    let totp = enrol_totp(app, &u).await;
    let c = tv(app).await;
    let d = device_authorization(app, &c, "openid").await;
    let browser = new_browser();
    let user = User {
        username: USER,
        password: PASSWORD,
        totp: Some(&totp),
    };
    // Without the factor, the sign-in alone does not reach the confirmation.
    let r = enter_code(app, &browser, &d.user_code).await;
    let login = location(app, &r);
    let html = browser
        .get(&login)
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
            ("username", USER),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let mut next = location(app, &r);
    for _ in 0..4 {
        if path_of(&next).starts_with("/login/second-factor") {
            break;
        }
        let r = browser.get(&next).send().await.unwrap();
        next = location(app, &r);
    }
    assert!(
        path_of(&next).starts_with("/login/second-factor?tx="),
        "{next}"
    );
    let consent = app.url(&format!("/consent?tx={}", hidden(&html, "tx")));
    let early = browser.get(&consent).send().await.unwrap();
    assert_ne!(early.status(), 200, "no confirmation before the factor");
    assert_error(
        &poll_after(app, &c, &d.device_code, INTERVAL).await,
        "authorization_pending",
    );

    let (status, html) = follow_through(app, &browser, next, &d.user_code, user, "allow").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"device-approved\""), "{html}");
    let (status, t) = poll_after(app, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{id}");
}

/// A forced logout (`gatehouse sessions revoke`, disabling the user)
/// withdraws an approval the device has not redeemed yet (the device
/// hears `access_denied`), and revokes the tokens of one it has.
async fn a_forced_logout_reaches_the_device(app: &TestApp) {
    let user = tess(app).await;
    let c = device_client(app, "none", &[DEVICE_GRANT, "refresh_token"]).await;
    let redeemed = approved_tokens(app, &c, "openid offline_access").await;
    let d = device_authorization(app, &c, "openid offline_access").await;
    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;

    gatehouse_server::session_end::force_logout(&app.state, &user)
        .await
        .unwrap();
    assert_error(
        &poll_after(app, &c, &d.device_code, INTERVAL).await,
        "access_denied",
    );
    let access = redeemed["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(app, access).await, 401);
    let r = app
        .refresh(&c, redeemed["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 400);
}

/// Discovery names the endpoint and the grant (RFC 8628 4).
async fn discovery_names_the_device_endpoint(app: &TestApp) {
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let d: Value = app
            .http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            d["device_authorization_endpoint"],
            format!("{}/device_authorization", app.state.settings.issuer),
            "{path}"
        );
        assert!(
            d["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&DEVICE_GRANT.into()),
            "{path}: {d}"
        );
    }
}

crate::both_backends!(
    device_flow_happy_path,
    a_confidential_client_authenticates,
    polling_too_fast_slows_the_device_down,
    an_expired_code_is_expired_token,
    a_denied_request_is_access_denied,
    an_approval_after_expiry_approves_nothing,
    signing_out_of_the_browser_keeps_the_device,
    concurrent_polls_get_one_token_answer,
    a_second_poll_after_success_is_invalid_grant,
    a_hurried_poll_after_the_success_is_slow_down,
    another_clients_poll_is_invalid_grant,
    refresh_token_only_with_offline_access,
    refusals_at_device_authorization,
    typed_codes_are_escaped,
    dpop_binds_the_device_tokens,
    user_codes_are_read_loosely,
    the_prefilled_link_still_asks,
    a_user_code_is_confirmed_once,
    a_second_factor_is_asked_as_in_the_code_flow,
    a_forced_logout_reaches_the_device,
    discovery_names_the_device_endpoint,
);
