//! The checks of an authorization request, one function per rule in the
//! order they run (the shape of node-oidc-provider's `check_*` steps).
//! [`validate`] is that list.
//!
//! An unknown client or an unregistered redirect URI is a page, never a
//! redirect (RFC 6749 4.1.2.1): those checks answer [`Rejection::Page`].
//! Every later check answers through [`Reply`], which sends the error back
//! to the now trusted redirect URI.

use std::{collections::HashMap, sync::Arc};

use gatehouse_storage::model::Client;

use super::{
    request::{
        AuthorizationRequest, Checked, Confirm, Prompt, Received, Rejection, ResponseMode, Via,
    },
    request_object,
};
use crate::{
    error::OAuthError,
    i18n::{Msg, UiLocales},
    oauth::{redirect_uri_matches, AuthMethod, ErrorCode, GrantType, Jkt, ScopeSet},
    pkce::CodeChallenge,
    registry::Resource,
    scopes,
    state::AppState,
};

/// Checks an authorization request, once: a request object's parameters
/// (RFC 9101 5: those outside it are ignored) once its signature is
/// checked, or the parameters as sent.
pub async fn validate(state: &AppState, received: &Received) -> Result<Checked, Rejection> {
    match received.get("request") {
        Some(jwt) if received.object.is_none() => {
            let inner = request_object::open(state, received, jwt).await?;
            checks(state, &inner).await
        }
        _ => checks(state, received).await,
    }
}

/// The checks, in order.
async fn checks(state: &AppState, received: &Received) -> Result<Checked, Rejection> {
    check_trusted_parameters_once(received)?;
    let client = check_client(state, received).await?;
    let redirect_uri = check_redirect_uri(&client, received)?;
    let reply = check_response_mode(&client, &redirect_uri, received)?;
    super::pushed::check_required(state, &reply, &client, received)?;
    check_parameters(&reply, received)?;
    check_lengths(&reply, received)?;
    check_request_object(state, &reply, &client, received)?;
    check_response_type(&reply, received)?;
    check_client_grant(&reply, &client)?;
    let requested = check_scope(&reply, received)?;
    let (named, resources) = check_resource(state, &reply, received).await?;
    let (scope, resource) = check_scope_grant(&reply, &client, requested, named, &resources)?;
    let code_challenge = check_pkce(state, &reply, &client, &scope, received)?;
    let prompt = check_prompt(&reply, received)?;
    let max_age = check_max_age(&reply, received)?;
    let hint_sub = check_id_token_hint(state, &reply, received)?;
    let acr = check_acr(&reply, received)?;
    let dpop_jkt = check_dpop_jkt(&reply, received)?;
    if let Some(object) = &received.object {
        request_object::spend(state, &reply, &client, object).await?;
    }
    Ok(Checked {
        request: AuthorizationRequest {
            client_id: client.id.clone(),
            redirect_uri,
            response_mode: reply.mode,
            state: reply.state,
            scope,
            nonce: received.get("nonce").map(str::to_owned),
            code_challenge,
            resource: resource.map(|r| r.record.audience.clone()),
            prompt,
            max_age,
            login_hint: received.get("login_hint").map(str::to_owned),
            hint_sub,
            acr_values: received.get("acr_values").map(str::to_owned),
            acr,
            ui_locales: check_ui_locales(received),
            dpop_jkt,
            pushed: received.via == Via::Pushed,
            device: None,
        },
        client,
    })
}

/// The longest value, in bytes, of each free-form parameter a transaction
/// keeps: without a cap, anyone knowing a client id could make every
/// `/authorize` store hundreds of kilobytes. `state` keeps room for the
/// 4 KB values relying parties are known to send (and get back intact).
pub const MAX_LENGTHS: [(&str, usize); 4] = [
    ("state", 4096),
    ("nonce", 512),
    ("login_hint", 512),
    ("acr_values", 512),
];

