//! In-memory caches of clients and resource servers, so the token endpoint
//! does at most one database read per request (often none). Entries are
//! dropped when the store's `clients` / `resources` epoch moves, which a
//! background task polls every couple of seconds: admin commands and other
//! instances are seen without a restart.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use gatehouse_keys::{Alg, PublicKey};
use gatehouse_storage::{
    model::{Client, ResourceServer},
    Store, StoreError,
};

use crate::{oauth::TokenFormat, outbound::Outbound};

/// A resource server with its encryption key parsed once.
#[derive(Debug)]
pub struct Resource {
    pub record: ResourceServer,
    pub encryption_key: PublicKey,
    pub signing_alg: Alg,
    pub opaque: bool,
}

#[derive(Default)]
struct Cache {
    clients_epoch: i64,
    clients: HashMap<String, Arc<Client>>,
    resources_epoch: i64,
    resources: Option<Arc<HashMap<String, Arc<Resource>>>>,
}

/// Keys fetched from a client's `jwks_uri`, and when.
type FetchedKeys = (std::time::Instant, Arc<Vec<PublicKey>>);

/// The caches. Cheap to share behind an `Arc`.
pub struct Registry {
    store: Store,
    cache: RwLock<Cache>,
    jwks: std::sync::Mutex<HashMap<String, FetchedKeys>>,
    /// One `jwks_uri` fetch per URI at a time.
    jwks_flights: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new(store: Store) -> Registry {
        Registry {
            store,
            cache: RwLock::new(Cache {
                clients_epoch: -1,
                resources_epoch: -1,
                ..Cache::default()
            }),
            jwks: std::sync::Mutex::new(HashMap::new()),
            jwks_flights: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Cache) -> T) -> T {
        match self.cache.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }
    fn write<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> T {
        match self.cache.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// A client by id: from memory, or one read.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(c) = self.read(|c| c.clients.get(id).cloned()) {
            return Ok(Some(c));
        }
        // Only cache what was read under the current epoch: a read that
        // raced with an invalidation must not re-insert a stale client.
        let epoch = self.read(|c| c.clients_epoch);
        let found = self.store.client(id).await?.map(Arc::new);
        if let Some(c) = &found {
            self.write(|cache| {
                if cache.clients_epoch != epoch {
                    return;
                }
                if cache.clients.len() > 10_000 {
                    cache.clients.clear();
                }
                cache.clients.insert(id.to_owned(), c.clone());
            });
        }
        Ok(found)
    }

    /// Every resource server, keyed by audience.
    pub async fn resources(&self) -> Result<Arc<HashMap<String, Arc<Resource>>>, StoreError> {
        if let Some(r) = self.read(|c| c.resources.clone()) {
            return Ok(r);
        }
        let epoch = self.read(|c| c.resources_epoch);
        let mut map = HashMap::new();
        for r in self.store.list_resources().await? {
            match PublicKey::from_jwk_json(&r.encryption_jwk) {
                Ok(k) => {
                    map.insert(
                        r.audience.clone(),
                        Arc::new(Resource {
                            signing_alg: r.signing_alg,
                            opaque: r.token_format == TokenFormat::Opaque,
                            record: r,
                            encryption_key: k,
                        }),
                    );
                }
                Err(e) => {
                    tracing::error!(audience = %r.audience, error = %e, "resource server has an unusable key; skipped")
                }
            }
        }
        let map = Arc::new(map);
        self.write(|c| {
            if c.resources_epoch == epoch {
                c.resources = Some(map.clone());
            }
        });
        Ok(map)
    }

    /// A client's keys from its `jwks_uri`: cached for five minutes, fetched
    /// again when `want_kid` is unknown but at most every ten seconds, through
    /// the guarded client (timeout, 64 KiB cap, no redirects, nothing
    /// internal). One fetch per URI at a time: concurrent callers wait for
    /// it and share its answer.
    pub async fn client_jwks(&self, http: &Outbound, uri: &str, want_kid: &str) -> Vec<PublicKey> {
        if let Some(keys) = self.cached_jwks(uri, want_kid) {
            return keys;
        }
        let flight = match self.jwks_flights.lock() {
            Ok(mut f) => f.entry(uri.to_owned()).or_default().clone(),
            Err(p) => p.into_inner().entry(uri.to_owned()).or_default().clone(),
        };
        let keys = {
            let _one_at_a_time = flight.lock().await;
            // The flight before this one may have fetched it just now.
            match self.cached_jwks(uri, want_kid) {
                Some(keys) => keys,
                None => self.fetch_jwks(http, uri).await,
            }
        };
        if let Ok(mut f) = self.jwks_flights.lock() {
            // The map's reference and ours: nobody else waits on it.
            if f.get(uri).is_some_and(|x| Arc::strong_count(x) <= 2) {
                f.remove(uri);
            }
        }
        keys
    }

    /// The cached keys of `uri`, if fresh enough for `want_kid`.
    fn cached_jwks(&self, uri: &str, want_kid: &str) -> Option<Vec<PublicKey>> {
        let (at, keys) = self.jwks.lock().ok()?.get(uri).cloned()?;
        let fresh = at.elapsed() < Duration::from_secs(300);
        let has = keys.iter().any(|k| k.kid() == Some(want_kid));
        ((fresh && has) || at.elapsed() < Duration::from_secs(10)).then(|| keys.to_vec())
    }

    async fn fetch_jwks(&self, http: &Outbound, uri: &str) -> Vec<PublicKey> {
        let cached = self.jwks.lock().ok().and_then(|m| m.get(uri).cloned());
        let fetched = http
            .get(uri, 64 * 1024)
            .await
            .map_err(|e| e.to_string())
            .and_then(|body| {
                let text = std::str::from_utf8(&body).map_err(|_| "not UTF-8".to_owned())?;
                crate::clients::parse_jwks(text)
            });
        let keys = match fetched {
            Ok(keys) => Arc::new(keys),
            Err(error) => {
                tracing::warn!(%uri, %error, "could not fetch a client's jwks_uri");
                // Keep what we had; try again in ten seconds at the earliest.
                cached.map(|(_, k)| k).unwrap_or_default()
            }
        };
        if let Ok(mut m) = self.jwks.lock() {
            if m.len() > 1000 {
                m.clear();
            }
            m.insert(uri.to_owned(), (Instant::now(), keys.clone()));
        }
        keys.to_vec()
    }

    /// Drops whatever changed since the last poll.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let clients = self.store.epoch("clients").await?;
        let resources = self.store.epoch("resources").await?;
        self.write(|c| {
            if c.clients_epoch != clients {
                c.clients.clear();
                c.clients_epoch = clients;
            }
            if c.resources_epoch != resources {
                c.resources = None;
                c.resources_epoch = resources;
            }
        });
        Ok(())
    }
}
