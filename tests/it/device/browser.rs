//! The device authorization grant (RFC 8628) with a real browser: while a
//! device polls over HTTP, the user opens `verification_uri_complete` in
//! headless Chromium, confirms the prefilled code, signs in on the real
//! login page, sees the confirmation with the user code and the warning
//! that the device is not this browser, approves, and sees the approved
//! page; the device's next poll gets the tokens. Each page is checked
//! with axe-core and photographed into `tests/artifacts/`.

use crate::{
    browser::{axe_source, prerequisites, Browser, ChromeDriver},
    device::{assert_error, device_authorization, poll_after, tess, tv, INTERVAL, PASSWORD, USER},
    support::{spawn_app, DbKind, TestApp},
};

async fn scenario(b: &Browser, gh: &TestApp, axe: Option<&str>) {
    let user = tess(gh).await;
    let c = tv(gh).await;
    let d = device_authorization(gh, &c, "openid profile").await;
    assert_error(
        &poll_after(gh, &c, &d.device_code, INTERVAL).await,
        "authorization_pending",
    );

    // The link the device shows (as a QR code, say): the code is filled in.
    b.goto(&d.verification_uri_complete).await;
    b.wait_for_page(&gh.base, "/device").await;
    let field = b.wait_for("form[action='/device'] #user_code").await;
    let prefilled = b
        .get(&format!("/element/{field}/property/value"))
        .await
        .unwrap();
    assert_eq!(prefilled, d.user_code.as_str(), "the code is prefilled");
    b.look(axe, "device-code").await;
    assert_error(
        &poll_after(gh, &c, &d.device_code, INTERVAL).await,
        "authorization_pending",
    );
    b.click("#device-continue").await;

    // The real sign-in page.
    b.wait_for_page(&gh.base, "/login").await;
    b.wait_for("form[action='/login'] #username").await;
    b.type_into("#username", USER).await;
    b.type_into("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type='submit']").await;

    // The confirmation: the client, the scopes, the code, the warning.
    b.wait_for_page(&gh.base, "/consent").await;
    b.wait_for("button[name='decision'][value='allow']").await;
    let code = b.text_of("#device-user-code").await;
    assert_eq!(code.trim(), d.user_code, "the user code is shown");
    let warning = b.text_of("#device-warning").await;
    assert!(!warning.trim().is_empty(), "a warning is written out");
    let page = b.body_text().await;
    assert!(page.contains("Living Room TV"), "the client: {page}");
    assert!(page.contains("profile"), "the scopes: {page}");
    b.look(axe, "device-consent").await;
    assert_error(
        &poll_after(gh, &c, &d.device_code, INTERVAL).await,
        "authorization_pending",
    );
    b.click("button[name='decision'][value='allow']").await;

    // Approved: the browser says so, the device gets its tokens.
    b.wait_for("#device-approved").await;
    b.look(axe, "device-approved").await;
    let (status, t) = poll_after(gh, &c, &d.device_code, INTERVAL).await;
    assert_eq!(status, 200, "{t}");
    let id = crate::step_up::claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], user.id.as_str());
    assert_eq!(id["aud"], c.id.as_str());
    assert_eq!(id["preferred_username"], USER);
    // Once only.
    assert_error(
        &poll_after(gh, &c, &d.device_code, INTERVAL).await,
        "invalid_grant",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_in_chromium() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let axe = axe_source();
    let gh = spawn_app(DbKind::Sqlite).await.unwrap();
    let driver = ChromeDriver::start(&driver_path).await;
    let b = driver.session().await;
    scenario(&b, &gh, axe.as_deref()).await;
    b.close().await;
    gh.stop().await;
}
