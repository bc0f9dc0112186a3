//! Shared test code for Gatehouse's test binaries and the storage crate's
//! unit tests: a fresh database per test ([`db`]), a private PostgreSQL
//! server to stop and start for outage tests ([`pg_server`]), and the
//! soundness check of a SQLite database after a fault ([`sqlite_sound`]).
//!
//! It depends on no Gatehouse crate on purpose: the storage crate's unit
//! tests use it, and a dependency on the storage crate would link a second
//! copy of it into them. Callers open their own `Store` on [`db::TestDb::url`].

#![allow(clippy::panic)]

pub mod db;
pub mod pg_server;
pub mod sqlite_sound;