/// Checks a stored request again against its client's registration as it
/// is now, each time its transaction is continued: an administrator or the
/// client (RFC 7592) may have removed the redirect URI or the grant,
/// narrowed the scopes or turned on `require_pkce` since `/authorize`.
/// Every failure says what no longer holds.
pub async fn recheck(
    state: &AppState,
    client: &Client,
    req: &AuthorizationRequest,
) -> Result<(), Rejection> {
    let reply = Reply {
        to: req.redirect_uri.clone(),
        mode: req.response_mode,
        state: req.state.clone(),
        confirm: None,
    };
    if let Some(device) = &req.device {
        // A device authorization (RFC 8628): no redirect URI, PKCE or
        // pushed request; the grant and the scopes still hold, and it is
        // still undecided (not answered in another browser, not expired).
        if !client.grant_types.contains(&GrantType::DeviceCode) {
            return Err(reply.reject(
                ErrorCode::UnauthorizedClient,
                "this client may no longer use the device authorization grant",
            ));
        }
        if !state
            .store
            .device_authorization_pending(&device.device_code_hash, state.now())
            .await?
        {
            return Err(Rejection::Page(Msg::DeviceGone));
        }
    } else {
        registered_redirect_uri(client, &req.redirect_uri)?;
        check_client_grant(&reply, client)?;
    }
    let resources = state.registry.resources().await?;
    let named = match &req.resource {
        None => None,
        Some(audience) => Some(resources.get(audience).cloned().ok_or_else(|| {
            reply.reject(
                ErrorCode::InvalidTarget,
                "resource is not a registered resource server",
            )
        })?),
    };
    let resolved = scopes::resolve(
        client,
        &req.scope,
        named.as_ref(),
        &resources,
        scopes::Subject::User,
    )
    .map_err(|d| reply.reject(ErrorCode::InvalidScope, &d))?;
    if resolved.map(|r| r.record.audience.clone()) != req.resource {
        return Err(reply.reject(
            ErrorCode::InvalidTarget,
            "the scopes no longer belong to the resource server",
        ));
    }
    if req.device.is_some() {
        return Ok(());
    }
    if req.code_challenge.is_none() {
        if let Some(why) = pkce_required(state, client, &req.scope, req.nonce.as_deref()) {
            return Err(reply.reject(ErrorCode::InvalidRequest, why));
        }
    }
    if !req.pushed
        && (client.require_pushed_authorization_requests
            || state.settings.require_pushed_authorization_requests)
    {
        return Err(reply.reject(
            ErrorCode::InvalidRequest,
            "pushed authorization requests are now required: start again with POST /par",
        ));
    }
    Ok(())
}

/// Where errors go once the redirect URI is trusted.
pub struct Reply {
    to: String,
    mode: ResponseMode,
    state: Option<String>,
    confirm: Option<Confirm>,
}

impl Reply {
    /// The error `code` with `description`, back to the client.
    pub fn reject(&self, code: ErrorCode, description: &str) -> Rejection {
        Rejection::Redirect {
            to: self.to.clone(),
            mode: self.mode,
            state: self.state.clone(),
            code,
            description: description.to_owned(),
            confirm: self.confirm.clone(),
        }
    }
}

/// `client_id` and `redirect_uri` decide where errors go: repeated, neither
/// can be trusted.
fn check_trusted_parameters_once(received: &Received) -> Result<(), Rejection> {
    if received
        .duplicate
        .as_deref()
        .is_some_and(|d| d == "client_id" || d == "redirect_uri")
    {
        return Err(Rejection::Page(Msg::RepeatedClientOrRedirect));
    }
    Ok(())
}

/// The client must be registered.
async fn check_client(state: &AppState, received: &Received) -> Result<Arc<Client>, Rejection> {
    let client_id = received
        .get("client_id")
        .ok_or(Rejection::Page(Msg::NoClient))?;
    state
        .registry
        .client(client_id)
        .await?
        .ok_or(Rejection::Page(Msg::UnknownClient))
}

/// The redirect URI must be one the client registered (RFC 6749 3.1.2.3).
fn check_redirect_uri(client: &Client, received: &Received) -> Result<String, Rejection> {
    let redirect_uri = received
        .get("redirect_uri")
        .ok_or(Rejection::Page(Msg::NoRedirectUri))?;
    registered_redirect_uri(client, redirect_uri)?;
    Ok(redirect_uri.to_owned())
}

/// `redirect_uri` is one `client` registered.
fn registered_redirect_uri(client: &Client, redirect_uri: &str) -> Result<(), Rejection> {
    if !redirect_uri_matches(&client.redirect_uris, redirect_uri) {
        return Err(Rejection::Page(Msg::UnregisteredRedirectUri));
    }
    Ok(())
}

/// `response_mode`: query (the default) or form_post. An unknown one is
/// answered in the query.
fn check_response_mode(
    client: &Client,
    redirect_uri: &str,
    received: &Received,
) -> Result<Reply, Rejection> {
    let mut reply = Reply {
        to: redirect_uri.to_owned(),
        mode: ResponseMode::Query,
        state: received.get("state").map(str::to_owned),
        confirm: Confirm::for_client(client),
    };
    match received.get("response_mode") {
        None | Some("query") => {}
        Some("form_post") => reply.mode = ResponseMode::FormPost,
        Some(_) => {
            return Err(reply.reject(
                ErrorCode::InvalidRequest,
                "response_mode must be query or form_post",
            ))
        }
    }
    Ok(reply)
}

