//! Passkeys in a real browser: headless Chromium with a virtual
//! authenticator (the W3C WebAuthn WebDriver extension: CTAP2, internal
//! transport, resident keys, user verification), Gatehouse on
//! `http://localhost:<port>` (the RP id must be a host name). Register a
//! passkey after a password sign-in (which does not raise the session: she
//! uses the new passkey next), sign out, sign in by the sign-in page's
//! autofill (conditional mediation), sign out, sign in with the passkey and
//! no username, then use it as the second factor after the password.
//! The same through one origin in front of two instances, each ceremony
//! finished by the instance that did not begin it. Screenshots land in
//! `tests/artifacts/`.

use serde_json::json;

use crate::{
    browser::{axe_source, prerequisites, Browser, ChromeDriver},
    support::{
        proxy::{SplitProxy, Upstream},
        spawn_localhost, spawn_with_issuer, DbKind, TestApp,
    },
};

/// A virtual authenticator through the DevTools protocol
/// (`WebAuthn.addVirtualAuthenticator`): CTAP2, internal transport,
/// resident keys, user verification. Its id.
pub(crate) async fn add_virtual_authenticator(b: &Browser) -> String {
    cdp(b, "WebAuthn.enable", json!({})).await;
    let v = cdp(
        b,
        "WebAuthn.addVirtualAuthenticator",
        json!({ "options": {
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true
        }}),
    )
    .await;
    v["authenticatorId"].as_str().unwrap().to_owned()
}

/// The credentials the virtual authenticator holds.
async fn credentials(b: &Browser, authenticator: &str) -> serde_json::Value {
    let v = cdp(
        b,
        "WebAuthn.getCredentials",
        json!({ "authenticatorId": authenticator }),
    )
    .await;
    v["credentials"].clone()
}

/// Whether the virtual authenticator answers at once, as if the user
/// touched it (`WebAuthn.setAutomaticPresenceSimulation`).
pub(crate) async fn presence(b: &Browser, authenticator: &str, on: bool) {
    cdp(
        b,
        "WebAuthn.setAutomaticPresenceSimulation",
        json!({ "authenticatorId": authenticator, "enabled": on }),
    )
    .await;
}

