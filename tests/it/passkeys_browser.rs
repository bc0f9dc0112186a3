//! Passkeys in a real browser: headless Chromium with a virtual
//! authenticator (the W3C WebAuthn WebDriver extension: CTAP2, internal
//! transport, resident keys, user verification), Gatehouse on
//! `http://localhost:<port>` (the RP id must be a host name). Register a
//! passkey after a password sign-in (which does not raise the session: she
//! uses the new passkey next), sign out, sign in with the passkey and
//! no username, then use it as the second factor after the password.
//! Screenshots land in `tests/artifacts/`.

use serde_json::json;

use crate::{
    browser::{prerequisites, Browser, ChromeDriver},
    support::{spawn_localhost, DbKind, TestApp},
};

async fn add_virtual_authenticator(b: &Browser) -> String {
    let v = b
        .post(
            "/webauthn/authenticator",
            json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true
            }),
        )
        .await
        .unwrap();
    v.as_str().unwrap().to_owned()
}

async fn sign_out(b: &Browser) {
    b.cmd(reqwest::Method::DELETE, "/cookie", None)
        .await
        .unwrap();
}

async fn password_sign_in(b: &Browser, gh: &TestApp) {
    b.goto(&gh.url("/login")).await;
    b.type_into("#username", "alice").await;
    b.type_into("#password", "correct horse battery staple")
        .await;
    b.click("form[action='/login'] button[type='submit']").await;
}

async fn scenario(b: &Browser, gh: &TestApp) {
    let user = gh
        .create_user("alice", "correct horse battery staple")
        .await;
    let auth = add_virtual_authenticator(b).await;

    // Password sign-in, then add a passkey.
    password_sign_in(b, gh).await;
    b.wait_for_page(&gh.base, "/account").await;
    b.click("#add-passkey").await;
    b.wait_for_page(&gh.base, "/account/passkeys/begin").await;
    b.wait_for("#passkey-start").await;
    b.screenshot("passkey-register").await;
    b.type_into("#name", "Laptop").await;
    b.click("#passkey-start").await;
    // Registering it did not raise this session (whoever stole a password
    // could register one): the account page asks her to use it first.
    b.wait_for_page(&gh.base, "/login/second-factor").await;
    let s = &gh.state.store.sessions_of_user(&user.id).await.unwrap()[0];
    assert_eq!(s.amr, vec!["pwd"]);
    assert_eq!(s.acr.as_deref(), Some("urn:gatehouse:acr:pwd"));
    let keys = gh.state.store.passkeys_of_user(&user.id).await.unwrap();
    assert_eq!(keys.len(), 1, "one passkey registered");
    assert_eq!(keys[0].name, "Laptop");
    let creds = b
        .get(&format!("/webauthn/authenticator/{auth}/credentials"))
        .await
        .unwrap();
    assert_eq!(creds[0]["isResidentCredential"], true, "{creds}");
    b.click("#passkey-second").await;
    b.wait_for("#passkey-start").await;
    b.click("#passkey-start").await;
    b.wait_for_page(&gh.base, "/account").await;
    b.wait_for("#signed-in-user").await;
    let s = &gh.state.store.sessions_of_user(&user.id).await.unwrap()[0];
    assert_eq!(s.amr, vec!["pwd", "swk", "user", "mfa"]);

    // Signed out, then in with the passkey alone: no username typed.
    // (The clock moves so the newest session is listed first.)
    sign_out(b).await;
    gh.clock.advance(1);
    b.goto(&gh.url("/login")).await;
    b.screenshot("login-with-passkey").await;
    b.click("#passkey-signin").await;
    b.wait_for("#passkey-start").await;
    b.screenshot("passkey-sign-in").await;
    b.click("#passkey-start").await;
    b.wait_for_page(&gh.base, "/account").await;
    let who = b.text_of("#signed-in-user").await;
    assert_eq!(who, "alice");
    let sessions = gh.state.store.sessions_of_user(&user.id).await.unwrap();
    let s = &sessions[0];
    assert_eq!(s.acr.as_deref(), Some("urn:gatehouse:acr:phr"));
    assert_eq!(s.amr, vec!["swk", "user", "mfa"]);

    // Password first, then the passkey as the second factor.
    sign_out(b).await;
    gh.clock.advance(1);
    password_sign_in(b, gh).await;
    b.wait_for_page(&gh.base, "/login/second-factor").await;
    b.screenshot("second-factor-passkey").await;
    b.click("#passkey-second").await;
    b.wait_for("#passkey-start").await;
    b.click("#passkey-start").await;
    b.wait_for_page(&gh.base, "/account").await;
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
    scenario(&b, &gh).await;
    b.close().await;
    gh.stop().await;
}
