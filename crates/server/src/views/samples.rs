//! One entry per page template: the contexts its handlers give it, as
//! samples, and what a working page must show. Every template (built in or
//! the operator's) is rendered with each sample at start-up, so a template
//! that uses a variable a page does not have, or a value the wrong way, is
//! a start-up error and never a 500 at sign-in.
//!
//! The samples have exactly the variables the handlers insert (`null`
//! where a handler inserts `None`); in debug builds every rendered page
//! checks that its context has the variable names of one of its samples
//! ([`matches_a_sample`]), so a handler gaining a variable without its
//! sample fails the integration tests. docs/branding.md lists the same
//! variables (a unit test compares).

use serde_json::{json, Value};

use super::builtin::{AUTOFILL_SCRIPT, FORM_POST_SCRIPT, PASSKEY_SCRIPT};

/// A page template and what is known about its contexts.
pub struct PageSpec {
    /// The template's file name.
    pub name: &'static str,
    /// The contexts the handlers give it, each with a label for messages.
    pub samples: fn() -> Vec<(&'static str, Value)>,
    /// Variables the page's forms send back or the user must see: a
    /// template that leaves one out renders but does not work (a missing
    /// CSRF token fails every sign-in), so each must appear in the output
    /// whenever the sample gives it a text (or a list of texts).
    pub shown: &'static [&'static str],
    /// The inline script the page runs, which must appear byte for byte
    /// as `<script>…</script>`: the Content-Security-Policy allows it by
    /// its hash alone.
    pub script: Option<&'static str>,
}

