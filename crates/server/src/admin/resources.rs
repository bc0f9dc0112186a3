//! `gatehouse resources create|list|delete`.

use std::sync::Arc;

use anyhow::{bail, Context};
use gatehouse_keys::{Alg, Clock, KeyUse, PublicKey};
use gatehouse_storage::{model::ResourceServer, Store};
use serde_json::json;

use crate::cli::ResourcesCmd;

pub async fn run(
    cmd: ResourcesCmd,
    store: Store,
    clock: Arc<dyn Clock>,
    signing_algs: &[Alg],
) -> anyhow::Result<()> {
    match cmd {
        ResourcesCmd::Create {
            audience,
            jwk_file,
            signing_alg,
            format,
            scopes,
            access_token_ttl,
        } => {
            let aud = url::Url::parse(&audience).with_context(|| {
                format!("audience {audience:?} must be an absolute URI (RFC 8707)")
            })?;
            if aud.fragment().is_some() {
                bail!("audience {audience:?} must not contain a fragment (RFC 8707 2)");
            }
            let text = std::fs::read_to_string(&jwk_file)
                .with_context(|| format!("cannot read JWK file {}", jwk_file.display()))?;
            let key = PublicKey::from_jwk_json(&text).with_context(|| {
                format!(
                    "JWK file {} is not a usable public encryption key",
                    jwk_file.display()
                )
            })?;
            if key.key_use() != KeyUse::Enc {
                bail!("the JWK must be an encryption key (alg RSA-OAEP-256 or ECDH-ES+A256KW)");
            }
            let alg: Alg = signing_alg.as_deref().unwrap_or("ES256").parse()?;
            if alg.key_use() != KeyUse::Sig {
                bail!("--signing-alg must be RS256, ES256, PS256 or EdDSA");
            }
            crate::config::check_signing_alg(signing_algs, "--signing-alg", alg.as_str())
                .map_err(|e| anyhow::anyhow!(e))?;
            let format = format.unwrap_or_else(|| "jwe".to_owned());
            if format != "jwe" && format != "opaque" {
                bail!("--format must be jwe or opaque");
            }
            if let Some(t) = access_token_ttl {
                if !(30..=86_400).contains(&t) {
                    bail!("--access-token-ttl must be 30 to 86400 seconds");
                }
            }
            let r = ResourceServer {
                audience: audience.clone(),
                encryption_jwk: key.jwk_json().to_string(),
                signing_alg: alg.as_str().to_owned(),
                token_format: format,
                access_token_lifetime: access_token_ttl,
                scopes,
                created_at: clock.now(),
            };
            store.create_resource(&r).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ResourcesCmd::List { json: as_json } => {
            let all = store.list_resources().await?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!("{:<40}  {:<7}  {:<6}  SCOPES", "AUDIENCE", "FORMAT", "ALG");
                for r in all {
                    println!(
                        "{:<40}  {:<7}  {:<6}  {}",
                        r.audience,
                        r.token_format,
                        r.signing_alg,
                        r.scopes.join(" ")
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
