//! The authorization endpoint (RFC 6749 4.1.1; OIDC Core 3.1.2; RFC 7636;
//! RFC 8707; RFC 9207).
//!
//! An unknown client or an unregistered redirect URI gets an error page and
//! never a redirect (RFC 6749 4.1.2.1). Every other error goes back to the
//! client's redirect URI with `error`, `state` and `iss`: at once for a
//! client an administrator registered, through a page with a link for one
//! that registered itself (RFC 9700 4.11.2). PKCE may be left out only as
//! [`pkce_required`] allows (RFC 9700 2.1.1).

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use gatehouse_storage::model::{AuthCode, Client, Session, User};
use tera::Context;
use url::Url;

use super::{error::AppError, form::Params};
use crate::{
    oauth::{redirect_uri_matches, AuthMethod, ErrorCode, GrantType, ScopeSet},
    pkce::CodeChallenge,
    registry::Resource,
    scopes,
    secrets::random_token,
    session,
    state::AppState,
    views,
};

/// How the response parameters travel back (OAuth 2.0 Multiple Response
/// Type Encoding Practices; OAuth 2.0 Form Post Response Mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// The `prompt` values (OIDC Core 3.1.2.1).
#[derive(Clone, Copy, Debug, Default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

/// A checked authorization request.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub client: Arc<Client>,
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
    pub resource: Option<Arc<Resource>>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub hint_sub: Option<String>,
    pub acr_values: Option<String>,
    /// The parameters as received, to rebuild the request after login or consent.
    pub params: Params,
}

/// Where an error goes.
#[derive(Debug)]
pub enum Rejection {
    /// No trustworthy redirect URI: show a page.
    Page(AppError),
    /// Back to the client: at once, or, for a client that registered
    /// itself, through a page with a link (see [`Confirm`]).
    Redirect {
        to: String,
        mode: ResponseMode,
        state: Option<String>,
        code: ErrorCode,
        description: String,
        confirm: Option<Confirm>,
    },
}

/// Who gets an error through a page instead of an automatic redirect: a
/// client registered through the registration endpoint, whose redirect
/// URIs nobody vouched for. Sending every browser there on any malformed
/// request would make Gatehouse an open redirector (RFC 9700 4.11.2).
#[derive(Debug, Clone)]
pub struct Confirm {
    pub client_name: String,
}

impl Confirm {
    /// `Some` for a dynamically registered client.
    pub fn for_client(client: &Client) -> Option<Confirm> {
        client.dynamically_registered().then(|| Confirm {
            client_name: client.name.clone(),
        })
    }
}

/// The host a redirect URI points to, as shown to the user next to the
/// client's name (RFC 7591 5): host and explicit port; internationalized
/// names in their ASCII form, so look-alikes stay visible. A URI without a
/// host (a native app's private-use scheme) shows its scheme.
pub fn redirect_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => format!("{}:", u.scheme()),
        },
        Err(_) => String::new(),
    }
}

impl From<AppError> for Rejection {
    fn from(e: AppError) -> Self {
        Rejection::Page(e)
    }
}

/// Why a request without a PKCE challenge is refused, or `None` when it may
/// omit one (RFC 9700 2.1.1): only a confidential client, in an OpenID
/// request (scope `openid`) that carries a `nonce`, and only when neither
/// the client's `require_pkce` nor the server's demands PKCE. The nonce
/// then binds the code to the relying party's session, as PKCE would.
fn pkce_required(
    state: &AppState,
    client: &Client,
    scope: &ScopeSet,
    nonce: Option<&str>,
) -> Option<&'static str> {
    if client.token_endpoint_auth_method == AuthMethod::None.as_str() {
        Some("public clients must use PKCE (code_challenge with S256)")
    } else if client.require_pkce {
        Some("this client is registered with require_pkce: send code_challenge with S256")
    } else if state.settings.require_pkce {
        Some("this server requires PKCE: send code_challenge with S256")
    } else if !scope.contains("openid") || nonce.is_none() {
        Some("PKCE is required (code_challenge with S256) unless the request has scope openid and a nonce")
    } else {
        None
    }
}

