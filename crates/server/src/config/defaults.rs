//! Defaults of the options, where a value is not given on any layer (most
//! lifetimes take theirs where `resolve` validates them).

pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gatehouse.db";
/// Default of `status_index_reserve_max`.
pub const DEFAULT_STATUS_INDEX_RESERVE_MAX: i64 = 65_536;
/// Default of `dpop_proof_max_age` (seconds either way, RFC 9449 11.1).
pub const DEFAULT_DPOP_PROOF_MAX_AGE: i64 = 60;
/// Default of `outage_staleness_secs`.
pub const DEFAULT_OUTAGE_STALENESS_SECS: i64 = 10;
/// Largest `outage_staleness_secs`.
pub(super) const MAX_OUTAGE_STALENESS_SECS: i64 = 300;
/// Default of `password_min_length` (characters).
pub const DEFAULT_PASSWORD_MIN_LENGTH: usize = 12;
