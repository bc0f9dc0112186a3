//! Gatehouse started with extra configuration: an https issuer, an
//! outbound allow list, a metrics token or a metrics listener.

use std::sync::Arc;

use gatehouse_keys::{Kek, ManualClock};
use gatehouse_server::{
    config::{RawConfig, Settings},
    outbound::{Lookup, LookupFuture},
    Server,
};
use gatehouse_storage::Store;

use super::{db, DbKind, TestApp};

/// The issuer of [`https_issuer`] apps: not a loopback development issuer,
/// so the production rules apply. Requests still go to the local port.
pub const HTTPS_ISSUER: &str = "https://login.gatehouse.test";

/// An https issuer with `extra` on top.
pub fn https_issuer(extra: RawConfig) -> RawConfig {
    RawConfig {
        issuer: Some(HTTPS_ISSUER.into()),
        ..extra
    }
}

/// Starts Gatehouse against a fresh database with `extra` over the usual
/// test configuration. `None` when the backend is not available.
pub async fn spawn_app_with(kind: DbKind, extra: RawConfig) -> Option<TestApp> {
    let db = db::fresh(kind).await?;
    let url = db.url.clone();
    Some(start_with(url, Some(db), extra).await)
}

/// Starts Gatehouse against the database at `url`, which the caller owns
/// (a private PostgreSQL server, for outage tests), with `extra`.
pub async fn spawn_app_on_with(url: String, extra: RawConfig) -> TestApp {
    start_with(url, None, extra).await
}

async fn start_with(db_url: String, db: Option<db::TestDb>, extra: RawConfig) -> TestApp {
    let kek = Kek::generate();
    let clock = ManualClock::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let raw = extra.over(RawConfig {
        issuer: Some(base.clone()),
        database_url: Some(db_url.clone()),
        key_prepublish: Some(3600),
        ..RawConfig::default()
    });
    let settings = Settings::resolve(raw, Some(kek.to_base64url())).unwrap();
    let store = Store::connect(&db_url).await.unwrap();
    store.migrate().await.unwrap();
    let state =
        gatehouse_server::build_state(settings, store, kek.clone(), Arc::new(clock.clone()))
            .await
            .unwrap();
    let server = Server::start_on(state.clone(), listener).await.unwrap();
    let client = || reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    TestApp {
        base,
        state,
        clock,
        browser: client().cookie_store(true).build().unwrap(),
        http: client().build().unwrap(),
        server: Some(server),
        kek,
        db_url,
        _db: db,
    }
}

impl TestApp {
    /// `/metrics` on the `metrics_listen` address, if one is configured.
    pub fn metrics_url(&self) -> Option<String> {
        let addr = self.server.as_ref()?.metrics_addr()?;
        Some(format!("http://{addr}/metrics"))
    }
}

/// A name resolver for the outbound guard that answers from a fixed table
/// and counts its calls: a DNS server under the attacker's control.
#[derive(Clone, Default)]
pub struct FixedLookup {
    pub answers: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<std::net::IpAddr>>>>,
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl FixedLookup {
    /// Makes `host` resolve to `ips` from now on.
    pub fn answer(&self, host: &str, ips: &[&str]) {
        self.answers.lock().unwrap().insert(
            host.to_owned(),
            ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        );
    }

    /// Installs this resolver behind `app`'s outbound guard.
    pub fn install(&self, app: &TestApp) {
        app.state.http.set_lookup(Arc::new(self.clone()));
    }

    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Lookup for FixedLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let found = self.answers.lock().unwrap().get(&host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, host))
        })
    }
}

/// A TCP listener on `ip` that accepts and drops connections, counting
/// them: whether Gatehouse tried to reach it at all.
pub async fn counting_listener(ip: &str) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, count)
}
