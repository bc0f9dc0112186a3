//! Gatehouse's authorization server: the axum application, its
//! configuration and the `gatehouse` command line.
//!
//! Design choice: handlers (in `http`) parse the request, call the token
//! builder, the key ring or the store's domain methods, and map the result
//! through the one error type in `http::error`. They never see sea-orm or
//! private keys.

pub mod admin;
pub mod app;
mod audit;
pub mod cli;
pub mod client_ip;
pub mod clients;
pub mod config;
mod device;
mod discovery;
pub mod error;
mod grants;
pub mod http;
mod id_token_hint;
pub mod logout;
mod metrics;
pub mod oauth;
pub mod outbound;
pub mod password;
mod pkce;
mod rate;
mod recent_reads;
mod registry;
mod replay;
pub mod scopes;
pub mod secrets;
pub mod session;
pub mod state;
mod status_list;
mod throttle;
mod tokens;
mod username;
mod views;

pub use app::{build_state, router, Listening, Server};
