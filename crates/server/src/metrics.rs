//! Prometheus instruments, served at `GET /metrics` (OpenMetrics text) by
//! `http::metrics`: HTTP requests by route and status, latency histograms,
//! tokens issued by grant and format, login outcomes, key ages by state, the revocation list size,
//! the database connection pool's use, whether the database is up, and the
//! answers 503 because it was not.
//!
//! On the main listener `/metrics` requires the bearer token
//! `metrics_token` (without one configured it does not exist there: 404);
//! `serve --metrics-listen ADDR` serves it without a token on an address of
//! its own. A scrape reads memory only, never the database: the revocation
//! list size is counted by housekeeping (every 5 minutes).

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub grant: String,
    pub format: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    pub kid: String,
    pub alg: String,
    pub state: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The instruments, registered once.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_latency: HistogramFamily,
    pub tokens_issued: Family<TokenLabels, Counter>,
    pub logins: Family<OutcomeLabels, Counter>,
    key_age: Family<KeyLabels, Gauge>,
    revocation_list: Gauge,
    pool_open: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    db_up: Gauge,
    db_unavailable: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let tokens_issued = Family::<TokenLabels, Counter>::default();
        let logins = Family::<OutcomeLabels, Counter>::default();
        let key_age = Family::<KeyLabels, Gauge>::default();
        let revocation_list = Gauge::default();
        let pool_open = Gauge::default();
        let pool_idle = Gauge::default();
        let pool_max = Gauge::default();
        let db_up = Gauge::default();
        let db_unavailable = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_latency.clone(),
        );
        registry.register(
            "tokens_issued",
            "Access tokens issued by grant type and format",
            tokens_issued.clone(),
        );
        registry.register("logins", "Login attempts by outcome", logins.clone());
        registry.register(
            "key_age_seconds",
            "Age of each key by state",
            key_age.clone(),
        );
        registry.register(
            "revocation_list_entries",
            "Entries on the revocation list",
            revocation_list.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database connections open (in use or idle)",
            pool_open.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Database connections open and idle",
            pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Most database connections the pool will open",
            pool_max.clone(),
        );
        registry.register(
            "db_up",
            "1 while this instance reaches the database, 0 while it fails fast",
            db_up.clone(),
        );
        registry.register(
            "db_unavailable_responses",
            "Answers 503 because the database was unavailable (JSON and pages)",
            db_unavailable.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_latency,
            tokens_issued,
            logins,
            key_age,
            revocation_list,
            pool_open,
            pool_idle,
            pool_max,
            db_up,
            db_unavailable,
        }
    }
}

impl Metrics {
    /// Records the revocation list's size (counted by housekeeping).
    pub fn set_revocation_list_size(&self, entries: u64) {
        self.revocation_list
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }
}

impl Metrics {
    /// Counts an answer 503 because the database was unavailable.
    pub fn count_database_unavailable(&self) {
        self.db_unavailable.inc();
    }
}

/// Sets the gauges read at scrape time (key ages, the pool, the database's
/// state) and encodes every instrument; reads memory only.
pub fn encode_all(state: &AppState) -> Result<String, std::fmt::Error> {
    let m = &state.metrics;
    let now = state.now();
    m.key_age.clear();
    for k in state.keys.snapshot().keys() {
        let since = k.activated_at.unwrap_or(k.created_at);
        m.key_age
            .get_or_create(&KeyLabels {
                kid: k.kid.to_string(),
                alg: k.alg.to_string(),
                state: k.state.as_str().to_owned(),
            })
            .set(now - since);
    }
    let pool = state.store.pool_stats();
    m.pool_open.set(i64::from(pool.open));
    m.pool_idle.set(i64::from(pool.idle));
    m.pool_max.set(i64::from(pool.max));
    m.db_up.set(i64::from(state.store.database_up()));
    let mut body = String::new();
    encode(&mut body, &m.registry)?;
    Ok(body)
}
