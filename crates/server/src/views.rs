//! Server-rendered pages: the tera templates (embedded in the binary from
//! `templates/`), compiled once, and the security headers every HTML
//! response carries.

use std::sync::OnceLock;

use axum::{
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};
use tera::{Context, Tera};

use crate::i18n::Msg;

static TERA: OnceLock<Tera> = OnceLock::new();

const TEMPLATES: [(&str, &str); 13] = [
    ("base.html", include_str!("../../../templates/base.html")),
    ("login.html", include_str!("../../../templates/login.html")),
    (
        "consent.html",
        include_str!("../../../templates/consent.html"),
    ),
    ("error.html", include_str!("../../../templates/error.html")),
    (
        "logout.html",
        include_str!("../../../templates/logout.html"),
    ),
    (
        "form_post.html",
        include_str!("../../../templates/form_post.html"),
    ),
    (
        "authorize_error.html",
        include_str!("../../../templates/authorize_error.html"),
    ),
    (
        "second_factor.html",
        include_str!("../../../templates/second_factor.html"),
    ),
    (
        "totp_enrol.html",
        include_str!("../../../templates/totp_enrol.html"),
    ),
    (
        "recovery_codes.html",
        include_str!("../../../templates/recovery_codes.html"),
    ),
    (
        "passkey.html",
        include_str!("../../../templates/passkey.html"),
    ),
    (
        "account.html",
        include_str!("../../../templates/account.html"),
    ),
    (
        "sign_in_again.html",
        include_str!("../../../templates/sign_in_again.html"),
    ),
];

/// The stylesheet, served at `/assets/gatehouse.css`.
pub const CSS: &str = include_str!("../../../templates/gatehouse.css");

/// The inline scripts, each allowed by its hash on its own page only:
/// form_post's auto-submit, the passkey page's WebAuthn call, and the
/// sign-in page's passkey autofill (every other page runs no script at
/// all, and only the sign-in page may `fetch`, from its own origin).
const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";
/// The passkey page's script (`templates/passkey.js`): the page inserts it
/// as `{{ script }}`, so its hash is of exactly this text.
pub const PASSKEY_SCRIPT: &str = include_str!("../../../templates/passkey.js");
/// The sign-in page's script (`templates/passkey_autofill.js`): where the
/// browser offers passkeys in the username field's autofill (WebAuthn
/// conditional mediation), it asks for a ceremony (`fetch`, the page's one
/// `connect-src 'self'`) and waits for the user to pick one.
pub const AUTOFILL_SCRIPT: &str = include_str!("../../../templates/passkey_autofill.js");

fn tera() -> &'static Tera {
    TERA.get_or_init(|| {
        let mut t = Tera::default();
        crate::i18n::register(&mut t);
        // The templates are compiled into the binary and checked by the tests;
        // a failure here is a build defect, reported on every page render.
        if let Err(e) = t.add_raw_templates(TEMPLATES) {
            tracing::error!(error = %e, "templates failed to compile");
        }
        t
    })
}

/// Compiles the templates now (at start-up) so a defect shows at once.
pub fn init() -> Result<(), tera::Error> {
    let mut t = Tera::default();
    crate::i18n::register(&mut t);
    t.add_raw_templates(TEMPLATES)?;
    let _ = TERA.set(t);
    Ok(())
}

fn headers(h: &mut HeaderMap, script_hash: Option<&str>, connect: bool) {
    let mut script = match script_hash {
        Some(hash) => format!("script-src '{hash}'"),
        None => "script-src 'none'".to_owned(),
    };
    if connect {
        script.push_str("; connect-src 'self'");
    }
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; {script}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page's language follows the browser's (crate::i18n).
    h.append(header::VARY, HeaderValue::from_static("accept-language"));
}

/// The CSP source (`'sha256-...'`) of the script page `name` runs, if any,
/// computed once.
fn script_hash(name: &str) -> Option<&'static str> {
    static FORM_POST: OnceLock<String> = OnceLock::new();
    static PASSKEY: OnceLock<String> = OnceLock::new();
    static AUTOFILL: OnceLock<String> = OnceLock::new();
    let hash = |script: &str| format!("sha256-{}", STANDARD.encode(Sha256::digest(script)));
    match name {
        "form_post.html" => Some(FORM_POST.get_or_init(|| hash(FORM_POST_SCRIPT))),
        "passkey.html" => Some(PASSKEY.get_or_init(|| hash(PASSKEY_SCRIPT))),
        "login.html" => Some(AUTOFILL.get_or_init(|| hash(AUTOFILL_SCRIPT))),
        _ => None,
    }
}

/// Renders a template into an HTML response with the security headers.
pub fn page(status: StatusCode, name: &str, ctx: &Context) -> Response {
    match tera().render(name, ctx) {
        Ok(body) => {
            let mut r = (status, body).into_response();
            let hash = script_hash(name);
            headers(r.headers_mut(), hash, name == "login.html");
            r
        }
        Err(e) => {
            tracing::error!(error = %e, template = name, "template render failed");
            let mut r = (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            headers(r.headers_mut(), None, false);
            r
        }
    }
}

/// The error page: a person-readable message, never internals.
pub fn error_page(status: StatusCode, message: &Msg) -> Response {
    let mut ctx = Context::new();
    let title = if status.is_server_error() {
        Msg::ServerTitle
    } else {
        Msg::RequestTitle
    };
    ctx.insert("title", &title.text());
    ctx.insert("message", &message.text());
    page(status, "error.html", &ctx)
}
