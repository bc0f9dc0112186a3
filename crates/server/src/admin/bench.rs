//! `gatehouse bench`: the JWT-versus-sessions question as numbers for this
//! machine and this database. Measures token sizes, issuance rates per
//! access-token format, and the cost of checking a token locally versus an
//! introspection round trip versus a session lookup. Creates throwaway
//! rows (a client, two resource servers, a session) and removes them.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use gatehouse_keys::{generate, Alg, Kek, OpenSealed, PrivateKey, SIGNING_ALGS};
use gatehouse_storage::model::{Client, ResourceServer, Session, User};
use serde_json::json;

use crate::{
    app,
    clients::{build, ClientSpec},
    config::Settings,
    oauth::{ScopeSet, TokenFormat},
    registry::Resource,
    secrets::random_token,
    state::AppState,
    tokens::{claims::AccessTokenClaims, new_jti, AccessClaimsInput, Audience, IdClaimsInput},
};

/// Runs `f` repeatedly for about `budget` (at least `min` times); returns per-second rate and mean µs.
async fn rate<F, Fut>(budget: Duration, min: u32, mut f: F) -> anyhow::Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let start = Instant::now();
    let mut n = 0u32;
    while n < min || start.elapsed() < budget {
        f().await?;
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((f64::from(n) / secs, secs * 1e6 / f64::from(n)))
}

/// Like [`rate`], timing only `run`: each round's input is made by
/// `prepare` first, off the clock (a client's DPoP proof).
async fn rate_of<T, P, F, Fut>(
    budget: Duration,
    min: u32,
    mut prepare: P,
    mut run: F,
) -> anyhow::Result<(f64, f64)>
where
    P: FnMut() -> anyhow::Result<T>,
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut timed = Duration::ZERO;
    let mut n = 0u32;
    while n < min || timed < budget {
        let input = prepare()?;
        let start = Instant::now();
        run(input).await?;
        timed += start.elapsed();
        n += 1;
    }
    let secs = timed.as_secs_f64();
    Ok((f64::from(n) / secs, secs * 1e6 / f64::from(n)))
}

fn e(err: crate::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}

/// Where a benchmark token is addressed.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Gatehouse's own userinfo endpoint (`dir`-encrypted JWE).
    Own,
    /// A resource server with an ECDH-ES+A256KW key (JWE).
    ResourceServer,
    /// A resource server taking opaque tokens (one database write each).
    Opaque,
}

/// Throwaway rows (a client, two resource servers) and what the token
/// builder needs to issue tokens for them: shared by `gatehouse bench` and
/// the criterion benchmarks of the token builder.
pub struct Fixture {
    state: AppState,
    client: Client,
    secret: String,
    jwe_rs: Arc<Resource>,
    opaque_rs: Arc<Resource>,
    rs_private: PrivateKey,
    user: User,
    scope: ScopeSet,
    /// The grant (refresh family) user tokens descend from, as in the code flow.
    family: String,
    /// The scope of client_credentials tokens: one short API scope.
    client_scope: ScopeSet,
    /// A client's DPoP key (ES256), to make proofs as a client would.
    dpop_key: PrivateKey,
}

