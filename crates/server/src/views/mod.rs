//! Server-rendered pages: the tera templates (embedded in the binary from
//! `templates/`, each replaceable by a file of the same name in the
//! operator's `templates_dir`), checked once at start-up, and the security
//! headers every HTML response carries.
//!
//! A handler answers [`page`]: the status, the headers, and the template's
//! name and context, not yet rendered. [`render_pages`], a middleware
//! around every page route (`app::router`), renders it with the server's [`Views`]. So the
//! error pages that `AppError` makes without any state are the operator's
//! too, and no handler needs to carry the templates.

mod builtin;
mod load;
mod samples;

use std::{path::Path, sync::Arc, sync::OnceLock};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};
use tera::{Context, Tera};

pub use builtin::{AUTOFILL_SCRIPT, PASSKEY_SCRIPT, STYLESHEET_NAME};

use crate::i18n::Msg;
pub use load::LoadError;
pub use samples::{PageSpec, PAGES};

/// The compiled templates and the stylesheet this server renders with.
pub struct Views {
    tera: Tera,
    /// The built-in templates alone, kept when some are replaced: should
    /// a replacement fail on a context the start-up samples did not
    /// foresee, the page is the built-in one rather than a 500.
    builtin: Option<Tera>,
    /// The names of the templates `templates_dir` replaced.
    replaced: Vec<&'static str>,
    stylesheet: Bytes,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("replaced", &self.replaced)
            .field("stylesheet_bytes", &self.stylesheet.len())
            .finish_non_exhaustive()
    }
}

impl Views {
    /// The built-in templates and stylesheet.
    pub fn builtin() -> Result<Views, LoadError> {
        Views::load(None)
    }

    /// The built-in templates with those in `templates_dir` (if any) in
    /// place of their namesakes, compiled and rendered with every page's
    /// samples: any problem is an error naming the file and what is wrong.
    pub fn load(templates_dir: Option<&Path>) -> Result<Views, LoadError> {
        let Some(dir) = templates_dir else {
            let origin = "the built-in templates";
            let tera = load::compile(origin, &[])?;
            load::check(origin, &tera)?;
            return Ok(Views {
                tera,
                builtin: None,
                replaced: Vec::new(),
                stylesheet: Bytes::from_static(builtin::STYLESHEET.as_bytes()),
            });
        };
        let found = load::read_dir(dir)?;
        let origin = format!("templates_dir {}", dir.display());
        let tera = load::compile(&origin, &found.templates)?;
        load::check(&origin, &tera)?;
        let replaced: Vec<&'static str> = found.templates.iter().map(|(n, _)| *n).collect();
        let builtin = if replaced.is_empty() {
            None
        } else {
            let origin = "the built-in templates";
            Some(load::compile(origin, &[])?)
        };
        let mut shown = replaced.clone();
        if found.stylesheet.is_some() {
            shown.push(STYLESHEET_NAME);
        }
        tracing::info!(dir = %dir.display(), replaced = ?shown, "templates_dir read");
        Ok(Views {
            tera,
            builtin,
            replaced,
            stylesheet: found.stylesheet.map_or_else(
                || Bytes::from_static(builtin::STYLESHEET.as_bytes()),
                Bytes::from,
            ),
        })
    }

    /// The stylesheet served at `/assets/gatehouse.css`.
    pub fn stylesheet(&self) -> Bytes {
        self.stylesheet.clone()
    }

    /// The templates `templates_dir` replaced, by name.
    pub fn replaced(&self) -> &[&'static str] {
        &self.replaced
    }

    /// Renders `name`; a replaced template that fails falls back to the
    /// built-in one (logged). `None` only if the built-in one fails too.
    pub fn render(&self, name: &str, ctx: &Context) -> Option<String> {
        let e = match self.tera.render(name, ctx) {
            Ok(html) => return Some(html),
            Err(e) => e,
        };
        tracing::error!(template = name, error = %load::one_line(&e), "template render failed");
        let builtin = self.builtin.as_ref()?;
        match builtin.render(name, ctx) {
            Ok(html) => {
                tracing::warn!(
                    template = name,
                    "answered with the built-in template instead of the one from templates_dir"
                );
                Some(html)
            }
            Err(e) => {
                tracing::error!(template = name, error = %load::one_line(&e), "built-in template render failed");
                None
            }
        }
    }
}

/// A page a handler answered, to be rendered by [`render_pages`].
#[derive(Clone)]
struct Unrendered {
    name: &'static str,
    ctx: Arc<Context>,
}

/// Renders the page a handler answered with [`page`], with the server's
/// templates. Every page route is behind it (`app::router`: the JSON and JWT routes are not, and never answer a page).
pub async fn render_pages(State(views): State<Arc<Views>>, req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let Some(page) = r.extensions_mut().remove::<Unrendered>() else {
        return r;
    };
    match views.render(page.name, &page.ctx) {
        Some(html) => {
            *r.body_mut() = Body::from(html);
            r
        }
        None => {
            let mut r = (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            headers(r.headers_mut(), None, false);
            r
        }
    }
}

fn headers(h: &mut HeaderMap, script_hash: Option<&str>, connect: bool) {
    let mut script = match script_hash {
        Some(hash) => format!("script-src '{hash}'"),
        None => "script-src 'none'".to_owned(),
    };
    if connect {
        script.push_str("; connect-src 'self'");
    }
    // Images (the operator's logo; `data:` for the QR code) and fonts from
    // this origin only: `/assets/` (docs/branding.md).
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; {script}; frame-ancestors 'none'; base-uri 'none'"
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
        "form_post.html" => Some(FORM_POST.get_or_init(|| hash(builtin::FORM_POST_SCRIPT))),
        "passkey.html" => Some(PASSKEY.get_or_init(|| hash(PASSKEY_SCRIPT))),
        "login.html" => Some(AUTOFILL.get_or_init(|| hash(AUTOFILL_SCRIPT))),
        _ => None,
    }
}

/// An HTML response with the security headers, whose body is template
/// `name` rendered with `ctx` (by [`render_pages`]).
pub fn page(status: StatusCode, name: &'static str, ctx: &Context) -> Response {
    #[cfg(debug_assertions)]
    {
        let have = ctx.clone().into_json();
        debug_assert!(
            samples::matches_a_sample(name, &have),
            "{name} got variables no sample in views/samples.rs has: {have}"
        );
    }
    let mut r = status.into_response();
    headers(r.headers_mut(), script_hash(name), name == "login.html");
    r.extensions_mut().insert(Unrendered {
        name,
        ctx: Arc::new(ctx.clone()),
    });
    r
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

#[cfg(test)]
mod tests;
