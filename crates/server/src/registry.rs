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

/// The caches. Cheap to share behind an `Arc`.
pub struct Registry {
    store: Store,
    cache: RwLock<Cache>,
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