/// Each parameter at most once (RFC 6749 3.1), and not too many.
fn check_parameters(reply: &Reply, received: &Received) -> Result<(), Rejection> {
    if received.too_many {
        return Err(reply.reject(ErrorCode::InvalidRequest, "too many parameters"));
    }
    if let Some(d) = &received.duplicate {
        let name: String = d.chars().take(40).filter(|c| !c.is_control()).collect();
        return Err(reply.reject(
            ErrorCode::InvalidRequest,
            &format!("parameter {name} is repeated"),
        ));
    }
    Ok(())
}

/// Each free-form parameter within its cap ([`MAX_LENGTHS`]). An
/// oversized `state` is not sent back.
fn check_lengths(reply: &Reply, received: &Received) -> Result<(), Rejection> {
    for (name, max) in MAX_LENGTHS {
        if received.get(name).is_some_and(|v| v.len() > max) {
            let mut r = reply.reject(
                ErrorCode::InvalidRequest,
                &format!("{name} is longer than {max} bytes"),
            );
            if let (Rejection::Redirect { state, .. }, "state") = (&mut r, name) {
                *state = None;
            }
            return Err(r);
        }
    }
    Ok(())
}

/// `ui_locales` (OIDC Core 3.1.2.1): its well-formed tags, at most a
/// few. Never an error: a language the pages are not written in, or a
/// malformed tag, is passed over.
fn check_ui_locales(received: &Received) -> UiLocales {
    received
        .get("ui_locales")
        .map(UiLocales::parse)
        .unwrap_or_default()
}

/// `dpop_jkt` (RFC 9449 10): the thumbprint of the DPoP key the code
/// will be bound to.
fn check_dpop_jkt(reply: &Reply, received: &Received) -> Result<Option<Jkt>, Rejection> {
    match received.get("dpop_jkt") {
        None => Ok(None),
        Some(v) => Jkt::parse(v).map(Some).ok_or_else(|| {
            reply.reject(
                ErrorCode::InvalidRequest,
                "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638): 43 base64url characters",
            )
        }),
    }
}

/// A request object's claims ([`request_object::check_claims`]). A
/// `request_uri` here is not one of ours (those are redeemed before the
/// checks): never fetched (no request to a URL a stranger chose), refused
/// with `request_uri_not_supported`; one sent to `/par` is refused (RFC
/// 9126 2.1).
fn check_request_object(
    state: &AppState,
    reply: &Reply,
    client: &Client,
    received: &Received,
) -> Result<(), Rejection> {
    if let Some(object) = &received.object {
        return request_object::check_claims(state, reply, client, object);
    }
    if received.get("request_uri").is_some() {
        return Err(match received.via {
            Via::Pushed => reply.reject(
                ErrorCode::InvalidRequest,
                "request_uri must not be sent to the pushed authorization request endpoint",
            ),
            Via::Authorize => reply.reject(
                ErrorCode::RequestUriNotSupported,
                "request_uri is supported only with the urn:ietf:params:oauth:request_uri: values the pushed authorization request endpoint returns",
            ),
        });
    }
    Ok(())
}

/// `response_type=code` only.
fn check_response_type(reply: &Reply, received: &Received) -> Result<(), Rejection> {
    match received.get("response_type") {
        None => Err(reply.reject(ErrorCode::InvalidRequest, "missing parameter response_type")),
        Some("code") => Ok(()),
        Some(_) => Err(reply.reject(
            ErrorCode::UnsupportedResponseType,
            "only response_type=code is supported",
        )),
    }
}

