//! The authorization request (RFC 6749 4.1.1; OIDC Core 3.1.2), apart from
//! HTTP: the checked request ([`AuthorizationRequest`]), the named checks
//! that produce it ([`checks::validate`]), and where an error must go
//! ([`Rejection`]).

pub mod checks;
mod request;

pub use checks::validate;
pub use request::{
    redirect_host, AuthorizationRequest, Checked, Confirm, Prompt, Received, Rejection,
    ResponseMode,
};
