//! `/assets/`: the pages' stylesheet (built in, or the operator's from
//! `templates_dir`) and the operator's own files from `assets_dir` (a
//! logo, fonts), served by tower-http's `ServeDir`: no directory
//! listings, nothing outside the directory (`..`, also percent-encoded, is
//! refused), content types from the file extension, `Last-Modified` and
//! ranges. docs/branding.md.

use std::path::Path;

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Router,
};
use tower_http::services::ServeDir;

use crate::{state::AppState, views::STYLESHEET_NAME};

/// How long a browser may use a file before asking again: an hour, since
/// the names carry no version, so an operator's new logo or stylesheet
/// shows within the hour (and a revalidation of an unchanged file is a
/// 304).
const CACHE_CONTROL: &str = "public, max-age=3600";

/// Refuses an `assets_dir` that is not a readable directory, or that holds
/// a file the stylesheet's path would hide.
pub fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("assets_dir {}: cannot read it: {e}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("assets_dir {}: not a directory", dir.display());
    }
    std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("assets_dir {}: cannot read it: {e}", dir.display()))?;
    if dir.join(STYLESHEET_NAME).exists() {
        anyhow::bail!(
            "assets_dir {}: {STYLESHEET_NAME} would never be served, since /assets/{STYLESHEET_NAME} \
             is the pages' stylesheet; to replace the stylesheet, put it in templates_dir",
            dir.display()
        );
    }
    Ok(())
}

/// The service nested at `/assets` for `dir`.
pub fn service(dir: &Path) -> Router {
    Router::new()
        .fallback_service(ServeDir::new(dir).append_index_html_on_directories(false))
        .layer(axum::middleware::from_fn(guard))
}

/// Refuses hidden files (any path segment beginning with a dot, however
/// encoded: `.htpasswd`, `.git/`), and marks what is served: cacheable for
/// [`CACHE_CONTROL`], only for this origin's pages, and inert when opened
/// directly (an SVG's scripts do not run).
async fn guard(req: Request, next: Next) -> Response {
    let decoded = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
    if decoded
        .split(['/', '\\'])
        .any(|segment| segment.starts_with('.'))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut r = next.run(req).await;
    let cacheable = r.status().is_success() || r.status() == StatusCode::NOT_MODIFIED;
    let h = r.headers_mut();
    if cacheable {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// `GET /assets/gatehouse.css`: the pages' stylesheet.
pub async fn stylesheet(State(state): State<AppState>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ],
        state.views.stylesheet(),
    )
        .into_response()
}
