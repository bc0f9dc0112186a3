//! Configuration: an optional TOML file, then environment variables, then
//! flags (highest), validated into one typed [`Settings`].
//!
//! Raw values arrive as [`RawConfig`] (everything optional, from any
//! layer, `raw`); [`Settings::resolve`] checks them and fills defaults
//! (`resolve`, `defaults`), so the rest of the program never sees an
//! unvalidated value. The validated types are in `settings`.

mod defaults;
mod raw;
mod resolve;
mod settings;
#[cfg(test)]
mod tests;

pub use defaults::{
    DEFAULT_DATABASE_URL, DEFAULT_ISSUER, DEFAULT_LISTEN, DEFAULT_OUTAGE_STALENESS_SECS,
    DEFAULT_PASSWORD_MIN_LENGTH, DEFAULT_STATUS_INDEX_RESERVE_MAX,
};
pub use raw::{env_bool, env_i64, RawConfig};
pub use resolve::check_signing_alg;
pub use settings::{DatabaseUrl, KekSource, Lifetimes, MetricsToken, Settings};
