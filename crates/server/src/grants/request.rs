//! What the token endpoint hands the grants: the request, parsed once at
//! the edge into one variant per grant type, and the client that made it.

use std::sync::Arc;

use gatehouse_storage::model::Client;

use crate::oauth::{AuthMethod, GrantType, TokenTypeUri};

/// An authenticated (or, for `none`, identified) client: what client
/// authentication at the token, introspection and revocation endpoints
/// produces. `Debug` prints the client id and the method only.
#[derive(Clone)]
pub struct AuthenticatedClient {
    pub client: Arc<Client>,
    /// How it authenticated.
    pub method: AuthMethod,
}

/// A token request (RFC 6749 4.1.3, 4.4.2, 6; RFC 8628 3.4; RFC 8693 2.1), one variant
/// per grant type.
///
/// `scope` and `code_verifier` stay as sent: the grants check them in the
/// order their rules give (a refresh token is looked up before its scope
/// is judged), which decides the error a faulty request gets. `Debug`
/// hides the code, the verifier and the refresh token.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// RFC 6749 4.1.3; RFC 7636 4.5.
    AuthorizationCode {
        code: String,
        redirect_uri: String,
        code_verifier: Option<String>,
    },
    /// RFC 6749 6.
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    /// RFC 6749 4.4.2; RFC 8707 2 (`resource`).
    ClientCredentials {
        scope: Option<String>,
        resource: Option<String>,
    },
    /// RFC 8628 3.4: polling with the device code.
    DeviceCode { device_code: String },
    /// RFC 8693 2.1: one target (`resource` and/or `audience`), the token
    /// types already known names; the rest judged by the grant.
    TokenExchange {
        subject: PresentedToken,
        actor: Option<PresentedToken>,
        resource: Option<String>,
        audience: Option<String>,
        scope: Option<String>,
        requested_token_type: Option<TokenTypeUri>,
    },
}

/// A token presented in a token exchange (`subject_token` or
/// `actor_token`) with its declared type. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedToken {
    pub token: String,
    pub token_type: TokenTypeUri,
}

impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedToken")
            .field("token", &HIDDEN)
            .field("token_type", &self.token_type)
            .finish()
    }
}

impl std::fmt::Debug for AuthenticatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatedClient")
            .field("client_id", &self.client.id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// What `Debug` prints in place of a secret.
const HIDDEN: &str = "<hidden>";

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenRequest::AuthorizationCode {
                code: _,
                redirect_uri,
                code_verifier,
            } => f
                .debug_struct("AuthorizationCode")
                .field("code", &HIDDEN)
                .field("redirect_uri", redirect_uri)
                .field("code_verifier", &code_verifier.as_ref().map(|_| HIDDEN))
                .finish(),
            TokenRequest::RefreshToken {
                refresh_token: _,
                scope,
            } => f
                .debug_struct("RefreshToken")
                .field("refresh_token", &HIDDEN)
                .field("scope", scope)
                .finish(),
            TokenRequest::DeviceCode { device_code: _ } => f
                .debug_struct("DeviceCode")
                .field("device_code", &HIDDEN)
                .finish(),
            TokenRequest::ClientCredentials { scope, resource } => f
                .debug_struct("ClientCredentials")
                .field("scope", scope)
                .field("resource", resource)
                .finish(),
            TokenRequest::TokenExchange {
                subject,
                actor,
                resource,
                audience,
                scope,
                requested_token_type,
            } => f
                .debug_struct("TokenExchange")
                .field("subject", subject)
                .field("actor", actor)
                .field("resource", resource)
                .field("audience", audience)
                .field("scope", scope)
                .field("requested_token_type", requested_token_type)
                .finish(),
        }
    }
}

impl TokenRequest {
    /// The grant type the request is for.
    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            TokenRequest::DeviceCode { .. } => GrantType::DeviceCode,
            TokenRequest::TokenExchange { .. } => GrantType::TokenExchange,
        }
    }
}
