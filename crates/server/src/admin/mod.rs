//! The admin commands behind `gatehouse users|clients|resources|keys`.
//! They use the same configuration as `serve`, talk to the same database,
//! and work while servers run: servers pick changes up within seconds.
//! Output meant for scripts is JSON on stdout; errors go to stderr.

pub mod bench;
mod clients;
mod keys;
mod resources;
mod sessions;
mod users;

use std::sync::Arc;

use anyhow::{bail, Context};
use gatehouse_keys::{Clock, Kek, SystemClock};
use gatehouse_storage::{model::RegistrationPolicy, Store};

use crate::{
    app,
    cli::{Cli, ClientsCmd, Command},
    config::{RawConfig, Settings},
    oauth::{GrantType, ScopeSet},
};

/// Resolves the settings from flags, environment and the config file.
pub fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let (listen, wait, metrics_listen, branding) = match &cli.command {
        Command::Serve {
            listen,
            wait_for_database,
            metrics_listen,
            branding,
        } => (
            listen.clone(),
            *wait_for_database,
            metrics_listen.clone(),
            Some(branding.clone()),
        ),
        _ => (None, None, None, None),
    };
    let mut flags = cli.global.raw(listen, wait);
    flags.metrics_listen = metrics_listen;
    if let Some(b) = &branding {
        flags.templates_dir = b.templates_dir.clone();
        flags.assets_dir = b.assets_dir.clone();
    }
    // A secret: from the environment or the file, never a flag (visible in `ps`).
    flags.metrics_token = std::env::var("GATEHOUSE_METRICS_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    flags.status_index_reserve_max = crate::config::env_i64("GATEHOUSE_STATUS_INDEX_RESERVE_MAX")?;
    flags.outage_staleness_secs = crate::config::env_i64("GATEHOUSE_OUTAGE_STALENESS_SECS")?;
    flags.password_min_length = crate::config::env_i64("GATEHOUSE_PASSWORD_MIN_LENGTH")?;
    flags.dpop_nonce = crate::config::env_bool("GATEHOUSE_DPOP_NONCE")?;
    flags.dpop_proof_max_age = crate::config::env_i64("GATEHOUSE_DPOP_PROOF_MAX_AGE")?;
    flags.require_pushed_authorization_requests =
        crate::config::env_bool("GATEHOUSE_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS")?;
    let file = match &cli.global.config {
        Some(p) => RawConfig::from_file(p)?,
        None => RawConfig::default(),
    };
    let kek_env = std::env::var("GATEHOUSE_KEY_ENCRYPTION_KEY").ok();
    let mut settings = Settings::resolve(flags.over(file), kek_env)?;
    if branding.is_none() {
        // Only `serve` renders pages: an admin command never reads the
        // templates, so a broken one in the shared config file cannot
        // stand in the way of, say, `clients delete` during an incident.
        settings.templates_dir = None;
        settings.assets_dir = None;
    }
    Ok(settings)
}

