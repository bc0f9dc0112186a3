//! Gatehouse's integration tests: the real server on a real port, over real
//! HTTP, against a fresh SQLite file or PostgreSQL database per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod account;
mod account_browser;
mod attacks;
mod authorization_tx;
mod authorization_tx_changes;
mod authorization_tx_limits;
mod branding;
mod browser;
mod client_auth;
mod client_deletion;
mod client_secret_jwt;
mod code_binding;
mod code_flow;
mod device;
mod discovery;
mod dpop;
mod dynamic_clients;
mod factor_attacks;
mod forged_tokens;
mod fuzz;
mod grant_revocation;
mod health;
mod id_token_hint;
mod introspection;
mod languages;
mod max_age;
mod metrics;
mod no_store;
mod outage;
mod outage_chains;
mod outage_stateless;
mod outbound;
mod par;
mod par_policy;
mod passkeys_browser;
mod passkeys_refused;
mod pkce_policy;
mod private_key_jwt;
mod registration;
mod request_object;
mod resource_server;
mod revocation;
mod scopes;
mod signing_algs;
mod sqlite_faults;
mod status_list;
mod step_up;
mod throttle;
mod token_exchange;
mod token_exchange_refused;
mod tokens;
mod verifier;
