//! The key ring: the instance's in-memory view of every key, rebuilt only
//! when the keys change, and the rotation lifecycle on top of the store.
//!
//! Lifecycle per (use, alg): `next` (published, unused) → `active` (signs,
//! or is the current encryption key) → `retired` (published, verifies and
//! decrypts until its tokens have expired) → deleted. `revoked` withdraws a
//! key at once. Requests read an immutable [`Snapshot`]; a background task
//! polls the store's `keys` epoch every few seconds and swaps in a new
//! snapshot when another instance or an admin command changed the keys.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use gatehouse_protocol::Kid;
use serde::Serialize;
use sha2::{Digest, Sha256};

mod access;
mod own_tokens;

use crate::{
    decrypt, encrypt, generate, render_jwks, sign, verify, Alg, Clock, Kek, KeyError, KeyRecord,
    KeyRevocation, KeyState, KeyStore, KeyUse, OpenSealed, PrivateKey, PublicKey, Rotation,
    VerifiedJws,
};

/// Every signing algorithm Gatehouse can keep keys for. Which of them it
/// does is the operator's choice, [`RotationPolicy::signing_algs`].
pub const SIGNING_ALGS: [Alg; 4] = [Alg::RS256, Alg::ES256, Alg::PS256, Alg::EdDSA];
/// The signing algorithms published unless the operator adds more: RS256
/// (OIDC Core 15.1 requires it for ID tokens) and ES256. EdDSA and PS256
/// are opt-in: some relying-party libraries (cjose, so mod_auth_openidc)
/// fail to parse a JWKS holding an OKP key.
pub const DEFAULT_SIGNING_ALGS: [Alg; 2] = [Alg::RS256, Alg::ES256];
/// The algorithm of Gatehouse's own encryption key (tokens addressed to itself).
pub const OWN_ENCRYPTION_ALG: Alg = Alg::EcdhEsA256kw;

/// When keys rotate and how long they stay published.
#[derive(Clone, Debug)]
pub struct RotationPolicy {
    /// Age of the active key at which the schedule rotates it (default 30 days).
    pub rotate_after: i64,
    /// Minimum time a next key is published before it may become active.
    /// Must exceed `jwks_max_age` so relying parties have seen it.
    pub prepublish: i64,
    /// How long a retired key stays published: at least the longest token lifetime.
    pub retain_retired: i64,
    /// `Cache-Control: max-age` of the JWKS document.
    pub jwks_max_age: i64,
    /// The signing algorithms keys are generated, rotated and published
    /// for (a subset of [`SIGNING_ALGS`]). Stored keys of other signing
    /// algorithms are neither published nor used.
    pub signing_algs: Vec<Alg>,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            rotate_after: 30 * 86_400,
            prepublish: 86_400,
            retain_retired: 7 * 86_400,
            jwks_max_age: 900,
            signing_algs: DEFAULT_SIGNING_ALGS.to_vec(),
        }
    }
}

/// Public facts about a key, for listings.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    pub kid: Kid,
    #[serde(rename = "use")]
    pub key_use: KeyUse,
    pub alg: Alg,
    pub state: KeyState,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<&KeyRecord> for KeyInfo {
    fn from(k: &KeyRecord) -> Self {
        KeyInfo {
            kid: k.kid.clone(),
            key_use: k.key_use,
            alg: k.alg,
            state: k.state,
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_at: k.retired_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// One consistent view of the keys. Everything a request needs is ready:
/// private keys opened, the JWKS rendered, its ETag computed.
#[derive(Debug)]
pub struct Snapshot {
    epoch: i64,
    signers: HashMap<Alg, Arc<PrivateKey>>,
    own_encryption: Option<PublicKey>,
    decrypters: HashMap<String, Arc<PrivateKey>>,
    verifiers: HashMap<String, PublicKey>,
    jwks: Arc<[u8]>,
    jwks_etag: String,
    keys: Vec<KeyInfo>,
}

impl Snapshot {
    /// The JWKS document bytes.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.jwks.clone()
    }
    /// A strong ETag for the JWKS document.
    pub fn jwks_etag(&self) -> &str {
        &self.jwks_etag
    }
    /// Every key in the store, with its state.
    pub fn keys(&self) -> &[KeyInfo] {
        &self.keys
    }
    /// The store epoch this snapshot was built from.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }
}

/// Holds the current snapshot and performs key changes.
pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    kek: Kek,
    /// Seals the token references carried in JWE headers.
    reference_key: Kek,
    /// Root of the per-day keys of access tokens addressed to Gatehouse.
    own_token_key: Kek,
    /// Root of the content-encryption keys of access tokens encrypted to
    /// resource servers (one key per token id; see `ring/access.rs`).
    access_token_key: Kek,
    policy: RotationPolicy,
    clock: Arc<dyn Clock>,
    current: RwLock<Arc<Snapshot>>,
    /// Serializes `reload` (bug fix): without it a reload that read the
    /// store before a revoke/rotate committed could finish after that
    /// change's own reload and put the older snapshot back, so a key that
    /// `revoke` had just withdrawn kept signing and verifying on this
    /// instance until the next poll.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("policy", &self.policy)
            .field("snapshot", &self.snapshot())
            .finish_non_exhaustive()
    }
}

