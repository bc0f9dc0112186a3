//! The issuer's signing keys: discovery, the JWKS fetch and its cache.

use std::sync::OnceLock;

use gatehouse_jose::KeyUse;

use super::*;

/// One signing key of the issuer's JWKS: its JWK and, when the JWK names
/// its `alg`, the key parsed once (or why it could not be). A JWK without
/// `alg` is parsed for an algorithm the first time a token names it, and
/// the key kept in that algorithm's slot, shared by the entry's clones.
#[derive(Clone)]
pub(crate) struct JwksKey {
    jwk: Value,
    parsed: Option<Result<PublicKey, JoseError>>,
    /// For a JWK without `alg`: one slot per signature algorithm, holding
    /// the key parsed for it once one parse succeeded (empty otherwise,
    /// and for a JWK with `alg`).
    by_alg: Arc<[(Alg, OnceLock<PublicKey>)]>,
    backend: Backend,
}

impl JwksKey {
    fn new(jwk: Value, backend: Backend) -> JwksKey {
        let parsed = jwk
            .get("alg")
            .map(|_| PublicKey::from_jwk_value_for_verification_with(&jwk, None, backend));
        let by_alg = match parsed {
            Some(_) => Arc::default(),
            None => Alg::ALL
                .iter()
                .chain(Alg::VERIFY_ONLY)
                .filter(|alg| alg.key_use() == KeyUse::Sig)
                .map(|&alg| (alg, OnceLock::new()))
                .collect(),
        };
        JwksKey {
            jwk,
            parsed,
            by_alg,
            backend,
        }
    }

    /// The key, for a token signed with `alg`: the JWK's own `alg`, if it
    /// has one, must be that one.
    pub(crate) fn for_alg(&self, alg: Alg) -> Result<PublicKey, VerifierError> {
        const MISMATCH: VerifierError =
            VerifierError::Signature("algorithm does not match the key");
        match &self.parsed {
            Some(Ok(key)) if key.alg() == alg => Ok(key.clone()),
            Some(_) => Err(MISMATCH),
            None => {
                let slot = self.slot(alg).ok_or(MISMATCH)?;
                if let Some(key) = slot.get() {
                    return Ok(key.clone());
                }
                // Parsed outside any lock: tokens with other keys or
                // algorithms never wait for it. Several first users may
                // parse at once; the first to finish fills the slot and
                // all of them return the key it holds. A failure is not
                // kept: it is cheap (the structural refusals come before
                // any crypto) and costs no more than the signature check
                // a usable key would have led to, and a key that failed
                // once for a passing reason is not refused until the next
                // JWKS refresh.
                let key = PublicKey::from_jwk_value_for_verification_with(
                    &self.jwk,
                    Some(alg),
                    self.backend,
                )
                .map_err(|_| MISMATCH)?;
                Ok(slot.get_or_init(|| key).clone())
            }
        }
    }

    /// The slot of `alg` (`None` for a JWK with `alg`, or an algorithm
    /// that does not sign).
    fn slot(&self, alg: Alg) -> Option<&OnceLock<PublicKey>> {
        self.by_alg
            .iter()
            .find(|(slot_alg, _)| *slot_alg == alg)
            .map(|(_, slot)| slot)
    }
}

#[derive(Default)]
pub(crate) struct JwksCache {
    keys: HashMap<String, JwksKey>,
    /// Last successful fetch.
    fetched_at: Option<Instant>,
    /// How long that fetch stays fresh (its max-age, within the bounds).
    max_age: Duration,
    /// Last refetch after the first load (rate limit).
    last_refetch: Option<Instant>,
    /// Last failed fetch.
    last_failure: Option<Instant>,
}

impl JwksCache {
    fn is_fresh(&self) -> bool {
        self.fetched_at.is_some_and(|t| t.elapsed() < self.max_age)
    }
}

