//! Assembling the application: state, router, middleware, background
//! tasks, and the listening server with graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderValue, Request, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Router,
};
use gatehouse_keys::{Clock, Kek, KeyRing, SecretHasher, SecretSealer, SystemClock};
use gatehouse_storage::Store;
use tower_http::{
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    config::Settings, discovery::Discovery, http, registry::Registry, state::AppState, views,
};

/// Largest request body accepted anywhere (forms and JSON are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Builds the state: opens the key ring (generating keys on first start)
/// and the caches. The store must be migrated already.
pub async fn build_state(
    settings: Settings,
    store: Store,
    kek: Kek,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    views::init()?;
    let keys = KeyRing::open(
        store.clone(),
        kek.clone(),
        settings.rotation.clone(),
        clock.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot open the key ring: {e}"))?;
    let discovery = Arc::new(Discovery::new(&settings));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(AppState {
        metrics: Arc::default(),
        status_lists: Arc::default(),
        draining: Arc::default(),
        throttle: Arc::default(),
        http,
        registry: Arc::new(Registry::new(store.clone())),
        hasher: SecretHasher::new(&kek),
        sealer: SecretSealer::new(&kek),
        settings: Arc::new(settings),
        store,
        keys,
        clock,
        discovery,
    })
}

/// The router with every endpoint and the middleware stack.
pub fn router(state: AppState) -> Router {
    let x_request_id = header::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(http::health::healthz))
        .route("/readyz", get(http::health::readyz))
        .route("/.well-known/openid-configuration", get(http::well_known::discovery))
        .route("/.well-known/oauth-authorization-server", get(http::well_known::discovery))
        .route("/jwks", get(http::well_known::jwks))
        .route("/statuslists/{id}", get(http::status_list::status_list))
        .route("/assets/gatehouse.css", get(http::well_known::stylesheet))
        .route("/authorize", get(http::authorize::get).post(http::authorize::post))
        .route("/login", get(http::login::get).post(http::login::post))
        .route("/consent", get(http::consent::get).post(http::consent::post))
        .route("/logout", get(http::logout::get).post(http::logout::post))
        .route("/", get(http::login::home))
        .route("/token", post(http::token::token))
        .route("/userinfo", get(http::userinfo::userinfo).post(http::userinfo::userinfo))
        .route("/introspect", post(http::introspect::introspect))
        .route("/revoke", post(http::revoke::revoke))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/register", post(http::register::register))
        .route(
            "/register/{client_id}",
            get(http::register::read).put(http::register::update).delete(http::register::delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: query strings carry codes and tokens.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
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

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Connects nothing itself: binds `listen`, spawns the background tasks
    /// (key and cache refresh, the rotation schedule) and starts serving.
    pub async fn start(state: AppState, listen: SocketAddr) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        Server::start_on(state, listener).await
    }

    /// Like [`Server::start`] on a listener bound already (tests bind port 0
    /// first to learn the issuer URL).
    pub async fn start_on(
        state: AppState,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let app = router(state.clone());
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
        let mut background = vec![state
            .keys
            .spawn(Duration::from_secs(2), Duration::from_secs(60))];
        let registry = state.registry.clone();
        background.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Err(e) = registry.refresh().await {
                    tracing::warn!(error = %e, "cache refresh failed; will retry");
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
        Ok(Server {
            addr,
            state,
            shutdown: tx,
            handle,
            background,
        })
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
        Ok(())
    }
}

/// Deletes what can no longer matter: expired codes, sessions, refresh
/// tokens (rotated ones are kept until their family could no longer be
/// used, since reuse detection needs them), opaque tokens, and revocation
/// entries and status-list rows of tokens that have expired anyway.
pub async fn housekeep(state: &AppState) -> anyhow::Result<()> {
    let now = state.now();
    let s = &state.store;
    let l = &state.settings.lifetimes;
    let codes = s.prune_codes(now - 3600).await?;
    let sessions = s.prune_sessions(now, l.session_idle).await?;
    let links = s.prune_session_clients(now - l.session_max_age).await?;
    let refresh = s.prune_refresh_tokens(now).await?;
    let opaque = s.prune_opaque_tokens(now).await?;
    let revoked = s.prune_revoked(now).await?;
    let statuses = s.prune_token_status(now).await?;
    tracing::debug!(
        codes,
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
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let kek = settings.load_kek()?;
    build_state(settings, store, kek, Arc::new(SystemClock)).await
}