/// A new key id: 8 base64url characters (48 random bits). Short because
/// every token repeats it twice (the JWE's kid and the nested JWS's), and
/// random so ids do not reveal key order or count; a ring holds a few dozen
/// keys in its life, so a collision (about one in 10^11 for 100 keys) is
/// out of reach, and the database's primary key would refuse one anyway.
fn new_kid() -> String {
    use base64::Engine;
    use rand::RngCore;
    loop {
        let mut bytes = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        // Not `-` first: `gatehouse keys revoke -AbC...` would read as flags.
        if !kid.starts_with('-') {
            return kid;
        }
    }
}

fn record(alg: Alg, kek: &Kek, now: i64) -> Result<KeyRecord, KeyError> {
    let kid = new_kid();
    let g = generate(alg, &kid, kek)?;
    Ok(KeyRecord {
        kid: Kid::from(g.kid),
        key_use: alg.key_use(),
        alg,
        state: KeyState::Next,
        sealed_private_key: g.sealed_private_key,
        public_jwk: g.public_jwk,
        created_at: now,
        activated_at: None,
        retired_at: None,
        revoked_at: None,
    })
}

/// Generates a key off the async runtime (RSA generation takes tens of ms).
async fn record_blocking(alg: Alg, kek: &Kek, now: i64) -> Result<KeyRecord, KeyError> {
    let kek = kek.clone();
    tokio::task::spawn_blocking(move || record(alg, &kek, now))
        .await
        .map_err(|e| KeyError::crypto(format!("key generation task failed: {e}")))?
}

