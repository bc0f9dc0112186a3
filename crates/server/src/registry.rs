//! In-memory caches of clients and resource servers, so the token endpoint
//! does at most one database read per request (often none). Entries are
//! dropped when the store's `clients` / `resources` epoch moves, which a
//! background task polls every couple of seconds: admin commands and other
//! instances are seen without a restart.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use gatehouse_keys::{Alg, PublicKey};
use gatehouse_storage::{
    model::{Client, ResourceServer},
    Store, StoreError,
};

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
            let alg: Result<Alg, _> = r.signing_alg.parse();
            match (PublicKey::from_jwk_json(&r.encryption_jwk), alg) {
                (Ok(k), Ok(alg)) => {
                    let opaque = r.token_format == "opaque";
                    map.insert(
                        r.audience.clone(),
                        Arc::new(Resource {
                            record: r,
                            encryption_key: k,
                            signing_alg: alg,
                            opaque,
                        }),
                    );
                }
                (Err(e), _) => {
                    tracing::error!(audience = %r.audience, error = %e, "resource server has an unusable key; skipped")
                }
                (_, Err(e)) => {
                    tracing::error!(audience = %r.audience, error = %e, "resource server has an unusable alg; skipped")
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
    /// again when `want_kid` is unknown but at most every ten seconds, with a
    /// timeout and a 64 KiB cap.
    pub async fn client_jwks(
        &self,
        http: &reqwest::Client,
        uri: &str,
        want_kid: &str,
    ) -> Vec<PublicKey> {
        use std::time::{Duration, Instant};
        let cached = self.jwks.lock().ok().and_then(|m| m.get(uri).cloned());
        if let Some((at, keys)) = &cached {
            let fresh = at.elapsed() < Duration::from_secs(300);
            let has = keys.iter().any(|k| k.kid() == Some(want_kid));
            if (fresh && has) || at.elapsed() < Duration::from_secs(10) {
                return keys.to_vec();
            }
        }
        let fetched = async {
            let mut r = http.get(uri).send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            let mut body = Vec::new();
            while let Some(chunk) = r.chunk().await.ok()? {
                body.extend_from_slice(&chunk);
                if body.len() > 64 * 1024 {
                    return None;
                }
            }
            crate::clients::parse_jwks(std::str::from_utf8(&body).ok()?).ok()
        }
        .await;
        match fetched {
            Some(keys) => {
                let keys = Arc::new(keys);
                if let Ok(mut m) = self.jwks.lock() {
                    if m.len() > 1000 {
                        m.clear();
                    }
                    m.insert(uri.to_owned(), (Instant::now(), keys.clone()));
                }
                keys.to_vec()
            }
            None => {
                tracing::warn!(%uri, "could not fetch a client's jwks_uri");
                if let Ok(mut m) = self.jwks.lock() {
                    let keys = cached.map(|(_, k)| k).unwrap_or_default();
                    m.insert(uri.to_owned(), (Instant::now(), keys.clone()));
                    return keys.to_vec();
                }
                Vec::new()
            }
        }
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
