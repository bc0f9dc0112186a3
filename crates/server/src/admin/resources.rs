//! `gatehouse resources create|update|list|delete`.

use std::{path::Path, sync::Arc};

use anyhow::{bail, Context};
use gatehouse_keys::{Alg, Clock, KeyUse, PublicKey};
use gatehouse_storage::{model::ResourceServer, Store};
use serde_json::json;

use super::clients::list_flag;
use crate::{
    cli::{ResourceArgs, ResourcesCmd},
    oauth::{ClientId, ScopeSet, TokenFormat, STANDARD_SCOPES},
};

/// The public encryption key in a JWK file, as JWK JSON text.
fn encryption_jwk(file: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read JWK file {}", file.display()))?;
    let key = PublicKey::from_jwk_json(&text).with_context(|| {
        format!(
            "JWK file {} is not a usable public encryption key",
            file.display()
        )
    })?;
    if key.key_use() != KeyUse::Enc {
        bail!("the JWK must be an encryption key (alg RSA-OAEP-256 or ECDH-ES+A256KW)");
    }
    Ok(key.jwk_json().to_string())
}

/// Lays the flags given over `r` and checks the result.
async fn apply(r: &mut ResourceServer, a: ResourceArgs, store: &Store) -> anyhow::Result<()> {
    let ResourceArgs {
        jwk_file,
        signing_alg,
        format,
        scopes,
        access_token_ttl,
        clients,
        allow_exchange_from,
    } = a;
    if let Some(f) = jwk_file {
        r.encryption_jwk = encryption_jwk(&f)?;
    }
    if let Some(a) = signing_alg {
        let alg: Alg = a.parse()?;
        if alg.key_use() != KeyUse::Sig {
            bail!("--signing-alg must be RS256, ES256, PS256 or EdDSA");
        }
        r.signing_alg = alg;
    }
    if let Some(f) = format {
        r.token_format = f
            .parse()
            .map_err(|_| anyhow::anyhow!("--format must be jwe or opaque"))?;
    }
    if let Some(scopes) = list_flag(scopes) {
        for s in &scopes {
            if ScopeSet::parse(s).map_or(true, |p| p.to_vec() != [s.clone()]) {
                bail!("--scope {s:?} is not a single scope token (RFC 6749 3.3)");
            }
            if STANDARD_SCOPES.contains(&s.as_str()) {
                bail!("--scope {s:?} is an OpenID Connect scope, not an API scope");
            }
        }
        r.scopes = scopes;
    }
    if let Some(t) = access_token_ttl {
        if !(30..=86_400).contains(&t) {
            bail!("--access-token-ttl must be 30 to 86400 seconds");
        }
        r.access_token_lifetime = Some(t);
    }
    if let Some(clients) = list_flag(clients) {
        r.clients = known_clients(clients, "--client", store).await?;
    }
    if let Some(clients) = list_flag(allow_exchange_from) {
        r.allow_exchange_from = known_clients(clients, "--allow-exchange-from", store).await?;
    }
    Ok(())
}

/// The ids given to a list flag, each a registered client.
async fn known_clients(
    ids: Vec<String>,
    flag: &str,
    store: &Store,
) -> anyhow::Result<Vec<ClientId>> {
    for c in &ids {
        if store.client(c).await?.is_none() {
            bail!("{flag} {c:?}: no client with that id");
        }
    }
    Ok(ids.into_iter().map(ClientId::from).collect())
}

pub async fn run(
    cmd: ResourcesCmd,
    store: Store,
    clock: Arc<dyn Clock>,
    signing_algs: &[Alg],
) -> anyhow::Result<()> {
    match cmd {
        ResourcesCmd::Create { audience, settings } => {
            let aud = url::Url::parse(&audience).with_context(|| {
                format!("audience {audience:?} must be an absolute URI (RFC 8707)")
            })?;
            if aud.fragment().is_some() {
                bail!("audience {audience:?} must not contain a fragment (RFC 8707 2)");
            }
            let Some(jwk_file) = settings.jwk_file.as_deref() else {
                bail!("--jwk-file is required: the API's public encryption key");
            };
            let mut r = ResourceServer {
                audience: audience.clone(),
                encryption_jwk: encryption_jwk(jwk_file)?,
                signing_alg: Alg::ES256,
                token_format: TokenFormat::Jwe,
                access_token_lifetime: None,
                scopes: Vec::new(),
                created_at: clock.now(),
                clients: Vec::new(),
                allow_exchange_from: Vec::new(),
            };
            apply(&mut r, settings, &store).await?;
            crate::config::check_signing_alg(signing_algs, "--signing-alg", r.signing_alg)
                .map_err(|e| anyhow::anyhow!(e))?;
            store.create_resource(&r).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ResourcesCmd::Update { audience, settings } => {
            let Some(mut r) = store.resource(&audience).await? else {
                bail!("no resource server with audience {audience:?}");
            };
            apply(&mut r, settings, &store).await?;
            crate::config::check_signing_alg(signing_algs, "--signing-alg", r.signing_alg)
                .map_err(|e| anyhow::anyhow!(e))?;
            store.update_resource(&r).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ResourcesCmd::List { json: as_json } => {
            let all = store.list_resources().await?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<40}  {:<7}  {:<6}  {:<30}  CLIENTS",
                    "AUDIENCE", "FORMAT", "ALG", "SCOPES"
                );
                for r in all {
                    println!(
                        "{:<40}  {:<7}  {:<6}  {:<30}  {}",
                        r.audience,
                        r.token_format,
                        r.signing_alg,
                        r.scopes.join(" "),
                        r.clients
                            .iter()
                            .map(ClientId::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                }
            }
        }
        ResourcesCmd::Delete { audience } => {
            if !store.delete_resource(&audience).await? {
                bail!("no resource server with audience {audience:?}");
            }
            println!("{}", json!({ "deleted": audience }));
        }
    }
    Ok(())
}
