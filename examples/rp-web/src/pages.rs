//! The app's HTML: a layout with a small stylesheet, the home page (signed
//! out, or the signed-in user's claims) and the error page. Every value is
//! HTML-escaped; every page carries a strict Content-Security-Policy.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use crate::session::HomeView;

/// The stylesheet, served at `/app.css`.
pub const CSS: &str = r#":root{--ink:#1b2330;--muted:#5f6b7d;--line:#dde2ea;--bg:#f6f7fb;--accent:#0f766e;--accent-ink:#fff}
*{box-sizing:border-box}
html,body{margin:0;padding:0}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
.top{display:flex;align-items:center;justify-content:space-between;padding:14px 28px;background:#fff;border-bottom:1px solid var(--line)}
.logo{font-weight:700;color:var(--accent);text-decoration:none;font-size:18px}
.who{color:var(--muted);font-size:14px}
main{max-width:720px;margin:40px auto;padding:0 20px}
.panel{background:#fff;border:1px solid var(--line);border-radius:12px;padding:28px 32px;box-shadow:0 6px 20px rgba(27,35,48,.06)}
h1{font-size:26px;line-height:1.25;margin:0 0 8px}
p{margin:0 0 16px}
.muted{color:var(--muted)}
.button{display:inline-block;font:inherit;font-weight:600;padding:10px 18px;border-radius:8px;border:1px solid transparent;background:var(--accent);color:var(--accent-ink);text-decoration:none;cursor:pointer}
.button.secondary{background:#fff;color:var(--ink);border-color:var(--line)}
.notice{background:#ecfdf5;color:#065f46;border:1px solid #a7f3d0;border-radius:8px;padding:10px 14px;margin:0 0 20px}
.alert{background:#fef3f2;color:#b42318;border:1px solid #fecdca;border-radius:8px;padding:10px 14px;margin:0 0 20px;overflow-wrap:anywhere}
table{width:100%;border-collapse:collapse;margin:8px 0 24px;font-size:14px}
th,td{text-align:left;padding:8px 10px;border-top:1px solid var(--line);vertical-align:top}
th{width:34%;font-weight:600;color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
td{overflow-wrap:anywhere}
form{margin:0}
"#;

/// The security headers of every page.
fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The callback URL carries the code: never send it on as Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML).
fn layout(status: StatusCode, title: &str, who: Option<&str>, body: &str) -> Response {
    let who = who
        .map(|w| format!(r#"<span class="who">Signed in as {}</span>"#, escape(w)))
        .unwrap_or_default();
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Example App</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<header class="top"><a class="logo" href="/">Example App</a>{who}</header>
<main>
<div class="panel">
{body}
</div>
</main>
</body>
</html>
"#,
        title = escape(title),
    );
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
    )
}

/// A claim value for display: strings as they are, the rest as JSON.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The home page.
pub fn home(view: &HomeView) -> Response {
    let Some(user) = &view.user else {
        let notice = if view.just_signed_out {
            r#"<p class="notice" id="signed-out">You have signed out.</p>"#
        } else {
            ""
        };
        let body = format!(
            r#"{notice}<h1>Welcome</h1>
<p class="muted">This example app signs you in with Gatehouse using OpenID Connect (authorization code flow with PKCE).</p>
<a class="button" id="sign-in" href="/login">Sign in</a>"#
        );
        return layout(StatusCode::OK, "Welcome", None, &body);
    };
    let claim = |k: &str| user.claims.get(k).map(display);
    let name = claim("name")
        .or_else(|| claim("preferred_username"))
        .or_else(|| claim("sub"))
        .unwrap_or_default();
    let mut rows = String::new();
    for (k, v) in &user.claims {
        rows.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(&display(v))
        ));
    }
    let body = format!(
        r#"<h1>Hello, {name}</h1>
<p class="muted">You are signed in. These are the claims of your ID token, validated by this app.</p>
<table id="claims">
{rows}</table>
<form method="post" action="/logout">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" class="button secondary" id="sign-out">Sign out</button>
</form>"#,
        name = escape(&name),
        csrf = escape(&view.csrf),
    );
    let who = claim("preferred_username").unwrap_or_else(|| name.clone());
    layout(StatusCode::OK, "Signed in", Some(&who), &body)
}

/// An error shown to the user, with a way back.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = format!(
            r#"<h1>Sign-in problem</h1>
<p class="alert" role="alert" id="error">{}</p>
<a class="button secondary" href="/">Back to the home page</a>"#,
            escape(&self.message)
        );
        layout(self.status, "Error", None, &body)
    }
}

/// The stylesheet response.
pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
    }
}
