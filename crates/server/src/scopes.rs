//! Which scopes a client may be given, and for which API (RFC 6749 3.3;
//! RFC 8707 2). Shared by the authorization endpoint and the client
//! credentials grant so both apply one rule:
//!
//! - The OIDC scopes (`openid`, `profile`, `email`, `offline_access`) are
//!   about the user; any client may ask for them in a user flow.
//! - Every other scope is an API scope: it must be in the client's list
//!   (empty list: none) and be defined by the resource server the token is
//!   for. With `resource`, that is the named one. Without it, exactly one
//!   resource server must define all the API scopes asked for, and the
//!   token is for that one; otherwise the request is `invalid_scope`.

use std::{collections::HashMap, sync::Arc};

use gatehouse_storage::model::Client;

use crate::{
    oauth::{ScopeSet, STANDARD_SCOPES},
    registry::Resource,
};

/// Whether the OIDC (user) scopes make sense in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A user grant (authorization code): OIDC scopes allowed.
    User,
    /// The client itself (client credentials): no user, no OIDC scope.
    Client,
}

/// Checks `scope` for `client` and returns the resource server the token
/// is for: the one named by `resource`, else the one implied by the API
/// scopes, else none (Gatehouse's own audience). The error is an
/// `invalid_scope` description; it names only scopes the caller sent.
pub fn resolve(
    client: &Client,
    scope: &ScopeSet,
    resource: Option<&Arc<Resource>>,
    resources: &HashMap<String, Arc<Resource>>,
    subject: Subject,
) -> Result<Option<Arc<Resource>>, String> {
    let mut api = Vec::new();
    for s in scope.iter() {
        if STANDARD_SCOPES.contains(&s) {
            if subject == Subject::Client {
                return Err(format!(
                    "scope {s} is about a user and cannot be granted to a client acting for itself"
                ));
            }
            continue;
        }
        let defined = resources
            .values()
            .any(|r| r.record.scopes.iter().any(|x| x == s));
        if !defined || !client.scopes.iter().any(|x| x == s) {
            return Err(format!(
                "scope {s} is unknown or not allowed for this client"
            ));
        }
        api.push(s);
    }
    let defines_all = |r: &Resource| api.iter().all(|s| r.record.scopes.iter().any(|x| x == s));
    if let Some(r) = resource {
        if let Some(s) = api
            .iter()
            .find(|s| !r.record.scopes.iter().any(|x| x == *s))
        {
            return Err(format!(
                "scope {s} is not a scope of the requested resource"
            ));
        }
        return Ok(Some(r.clone()));
    }
    if api.is_empty() {
        return Ok(None);
    }
    let mut candidates = resources.values().filter(|r| defines_all(r));
    match (candidates.next(), candidates.next()) {
        (Some(r), None) => Ok(Some(r.clone())),
        (None, _) => Err(
            "the requested API scopes belong to different resource servers; request one resource at a time"
                .to_owned(),
        ),
        (Some(_), Some(_)) => Err(
            "several resource servers define the requested scopes; name one with the resource parameter"
                .to_owned(),
        ),
    }
}
