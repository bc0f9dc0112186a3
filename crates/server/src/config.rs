//! Configuration: an optional TOML file, then environment variables, then
//! flags (highest), validated into one typed [`Settings`].
//!
//! Raw values arrive as [`RawConfig`] (everything optional, from any
//! layer); [`Settings::resolve`] checks them and fills defaults, so the rest
//! of the program never sees an unvalidated value.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{bail, Context};
use gatehouse_keys::{Alg, Kek, RotationPolicy, DEFAULT_SIGNING_ALGS, SIGNING_ALGS};
use serde::Deserialize;
use url::Url;

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
            outbound_allow,
            metrics_token,
            metrics_listen,
            trusted_proxies,
            signing_algs,
            db_probe_interval_ms,
            status_index_reserve_max,
            outage_staleness_secs
        )
    }
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
}

/// The bearer token of `/metrics`; never printed.
#[derive(Clone)]
pub struct MetricsToken(String);

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

pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gatehouse.db";

fn positive(name: &str, v: Option<i64>, default: i64) -> anyhow::Result<i64> {
    match v {
        None => Ok(default),
        Some(x) if x > 0 => Ok(x),
        Some(x) => bail!("{name} must be a positive number of seconds, got {x}"),
    }
}

impl Settings {
    /// Validates a merged configuration. `kek_env` is the value of
    /// `GATEHOUSE_KEY_ENCRYPTION_KEY`, if set.
    pub fn resolve(raw: RawConfig, kek_env: Option<String>) -> anyhow::Result<Settings> {
        let issuer_raw = raw.issuer.unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        let issuer_url = Url::parse(&issuer_raw)
            .with_context(|| format!("issuer {issuer_raw:?} is not an absolute URL"))?;
        if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
            bail!("issuer {issuer_raw:?} must not have a query or fragment (OIDC Discovery 3)");
        }
        let loopback = match issuer_url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        let dev_mode = match issuer_url.scheme() {
            "https" => false,
            "http" if loopback => true,
            _ => bail!(
                "issuer {issuer_raw:?} must use https (http is allowed only on a loopback host)"
            ),
        };
        let issuer = issuer_url.as_str().trim_end_matches('/').to_owned();

        let listen_raw = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_raw.parse().with_context(|| {
            format!("listen address {listen_raw:?} is not HOST:PORT (for example 127.0.0.1:8080)")
        })?;
        let database_url = DatabaseUrl(
            raw.database_url
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
        );

        let kek = match (
            kek_env.filter(|s| !s.trim().is_empty()),
            raw.key_encryption_key_file,
        ) {
            (Some(v), _) => KekSource::Value(
                Kek::from_base64url(&v).context("GATEHOUSE_KEY_ENCRYPTION_KEY is invalid")?,
            ),
            (None, Some(path)) => KekSource::File(path),
            (None, None) if loopback => KekSource::DevFile(dev_kek_path(&database_url)),
            (None, None) => bail!(
                "no key-encryption key: set GATEHOUSE_KEY_ENCRYPTION_KEY (32 bytes, base64url) or \
                 --key-encryption-key-file; only a loopback development issuer may run without one"
            ),
        };

