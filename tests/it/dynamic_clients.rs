//! Clients that registered themselves (RFC 7591) get the errors Gatehouse
//! finds on a page with a link, never by automatic redirect (RFC 9700
//! 4.11.2); login and consent pages show the redirect host next to the
//! client's name (RFC 7591 5).

use serde_json::{json, Value};

use crate::support::{hidden, pkce, query_param, TestApp, TestClient};

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn register(app: &TestApp, name: &str, redirect_uri: &str) -> TestClient {
    let token = app.initial_access_token(None).await;
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&token)
        .json(&json!({"client_name": name, "redirect_uris": [redirect_uri]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    TestClient {
        id: v["client_id"].as_str().unwrap().to_owned(),
        secret: v["client_secret"].as_str().map(str::to_owned),
        redirect_uri: redirect_uri.to_owned(),
    }
}

/// The `href` of the page's continue link, unescaped.
fn continue_link(html: &str) -> String {
    let start = html.find("id=\"continue\" href=\"").unwrap() + 20;
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&amp;", "&")
        .replace("&#x2F;", "/")
        .replace("&#x3D;", "=")
}

async fn errors_are_shown_not_redirected(app: &TestApp) {
    let c = register(app, "Self Registered", "https://rp.example/cb").await;
    let base = format!(
        "{}?client_id={}&redirect_uri={}&state=S",
        app.url("/authorize"),
        c.id,
        enc(&c.redirect_uri)
    );
    let with_pkce = format!("&code_challenge={}&code_challenge_method=S256", pkce().1);
    for (extra, error) in [
        (
            "&response_type=token&scope=openid".to_owned(),
            "unsupported_response_type",
        ),
        (
            "&response_type=code&scope=openid".to_owned(),
            "invalid_request",
        ),
        (
            format!("&response_type=code&scope=openid&prompt=none{with_pkce}"),
            "login_required",
        ),
    ] {
        let r = app.http.get(format!("{base}{extra}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{extra}");
        assert!(r.headers().get("location").is_none(), "{extra} redirected");
        let html = r.text().await.unwrap();
        assert!(html.contains("Self Registered"), "{html}");
        assert!(html.contains("rp.example"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        let link = continue_link(&html);
        assert!(link.starts_with("https://rp.example/cb?"), "{link}");
        assert_eq!(
            query_param(&link, "error").as_deref(),
            Some(error),
            "{link}"
        );
        assert_eq!(query_param(&link, "state").as_deref(), Some("S"));
        assert_eq!(
            query_param(&link, "iss").as_deref(),
            Some(app.base.as_str())
        );
    }
    // form_post: a button the user presses, no auto-submitting script.
    let r = app
        .http
        .get(format!(
            "{base}&response_type=token&response_mode=form_post"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("name=\"error\" value=\"unsupported_response_type\""));
    assert!(html.contains("<button type=\"submit\""));

    // A client an administrator registered is still redirected at once.
    let admin = app.web_client().await;
    let r = app
        .http
        .get(format!(
            "{}?client_id={}&redirect_uri={}&response_type=token",
            app.url("/authorize"),
            admin.id,
            enc(&admin.redirect_uri)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

/// Login and consent show where the user will be sent; the user's own
/// "deny" on the consent page goes back at once.
async fn login_and_consent_show_the_redirect_host(app: &TestApp) {
    app.create_user("frank", "pw-frank-123456").await;
    let c = register(app, "Lookalike Bank", "https://bank.rp.example/cb").await;
    let url = app.authorize_url(&c, "openid", &pkce().1, "");
    let r = app.browser.get(&url).send().await.unwrap();
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    let html = app
        .browser
        .get(app.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Lookalike Bank"), "{html}");
    assert!(html.contains("bank.rp.example"), "{html}");
    let r = app
        .browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("username", "frank"),
            ("password", "pw-frank-123456"),
        ])
        .send()
        .await
        .unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let r = app.browser.get(app.url(&back)).send().await.unwrap();
    let consent = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(consent.starts_with("/consent?"), "{consent}");
    let html = app
        .browser
        .get(app.url(&consent))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Lookalike Bank"), "{html}");
    assert!(html.contains("bank.rp.example"), "{html}");
    let r = app
        .browser
        .post(app.url("/consent"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap();
    assert_eq!(query_param(loc, "error").as_deref(), Some("access_denied"));

    // The login page names a client only from a transaction of this
    // browser, whose redirect URI was checked: a forged request in the URL
    // names nothing...
    let forged = url.replace(&enc(&c.redirect_uri), &enc("https://evil.example/cb"));
    let forged = forged.replace(&app.base, "");
    let html = app
        .http
        .get(app.url(&format!("/login?return={}", enc(&forged))))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Lookalike Bank"), "{html}");
    assert!(!html.contains("client-host"), "{html}");
    // ...and another browser cannot show this one's transaction.
    let r = app.http.get(app.url(&login)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(!html.contains("Lookalike Bank"), "{html}");
    assert!(!html.contains("client-host"), "{html}");
}

/// RP-Initiated Logout 1.0 section 2: a self-registered client's
/// post_logout_redirect_uri is followed only with an ID token confirming
/// the request; without one the signed-out page is shown (no open
/// redirector), while an operator's client is still redirected.
async fn logout_without_a_hint_does_not_redirect_for_them(app: &TestApp) {
    let token = app.initial_access_token(None).await;
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&token)
        .json(&json!({
            "client_name": "Registered",
            "redirect_uris": ["https://evil.example/cb"],
            "post_logout_redirect_uris": ["https://evil.example/bye"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let dynamic: Value = r.json().await.unwrap();
    let logout = |client_id: &str, uri: &str| {
        app.url(&format!(
            "/logout?client_id={client_id}&post_logout_redirect_uri={}&state=s",
            enc(uri)
        ))
    };
    let r = app
        .http
        .get(logout(
            dynamic["client_id"].as_str().unwrap(),
            "https://evil.example/bye",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no redirect without an id_token_hint");
    assert!(r.headers().get("location").is_none());
    // An operator's client with a registered URI is still redirected.
    let admin = app.web_client().await;
    let r = app
        .http
        .get(logout(&admin.id, "http://127.0.0.1:9999/signed-out"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

crate::both_backends!(
    errors_are_shown_not_redirected,
    login_and_consent_show_the_redirect_host,
    logout_without_a_hint_does_not_redirect_for_them
);
