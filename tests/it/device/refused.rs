//! The device flow's defences (RFC 8628 5), one test per finding of its
//! security reviews: user codes count per /64 and per /48;
//! a public client has no budget of its own a stranger could use up; a
//! withdrawn consent revokes a device grant and withdraws an unredeemed
//! approval; a forced logout denies an approval not yet redeemed; an
//! authorization answered in another browser ends the transaction at
//! once; dynamic registration refuses the device grant; a level the user
//! cannot reach denies the device at once.

use gatehouse_server::config::RawConfig;
use serde_json::{json, Value};

use super::{new_browser, poll, DEVICE_GRANT};
use crate::support::{hidden, spawn_app_with, DbKind, TestApp, TestClient};

const PASSWORD: &str = "correct horse battery staple";

/// A public client with the device and refresh grants.
async fn device_client(app: &TestApp) -> TestClient {
    super::device_client(app, "none", &[DEVICE_GRANT, "refresh_token"]).await
}

/// `POST /device_authorization` from `ip` (through the trusted proxy):
/// the status and the JSON body.
async fn start_from(app: &TestApp, c: &TestClient, scope: &str, ip: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/device_authorization"))
        .header("x-forwarded-for", ip)
        .form(&[("client_id", c.id.as_str()), ("scope", scope)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The device code and user code of a fresh device authorization.
async fn start(app: &TestApp, c: &TestClient, scope: &str) -> (String, String) {
    let (status, body) = start_from(app, c, scope, "192.0.2.1").await;
    assert_eq!(status, 200, "{body}");
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

/// Enters `code` at `/device` in `b` from `ip`.
async fn enter(app: &TestApp, b: &reqwest::Client, code: &str, ip: &str) -> reqwest::Response {
    let page = b.get(app.url("/device")).send().await.unwrap();
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    b.post(app.url("/device"))
        .header("x-forwarded-for", ip)
        .form(&[("csrf", csrf.as_str()), ("user_code", code)])
        .send()
        .await
        .unwrap()
}

/// The path a 303 goes to.
fn location(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), 303, "expected a redirect");
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Enters `code` in `b`, signs `username` in and answers the consent page
/// with `decision`; the last page's HTML.
async fn answer(
    app: &TestApp,
    b: &reqwest::Client,
    code: &str,
    username: &str,
    decision: &str,
) -> String {
    let mut next = location(&enter(app, b, code, "192.0.2.50").await);
    for _ in 0..6 {
        let r = b.get(app.url(&next)).send().await.unwrap();
        if r.status() == 303 {
            next = location(&r);
            continue;
        }
        let html = r.text().await.unwrap();
        let (csrf, tx) = (hidden(&html, "csrf"), hidden(&html, "tx"));
        let form: Vec<(&str, &str)> = if html.contains("action=\"/login\"") {
            vec![("username", username), ("password", PASSWORD)]
        } else if html.contains("action=\"/consent\"") {
            vec![("decision", decision)]
        } else {
            return html;
        };
        let action = if form.len() == 2 {
            "/login"
        } else {
            "/consent"
        };
        let mut form = form;
        form.extend([("csrf", csrf.as_str()), ("tx", tx.as_str())]);
        let r = b.post(app.url(action)).form(&form).send().await.unwrap();
        if r.status() == 200 {
            // A denial is answered at once.
            return r.text().await.unwrap();
        }
        next = location(&r);
    }
    panic!("the device sign-in did not end");
}

async fn app_behind_proxy(kind: DbKind) -> Option<TestApp> {
    spawn_app_with(
        kind,
        RawConfig {
            trusted_proxies: Some(vec!["127.0.0.0/8".into()]),
            ..RawConfig::default()
        },
    )
    .await
}

/// Entered codes count per /64 (20 a minute) and per /48 (200): one
/// subscriber's /64 that used its budget holds off neither the other /64s
/// of its /48 (a carrier's customers share one) nor, until the /48 used
/// its own, anyone there. Every entry counts, even a right code.
async fn addresses_count_per_64_and_per_48(app: &TestApp) {
    let c = device_client(app).await;
    let (_, user_code) = start(app, &c, "openid").await;
    for i in 0..20 {
        let r = enter(
            app,
            &new_browser(),
            "ZZZZ-ZZZZ",
            &format!("2001:db8:7:1::{i:x}"),
        )
        .await;
        assert_eq!(r.status(), 400, "entry {i} of the /64");
    }
    let r = enter(app, &new_browser(), &user_code, "2001:db8:7:1::ff").await;
    assert_eq!(
        r.status(),
        429,
        "even a right code, once the /64 used its budget"
    );
    assert!(r.headers().contains_key("retry-after"));
    let r = enter(app, &new_browser(), &user_code, "2001:db8:7:2::1").await;
    assert!(
        location(&r).starts_with("/login?tx="),
        "another /64 goes on"
    );
    // Nine more /64s of the /48 use up 179 more: the /48's 200 are spent.
    for i in 0..179 {
        let ip = format!("2001:db8:7:{:x}::1", 0x10 + i / 20);
        let r = enter(app, &new_browser(), "ZZZZ-ZZZZ", &ip).await;
        assert_eq!(r.status(), 400, "entry {i} from {ip}");
    }
    let r = enter(app, &new_browser(), &user_code, "2001:db8:7:ff::1").await;
    assert_eq!(r.status(), 429, "a fresh /64 of a /48 that used its budget");
    let r = enter(app, &new_browser(), &user_code, "2001:db8:8::1").await;
    assert!(
        location(&r).starts_with("/login?tx="),
        "another /48 goes on"
    );
    // A minute later the first /64 may enter codes again.
    app.clock.advance(61);
    let r = enter(app, &new_browser(), &user_code, "2001:db8:7:1::2").await;
    assert!(location(&r).starts_with("/login?tx="));
}

/// A client given the device grant by the operator (`clients update`)
/// after registering itself keeps it through its own RFC 7592 updates;
/// it could not have registered with it.
async fn a_granted_device_grant_survives_the_clients_updates(app: &TestApp) {
    let token = app.initial_access_token(None).await;
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(token)
        .json(&json!({
            "client_name": "Kiosk",
            "redirect_uris": ["https://kiosk.example/cb"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let id = body["client_id"].as_str().unwrap().to_owned();
    let rat = body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The operator adds the device grant.
    let mut client = (*app.state.registry.client(&id).await.unwrap().unwrap()).clone();
    client
        .grant_types
        .push(gatehouse_server::oauth::GrantType::DeviceCode);
    app.state.store.update_client(&client).await.unwrap();
    app.state.registry.refresh().await.unwrap();
    let put = |meta: Value| {
        app.http
            .put(app.url(&format!("/register/{id}")))
            .bearer_auth(&rat)
            .json(&meta)
            .send()
    };
    let r = put(json!({
        "client_id": id,
        "client_name": "Kiosk 2",
        "redirect_uris": ["https://kiosk.example/cb"],
        "grant_types": ["authorization_code", DEVICE_GRANT],
    }))
    .await
    .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_name"], "Kiosk 2");
}

/// Strangers cannot use up a public client's starts: its starts count
/// per address, so another address still gets codes.
async fn a_public_clients_starts_count_per_address(app: &TestApp) {
    let c = device_client(app).await;
    let mut limited = false;
    for i in 0..302 {
        let (status, body) = start_from(app, &c, "openid", "198.51.100.7").await;
        if status == 429 {
            assert_eq!(body["error"], "too_many_requests");
            limited = true;
            break;
        }
        assert_eq!(status, 200, "start {i}: {body}");
    }
    assert!(limited, "one address is limited");
    for ip in ["198.51.100.8", "198.51.100.9", "203.0.113.1"] {
        for _ in 0..120 {
            let (status, body) = start_from(app, &c, "openid", ip).await;
            assert_eq!(status, 200, "{ip}: {body}");
        }
    }
}

/// A withdrawn consent revokes the device's tokens (a grant without a
/// refresh token included) and withdraws an approval not yet redeemed.
async fn a_withdrawn_consent_reaches_device_grants(app: &TestApp) {
    app.create_user("dana", PASSWORD).await;
    let c = device_client(app).await;
    let b = new_browser();
    let (device_code, user_code) = start(app, &c, "openid").await;
    let html = answer(app, &b, &user_code, "dana", "allow").await;
    assert!(html.contains("id=\"device-approved\""), "{html}");
    let (status, tokens) = poll(app, &c, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "no offline_access");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(crate::support::userinfo_status(app, access).await, 200);
    // A second device approved, not yet polled.
    let (pending_code, user_code) = start(app, &c, "openid").await;
    let html = answer(app, &b, &user_code, "dana", "allow").await;
    assert!(html.contains("id=\"device-approved\""), "{html}");
    // Dana removes the app on her account page.
    let account = b
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&account, "csrf");
    let r = b
        .post(app.url("/account/consents/revoke"))
        .form(&[("csrf", csrf.as_str()), ("client_id", c.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(crate::support::userinfo_status(app, access).await, 401);
    app.clock.advance(6);
    let (status, body) = poll(app, &c, &pending_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("access_denied")),
        "{body}"
    );
}

/// A forced logout denies an approval the device has not redeemed yet.
async fn a_forced_logout_denies_an_unredeemed_approval(app: &TestApp) {
    let user = app.create_user("erin", PASSWORD).await;
    let c = device_client(app).await;
    let (device_code, user_code) = start(app, &c, "openid offline_access").await;
    let html = answer(app, &new_browser(), &user_code, "erin", "allow").await;
    assert!(html.contains("id=\"device-approved\""), "{html}");
    gatehouse_server::session_end::force_logout(&app.state, &user)
        .await
        .unwrap();
    let (status, body) = poll(app, &c, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("access_denied")),
        "{body}"
    );
}

/// A code entered in two browsers: once one answered, the other's
/// transaction ends at its next step with a page, before any sign-in.
async fn an_authorization_answered_elsewhere_ends_the_other_transaction(app: &TestApp) {
    app.create_user("finn", PASSWORD).await;
    let c = device_client(app).await;
    let (device_code, user_code) = start(app, &c, "openid").await;
    let late = new_browser();
    let late_next = location(&enter(app, &late, &user_code, "192.0.2.60").await);
    let html = answer(app, &new_browser(), &user_code, "finn", "deny").await;
    assert!(html.contains("id=\"device-denied\""), "{html}");
    let r = late.get(app.url(&late_next)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("already answered or has expired"), "{html}");
    let (status, body) = poll(app, &c, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("access_denied"))
    );
}

/// Dynamic registration refuses the device grant: its consent page would
/// show nothing but a name the registrant chose.
async fn registration_refuses_the_device_grant(app: &TestApp) {
    let policy = gatehouse_storage::model::RegistrationPolicy {
        grant_types: vec![
            gatehouse_server::oauth::GrantType::DeviceCode,
            gatehouse_server::oauth::GrantType::RefreshToken,
        ],
        scopes: vec![],
    };
    let token = app.initial_access_token(Some(&policy)).await;
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(token)
        .json(&json!({
            "client_name": "Gatehouse",
            "grant_types": [DEVICE_GRANT],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
}

/// A client that requires a passkey, on a server where passkeys are off
/// (an IP issuer): the page says why (no redirect) and the device's next
/// poll is `access_denied`, not a wait until it expires.
async fn an_unreachable_level_denies_the_device(app: &TestApp) {
    app.create_user("gus", PASSWORD).await;
    let c = device_client(app).await;
    let mut client = app.state.store.client(&c.id).await.unwrap().unwrap();
    client.require_acr = Some(gatehouse_protocol::Acr::Phr);
    app.state.store.update_client(&client).await.unwrap();
    app.state.registry.refresh().await.unwrap();
    let (device_code, user_code) = start(app, &c, "openid").await;
    let html = answer(app, &new_browser(), &user_code, "gus", "allow").await;
    assert!(
        html.contains("cannot meet the authentication level"),
        "{html}"
    );
    let (status, body) = poll(app, &c, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("access_denied")),
        "{body}"
    );
}

macro_rules! behind_proxy {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::app_behind_proxy(crate::support::DbKind::Sqlite).await.unwrap();
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = super::app_behind_proxy(crate::support::DbKind::Postgres).await else { return };
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
    };
}

behind_proxy!(
    addresses_count_per_64_and_per_48,
    a_public_clients_starts_count_per_address,
    a_withdrawn_consent_reaches_device_grants,
    a_forced_logout_denies_an_unredeemed_approval,
    an_authorization_answered_elsewhere_ends_the_other_transaction,
    registration_refuses_the_device_grant,
    a_granted_device_grant_survives_the_clients_updates,
    an_unreachable_level_denies_the_device,
);