/// The client must be allowed the authorization code grant.
fn check_client_grant(reply: &Reply, client: &Client) -> Result<(), Rejection> {
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(reply.reject(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    Ok(())
}

/// `scope` must be well formed.
fn check_scope(reply: &Reply, received: &Received) -> Result<ScopeSet, Rejection> {
    ScopeSet::parse(received.get("scope").unwrap_or(""))
        .map_err(|e| reply.reject(ErrorCode::InvalidScope, &e))
}

/// `resource` (RFC 8707), if sent, must be a registered resource server.
async fn check_resource(
    state: &AppState,
    reply: &Reply,
    received: &Received,
) -> Result<(Option<Arc<Resource>>, Arc<HashMap<String, Arc<Resource>>>), Rejection> {
    let resources = state.registry.resources().await?;
    let named = match received.get("resource") {
        None => None,
        Some(r) => Some(resources.get(r).cloned().ok_or_else(|| {
            reply.reject(
                ErrorCode::InvalidTarget,
                "resource is not a registered resource server",
            )
        })?),
    };
    Ok((named, resources))
}

/// The scopes the client may have: API scopes are tied to one resource
/// server (RFC 8707 2; without `resource` the one that defines them all is
/// implied); `offline_access` without the refresh grant is dropped (OIDC
/// Core 11: the request is still served); and something must remain.
fn check_scope_grant(
    reply: &Reply,
    client: &Client,
    scope: ScopeSet,
    named: Option<Arc<Resource>>,
    resources: &HashMap<String, Arc<Resource>>,
) -> Result<(ScopeSet, Option<Arc<Resource>>), Rejection> {
    user_grant_scope(client, scope, named.as_ref(), resources)
        .map_err(|e| reply.reject(e.code(), e.description()))
}

/// The scope a user grant gets (the code flow and the device flow): API
/// scopes tied to one resource server (RFC 8707 2), `offline_access`
/// dropped without the refresh grant (OIDC Core 11: the request is still
/// served), and something must remain. Returns the scope and the resource
/// server the tokens are for, if any.
pub fn user_grant_scope(
    client: &Client,
    mut scope: ScopeSet,
    named: Option<&Arc<Resource>>,
    resources: &HashMap<String, Arc<Resource>>,
) -> Result<(ScopeSet, Option<Arc<Resource>>), OAuthError> {
    let resource = scopes::resolve(client, &scope, named, resources, scopes::Subject::User)
        .map_err(|d| OAuthError::InvalidScope(d.into()))?;
    if scope.contains("offline_access") && !client.grant_types.contains(&GrantType::RefreshToken) {
        scope = ScopeSet::of(scope.iter().filter(|s| *s != "offline_access"));
    }
    // RFC 6749 3.3 lets the server refuse a request without scope. A grant
    // of nothing would need no consent, so a self-registered client could
    // send a signed-in user straight to its redirect URI with a code.
    if scope.is_empty() {
        return Err(OAuthError::InvalidScope(
            "scope is required (for example openid)".into(),
        ));
    }
    Ok((scope, resource))
}

/// PKCE (RFC 7636): S256 only; required unless [`pkce_required`] allows
/// its absence.
fn check_pkce(
    state: &AppState,
    reply: &Reply,
    client: &Client,
    scope: &ScopeSet,
    received: &Received,
) -> Result<Option<CodeChallenge>, Rejection> {
    let challenge = CodeChallenge::from_request(
        received.get("code_challenge"),
        received.get("code_challenge_method"),
    )
    .map_err(|why| reply.reject(ErrorCode::InvalidRequest, why))?;
    if challenge.is_none() {
        if let Some(why) = pkce_required(state, client, scope, received.get("nonce")) {
            return Err(reply.reject(ErrorCode::InvalidRequest, why));
        }
    }
    Ok(challenge)
}

/// Why a request without a PKCE challenge is refused, or `None` when it may
/// omit one (RFC 9700 2.1.1): only a confidential client, in an OpenID
/// request (scope `openid`) that carries a `nonce`, and only when neither
/// the client's `require_pkce` nor the server's demands PKCE. The nonce
/// then binds the code to the relying party's session, as PKCE would.
pub fn pkce_required(
    state: &AppState,
    client: &Client,
    scope: &ScopeSet,
    nonce: Option<&str>,
) -> Option<&'static str> {
    if client.token_endpoint_auth_method == AuthMethod::None {
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

/// `prompt` (OIDC Core 3.1.2.1): known values; `none` alone.
fn check_prompt(reply: &Reply, received: &Received) -> Result<Prompt, Rejection> {
    let mut prompt = Prompt::default();
    let Some(p) = received.get("prompt") else {
        return Ok(prompt);
    };
    for v in p.split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            _ => return Err(reply.reject(ErrorCode::InvalidRequest, "unknown prompt value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return Err(reply.reject(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

/// `max_age` (OIDC Core 3.1.2.1): a non-negative integer.
fn check_max_age(reply: &Reply, received: &Received) -> Result<Option<i64>, Rejection> {
    let Some(v) = received.get("max_age") else {
        return Ok(None);
    };
    v.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| {
            reply.reject(
                ErrorCode::InvalidRequest,
                "max_age must be a non-negative integer",
            )
        })
}

/// `acr_values` and the `claims` parameter's `id_token.acr` (OIDC Core
/// 3.1.2.1, 5.5.1.1): the levels asked for.
fn check_acr(reply: &Reply, received: &Received) -> Result<super::AcrRequest, Rejection> {
    super::levels::requested(received.get("acr_values"), received.get("claims"))
        .map_err(|d| reply.reject(ErrorCode::InvalidRequest, d))
}

/// `id_token_hint` (OIDC Core 3.1.2.1): one of our ID tokens, possibly
/// expired; its subject.
fn check_id_token_hint(
    state: &AppState,
    reply: &Reply,
    received: &Received,
) -> Result<Option<String>, Rejection> {
    let Some(t) = received.get("id_token_hint") else {
        return Ok(None);
    };
    crate::id_token_hint::read(state, t)
        .map(|h| Some(h.sub))
        .map_err(|e| reply.reject(ErrorCode::InvalidRequest, &e.to_string()))
}
