//! The device authorization grant (RFC 8628), and the helpers its tests
//! share: over plain HTTP, a device
//! asks `/device_authorization` for a device code and a user code, polls
//! `/token`, and a user enters the code at `/device` in a browser (a
//! cookie jar here), signs in and confirms. Polling too fast, expiry,
//! refusal, concurrent and repeated polls, another client's poll, refresh
//! tokens, the user code's spelling, the confirmation always asked, and
//! the throttling of wrong user codes, all with the movable clock. The
//! same in a real browser is in `device_browser.rs`.
//!
//! `flow`: the grant end to end and its answers; `limits`: throttled user
//! codes and rate-limited starts; `refused`: the security review's
//! findings; `openidconnect`: the `openidconnect` crate as the device;
//! `browser`: the same in headless Chromium.

mod browser;
mod flow;
mod limits;
mod openidconnect;
mod refused;

use gatehouse_server::clients::ClientSpec;
use serde_json::Value;
use totp_rs::TOTP;

use crate::{
    step_up::{claims, code_at},
    support::{hidden, published_jwk, TestApp, TestClient},
};

/// The grant type of RFC 8628 3.4.
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The characters of a user code (RFC 8628 6.1: no vowels, no look-alikes).
const ALPHABET: &str = "BCDFGHJKLMNPQRSTVWXZ";
/// How long a device code lives, and the polling interval it starts with.
pub(crate) const EXPIRES_IN: i64 = 600;
pub(crate) const INTERVAL: i64 = 5;
/// The user who approves devices in these tests.
pub(crate) const USER: &str = "tess";
pub(crate) const PASSWORD: &str = "pw-tess-123456";
/// Tess at the sign-in page (no second factor).
pub(crate) const TESS: User<'static> = User {
    username: USER,
    password: PASSWORD,
    totp: None,
};

/// A client registered for `grants`, authenticating with `auth_method`
/// (`none`: a public client, identified by `client_id` alone).
pub(crate) async fn device_client(app: &TestApp, auth_method: &str, grants: &[&str]) -> TestClient {
    app.create_client(ClientSpec {
        name: "Living Room TV".into(),
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        auth_method: Some(auth_method.to_owned()),
        ..ClientSpec::default()
    })
    .await
}

/// A public client with the device grant only.
pub(crate) async fn tv(app: &TestApp) -> TestClient {
    device_client(app, "none", &[DEVICE_GRANT]).await
}

/// POSTs `form` to `/device_authorization` as `c` (Basic with a secret,
/// else `client_id` in the body); the response.
pub(crate) async fn device_authorization_response(
    app: &TestApp,
    c: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = form.to_vec();
    let mut req = app.http.post(app.url("/device_authorization"));
    match &c.secret {
        Some(s) => req = req.basic_auth(&c.id, Some(s)),
        None => form.push(("client_id", &c.id)),
    }
    req.form(&form).send().await.unwrap()
}

/// The status and JSON body of a device authorization request.
pub(crate) async fn device_authorization_answer(
    app: &TestApp,
    c: &TestClient,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = device_authorization_response(app, c, form).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What `/device_authorization` gave the device.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub device_code: String,
    /// As shown to the user: `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri_complete: String,
}

/// Asks for a device code for `scope` (empty: none asked) as `c`, and
/// checks the answer is RFC 8628 3.2's, as Gatehouse promises it.
pub(crate) async fn device_authorization(app: &TestApp, c: &TestClient, scope: &str) -> Device {
    let form: Vec<(&str, &str)> = if scope.is_empty() {
        Vec::new()
    } else {
        vec![("scope", scope)]
    };
    let r = device_authorization_response(app, c, &form).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store", "RFC 8628 3.2");
    let body: Value = r.json().await.unwrap();
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9, "{body}");
    for (i, ch) in user_code.chars().enumerate() {
        if i == 4 {
            assert_eq!(ch, '-', "{user_code}");
        } else {
            assert!(ALPHABET.contains(ch), "{user_code}");
        }
    }
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    assert!(device_code.len() >= 32, "a long random device code: {body}");
    let issuer = &app.state.settings.issuer;
    assert_eq!(body["verification_uri"], format!("{issuer}/device"));
    let complete = format!("{issuer}/device?user_code={user_code}");
    assert_eq!(body["verification_uri_complete"], complete);
    assert_eq!(body["expires_in"], EXPIRES_IN);
    assert_eq!(body["interval"], INTERVAL);
    Device {
        device_code,
        user_code,
        verification_uri_complete: complete,
    }
}

