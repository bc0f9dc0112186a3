//! Gatehouse's integration tests: the real server on a real port, over real
//! HTTP, against a fresh SQLite file or PostgreSQL database per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod attacks;
mod browser;
mod client_auth;
mod client_secret_jwt;
mod code_flow;
mod discovery;
mod health;
mod outage;
mod private_key_jwt;
mod registration;
mod resource_server;
mod revocation;
mod signing_algs;
mod status_list;
mod tokens;
mod verifier;
