//! The load driver of the chaos script (tests/chaos/run.sh): refresh-token
//! chains and client_credentials loops, round-robin over the Gatehouse
//! instances, while it stops and restarts the script's PostgreSQL; then the
//! report, and exit status 1 when a target of issue 13 is missed.
//!
//! Set up by the script through the environment: `CHAOS_BASES` (instance
//! URLs, comma-separated), `CHAOS_USER` (`username:password`),
//! `CHAOS_WEB_CLIENT` and `CHAOS_CC_CLIENTS` (`id:secret`, the latter
//! comma-separated), `CHAOS_REDIRECT_URI`, `CHAOS_RESOURCE`, the shell
//! commands `CHAOS_STOP_CMD`, `CHAOS_START_CMD` (must not wait for the
//! server) and `CHAOS_READY_CMD` (`pg_isready`), and the seconds
//! `CHAOS_OUTAGE_SECS`, `CHAOS_WARMUP_SECS` (5), `CHAOS_TAIL_SECS` (10).

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;

mod report;

use report::Timeline;

/// Eight refresh-token chains, as in the experiment.
const CHAINS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Refresh,
    ClientCredentials,
}

/// One answered (or failed: status 0) token request; times since load start.
struct Record {
    kind: Kind,
    start: Duration,
    end: Duration,
    status: u16,
}

struct Client {
    id: String,
    secret: String,
}

struct Config {
    bases: Vec<String>,
    user: (String, String),
    web: Client,
    cc: Vec<Client>,
    redirect_uri: String,
    resource: String,
    stop_cmd: String,
    start_cmd: String,
    ready_cmd: String,
    outage: Duration,
    warmup: Duration,
    tail: Duration,
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

fn secs(name: &str, default: u64) -> Result<Duration> {
    let v = std::env::var(name).map_or(Ok(default), |v| v.parse())?;
    Ok(Duration::from_secs(v))
}

fn pair(s: &str) -> Result<(String, String)> {
    let (a, b) = s.split_once(':').context("expected NAME:SECRET")?;
    Ok((a.to_owned(), b.to_owned()))
}

fn client(s: &str) -> Result<Client> {
    let (id, secret) = pair(s)?;
    Ok(Client { id, secret })
}

impl Config {
    fn from_env() -> Result<Config> {
        Ok(Config {
            bases: var("CHAOS_BASES")?.split(',').map(str::to_owned).collect(),
            user: pair(&var("CHAOS_USER")?)?,
            web: client(&var("CHAOS_WEB_CLIENT")?)?,
            cc: var("CHAOS_CC_CLIENTS")?
                .split(',')
                .map(client)
                .collect::<Result<_>>()?,
            redirect_uri: var("CHAOS_REDIRECT_URI")?,
            resource: var("CHAOS_RESOURCE")?,
            stop_cmd: var("CHAOS_STOP_CMD")?,
            start_cmd: var("CHAOS_START_CMD")?,
            ready_cmd: var("CHAOS_READY_CMD")?,
            outage: secs("CHAOS_OUTAGE_SECS", 40)?,
            warmup: secs("CHAOS_WARMUP_SECS", 5)?,
            tail: secs("CHAOS_TAIL_SECS", 10)?,
        })
    }
}

/// What every loop shares: the HTTP client, the round-robin counter, the log.
struct Load {
    t0: Instant,
    http: reqwest::Client,
    bases: Vec<String>,
    next: AtomicUsize,
    running: AtomicBool,
    records: Mutex<Vec<Record>>,
    errors_500: Mutex<Vec<String>>,
}

impl Load {
    /// POSTs a form to `/token` of the next instance; status (0 when no
    /// answer) and body. Every call is recorded.
    async fn token(&self, kind: Kind, c: &Client, form: &[(&str, &str)]) -> (u16, String) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len();
        let start = self.t0.elapsed();
        let answer = self
            .http
            .post(format!("{}/token", self.bases[i]))
            .basic_auth(&c.id, Some(&c.secret))
            .form(form)
            .send()
            .await;
        let (status, body) = match answer {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        let end = self.t0.elapsed();
        if status == 500 {
            let line = format!("+{:.3}s instance {i} {kind:?}: {body}", end.as_secs_f64());
            lock(&self.errors_500).push(line);
        }
        let r = Record {
            kind,
            start,
            end,
            status,
        };
        lock(&self.records).push(r);
        (status, body)
    }

    fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a refresh-token chain ended.
enum ChainEnd {
    Alive {
        rotations: u64,
        last_ok: Option<Duration>,
    },
    Died {
        at: Duration,
        reason: String,
    },
}

/// Refreshes as fast as it can, keeping the newest token; on any other
/// answer than 200 it retries with the same token (RFC 6749 clients do);
/// `400 invalid_grant` ends it.
async fn chain(load: Arc<Load>, cfg: Arc<Config>, mut rt: String) -> ChainEnd {
    let (mut rotations, mut last_ok) = (0, None);
    while load.running() {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        let (status, body) = load.token(Kind::Refresh, &cfg.web, &form).await;
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        match status {
            200 => {
                if let Some(next) = json["refresh_token"].as_str() {
                    rt = next.to_owned();
                }
                rotations += 1;
                last_ok = Some(load.t0.elapsed());
            }
            400 if json["error"] == "invalid_grant" => {
                let reason = format!("invalid_grant: {}", json["error_description"]);
                return ChainEnd::Died {
                    at: load.t0.elapsed(),
                    reason,
                };
            }
            0 => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => {}
        }
    }
    ChainEnd::Alive { rotations, last_ok }
}

/// client_credentials at a busy service's pace: 100 requests a second
/// (services cache their tokens; flat out, any finite reserve of status
/// indices runs out during a long outage, by design).
async fn cc_loop(load: Arc<Load>, cfg: Arc<Config>, i: usize) {
    let form = [
        ("grant_type", "client_credentials"),
        ("resource", cfg.resource.as_str()),
    ];
    let mut pace = tokio::time::interval(Duration::from_millis(10));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while load.running() {
        pace.tick().await;
        if load
            .token(Kind::ClientCredentials, &cfg.cc[i], &form)
            .await
            .0
            == 0
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value of a hidden input in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let Some(at) = html.find(&marker) else {
        return String::new();
    };
    let rest = &html[at + marker.len()..];
    let value = &rest[..rest.find('"').unwrap_or(rest.len())];
    value
        .replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The real code flow on `base` with a cookie jar of its own: /authorize,
/// the login form, the consent form, the code, then /token with PKCE.
/// Returns the refresh token.
async fn sign_in(cfg: &Config, base: &str) -> Result<String> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let verifier = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &cfg.web.id)
        .append_pair("redirect_uri", &cfg.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "chaos")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let absolute = |loc: &str| match loc.starts_with('/') {
        true => format!("{base}{loc}"),
        false => loc.to_owned(),
    };
    let mut next = format!("{base}/authorize?{query}");
    let mut steps = 0;
    while !next.starts_with(&cfg.redirect_uri) {
        steps += 1;
        ensure!(steps < 10, "too many steps in the code flow");
        let r = browser.get(&next).send().await?;
        let r = if r.status().is_redirection() {
            r
        } else {
            ensure!(r.status() == 200, "{} at {next}", r.status());
            let html = r.text().await?;
            let (csrf, ret) = (hidden(&html, "csrf"), hidden(&html, "tx"));
            let mut form = vec![("csrf", csrf.as_str()), ("tx", ret.as_str())];
            let action = if html.contains("action=\"/login\"") {
                form.extend([("username", cfg.user.0.as_str()), ("password", &cfg.user.1)]);
                "/login"
            } else if html.contains("action=\"/consent\"") {
                form.push(("decision", "allow"));
                "/consent"
            } else {
                bail!("unexpected page at {next}: {html}");
            };
            let r = browser
                .post(format!("{base}{action}"))
                .form(&form)
                .send()
                .await?;
            ensure!(r.status() == 303, "{action} answered {}", r.status());
            r
        };
        let loc = r
            .headers()
            .get("location")
            .context("redirect without Location")?;
        next = absolute(loc.to_str()?);
    }
    let code = url::Url::parse(&next)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("no code in {next}"))?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &cfg.redirect_uri),
        ("code_verifier", &verifier),
    ];
    let r = browser
        .post(format!("{base}/token"))
        .basic_auth(&cfg.web.id, Some(&cfg.web.secret));
    let json: Value = r
        .form(&form)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let rt = json["refresh_token"].as_str().context("no refresh token")?;
    Ok(rt.to_owned())
}

/// Runs a shell command to its end; fails unless it exits 0.
async fn sh(cmd: &str) -> Result<()> {
    let cmd = cmd.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
    })
    .await??;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cfg = Arc::new(Config::from_env()?);
    let mut refresh_tokens = Vec::new();
    for i in 0..CHAINS {
        let base = &cfg.bases[i % cfg.bases.len()];
        let rt = sign_in(&cfg, base)
            .await
            .with_context(|| format!("code flow of chain {i}"))?;
        refresh_tokens.push(rt);
    }
    let load = Arc::new(Load {
        t0: Instant::now(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        bases: cfg.bases.clone(),
        next: AtomicUsize::new(0),
        running: AtomicBool::new(true),
        records: Mutex::new(Vec::new()),
        errors_500: Mutex::new(Vec::new()),
    });
    let chains: Vec<_> = refresh_tokens
        .into_iter()
        .map(|rt| tokio::spawn(chain(load.clone(), cfg.clone(), rt)))
        .collect();
    let loops: Vec<_> = (0..cfg.cc.len())
        .map(|i| tokio::spawn(cc_loop(load.clone(), cfg.clone(), i)))
        .collect();

    eprintln!(
        "chaos: {CHAINS} refresh chains, {} client_credentials loops; warming up",
        cfg.cc.len()
    );
    tokio::time::sleep(cfg.warmup).await;
    let stop = load.t0.elapsed();
    eprintln!("chaos: stopping PostgreSQL for {} s", cfg.outage.as_secs());
    sh(&cfg.stop_cmd).await.context("stopping PostgreSQL")?;
    let stopped = load.t0.elapsed();
    tokio::time::sleep(cfg.outage).await;
    let start = load.t0.elapsed();
    eprintln!("chaos: starting PostgreSQL");
    sh(&cfg.start_cmd).await.context("starting PostgreSQL")?;
    while sh(&cfg.ready_cmd).await.is_err() {
        ensure!(
            load.t0.elapsed() - start < Duration::from_secs(60),
            "PostgreSQL did not come back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready = load.t0.elapsed();
    tokio::time::sleep(cfg.tail).await;
    load.running.store(false, Ordering::Relaxed);
    let mut ends = Vec::new();
    for c in chains {
        ends.push(c.await?);
    }
    for l in loops {
        l.await?;
    }
    let timeline = Timeline {
        stop,
        stopped,
        start,
        ready,
    };
    let records = std::mem::take(&mut *lock(&load.records));
    let errors_500 = std::mem::take(&mut *lock(&load.errors_500));
    let missed = report::print(&timeline, &records, &ends, &errors_500);
    if missed > 0 {
        eprintln!("chaos: {missed} target(s) missed");
        std::process::exit(1);
    }
    Ok(())
}
