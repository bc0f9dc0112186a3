//! Gatehouse started with extra configuration: an https issuer, an
//! outbound allow list, a metrics token or a metrics listener.

use std::sync::Arc;

use gatehouse_keys::{Kek, ManualClock};
use gatehouse_server::{
    config::RawConfig,
    outbound::{Lookup, LookupFuture},
};

use super::TestApp;

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

pub use super::spawn_app_with;

/// Starts Gatehouse against the database at `url`, which the caller owns
/// (a private PostgreSQL server, for outage tests), with `extra`.
pub async fn spawn_app_on_with(url: String, extra: RawConfig) -> TestApp {
    super::start(
        url,
        Kek::generate(),
        None,
        ManualClock::default(),
        None,
        extra,
    )
    .await
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
