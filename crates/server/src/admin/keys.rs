//! `gatehouse keys list|rotate|revoke|generate`.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use gatehouse_keys::{
    Alg, Clock, Kek, KeyRing, KeyUse, RotationPolicy, OWN_ENCRYPTION_ALG, SIGNING_ALGS,
};
use gatehouse_storage::{model::KeyState, Store};
use serde_json::json;

use crate::{
    audit::{self, Event},
    cli::KeysCmd,
};

/// An algorithm Gatehouse keeps its own keys for. Others (HS256, or
/// RSA-OAEP-256, which only resource servers use) would give keys that
/// never become active.
fn own_alg(name: &str, policy: &RotationPolicy) -> anyhow::Result<Alg> {
    let kept: Vec<Alg> = policy
        .signing_algs
        .iter()
        .copied()
        .chain([OWN_ENCRYPTION_ALG])
        .collect();
    kept.iter()
        .copied()
        .find(|a| a.as_str() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = kept.iter().map(|a| a.as_str()).collect();
            let hint = if SIGNING_ALGS.iter().any(|a| a.as_str() == name) {
                " (add it to signing_algs first)"
            } else {
                ""
            };
            anyhow!(
                "--alg {name:?} is not an algorithm Gatehouse keeps keys for{hint}; use one of {}",
                names.join(", ")
            )
        })
}

fn when(t: Option<i64>) -> String {
    t.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
}

pub async fn run(
    cmd: KeysCmd,
    store: Store,
    kek: Kek,
    policy: RotationPolicy,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let ring = KeyRing::open(store, kek, policy, clock.clone()).await?;
    match cmd {
        KeysCmd::List { json: as_json } => {
            let snap = ring.snapshot();
            if as_json {
                println!("{}", serde_json::to_string_pretty(snap.keys())?);
            } else {
                println!(
                    "{:<32}  {:<3}  {:<14}  {:<7}  {:<10}  {:<10}  {:<10}",
                    "KID", "USE", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED"
                );
                for k in snap.keys() {
                    println!(
                        "{:<32}  {:<3}  {:<14}  {:<7}  {:<10}  {:<10}  {:<10}",
                        k.kid,
                        k.key_use,
                        k.alg,
                        k.state.as_str(),
                        k.created_at,
                        when(k.activated_at),
                        when(k.retired_at.or(k.revoked_at))
                    );
                }
            }
        }
        KeysCmd::Rotate { key_use, alg } => {
            let key_use: Option<KeyUse> = key_use.map(|u| u.parse()).transpose()?;
            let alg: Option<Alg> = alg
                .as_deref()
                .map(|a| own_alg(a, ring.policy()))
                .transpose()?;
            if let (Some(u), Some(a)) = (key_use, alg) {
                if a.key_use() != u {
                    bail!("--alg {a} is for --use {}, not --use {u}", a.key_use());
                }
            }
            let before = ring.snapshot();
            let done = ring.rotate(key_use, alg).await?;
            let now = clock.now();
            for (a, r) in &done {
                audit::emit(
                    &Event::KeyRotated {
                        kid: &r.activated,
                        alg: a.as_str(),
                    },
                    now,
                );
            }
            for (a, r) in &done {
                let fresh = before.keys().iter().any(|k| {
                    k.kid == r.activated && now - k.created_at < ring.policy().jwks_max_age
                });
                if fresh {
                    eprintln!(
                        "warning: {a} key {} was published less than {}s ago; relying parties with a cached JWKS may not know it yet",
                        r.activated,
                        ring.policy().jwks_max_age
                    );
                }
            }
            let out: Vec<_> = done
                .iter()
                .map(|(a, r)| json!({ "alg": a.as_str(), "activated": r.activated, "retired": r.retired, "next": r.next }))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "rotated": out }))?
            );
        }
        KeysCmd::Revoke { kid } => {
            let r = ring.revoke(&kid).await?;
            audit::emit(&Event::KeyRevoked { kid: &r.kid }, clock.now());
            if r.was == KeyState::Active {
                eprintln!(
                    "key {kid} was active: {} signs from now on. Tokens signed by {kid} now fail verification; users may need to sign in again.",
                    r.activated.as_deref().unwrap_or("-")
                );
            }
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({ "revoked": r.kid, "was": r.was.as_str(), "activated": r.activated, "next": r.next })
                )?
            );
        }
        KeysCmd::Generate { alg } => {
            let alg = own_alg(&alg, ring.policy())?;
            let kid = ring.generate_next(alg).await?;
            println!(
                "{}",
                json!({ "generated": kid, "alg": alg.as_str(), "state": "next" })
            );
        }
    }
    Ok(())
}
