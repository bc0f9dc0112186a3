//! The validated settings the rest of the program reads, and the
//! key-encryption key they say where to find.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use gatehouse_keys::{Kek, RotationPolicy};
use url::Url;

/// How DPoP proofs (RFC 9449) are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopSettings {
    /// Proofs must carry a server nonce (`DPoP-Nonce`, RFC 9449 8 and 9).
    pub nonce: bool,
    /// How far a proof's `iat` may be from now, either way, in seconds;
    /// its `jti` is remembered this long after `iat`.
    pub max_age: i64,
}

/// Token and session lifetimes, in seconds.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    pub access_token: i64,
    pub id_token: i64,
    pub refresh_token: i64,
    pub refresh_grace: i64,
    /// How long a status list token may be cached (`ttl`, `max-age`).
    pub status_list: i64,
    pub code: i64,
    pub session_idle: i64,
    pub session_max_age: i64,
}

/// Where the key-encryption key comes from.
#[derive(Debug, Clone)]
pub enum KekSource {
    /// Given directly (environment variable, or tests).
    Value(Kek),
    /// A file holding the base64url key.
    File(PathBuf),
    /// Development only: a file generated beside the database if missing.
    DevFile(PathBuf),
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer identifier, without a trailing slash.
    pub issuer: String,
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    pub kek: KekSource,
    pub json_logs: bool,
    pub lifetimes: Lifetimes,
    pub rotation: RotationPolicy,
    /// How long `serve` keeps trying to reach the database at start; zero:
    /// fail at once.
    pub wait_for_database: std::time::Duration,
    /// An http issuer on a loopback host: cookies drop `Secure` and the `__Host-` prefix.
    pub dev_mode: bool,
    /// Every client must send a PKCE challenge. When false, a client's own
    /// `require_pkce` can still demand it; neither can lift the other
    /// (the stricter wins), and public clients always need PKCE.
    pub require_pkce: bool,
    /// Every authorization request must be pushed first (RFC 9126 5,
    /// published as `require_pushed_authorization_requests`). When false, a
    /// client's own flag can still demand it.
    pub require_pushed_authorization_requests: bool,
    /// Where client-supplied URLs may lead (loopback only in development).
    pub outbound: crate::outbound::OutboundPolicy,
    /// The token `/metrics` on the main listener requires.
    pub metrics_token: Option<MetricsToken>,
    /// Where `/metrics` is served without a token, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Peers whose `X-Forwarded-For` names the client (see `client_ip`).
    pub trusted_proxies: Vec<crate::client_ip::Cidr>,
    /// How often a database that is down is probed (the store fails fast meanwhile).
    pub db_probe_interval: std::time::Duration,
    /// Most status-list indices this instance holds reserved (a power of
    /// two, at least two blocks): what it can issue while the database is away.
    pub status_index_reserve_max: i64,
    /// How old (seconds) a revocation check or user read may be when
    /// introspection and userinfo answer from memory during an outage.
    pub outage_staleness_secs: i64,
    /// How DPoP proofs are checked (RFC 9449).
    pub dpop: DpopSettings,
    /// Fewest characters (Unicode scalar values) a new password may have;
    /// see [`crate::password_policy`].
    pub password_min_length: usize,
    /// Where the operator's templates and stylesheet are, if anywhere
    /// (read and checked at start-up by [`crate::views::Views::load`]).
    pub templates_dir: Option<PathBuf>,
    /// Where the files served at `/assets/` are, if anywhere
    /// ([`crate::http::assets`]).
    pub assets_dir: Option<PathBuf>,
}

/// The bearer token of `/metrics`; never printed.
#[derive(Clone)]
pub struct MetricsToken(pub(super) String);

impl MetricsToken {
    /// Does `presented` equal the token? Compares digests in constant time,
    /// so neither the content nor the length leaks.
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        Sha256::digest(self.0.as_bytes())
            .ct_eq(&Sha256::digest(presented.as_bytes()))
            .into()
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// The database URL, which may hold a password: used as a `&str`, but its
/// `Debug` hides the password and the query (where `password=` may be).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Ok(mut url) = Url::parse(&self.0) else {
            return f.write_str("DatabaseUrl(<hidden>)");
        };
        if url.password().is_some() && url.set_password(Some("<redacted>")).is_err() {
            return f.write_str("DatabaseUrl(<hidden>)");
        }
        if url.query().is_some() {
            url.set_query(Some("<redacted>"));
        }
        write!(f, "DatabaseUrl({:?})", url.as_str())
    }
}

impl Settings {
    /// Loads or creates the key-encryption key.
    pub fn load_kek(&self) -> anyhow::Result<Kek> {
        match &self.kek {
            KekSource::Value(k) => Ok(k.clone()),
            KekSource::File(p) => {
                let text = std::fs::read_to_string(p).with_context(|| {
                    format!("cannot read key-encryption key file {}", p.display())
                })?;
                Kek::from_base64url(&text)
                    .with_context(|| format!("key-encryption key file {} is invalid", p.display()))
            }
            KekSource::DevFile(p) => {
                if p.exists() {
                    let text = std::fs::read_to_string(p).with_context(|| {
                        format!("cannot read key-encryption key file {}", p.display())
                    })?;
                    return Kek::from_base64url(&text).with_context(|| {
                        format!("key-encryption key file {} is invalid", p.display())
                    });
                }
                let kek = Kek::generate();
                write_private_file(p, &kek.to_base64url()).with_context(|| {
                    format!("cannot create key-encryption key file {}", p.display())
                })?;
                tracing::warn!(
                    path = %p.display(),
                    "DEVELOPMENT ONLY: generated a key-encryption key file beside the database. \
                     Production issuers must set GATEHOUSE_KEY_ENCRYPTION_KEY or --key-encryption-key-file."
                );
                Ok(kek)
            }
        }
    }

    /// How the store watches the database.
    pub fn store_options(&self) -> gatehouse_storage::StoreOptions {
        gatehouse_storage::StoreOptions {
            db_probe_interval: self.db_probe_interval,
        }
    }

    /// `{issuer}{path}`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// Where a development issuer keeps its generated key-encryption key:
/// beside the SQLite database, else in the working directory.
pub(super) fn dev_kek_path(database_url: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|p| !p.is_empty() && !p.starts_with(":memory:"));
    match file {
        Some(p) => PathBuf::from(format!("{p}.kek")),
        None => PathBuf::from("gatehouse.kek"),
    }
}

fn write_private_file(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")
}
