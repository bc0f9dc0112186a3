//! `gatehouse sessions list|revoke`: the forced logout that banking and
//! healthcare require.

use anyhow::bail;
use serde_json::json;

use crate::{app, cli::SessionsCmd, config::Settings, username};

pub async fn run(cmd: SessionsCmd, settings: Settings) -> anyhow::Result<()> {
    match cmd {
        SessionsCmd::List {
            user,
            json: as_json,
        } => {
            let store = super::open_store(&settings).await?;
            let Some(u) = store.user_by_username(&username::normalize(&user)).await? else {
                bail!("no user named {user:?}");
            };
            let sessions = store.sessions_of_user(&u.id).await?;
            if as_json {
                let out: Vec<_> = sessions
                    .iter()
                    .map(|s| {
                        json!({ "sid": s.sid, "sub": s.user_id, "auth_time": s.auth_time, "amr": s.amr,
                                "created_at": s.created_at, "last_seen_at": s.last_seen_at, "expires_at": s.expires_at })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{:<36}  {:<10}  {:<10}  EXPIRES",
                    "SID", "CREATED", "LAST SEEN"
                );
                for s in sessions {
                    println!(
                        "{:<36}  {:<10}  {:<10}  {}",
                        s.sid, s.created_at, s.last_seen_at, s.expires_at
                    );
                }
            }
        }
        SessionsCmd::Revoke { user } => {
            let state = app::build_from_settings(settings).await?;
            let Some(u) = state
                .store
                .user_by_username(&username::normalize(&user))
                .await?
            else {
                bail!("no user named {user:?}");
            };
            let done = crate::session_end::force_logout(&state, &u)
                .await
                .map_err(|e| anyhow::anyhow!("forced logout failed: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&done)?);
        }
    }
    Ok(())
}