/// Polls `/token` with `device_code` as `c`; the status and JSON body.
/// Every answer of the token endpoint is `no-store`.
pub(crate) async fn poll(app: &TestApp, c: &TestClient, device_code: &str) -> (u16, Value) {
    let r = app
        .token(
            c,
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", device_code),
                ("client_id", &c.id),
            ],
        )
        .await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Waits `secs` on the movable clock, then polls.
pub(crate) async fn poll_after(
    app: &TestApp,
    c: &TestClient,
    device_code: &str,
    secs: i64,
) -> (u16, Value) {
    app.clock.advance(secs);
    poll(app, c, device_code).await
}

/// Asserts a poll answered the OAuth error `error` with 400.
#[track_caller]
pub(crate) fn assert_error((status, body): &(u16, Value), error: &str) {
    assert_eq!(body["error"], error, "{status} {body}");
    assert_eq!(*status, 400, "{body}");
}

/// A user code as the user might have typed it, as Gatehouse shows it:
/// upper case, `XXXX-XXXX`.
pub(crate) fn shown(user_code: &str) -> String {
    let plain: String = user_code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    format!("{}-{}", &plain[..4], &plain[4..])
}

/// A browser-like client: keeps its cookies, follows no redirects.
pub(crate) fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Enters `user_code` on the `/device` page from `browser` (getting the
/// page, and with it the CSRF token, first); the answer to the form.
pub(crate) async fn enter_code(
    app: &TestApp,
    browser: &reqwest::Client,
    user_code: &str,
) -> reqwest::Response {
    let page = browser.get(app.url("/device")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/device\""), "{html}");
    browser
        .post(app.url("/device"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("user_code", user_code),
        ])
        .send()
        .await
        .unwrap()
}

/// The Location of a 303, as an absolute URL on the app.
#[track_caller]
fn location(app: &TestApp, r: &reqwest::Response) -> String {
    assert_eq!(r.status(), 303, "expected a redirect");
    let loc = r.headers()["location"].to_str().unwrap();
    if loc.starts_with('/') {
        app.url(loc)
    } else {
        loc.to_owned()
    }
}

/// The path and query of an absolute URL on the app.
fn path_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// How a user answers the pages after entering a user code.
#[derive(Clone, Copy)]
pub(crate) struct User<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// Her authenticator app, when she has one.
    pub totp: Option<&'a TOTP>,
}

/// Follows `browser` from `next` (where entering the code sent it)
/// through sign-in, second factor and the device confirmation of
/// `user_code`, answering it with `decision`, to the page that ends it;
/// that page's status and HTML. Each confirmation page must show the user
/// code and the warning that the device is not this browser.
pub(crate) async fn follow_through(
    app: &TestApp,
    browser: &reqwest::Client,
    next: String,
    user_code: &str,
    user: User<'_>,
    decision: &str,
) -> (u16, String) {
    walk(app, browser, next, user_code, user, Some(decision)).await
}

/// Like [`follow_through`], but stops at the confirmation page, unanswered;
/// its HTML.
pub(crate) async fn to_confirmation(
    app: &TestApp,
    browser: &reqwest::Client,
    user_code: &str,
    user: User<'_>,
) -> String {
    let r = enter_code(app, browser, user_code).await;
    let next = location(app, &r);
    let (status, html) = walk(app, browser, next, user_code, user, None).await;
    assert_eq!(status, 200, "{html}");
    html
}

