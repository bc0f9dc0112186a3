//! An example relying party for Gatehouse: a small axum web app that signs
//! its users in with OpenID Connect (authorization code flow, PKCE S256,
//! state, nonce) through the `openidconnect` crate.
//!
//! - `GET /` shows a "Sign in" link, or the signed-in user's ID token claims
//!   and a "Sign out" button.
//! - `GET /login` starts the flow: state, nonce and the PKCE verifier are
//!   kept server-side in the browser's session (a random cookie).
//! - `GET /callback` checks `state` and the RFC 9207 `iss`, exchanges the
//!   code, validates the ID token (signature, iss, aud, exp, nonce,
//!   at_hash) and keeps its claims and the ID token in a new session.
//! - `POST /logout` ends the app's session and sends the browser to
//!   Gatehouse's `end_session_endpoint` with `id_token_hint`,
//!   `post_logout_redirect_uri` (the home page) and `state`.
//!
//! Run it with [`serve`] on a listener of your choice, or as the
//! `gatehouse-example-rp` binary configured by `RP_*` variables.

mod config;
mod oidc;
mod pages;
mod session;

use std::sync::Arc;

use axum::{
    extract::{Form, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use serde::Deserialize;
use tokio::net::TcpListener;

pub use config::{Config, ConfigError, DEFAULT_LISTEN};
use oidc::Oidc;
use pages::PageError;
use session::Sessions;

/// Why the app cannot run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler gets.
#[derive(Clone)]
struct App {
    oidc: Arc<Oidc>,
    sessions: Arc<Sessions>,
}

/// The app's router for `config` (checked first).
pub fn router(config: Config) -> Result<Router, Error> {
    config.check()?;
    let app = App {
        oidc: Arc::new(Oidc::new(config)?),
        sessions: Arc::new(Sessions::default()),
    };
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/app.css", get(pages::css))
        .with_state(app))
}

/// Serves the app on `listener` until the server fails. The listener may
/// be bound to port 0; `config.base_url` must then name the actual port.
pub async fn serve(config: Config, listener: TcpListener) -> Result<(), Error> {
    let app = router(config)?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// A 303 to `to`, optionally setting the session cookie.
fn see_other(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(to) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => return PageError::internal("Cannot redirect to an invalid URL.").into_response(),
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = cookie {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

#[derive(Deserialize)]
struct HomeQuery {
    state: Option<String>,
}

/// `GET /`.
async fn home(State(app): State<App>, headers: HeaderMap, Query(q): Query<HomeQuery>) -> Response {
    let id = session::read_cookie(&headers);
    let view = app.sessions.home(id.as_deref(), q.state.as_deref());
    pages::home(&view)
}

fn busy() -> PageError {
    PageError::unavailable("Too many sessions at the moment; try again later.")
}

/// `GET /login`: starts the code flow.
async fn login(State(app): State<App>, headers: HeaderMap) -> Result<Response, PageError> {
    let (url, pending) = app.oidc.authorization_url().await?;
    let old = session::read_cookie(&headers);
    let id = app
        .sessions
        .start_flow(old.as_deref(), pending)
        .ok_or_else(busy)?;
    let cookie = if old.as_deref() == Some(id.as_str()) {
        None
    } else {
        session::set_cookie(&id, app.oidc.config().is_https())
    };
    Ok(see_other(url.as_str(), cookie))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /callback`: the authorization response.
async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let id = session::read_cookie(&headers).ok_or_else(|| {
        PageError::bad_request(
            "No sign-in was started in this browser (or the app restarted). Please sign in again.",
        )
    })?;
    let state = q
        .state
        .as_deref()
        .ok_or_else(|| PageError::bad_request("The sign-in response carries no state."))?;
    let pending = app.sessions.take_flow(&id, state).ok_or_else(|| {
        PageError::bad_request(
            "The sign-in response does not belong to a sign-in started here (state mismatch), \
             or it came too late. Please sign in again.",
        )
    })?;
    app.oidc.check_iss(q.iss.as_deref()).await?;
    if let Some(error) = q.error.as_deref() {
        let message = match error {
            "access_denied" => "You did not allow this app to access your account.".to_owned(),
            other => match q.error_description.as_deref() {
                Some(d) => format!("Sign-in was not completed: {other} ({d})."),
                None => format!("Sign-in was not completed: {other}."),
            },
        };
        return Err(PageError::bad_request(message));
    }
    let code = q
        .code
        .ok_or_else(|| PageError::bad_request("The sign-in response carries no code."))?;
    let signed_in = app.oidc.finish(code, pending).await?;
    let new_id = app.sessions.sign_in(&id, signed_in).ok_or_else(busy)?;
    Ok(see_other(
        "/",
        session::set_cookie(&new_id, app.oidc.config().is_https()),
    ))
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

/// `POST /logout`: ends the app's session, then Gatehouse's.
async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, PageError> {
    let Some(id) = session::read_cookie(&headers) else {
        return Ok(see_other("/", None));
    };
    let Some((id_token, state)) = app.sessions.sign_out(&id, &form.csrf) else {
        return Ok(see_other("/", None));
    };
    match app.oidc.logout_url(&id_token, state).await? {
        Some(url) => Ok(see_other(url.as_str(), None)),
        None => Ok(see_other("/", None)),
    }
}
