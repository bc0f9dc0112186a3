//! `gatehouse clients create|list|show|delete`.

use std::sync::Arc;

use anyhow::bail;
use gatehouse_keys::{Alg, Clock, Kek, SecretHasher, SecretSealer};
use gatehouse_storage::Store;
use serde_json::json;

use crate::{
    cli::ClientsCmd,
    clients::{build, ClientSpec},
};

pub async fn run(
    cmd: ClientsCmd,
    store: Store,
    kek: Kek,
    clock: Arc<dyn Clock>,
    signing_algs: &[Alg],
) -> anyhow::Result<()> {
    match cmd {
        ClientsCmd::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            auth_method,
            scopes,
            id_token_signing_alg,
            jwks,
            jwks_uri,
            backchannel_logout_uri,
            access_token_ttl,
            auth_signing_alg,
            legacy_assertion_audience,
        } => {
            let spec = ClientSpec {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                grant_types,
                auth_method,
                scopes,
                id_token_signing_alg,
                jwks,
                jwks_uri,
                backchannel_logout_uri,
                access_token_ttl,
                token_endpoint_auth_signing_alg: auth_signing_alg,
                legacy_assertion_audience,
            };
            let (client, secret) = build(
                spec,
                &SecretHasher::new(&kek),
                &SecretSealer::new(&kek),
                clock.now(),
            )?;
            crate::config::check_signing_alg(
                signing_algs,
                "--id-token-signing-alg",
                &client.id_token_signed_response_alg,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            store.create_client(&client).await?;
            let mut out = serde_json::to_value(&client)?;
            if let (Some(s), Some(o)) = (secret, out.as_object_mut()) {
                o.insert("client_secret".into(), s.into());
            }
            if let Some(o) = out.as_object_mut() {
                o.insert("client_id".into(), client.id.clone().into());
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        ClientsCmd::List { json: as_json } => {
            let clients = store.list_clients().await?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&clients)?);
            } else {
                println!(
                    "{:<32}  {:<20}  {:<20}  REDIRECT URIS",
                    "CLIENT ID", "NAME", "AUTH METHOD"
                );
                for c in clients {
                    println!(
                        "{:<32}  {:<20}  {:<20}  {}",
                        c.id,
                        c.name,
                        c.token_endpoint_auth_method,
                        c.redirect_uris.join(" ")
                    );
                }
            }
        }
        ClientsCmd::Show { id } => match store.client(&id).await? {
            Some(c) => println!("{}", serde_json::to_string_pretty(&c)?),
            None => bail!("no client with id {id:?}"),
        },
        ClientsCmd::Delete { id } => {
            if !store.delete_client(&id).await? {
                bail!("no client with id {id:?}");
            }
            println!("{}", json!({ "deleted": id }));
        }
    }
    Ok(())
}
