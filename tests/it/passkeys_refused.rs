//! Passkey answers that must be refused, made by a real authenticator
//! (Chromium's virtual one, through the DevTools protocol): a signature
//! counter that went backwards (a cloned authenticator), a ceremony
//! answered twice (replay), and an answer made for this origin sent to a
//! server with another origin and RP id. Each gets a page saying what went
//! wrong and no session.

use serde_json::{json, Value};

use crate::{
    browser::{prerequisites, Browser, ChromeDriver},
    passkeys_browser::{add_virtual_authenticator, presence},
    support::{spawn_localhost, DbKind, TestApp},
};

const PW: &str = "correct horse battery staple";

async fn script(b: &Browser, js: &str) -> Value {
    b.post("/execute/sync", json!({ "script": js, "args": [] }))
        .await
        .unwrap()
}

/// Registers a passkey for alice after a password sign-in, and uses it
/// once as her second factor (as the account page asks).
async fn register(b: &Browser, gh: &TestApp) {
    b.goto(&gh.url("/login")).await;
    b.type_into("#username", "alice").await;
    b.type_into("#password", PW).await;
    b.click("form[action='/login'] button[type='submit']").await;
    b.wait_for_page(&gh.base, "/account").await;
    b.click("#add-passkey").await;
    b.wait_for("#passkey-start").await;
    b.click("#passkey-start").await;
    b.wait_for_page(&gh.base, "/login/second-factor").await;
    b.click("#passkey-second").await;
    b.wait_for("#passkey-start").await;
    b.click("#passkey-start").await;
    b.wait_for_page(&gh.base, "/account").await;
}

/// Signs out and opens the passkey sign-in page (the button's), with the
/// authenticator waiting so the sign-in page's autofill does not answer.
async fn passkey_page(b: &Browser, gh: &TestApp, auth: &str) {
    b.cmd(reqwest::Method::DELETE, "/cookie", None)
        .await
        .unwrap();
    presence(b, auth, false).await;
    b.goto(&gh.url("/login")).await;
    b.click("#passkey-signin").await;
    b.wait_for("#passkey-start").await;
    presence(b, auth, true).await;
}

/// Answers the passkey page's ceremony but keeps the form from being sent:
/// the fields it would have posted, and the browser's CSRF cookie.
async fn capture_answer(b: &Browser) -> (Vec<(String, String)>, String) {
    script(
        b,
        "window.__sent = null; HTMLFormElement.prototype.submit = function () {
           window.__sent = Array.from(new FormData(this).entries());
         };",
    )
    .await;
    b.click("#passkey-start").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let fields = loop {
        let v = script(b, "return window.__sent;").await;
        if let Some(a) = v.as_array() {
            break a
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_owned(),
                        p[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>();
        }
        assert!(std::time::Instant::now() < deadline, "no answer captured");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let csrf = b.cookie("gatehouse_csrf").await.unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    (fields, csrf)
}

/// Posts captured fields to `base`'s `/login/passkey` with the CSRF cookie:
/// the status, whether a session cookie was set, and the page.
async fn post_answer(base: &str, fields: &[(String, String)], csrf: &str) -> (u16, bool, String) {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/login/passkey"))
        // Under both names: a server whose issuer is https uses the
        // `__Host-` prefix.
        .header(
            "cookie",
            format!("gatehouse_csrf={csrf}; __Host-gatehouse_csrf={csrf}"),
        )
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().contains("gatehouse_session="));
    (status, session, r.text().await.unwrap())
}

async fn scenario(b: &Browser, gh: &TestApp) {
    let user = gh.create_user("alice", PW).await;
    let auth = add_virtual_authenticator(b).await;
    register(b, gh).await;
    let sessions = || async {
        gh.state
            .store
            .sessions_of_user(&user.id)
            .await
            .unwrap()
            .len()
    };
    let before = sessions().await;

    // A replayed answer: the first post signs in, the same again does not.
    passkey_page(b, gh, &auth).await;
    let (fields, csrf) = capture_answer(b).await;
    let (status, session, _) = post_answer(&gh.base, &fields, &csrf).await;
    assert_eq!((status, session), (303, true), "the first answer signs in");
    let (status, session, page) = post_answer(&gh.base, &fields, &csrf).await;
    assert_eq!((status, session), (400, false), "a replay: {page}");
    assert!(page.contains("expired or was already used"), "{page}");
    assert_eq!(sessions().await, before + 1);

    // An answer made for this origin, sent to a server on the same database
    // with another origin and RP id.
    let other = gh
        .instance_with_issuer("https://gatehouse.example.test")
        .await;
    assert!(other.state.passkeys.enabled());
    passkey_page(b, gh, &auth).await;
    let (fields, csrf) = capture_answer(b).await;
    let (status, session, page) = post_answer(&other.base, &fields, &csrf).await;
    assert_eq!((status, session), (401, false), "another origin: {page}");
    assert!(page.contains("The passkey was not accepted"), "{page}");
    other.stop().await;
    assert_eq!(sessions().await, before + 1);

    // A cloned authenticator: the stored counter is ahead of the one the
    // authenticator signs with.
    let key = &gh.state.store.passkeys_of_user(&user.id).await.unwrap()[0];
    let mut credential: Value = serde_json::from_str(&key.credential).unwrap();
    credential["cred"]["counter"] = json!(1000);
    assert!(gh
        .state
        .store
        .record_passkey_use(
            &key.credential_id,
            &credential.to_string(),
            1000,
            key.backup_state,
            gh.state.now()
        )
        .await
        .unwrap());
    passkey_page(b, gh, &auth).await;
    b.click("#passkey-start").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b.body_text().await.contains("counter went backwards") {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal: {}",
            b.body_text().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sessions().await, before + 1, "no session for a clone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_passkey_answers_in_chromium() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let gh = spawn_localhost(DbKind::Sqlite).await.unwrap();
    let driver = ChromeDriver::start(&driver_path).await;
    let b = driver.session().await;
    scenario(&b, &gh).await;
    b.close().await;
    gh.stop().await;
}
