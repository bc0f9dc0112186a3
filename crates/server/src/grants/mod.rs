//! One module per grant type. Each checks its grant's rules and asks the
//! token builder for tokens.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use std::sync::Arc;

use crate::{
    http::error::AppError, oauth::ErrorCode, registry::Resource, state::AppState, tokens::Audience,
};

/// The audience of an access token from the RFC 8707 `resource` parameter:
/// a registered resource server, else Gatehouse itself.
pub async fn audience(state: &AppState, resource: Option<&str>) -> Result<Audience, AppError> {
    match resource {
        None => Ok(Audience::Own),
        Some(r) => {
            let all = state.registry.resources().await?;
            let found: Option<Arc<Resource>> = all.get(r).cloned();
            found.map(Audience::Resource).ok_or_else(|| {
                AppError::oauth(
                    ErrorCode::InvalidTarget,
                    "resource is not a registered resource server",
                )
            })
        }
    }
}
