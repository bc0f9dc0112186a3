//! Second factors and levels through the real pages: enrolment forced by a
//! required level, step-up asking for the missing factor only, `acr`/`amr`
//! and `auth_time` in the ID token, single-use codes, skew, throttling,
//! `unmet_authentication_requirements`, and refresh tokens granted below
//! a level required later.

use gatehouse_server::clients::ClientSpec;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::{
    max_age::step,
    support::{hidden, pkce, query_param, TestApp, TestClient},
};

const MFA: &str = "urn:gatehouse:acr:mfa";

pub(crate) fn totp(secret_b32: &str) -> TOTP {
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

/// Gives `u` a confirmed authenticator app behind the pages' back (as if
/// set up on the account page); its generator.
pub(crate) async fn enrol_totp(app: &TestApp, u: &gatehouse_storage::model::User) -> TOTP {
    let new = app
        .state
        .totp
        .generate(&u.id, "localhost", &u.username)
        .unwrap();
    let now = app.state.now();
    app.state
        .store
        .begin_totp(&u.id, new.sealed, "test", now)
        .await
        .unwrap();
    assert!(app
        .state
        .store
        .confirm_totp(&u.id, "test", now - 600, 1, now)
        .await
        .unwrap());
    TOTP::from_url_unchecked(new.uri.as_str()).unwrap()
}

pub(crate) fn code_at(t: &TOTP, at: i64) -> String {
    t.generate(u64::try_from(at).unwrap())
}

pub(crate) fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The secret shown on an enrolment page.
pub(crate) fn shown_secret(html: &str) -> String {
    let marker = "id=\"totp-secret\" class=\"secret\">";
    let start = html.find(marker).unwrap() + marker.len();
    html[start..][..html[start..].find('<').unwrap()].to_owned()
}

pub(crate) async fn get_html(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.browser.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(crate) async fn post_code(
    app: &TestApp,
    html: &str,
    code: &str,
    mode: &str,
) -> reqwest::Response {
    app.browser
        .post(app.url("/login/second-factor"))
        .form(&[
            ("csrf", hidden(html, "csrf").as_str()),
            ("tx", hidden(html, "tx").as_str()),
            ("mode", mode),
            ("code", code),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs `user` in on the login page `login` leads to; the Location after.
pub(crate) async fn sign_in(app: &TestApp, login: &str, user: &str, password: &str) -> String {
    let (_, html) = get_html(app, login).await;
    let r = app
        .browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Follows redirects and approves consent until the browser leaves for
/// the client; the final Location.
pub(crate) async fn finish(app: &TestApp, mut next: String) -> String {
    for _ in 0..6 {
        if !next.starts_with('/') {
            return next;
        }
        if next.starts_with("/consent") {
            return app.authorize_in_browser(&app.url(&next), "-", "-").await;
        }
        next = step(app, &next).await;
    }
    panic!("no end: {next}");
}

async fn mfa_client(app: &TestApp) -> TestClient {
    app.create_client(ClientSpec {
        name: "Bank".into(),
        redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
        ..ClientSpec::default()
    })
    .await
}

/// A user the operator requires MFA of, with no factor yet, enrols TOTP
/// during the sign-in, gets recovery codes once, and her tokens say mfa.
async fn a_required_level_makes_the_user_enrol(app: &TestApp) {
    let u = app.create_user("erin", "pw-erin-123456").await;
    app.state
        .store
        .set_mfa_required(&u.id, true, app.state.now())
        .await
        .unwrap();
    let c = app.web_client().await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&c, "openid offline_access", &challenge, "&nonce=n1");
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", "pw-erin-123456").await;
    let second = step(app, &back).await;
    assert!(second.starts_with("/login/second-factor?tx="), "{second}");
    let (status, html) = get_html(app, &second).await;
    assert_eq!(status, 200);
    assert!(html.contains("data:image/svg+xml;base64,"), "a QR code");
    let t = totp(&shown_secret(&html));
    // A wrong first code: the page again, with a new secret.
    let r = post_code(app, &html, "000000", "enrol").await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    let t2 = totp(&shown_secret(&html));
    assert_ne!(t.get_secret_base32(), t2.get_secret_base32());
    let r = post_code(app, &html, &code_at(&t2, app.state.now()), "enrol").await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let codes: Vec<&str> = page.split("<li><code>").skip(1).map(|s| &s[..11]).collect();
    assert_eq!(codes.len(), 10, "{page}");
    let next = page.split("id=\"continue\" href=\"").nth(1).unwrap();
    let next = &next[..next.find('"').unwrap()];
    let next = next.replace("&#x2F;", "/").replace("&amp;", "&");
    let done = finish(app, next).await;
    let code = query_param(&done, "code").unwrap_or_else(|| panic!("{done}"));
    let tokens = app.redeem(&c, &code, &verifier).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], MFA);
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    let f = app.state.store.totp_factor(&u.id).await.unwrap().unwrap();
    assert!(f.confirmed_at.is_some());
    // The secret is stored sealed, never in the clear.
    let raw = t2.get_secret_base32();
    assert!(!String::from_utf8_lossy(&f.secret_sealed).contains(&raw));
}

/// A password session asked for mfa by a client gets only the second
/// factor page; `auth_time` stays the password's; replayed codes, skew.
async fn step_up_asks_for_the_missing_factor_only(app: &TestApp) {
    let u = app.create_user("erin", "pw-erin-123456").await;
    let plain = app.web_client().await;
    let (_, challenge) = pkce();
    let first = app.authorize_url(&plain, "openid", &challenge, "");
    let login = step(app, &first).await;
    let signed_in_at = app.state.now();
    let back = sign_in(app, &login, "erin", "pw-erin-123456").await;
    let done = finish(app, back).await;
    assert!(query_param(&done, "code").is_some(), "{done}");

    // She enrols TOTP (as on the account page).
    let t = enrol_totp(app, &u).await;

    app.clock.advance(120);
    let bank = mfa_client(app).await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&bank, "openid", &challenge, &format!("&acr_values={MFA}"));
    let second = step(app, &url).await;
    assert!(
        second.starts_with("/login/second-factor?tx="),
        "no password again, only the second factor: {second}"
    );
    let (_, html) = get_html(app, &second).await;
    assert!(html.contains("autocomplete=\"one-time-code\""));
    // A code two steps old is refused; one step old (skew) is accepted.
    let now = app.state.now();
    let r = post_code(app, &html, &code_at(&t, now - 60), "").await;
    assert_eq!(r.status(), 401);
    let old = code_at(&t, now - 30);
    let r = post_code(app, &html, &old, "").await;
    assert_eq!(r.status(), 303);
    let done = finish(app, r.headers()["location"].to_str().unwrap().to_owned()).await;
    let code = query_param(&done, "code").unwrap_or_else(|| panic!("{done}"));
    let tokens = app.redeem(&bank, &code, &verifier).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], MFA);
    assert_eq!(id["auth_time"], signed_in_at, "a step-up is not a sign-in");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // The same code again, in a new sign-in on another browser: refused.
    let other = app.second_instance().await;
    let login = step(&other, &url.replace(&app.base, "")).await;
    let back = sign_in(&other, &login, "erin", "pw-erin-123456").await;
    let second = step(&other, &back).await;
    let (_, html) = get_html(&other, &second).await;
    let r = post_code(&other, &html, &old, "").await;
    assert_eq!(r.status(), 401, "a code is accepted once");
    other.stop().await;
}

