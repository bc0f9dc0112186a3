//! The authorization code's bindings (RFC 6749 4.1.3, 10.5; RFC 7636 4.6):
//! a request with another client, redirect URI or verifier is refused with
//! a description of what differs, and neither burns the code nor revokes
//! the grant of a used one; only the code's own client replaying it does.

use serde_json::Value;

use crate::support::{pkce, userinfo_status, TestApp, TestClient};

async fn exchange(
    app: &TestApp,
    c: &TestClient,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let r = app.token(c, &form).await;
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

fn refused(answer: &(u16, Value), description: &str) {
    assert_eq!(answer.0, 400, "{answer:?}");
    assert_eq!(answer.1["error"], "invalid_grant", "{answer:?}");
    assert_eq!(answer.1["error_description"], description, "{answer:?}");
}

/// Another client, another redirect URI, a wrong, malformed or missing
/// verifier: each is refused by name, and the code still works afterwards.
async fn failed_bindings_do_not_burn_the_code(app: &TestApp) {
    let c = app.web_client().await;
    let other = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;

    let a = exchange(app, &other, &code, &c.redirect_uri, Some(&verifier)).await;
    refused(&a, "the code was issued to another client");
    let a = exchange(
        app,
        &c,
        &code,
        "http://127.0.0.1:9999/other",
        Some(&verifier),
    )
    .await;
    refused(&a, "the code was issued for another redirect_uri");
    let a = exchange(app, &c, &code, &c.redirect_uri, Some(&pkce().0)).await;
    refused(&a, "PKCE verifier does not match");
    let a = exchange(app, &c, &code, &c.redirect_uri, Some("short")).await;
    refused(
        &a,
        "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1)",
    );
    let a = exchange(app, &c, &code, &c.redirect_uri, None).await;
    refused(
        &a,
        "the code was issued with a PKCE challenge; code_verifier is missing",
    );

    let a = exchange(app, &c, &code, &c.redirect_uri, Some(&verifier)).await;
    assert_eq!(a.0, 200, "the code survived the failed attempts: {a:?}");
    assert!(a.1["access_token"].is_string());
}

/// A used code replayed by another client, or by its own client without
/// the right verifier, revokes nothing; replayed by its own client with
/// its verifier, it revokes what it produced.
async fn only_the_own_client_revokes_on_replay(app: &TestApp) {
    let c = app.web_client().await;
    let other = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(app, at).await, 200);

    let a = exchange(app, &other, &code, &c.redirect_uri, Some(&verifier)).await;
    refused(&a, "the code was issued to another client");
    assert_eq!(
        userinfo_status(app, at).await,
        200,
        "another client revoked"
    );
    let a = exchange(app, &c, &code, &c.redirect_uri, Some(&pkce().0)).await;
    refused(&a, "PKCE verifier does not match");
    assert_eq!(
        userinfo_status(app, at).await,
        200,
        "a wrong verifier revoked"
    );

    let a = exchange(app, &c, &code, &c.redirect_uri, Some(&verifier)).await;
    refused(
        &a,
        "the code has already been used; the tokens issued for it are revoked",
    );
    assert_eq!(userinfo_status(app, at).await, 401, "the replay revokes");
}

/// Expired and unknown codes say which they are.
async fn expired_and_unknown_codes_are_told_apart(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;
    app.clock.advance(61);
    let a = exchange(app, &c, &code, &c.redirect_uri, Some(&verifier)).await;
    refused(&a, "the code has expired (codes are valid for 60 seconds)");
    let a = exchange(app, &c, "x' OR 1=1 --", &c.redirect_uri, Some(&verifier)).await;
    refused(
        &a,
        "the code is unknown: it was never issued here, or it expired and was removed",
    );
}

crate::both_backends!(
    failed_bindings_do_not_burn_the_code,
    only_the_own_client_revokes_on_replay,
    expired_and_unknown_codes_are_told_apart
);
