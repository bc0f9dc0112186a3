//! The HTTP layer: one module per endpoint. Handlers parse the request into
//! the core's types, call the core (grants, the token issuer, the key ring,
//! the store's domain methods), and map results through [`error::AppError`].

pub mod account;
pub mod assets;
pub mod authorize;
pub mod client_auth;
pub mod consent;
pub mod device;
pub mod device_authorization;
pub mod device_verification;
pub mod dpop;
pub mod error;
pub mod form;
pub mod health;
pub mod introspect;
pub mod layers;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod par;
pub mod passkey;
pub mod register;
pub mod revoke;
pub mod second_factor;
pub mod session;
pub mod status_list;
pub mod token;
pub mod userinfo;
pub mod well_known;