/// Wrong codes are throttled per account: past five, the page says wait.
async fn wrong_codes_are_throttled(app: &TestApp) {
    let u = app.create_user("erin", "pw-erin-123456").await;
    app.state
        .store
        .set_mfa_required(&u.id, true, app.state.now())
        .await
        .unwrap();
    let t = enrol_totp(app, &u).await;
    let c = app.web_client().await;
    let url = app.authorize_url(&c, "openid", &pkce().1, "");
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", "pw-erin-123456").await;
    let second = step(app, &back).await;
    let (_, html) = get_html(app, &second).await;
    let right = code_at(&t, app.state.now());
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..6 {
        let r = post_code(app, &html, wrong, "").await;
        assert_eq!(r.status(), 401);
    }
    let r = post_code(app, &html, &right, "").await;
    assert_eq!(r.status(), 429, "held off, even with the right code");
    assert!(r.headers().contains_key("retry-after"));
    // Recovery codes count as a second factor too; bad input is no 500.
    for bad in ["", "x", &"9".repeat(5000)] {
        let r = post_code(app, &html, bad, "").await;
        assert!(r.status() == 401 || r.status() == 429, "{}", r.status());
    }
}

/// An essential level nobody can reach (a passkey's, for a user with an
/// authenticator app): unmet_authentication_requirements; a step-up with
/// prompt=none: interaction_required.
async fn unmet_and_prompt_none(app: &TestApp) {
    let u = app.create_user("erin", "pw-erin-123456").await;
    enrol_totp(app, &u).await;
    let c = app.web_client().await;
    let claims_param =
        r#"{"id_token":{"acr":{"essential":true,"values":["urn:gatehouse:acr:phr"]}}}"#;
    let enc: String = url::form_urlencoded::byte_serialize(claims_param.as_bytes()).collect();
    let url = app.authorize_url(&c, "openid", &pkce().1, &format!("&claims={enc}"));
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", "pw-erin-123456").await;
    let done = step(app, &back).await;
    assert_eq!(
        query_param(&done, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{done}"
    );
    // Signed in at one factor; an essential mfa with prompt=none cannot ask.
    let mfa = format!(r#"{{"id_token":{{"acr":{{"essential":true,"value":"{MFA}"}}}}}}"#);
    let enc: String = url::form_urlencoded::byte_serialize(mfa.as_bytes()).collect();
    let url = app.authorize_url(
        &c,
        "openid",
        &pkce().1,
        &format!("&claims={enc}&prompt=none"),
    );
    let done = step(app, &url).await;
    assert_eq!(
        query_param(&done, "error").as_deref(),
        Some("interaction_required"),
        "{done}"
    );
    // A claims parameter that is not JSON: invalid_request.
    let url = app.authorize_url(&c, "openid", &pkce().1, "&claims=nope");
    let done = step(app, &url).await;
    assert_eq!(
        query_param(&done, "error").as_deref(),
        Some("invalid_request")
    );
}

/// A refresh token granted at one factor stops working once the client
/// requires mfa; the user signs in again, at mfa, and refreshes.
async fn refresh_below_a_new_requirement_fails(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = mfa_client(app).await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&c, "openid offline_access", &challenge, "&prompt=consent");
    let login = step(app, &url).await;
    let back = sign_in(app, &login, "erin", "pw-erin-123456").await;
    let done = finish(app, back).await;
    let code = query_param(&done, "code").unwrap();
    let tokens = app.redeem(&c, &code, &verifier).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["acr"],
        "urn:gatehouse:acr:pwd"
    );

    let mut client = app.state.store.client(&c.id).await.unwrap().unwrap();
    client.require_acr = Some(gatehouse_protocol::Acr::Mfa);
    app.state.store.update_client(&client).await.unwrap();
    app.state.registry.refresh().await.unwrap();
    app.clock.advance(5);
    let r = app.refresh(&c, &rt).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

/// The `openidconnect` crate asks for mfa with `acr_values`, and its ID
/// token verifier checks the `acr` it gets.
async fn openidconnect_checks_the_acr_it_asked_for(app: &TestApp) {
    use openidconnect::{
        core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
        AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
        IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, TokenResponse,
    };
    let u = app.create_user("erin", "pw-erin-123456").await;
    let t = enrol_totp(app, &u).await;
    let c = mfa_client(app).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let supported: Vec<String> = meta
        .acr_values_supported()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    assert!(supported.contains(&MFA.to_owned()), "{supported:?}");
    let rp = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(c.id.clone()),
        c.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(c.redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_auth_context_value(AuthenticationContextClass::new(MFA.to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let login = step(app, url.as_str()).await;
    let back = sign_in(app, &login, "erin", "pw-erin-123456").await;
    let second = step(app, &back).await;
    assert!(second.starts_with("/login/second-factor?tx="), "{second}");
    let (_, html) = get_html(app, &second).await;
    let r = post_code(app, &html, &code_at(&t, app.state.now()), "").await;
    assert_eq!(r.status(), 303);
    let done = finish(app, r.headers()["location"].to_str().unwrap().to_owned()).await;
    let code = query_param(&done, "code").unwrap_or_else(|| panic!("{done}"));
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let verifier =
        rp.id_token_verifier()
            .set_auth_context_verifier_fn(|acr| match acr.map(|a| a.as_str()) {
                Some(MFA) => Ok(()),
                other => Err(format!("asked for {MFA}, got {other:?}")),
            });
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&verifier, &nonce)
        .unwrap();
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(amr, ["pwd", "otp", "mfa"]);
}

crate::both_backends!(
    openidconnect_checks_the_acr_it_asked_for,
    a_required_level_makes_the_user_enrol,
    step_up_asks_for_the_missing_factor_only,
    wrong_codes_are_throttled,
    unmet_and_prompt_none,
    refresh_below_a_new_requirement_fails
);
