//! Validation: [`Settings::resolve`] checks every raw value and fills the
//! defaults; one message per mistake, naming the option.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use gatehouse_keys::{Alg, Kek, RotationPolicy, DEFAULT_SIGNING_ALGS, SIGNING_ALGS};
use url::Url;

use super::{
    defaults::{
        DEFAULT_DATABASE_URL, DEFAULT_DPOP_PROOF_MAX_AGE, DEFAULT_ISSUER, DEFAULT_LISTEN,
        DEFAULT_OUTAGE_STALENESS_SECS, DEFAULT_PASSWORD_MIN_LENGTH,
        DEFAULT_STATUS_INDEX_RESERVE_MAX, MAX_OUTAGE_STALENESS_SECS,
    },
    settings::dev_kek_path,
    DatabaseUrl, DpopSettings, KekSource, Lifetimes, MetricsToken, RawConfig, Settings,
};

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
        let database_url = DatabaseUrl::new(
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
        let password_min_length = password_min_length(raw.password_min_length)?;
        let dpop = DpopSettings {
            nonce: raw.dpop_nonce.unwrap_or(false),
            max_age: match raw.dpop_proof_max_age {
                None => DEFAULT_DPOP_PROOF_MAX_AGE,
                Some(x @ 5..=300) => x,
                Some(x) => bail!("dpop_proof_max_age must be between 5 and 300 seconds, got {x}"),
            },
        };
        Ok(Settings {
            dpop,
            db_probe_interval,
            status_index_reserve_max,
            outage_staleness_secs,
            password_min_length,
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
            require_pushed_authorization_requests: raw
                .require_pushed_authorization_requests
                .unwrap_or(false),
            trusted_proxies,
            // Read at start-up, where a problem is reported with the file.
            templates_dir: raw.templates_dir,
            assets_dir: raw.assets_dir,
        })
    }
}

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

/// Validates `password_min_length`: at least 8 (NIST SP 800-63B-4 allows
/// nothing shorter) and at most 64 (passwords of 64 characters must be
/// allowed).
fn password_min_length(raw: Option<i64>) -> anyhow::Result<usize> {
    use crate::password_policy::{MAX_MIN_LENGTH, MIN_MIN_LENGTH};
    let Some(x) = raw else {
        return Ok(DEFAULT_PASSWORD_MIN_LENGTH);
    };
    match usize::try_from(x) {
        Ok(n) if (MIN_MIN_LENGTH..=MAX_MIN_LENGTH).contains(&n) => Ok(n),
        _ => bail!(
            "password_min_length must be between {MIN_MIN_LENGTH} and {MAX_MIN_LENGTH} characters, got {x}"
        ),
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
pub fn check_signing_alg(settings_algs: &[Alg], what: &str, alg: Alg) -> Result<(), String> {
    if settings_algs.contains(&alg) {
        return Ok(());
    }
    let published: Vec<&str> = settings_algs.iter().map(|a| a.as_str()).collect();
    Err(format!(
        "{what} {alg} is not published by this server (signing_algs is {}); use one of those, or ask the operator to add {alg} to signing_algs",
        published.join(", ")
    ))
}