impl KeyRing {
    /// Opens the ring: makes sure every signing algorithm and the own
    /// encryption key have an active and a next key (generating them on
    /// first start; concurrent instances generate once between them), then
    /// loads the first snapshot. A wrong key-encryption key fails here.
    pub async fn open(
        store: impl KeyStore + 'static,
        kek: Kek,
        policy: RotationPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<KeyRing>, KeyError> {
        let ring = KeyRing {
            store: Arc::new(store),
            reference_key: kek.derive(b"gatehouse token-reference v1"),
            own_token_key: kek.derive(b"gatehouse own access tokens v1"),
            access_token_key: kek.derive(access::ACCESS_TOKEN_CEK_LABEL),
            kek,
            policy,
            clock,
            current: RwLock::new(Arc::new(Snapshot {
                epoch: -1,
                signers: HashMap::new(),
                own_encryption: None,
                decrypters: HashMap::new(),
                verifiers: HashMap::new(),
                jwks: Arc::from(&b"{\"keys\":[]}"[..]),
                jwks_etag: String::new(),
                keys: Vec::new(),
            })),
            reloading: tokio::sync::Mutex::new(()),
        };
        ring.ensure_all().await?;
        ring.reload().await?;
        Ok(Arc::new(ring))
    }

    /// The configured signing algorithms and the own encryption algorithm:
    /// what this ring generates, rotates and publishes keys for.
    fn algs(&self) -> Vec<Alg> {
        self.policy
            .signing_algs
            .iter()
            .copied()
            .filter(|a| SIGNING_ALGS.contains(a))
            .chain([OWN_ENCRYPTION_ALG])
            .collect()
    }

    async fn ensure_all(&self) -> Result<(), KeyError> {
        let existing = self.store.list_keys().await?;
        // Bug fix: prove the KEK opens the stored keys before generating
        // any. Otherwise a start with the wrong KEK on a database missing
        // some (use, alg) stored keys sealed under the wrong KEK before
        // failing, and from then on the right KEK could not open the ring.
        if let Some(k) = existing.iter().find(|k| k.state != KeyState::Revoked) {
            PrivateKey::open(&k.kid, k.alg, &k.sealed_private_key, &self.kek)?;
        }
        for alg in self.algs() {
            let has = |s: KeyState| existing.iter().any(|k| k.alg == alg && k.state == s);
            if has(KeyState::Active) && has(KeyState::Next) {
                continue;
            }
            let now = self.clock.now();
            let a = record_blocking(alg, &self.kek, now).await?;
            let n = record_blocking(alg, &self.kek, now).await?;
            let inserted = self
                .store
                .ensure_keys(alg.key_use(), alg, a, n, now)
                .await?;
            if !inserted.is_empty() {
                tracing::info!(alg = %alg, kids = ?inserted, "generated keys");
            }
        }
        Ok(())
    }

    /// The current snapshot. Cheap: one read lock and an `Arc` clone.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds the snapshot from the store if the keys changed. Returns
    /// whether it did.
    pub async fn refresh(&self) -> Result<bool, KeyError> {
        let epoch = self.store.keys_epoch().await?;
        if epoch == self.snapshot().epoch {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    async fn reload(&self) -> Result<(), KeyError> {
        // One reload at a time, each reading the store afresh: the last to
        // install its snapshot is also the last to have read the store.
        let _one_at_a_time = self.reloading.lock().await;
        let epoch = self.store.keys_epoch().await?;
        let mut records = self.store.list_keys().await?;
        let wanted = self.algs();
        records.retain(|k| k.key_use != KeyUse::Sig || wanted.contains(&k.alg));
        let kek = self.kek.clone();
        let snap = tokio::task::spawn_blocking(move || build_snapshot(epoch, &records, &kek))
            .await
            .map_err(|e| KeyError::crypto(format!("snapshot task failed: {e}")))??;
        let snap = Arc::new(snap);
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        Ok(())
    }

    /// Signs `claims` with the active key for `alg`: a compact JWS whose
    /// kid is always published in this snapshot's JWKS.
    pub fn sign<C: Serialize + ?Sized>(
        &self,
        alg: Alg,
        typ: &str,
        claims: &C,
    ) -> Result<String, KeyError> {
        let snap = self.snapshot();
        let key = snap
            .signers
            .get(&alg)
            .ok_or(KeyError::invalid_key(format!("no active {alg} key")))?;
        Ok(sign(key, typ, claims)?)
    }

    /// Verifies a JWS signed by one of Gatehouse's published keys.
    pub fn verify(&self, token: &str, allowed: &[Alg]) -> Result<VerifiedJws, KeyError> {
        let snap = self.snapshot();
        Ok(verify(token, allowed, |kid| {
            snap.verifiers.get(kid).cloned()
        })?)
    }

    /// Encrypts `payload` to Gatehouse's own active encryption key.
    pub fn encrypt_to_self(
        &self,
        payload: &str,
        cty: Option<&str>,
        extra: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<String, KeyError> {
        let snap = self.snapshot();
        let key = snap
            .own_encryption
            .as_ref()
            .ok_or(KeyError::invalid_key("no active encryption key".to_owned()))?;
        Ok(encrypt(payload, key, cty, extra)?)
    }

    /// Decrypts a JWE addressed to one of Gatehouse's own (non-revoked) keys.
    pub fn decrypt(
        &self,
        token: &str,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, Vec<u8>), KeyError> {
        let snap = self.snapshot();
        Ok(decrypt(token, |kid| {
            kid.and_then(|k| snap.decrypters.get(k).cloned())
        })?)
    }

    /// Is `kid` one of Gatehouse's own (non-revoked) encryption keys?
    pub fn is_own_encryption_kid(&self, kid: &str) -> bool {
        self.snapshot().decrypters.contains_key(kid)
    }

    /// Rotates every (use, alg) matching the filters now. Returns what changed.
    pub async fn rotate(
        &self,
        key_use: Option<KeyUse>,
        alg: Option<Alg>,
    ) -> Result<Vec<(Alg, Rotation)>, KeyError> {
        let mut done = Vec::new();
        for a in self.algs() {
            if key_use.is_some_and(|u| u != a.key_use()) || alg.is_some_and(|x| x != a) {
                continue;
            }
            let now = self.clock.now();
            let new_next = record_blocking(a, &self.kek, now).await?;
            if let Some(r) = self
                .store
                .rotate_keys(a.key_use(), a, None, new_next, now)
                .await?
            {
                done.push((a, r));
            }
        }
        self.reload().await?;
        Ok(done)
    }

    /// Withdraws a key at once (compromise).
    pub async fn revoke(&self, kid: &str) -> Result<KeyRevocation, KeyError> {
        let rec = self
            .store
            .list_keys()
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyError::invalid_key(format!("no key with kid {kid:?}")))?;
        let alg = rec.alg;
        let now = self.clock.now();
        let replacement = record_blocking(alg, &self.kek, now).await?;
        let out = self.store.revoke_key(kid, replacement, now).await?;
        self.reload().await?;
        Ok(out)
    }

    /// Adds a next key for `alg`.
    pub async fn generate_next(&self, alg: Alg) -> Result<Kid, KeyError> {
        let now = self.clock.now();
        let rec = record_blocking(alg, &self.kek, now).await?;
        let kid = rec.kid.clone();
        self.store.add_next_key(rec, now).await?;
        self.reload().await?;
        Ok(kid)
    }

    /// One step of the schedule: rotates every (use, alg) whose active key
    /// is older than `rotate_after` and whose next key has been published
    /// for `prepublish`, and deletes retired keys past `retain_retired`.
    /// Safe to run on every instance at once: each rotation is a
    /// compare-and-swap on the expected next key, so exactly one wins.
    pub async fn tick(&self) -> Result<Vec<(Alg, Rotation)>, KeyError> {
        self.refresh().await?;
        let now = self.clock.now();
        let records = self.store.list_keys().await?;
        let mut done = Vec::new();
        for a in self.algs() {
            let of = |s: KeyState| records.iter().filter(move |k| k.alg == a && k.state == s);
            let Some(active) = of(KeyState::Active).next() else {
                continue;
            };
            let Some(next) = of(KeyState::Next).min_by_key(|k| (k.created_at, k.kid.clone()))
            else {
                continue;
            };
            let age = now - active.activated_at.unwrap_or(active.created_at);
            if age < self.policy.rotate_after || now - next.created_at < self.policy.prepublish {
                continue;
            }
            let new_next = record_blocking(a, &self.kek, now).await?;
            if let Some(r) = self
                .store
                .rotate_keys(a.key_use(), a, Some(&next.kid), new_next, now)
                .await?
            {
                tracing::info!(alg = %a, activated = %r.activated, retired = ?r.retired, "scheduled key rotation");
                // The server's audit line (same schema as its `audit` module).
                tracing::info!(
                    target: "gatehouse::audit",
                    "{}",
                    serde_json::json!({
                        "audit": 1, "at": now, "event": "key_rotated",
                        "kid": r.activated, "alg": a.as_str(),
                    })
                );
                done.push((a, r));
            }
        }
        let pruned = self
            .store
            .prune_retired_keys(now - self.policy.retain_retired)
            .await?;
        if pruned > 0 {
            tracing::info!(pruned, "deleted retired keys past their retention");
        }
        if !done.is_empty() || pruned > 0 {
            self.reload().await?;
        }
        Ok(done)
    }

    /// Runs the background loop: picks up key changes every `poll`, runs the
    /// schedule every `schedule_every`. Errors are logged, never fatal.
    pub fn spawn(
        self: &Arc<Self>,
        poll: Duration,
        schedule_every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let ring = Arc::clone(self);
        tokio::spawn(async move {
            let mut last_schedule = tokio::time::Instant::now();
            let mut first = true;
            loop {
                tokio::time::sleep(poll).await;
                if first || last_schedule.elapsed() >= schedule_every {
                    first = false;
                    last_schedule = tokio::time::Instant::now();
                    if let Err(e) = ring.tick().await {
                        tracing::warn!(error = %e, "key schedule failed; will retry");
                    }
                } else if let Err(e) = ring.refresh().await {
                    tracing::warn!(error = %e, "key refresh failed; will retry");
                }
            }
        })
    }

    /// The rotation policy in force.
    pub fn policy(&self) -> &RotationPolicy {
        &self.policy
    }
}

fn build_snapshot(epoch: i64, records: &[KeyRecord], kek: &Kek) -> Result<Snapshot, KeyError> {
    let mut signers = HashMap::new();
    let mut decrypters = HashMap::new();
    let mut verifiers = HashMap::new();
    let mut own_encryption = None;
    let mut published = Vec::new();
    for k in records {
        if k.state == KeyState::Revoked {
            continue;
        }
        let alg = k.alg;
        let public = PublicKey::from_jwk_json(&k.public_jwk)?;
        match alg.key_use() {
            KeyUse::Sig => {
                if k.state == KeyState::Active {
                    let private = PrivateKey::open(&k.kid, alg, &k.sealed_private_key, kek)?;
                    signers.insert(alg, Arc::new(private));
                }
                verifiers.insert(k.kid.to_string(), public.clone());
            }
            KeyUse::Enc => {
                let private = PrivateKey::open(&k.kid, alg, &k.sealed_private_key, kek)?;
                decrypters.insert(k.kid.to_string(), Arc::new(private));
                if k.state == KeyState::Active && alg == OWN_ENCRYPTION_ALG {
                    own_encryption = Some(public.clone());
                }
            }
        }
        published.push(public);
    }
    let jwks: Arc<[u8]> = Arc::from(render_jwks(&published));
    let digest = Sha256::digest(&jwks);
    let jwks_etag = format!("\"{}\"", hex_prefix(&digest));
    Ok(Snapshot {
        epoch,
        signers,
        own_encryption,
        decrypters,
        verifiers,
        jwks,
        jwks_etag,
        keys: records.iter().map(KeyInfo::from).collect(),
    })
}

fn hex_prefix(d: &[u8]) -> String {
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