impl PageSpec {
    /// Every variable any of the samples has, sorted.
    pub fn variables(&self) -> Vec<String> {
        let mut names: Vec<String> = (self.samples)()
            .iter()
            .filter_map(|(_, v)| v.as_object())
            .flat_map(|o| o.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Every page template; `base.html`, which they extend, is checked
/// through them.
pub const PAGES: &[PageSpec] = &[
    PageSpec {
        name: "login.html",
        samples: login,
        shown: &["csrf", "tx", "username", "error"],
        script: None,
    },
    PageSpec {
        name: "consent.html",
        samples: consent,
        shown: &["csrf", "tx", "client_name"],
        script: None,
    },
    PageSpec {
        name: "device.html",
        samples: device,
        shown: &["csrf", "user_code", "error"],
        script: None,
    },
    PageSpec {
        name: "error.html",
        samples: error,
        shown: &["message"],
        script: None,
    },
    PageSpec {
        name: "logout.html",
        samples: logout,
        shown: &["csrf", "return_to"],
        script: None,
    },
    PageSpec {
        name: "form_post.html",
        samples: form_post,
        shown: &["action"],
        script: Some(FORM_POST_SCRIPT),
    },
    PageSpec {
        name: "authorize_error.html",
        samples: authorize_error,
        shown: &["client_host", "link", "action"],
        script: None,
    },
    PageSpec {
        name: "second_factor.html",
        samples: second_factor,
        shown: &["csrf", "tx", "error"],
        script: None,
    },
    PageSpec {
        name: "totp_enrol.html",
        samples: totp_enrol,
        shown: &["csrf", "tx", "secret", "qr", "action", "error"],
        script: None,
    },
    PageSpec {
        name: "recovery_codes.html",
        samples: recovery_codes,
        shown: &["codes", "next"],
        script: None,
    },
    PageSpec {
        name: "passkey.html",
        samples: passkey,
        shown: &["csrf", "tx", "ceremony", "options", "action", "purpose"],
        script: Some(PASSKEY_SCRIPT),
    },
    PageSpec {
        name: "account.html",
        samples: account,
        shown: &["csrf", "username"],
        script: None,
    },
    PageSpec {
        name: "sign_in_again.html",
        samples: sign_in_again,
        shown: &["login_url"],
        script: None,
    },
];

/// The spec of page `name`, if it is a page.
pub fn spec(name: &str) -> Option<&'static PageSpec> {
    PAGES.iter().find(|p| p.name == name)
}

/// Whether `ctx` has exactly the variable names of one of the samples of
/// page `name` (true for a name that is not a page).
pub fn matches_a_sample(name: &str, ctx: &Value) -> bool {
    let Some(spec) = spec(name) else {
        return true;
    };
    let keys = |v: &Value| {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    let have = keys(ctx);
    (spec.samples)().iter().any(|(_, s)| keys(s) == have)
}

const CSRF: &str = "sample-csrf-token";
const TX: &str = "sample-transaction-id";

fn time(text: &str, iso: &str) -> Value {
    json!({ "text": text, "iso": iso })
}

fn login() -> Vec<(&'static str, Value)> {
    vec![
        (
            "signing in to an app after a wrong password",
            json!({
                "csrf": CSRF, "tx": TX, "username": "alice",
                "error": "The username or password is not right.",
                "client_name": "Example App", "client_host": "app.example.com",
                "passkeys": true, "busy": false, "autofill_script": AUTOFILL_SCRIPT,
            }),
        ),
        (
            "opened directly while busy, passkeys off",
            json!({
                "csrf": CSRF, "tx": null, "username": "",
                "error": null, "client_name": null, "client_host": null,
                "passkeys": false, "busy": true, "autofill_script": AUTOFILL_SCRIPT,
            }),
        ),
    ]
}

fn consent() -> Vec<(&'static str, Value)> {
    let ctx = |scopes: Value| {
        json!({
            "csrf": CSRF, "tx": TX, "client_name": "Example App",
            "client_host": "app.example.com", "username": "alice", "scopes": scopes,
            "device_user_code": null,
        })
    };
    let mut device = ctx(json!([
        { "name": "openid", "description": "Sign you in with your Gatehouse account" },
        { "name": "offline_access", "description": "Stay signed in" },
    ]));
    device["client_host"] = json!("");
    device["device_user_code"] = json!("BCDF-GHJK");
    vec![
        (
            "OpenID scopes and an API scope",
            ctx(json!([
                { "name": "openid", "description": "Sign you in with your Gatehouse account" },
                { "name": "email", "description": "Your email address" },
                { "name": "orders.read", "description": "Access the API permission \u{201c}orders.read\u{201d}" },
            ])),
        ),
        ("no scope", ctx(json!([]))),
        ("a device authorization (RFC 8628)", device),
    ]
}

fn device() -> Vec<(&'static str, Value)> {
    // The outcome pages have no form: no CSRF token.
    let ctx = |user_code: &str, error: Value, outcome: Value| {
        let csrf = if outcome.is_null() { CSRF } else { "" };
        json!({ "csrf": csrf, "user_code": user_code, "error": error, "outcome": outcome })
    };
    vec![
        ("the empty form", ctx("", Value::Null, Value::Null)),
        ("prefilled from verification_uri_complete", ctx("BCDF-GHJK", Value::Null, Value::Null)),
        (
            "a wrong code",
            ctx(
                "BCDF-GHJX",
                json!("That code is not valid or has expired. Check the code on your device and try again."),
                Value::Null,
            ),
        ),
        ("approved", ctx("", Value::Null, json!("approved"))),
        ("denied", ctx("", Value::Null, json!("denied"))),
    ]
}

fn error() -> Vec<(&'static str, Value)> {
    vec![(
        "a request that cannot be completed",
        json!({
            "title": "This request cannot be completed",
            "message": "The sign-in link has expired. Start again from the application.",
        }),
    )]
}

fn logout() -> Vec<(&'static str, Value)> {
    vec![
        ("signed out", json!({ "done": true })),
        (
            "an app asks to sign out",
            json!({
                "done": false, "csrf": CSRF, "client_name": "Example App",
                "return_to": "client_id=sample-client&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F",
            }),
        ),
        (
            "sign out without an app",
            json!({ "done": false, "csrf": CSRF, "client_name": null, "return_to": "" }),
        ),
    ]
}

fn form_post() -> Vec<(&'static str, Value)> {
    vec![(
        "a code to the app",
        json!({
            "action": "https://app.example.com/callback",
            "params": [["code", "sample-code"], ["state", "sample-state"], ["iss", "https://login.example.com"]],
        }),
    )]
}

fn authorize_error() -> Vec<(&'static str, Value)> {
    let base = || {
        json!({
            "client_name": "Registered App", "client_host": "app.example.com",
            "error": "invalid_scope", "description": "The scope orders.write is not allowed for this client.",
        })
    };
    let mut link = base();
    link["link"] = json!("https://app.example.com/callback?error=invalid_scope&state=s");
    let mut post = base();
    post["action"] = json!("https://app.example.com/callback");
    post["params"] = json!([["error", "invalid_scope"], ["state", "s"]]);
    vec![("back by a link", link), ("back by a form", post)]
}

fn second_factor() -> Vec<(&'static str, Value)> {
    vec![
        (
            "a code for an app after a wrong one",
            json!({
                "csrf": CSRF, "tx": TX, "error": "That code is not right. Try again.",
                "client_name": "Example App", "has_totp": true, "has_passkey": true,
            }),
        ),
        (
            "a passkey only, no app",
            json!({
                "csrf": CSRF, "tx": null, "error": null,
                "client_name": null, "has_totp": false, "has_passkey": true,
            }),
        ),
    ]
}

/// A 1×1 PNG, standing in for the QR code.
const QR: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

fn totp_enrol() -> Vec<(&'static str, Value)> {
    vec![
        (
            "required at sign-in, after a wrong code",
            json!({
                "csrf": CSRF, "tx": TX, "error": "That code is not right. Try again.",
                "client_name": "Example App", "has_totp": false, "has_passkey": false,
                "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "qr": QR,
                "action": "/login/second-factor",
            }),
        ),
        (
            "from the account page",
            json!({
                "csrf": CSRF, "tx": null, "error": null, "client_name": null,
                "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "qr": QR,
                "action": "/account/totp/confirm",
            }),
        ),
    ]
}

fn recovery_codes() -> Vec<(&'static str, Value)> {
    vec![(
        "ten new codes",
        json!({
            "codes": ["k3v9-x2m4", "p8q2-r7w5", "z4n6-c1b8", "h5j3-t9f2", "m7d4-s2k6",
                      "w1e8-y3u5", "q6r2-g4h9", "b9v3-n5m1", "x2c7-l8p4", "f5t1-a6s3"],
            "next": "/account",
        }),
    )]
}

fn passkey() -> Vec<(&'static str, Value)> {
    let options = r#"{"publicKey":{"challenge":"c2FtcGxl","rpId":"login.example.com","userVerification":"required"}}"#;
    vec![
        (
            "passwordless sign-in",
            json!({
                "csrf": CSRF, "tx": TX, "ceremony": "sample-ceremony-id", "options": options,
                "script": PASSKEY_SCRIPT, "title": "Sign in with a passkey",
                "lead": "Choose your passkey when your browser asks. No username needed.",
                "button": "Use passkey", "action": "/login/passkey", "mode": "get", "purpose": "signin",
            }),
        ),
        (
            "adding a passkey on the account page",
            json!({
                "csrf": CSRF, "tx": null, "ceremony": "sample-ceremony-id", "options": options,
                "script": PASSKEY_SCRIPT, "title": "Add a passkey",
                "lead": "Your device or security key will ask you to confirm.",
                "button": "Create passkey", "action": "/account/passkeys", "mode": "create",
                "purpose": "register",
            }),
        ),
    ]
}

fn account() -> Vec<(&'static str, Value)> {
    let t1 = time("2025-01-31 14:05 UTC", "2025-01-31T14:05:00Z");
    let t2 = time("2025-02-02 09:30 UTC", "2025-02-02T09:30:00Z");
    vec![
        (
            "every section filled, after a password error",
            json!({
                "username": "alice",
                "sessions": [
                    { "sid": "sample-sid-1", "device": "Firefox on Linux", "ip": "192.0.2.7",
                      "created": t1, "last_seen": t2, "current": true },
                    { "sid": "sample-sid-2", "device": "Safari on iOS", "ip": null,
                      "created": t1, "last_seen": t1, "current": false },
                ],
                "totp": true, "mfa_required": true,
                "recovery_unused": 8, "recovery_total": 10, "recovery_used": [t1, t2],
                "passkeys_enabled": true,
                "passkeys": [
                    { "credential_id": "sample-credential-1", "name": "Laptop", "created": t1, "last_used": t2 },
                    { "credential_id": "sample-credential-2", "name": "Security key", "created": t1, "last_used": null },
                ],
                "consents": [
                    { "client_id": "sample-client", "client_name": "Example App", "granted": t1,
                      "scopes": [{ "name": "openid", "description": "Sign you in with your Gatehouse account" }] },
                ],
                "recent_minutes": 10, "password_min_length": 12,
                "csrf": CSRF, "notice": "The passkey was added.",
                "password_error": "The new passwords do not match.", "password_error_field": "again",
            }),
        ),
        (
            "a new account, passkeys off",
            json!({
                "username": "bob",
                "sessions": [
                    { "sid": "sample-sid-1", "device": "Chrome on Windows", "ip": "192.0.2.8",
                      "created": t1, "last_seen": t1, "current": true },
                ],
                "totp": false, "mfa_required": false,
                "recovery_unused": 0, "recovery_total": 0, "recovery_used": [],
                "passkeys_enabled": false, "passkeys": [], "consents": [],
                "recent_minutes": 10, "password_min_length": 15,
                "csrf": CSRF, "notice": null,
                "password_error": null, "password_error_field": null,
            }),
        ),
    ]
}

fn sign_in_again() -> Vec<(&'static str, Value)> {
    vec![(
        "before a sensitive change",
        json!({ "login_url": "/login?login_hint=alice", "minutes": 10 }),
    )]
}
