//! `gatehouse users create|list|disable`.

use std::io::Read;

use anyhow::{bail, Context};
use gatehouse_keys::{Clock, SystemClock};
use gatehouse_storage::model::User;
use serde_json::json;

use crate::{app, cli::UsersCmd, config::Settings, password, username};

pub async fn run(cmd: UsersCmd, settings: Settings) -> anyhow::Result<()> {
    let store = super::open_store(&settings).await?;
    let clock = SystemClock;
    match cmd {
        UsersCmd::Create {
            username,
            email,
            name,
            email_verified,
            password_stdin: _,
        } => {
            let normalized = username::normalize(&username);
            if normalized.is_empty()
                || normalized.len() > 256
                || normalized.chars().any(char::is_control)
            {
                bail!("username must be 1 to 256 printable characters");
            }
            if let Some(e) = &email {
                if !e.contains('@') || e.len() > 320 {
                    bail!("email {e:?} is not an email address");
                }
            }
            // Both copies of the password are wiped when dropped.
            let mut read = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .take(password::MAX_PASSWORD_BYTES as u64 + 2)
                .read_to_string(&mut read)
                .context("cannot read the password from standard input")?;
            let pw = zeroize::Zeroizing::new(
                read.strip_suffix('\n')
                    .map(|p| p.strip_suffix('\r').unwrap_or(p))
                    .unwrap_or(&read)
                    .to_owned(),
            );
            if pw.is_empty() {
                bail!("the password on standard input is empty");
            }
            let hash = tokio::task::spawn_blocking(move || password::hash(&pw)).await??;
            let now = clock.now();
            let user = User {
                id: uuid::Uuid::new_v4().to_string().into(),
                username: normalized,
                email,
                email_verified,
                name,
                password_hash: hash,
                disabled: false,
                created_at: now,
                updated_at: now,
                mfa_required: false,
            };
            store.create_user(&user).await?;
            println!("{}", json!({ "sub": user.id, "username": user.username }));
        }
        UsersCmd::List { json: as_json } => {
            let users = store.list_users().await?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!("{:<36}  {:<24}  {:<8}  EMAIL", "SUB", "USERNAME", "STATUS");
                for u in users {
                    let status = if u.disabled { "disabled" } else { "active" };
                    println!(
                        "{:<36}  {:<24}  {:<8}  {}",
                        u.id,
                        u.username,
                        status,
                        u.email.unwrap_or_default()
                    );
                }
            }
        }
        UsersCmd::Disable { username } => {
            // Open the keys first: a wrong key-encryption key must fail
            // before the user is disabled, not half-way through.
            let state = app::build_from_settings(settings).await?;
            let u = store
                .set_user_disabled(&username::normalize(&username), true, clock.now())
                .await?;
            let done = crate::session_end::force_logout(&state, &u)
                .await
                .map_err(|e| anyhow::anyhow!("forced logout failed: {e}"))?;
            println!(
                "{}",
                json!({ "sub": u.id, "username": u.username, "disabled": true, "sessions_ended": done.sessions_ended, "refresh_tokens_revoked": done.refresh_tokens_revoked, "backchannel": done.backchannel })
            );
        }
    }
    Ok(())
}