/// Checks an authorization request (also used again after login and consent).
pub async fn validate(state: &AppState, raw: &[u8]) -> Result<AuthRequest, Rejection> {
    let (params, duplicate, too_many) = Params::parse_lenient(raw);
    if duplicate
        .as_deref()
        .is_some_and(|d| d == "client_id" || d == "redirect_uri")
    {
        return Err(AppError::page("The request repeats client_id or redirect_uri.").into());
    }
    let client_id = params
        .get("client_id")
        .ok_or_else(|| AppError::page("The request names no client (client_id is missing)."))?;
    let client = state
        .registry
        .client(client_id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::page("The application that sent you here is not registered."))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| AppError::page("The request has no redirect_uri."))?;
    if !redirect_uri_matches(&client.redirect_uris, redirect_uri) {
        return Err(
            AppError::page("The redirect_uri is not registered for this application.").into(),
        );
    }
    let redirect_uri = redirect_uri.to_owned();
    let st = params.get("state").map(str::to_owned);
    let mode = match params.get("response_mode") {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err("response_mode must be query or form_post"),
    };
    let confirm = Confirm::for_client(&client);
    let reject = |code: ErrorCode, description: &str, mode: ResponseMode| Rejection::Redirect {
        to: redirect_uri.clone(),
        mode,
        state: st.clone(),
        code,
        description: description.to_owned(),
        confirm: confirm.clone(),
    };
    let mode = mode.map_err(|d| reject(ErrorCode::InvalidRequest, d, ResponseMode::Query))?;
    let fail = |code: ErrorCode, description: &str| reject(code, description, mode);

    if too_many {
        return Err(fail(ErrorCode::InvalidRequest, "too many parameters"));
    }
    if let Some(d) = duplicate {
        let name: String = d.chars().take(40).filter(|c| !c.is_control()).collect();
        return Err(fail(
            ErrorCode::InvalidRequest,
            &format!("parameter {name} is repeated"),
        ));
    }
    if params.get("request").is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "missing parameter response_type",
            ))
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    if !client
        .grant_types
        .iter()
        .any(|g| g == GrantType::AuthorizationCode.as_str())
    {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }

    // Scopes: the OIDC ones, and those of registered resource servers.
    let mut scope = ScopeSet::parse(params.get("scope").unwrap_or(""))
        .map_err(|e| fail(ErrorCode::InvalidScope, &e))?;
    let resources = state.registry.resources().await.map_err(AppError::from)?;
    let resource = match params.get("resource") {
        None => None,
        Some(r) => match resources.get(r) {
            Some(res) => Some(res.clone()),
            None => {
                return Err(fail(
                    ErrorCode::InvalidTarget,
                    "resource is not a registered resource server",
                ))
            }
        },
    };
    // API scopes are tied to one resource server (RFC 8707 2); without
    // `resource` the one that defines them all is implied.
    let resource = scopes::resolve(
        &client,
        &scope,
        resource.as_ref(),
        &resources,
        scopes::Subject::User,
    )
    .map_err(|d| fail(ErrorCode::InvalidScope, &d))?;
    if scope.contains("offline_access")
        && !client
            .grant_types
            .iter()
            .any(|g| g == GrantType::RefreshToken.as_str())
    {
        // OIDC Core 11: the request is still served, without offline access.
        scope = ScopeSet::of(scope.iter().filter(|s| *s != "offline_access"));
    }
    // RFC 6749 3.3 lets the server refuse a request without scope. A grant
    // of nothing would need no consent, so a self-registered client could
    // send a signed-in user straight to its redirect URI with a code.
    if scope.is_empty() {
        return Err(fail(
            ErrorCode::InvalidScope,
            "scope is required (for example openid)",
        ));
    }

    // PKCE (RFC 7636): S256 only; required unless `pkce_required` allows
    // its absence.
    let code_challenge = CodeChallenge::from_request(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    )
    .map_err(|why| fail(ErrorCode::InvalidRequest, why))?;
    let nonce = params.get("nonce");
    if code_challenge.is_none() {
        if let Some(why) = pkce_required(state, &client, &scope, nonce) {
            return Err(fail(ErrorCode::InvalidRequest, why));
        }
    }

    let mut prompt = Prompt::default();
    if let Some(p) = params.get("prompt") {
        for v in p.split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => prompt.select_account = true,
                _ => return Err(fail(ErrorCode::InvalidRequest, "unknown prompt value")),
            }
        }
        if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "prompt=none cannot be combined with other values",
            ));
        }
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            fail(
                ErrorCode::InvalidRequest,
                "max_age must be a non-negative integer",
            )
        })?),
    };
    // id_token_hint (OIDC Core 3.1.2.1): one of our ID tokens, possibly expired.
    let hint_sub = match params.get("id_token_hint") {
        None => None,
        Some(t) => match crate::id_token_hint::read(state, t) {
            Ok(h) => Some(h.sub),
            Err(e) => return Err(fail(ErrorCode::InvalidRequest, &e.to_string())),
        },
    };
    Ok(AuthRequest {
        redirect_uri,
        mode,
        state: st,
        scope,
        nonce: nonce.map(str::to_owned),
        code_challenge,
        resource,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        hint_sub,
        acr_values: params.get("acr_values").map(str::to_owned),
        client,
        params,
    })
}

