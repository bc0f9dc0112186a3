//! Assembling the application: state, router, middleware, background
//! tasks, and the listening server with graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{header, Request, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Router,
};
use gatehouse_keys::{Clock, Kek, KeyRing, SecretHasher, SecretSealer, SystemClock};
use gatehouse_storage::{Store, StoreError, StoreOptions};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnFailure, TraceLayer},
};

use crate::{
    config::Settings, discovery::Discovery, http, recent_reads::RecentReads, registry::Registry,
    state::AppState, token_status::StatusLists, tokens::TokenIssuer, views::Views,
};

pub use crate::http::layers::MAX_BODY_BYTES;

/// Builds the state: reads and checks the pages (the operator's
/// templates and assets directory), opens the key ring (generating keys
/// on first start) and the caches. The store must be migrated already.
pub async fn build_state(
    settings: Settings,
    store: Store,
    kek: Kek,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    crate::i18n::init()?;
    let views = pages(&settings)?;
    build_state_with(settings, store, kek, clock, views).await
}

/// The templates, loaded and test-rendered, after checking the assets
/// directory: a broken template or directory stops the start.
fn pages(settings: &Settings) -> anyhow::Result<Arc<Views>> {
    let views = Views::load(settings.templates_dir.as_deref())?;
    if let Some(dir) = &settings.assets_dir {
        http::assets::check_dir(dir)?;
    }
    Ok(Arc::new(views))
}