/// Posts `decision` on the confirmation page `html` from `browser`.
pub(crate) async fn decide(
    app: &TestApp,
    browser: &reqwest::Client,
    html: &str,
    decision: &str,
) -> reqwest::Response {
    browser
        .post(app.url("/consent"))
        .form(&[
            ("csrf", hidden(html, "csrf").as_str()),
            ("tx", hidden(html, "tx").as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

async fn walk(
    app: &TestApp,
    browser: &reqwest::Client,
    mut next: String,
    user_code: &str,
    user: User<'_>,
    decision: Option<&str>,
) -> (u16, String) {
    for _ in 0..12 {
        assert!(next.starts_with(&app.base), "left Gatehouse for {next}");
        let r = browser.get(&next).send().await.unwrap();
        if r.status() == 303 {
            next = location(app, &r);
            continue;
        }
        let status = r.status().as_u16();
        let html = r.text().await.unwrap();
        if html.contains("id=\"device-approved\"") || html.contains("id=\"device-denied\"") {
            return (status, html);
        }
        assert_eq!(status, 200, "at {next}: {html}");
        let csrf = hidden(&html, "csrf");
        let tx = hidden(&html, "tx");
        let posted = if html.contains("action=\"/login/second-factor\"") {
            let totp = user.totp.expect("a second factor was asked for");
            let code = code_at(totp, app.state.now());
            browser
                .post(app.url("/login/second-factor"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("tx", tx.as_str()),
                    ("mode", ""),
                    ("code", code.as_str()),
                ])
                .send()
                .await
                .unwrap()
        } else if html.contains("action=\"/login\"") {
            browser
                .post(app.url("/login"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("tx", tx.as_str()),
                    ("username", user.username),
                    ("password", user.password),
                ])
                .send()
                .await
                .unwrap()
        } else if html.contains("action=\"/consent\"") {
            assert_device_confirmation(&html, user_code);
            match decision {
                None => return (status, html),
                Some(d) => decide(app, browser, &html, d).await,
            }
        } else {
            panic!("unexpected page at {next}: {html}");
        };
        if posted.status() == 303 {
            next = location(app, &posted);
            continue;
        }
        let status = posted.status().as_u16();
        let html = posted.text().await.unwrap();
        if html.contains("id=\"device-approved\"") || html.contains("id=\"device-denied\"") {
            return (status, html);
        }
        panic!("a form answered {status} at {next}: {html}");
    }
    panic!("no end after twelve pages: at {next}");
}

/// The device confirmation page names the user code (as shown) and warns
/// that the device is separate from this browser.
#[track_caller]
pub(crate) fn assert_device_confirmation(html: &str, user_code: &str) {
    let marker = "id=\"device-user-code\"";
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no user code on the confirmation page: {html}"));
    let shown_code = shown(user_code);
    let element = &html[at..];
    let element = &element[..element.find("</").unwrap_or(element.len())];
    assert!(
        element.contains(&shown_code),
        "the confirmation page shows {shown_code}: {element}"
    );
    assert!(html.contains("id=\"device-warning\""), "{html}");
    assert!(html.contains("name=\"decision\" value=\"allow\""), "{html}");
    assert!(html.contains("name=\"decision\" value=\"deny\""), "{html}");
}

/// Enters `user_code` with the app's cookie jar, signs `username` in if
/// asked, and answers the confirmation with `decision`; the final page
/// (`device-approved` or `device-denied`), after checking its status.
pub(crate) async fn approve_over_http(
    app: &TestApp,
    user_code: &str,
    username: &str,
    password: &str,
    decision: &str,
) -> String {
    let user = User {
        username,
        password,
        totp: None,
    };
    approve_as(app, &app.browser, user_code, user, decision).await
}

/// [`approve_over_http`] from `browser`, as `user`.
pub(crate) async fn approve_as(
    app: &TestApp,
    browser: &reqwest::Client,
    user_code: &str,
    user: User<'_>,
    decision: &str,
) -> String {
    let r = enter_code(app, browser, user_code).await;
    let next = location(app, &r);
    let (status, html) = follow_through(app, browser, next, user_code, user, decision).await;
    assert_eq!(status, 200, "{html}");
    let end = if decision == "allow" {
        "id=\"device-approved\""
    } else {
        "id=\"device-denied\""
    };
    assert!(html.contains(end), "after {decision}: {html}");
    html
}

/// Creates the user who approves devices.
pub(crate) async fn tess(app: &TestApp) -> gatehouse_storage::model::User {
    app.create_user(USER, PASSWORD).await
}

/// A device code for `scope` of `c`, approved by the user over HTTP and
/// polled for after the interval: the token answer.
pub(crate) async fn approved_tokens(app: &TestApp, c: &TestClient, scope: &str) -> Value {
    let d = device_authorization(app, c, scope).await;
    approve_over_http(app, &d.user_code, USER, PASSWORD, "allow").await;
    let (status, t) = poll_after(app, c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    t
}

/// The claims of a JWT signed with one of the issuer's published keys,
/// after checking its signature.
async fn verified(app: &TestApp, jwt: &str) -> Value {
    let header = josekit::jwt::decode_header(jwt).unwrap();
    let kid = header.claim("kid").unwrap().as_str().unwrap().to_owned();
    assert_eq!(header.claim("alg").unwrap(), "RS256");
    let jwk = published_jwk(app, &kid).await;
    let verifier = josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap();
    josekit::jwt::decode_with_verifier(jwt, &verifier).unwrap();
    claims(jwt)
}
