//! The authorization request (RFC 6749 4.1.1; OIDC Core 3.1.2), apart from
//! HTTP: the checked request ([`AuthorizationRequest`]), the named checks
//! that produce it ([`checks::validate`]), sent plainly, as a signed request
//! object ([`request_object`]) or pushed first ([`pushed`]), what it needs next
//! ([`decide::decide`]), and the transaction that keeps it server-side
//! while the user signs in and consents ([`transaction`]). A device
//! authorization (RFC 8628, [`device`]) is decided in such a transaction.

pub mod checks;
pub mod decide;
pub mod device;
pub mod levels;
pub mod pushed;
mod request;
pub mod request_object;
pub mod transaction;

pub use checks::{recheck, validate};
pub use decide::{decide, issue_code, Next};
pub use levels::AcrRequest;
pub use pushed::receive;
pub use request::{
    redirect_host, AuthorizationRequest, Checked, Confirm, Prompt, Received, Rejection,
    ResponseMode, Via,
};
pub use transaction::{Transaction, TxError, TX_LIFETIME};
