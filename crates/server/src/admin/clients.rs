//! `gatehouse clients create|update|list|show|delete`.

use std::sync::Arc;

use anyhow::bail;
use gatehouse_keys::{Alg, Clock, Kek, SecretHasher, SecretSealer};
use gatehouse_storage::{model::Client, Store};

use crate::{
    audit::{self, Event},
    cli::{ClientArgs, ClientsCmd, RequireAcr},
    clients::{build, revise, ClientSpec},
};

/// A list flag as given: `None` when absent; empty values dropped, so
/// `--scope ''` empties the list.
pub(super) fn list_flag(v: Option<Vec<String>>) -> Option<Vec<String>> {
    v.map(|v| v.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Lays the flags given over `spec`: each given flag replaces its field.
/// `--require-acr` is not part of a spec (registration has no such
/// setting): the caller sets it on the validated client.
fn apply(spec: &mut ClientSpec, a: ClientArgs) {
    let ClientArgs {
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
        require_pkce,
        legacy_assertion_audience,
        require_par,
        require_acr: _,
        dpop_bound,
    } = a;
    let set_list = |field: &mut Vec<String>, v: Option<Vec<String>>| {
        if let Some(v) = list_flag(v) {
            *field = v;
        }
    };
    set_list(&mut spec.redirect_uris, redirect_uris);
    set_list(
        &mut spec.post_logout_redirect_uris,
        post_logout_redirect_uris,
    );
    set_list(&mut spec.grant_types, grant_types);
    set_list(&mut spec.scopes, scopes);
    // An empty value clears an optional setting (e.g. --jwks '' to switch to --jwks-uri).
    let set = |field: &mut Option<String>, v: Option<String>| {
        if let Some(v) = v {
            *field = (!v.is_empty()).then_some(v);
        }
    };
    set(&mut spec.auth_method, auth_method);
    set(&mut spec.id_token_signing_alg, id_token_signing_alg);
    set(&mut spec.jwks, jwks);
    set(&mut spec.jwks_uri, jwks_uri);
    set(&mut spec.backchannel_logout_uri, backchannel_logout_uri);
    set(&mut spec.token_endpoint_auth_signing_alg, auth_signing_alg);
    if access_token_ttl.is_some() {
        spec.access_token_ttl = access_token_ttl;
    }
    if let Some(r) = require_pkce {
        spec.require_pkce = r;
    }
    if let Some(l) = legacy_assertion_audience {
        spec.legacy_assertion_audience = l;
    }
    if let Some(d) = dpop_bound {
        spec.dpop_bound_access_tokens = d;
    }
    if let Some(r) = require_par {
        spec.require_pushed_authorization_requests = r;
    }
}

/// The client as JSON, with its id (and a new secret, once).
fn print(client: &Client, secret: Option<String>) -> anyhow::Result<()> {
    let mut out = serde_json::to_value(client)?;
    if let (Some(s), Some(o)) = (secret, out.as_object_mut()) {
        o.insert("client_secret".into(), s.into());
    }
    if let Some(o) = out.as_object_mut() {
        o.insert("client_id".into(), client.id.as_str().into());
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub async fn run(
    cmd: ClientsCmd,
    store: Store,
    kek: Kek,
    outbound: &crate::outbound::OutboundPolicy,
    clock: Arc<dyn Clock>,
    signing_algs: &[Alg],
) -> anyhow::Result<()> {
    match cmd {
        ClientsCmd::Create { name, settings } => {
            let mut spec = ClientSpec {
                name,
                ..ClientSpec::default()
            };
            let require_acr = settings.require_acr;
            apply(&mut spec, settings);
            let (mut client, secret) = build(
                spec,
                &SecretHasher::new(&kek),
                &SecretSealer::new(&kek),
                clock.now(),
                outbound,
            )?;
            client.require_acr = require_acr.and_then(RequireAcr::level);
            crate::config::check_signing_alg(
                signing_algs,
                "--id-token-signing-alg",
                client.id_token_signed_response_alg,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            store.create_client(&client).await?;
            audit::emit(
                &Event::ClientRegistered {
                    client_id: &client.id,
                },
                clock.now(),
            );
            print(&client, secret)?;
        }
        ClientsCmd::Update { id, name, settings } => {
            let Some(old) = store.client(&id).await? else {
                bail!("no client with id {id:?}");
            };
            let mut spec = ClientSpec::of(&old);
            if let Some(n) = name {
                spec.name = n;
            }
            let scopes_given = settings.scopes.is_some();
            let grants_given = settings.grant_types.is_some();
            let require_acr = settings.require_acr;
            apply(&mut spec, settings);
            let mut client = revise(&old, spec, clock.now(), outbound)?;
            if let Some(r) = require_acr {
                client.require_acr = r.level();
            }
            // Where the operator set them, a registered client's grant
            // types and scopes become its ceiling: its later RFC 7592
            // updates can neither widen past them nor win back what the
            // operator took away.
            if client.dynamically_registered() && (scopes_given || grants_given) {
                let p = client
                    .registration_policy
                    .get_or_insert_with(Default::default);
                if grants_given {
                    p.grant_types.clone_from(&client.grant_types);
                }
                if scopes_given {
                    p.scopes.clone_from(&client.scopes);
                }
            }
            crate::config::check_signing_alg(
                signing_algs,
                "--id-token-signing-alg",
                client.id_token_signed_response_alg,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            store.update_client(&client).await?;
            audit::emit(
                &Event::ClientUpdated {
                    client_id: &client.id,
                },
                clock.now(),
            );
            print(&client, None)?;
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
        // Needs the whole state (token revocation): see admin::run.
        ClientsCmd::Delete { .. } => bail!("clients delete is handled by admin::run"),
    }
    Ok(())
}