/// A DevTools protocol command, through ChromeDriver.
pub(crate) async fn cdp(b: &Browser, cmd: &str, params: serde_json::Value) -> serde_json::Value {
    b.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

async fn sign_out(b: &Browser) {
    b.cmd(reqwest::Method::DELETE, "/cookie", None)
        .await
        .unwrap();
}

async fn password_sign_in(b: &Browser, origin: &str) {
    b.goto(&format!("{origin}/login")).await;
    b.type_into("#username", "alice").await;
    b.type_into("#password", "correct horse battery staple")
        .await;
    b.click("form[action='/login'] button[type='submit']").await;
}

/// The scenario in the browser at `origin` (the instance itself, or a
/// proxy in front of two); `gh` is an instance, for the database.
async fn scenario(b: &Browser, origin: &str, gh: &TestApp) {
    let axe = axe_source();
    let axe = axe.as_deref();
    let user = gh
        .create_user("alice", "correct horse battery staple")
        .await;
    let auth = add_virtual_authenticator(b).await;

    // Password sign-in, then add a passkey.
    password_sign_in(b, origin).await;
    b.wait_for_page(origin, "/account").await;
    b.click("#add-passkey").await;
    b.wait_for_page(origin, "/account/passkeys/begin").await;
    b.wait_for("#passkey-start").await;
    b.look(axe, "passkey-register").await;
    b.type_into("#name", "Laptop").await;
    b.click("#passkey-start").await;
    // Registering it did not raise this session (whoever stole a password
    // could register one): the account page asks her to use it first.
    b.wait_for_page(origin, "/login/second-factor").await;
    let s = &gh.state.store.sessions_of_user(&user.id).await.unwrap()[0];
    assert_eq!(s.amr, vec!["pwd"]);
    assert_eq!(s.acr.as_deref(), Some("urn:gatehouse:acr:pwd"));
    let keys = gh.state.store.passkeys_of_user(&user.id).await.unwrap();
    assert_eq!(keys.len(), 1, "one passkey registered");
    assert_eq!(keys[0].name, "Laptop");
    let creds = credentials(b, &auth).await;
    assert_eq!(creds[0]["isResidentCredential"], true, "{creds}");
    b.click("#passkey-second").await;
    b.wait_for("#passkey-start").await;
    b.click("#passkey-start").await;
    b.wait_for_page(origin, "/account").await;
    b.wait_for("#signed-in-user").await;
    let s = &gh.state.store.sessions_of_user(&user.id).await.unwrap()[0];
    assert_eq!(s.amr, vec!["pwd", "swk", "user", "mfa"]);

    // Signed out, then in by the sign-in page's autofill: the virtual
    // authenticator (present, verifying) answers the conditional request
    // as soon as the page makes it. (The clock moves so the newest session
    // is listed first.)
    sign_out(b).await;
    gh.clock.advance(1);
    b.goto(&format!("{origin}/login")).await;
    b.wait_for_page(origin, "/account").await;
    assert_eq!(b.text_of("#signed-in-user").await, "alice");
    let s = &gh.state.store.sessions_of_user(&user.id).await.unwrap()[0];
    assert_eq!(s.acr.as_deref(), Some("urn:gatehouse:acr:phr"));
    assert_eq!(s.amr, vec!["swk", "user", "mfa"]);

    // Again with the button, no username typed; the authenticator waits
    // (no user present) while the page's autofill request is pending.
    sign_out(b).await;
    gh.clock.advance(1);
    presence(b, &auth, false).await;
    b.goto(&format!("{origin}/login")).await;
    b.look(axe, "login-with-passkey").await;
    b.click("#passkey-signin").await;
    b.wait_for("#passkey-start").await;
    b.look(axe, "passkey-sign-in").await;
    presence(b, &auth, true).await;
    b.click("#passkey-start").await;
    b.wait_for_page(origin, "/account").await;
    let who = b.text_of("#signed-in-user").await;
    assert_eq!(who, "alice");
    let sessions = gh.state.store.sessions_of_user(&user.id).await.unwrap();
    let s = &sessions[0];
    assert_eq!(s.acr.as_deref(), Some("urn:gatehouse:acr:phr"));
    assert_eq!(s.amr, vec!["swk", "user", "mfa"]);

    // Password first, then the passkey as the second factor.
    sign_out(b).await;
    gh.clock.advance(1);
    presence(b, &auth, false).await;
    password_sign_in(b, origin).await;
    b.wait_for_page(origin, "/login/second-factor").await;
    presence(b, &auth, true).await;
    b.look(axe, "second-factor-passkey").await;
    b.click("#passkey-second").await;
    b.wait_for("#passkey-start").await;
    b.click("#passkey-start").await;
    b.wait_for_page(origin, "/account").await;
    b.wait_for("#signed-in-user").await;
    let sessions = gh.state.store.sessions_of_user(&user.id).await.unwrap();
    assert_eq!(sessions[0].amr, vec!["pwd", "swk", "user", "mfa"]);
    assert_eq!(sessions[0].acr.as_deref(), Some("urn:gatehouse:acr:phr"));
    let used = gh.state.store.passkeys_of_user(&user.id).await.unwrap();
    assert!(used[0].last_used_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_in_chromium() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let gh = spawn_localhost(DbKind::Sqlite).await.unwrap();
    assert!(gh.state.passkeys.enabled());
    let driver = ChromeDriver::start(&driver_path).await;
    let b = driver.session().await;
    let origin = gh.base.clone();
    scenario(&b, &origin, &gh).await;
    b.close().await;
    gh.stop().await;
}

/// Two instances behind one origin (`http://localhost:<proxy>`, their
/// issuer): every ceremony begun at one is finished at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_ceremonies_across_two_instances() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let (listener, port) = SplitProxy::bind().await;
    let origin = format!("http://localhost:{port}");
    let a = spawn_with_issuer(DbKind::Sqlite, &origin).await.unwrap();
    let b = a.second_instance().await;
    assert!(a.state.passkeys.enabled() && b.state.passkeys.enabled());
    let proxy = SplitProxy::start(listener, &a.base, &b.base);
    let driver = ChromeDriver::start(&driver_path).await;
    let br = driver.session().await;
    scenario(&br, &origin, &a).await;
    br.close().await;
    let seen = proxy.seen();
    for (path, at) in [
        ("/account/passkeys/begin", Upstream::Begins),
        ("/account/passkeys", Upstream::Rest),
        ("/login/passkey/begin", Upstream::Begins),
        ("/login/passkey", Upstream::Rest),
    ] {
        assert!(
            seen.iter().any(|(u, p)| p == path && *u == at),
            "{path} at {at:?}: {seen:?}"
        );
    }
    proxy.stop();
    b.stop().await;
    a.stop().await;
}

/// The sign-in page offers passkeys in the username field's autofill
/// (conditional mediation): its script, allowed by the page's policy, asks
/// for a ceremony as soon as the page loads in a browser that supports it,
/// even with no passkey to offer (the scenario above signs in by it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_page_offers_passkeys_in_autofill() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let gh = spawn_localhost(DbKind::Sqlite).await.unwrap();
    // Over HTTP: the JSON the script gets.
    let page = gh.browser.get(gh.url("/login")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("autocomplete=\"username webauthn\""),
        "{html}"
    );
    let r = gh
        .browser
        .post(gh.url("/login/passkey/begin"))
        .form(&[
            ("csrf", crate::support::hidden(&html, "csrf").as_str()),
            ("tx", ""),
            ("purpose", "autofill"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let begun: serde_json::Value = r.json().await.unwrap();
    assert!(begun["ceremony"].as_str().unwrap().len() > 20, "{begun}");
    assert!(begun["options"]["challenge"].is_string(), "{begun}");
    assert_eq!(gh.state.store.prune_ceremonies(i64::MAX).await.unwrap(), 1);

    // In Chromium: loading the page starts one.
    let driver = ChromeDriver::start(&driver_path).await;
    let b = driver.session().await;
    add_virtual_authenticator(&b).await;
    b.goto(&gh.url("/login")).await;
    b.wait_for("#passkey-autofill").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if gh.state.store.prune_ceremonies(i64::MAX).await.unwrap() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page's script asked for no ceremony"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.close().await;
    gh.stop().await;
}