/// Sends the authorization response (success or error) to the client.
pub fn respond(
    state: &AppState,
    to: &str,
    mode: ResponseMode,
    mut pairs: Vec<(&'static str, String)>,
) -> Response {
    pairs.push(("iss", state.settings.issuer.clone()));
    match mode {
        ResponseMode::Query => {
            let Ok(mut url) = Url::parse(to) else {
                return AppError::page("The redirect_uri is not a valid URL.").into_response();
            };
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in &pairs {
                    q.append_pair(k, v);
                }
            }
            see_other(url.as_str())
        }
        ResponseMode::FormPost => {
            let mut ctx = Context::new();
            ctx.insert("action", to);
            ctx.insert("params", &pairs);
            views::page(StatusCode::OK, "form_post.html", &ctx)
        }
    }
}

/// A 303 See Other to `location`.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => AppError::page("The redirect target is not a valid URL.").into_response(),
    }
}

fn reject(state: &AppState, r: Rejection) -> Response {
    match r {
        Rejection::Page(AppError::Unavailable) => super::error::unavailable_page(),
        Rejection::Page(e) => e.into_response(),
        Rejection::Redirect {
            to,
            mode,
            state: st,
            code,
            description,
            confirm,
        } => {
            let mut pairs = vec![
                ("error", code.as_str().to_owned()),
                ("error_description", description.clone()),
            ];
            if let Some(s) = st {
                pairs.push(("state", s));
            }
            match confirm {
                None => respond(state, &to, mode, pairs),
                Some(c) => confirm_page(state, &c, &to, mode, pairs, code, &description),
            }
        }
    }
}

/// The error shown on a page, with a link (or, for form_post, a button)
/// that delivers it to the client only if the user chooses to follow it.
fn confirm_page(
    state: &AppState,
    confirm: &Confirm,
    to: &str,
    mode: ResponseMode,
    mut pairs: Vec<(&'static str, String)>,
    code: ErrorCode,
    description: &str,
) -> Response {
    pairs.push(("iss", state.settings.issuer.clone()));
    let mut ctx = Context::new();
    ctx.insert("client_name", &confirm.client_name);
    ctx.insert("client_host", &redirect_host(to));
    ctx.insert("error", code.as_str());
    ctx.insert("description", description);
    match mode {
        ResponseMode::Query => {
            let Ok(mut url) = Url::parse(to) else {
                return AppError::page("The redirect_uri is not a valid URL.").into_response();
            };
            url.query_pairs_mut().extend_pairs(pairs.iter());
            ctx.insert("link", url.as_str());
        }
        ResponseMode::FormPost => {
            ctx.insert("action", to);
            ctx.insert("params", &pairs);
        }
    }
    views::page(StatusCode::BAD_REQUEST, "authorize_error.html", &ctx)
}

/// Sends an error Gatehouse found in a validated request back to its
/// client (through a page for a client that registered itself).
pub fn reject_to_client(
    state: &AppState,
    req: &AuthRequest,
    code: ErrorCode,
    description: &str,
) -> Response {
    reject(
        state,
        Rejection::Redirect {
            to: req.redirect_uri.clone(),
            mode: req.mode,
            state: req.state.clone(),
            code,
            description: description.to_owned(),
            confirm: Confirm::for_client(&req.client),
        },
    )
}

/// Sends `access_denied` back at once: the user decided on the consent
/// page, which showed the client's name and redirect host.
pub fn user_denied(state: &AppState, req: &AuthRequest) -> Response {
    reject(
        state,
        Rejection::Redirect {
            to: req.redirect_uri.clone(),
            mode: req.mode,
            state: req.state.clone(),
            code: ErrorCode::AccessDenied,
            description: "the user denied the request".to_owned(),
            confirm: None,
        },
    )
}

/// The request as a local `/authorize?...` URL, with `prompt` rewritten so
/// that coming back after login or consent does not ask again.
pub fn return_url(req: &AuthRequest, drop_prompts: &[&str]) -> String {
    let mut p = req.params.clone();
    let kept: Vec<&str> = p
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty() && !drop_prompts.contains(v))
        .collect();
    p.set("prompt", Some(kept.join(" ")));
    format!("/authorize?{}", p.to_query())
}

