//! The account page over real HTTP, each browser its own cookie jar: who
//! may see it, her sessions (one ended from another browser), setting up
//! an authenticator app with codes computed here from the secret shown,
//! recovery codes (shown once, each good once), passkeys listed and
//! removed, a password change, a
//! consent revoked (its client's tokens die), back-channel logout for
//! both, the recent sign-in that sensitive changes need, and forms
//! without their CSRF token.

use gatehouse_server::clients::ClientSpec;
use gatehouse_storage::model::PasskeyRecord;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::{
    max_age::step,
    revocation::{check_logout_token, receiver, Received},
    support::{hidden, introspect, userinfo_status, TestApp},
};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// A browser of its own: its cookies, its User-Agent, no redirects followed.
fn browser(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The status, Location and body of a GET.
async fn get(app: &TestApp, b: &reqwest::Client, path: &str) -> (u16, String, String) {
    let r = b.get(app.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

/// This browser's CSRF token (the sign-in page shows it, and sets it on
/// a first visit).
async fn csrf(app: &TestApp, b: &reqwest::Client) -> String {
    let (status, _, html) = get(app, b, "/login").await;
    assert_eq!(status, 200);
    hidden(&html, "csrf")
}

/// Posts a form of the account page with this browser's CSRF token.
async fn post(
    app: &TestApp,
    b: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf(app, b).await;
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    b.post(app.url(path)).form(&form).send().await.unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Signs in on the sign-in page without a transaction; the response.
async fn sign_in(app: &TestApp, b: &reqwest::Client, user: &str, pw: &str) -> reqwest::Response {
    let token = csrf(app, b).await;
    b.post(app.url("/login"))
        .form(&[
            ("csrf", token.as_str()),
            ("tx", ""),
            ("username", user),
            ("password", pw),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in and checks that it lands on the account page.
async fn signed_in(app: &TestApp, b: &reqwest::Client, user: &str, pw: &str) {
    let r = sign_in(app, b, user, pw).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
}

/// The account page, which must answer 200.
async fn account(app: &TestApp, b: &reqwest::Client) -> String {
    account_at(app, b, "/account").await
}

/// The account page at `path` (a change's Location), which must answer 200.
async fn account_at(app: &TestApp, b: &reqwest::Client, path: &str) -> String {
    let (status, location, html) = get(app, b, path).await;
    assert_eq!(status, 200, "account page went to {location}");
    html
}

/// Whether this browser's session still opens the account page.
async fn still_signed_in(app: &TestApp, b: &reqwest::Client) -> bool {
    let (status, location, _) = get(app, b, "/account").await;
    match status {
        200 => true,
        303 if location == "/login" => false,
        other => panic!("unexpected {other} to {location}"),
    }
}

/// The sid of `user`'s session started by `user_agent`.
async fn sid_of(app: &TestApp, user: &str, user_agent: &str) -> String {
    let u = app
        .state
        .store
        .user_by_username(user)
        .await
        .unwrap()
        .unwrap();
    app.state
        .store
        .sessions_of_user(&u.id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.user_agent.as_deref() == Some(user_agent))
        .unwrap()
        .sid
}

fn totp(secret_b32: &str) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        0,
        30,
        Secret::Encoded(secret_b32.to_owned()).to_bytes().unwrap(),
        None,
        "test".to_owned(),
    )
}

fn code_now(app: &TestApp, t: &TOTP) -> String {
    t.generate(u64::try_from(app.state.now()).unwrap())
}

/// The secret shown on an enrolment page.
fn shown_secret(html: &str) -> String {
    let marker = "id=\"totp-secret\" class=\"secret\">";
    let start = html.find(marker).unwrap() + marker.len();
    html[start..][..html[start..].find('<').unwrap()].to_owned()
}

/// The recovery codes shown on their page.
fn shown_codes(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|s| s[..s.find("</code>").unwrap()].to_owned())
        .collect()
}

/// A code that is not `code` (one digit changed).
fn wrong(code: &str) -> String {
    let first = code.chars().next().unwrap().to_digit(10).unwrap();
    format!("{}{}", (first + 1) % 10, &code[1..])
}

/// Sets up an authenticator app from the account page of a signed-in
/// browser, then confirms the next code where the account page asks for
/// it (setting a factor up does not raise the session); the app's
/// generator and the recovery codes shown.
async fn set_up_totp(app: &TestApp, b: &reqwest::Client) -> (TOTP, Vec<String>) {
    let (t, codes) = enrol_totp(app, b).await;
    step_up_with(app, b, &t).await;
    (t, codes)
}

/// The account page sends this session to the second-factor page, where
/// the app's next code (30 s on) raises it.
async fn step_up_with(app: &TestApp, b: &reqwest::Client, t: &TOTP) {
    let (status, to, _) = get(app, b, "/account").await;
    assert_eq!((status, to.as_str()), (303, "/login/second-factor"));
    app.clock.advance(30);
    let code = code_now(app, t);
    let r = post(
        app,
        b,
        "/login/second-factor",
        &[("tx", ""), ("code", &code)],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
}

/// Enrols an authenticator app from the account page; the app's
/// generator and the recovery codes shown.
async fn enrol_totp(app: &TestApp, b: &reqwest::Client) -> (TOTP, Vec<String>) {
    let r = post(app, b, "/account/totp/begin", &[]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.replace("&#x2F;", "/")
            .contains("action=\"/account/totp/confirm\""),
        "{html}"
    );
    let t = totp(&shown_secret(&html));
    let r = post(
        app,
        b,
        "/account/totp/confirm",
        &[("mode", "enrol"), ("code", &code_now(app, &t))],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"recovery-codes\""), "{html}");
    assert!(html.replace("&#x2F;", "/").contains("href=\"/account\""));
    let codes = shown_codes(&html);
    assert_eq!(codes.len(), 10);
    (t, codes)
}

/// Without a session the page and its forms lead to the sign-in page;
/// `/` is the account page; a sign-in without a transaction lands there.
async fn only_a_signed_in_user_sees_it(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let b = browser(FIREFOX);
    let (status, to, _) = get(app, &b, "/account").await;
    assert_eq!((status, to.as_str()), (303, "/login"));
    let (status, to, _) = get(app, &b, "/").await;
    assert_eq!((status, to.as_str()), (303, "/account"));
    let r = post(app, &b, "/account/sessions/end", &[("sid", "x")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");

    signed_in(app, &b, "erin", "pw-erin-123456").await;
    let html = account(app, &b).await;
    assert!(
        html.contains("Signed in as <strong id=\"signed-in-user\">erin</strong>"),
        "{html}"
    );
    assert!(html.contains("Firefox on Linux"));
    assert!(html.contains("This browser"));
    assert!(html.contains("127.0.0.1"));
    assert!(html.contains("Set up an authenticator app"));
    assert!(html.contains("You have not allowed any app"));
    // The session's start, in UTC, as the page shows times.
    let secs = app.state.now().rem_euclid(86_400);
    let hhmm = format!("{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60);
    assert!(html.contains(&hhmm), "{hhmm} in {html}");
}

/// She sees both browsers, ends the other one's session (its cookie no
/// longer works), cannot end another user's, and ending her own signs
/// her out.
async fn sessions_are_listed_and_ended(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    app.create_user("mallory", "pw-mallory-123456").await;
    let (a, b, m) = (browser(FIREFOX), browser(CHROME), browser(FIREFOX));
    signed_in(app, &a, "erin", "pw-erin-123456").await;
    signed_in(app, &b, "erin", "pw-erin-123456").await;
    signed_in(app, &m, "mallory", "pw-mallory-123456").await;
    let html = account(app, &a).await;
    assert!(html.contains("Firefox on Linux"));
    assert!(html.contains("Chrome on Windows"));
    assert_eq!(html.matches("This browser").count(), 1);
    let other = sid_of(app, "erin", CHROME).await;
    let mine = sid_of(app, "erin", FIREFOX).await;
    assert!(html.contains(&other) && html.contains(&mine));
    // The buttons say what they end.
    assert!(html.contains("End<span class=\"vh\"> the session on Chrome on Windows"));

    // Mallory cannot end Erin's session by its sid.
    let r = post(app, &m, "/account/sessions/end", &[("sid", &other)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    assert!(still_signed_in(app, &b).await);

    let r = post(app, &a, "/account/sessions/end", &[("sid", &other)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=session-ended");
    assert!(
        !still_signed_in(app, &b).await,
        "the ended session's cookie"
    );
    let html = account_at(app, &a, &location(&r)).await;
    assert!(html.contains(
        "<div class=\"notice\" role=\"status\" id=\"notice\">The session was ended.</div>"
    ));
    assert!(!html.contains("Chrome on Windows"));

    // Her own: signed out here, the cookie cleared.
    let r = post(app, &a, "/account/sessions/end", &[("sid", &mine)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("session=;"));
    assert!(cleared, "the session cookie is cleared");
    assert!(!still_signed_in(app, &a).await);
    assert!(still_signed_in(app, &m).await, "others' sessions stay");
}

/// Set up from the account page: a wrong first code is refused (and a
/// new secret shown), the right one turns the app on and shows recovery
/// codes; the page then says so, and no code is shown again.
async fn an_authenticator_app_is_set_up(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let a = browser(FIREFOX);
    signed_in(app, &a, "erin", "pw-erin-123456").await;

    let r = post(app, &a, "/account/totp/begin", &[]).await;
    assert_eq!(r.status(), 200);
    let first = shown_secret(&r.text().await.unwrap());
    let right = code_now(app, &totp(&first));
    let r = post(
        app,
        &a,
        "/account/totp/confirm",
        &[("mode", "enrol"), ("code", &wrong(&right))],
    )
    .await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(html.contains("That code is not right"));
    assert!(html.contains("aria-describedby=\"code-error\""));
    let second = shown_secret(&html);
    assert_ne!(first, second, "a wrong code starts over with a new secret");
    let html = account(app, &a).await;
    assert!(html.contains("Set up an authenticator app"), "not on yet");

    // The first secret is void now: its code no longer turns the app on.
    let r = post(
        app,
        &a,
        "/account/totp/confirm",
        &[("mode", "enrol"), ("code", &code_now(app, &totp(&first)))],
    )
    .await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    let t = totp(&shown_secret(&html));
    let r = post(
        app,
        &a,
        "/account/totp/confirm",
        &[("mode", "enrol"), ("code", &code_now(app, &t))],
    )
    .await;
    assert_eq!(r.status(), 200);
    let codes = shown_codes(&r.text().await.unwrap());
    assert_eq!(codes.len(), 10);

    // Setting it up did not raise this session (whoever stole the
    // password could have set it up): the page asks for a code first.
    step_up_with(app, &a, &t).await;
    let html = account(app, &a).await;
    assert!(html.contains("An authenticator app is set up"));
    assert!(html.contains("10 of 10 recovery codes are unused"));
    assert!(!codes.iter().any(|c| html.contains(c.as_str())));
    // Set up again while on: the page says remove it first.
    let r = post(app, &a, "/account/totp/begin", &[]).await;
    assert_eq!(location(&r), "/account?done=totp-exists");

    // Removed: the app and its recovery codes go.
    let r = post(app, &a, "/account/totp/remove", &[]).await;
    assert_eq!(location(&r), "/account?done=totp-removed");
    let html = account(app, &a).await;
    assert!(html.contains("Set up an authenticator app"));
    let u = app
        .state
        .store
        .user_by_username("erin")
        .await
        .unwrap()
        .unwrap();
    assert!(app.state.store.totp_factor(&u.id).await.unwrap().is_none());
    assert!(app
        .state
        .store
        .recovery_codes(&u.id)
        .await
        .unwrap()
        .is_empty());
}

/// New recovery codes void the old ones; each new one signs in once at
/// the second-factor page, and the account page counts and dates it.
async fn recovery_codes_are_shown_once_and_work_once(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let a = browser(FIREFOX);
    signed_in(app, &a, "erin", "pw-erin-123456").await;
    let (_, old) = set_up_totp(app, &a).await;

    let r = post(app, &a, "/account/recovery-codes/new", &[]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let codes = shown_codes(&html);
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| !old.contains(c)));
    let html = account(app, &a).await;
    assert!(
        !codes.iter().any(|c| html.contains(c.as_str())),
        "shown once"
    );

    // Another browser: password, then the second factor.
    let b = browser(CHROME);
    signed_in(app, &b, "erin", "pw-erin-123456").await;
    let (status, to, _) = get(app, &b, "/account").await;
    assert_eq!((status, to.as_str()), (303, "/login/second-factor"));
    // Below her level, the page's forms lead there too, and change nothing.
    let r = post(app, &b, "/account/totp/remove", &[]).await;
    assert_eq!(location(&r), "/login/second-factor");
    let r = post(
        app,
        &b,
        "/login/second-factor",
        &[("tx", ""), ("code", &old[0])],
    )
    .await;
    assert_eq!(r.status(), 401, "an old code is void");
    let r = post(
        app,
        &b,
        "/login/second-factor",
        &[("tx", ""), ("code", &codes[3])],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    let html = account(app, &b).await;
    assert!(html.contains("9 of 10 recovery codes are unused"), "{html}");
    assert!(html.contains("A code was used"));
    assert!(
        html.contains("An authenticator app is set up"),
        "not removed"
    );

    // The same code in a third browser: refused.
    let c = browser(FIREFOX);
    signed_in(app, &c, "erin", "pw-erin-123456").await;
    let r = post(
        app,
        &c,
        "/login/second-factor",
        &[("tx", ""), ("code", &codes[3])],
    )
    .await;
    assert_eq!(r.status(), 401, "a recovery code works once");
}

/// The current password is required; other sessions end; the new
/// password signs in and the old one no longer does.
async fn a_password_change(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let (a, b) = (browser(FIREFOX), browser(CHROME));
    signed_in(app, &a, "erin", "pw-erin-123456").await;
    signed_in(app, &b, "erin", "pw-erin-123456").await;
    let new = "a much longer passphrase";

    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let a = a.clone();
        async move {
            post(
                app,
                &a,
                "/account/password",
                &[
                    ("current_password", current),
                    ("new_password", new),
                    ("new_password_again", again),
                ],
            )
            .await
        }
    };
    let r = change("pw-wrong-123456", new, new).await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(html.contains("Your current password is not right."));
    assert!(html.contains(
        "name=\"current_password\" type=\"password\" autocomplete=\"current-password\" required aria-describedby=\"password-error\" aria-invalid=\"true\""
    ), "{html}");
    let r = change("pw-erin-123456", new, "a much longer passphrasE").await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("The two new passwords are not the same."));
    let r = change("pw-erin-123456", "too short", "too short").await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("at least 12 characters"));
    assert!(html.contains("aria-describedby=\"new-password-hint password-error\""));
    assert!(still_signed_in(app, &b).await, "nothing changed yet");

    let r = change("pw-erin-123456", new, new).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=password-changed");
    assert!(!still_signed_in(app, &b).await, "the other session ended");
    let html = account_at(app, &a, &location(&r)).await;
    assert!(html.contains("Your password was changed"));

    let c = browser(FIREFOX);
    let r = sign_in(app, &c, "erin", "pw-erin-123456").await;
    assert_eq!(r.status(), 401, "the old password");
    signed_in(app, &c, "erin", new).await;
}

/// Eleven minutes after the sign-in, the sensitive forms ask her to sign
/// in again (and change nothing); ending a session still works; a new
/// sign-in from that page lands on the account page and may change.
async fn a_stale_sign_in_must_sign_in_again(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let (a, b) = (browser(FIREFOX), browser(CHROME));
    signed_in(app, &a, "erin", "pw-erin-123456").await;
    signed_in(app, &b, "erin", "pw-erin-123456").await;
    let u = app
        .state
        .store
        .user_by_username("erin")
        .await
        .unwrap()
        .unwrap();
    app.state
        .store
        .save_consent(&u.id, &c.id, &["openid".to_owned()], app.state.now())
        .await
        .unwrap();
    app.clock.advance(11 * 60);

    let pw = [
        ("current_password", "pw-erin-123456"),
        ("new_password", "another long passphrase"),
        ("new_password_again", "another long passphrase"),
    ];
    let revoke = [("client_id", c.id.as_str())];
    let forms: [(&str, &[(&str, &str)]); 5] = [
        ("/account/totp/begin", &[]),
        ("/account/totp/remove", &[]),
        ("/account/recovery-codes/new", &[]),
        ("/account/password", &pw),
        ("/account/consents/revoke", &revoke),
    ];
    for (path, fields) in forms {
        let r = post(app, &a, path, fields).await;
        assert_eq!(r.status(), 403, "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains("<h1>Sign in again</h1>"), "{path}: {html}");
        assert!(html.contains("login_hint=erin"), "{html}");
    }
    assert_eq!(
        app.state
            .store
            .consented_scopes(&u.id, &c.id)
            .await
            .unwrap(),
        ["openid"]
    );
    assert!(app.state.store.totp_factor(&u.id).await.unwrap().is_none());

    // Ending a session needs no recent sign-in.
    let other = sid_of(app, "erin", CHROME).await;
    let r = post(app, &a, "/account/sessions/end", &[("sid", &other)]).await;
    assert_eq!(location(&r), "/account?done=session-ended");
    assert!(!still_signed_in(app, &b).await);

    // The link: her name filled in; the sign-in leads back here.
    let (status, _, html) = get(app, &a, "/login?login_hint=erin").await;
    assert_eq!(status, 200);
    assert!(html.contains("value=\"erin\""));
    signed_in(app, &a, "erin", "pw-erin-123456").await;
    let r = post(app, &a, "/account/consents/revoke", &revoke).await;
    assert_eq!(location(&r), "/account?done=consent-revoked");
}

/// Revoking a consent: the client's refresh token is `invalid_grant`, its
/// access token dead, the app gone from the page, and the client must
/// ask again.
async fn a_revoked_consent_ends_the_clients_tokens(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo_status(app, &access).await, 200);

    // Dave's browser (`app.browser`) signed in and consented just now.
    let (status, _, html) = get(app, &app.browser, "/account").await;
    assert_eq!(status, 200);
    assert!(html.contains("<strong>Example App</strong>"), "{html}");
    assert!(html.contains("Stay signed in when you are not using it"));
    assert!(html.contains("Revoke<span class=\"vh\"> the access of Example App</span>"));

    let r = post(
        app,
        &app.browser,
        "/account/consents/revoke",
        &[("client_id", &c.id)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let back = location(&r);
    assert_eq!(back, "/account?done=consent-revoked");
    let r = app.refresh(&c, &refresh).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(userinfo_status(app, &access).await, 401);
    assert_eq!(introspect(app, &c, &access).await["active"], false);
    let html = account_at(app, &app.browser, &back).await;
    assert!(!html.contains("<strong>Example App</strong>"));
    assert!(html.contains("The app can no longer use your account."));

    // Still signed in, but the client must ask again.
    let (_, challenge) = crate::support::pkce();
    let url = app.authorize_url(&c, "openid", &challenge, "");
    let next = step(app, &url).await;
    assert!(next.starts_with("/consent?tx="), "{next}");
}

/// Without the CSRF token, or with a wrong one, every form is refused
/// with 403 and changes nothing; a form not form-encoded is refused too.
async fn forms_need_their_csrf_token(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let (a, b) = (browser(FIREFOX), browser(CHROME));
    signed_in(app, &a, "erin", "pw-erin-123456").await;
    signed_in(app, &b, "erin", "pw-erin-123456").await;
    let other = sid_of(app, "erin", CHROME).await;
    for path in [
        "/account/sessions/end",
        "/account/totp/begin",
        "/account/totp/confirm",
        "/account/totp/remove",
        "/account/recovery-codes/new",
        "/account/password",
        "/account/consents/revoke",
    ] {
        for csrf in [None, Some("not-the-token")] {
            let mut form = vec![("sid", other.as_str())];
            if let Some(t) = csrf {
                form.push(("csrf", t));
            }
            let r = a.post(app.url(path)).form(&form).send().await.unwrap();
            assert_eq!(r.status(), 403, "{path} with {csrf:?}");
        }
    }
    let token = csrf(app, &a).await;
    let r = a
        .post(app.url("/account/sessions/end"))
        .header("content-type", "text/plain")
        .body(format!("csrf={token}&sid={other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(still_signed_in(app, &b).await, "nothing was ended");
}

/// Waits (up to 5 s) until `got` holds `n` logout tokens; returns them.
async fn logout_tokens(got: &Received, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let tokens = got.0.lock().unwrap().clone();
        if tokens.len() >= n {
            return tokens;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} logout tokens arrived");
}

/// The `sid` of a logout token (its signature is checked elsewhere).
fn sid_claim(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// A client with a back-channel logout URI hears, for the session it got
/// tokens through, of the consent revoked and of the session ended.
async fn clients_hear_of_revoked_consents_and_ended_sessions(app: &TestApp) {
    let (uri, got) = receiver().await;
    let bank = app
        .create_client(ClientSpec {
            name: "Bank".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            backchannel_logout_uri: Some(uri),
            ..ClientSpec::default()
        })
        .await;
    // Dave's first browser (`app.browser`) signs in for the bank.
    let (code, verifier) = app.code(&bank, "openid", "").await;
    app.redeem(&bank, &code, &verifier).await;
    let dave = app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    let used = app.state.store.sessions_of_user(&dave.id).await.unwrap()[0]
        .sid
        .clone();
    // From a second browser he revokes the bank's access...
    let b = browser(CHROME);
    signed_in(app, &b, "dave", "pw-dave-123456").await;
    let r = post(
        app,
        &b,
        "/account/consents/revoke",
        &[("client_id", &bank.id)],
    )
    .await;
    assert_eq!(location(&r), "/account?done=consent-revoked");
    let tokens = logout_tokens(&got, 1).await;
    check_logout_token(app, &tokens[0], &bank.id, &dave.id).await;
    assert_eq!(sid_claim(&tokens[0]), used, "only the session it used");
    // ...then ends the first browser's session: the bank hears again.
    let r = post(app, &b, "/account/sessions/end", &[("sid", &used)]).await;
    assert_eq!(location(&r), "/account?done=session-ended");
    let tokens = logout_tokens(&got, 2).await;
    check_logout_token(app, &tokens[1], &bank.id, &dave.id).await;
    assert_eq!(sid_claim(&tokens[1]), used);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        got.0.lock().unwrap().len(),
        2,
        "nothing for the second browser"
    );
}

/// With passkeys on (a host-name issuer): her passkeys are listed with an
/// "Add a passkey" button; removing one needs a recent sign-in, as adding
/// one does.
async fn passkeys_are_listed_and_removed(app: &TestApp) {
    let u = app.create_user("erin", "pw-erin-123456").await;
    let a = browser(FIREFOX);
    signed_in(app, &a, "erin", "pw-erin-123456").await;
    let html = account(app, &a).await;
    assert!(html.contains("No passkey yet."));
    assert!(html.contains("id=\"add-passkey\""));
    let now = app.state.now();
    app.state
        .store
        .create_passkey(&PasskeyRecord {
            credential_id: "cred-laptop".into(),
            user_id: u.id.clone(),
            name: "Laptop".into(),
            credential: "{}".into(),
            created_at: now - 86_400,
            last_used_at: None,
            counter: 0,
            backup_eligible: false,
            backup_state: false,
        })
        .await
        .unwrap();
    // A passkey is a second factor: a password-only session steps up first.
    let (status, to, _) = get(app, &a, "/account").await;
    assert_eq!((status, to.as_str()), (303, "/login/second-factor"));
    let s = &app.state.store.sessions_of_user(&u.id).await.unwrap()[0];
    let amr = ["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
    app.state
        .store
        .raise_session(&s.id_hash, &s.id_hash, gatehouse_protocol::Acr::Mfa, &amr)
        .await
        .unwrap();
    let html = account(app, &a).await;
    assert!(html.contains("<strong>Laptop</strong>"), "{html}");
    assert!(html.contains("never used"));
    assert!(html.contains("Remove<span class=\"vh\"> the passkey Laptop</span>"));

    app.clock.advance(11 * 60);
    for (path, fields) in [
        ("/account/passkeys/begin", vec![]),
        (
            "/account/passkeys/remove",
            vec![("credential_id", "cred-laptop")],
        ),
    ] {
        let r = post(app, &a, path, &fields).await;
        assert_eq!(r.status(), 403, "{path}");
        assert!(r.text().await.unwrap().contains("<h1>Sign in again</h1>"));
    }
    assert_eq!(
        app.state.store.passkeys_of_user(&u.id).await.unwrap().len(),
        1
    );

    app.clock.advance(-11 * 60);
    let r = post(
        app,
        &a,
        "/account/passkeys/remove",
        &[("credential_id", "cred-laptop")],
    )
    .await;
    assert_eq!(location(&r), "/account?done=passkey-removed");
    let html = account_at(app, &a, &location(&r)).await;
    assert!(html.contains("The passkey was removed."));
    assert!(app
        .state
        .store
        .passkeys_of_user(&u.id)
        .await
        .unwrap()
        .is_empty());
}

/// The passkey test needs a host-name issuer, so its own two wrappers.
mod localhost {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_passkeys_are_listed_and_removed() {
        let app = crate::support::spawn_localhost(crate::support::DbKind::Sqlite)
            .await
            .unwrap();
        super::passkeys_are_listed_and_removed(&app).await;
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_passkeys_are_listed_and_removed() {
        let Some(app) = crate::support::spawn_localhost(crate::support::DbKind::Postgres).await
        else {
            return;
        };
        super::passkeys_are_listed_and_removed(&app).await;
        app.stop().await;
    }
}

crate::both_backends!(
    only_a_signed_in_user_sees_it,
    sessions_are_listed_and_ended,
    an_authenticator_app_is_set_up,
    recovery_codes_are_shown_once_and_work_once,
    a_password_change,
    a_stale_sign_in_must_sign_in_again,
    a_revoked_consent_ends_the_clients_tokens,
    forms_need_their_csrf_token,
    clients_hear_of_revoked_consents_and_ended_sessions,
);