impl Fixture {
    /// Creates the rows; [`Fixture::remove`] deletes them.
    pub async fn create(state: &AppState, kek: &Kek) -> anyhow::Result<Fixture> {
        let now = state.now();
        // Short, like a real deployment's key ids and audiences, so the
        // token sizes measured are the ones users will see.
        let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let rs_kid = format!("bench-{tag}");
        let rs_key = tokio::task::spawn_blocking({
            let (kek, kid) = (kek.clone(), rs_kid.clone());
            move || generate(Alg::EcdhEsA256kw, &kid, &kek)
        })
        .await??;
        let rs_private =
            PrivateKey::open(&rs_kid, Alg::EcdhEsA256kw, &rs_key.sealed_private_key, kek)?;
        let jwe_aud = format!("https://bench-{tag}.invalid/jwe");
        let opaque_aud = format!("https://bench-{tag}.invalid/opaque");
        for (aud, format) in [
            (&jwe_aud, TokenFormat::Jwe),
            (&opaque_aud, TokenFormat::Opaque),
        ] {
            state
                .store
                .create_resource(&ResourceServer {
                    audience: aud.clone(),
                    encryption_jwk: rs_key.public_jwk.clone(),
                    signing_alg: Alg::ES256,
                    token_format: format,
                    access_token_lifetime: None,
                    scopes: Vec::new(),
                    created_at: now,
                    clients: Vec::new(),
                    allow_exchange_from: Vec::new(),
                })
                .await?;
        }
        let (client, secret) = build(
            ClientSpec {
                name: format!("bench-{tag}"),
                grant_types: vec!["client_credentials".into()],
                ..ClientSpec::default()
            },
            &state.hasher,
            &state.sealer,
            now,
            &state.settings.outbound,
        )?;
        state.store.create_client(&client).await?;
        let resources = state.registry.resources().await?;
        let find = |aud: &str| {
            resources
                .get(aud)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("bench resource vanished"))
        };
        Ok(Fixture {
            jwe_rs: find(&jwe_aud)?,
            opaque_rs: find(&opaque_aud)?,
            state: state.clone(),
            client,
            secret: secret.unwrap_or_default(),
            rs_private,
            user: User {
                id: uuid::Uuid::new_v4().to_string().into(),
                username: "bench.user".into(),
                email: Some("bench.user@example.com".into()),
                email_verified: true,
                name: Some("Bench User".into()),
                password_hash: String::new(),
                disabled: false,
                created_at: now,
                updated_at: now,
                mfa_required: false,
            },
            scope: ScopeSet::parse("openid profile email").map_err(anyhow::Error::msg)?,
            family: uuid::Uuid::new_v4().to_string(),
            client_scope: ScopeSet::parse("read").map_err(anyhow::Error::msg)?,
            dpop_key: {
                let pair = gatehouse_keys::jose::generate_key_pair(Alg::ES256, "dpop")?;
                PrivateKey::from_pkcs8("dpop", Alg::ES256, pair.private_pkcs8())?
            },
        })
    }

    /// Deletes the rows.
    pub async fn remove(&self) {
        let s = &self.state.store;
        let _ = s.delete_client(&self.client.id).await;
        let _ = s.delete_resource(&self.jwe_rs.record.audience).await;
        let _ = s.delete_resource(&self.opaque_rs.record.audience).await;
    }

    /// Issues an access token through the token builder: for the user (as
    /// the code and refresh grants do: openid profile email, a grant,
    /// recording its status row) or for the client alone (as
    /// client_credentials does: one short scope, no grant, no write).
    pub async fn issue(&self, to: Target, for_user: bool) -> anyhow::Result<String> {
        self.issue_bound(to, for_user, None).await
    }

    /// A fresh DPoP proof of the fixture's client key for `method` at
    /// `path`, with `ath` when a token is given (what a client makes).
    pub fn proof(&self, method: &str, path: &str, token: Option<&str>) -> anyhow::Result<String> {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
        use sha2::{Digest, Sha256};
        let mut claims = json!({
            "jti": new_jti(),
            "htm": method,
            "htu": self.state.settings.endpoint(path),
            "iat": self.state.now(),
        });
        if let Some(t) = token {
            claims["ath"] = URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes())).into();
        }
        Ok(gatehouse_keys::jose::dpop::sign_proof(
            &self.dpop_key,
            &claims,
        )?)
    }

    /// As a token request with a DPoP proof: the proof checked (signature,
    /// claims, its jti recorded in the database), then a token bound to
    /// its key issued.
    pub async fn issue_with_proof(&self, to: Target, proof: &str) -> anyhow::Result<String> {
        let jkt = crate::dpop::check(
            &self.state,
            proof,
            crate::dpop::ProofRequest {
                method: "POST",
                path: "/token",
                access_token: None,
            },
        )
        .await
        .map_err(e)?;
        self.issue_bound(to, false, Some(&jkt)).await
    }

    /// As userinfo reads a bound token: the proof checked (with `ath`,
    /// its jti recorded), the token read back, the binding compared.
    pub async fn read_with_proof(&self, token: &str, proof: &str) -> anyhow::Result<()> {
        let jkt = crate::dpop::check(
            &self.state,
            proof,
            crate::dpop::ProofRequest {
                method: "GET",
                path: "/userinfo",
                access_token: Some(token),
            },
        )
        .await
        .map_err(e)?;
        let at = self
            .state
            .tokens
            .read_access_token(token)
            .await
            .map_err(e)?
            .ok_or_else(|| anyhow::anyhow!("the token did not read back"))?;
        anyhow::ensure!(
            at.claims.cnf.map(|c| c.jkt) == Some(jkt),
            "the token is not bound to the proof's key"
        );
        Ok(())
    }

    async fn issue_bound(
        &self,
        to: Target,
        for_user: bool,
        jkt: Option<&crate::oauth::Jkt>,
    ) -> anyhow::Result<String> {
        let audience = match to {
            Target::Own => Audience::Own,
            Target::ResourceServer => Audience::Resource(self.jwe_rs.clone()),
            Target::Opaque => Audience::Resource(self.opaque_rs.clone()),
        };
        let issued = self
            .state
            .tokens
            .issue_access_token(AccessClaimsInput {
                jkt,
                client: &self.client,
                user: for_user.then_some(&self.user),
                scope: if for_user {
                    &self.scope
                } else {
                    &self.client_scope
                },
                audience,
                auth_time: for_user.then(|| self.state.now()),
                acr: None,
                jti: new_jti(),
                family: for_user.then_some(self.family.as_str()),
                exchange: None,
            })
            .await
            .map_err(e)?;
        Ok(issued.token)
    }

    /// Reads an access token back as userinfo and introspection do.
    pub async fn read(&self, token: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.state
                .tokens
                .read_access_token(token)
                .await
                .map_err(e)?
                .is_some(),
            "the token did not read back"
        );
        Ok(())
    }

    /// The raw crypto of one resource-server token and nothing else: one
    /// ES256 signature and one ECDH-ES+A256KW/A256GCM encryption.
    pub fn raw_nested(&self, claims: &AccessTokenClaims) -> anyhow::Result<String> {
        let jws = self.state.keys.sign(Alg::ES256, "at+jwt", claims)?;
        Ok(gatehouse_keys::encrypt(
            &jws,
            &self.jwe_rs.encryption_key,
            Some("JWT"),
            None,
        )?)
    }

    /// Claims shaped like a client_credentials access token.
    pub fn sample_claims(&self) -> AccessTokenClaims {
        let now = self.state.now();
        AccessTokenClaims {
            iss: self.state.settings.issuer.clone(),
            sub: self.client.id.to_string(),
            aud: self.jwe_rs.record.audience.clone(),
            exp: now + 900,
            iat: now,
            jti: new_jti(),
            client_id: self.client.id.clone(),
            scope: String::new(),
            auth_time: None,
            acr: None,
            status: None,
            cnf: None,
            act: None,
        }
    }
}