/// `GET /authorize` (OIDC Core 3.1.2.1: query parameters).
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&state, &headers, q.unwrap_or_default().as_bytes()).await
}

/// `POST /authorize` (OIDC Core 3.1.2.1: form-serialized parameters).
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if super::form::require_form(&headers).is_err() {
        return AppError::page("The authorization request must be form-encoded.").into_response();
    }
    handle(&state, &headers, &body).await
}

async fn handle(state: &AppState, headers: &HeaderMap, raw: &[u8]) -> Response {
    let req = match validate(state, raw).await {
        Ok(r) => r,
        Err(r) => return reject(state, r),
    };
    match proceed(state, headers, &req).await {
        Ok(r) => r,
        Err(AppError::Unavailable) => reject_to_client(
            state,
            &req,
            ErrorCode::TemporarilyUnavailable,
            "try again shortly",
        ),
        Err(AppError::Internal(detail)) => {
            tracing::error!(%detail, "authorization failed");
            reject_to_client(state, &req, ErrorCode::ServerError, "internal error")
        }
        Err(e) => e.into_response(),
    }
}

async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
) -> Result<Response, AppError> {
    let now = state.now();
    let current = session::current(state, headers).await?;
    let needs_login = match &current {
        None => true,
        Some((s, u)) => {
            req.prompt.login
                || req.prompt.select_account
                || (req.max_age.is_some_and(|m| now - s.auth_time > m)
                    && !super::sign_in::signed_in_for(state, req, s, now))
                || req.hint_sub.as_deref().is_some_and(|h| h != u.id)
        }
    };
    if needs_login {
        if req.prompt.none {
            return Ok(reject_to_client(
                state,
                req,
                ErrorCode::LoginRequired,
                "the user is not signed in",
            ));
        }
        let back = return_url(req, &["login", "select_account"]);
        let mut to = format!("/login?return={}", urlencode(&back));
        if let Some(h) = &req.login_hint {
            to.push_str(&format!("&login_hint={}", urlencode(h)));
        }
        return Ok(see_other(&to));
    }
    let Some((session, user)) = current else {
        return Err(AppError::Internal("session vanished".into()));
    };

    let granted = state
        .store
        .consented_scopes(&user.id, &req.client.id)
        .await?;
    let missing = req.scope.iter().any(|s| !granted.iter().any(|g| g == s));
    if req.prompt.consent || missing {
        if req.prompt.none {
            return Ok(reject_to_client(
                state,
                req,
                ErrorCode::ConsentRequired,
                "the user has not consented to these scopes",
            ));
        }
        return Ok(see_other(&format!(
            "/consent?return={}",
            urlencode(&return_url(req, &["consent"]))
        )));
    }
    issue_code(state, req, &session, &user).await
}

/// Issues the authorization code and sends it to the client.
pub async fn issue_code(
    state: &AppState,
    req: &AuthRequest,
    session: &Session,
    user: &User,
) -> Result<Response, AppError> {
    let now = state.now();
    let code = random_token();
    state
        .store
        .create_code(&AuthCode {
            code_hash: state.hasher.hash(&code),
            client_id: req.client.id.clone(),
            user_id: user.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scope: req.scope.to_string(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.as_ref().map(|c| c.as_str().to_owned()),
            resource: req.resource.as_ref().map(|r| r.record.audience.clone()),
            auth_time: session.auth_time,
            sid: Some(session.sid.clone()),
            acr: session.acr.clone(),
            amr: session.amr.clone(),
            family_id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            expires_at: now + state.settings.lifetimes.code,
        })
        .await?;
    state
        .store
        .add_session_client(&session.sid, &req.client.id, now)
        .await?;
    let mut pairs = vec![("code", code)];
    if let Some(s) = &req.state {
        pairs.push(("state", s.clone()));
    }
    Ok(respond(state, &req.redirect_uri, req.mode, pairs))
}

/// Percent-encodes a query component.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Extracts the authorization request bytes from a local return URL, which
/// must be `/authorize?...` (no open redirect through login or consent).
pub fn authorize_query(return_to: &str) -> Option<&str> {
    return_to.strip_prefix("/authorize?")
}