async fn build_state_with(
    settings: Settings,
    store: Store,
    kek: Kek,
    clock: Arc<dyn Clock>,
    views: Arc<Views>,
) -> anyhow::Result<AppState> {
    let keys = KeyRing::open(
        store.clone(),
        kek.clone(),
        settings.rotation.clone(),
        clock.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot open the key ring: {e}"))?;
    let discovery = Arc::new(Discovery::new(&settings));
    let passkeys = Arc::new(
        crate::passkeys::Passkeys::new(&settings.issuer, "Gatehouse")
            .map_err(|e| anyhow::anyhow!("passkeys: {e}"))?,
    );
    let http = Arc::new(crate::outbound::Outbound::new(settings.outbound.clone())?);
    // Knowing the epochs from the start, the first poll does not empty
    // the caches filled since (which serve while the database is away).
    let registry = Arc::new(Registry::new(store.clone()));
    registry.refresh().await?;
    let settings = Arc::new(settings);
    let status_lists = Arc::new(StatusLists::new(
        settings.clone(),
        store.clone(),
        keys.clone(),
        clock.clone(),
        store.status_high_water().await?,
    ));
    let hasher = SecretHasher::new(&kek);
    let recent_reads = Arc::new(RecentReads::default());
    let tokens = Arc::new(TokenIssuer::new(
        settings.clone(),
        store.clone(),
        keys.clone(),
        hasher.clone(),
        clock.clone(),
        status_lists.clone(),
        recent_reads.clone(),
    ));
    Ok(AppState::new(crate::state::Shared {
        metrics: Arc::default(),
        status_lists,
        tokens,
        draining: Arc::default(),
        throttle: Arc::default(),
        http,
        registry,
        hasher,
        device_keys: crate::http::device::mac_key(&kek),
        dpop_nonces: crate::dpop::Nonces::new(&kek),
        sealer: SecretSealer::new(&kek),
        totp: gatehouse_keys::TotpSealer::new(&kek),
        passkeys,
        settings,
        store,
        keys,
        clock,
        discovery,
        introspection_misses: Arc::new(crate::rate::RateWindow::new(
            crate::http::introspect::MAX_INACTIVE_PER_MINUTE,
        )),
        authorization_starts: Arc::new(crate::rate::RateWindow::new(
            http::authorize::MAX_STARTS_PER_MINUTE,
        )),
        device_limits: Arc::default(),
        replay: Arc::default(),
        recent_reads,
        views,
    }))
}

/// The router with every endpoint and the middleware stack.
pub fn router(state: AppState) -> Router {
    let x_request_id = header::HeaderName::from_static("x-request-id");
    // JSON, JWTs and the stylesheet: no page, no language, no middleware
    // for them (discovery and JWKS are the hottest paths).
    let api = Router::new()
        .route("/healthz", get(http::health::healthz))
        .route("/readyz", get(http::health::readyz))
        .route(
            "/.well-known/openid-configuration",
            get(http::well_known::discovery),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(http::well_known::discovery),
        )
        .route("/jwks", get(http::well_known::jwks))
        .route("/statuslists/{id}", get(http::status_list::status_list))
        .route("/assets/gatehouse.css", get(http::assets::stylesheet))
        // The credential endpoints: every answer on their paths is
        // `no-store` (`http::layers::cache_rule` lists them).
        .route("/token", post(http::token::token))
        .route("/par", post(http::par::push))
        .route(
            "/device_authorization",
            post(http::device_authorization::start),
        )
        .route(
            "/userinfo",
            get(http::userinfo::userinfo).post(http::userinfo::userinfo),
        )
        .route("/introspect", post(http::introspect::introspect))
        .route("/revoke", post(http::revoke::revoke))
        .route("/register", post(http::register::register))
        .route(
            "/register/{client_id}",
            get(http::register::read)
                .put(http::register::update)
                .delete(http::register::delete),
        )
        .route("/metrics", get(http::metrics::metrics));
    // The pages: rendered by the server's templates (`views::render_pages`)
    // in the request's language (`i18n::scope`, outermost, so rendering
    // sees it).
    let pages = Router::new()
        .route(
            "/authorize",
            get(http::authorize::get).post(http::authorize::post),
        )
        .route("/authorize/continue", get(http::authorize::resume))
        .route("/login", get(http::login::get).post(http::login::post))
        .route("/login/passkey/begin", post(http::passkey::begin))
        .route("/login/passkey", post(http::passkey::finish))
        .route(
            "/account/passkeys/begin",
            post(http::passkey::register_begin),
        )
        .route("/account/passkeys", post(http::passkey::register_finish))
        .route("/account/passkeys/remove", post(http::passkey::remove))
        .route(
            "/login/second-factor",
            get(http::second_factor::get).post(http::second_factor::post),
        )
        .route(
            "/consent",
            get(http::consent::get).post(http::consent::post),
        )
        .route(
            "/device",
            get(http::device_verification::get).post(http::device_verification::post),
        )
        .route("/logout", get(http::logout::get).post(http::logout::post))
        .route("/", get(http::login::home))
        .route("/account", get(http::account::get))
        .route("/account/sessions/end", post(http::account::end_session))
        .route("/account/totp/begin", post(http::account::begin_totp))
        .route("/account/totp/confirm", post(http::account::confirm_totp))
        .route("/account/totp/remove", post(http::account::remove_totp))
        .route(
            "/account/recovery-codes/new",
            post(http::account::new_recovery_codes),
        )
        .route("/account/password", post(http::account::change_password))
        .route(
            "/account/consents/revoke",
            post(http::account::revoke_consent),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.views.clone(),
            crate::views::render_pages,
        ))
        .route_layer(axum::middleware::from_fn(crate::i18n::scope));
    let routes = api.merge(pages);
    // The operator's files beside the stylesheet, which keeps its route.
    let routes = match &state.settings.assets_dir {
        Some(dir) => routes.nest_service("/assets", http::assets::service(dir)),
        None => routes,
    };
    let routes = routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::metrics::track,
        ))
        .fallback(not_found);
    http::layers::around(routes, http::layers::REQUEST_TIMEOUT)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: query strings carry codes and tokens.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            })
            // A 5xx is logged where it is decided (an internal error with its
            // detail; the database going down and back once each), not once
            // more per response: an outage must not flood the log.
            .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": "not_found" })),
    )
}

/// The application behind a listener, once it exists. Until then the
/// listener answers from [`starting`].
type Slot = Arc<std::sync::OnceLock<Router>>;

/// A bound listener serving while the application is still being built
/// (`serve --wait-for-database`): `/healthz` answers 200, `/readyz` and
/// every other path 503. [`Listening::ready`] puts the application behind
/// the same socket, so no connection is refused in between.
pub struct Listening {
    pub addr: SocketAddr,
    slot: Slot,
    shutdown: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listening {
    /// Binds `listen` and starts answering.
    pub async fn bind(listen: SocketAddr) -> anyhow::Result<Listening> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        Listening::on(listener)
    }