impl Verifier {
    /// The signing key `kid` from the (cached) JWKS.
    ///
    /// The JWKS is fetched again when its `max-age` has lapsed (even if
    /// `kid` is known), or when `kid` is unknown, but for an unknown `kid`
    /// in a fresh JWKS at most once per [`REFETCH_INTERVAL`]. A failed
    /// first load is retried after [`FAILED_LOAD_RETRY`]; a failed refresh
    /// keeps the keys already known in use and is retried after
    /// [`REFETCH_INTERVAL`].
    pub(crate) async fn key(&self, kid: &str) -> Result<JwksKey, VerifierError> {
        {
            let cache = self.cache.read().await;
            if cache.is_fresh() {
                if let Some(k) = cache.keys.get(kid) {
                    return Ok(k.clone());
                }
            }
        }
        let _guard = self.fetch_lock.lock().await;
        let known = {
            let mut cache = self.cache.write().await;
            let known = cache.keys.get(kid).cloned();
            let fresh = cache.is_fresh();
            if fresh && known.is_some() {
                return known.ok_or(VerifierError::UnknownKey);
            }
            let recent = |t: Option<Instant>, d: Duration| t.is_some_and(|t| t.elapsed() < d);
            match cache.fetched_at {
                None => {
                    if recent(cache.last_failure, FAILED_LOAD_RETRY) {
                        return Err(VerifierError::Jwks(
                            "issuer JWKS unavailable; retrying shortly".into(),
                        ));
                    }
                }
                Some(_) if fresh => {
                    // An unknown kid in a fresh JWKS: rate-limited.
                    if recent(cache.last_refetch, REFETCH_INTERVAL) {
                        return Err(VerifierError::UnknownKey);
                    }
                    cache.last_refetch = Some(Instant::now());
                }
                Some(_) => {
                    // Stale: refresh, unless a refresh just failed.
                    if recent(cache.last_failure, REFETCH_INTERVAL) {
                        return known.ok_or(VerifierError::UnknownKey);
                    }
                }
            }
            known
        };
        let fetched = self.fetch_jwks().await;
        let mut cache = self.cache.write().await;
        match fetched {
            Ok((keys, max_age)) => {
                let (min, max) = self.jwks_cache_bounds;
                cache.keys = keys;
                cache.fetched_at = Some(Instant::now());
                cache.max_age = status::clamp(max_age, JWKS_MAX_AGE, min, max);
                cache.last_failure = None;
                tracing::debug!(max_age = ?cache.max_age, "cached the issuer JWKS");
                cache
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or(VerifierError::UnknownKey)
            }
            Err(e) => {
                cache.last_failure = Some(Instant::now());
                tracing::warn!(error = %e, "could not refresh the issuer JWKS");
                known.ok_or(e)
            }
        }
    }

