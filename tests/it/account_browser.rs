//! The second-factor pages in a real browser (headless Chromium): sign in
//! with a password, open the account page, set up an authenticator app
//! with a code computed here from the secret the page shows, see the
//! recovery codes once, confirm a code on the second-factor page (a wrong
//! one first: its error is tied to the field), and land on the account
//! page. Every page is checked with axe-core (no serious or critical
//! violation) and photographed into `tests/artifacts/`.

use crate::{
    browser::{axe_source, prerequisites, Browser, ChromeDriver},
    step_up::{code_at, totp},
    support::{spawn_localhost, DbKind, TestApp},
};

const PW: &str = "correct horse battery staple";

async fn scenario(b: &Browser, gh: &TestApp, axe: Option<&str>) {
    gh.create_user("alice", PW).await;
    b.goto(&gh.url("/login")).await;
    b.wait_for("#username").await;
    b.look(axe, "login").await;
    b.type_into("#username", "alice").await;
    b.type_into("#password", PW).await;
    b.click("form[action='/login'] button[type='submit']").await;
    b.wait_for_page(&gh.base, "/account").await;
    b.wait_for("#signed-in-user").await;
    b.look(axe, "account").await;

    b.click("form[action='/account/totp/begin'] button").await;
    b.wait_for_page(&gh.base, "/account/totp/begin").await;
    b.wait_for("#totp-secret").await;
    b.look(axe, "totp-enrol").await;
    let secret = b.text_of("#totp-secret").await;
    let t = totp(&secret);
    b.type_into("#code", &code_at(&t, gh.state.now())).await;
    b.click("form button[type='submit']").await;
    b.wait_for("#recovery-codes").await;
    b.look(axe, "recovery-codes").await;

    // Setting the app up did not raise the session: the account page asks
    // for a code first.
    b.click("#continue").await;
    b.wait_for_page(&gh.base, "/login/second-factor").await;
    b.wait_for("#code").await;
    b.look(axe, "second-factor").await;
    gh.clock.advance(30);
    let right = code_at(&t, gh.state.now());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    b.type_into("#code", wrong).await;
    b.click("form[action='/login/second-factor'] button").await;
    b.wait_for("#code-error").await;
    b.look(axe, "second-factor-wrong-code").await;
    b.type_into("#code", &right).await;
    b.click("form[action='/login/second-factor'] button").await;
    b.wait_for_page(&gh.base, "/account").await;
    b.wait_for("#recovery-status").await;
    b.look(axe, "account-with-totp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_pages_in_chromium() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let axe = axe_source();
    let gh = spawn_localhost(DbKind::Sqlite).await.unwrap();
    let driver = ChromeDriver::start(&driver_path).await;
    let b = driver.session().await;
    scenario(&b, &gh, axe.as_deref()).await;
    b.close().await;
    gh.stop().await;
}