    /// Starts answering on a listener bound already.
    pub fn on(listener: tokio::net::TcpListener) -> anyhow::Result<Listening> {
        let addr = listener.local_addr()?;
        let slot: Slot = Arc::default();
        // The gate is only a fallback: it sets no MatchedPath, so the
        // application's own routes and metrics see the request unchanged
        // (with its ConnectInfo).
        let gate = Router::new().fallback(gate).with_state(slot.clone());
        let (shutdown, handle) = spawn_serve(listener, gate);
        Ok(Listening {
            addr,
            slot,
            shutdown,
            handle,
        })
    }

    /// Puts the application behind the listener, starts the metrics
    /// listener if configured, and spawns the background tasks (key and
    /// cache refresh, the rotation schedule, housekeeping).
    pub async fn ready(self, state: AppState) -> anyhow::Result<Server> {
        let metrics = match MetricsListener::start(&state).await {
            Ok(m) => m,
            Err(e) => {
                self.stop().await;
                return Err(e);
            }
        };
        let _ = self.slot.set(router(state.clone()));
        let background = spawn_background(&state);
        Ok(Server {
            addr: self.addr,
            state,
            shutdown: self.shutdown,
            handle: self.handle,
            background,
            metrics,
        })
    }

    /// Closes the listener without ever having served the application.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.handle.await;
    }
}

/// Serves `app` on `listener` (with the peer address for throttling) until
/// the returned sender says `true`; in-flight requests then finish.
fn spawn_serve(
    listener: tokio::net::TcpListener,
    app: Router,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|v| *v).await;
        })
        .await
    });
    (tx, handle)
}

async fn gate(State(slot): State<Slot>, req: axum::extract::Request) -> axum::response::Response {
    use tower::ServiceExt as _;
    match slot.get() {
        Some(app) => match app.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        None => starting(req.uri().path()),
    }
}

/// Answers while the database has not been reached yet.
fn starting(path: &str) -> axum::response::Response {
    use serde_json::json;
    match path {
        "/healthz" => axum::Json(json!({ "status": "ok" })).into_response(),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "starting", "reason": "database" })),
        )
            .into_response(),
        _ => http::error::AppError::Unavailable.into_response(),
    }
}

fn spawn_background(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let mut background = vec![state
        .keys
        .spawn(Duration::from_secs(2), Duration::from_secs(60))];
    let caches = state.clone();
    background.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Err(e) = caches.registry.refresh().await {
                tracing::warn!(error = %e, "cache refresh failed; will retry");
            }
            if let Err(e) = caches.status_lists.refresh_mark().await {
                tracing::warn!(error = %e, "status-list mark refresh failed; will retry");
            }
            if let Err(e) = caches.flush_replay_records().await {
                tracing::warn!(error = %e, "writing one-time values seen during an outage failed; will retry");
            }
        }
    }));
    let housekeeping = state.clone();
    background.push(tokio::spawn(async move {
        loop {
            if let Err(e) = housekeep(&housekeeping).await {
                tracing::warn!(error = %e, "housekeeping failed; will retry");
            }
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
    }));
    background
}

/// The `--metrics-listen` listener: `/metrics` without a token, nothing else.
struct MetricsListener {
    addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MetricsListener {
    async fn start(state: &AppState) -> anyhow::Result<Option<MetricsListener>> {
        let Some(listen) = state.settings.metrics_listen else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/metrics", get(http::metrics::metrics_open))
            .fallback(not_found)
            .with_state(state.clone());
        let (shutdown, handle) = spawn_serve(listener, app);
        tracing::info!(%addr, "serving /metrics");
        Ok(Some(MetricsListener {
            addr,
            shutdown,
            handle,
        }))
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    metrics: Option<MetricsListener>,
}

impl Server {
    /// Binds `listen`, spawns the background tasks and starts serving.
    pub async fn start(state: AppState, listen: SocketAddr) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        Server::start_on(state, listener).await
    }

    /// Like [`Server::start`] on a listener bound already (tests bind port 0
    /// first to learn the issuer URL). The router is served directly: the
    /// start-up gate of [`Listening`] is only for `--wait-for-database`.
    pub async fn start_on(
        state: AppState,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        let metrics = MetricsListener::start(&state).await?;
        let (shutdown, handle) = spawn_serve(listener, router(state.clone()));
        let background = spawn_background(&state);
        Ok(Server {
            addr,
            state,
            shutdown,
            handle,
            background,
            metrics,
        })
    }

    /// Where `/metrics` is served without a token (`--metrics-listen`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    /// Stops accepting, lets in-flight requests finish, stops background tasks.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.drain(Duration::ZERO).await
    }

