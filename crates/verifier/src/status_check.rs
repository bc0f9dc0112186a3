//! The optional status-list check of a verified token: fetching, verifying
//! and caching the lists the tokens name.

use super::*;

impl Verifier {
    /// The status list check for a verified token (see the crate docs).
    pub(crate) async fn check_status(
        &self,
        claims: &Map<String, Value>,
    ) -> Result<(), VerifierError> {
        let Some(status) = claims.get("status") else {
            return if self.require_status {
                Err(VerifierError::StatusList("token has no status claim"))
            } else {
                Ok(())
            };
        };
        const BAD: VerifierError = VerifierError::StatusList("malformed status claim");
        let reference = status
            .get("status_list")
            .and_then(Value::as_object)
            .ok_or(BAD)?;
        let idx = reference.get("idx").and_then(Value::as_u64).ok_or(BAD)?;
        let uri = reference.get("uri").and_then(Value::as_str).ok_or(BAD)?;
        let prefix = format!("{}/", self.issuer.trim_end_matches('/'));
        if !uri.starts_with(&prefix)
            || uri.len() > 2048
            || uri.chars().any(|c| c.is_whitespace() || c.is_control())
            || uri.contains('#')
        {
            return Err(VerifierError::StatusList(
                "status list is not at the issuer",
            ));
        }
        let list = self.status_list(uri).await?;
        match list.get(idx) {
            Some(STATUS_VALID) => Ok(()),
            Some(STATUS_INVALID) => Err(VerifierError::Revoked),
            Some(other) => Err(VerifierError::StatusNotValid(other)),
            None => Err(VerifierError::StatusList("status index is beyond the list")),
        }
    }

    /// The status list at `uri`, from the cache or fetched.
    pub(crate) async fn status_list(&self, uri: &str) -> Result<Arc<StatusList>, VerifierError> {
        let now = self.now();
        let usable = |c: &status::CachedList| c.exp.is_none_or(|exp| now < exp);
        {
            let cache = self.status_cache.read().await;
            if let Some(c) = cache.lists.get(uri) {
                if Instant::now() < c.refresh_at && usable(c) {
                    return Ok(c.list.clone());
                }
            }
        }
        let _guard = self.status_fetch_lock.lock().await;
        let cached = {
            let cache = self.status_cache.read().await;
            let (min, _) = self.status_cache_bounds;
            match cache.lists.get(uri) {
                Some(c) if Instant::now() < c.refresh_at && usable(c) => {
                    return Ok(c.list.clone());
                }
                Some(c) => {
                    let stale = usable(c).then(|| c.list.clone());
                    if c.last_failure.is_some_and(|t| t.elapsed() < min) {
                        // A refresh just failed: the cached list while it lasts.
                        return stale.ok_or(VerifierError::StatusList("status list unavailable"));
                    }
                    stale
                }
                None => {
                    if cache
                        .failures
                        .get(uri)
                        .is_some_and(|t| t.elapsed() < FAILED_LOAD_RETRY)
                    {
                        return Err(VerifierError::StatusList("status list unavailable"));
                    }
                    None
                }
            }
        };
        let fetched = self.fetch_status_list(uri).await;
        let mut cache = self.status_cache.write().await;
        match fetched {
            Ok((list, lifetime, exp)) => {
                let list = Arc::new(list);
                cache.failures.remove(uri);
                if !cache.lists.contains_key(uri) {
                    cache.make_room();
                }
                cache.lists.insert(
                    uri.to_owned(),
                    status::CachedList {
                        list: list.clone(),
                        refresh_at: Instant::now() + lifetime,
                        exp,
                        last_failure: None,
                    },
                );
                Ok(list)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch a token status list");
                match cache.lists.get_mut(uri) {
                    Some(c) => c.last_failure = Some(Instant::now()),
                    None => {
                        cache.make_room();
                        cache.failures.insert(uri.to_owned(), Instant::now());
                    }
                }
                cached.ok_or(VerifierError::StatusList("status list unavailable"))
            }
        }
    }

    /// Fetches and checks one status list token: its cache lifetime and
    /// `exp` come with it. Errors are logged by the caller, never shown.
    pub(crate) async fn fetch_status_list(
        &self,
        uri: &str,
    ) -> Result<(StatusList, Duration, Option<i64>), VerifierError> {
        let bad = |why: &str| VerifierError::Jwks(format!("status list {uri}: {why}"));
        let (body, headers) = self
            .fetch(uri, "application/statuslist+jwt", MAX_STATUS_LIST_JWT_LEN)
            .await?;
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if content_type.as_deref() != Some("application/statuslist+jwt") {
            return Err(bad("Content-Type is not application/statuslist+jwt"));
        }
        let jwt = std::str::from_utf8(&body)
            .map_err(|_| bad("not text"))?
            .trim();
        let (header, claims) = self
            .verify_signature(jwt, &STATUS_LIST_ALGS, MAX_STATUS_LIST_JWT_LEN)
            .await
            .map_err(|e| bad(&e.to_string()))?;
        let typ = str_member(&header, "typ").map(str::to_ascii_lowercase);
        if !matches!(
            typ.as_deref(),
            Some("statuslist+jwt" | "application/statuslist+jwt")
        ) {
            return Err(bad("typ is not statuslist+jwt"));
        }
        if str_member(&claims, "sub") != Some(uri) {
            return Err(bad("sub is not the list's URI"));
        }
        let now = self.now();
        let exp = match claims.get("exp") {
            None => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| bad("malformed exp"))?),
        };
        if exp.is_some_and(|exp| now >= exp) {
            return Err(bad("expired"));
        }
        let list = claims
            .get("status_list")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no status_list"))?;
        let bits = list
            .get("bits")
            .and_then(Value::as_u64)
            .and_then(|b| u8::try_from(b).ok())
            .ok_or_else(|| bad("malformed bits"))?;
        let lst = str_member(list, "lst").ok_or_else(|| bad("no lst"))?;
        let decoded = StatusList::decode(lst, bits).ok_or_else(|| bad("malformed lst"))?;
        // The shorter of the list's ttl and the response's max-age, within
        // the bounds, and never past exp.
        let ttl = claims.get("ttl").and_then(Value::as_u64);
        let hint = match (ttl, status::max_age(&headers)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (min, max) = self.status_cache_bounds;
        let mut lifetime = status::clamp(hint, STATUS_LIST_CACHE_DEFAULT, min, max);
        if let Some(exp) = exp {
            let left = Duration::from_secs(u64::try_from(exp - now).unwrap_or(0));
            lifetime = lifetime.min(left);
        }
        tracing::debug!(
            uri,
            ?lifetime,
            statuses = decoded.len(),
            "fetched a token status list"
        );
        Ok((decoded, lifetime, exp))
    }
}