async fn open_store(s: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect_with(&s.database_url, s.store_options()).await?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

/// Refuses a key-encryption key that cannot open the keys already in the
/// store: client secrets hashed under it would never match at the server.
async fn check_kek(store: &Store, kek: &Kek) -> anyhow::Result<()> {
    if let Some(k) = store.list_keys().await?.first() {
        if kek.open(&k.kid, &k.sealed_private_key).is_err() {
            bail!(
                "the key-encryption key does not open this database's keys (they were sealed with \
                 another one); check GATEHOUSE_KEY_ENCRYPTION_KEY or --key-encryption-key-file"
            );
        }
    }
    Ok(())
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let s = settings(&cli)?;
    match cli.command {
        Command::Serve { .. } => serve(s).await,
        Command::Migrate => {
            let store = Store::connect_with(&s.database_url, s.store_options()).await?;
            let pending = store.pending_migrations().await?;
            store.migrate().await?;
            println!("{}", serde_json::json!({ "applied": pending }));
            Ok(())
        }
        Command::Users(c) => users::run(c, s).await,
        Command::Sessions(c) => sessions::run(c, s).await,
        Command::RegistrationToken(crate::cli::RegistrationTokenCmd::Create {
            expires_in,
            uses,
            scopes,
            grant_types,
        }) => {
            if expires_in.is_some_and(|e| e <= 0) || uses.is_some_and(|u| u <= 0) {
                anyhow::bail!("--expires-in and --uses must be positive");
            }
            let policy = registration_policy(scopes, grant_types)?;
            let kek = s.load_kek()?;
            let store = open_store(&s).await?;
            let token = crate::secrets::random_token();
            let now = SystemClock.now();
            store
                .create_registration_token_with_policy(
                    &gatehouse_keys::SecretHasher::new(&kek).hash(&token),
                    expires_in.map(|e| now + e),
                    uses,
                    Some(&policy),
                    now,
                )
                .await?;
            println!("{token}");
            Ok(())
        }
        Command::Bench { seconds, json } => bench::run(s, seconds, json).await,
        Command::Clients(ClientsCmd::Delete { id }) => {
            // As RFC 7592 2.3 asks of a deletion: its tokens are revoked
            // first (refresh, opaque, the `cid:` list entry, status bits).
            let state = app::build_from_settings(s).await?;
            // A row this release cannot read (settings a newer release
            // wrote) can still be deleted: that is the way out of it.
            match state.store.client(&id).await {
                Ok(Some(_)) => {}
                Ok(None) => bail!("no client with id {id:?}"),
                Err(gatehouse_storage::StoreError::Corrupt(e)) => {
                    tracing::warn!(client_id = %id, error = %e, "deleting a client this release cannot read");
                }
                Err(e) => return Err(e.into()),
            }
            state
                .tokens
                .revoke_client_tokens(&id)
                .await
                .map_err(|e| anyhow::anyhow!("revoking the client's tokens failed: {e}"))?;
            state.store.delete_client(&id).await?;
            crate::audit::emit(
                &crate::audit::Event::ClientDeleted { client_id: &id },
                state.now(),
            );
            println!("{}", serde_json::json!({ "deleted": id }));
            Ok(())
        }
        Command::Clients(c) => {
            let kek = s.load_kek()?;
            let store = open_store(&s).await?;
            if matches!(c, ClientsCmd::Create { .. }) {
                check_kek(&store, &kek).await?;
            }
            clients::run(
                c,
                store,
                kek,
                &s.outbound,
                clock(),
                &s.rotation.signing_algs,
            )
            .await
        }
        Command::Resources(c) => {
            let store = open_store(&s).await?;
            resources::run(c, store, clock(), &s.rotation.signing_algs).await
        }
        Command::Keys(c) => {
            let kek = s.load_kek()?;
            let store = open_store(&s).await?;
            keys::run(c, store, kek, s.rotation.clone(), clock()).await
        }
    }
}

/// The policy `registration-token create` stores: grant types checked,
/// API scopes checked as scope tokens; defaults as in
/// [`RegistrationPolicy::default`].
fn registration_policy(
    scopes: Vec<String>,
    grant_types: Vec<String>,
) -> anyhow::Result<RegistrationPolicy> {
    let mut policy = RegistrationPolicy {
        scopes: Vec::new(),
        ..RegistrationPolicy::default()
    };
    if !grant_types.is_empty() {
        let mut parsed = Vec::new();
        for g in &grant_types {
            let g: GrantType = g.parse()?;
            if g == GrantType::DeviceCode {
                bail!(
                    "--grant-type {g}: the device grant is only for clients an administrator registers (`clients create`)"
                );
            }
            if !parsed.contains(&g) {
                parsed.push(g);
            }
        }
        policy.grant_types = parsed;
    }
    for sc in scopes {
        if ScopeSet::parse(&sc).map_or(true, |p| p.to_vec() != [sc.clone()]) {
            bail!("--scope {sc:?} is not a single scope token (RFC 6749 3.3)");
        }
        if !policy.scopes.contains(&sc) {
            policy.scopes.push(sc);
        }
    }
    Ok(policy)
}

/// `serve`. By default it connects, migrates and opens the keys first and
/// binds after, so a listening instance is a working one (and an
/// unreachable database is the one-line error at once). With
/// `--wait-for-database` it binds first, so that while the database is
/// being reached `/healthz` answers and `/readyz` says 503, then puts the
/// application behind the same listener; a signal during the wait ends it
/// cleanly.
async fn serve(s: Settings) -> anyhow::Result<()> {
    let issuer = s.issuer.clone();
    let wait = s.wait_for_database;
    let server = if wait.is_zero() {
        let listen = s.listen;
        let state = app::build_from_settings(s).await?;
        app::Server::start(state, listen).await?
    } else {
        let listening = app::Listening::bind(s.listen).await?;
        tracing::info!(addr = %listening.addr, wait_s = wait.as_secs(), "listening; connecting to the database");
        let built = tokio::select! {
            built = app::build_from_settings(s) => built,
            () = shutdown_signal() => {
                tracing::info!("stopped before the database was reached");
                listening.stop().await;
                return Ok(());
            }
        };
        match built {
            Ok(state) => listening.ready(state).await?,
            Err(e) => {
                listening.stop().await;
                return Err(e);
            }
        }
    };
    tracing::info!(addr = %server.addr, %issuer, "gatehouse is serving");
    shutdown_signal().await;
    tracing::info!("shutting down: readiness fails now; finishing in-flight requests");
    let store = server.state.store.clone();
    server.drain(std::time::Duration::from_secs(2)).await?;
    store.close().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