    /// Graceful shutdown: readiness fails at once, then after `grace` the
    /// listener closes and in-flight requests finish.
    pub async fn drain(self, grace: Duration) -> anyhow::Result<()> {
        self.state
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(grace).await;
        let _ = self.shutdown.send(true);
        for b in &self.background {
            b.abort();
        }
        self.handle.await??;
        if let Some(m) = self.metrics {
            let _ = m.shutdown.send(true);
            m.handle.await??;
        }
        Ok(())
    }
}

/// Deletes what can no longer matter: expired codes, authorization
/// transactions, pushed authorization requests, device authorizations, sessions, refresh tokens (rotated ones are kept until
/// their family could no longer be used, since reuse detection needs them),
/// opaque tokens, and revocation entries and status-list rows of tokens
/// that have expired anyway.
pub async fn housekeep(state: &AppState) -> anyhow::Result<()> {
    let now = state.now();
    let s = &state.store;
    let l = &state.settings.lifetimes;
    let codes = s.prune_codes(now - 3600).await?;
    let transactions = s.prune_authorization_txs(now).await?;
    let pushed = s.prune_pushed_requests(now).await?;
    let devices = s.prune_device_authorizations(now - 3600).await?;
    let ceremonies = s.prune_ceremonies(now).await?;
    let sessions = s.prune_sessions(now, l.session_idle).await?;
    let links = s.prune_session_clients(now - l.session_max_age).await?;
    let refresh = s.prune_refresh_tokens(now).await?;
    let opaque = s.prune_opaque_tokens(now).await?;
    let revoked = s.prune_revoked(now).await?;
    let statuses = s.prune_token_status(now).await?;
    // Counted here, not per scrape: /metrics reads memory only.
    state
        .metrics
        .set_revocation_list_size(s.revocation_list_size().await?);
    tracing::debug!(
        codes,
        transactions,
        pushed,
        devices,
        ceremonies,
        sessions,
        links,
        refresh,
        opaque,
        revoked,
        statuses,
        "housekeeping done"
    );
    Ok(())
}

/// Opens everything for `serve` with the wall clock.
pub async fn build_from_settings(settings: Settings) -> anyhow::Result<AppState> {
    // The pages first: a broken template fails the start at once, not
    // after waiting for the database.
    let views = pages(&settings)?;
    let store = open_store(
        &settings.database_url,
        settings.wait_for_database,
        settings.store_options(),
    )
    .await?;
    let kek = settings.load_kek()?;
    build_state_with(settings, store, kek, Arc::new(SystemClock), views).await
}

/// Connects and migrates. While the database cannot be reached, tries
/// again with growing pauses (0.5 s doubling to 5 s), one log line per
/// failed attempt, until `wait` has passed; then fails with the last
/// attempt's error. Other errors (a malformed URL, a failed migration)
/// fail at once. `wait` zero: one attempt.
pub async fn open_store(
    url: &str,
    wait: Duration,
    options: StoreOptions,
) -> Result<Store, StoreError> {
    let now = tokio::time::Instant::now();
    // A huge wait ("forever") must not overflow the clock.
    let deadline = now
        .checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
    let mut pause = Duration::from_millis(500);
    let mut attempt: u32 = 1;
    loop {
        let err = match Store::connect_with(url, options).await {
            Ok(store) => match store.migrate().await {
                Ok(()) => {
                    if attempt > 1 {
                        tracing::info!(attempt, "reached the database");
                    }
                    return Ok(store);
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !err.is_unavailable() || left.is_zero() {
            return Err(err);
        }
        let sleep = pause.min(left);
        tracing::warn!(
            attempt,
            retry_in_ms = u64::try_from(sleep.as_millis()).unwrap_or(u64::MAX),
            left_s = left.as_secs(),
            error = %err,
            "cannot reach the database yet; will retry"
        );
        tokio::time::sleep(sleep).await;
        pause = (pause * 2).min(Duration::from_secs(5));
        attempt += 1;
    }
}
