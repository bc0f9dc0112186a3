//! Second factors against someone who knows the password (the review of
//! the strong sign-in work): a client's request never makes a user enrol
//! during a sign-in;
//! an enrolment belongs to the session that began it; consent needs the
//! level the request needs; the hard limit on wrong codes holds on every
//! instance; a first factor ends one-factor refresh tokens; a passkey
//! level is never offered a code; a passkey-only user is never let in on
//! the password alone; WebAuthn ceremonies belong to their session; a
//! step-up renews the session's id.

use gatehouse_storage::model::{PasskeyRecord, User};

use crate::{
    max_age::step,
    step_up::{claims, code_at, enrol_totp, finish, get_html, post_code, shown_secret, sign_in},
    support::{hidden, pkce, query_param, spawn_localhost, DbKind, TestApp},
};

const PW: &str = "pw-erin-123456";
const MFA: &str = "urn:gatehouse:acr:mfa";

/// `claims` asking for `acr` as essential, encoded for a query.
fn essential(acr: &str) -> String {
    let c = format!(r#"{{"id_token":{{"acr":{{"essential":true,"value":"{acr}"}}}}}}"#);
    url::form_urlencoded::byte_serialize(c.as_bytes()).collect()
}

/// A passkey row for `u` (its credential is never parsed by these tests).
async fn add_passkey(app: &TestApp, u: &User, id: &str) {
    app.state
        .store
        .create_passkey(&PasskeyRecord {
            credential_id: id.into(),
            user_id: u.id.clone(),
            name: "Laptop".into(),
            credential: "{}".into(),
            created_at: app.state.now(),
            last_used_at: None,
            counter: 0,
            backup_eligible: false,
            backup_state: false,
        })
        .await
        .unwrap();
}

/// Signs `user` in on browser `b` of `app` without a transaction: the
/// answer, and the browser's CSRF token.
async fn password_sign_in(
    app: &TestApp,
    b: &reqwest::Client,
    user: &str,
) -> (reqwest::Response, String) {
    let page = b.get(app.url("/login")).send().await.unwrap();
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("tx", ""),
            ("username", user),
            ("password", PW),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    (r, csrf)
}

/// An essential mfa request for a user with no second factor is unmet:
/// a client's request never leads to an enrolment during the sign-in.
async fn an_essential_request_is_unmet_without_a_factor(app: &TestApp) {
    let u = app.create_user("erin", PW).await;
    let c = app.web_client().await;
    let extra = format!("&claims={}", essential(MFA));
    let url = app.authorize_url(&c, "openid", &pkce().1, &extra);
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", PW).await;
    let done = step(app, &back).await;
    assert_eq!(
        query_param(&done, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{done}"
    );
    assert_eq!(app.state.store.totp_factor(&u.id).await.unwrap(), None);
}

/// Only the session that began an enrolment confirms it, even with a
/// right code of its secret.
async fn an_enrolment_belongs_to_its_session(app: &TestApp) {
    let u = app.create_user("erin", PW).await;
    let now = app.state.now();
    app.state
        .store
        .set_mfa_required(&u.id, true, now)
        .await
        .unwrap();
    let c = app.web_client().await;
    let url = app.authorize_url(&c, "openid", &pkce().1, "");
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", PW).await;
    let second = step(app, &back).await;
    let (_, html) = get_html(app, &second).await;
    let secret = crate::step_up::totp(&shown_secret(&html));

    // Another browser signs in with the password and sends a right code of
    // the secret the first one was shown.
    let other = app.second_instance().await;
    let (_, csrf) = password_sign_in(&other, &other.browser, "erin").await;
    let r = other
        .browser
        .post(other.url("/login/second-factor"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("tx", ""),
            ("mode", "enrol"),
            ("code", &code_at(&secret, now)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "not its enrolment");
    other.stop().await;
    let f = app.state.store.totp_factor(&u.id).await.unwrap().unwrap();
    assert_eq!(f.confirmed_at, None);
}

/// The consent page, reached below the level the request needs, saves
/// nothing and sends the browser back to the step-up.
async fn consent_needs_the_level(app: &TestApp) {
    let u = app.create_user("erin", PW).await;
    enrol_totp(app, &u).await;
    let c = app.web_client().await;
    let url = app.authorize_url(&c, "openid profile", &pkce().1, "");
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", PW).await;
    let second = step(app, &back).await;
    assert!(second.starts_with("/login/second-factor?tx="), "{second}");
    let (_, html) = get_html(app, &second).await;
    let tx = hidden(&html, "tx");
    let continue_at = format!("/authorize/continue?tx={tx}");

    let r = app
        .browser
        .get(app.url(&format!("/consent?tx={tx}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], continue_at.as_str());
    let r = app
        .browser
        .post(app.url("/consent"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", tx.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], continue_at.as_str());
    let granted = app
        .state
        .store
        .consented_scopes(&u.id, &c.id)
        .await
        .unwrap();
    assert!(granted.is_empty(), "{granted:?}");
}

/// Past the hard limit of wrong codes (counted in the database), even the
/// right code is held off, on this instance and on a fresh one; a reset
/// clears it.
async fn the_hard_limit_holds_on_every_instance(app: &TestApp) {
    let u = app.create_user("erin", PW).await;
    let t = enrol_totp(app, &u).await;
    let now = app.state.now();
    let (limit, window) = (
        gatehouse_server::factors::FAILURE_LIMIT,
        gatehouse_server::factors::FAILURE_WINDOW,
    );
    // Wrong codes sent to other instances over the day.
    for _ in 0..limit {
        let held = app
            .state
            .store
            .count_factor_attempt(&u.id, limit, window, now)
            .await
            .unwrap();
        assert_eq!(held, None);
    }
    for instance in [None, Some(app.second_instance().await)] {
        let a = instance.as_ref().unwrap_or(app);
        let c = a.web_client().await;
        let url = a.authorize_url(&c, "openid", &pkce().1, "");
        let login = step(a, &url).await;
        let back = sign_in(a, &login, "erin", PW).await;
        let second = step(a, &back).await;
        let (_, html) = get_html(a, &second).await;
        let r = post_code(a, &html, &code_at(&t, now), "").await;
        assert_eq!(r.status(), 429, "held off, even with the right code");
        let wait: i64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(wait > 3600, "{wait}");
        if let Some(i) = instance {
            i.stop().await;
        }
    }
    // An operator's reset (here: what it does to the count) lets her in.
    app.state.store.clear_factor_failures(&u.id).await.unwrap();
    let c = app.web_client().await;
    let url = app.authorize_url(&c, "openid", &pkce().1, "");
    let next = step(app, &url).await;
    let (_, html) = get_html(app, &next).await;
    let r = post_code(app, &html, &code_at(&t, now), "").await;
    assert_eq!(r.status(), 303);
}

/// Refresh tokens granted with the password alone stop working once the
/// user sets up her first second factor.
async fn a_first_factor_ends_one_factor_refresh_tokens(app: &TestApp) {
    app.create_user("erin", PW).await;
    let c = app.web_client().await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&c, "openid offline_access", &challenge, "&prompt=consent");
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", PW).await;
    let done = finish(app, back).await;
    let code = query_param(&done, "code").unwrap();
    let tokens = app.redeem(&c, &code, &verifier).await;
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["acr"],
        "urn:gatehouse:acr:pwd"
    );
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Another code, issued at one factor, held back for later.
    let (pending_verifier, challenge) = pkce();
    let url = app.authorize_url(&c, "openid", &challenge, "");
    let pending = query_param(&step(app, &url).await, "code").unwrap();

    // She sets up an authenticator app on the account page.
    let (_, page) = get_html(app, "/login").await;
    let csrf = hidden(&page, "csrf");
    let r = app
        .browser
        .post(app.url("/account/totp/begin"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = crate::step_up::totp(&shown_secret(&r.text().await.unwrap()));
    let r = app
        .browser
        .post(app.url("/account/totp/confirm"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("code", code_at(&t, app.state.now()).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "recovery codes shown");

    let r = app.refresh(&c, &rt).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // A code issued at one factor and not redeemed yet is gone too.
    let r = app.redeem_response(&c, &pending, &pending_verifier).await;
    assert_eq!(r.status(), 400);
}

/// Even when the revocation at the first factor did not happen (the
/// factor arrived another way, or the database failed in between), a
/// one-factor refresh token of a user who has a factor is refused.
async fn one_factor_refresh_tokens_of_a_user_with_a_factor_fail(app: &TestApp) {
    let u = app.create_user("erin", PW).await;
    let c = app.web_client().await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&c, "openid offline_access", &challenge, "&prompt=consent");
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", PW).await;
    let done = finish(app, back).await;
    let code = query_param(&done, "code").unwrap();
    let rt = app.redeem(&c, &code, &verifier).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    enrol_totp(app, &u).await;
    let r = app.refresh(&c, &rt).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

/// A passkey-only user, on a server whose passkeys are off (an IP
/// issuer), gets no code on the password alone, and her account page
/// says why instead of opening.
async fn a_passkey_only_user_needs_her_passkey(app: &TestApp) {
    assert!(!app.state.passkeys.enabled());
    let u = app.create_user("erin", PW).await;
    add_passkey(app, &u, "cred-1").await;
    let c = app.web_client().await;
    let url = app.authorize_url(&c, "openid", &pkce().1, "");
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", PW).await;
    let done = step(app, &back).await;
    assert!(query_param(&done, "code").is_none(), "{done}");
    assert_eq!(
        query_param(&done, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{done}"
    );
    let (status, html) = get_html(app, "/login/second-factor").await;
    assert_eq!(status, 409);
    assert!(html.contains("signs in with a passkey"), "{html}");
}

/// A step-up gives the session a new id: a copy of the cookie taken
/// before it (at one factor) is worth nothing after.
async fn a_step_up_renews_the_session_id(app: &TestApp) {
    let u = app.create_user("erin", PW).await;
    let t = enrol_totp(app, &u).await;
    let (r, _) = password_sign_in(app, &app.browser, "erin").await;
    let copied = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, html) = get_html(app, "/login/second-factor").await;
    assert_eq!(status, 200);
    let r = post_code(app, &html, &code_at(&t, app.state.now()), "").await;
    assert_eq!(r.status(), 303);
    let renewed = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("gatehouse_session="));
    assert!(renewed, "a new session cookie at the step-up");
    // The browser goes on at two factors.
    let (status, _) = get_html(app, "/account").await;
    assert_eq!(status, 200);
    // The copy taken before does not.
    let r = app
        .http
        .get(app.url("/account"))
        .header("cookie", copied)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
}

crate::both_backends!(
    an_essential_request_is_unmet_without_a_factor,
    an_enrolment_belongs_to_its_session,
    consent_needs_the_level,
    the_hard_limit_holds_on_every_instance,
    a_first_factor_ends_one_factor_refresh_tokens,
    a_passkey_only_user_needs_her_passkey,
    a_step_up_renews_the_session_id,
    one_factor_refresh_tokens_of_a_user_with_a_factor_fail,
);

/// Signs `user` in without a transaction on a browser of its own.
async fn browser_signed_in(app: &TestApp, user: &str) -> (reqwest::Client, String) {
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (_, csrf) = password_sign_in(app, &b, user).await;
    (b, csrf)
}

/// With passkeys on: a phishing-resistant level offers only the passkey
/// (a code cannot reach it); a registration ceremony begun in one session
/// cannot be finished in another; the passkey cap holds at the finish.
/// (Stored passkeys here are rows only: nothing parses their credential.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_levels_and_ceremonies() {
    let app = spawn_localhost(DbKind::Sqlite).await.unwrap();
    let u = app.create_user("erin", PW).await;
    let t = enrol_totp(&app, &u).await;
    add_passkey(&app, &u, "cred-1").await;

    let c = app.web_client().await;
    let extra = format!("&claims={}", essential("urn:gatehouse:acr:phr"));
    let url = app.authorize_url(&c, "openid", &pkce().1, &extra);
    let login = step(&app, &url).await;
    let back = sign_in(&app, &login, "erin", PW).await;
    let second = step(&app, &back).await;
    assert!(second.starts_with("/login/second-factor?tx="), "{second}");
    let (status, html) = get_html(&app, &second).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"passkey-second\""), "{html}");
    assert!(!html.contains("one-time-code"), "no code form: {html}");
    // A code posted anyway is refused before it is checked (and spent).
    let r = post_code(&app, &html, &code_at(&t, app.state.now()), "").await;
    assert_eq!(r.status(), 400);
    let f = app.state.store.totp_factor(&u.id).await.unwrap().unwrap();
    assert_eq!(f.last_step, Some(1), "the code was not spent");

    // Registration begun in one browser, finished from another.
    let finn = app.create_user("finn", PW).await;
    enrol_totp(&app, &finn).await;
    let (a, a_csrf) = browser_signed_in(&app, "finn").await;
    let (b, b_csrf) = browser_signed_in(&app, "finn").await;
    // Both are below his level (he has a factor): raise them behind the
    // pages' back, as a second factor would.
    for s in app.state.store.sessions_of_user(&finn.id).await.unwrap() {
        let amr = vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
        app.state
            .store
            .raise_session(&s.id_hash, &s.id_hash, gatehouse_protocol::Acr::Mfa, &amr)
            .await
            .unwrap();
    }
    let r = a
        .post(app.url("/account/passkeys/begin"))
        .form(&[("csrf", a_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ceremony = hidden(&r.text().await.unwrap(), "ceremony");
    let r = b
        .post(app.url("/account/passkeys"))
        .form(&[
            ("csrf", b_csrf.as_str()),
            ("ceremony", ceremony.as_str()),
            ("credential", "{}"),
            ("name", "Stolen"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("expired or was already used"));

    // The cap: passkeys added (in other tabs) while a ceremony was open
    // count at its finish.
    let r = a
        .post(app.url("/account/passkeys/begin"))
        .form(&[("csrf", a_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ceremony = hidden(&r.text().await.unwrap(), "ceremony");
    for i in 0..20 {
        add_passkey(&app, &finn, &format!("finn-{i}")).await;
    }
    let r = a
        .post(app.url("/account/passkeys"))
        .form(&[
            ("csrf", a_csrf.as_str()),
            ("ceremony", ceremony.as_str()),
            ("credential", "{}"),
            ("name", "One too many"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        app.state
            .store
            .passkeys_of_user(&finn.id)
            .await
            .unwrap()
            .len(),
        20
    );
    app.stop().await;
}