        let json_logs = match raw.log_format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => bail!("log format {other:?} is not one of: text, json"),
        };
        let wait_for_database = match raw.wait_for_database {
            None => 0,
            Some(x) if x >= 0 => x.unsigned_abs(),
            Some(x) => {
                bail!("wait_for_database must be zero or a positive number of seconds, got {x}")
            }
        };
        let wait_for_database = std::time::Duration::from_secs(wait_for_database);
        let lifetimes = Lifetimes {
            access_token: match positive("access_token_ttl", raw.access_token_ttl, 900)? {
                // Own tokens and sealed references use day keys that open
                // for a day either side; revocation entries live a day.
                ttl if ttl > 86_400 => {
                    bail!("access_token_ttl must be at most 86400 seconds (a day), got {ttl}")
                }
                ttl => ttl,
            },
            id_token: positive("id_token_ttl", raw.id_token_ttl, 3600)?,
            refresh_token: positive("refresh_token_ttl", raw.refresh_token_ttl, 30 * 86_400)?,
            refresh_grace: positive("refresh_grace", raw.refresh_grace, 10)?,
            status_list: positive("status_list_ttl", raw.status_list_ttl, 60)?,
            code: 60,
            session_idle: positive("session_idle_timeout", raw.session_idle_timeout, 2 * 3600)?,
            session_max_age: positive("session_max_age", raw.session_max_age, 86_400)?,
        };
        let defaults = RotationPolicy::default();
        let jwks_max_age = positive("jwks_max_age", raw.jwks_max_age, defaults.jwks_max_age)?;
        let prepublish = positive("key_prepublish", raw.key_prepublish, defaults.prepublish)?;
        if prepublish <= jwks_max_age {
            bail!("key_prepublish ({prepublish}s) must exceed jwks_max_age ({jwks_max_age}s), or relying parties would meet unknown keys");
        }
        let signing_algs = signing_algs(raw.signing_algs)?;
        let rotation = RotationPolicy {
            rotate_after: positive("key_rotation_days", raw.key_rotation_days, 30)? * 86_400,
            prepublish,
            retain_retired: lifetimes
                .access_token
                .max(lifetimes.id_token)
                .max(jwks_max_age)
                .max(defaults.retain_retired),
            jwks_max_age,
            signing_algs,
        };
        let outbound = crate::outbound::OutboundPolicy {
            loopback: dev_mode,
            allow: raw
                .outbound_allow
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    a.parse()
                        .map_err(|e| anyhow::anyhow!("outbound_allow: {e}"))
                })
                .collect::<anyhow::Result<_>>()?,
        };
        let metrics_token = match raw.metrics_token {
            None => None,
            Some(t) if t.len() >= 16 && t.bytes().all(|b| b.is_ascii_graphic()) => {
                Some(MetricsToken(t))
            }
            Some(_) => {
                bail!("metrics_token must be at least 16 printable characters without spaces")
            }
        };
        let metrics_listen = match raw.metrics_listen {
            None => None,
            Some(m) => Some(m.parse::<SocketAddr>().with_context(|| {
                format!(
                    "metrics listen address {m:?} is not HOST:PORT (for example 127.0.0.1:9090)"
                )
            })?),
        };
        let trusted_proxies = raw
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .filter(|c| !c.trim().is_empty())
            .map(|c| {
                c.parse()
                    .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let db_probe_interval = match raw.db_probe_interval_ms {
            None => 250,
            Some(ms @ 10..=60_000) => ms.unsigned_abs(),
            Some(ms) => {
                bail!("db_probe_interval_ms must be between 10 and 60000 milliseconds, got {ms}")
            }
        };
        let db_probe_interval = std::time::Duration::from_millis(db_probe_interval);
        let status_index_reserve_max = status_index_reserve_max(raw.status_index_reserve_max)?;
        let outage_staleness_secs = match raw.outage_staleness_secs {
            None => DEFAULT_OUTAGE_STALENESS_SECS,
            Some(x) if (0..=MAX_OUTAGE_STALENESS_SECS).contains(&x) => x,
            Some(x) => bail!(
                "outage_staleness_secs must be between 0 (never answer from memory) and \
                 {MAX_OUTAGE_STALENESS_SECS} seconds, got {x}"
            ),
        };
        Ok(Settings {
            db_probe_interval,
            status_index_reserve_max,
            outage_staleness_secs,
            outbound,
            metrics_token,
            metrics_listen,
            issuer,
            listen,
            database_url,
            kek,
            json_logs,
            lifetimes,
            rotation,
            wait_for_database,
            dev_mode,
            require_pkce: raw.require_pkce.unwrap_or(false),
            trusted_proxies,
        })
    }

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

/// Default of `status_index_reserve_max`.
pub const DEFAULT_STATUS_INDEX_RESERVE_MAX: i64 = 65_536;
/// Default and largest `outage_staleness_secs`.
pub const DEFAULT_OUTAGE_STALENESS_SECS: i64 = 10;
const MAX_OUTAGE_STALENESS_SECS: i64 = 300;

/// Validates `status_index_reserve_max`: a power of two (blocks are powers
/// of two dividing the list size), room for the block in use and one spare
/// of the smallest size, and at most one list.
fn status_index_reserve_max(raw: Option<i64>) -> anyhow::Result<i64> {
    use crate::token_status::{BLOCK, LIST_BITS};
    let Some(x) = raw else {
        return Ok(DEFAULT_STATUS_INDEX_RESERVE_MAX);
    };
    if !(2 * BLOCK..=LIST_BITS).contains(&x) || x.count_ones() != 1 {
        bail!(
            "status_index_reserve_max must be a power of two from {} to {LIST_BITS}, got {x}",
            2 * BLOCK
        );
    }
    Ok(x)
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

/// Validates `signing_algs`: known signing algorithms, without repeats,
/// and RS256 among them (OIDC Core 15.1: every OP supports RS256 ID
/// tokens; clients get RS256 unless they ask otherwise).
fn signing_algs(raw: Option<Vec<String>>) -> anyhow::Result<Vec<Alg>> {
    let Some(names) = raw else {
        return Ok(DEFAULT_SIGNING_ALGS.to_vec());
    };
    let mut algs = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let Some(alg) = SIGNING_ALGS.into_iter().find(|a| a.as_str() == name) else {
            bail!("signing_algs: {name:?} is not a signing algorithm Gatehouse supports; use RS256, ES256, PS256 or EdDSA");
        };
        if algs.contains(&alg) {
            bail!("signing_algs: {name} is listed twice");
        }
        algs.push(alg);
    }
    if !algs.contains(&Alg::RS256) {
        bail!("signing_algs must include RS256 (OpenID Connect requires it for ID tokens)");
    }
    Ok(algs)
}

/// Whether `alg` (as a client or resource server names it) is one the
/// operator publishes keys for; if not, a message saying what is.
pub fn check_signing_alg(settings_algs: &[Alg], what: &str, alg: &str) -> Result<(), String> {
    if settings_algs.iter().any(|a| a.as_str() == alg) {
        return Ok(());
    }
    let published: Vec<&str> = settings_algs.iter().map(|a| a.as_str()).collect();
    Err(format!(
        "{what} {alg} is not published by this server (signing_algs is {}); use one of those, or ask the operator to add {alg} to signing_algs",
        published.join(", ")
    ))
}

fn dev_kek_path(database_url: &str) -> PathBuf {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod database_url_tests {
    use super::*;

    #[test]
    fn settings_debug_hides_the_database_password() {
        for url in [
            "postgres://gatehouse:s3cr3t-pw@db.example:5432/gatehouse",
            "postgres://db.example/gatehouse?user=gh&password=s3cr3t-pw",
        ] {
            let raw = RawConfig {
                database_url: Some(url.to_owned()),
                ..RawConfig::default()
            };
            let settings = Settings::resolve(raw, Some(Kek::generate().to_base64url())).unwrap();
            assert_eq!(&*settings.database_url, url, "used unchanged");
            let shown = format!("{settings:?}");
            assert!(!shown.contains("s3cr3t-pw"), "{shown}");
            assert!(shown.contains("db.example"), "{shown}");
        }
        let shown = format!("{:?}", DatabaseUrl::new("not a url s3cr3t-pw"));
        assert_eq!(shown, "DatabaseUrl(<hidden>)");
    }

    #[test]
    fn signing_algs_are_validated() {
        let resolve = |algs: &[&str]| {
            let raw = RawConfig {
                signing_algs: Some(algs.iter().map(|a| (*a).to_owned()).collect()),
                ..RawConfig::default()
            };
            Settings::resolve(raw, Some(Kek::generate().to_base64url()))
                .map(|s| s.rotation.signing_algs)
                .map_err(|e| e.to_string())
        };
        let default =
            Settings::resolve(RawConfig::default(), Some(Kek::generate().to_base64url())).unwrap();
        assert_eq!(default.rotation.signing_algs, [Alg::RS256, Alg::ES256]);
        assert_eq!(
            resolve(&["RS256", "EdDSA"]).unwrap(),
            [Alg::RS256, Alg::EdDSA]
        );
        let e = resolve(&["RS256", "HS256"]).unwrap_err();
        assert!(e.contains("\"HS256\" is not a signing algorithm"), "{e}");
        let e = resolve(&["ES256"]).unwrap_err();
        assert!(e.contains("must include RS256"), "{e}");
        let e = resolve(&["RS256", "RS256"]).unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn db_probe_interval_is_validated() {
        let resolve = |ms: Option<i64>| {
            let raw = RawConfig {
                db_probe_interval_ms: ms,
                ..RawConfig::default()
            };
            Settings::resolve(raw, Some(Kek::generate().to_base64url()))
                .map(|s| s.store_options().db_probe_interval)
                .map_err(|e| e.to_string())
        };
        let ms = std::time::Duration::from_millis;
        assert_eq!(resolve(None).unwrap(), ms(250));
        assert_eq!(resolve(Some(1000)).unwrap(), ms(1000));
        for bad in [0, 9, -250, 60_001] {
            let e = resolve(Some(bad)).unwrap_err();
            assert!(
                e.contains("db_probe_interval_ms must be between 10 and 60000"),
                "{e}"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod outage_tests {
    use super::*;

    fn resolve(reserve: Option<i64>, staleness: Option<i64>) -> Result<Settings, String> {
        let raw = RawConfig {
            status_index_reserve_max: reserve,
            outage_staleness_secs: staleness,
            ..RawConfig::default()
        };
        Settings::resolve(raw, Some(Kek::generate().to_base64url())).map_err(|e| e.to_string())
    }

    #[test]
    fn outage_options_have_defaults_and_are_validated() {
        let s = resolve(None, None).unwrap();
        assert_eq!(s.status_index_reserve_max, 65_536);
        assert_eq!(s.outage_staleness_secs, 10);
        let s = resolve(Some(2048), Some(0)).unwrap();
        assert_eq!(s.status_index_reserve_max, 2048);
        assert_eq!(
            s.outage_staleness_secs, 0,
            "0 turns answering from memory off"
        );
        assert_eq!(
            resolve(Some(1 << 20), Some(300))
                .unwrap()
                .status_index_reserve_max,
            1 << 20
        );
        for bad in [0, 1024, 3000, 100_000, 1 << 21, -4096] {
            let e = resolve(Some(bad), None).unwrap_err();
            assert!(
                e.contains("status_index_reserve_max must be a power of two from 2048 to 1048576"),
                "{bad}: {e}"
            );
        }
        for bad in [-1, 301] {
            let e = resolve(None, Some(bad)).unwrap_err();
            assert!(
                e.contains("outage_staleness_secs must be between 0"),
                "{bad}: {e}"
            );
        }
    }
}
