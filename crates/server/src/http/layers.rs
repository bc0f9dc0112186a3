//! The middleware between the listener and the routes: body limits, the
//! request time-out, and the cache headers of the credential endpoints.
//! Those are set by path outside everything else, so every answer on those
//! paths carries them, whoever makes it: the handler, a 405 fallback, an
//! extractor's rejection, the body limit's 413 or the time-out's 503.

use std::time::Duration;

use axum::{
    extract::{DefaultBodyLimit, Request},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
    Router,
};
use tower_http::{
    limit::RequestBodyLimitLayer, set_header::SetResponseHeaderLayer, timeout::TimeoutLayer,
};

/// Largest request body accepted anywhere (forms and JSON are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a request may take before it is answered 503 (the server was
/// slow, not the client: RFC 9110 15.6.4, not 408).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the answers on a path must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CacheRule {
    /// `Cache-Control: no-store`.
    NoStore,
    /// `Cache-Control: no-store` and `Pragma: no-cache` (the token endpoint).
    NoStorePragma,
}

/// The rule of a request path: the API endpoints that hand out or describe
/// tokens and credentials (RFC 6749 5.1, RFC 7662 2.2, RFC 7591 3.2.1, OIDC
/// Core 5.3.2, RFC 9126 2.2); `/register/{client_id}` is one non-empty segment. A new
/// credential route is added here.
fn cache_rule(path: &str) -> Option<CacheRule> {
    match path {
        "/token" => Some(CacheRule::NoStorePragma),
        "/userinfo"
        | "/introspect"
        | "/revoke"
        | "/register"
        | "/par"
        | "/device_authorization" => Some(CacheRule::NoStore),
        _ => path
            .strip_prefix("/register/")
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(|_| CacheRule::NoStore),
    }
}

/// Around the routes, the body limits and the time-out, so it sees every
/// answer: the credential paths' cache headers (overriding whatever a
/// handler set), and `Retry-After` on a 503 that has none (the time-out's;
/// RFC 9110 10.2.3).
async fn edge_headers(req: Request, next: Next) -> Response {
    let rule = cache_rule(req.uri().path());
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    if let Some(rule) = rule {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if rule == CacheRule::NoStorePragma {
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
    }
    if r.status() == StatusCode::SERVICE_UNAVAILABLE
        && !r.headers().contains_key(header::RETRY_AFTER)
    {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// `router` behind the body limits (64 KiB, 413 beyond), the time-out
/// (`timeout`, then 503) and [`edge_headers`]; nosniff on every answer.
pub fn around<S>(router: Router<S>, timeout: Duration) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(axum::middleware::from_fn(edge_headers))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::{body::Body, routing::post};
    use tower::ServiceExt as _;

    #[test]
    fn the_rule_follows_the_credential_routes() {
        assert_eq!(cache_rule("/token"), Some(CacheRule::NoStorePragma));
        for p in [
            "/userinfo",
            "/introspect",
            "/revoke",
            "/register",
            "/register/abc",
            "/par",
        ] {
            assert_eq!(cache_rule(p), Some(CacheRule::NoStore), "{p}");
        }
        for p in [
            "/jwks",
            "/statuslists/1",
            "/authorize",
            "/register/",
            "/register/a/b",
            "/tokens",
            "/",
        ] {
            assert_eq!(cache_rule(p), None, "{p}");
        }
    }

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "late"
    }

    fn app() -> Router {
        around(
            Router::new()
                .route("/token", post(|_: axum::body::Bytes| async { "ok" }))
                .route("/jwks", post(|_: axum::body::Bytes| async { "ok" }))
                .route("/revoke", post(slow)),
            Duration::from_millis(50),
        )
    }

    fn big_post(path: &str) -> Request {
        axum::http::Request::post(path)
            .header(header::CONTENT_LENGTH, MAX_BODY_BYTES + 1)
            .body(Body::from(vec![b'a'; MAX_BODY_BYTES + 1]))
            .unwrap()
    }

    #[tokio::test]
    async fn answers_made_before_the_route_carry_the_cache_headers() {
        // The body limit's 413 on the token endpoint.
        let r = app().oneshot(big_post("/token")).await.unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[header::PRAGMA], "no-cache");
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        // Not on a public path.
        let r = app().oneshot(big_post("/jwks")).await.unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.headers().get(header::CACHE_CONTROL).is_none());
        // The time-out: 503 with Retry-After, and no-store on its path.
        let req = axum::http::Request::post("/revoke")
            .body(Body::empty())
            .unwrap();
        let r = app().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert!(r.headers().get(header::PRAGMA).is_none());
    }
}
