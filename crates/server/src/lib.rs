//! Gatehouse's authorization server: the axum application, its
//! configuration and the `gatehouse` command line.
//!
//! Design choice: a protocol core (grants, the token issuer, the status
//! lists, ending sessions) with its own types and errors (`error`), and an
//! HTTP edge (`http`) that parses each request once into those types,
//! calls the core and maps its errors to responses in one place
//! (`http::error`). The core never imports the edge; handlers never see
//! sea-orm or private keys.

pub mod admin;
pub mod app;
mod audit;
pub mod authorization;
pub mod cli;
pub mod client_ip;
pub mod clients;
pub mod config;
mod discovery;
pub mod dpop;
pub mod error;
pub mod factors;
mod grants;
pub mod http;
pub mod i18n;
mod id_token_hint;
mod metrics;
pub mod oauth;
pub mod outbound;
pub mod passkeys;
pub mod password;
pub mod password_policy;
mod pkce;
mod rate;
mod recent_reads;
mod registry;
mod replay;
pub mod scopes;
pub mod secrets;
pub mod session_end;
pub mod state;
mod throttle;
mod token_status;
mod tokens;
mod username;
pub mod views;

pub use app::{build_state, router, Listening, Server};