pub async fn run(settings: Settings, seconds: u64, as_json: bool) -> anyhow::Result<()> {
    let kek = settings.load_kek()?;
    let state = app::build_from_settings(settings).await?;
    // Eleven measurements share the time.
    let budget = Duration::from_millis(seconds.max(1) * 1000 / 11);
    let fixture = Fixture::create(&state, &kek).await?;
    let outcome = measure(&fixture, budget).await;
    // Clean up whatever happened.
    fixture.remove().await;
    let report = outcome?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

async fn measure(f: &Fixture, budget: Duration) -> anyhow::Result<serde_json::Value> {
    let state = &f.state;
    let (client, user, scope) = (&f.client, &f.user, &f.scope);
    let (secret, rs_private) = (f.secret.as_str(), &f.rs_private);

    // Sizes (user tokens, as the code flow issues them).
    let own = f.issue(Target::Own, true).await?;
    let to_rs = f.issue(Target::ResourceServer, true).await?;
    let to_rs_client = f.issue(Target::ResourceServer, false).await?;
    let opaque = f.issue(Target::Opaque, true).await?;
    let id_token = state
        .tokens
        .issue_id_token(IdClaimsInput {
            client,
            user,
            scope,
            nonce: Some("n-0S6_WzA2Mj"),
            auth_time: state.now(),
            acr: None,
            amr: &["pwd".to_owned()],
            sid: Some("0d3c6a9e-6f32-4c1e-9d0c-1f2a3b4c5d6e"),
            access_token: Some(&own),
        })
        .map_err(e)?;
    let refresh = random_token();
    let cookie = format!("__Host-gatehouse_session={}", random_token());

    // Issuance rates (one core, sequential), as client_credentials issues:
    // no write per token except for opaque tokens.
    let (raw_rate, raw_us) = {
        let claims = f.sample_claims();
        rate(budget, 50, || async { f.raw_nested(&claims).map(|_| ()) }).await?
    };
    let (jwe_rate, jwe_us) = rate(budget, 50, || async {
        f.issue(Target::ResourceServer, false).await.map(|_| ())
    })
    .await?;
    let (own_rate, own_us) = rate(budget, 50, || async {
        f.issue(Target::Own, false).await.map(|_| ())
    })
    .await?;
    let (opaque_rate, opaque_us) = rate(budget, 50, || async {
        f.issue(Target::Opaque, false).await.map(|_| ())
    })
    .await?;

    // A DPoP-bound token for a proof (the proof made off the clock, as the
    // client makes it): the proof's signature and claims checked, its jti
    // recorded in the database, the token issued with `cnf.jkt`.
    let (dpop_rate, dpop_us) = rate_of(
        budget,
        50,
        || f.proof("POST", "/token", None),
        |proof| async move {
            f.issue_with_proof(Target::ResourceServer, &proof)
                .await
                .map(|_| ())
        },
    )
    .await?;

    // The proof's check alone, without the replay write: signature (ES256),
    // claims, thumbprint.
    let (proof_rate, proof_us) = rate_of(
        budget,
        50,
        || f.proof("POST", "/token", None),
        |proof| async move {
            crate::dpop::verify(
                &f.state,
                &proof,
                crate::dpop::ProofRequest {
                    method: "POST",
                    path: "/token",
                    access_token: None,
                },
            )
            .map(|_| ())
            .map_err(e)
        },
    )
    .await?;

    // Gatehouse reading its own access token back (userinfo, introspection):
    // decrypt, claims, one revocation read.
    let (own_read_rate, own_read_us) = rate(budget, 50, || f.read(&own)).await?;
    // The same for a bound token with its proof, as userinfo does.
    let own_bound = {
        let proof = f.proof("POST", "/token", None)?;
        f.issue_with_proof(Target::Own, &proof).await?
    };
    let (bound_read_rate, bound_read_us) = rate_of(
        budget,
        50,
        || f.proof("GET", "/userinfo", Some(&own_bound)),
        |proof| {
            let own_bound = own_bound.clone();
            async move { f.read_with_proof(&own_bound, &proof).await }
        },
    )
    .await?;

    // Checking a JWE access token locally, as a resource server does.
    let (local_rate, local_us) = rate(budget, 50, || async {
        let (_, payload) = gatehouse_keys::decrypt(&to_rs, |_| Some(rs_private))?;
        state
            .keys
            .verify(std::str::from_utf8(&payload)?, &SIGNING_ALGS)?;
        Ok(())
    })
    .await?;

    // An introspection round trip over loopback HTTP to this Gatehouse.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = app::Server::start_on(state.clone(), listener).await?;
    let url = format!("http://{}/introspect", server.addr);
    let http = reqwest::Client::new();
    let (introspect_rate, introspect_us) = rate(budget, 20, || async {
        let r = http
            .post(&url)
            .basic_auth(&client.id, Some(secret))
            .form(&[("token", to_rs.as_str())])
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "introspection answered {}",
            r.status()
        );
        Ok(())
    })
    .await?;
    server.stop().await?;

    // A session lookup in the configured database.
    let sid_secret = random_token();
    let session = Session {
        id_hash: state.hasher.hash(&sid_secret),
        sid: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        auth_time: state.now(),
        amr: vec!["pwd".into()],
        acr: None,
        created_at: state.now(),
        last_seen_at: state.now(),
        expires_at: state.now() + 600,
        ip: None,
        user_agent: None,
    };
    state.store.create_session(&session).await?;
    let lookup = rate(budget, 50, || async {
        let h = state.hasher.hash(&sid_secret);
        state.store.live_session(&h, state.now(), 3600).await?;
        Ok(())
    })
    .await;
    let _ = state.store.delete_session(&session.id_hash).await;
    let (session_rate, session_us) = lookup?;

    let backend = format!("{:?}", state.store.backend()).to_lowercase();
    Ok(json!({
        "database": backend,
        "sizes_bytes": {
            "id_token": id_token.len(),
            "access_token_jwe_own": own.len(),
            "access_token_jwe_resource_server": to_rs.len(),
            "of_which_protected_header_with_gh_ref": to_rs.split('.').next().map(str::len).unwrap_or(0),
            "access_token_jwe_resource_server_client_credentials": to_rs_client.len(),
            "access_token_opaque": opaque.len(),
            "refresh_token": refresh.len(),
            "session_cookie": cookie.len(),
        },
        "issuance_per_second": {
            "raw_crypto_es256_sign_ecdh_es_encrypt": { "rate": raw_rate, "mean_us": raw_us },
            "jwe_resource_server_es256_ecdh_es": { "rate": jwe_rate, "mean_us": jwe_us },
            "jwe_own_key": { "rate": own_rate, "mean_us": own_us },
            "opaque_with_database_write": { "rate": opaque_rate, "mean_us": opaque_us },
            "jwe_resource_server_dpop_bound_with_proof_check": { "rate": dpop_rate, "mean_us": dpop_us },
        },
        "check_per_second": {
            "jwe_local_decrypt_and_verify": { "rate": local_rate, "mean_us": local_us },
            "own_token_read_with_revocation_check": { "rate": own_read_rate, "mean_us": own_read_us },
            "own_dpop_bound_token_read_with_proof_check": { "rate": bound_read_rate, "mean_us": bound_read_us },
            "dpop_proof_check_without_replay_write": { "rate": proof_rate, "mean_us": proof_us },
            "introspection_round_trip": { "rate": introspect_rate, "mean_us": introspect_us },
            "session_lookup": { "rate": session_rate, "mean_us": session_us },
        }
    }))
}

fn print_table(r: &serde_json::Value) {
    println!(
        "Gatehouse bench (database: {})",
        r["database"].as_str().unwrap_or("?")
    );
    println!();
    println!("{:<52} {:>10}", "size", "bytes");
    if let Some(m) = r["sizes_bytes"].as_object() {
        for (k, v) in m {
            println!("{:<52} {:>10}", k, v);
        }
    }
    for section in ["issuance_per_second", "check_per_second"] {
        println!();
        println!("{:<52} {:>10} {:>12}", section, "per second", "mean µs");
        if let Some(m) = r[section].as_object() {
            for (k, v) in m {
                println!(
                    "{:<52} {:>10.0} {:>12.1}",
                    k,
                    v["rate"].as_f64().unwrap_or(0.0),
                    v["mean_us"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
}
