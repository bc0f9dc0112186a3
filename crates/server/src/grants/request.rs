//! What the token endpoint hands the grants: the request, parsed once at
//! the edge into one variant per grant type, and the client that made it.

use std::sync::Arc;

use gatehouse_storage::model::Client;

use crate::oauth::{AuthMethod, GrantType};

/// An authenticated (or, for `none`, identified) client: what client
/// authentication at the token, introspection and revocation endpoints
/// produces.
#[derive(Clone, Debug)]
pub struct AuthenticatedClient {
    pub client: Arc<Client>,
    /// How it authenticated.
    pub method: AuthMethod,
}

/// A token request (RFC 6749 4.1.3, 4.4.2, 6), one variant per grant type.
///
/// `scope` and `code_verifier` stay as sent: the grants check them in the
/// order their rules give (a refresh token is looked up before its scope
/// is judged), which decides the error a faulty request gets.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

impl TokenRequest {
    /// The grant type the request is for.
    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}