    /// GETs `url` with the size cap; returns the body and the headers.
    /// Errors name the URL (the caller decides what reaches a client).
    pub(crate) async fn fetch(
        &self,
        url: &str,
        accept: &'static str,
        cap: usize,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), VerifierError> {
        let mut resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| VerifierError::Jwks(format!("fetching {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(VerifierError::Jwks(format!(
                "fetching {url}: HTTP {}",
                resp.status()
            )));
        }
        if resp.content_length().is_some_and(|l| l > cap as u64) {
            return Err(VerifierError::Jwks(format!("{url}: document too large")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| VerifierError::Jwks(format!("reading {url}: {e}")))?
        {
            if body.len() + chunk.len() > cap {
                return Err(VerifierError::Jwks(format!("{url}: document too large")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, resp.headers().clone()))
    }

    pub(crate) async fn get_document(
        &self,
        url: &str,
    ) -> Result<(Value, reqwest::header::HeaderMap), VerifierError> {
        let (body, headers) = self
            .fetch(url, "application/json", MAX_DOCUMENT_LEN)
            .await?;
        let doc = serde_json::from_slice(&body)
            .map_err(|_| VerifierError::Jwks(format!("{url}: not JSON")))?;
        Ok((doc, headers))
    }

    pub(crate) async fn jwks_uri(&self) -> Result<String, VerifierError> {
        if let Some(u) = &self.jwks_uri {
            return Ok(u.clone());
        }
        let issuer = self.issuer.trim_end_matches('/');
        self.discovered
            .get_or_try_init(|| async {
                let url = format!("{issuer}/.well-known/openid-configuration");
                match self.get_document(&url).await {
                    Ok((doc, _)) => {
                        if str_member_value(&doc, "issuer") != Some(self.issuer.as_str()) {
                            return Err(VerifierError::Jwks(
                                "discovery document is for another issuer".into(),
                            ));
                        }
                        str_member_value(&doc, "jwks_uri")
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                VerifierError::Jwks("discovery document has no jwks_uri".into())
                            })
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "discovery failed; using {issuer}/jwks");
                        Ok(format!("{issuer}/jwks"))
                    }
                }
            })
            .await
            .cloned()
    }

    /// The signing keys of the issuer's JWKS, and its `max-age` if any.
    pub(crate) async fn fetch_jwks(
        &self,
    ) -> Result<(HashMap<String, JwksKey>, Option<u64>), VerifierError> {
        let url = self.jwks_uri().await?;
        let (doc, headers) = self.get_document(&url).await?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| VerifierError::Jwks("JWKS has no keys array".into()))?;
        let mut out = HashMap::new();
        for k in keys {
            let Value::Object(m) = k else { continue };
            // Signing keys only, public only, with a kid.
            if m.get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
                || m.contains_key("d")
                || matches!(m.get("kty").and_then(Value::as_str), Some("oct") | None)
            {
                continue;
            }
            let Some(kid) = m.get("kid").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            out.insert(kid, JwksKey::new(k.clone(), self.backend));
        }
        tracing::debug!(count = out.len(), "fetched issuer JWKS");
        Ok((out, status::max_age(&headers)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// P-256's base point as a public key, without alg.
    fn ec_jwk_without_alg() -> Value {
        serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
            "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU",
        })
    }

    /// A JWK without `alg` is parsed once for an algorithm it fits, and
    /// the clones of the entry share what was parsed. An algorithm it does
    /// not fit is refused every time without spoiling the others, and the
    /// failure is not kept.
    #[test]
    fn a_jwk_without_alg_is_parsed_once_per_algorithm_and_failures_are_not_kept() {
        let entry = JwksKey::new(ec_jwk_without_alg(), Backend::default());
        let clone = entry.clone();
        assert!(Arc::ptr_eq(&entry.by_alg, &clone.by_alg));
        assert!(entry.for_alg(Alg::RS256).is_err());
        assert!(entry.slot(Alg::RS256).unwrap().get().is_none());
        let first = entry.for_alg(Alg::ES256).unwrap();
        let again = clone.for_alg(Alg::ES256).unwrap();
        assert_eq!(first.thumbprint(), again.thumbprint());
        assert_eq!(first.alg(), Alg::ES256);
        let stored = clone.slot(Alg::ES256).unwrap().get().unwrap();
        assert_eq!(stored.thumbprint(), first.thumbprint());
        assert!(clone.for_alg(Alg::RS256).is_err());
        assert!(clone.for_alg(Alg::ES384).is_err());
        assert!(entry.slot(Alg::RS256).unwrap().get().is_none());
        assert!(entry.slot(Alg::EcdhEsA256kw).is_none());
        assert_eq!(entry.for_alg(Alg::ES256).unwrap().alg(), Alg::ES256);
    }

    /// A JWK with `alg` has no slots and answers for its own algorithm only.
    #[test]
    fn a_jwk_with_alg_is_parsed_once_when_read() {
        let mut jwk = ec_jwk_without_alg();
        jwk["alg"] = "ES256".into();
        let entry = JwksKey::new(jwk, Backend::default());
        assert!(entry.by_alg.is_empty());
        assert_eq!(entry.for_alg(Alg::ES256).unwrap().alg(), Alg::ES256);
        assert!(entry.for_alg(Alg::RS256).is_err());
    }

    /// Concurrent first use, from many threads at once on clones of one
    /// entry, half of them with an algorithm the key does not fit: every
    /// ES256 caller gets the key (the one the slot keeps), every RS256
    /// caller a refusal, and nothing is kept for RS256.
    #[test]
    fn concurrent_first_use_answers_every_caller_and_keeps_one_key() {
        for _ in 0..20 {
            let entry = JwksKey::new(ec_jwk_without_alg(), Backend::default());
            let threads = 8;
            let barrier = Arc::new(std::sync::Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let entry = entry.clone();
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        let alg = if i % 2 == 0 { Alg::ES256 } else { Alg::RS256 };
                        barrier.wait();
                        (alg, entry.for_alg(alg).map(|key| key.thumbprint()))
                    })
                })
                .collect();
            let stored = |entry: &JwksKey| entry.slot(Alg::ES256).and_then(OnceLock::get).cloned();
            for handle in handles {
                match handle.join().unwrap() {
                    (Alg::ES256, result) => {
                        assert_eq!(result.unwrap(), stored(&entry).unwrap().thumbprint());
                    }
                    (_, result) => assert!(result.is_err()),
                }
            }
            assert!(entry.slot(Alg::RS256).unwrap().get().is_none());
        }
    }
}
