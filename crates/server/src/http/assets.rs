//! `/assets/`: the pages' stylesheet (built in, or the operator's from
//! `templates_dir`) and the operator's own files from `assets_dir` (a
//! logo, fonts), served by tower-http's `ServeDir`: no directory
//! listings, nothing outside the directory (`..`, also percent-encoded, is
//! refused; a symbolic link is followed only when its target is inside the
//! directory too), only regular files (no FIFO or device), content types
//! from the file extension, `Last-Modified` and ranges. docs/branding.md.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

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

/// Longest path segment served, in bytes (a file system's name limit).
const MAX_SEGMENT: usize = 255;
/// Longest path served, in bytes.
const MAX_PATH: usize = 1024;

/// Files an `assets_dir` must not hold: the database and the key-encryption
/// key of a development setup live side by side, and anything in the
/// directory is public.
const NEVER_PUBLIC: [&str; 6] = [".kek", ".db", ".db-wal", ".db-shm", ".sqlite", ".toml"];

/// Refuses an `assets_dir` that is not a readable directory, that holds a
/// file the stylesheet's path would hide, or a database, key or
/// configuration file (everything in it is public).
pub fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("assets_dir {}: cannot read it: {e}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("assets_dir {}: not a directory", dir.display());
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("assets_dir {}: cannot read it: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if NEVER_PUBLIC.iter().any(|ext| name.ends_with(ext)) {
            anyhow::bail!(
                "assets_dir {}: holds {name}, and everything in it is public; keep the \
                 database, the key-encryption key and configuration out of it",
                dir.display()
            );
        }
    }
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
    // Where the directory really is, for confining what a request reaches.
    let root = Arc::new(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
    Router::new()
        .fallback_service(ServeDir::new(dir).append_index_html_on_directories(false))
        .layer(axum::middleware::from_fn_with_state(root, guard))
}

/// Whether `path` (decoded, below the directory) names a regular file whose
/// real location is inside `root`: a symbolic link pointing out (at a key
/// file, say), a FIFO, a device, a loop or an overlong name is not.
async fn servable(root: &Path, path: &str) -> bool {
    let relative: PathBuf = path.split('/').filter(|s| !s.is_empty()).collect();
    match tokio::fs::canonicalize(root.join(relative)).await {
        Ok(real) if real.starts_with(root) => {
            tokio::fs::metadata(&real).await.is_ok_and(|m| m.is_file())
        }
        _ => false,
    }
}

/// Refuses hidden files (any path segment beginning with a dot, however
/// encoded: `.htpasswd`, `.git/`), and marks what is served: cacheable for
/// [`CACHE_CONTROL`], only for this origin's pages, and inert when opened
/// directly (an SVG's scripts do not run).
async fn guard(State(root): State<Arc<PathBuf>>, req: Request, next: Next) -> Response {
    let decoded = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
    if decoded.len() > MAX_PATH
        || decoded
            .split(['/', '\\'])
            .any(|segment| segment.starts_with('.') || segment.len() > MAX_SEGMENT)
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    if !servable(&root, &decoded).await {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut r = next.run(req).await;
    if r.status().is_server_error() {
        // A file that vanished or turned unreadable between the check and
        // the read: not found, not a 500 (and no error-level log per hit).
        tracing::debug!(status = %r.status(), "an asset could not be read");
        return StatusCode::NOT_FOUND.into_response();
    }
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
