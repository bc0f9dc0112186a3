//! The raw layer: every option as read from one source (the TOML file,
//! the environment, the flags), all optional, and how layers merge.

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

/// Every option, as read from one layer. Field names are the TOML keys;
/// docs/configuration.md lists them with their environment variables.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub issuer: Option<String>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub key_encryption_key_file: Option<PathBuf>,
    pub log_format: Option<String>,
    /// Seconds `serve` keeps trying to reach the database at start (default 0: exit at once).
    pub wait_for_database: Option<i64>,
    /// Access-token lifetime in seconds (default 900).
    pub access_token_ttl: Option<i64>,
    /// ID-token lifetime in seconds (default 3600).
    pub id_token_ttl: Option<i64>,
    /// Refresh-token lifetime in seconds (default 30 days).
    pub refresh_token_ttl: Option<i64>,
    /// Grace window in seconds in which a retried refresh gets the same successor (default 10).
    pub refresh_grace: Option<i64>,
    /// Login session idle timeout in seconds (default 2 hours).
    pub session_idle_timeout: Option<i64>,
    /// Login session absolute timeout in seconds (default 24 hours).
    pub session_max_age: Option<i64>,
    /// Days between automatic key rotations (default 30).
    pub key_rotation_days: Option<i64>,
    /// Seconds a next key is published before it may sign (default 86400).
    pub key_prepublish: Option<i64>,
    /// JWKS `Cache-Control: max-age` in seconds (default 900).
    pub jwks_max_age: Option<i64>,
    /// Status list token `ttl` and `Cache-Control: max-age` in seconds (default 60).
    pub status_list_ttl: Option<i64>,
    /// Every authorization request must carry a PKCE challenge (default
    /// false: see [`Settings::require_pkce`]).
    pub require_pkce: Option<bool>,
    /// Every authorization request must be pushed first (RFC 9126; default
    /// false: see [`Settings::require_pushed_authorization_requests`]).
    pub require_pushed_authorization_requests: Option<bool>,
    /// Internal hosts and networks Gatehouse may contact at client-supplied
    /// URLs (`jwks_uri`, `backchannel_logout_uri`); default none.
    pub outbound_allow: Option<Vec<String>>,
    /// Bearer token `/metrics` on the main listener requires; unset: 404 there.
    pub metrics_token: Option<String>,
    /// A separate address serving `/metrics` without a token; default none.
    pub metrics_listen: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs; default none).
    pub trusted_proxies: Option<Vec<String>>,
    /// Published signing algorithms (default RS256 and ES256).
    pub signing_algs: Option<Vec<String>>,
    /// Milliseconds between probes of a database that is down (default 250).
    pub db_probe_interval_ms: Option<i64>,
    /// Most status-list indices one instance reserves ahead (default 65536).
    pub status_index_reserve_max: Option<i64>,
    /// Seconds a cached revocation check or user may answer while the
    /// database is away (default 10; 0: never).
    pub outage_staleness_secs: Option<i64>,
    /// Fewest characters a new password may have (default 12; 8 to 64).
    pub password_min_length: Option<i64>,
    /// A directory whose files replace built-in templates and the
    /// stylesheet by name (default none: the built-in ones).
    pub templates_dir: Option<PathBuf>,
    /// A directory served at `/assets/` (a logo, fonts; default none).
    pub assets_dir: Option<PathBuf>,
    /// DPoP proofs must carry a server nonce (default false).
    pub dpop_nonce: Option<bool>,
    /// How far a DPoP proof's `iat` may be from now, seconds (default 60).
    pub dpop_proof_max_age: Option<i64>,
}

impl RawConfig {
    /// Reads a TOML file. A missing or malformed file is an error naming it.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<RawConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        // toml's own Display draws a multi-line source excerpt; keep the
        // message on one line: "FILE line L, column C (KEY): what is wrong".
        // Only the key is quoted from the file, never a value (a database
        // URL may hold a password).
        toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| {
                    let line = before.matches('\n').count() + 1;
                    let start = before.rfind('\n').map_or(0, |i| i + 1);
                    let column = before[start..].chars().count() + 1;
                    let key = text[start..]
                        .lines()
                        .next()
                        .and_then(|l| l.split_once('='))
                        .map(|(k, _)| k.trim())
                        .filter(|k| !k.is_empty() && k.len() <= 64)
                        .map(|k| format!(" ({k})"))
                        .unwrap_or_default();
                    format!(" line {line}, column {column}{key}")
                })
                .unwrap_or_default();
            let what = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            anyhow::anyhow!("invalid config file {}{at}: {what}", path.display())
        })
    }

    /// `self` where set, else `lower`.
    pub fn over(self, lower: RawConfig) -> RawConfig {
        macro_rules! pick {
            ($($f:ident),*) => { RawConfig { $($f: self.$f.or(lower.$f)),* } };
        }
        pick!(
            issuer,
            listen,
            database_url,
            key_encryption_key_file,
            log_format,
            wait_for_database,
            access_token_ttl,
            id_token_ttl,
            refresh_token_ttl,
            refresh_grace,
            session_idle_timeout,
            session_max_age,
            key_rotation_days,
            key_prepublish,
            jwks_max_age,
            status_list_ttl,
            require_pkce,
            require_pushed_authorization_requests,
            outbound_allow,
            metrics_token,
            metrics_listen,
            trusted_proxies,
            signing_algs,
            db_probe_interval_ms,
            status_index_reserve_max,
            outage_staleness_secs,
            password_min_length,
            templates_dir,
            assets_dir,
            dpop_nonce,
            dpop_proof_max_age
        )
    }
}

/// `true` or `false` from the environment variable `name`, if set and not
/// empty; an error naming the variable otherwise.
pub fn env_bool(name: &str) -> anyhow::Result<Option<bool>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => anyhow::bail!("{name} must be true or false, got {v:?}"),
        },
        _ => Ok(None),
    }
}

/// A whole number from the environment variable `name`, if set and not
/// empty; an error naming the variable when it is not a number.
pub fn env_i64(name: &str) -> anyhow::Result<Option<i64>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("{name} must be a whole number, got {v:?}")),
        _ => Ok(None),
    }
}
