//! Gatehouse's schema, written once with sea-query's builder so the same
//! source creates the same tables on SQLite and on PostgreSQL.
//!
//! Conventions: timestamps are `BIGINT` Unix seconds (no time-zone drift
//! between backends); lists are JSON text; every secret column holds a
//! hash, except the client secrets of client_secret_jwt clients and TOTP
//! secrets, which must be recoverable and are sealed with subkeys of the
//! key-encryption key (AES-256-GCM).

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_initial;
mod m20261127_000001_token_status;
mod m20261127_000002_client_secret_sealed;
mod m20261130_000001_legacy_assertion_audience;
mod m20261130_000002_client_require_pkce;
mod m20261130_000003_client_scopes;
mod m20261130_000004_revocation_lookups;
mod m20261130_000005_authorization_transactions;
mod m20261201_000001_second_factors;
mod m20261201_000002_passkeys;
mod m20261202_000001_factor_hardening;
mod m20261203_000001_dpop;
mod m20261203_000001_pushed_authorization_requests;
mod m20261203_000002_client_require_par;
mod m20261204_000001_token_exchange;
mod m20261205_000001_device_authorizations;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_initial::Migration),
            Box::new(m20261127_000001_token_status::Migration),
            Box::new(m20261127_000002_client_secret_sealed::Migration),
            Box::new(m20261130_000001_legacy_assertion_audience::Migration),
            Box::new(m20261130_000002_client_require_pkce::Migration),
            Box::new(m20261130_000003_client_scopes::Migration),
            Box::new(m20261130_000004_revocation_lookups::Migration),
            Box::new(m20261130_000005_authorization_transactions::Migration),
            Box::new(m20261201_000001_second_factors::Migration),
            Box::new(m20261201_000002_passkeys::Migration),
            Box::new(m20261202_000001_factor_hardening::Migration),
            Box::new(m20261203_000001_dpop::Migration),
            Box::new(m20261203_000001_pushed_authorization_requests::Migration),
            Box::new(m20261203_000002_client_require_par::Migration),
            Box::new(m20261204_000001_token_exchange::Migration),
            Box::new(m20261205_000001_device_authorizations::Migration),
        ]
    }
}
