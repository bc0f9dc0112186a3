//! `gatehouse users create|list|disable|set-password` and
//! `gatehouse users mfa require|optional|list|reset`.

use std::io::Read;

use anyhow::{bail, Context};
use gatehouse_keys::{Clock, SystemClock};
use gatehouse_storage::{
    model::{RecoveryCode, TotpFactor, User},
    Store,
};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::{
    app,
    audit::{self, Event},
    cli::{MfaCmd, UsersCmd},
    config::Settings,
    factors, password, password_policy,
    session_end::ForcedLogout,
    username,
};

pub async fn run(cmd: UsersCmd, settings: Settings) -> anyhow::Result<()> {
    let clock = SystemClock;
    match cmd {
        UsersCmd::Create {
            username,
            email,
            name,
            email_verified,
            password_stdin: _,
        } => {
            let store = super::open_store(&settings).await?;
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
            let personal = [username.as_str(), email.as_deref().unwrap_or_default()];
            let pw = read_new_password(settings.password_min_length, &personal)?;
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
            let store = super::open_store(&settings).await?;
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
            let u = state
                .store
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
        UsersCmd::SetPassword {
            user,
            password_stdin: _,
        } => {
            // The password first: a refused one changes nothing and needs
            // no database.
            let pw = read_new_password(settings.password_min_length, &[&user])?;
            let state = app::build_from_settings(settings).await?;
            let u = find(&state.store, &user).await?;
            password_policy::check(
                &pw,
                0,
                &[&u.username, u.email.as_deref().unwrap_or_default()],
            )?;
            let hash = tokio::task::spawn_blocking(move || password::hash(&pw)).await??;
            state
                .store
                .set_password_hash(&u.id, &hash, state.now())
                .await?;
            audit::emit(
                &Event::PasswordChanged {
                    user_id: &u.id,
                    by: "operator",
                },
                state.now(),
            );
            // Whoever knew the old password may hold a session: end them all.
            let done = forced_logout(&state, &u).await?;
            print_logout(&u, done, &[("password_changed", true.into())])?;
        }
        UsersCmd::Mfa(c) => mfa(c, settings).await?,
    }
    Ok(())
}

async fn mfa(cmd: MfaCmd, settings: Settings) -> anyhow::Result<()> {
    match cmd {
        MfaCmd::Require { user } => set_required(&settings, &user, true).await?,
        MfaCmd::Optional { user } => set_required(&settings, &user, false).await?,
        MfaCmd::List {
            user,
            json: as_json,
        } => {
            let store = super::open_store(&settings).await?;
            let u = find(&store, &user).await?;
            let totp = store.totp_factor(&u.id).await?;
            let codes = store.recovery_codes(&u.id).await?;
            let passkeys = store.passkeys_of_user(&u.id).await?.len();
            let failures = store.factor_failures(&u.id).await?;
            let now = SystemClock.now();
            let mut report = factors_report(&u, totp.as_ref(), &codes);
            report["passkeys"] = passkeys.into();
            report["wrong_codes"] = wrong_codes_report(failures, now);
            if as_json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_factors(&report);
            }
        }
        MfaCmd::Unlock { user } => {
            let store = super::open_store(&settings).await?;
            let u = find(&store, &user).await?;
            let had = store.factor_failures(&u.id).await?.is_some();
            store.clear_factor_failures(&u.id).await?;
            println!(
                "{}",
                json!({ "sub": u.id, "username": u.username, "unlocked": had })
            );
        }
        MfaCmd::Reset { user } => {
            // Open the keys first, as `users disable` does: a wrong
            // key-encryption key fails before anything is removed.
            let state = app::build_from_settings(settings).await?;
            let u = find(&state.store, &user).await?;
            let codes = state.store.recovery_codes(&u.id).await?.len();
            let had_totp = state.store.delete_totp(&u.id).await?;
            let passkeys = state.store.delete_passkeys_of_user(&u.id).await?;
            // A fresh start: the wrong codes counted against the old
            // factors no longer hold the account off.
            state.store.clear_factor_failures(&u.id).await?;
            if had_totp || codes > 0 || passkeys > 0 {
                audit::emit(
                    &Event::SecondFactorsRemoved {
                        user_id: &u.id,
                        by: "operator",
                    },
                    state.now(),
                );
            }
            // Whoever holds the lost authenticator may hold a session too.
            let done = forced_logout(&state, &u).await?;
            print_logout(
                &u,
                done,
                &[
                    ("totp_removed", had_totp.into()),
                    ("recovery_codes_removed", codes.into()),
                    ("passkeys_removed", passkeys.into()),
                    ("mfa_required", u.mfa_required.into()),
                ],
            )?;
        }
    }
    Ok(())
}

/// `users mfa require|optional`: sets the requirement and writes its audit
/// event. Sessions stay: the next authorization of a session without a
/// second factor asks for one (refresh tokens granted without one are
/// refused), so nothing signed in below the level can go on using it.
async fn set_required(settings: &Settings, user: &str, required: bool) -> anyhow::Result<()> {
    let store = super::open_store(settings).await?;
    let u = find(&store, user).await?;
    let now = SystemClock.now();
    store.set_mfa_required(&u.id, required, now).await?;
    audit::emit(
        &Event::MfaRequirementSet {
            user_id: &u.id,
            required,
        },
        now,
    );
    println!(
        "{}",
        json!({ "sub": u.id, "username": u.username, "mfa_required": required })
    );
    Ok(())
}

/// The user named `typed` (normalized as at sign-in), or an error naming it.
async fn find(store: &Store, typed: &str) -> anyhow::Result<User> {
    match store.user_by_username(&username::normalize(typed)).await? {
        Some(u) => Ok(u),
        None => bail!("no user named {typed:?}"),
    }
}

async fn forced_logout(state: &crate::state::AppState, u: &User) -> anyhow::Result<ForcedLogout> {
    crate::session_end::force_logout(state, u)
        .await
        .map_err(|e| anyhow::anyhow!("forced logout failed: {e}"))
}

/// Prints what a forced logout did (as `sessions revoke` does), with the
/// username and the command's own fields.
fn print_logout(u: &User, done: ForcedLogout, extra: &[(&str, Value)]) -> anyhow::Result<()> {
    let mut out = serde_json::to_value(done)?;
    if let Some(o) = out.as_object_mut() {
        o.insert("username".into(), u.username.clone().into());
        for (k, v) in extra {
            o.insert((*k).into(), v.clone());
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `users mfa list --json`: the requirement, the TOTP factor's state and
/// times, the recovery codes left and when each used one was used.
fn factors_report(u: &User, totp: Option<&TotpFactor>, codes: &[RecoveryCode]) -> Value {
    let state = match totp {
        None => "none",
        Some(t) if t.confirmed_at.is_some() => "enrolled",
        Some(_) => "pending",
    };
    let mut used_at: Vec<i64> = codes.iter().filter_map(|c| c.used_at).collect();
    used_at.sort_unstable();
    json!({
        "sub": u.id,
        "username": u.username,
        "mfa_required": u.mfa_required,
        "totp": {
            "state": state,
            "created_at": totp.map(|t| t.created_at),
            "confirmed_at": totp.and_then(|t| t.confirmed_at),
        },
        "recovery_codes": {
            "unused": codes.iter().filter(|c| c.used_at.is_none()).count(),
            "used_at": used_at,
            "created_at": codes.iter().map(|c| c.created_at).max(),
        },
    })
}

/// Wrong second-factor codes in a row, when the last was, and until when
/// they hold the user's codes off (past the hard limit).
fn wrong_codes_report(failures: Option<(u32, i64)>, now: i64) -> Value {
    let (in_a_row, last) = match failures {
        Some((n, last)) if now - last < factors::FAILURE_WINDOW => (n, Some(last)),
        _ => (0, None),
    };
    let held_until = last
        .filter(|_| in_a_row >= factors::FAILURE_LIMIT)
        .map(|l| l + factors::FAILURE_WINDOW);
    json!({ "in_a_row": in_a_row, "last_at": last, "held_until": held_until })
}

/// The same report as a few lines for a person (times in Unix seconds).
fn print_factors(r: &Value) {
    let when = |v: &Value| v.as_i64().map_or_else(|| "-".to_owned(), |t| t.to_string());
    let yes = |v: &Value| {
        if v.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
    };
    println!(
        "USER            {} ({})",
        r["username"].as_str().unwrap_or_default(),
        r["sub"].as_str().unwrap_or_default()
    );
    println!("MFA REQUIRED    {}", yes(&r["mfa_required"]));
    println!("PASSKEYS        {}", r["passkeys"]);
    println!(
        "WRONG CODES     {} in a row  last {}  held until {}",
        r["wrong_codes"]["in_a_row"],
        when(&r["wrong_codes"]["last_at"]),
        when(&r["wrong_codes"]["held_until"])
    );
    println!(
        "TOTP            {}  created {}  confirmed {}",
        r["totp"]["state"].as_str().unwrap_or_default(),
        when(&r["totp"]["created_at"]),
        when(&r["totp"]["confirmed_at"])
    );
    let used: Vec<String> = r["recovery_codes"]["used_at"]
        .as_array()
        .map(|a| a.iter().map(when).collect())
        .unwrap_or_default();
    println!(
        "RECOVERY CODES  {} unused  created {}  used {}",
        r["recovery_codes"]["unused"],
        when(&r["recovery_codes"]["created_at"]),
        if used.is_empty() {
            "-".to_owned()
        } else {
            used.join(" ")
        }
    );
}

/// Reads a new password from standard input: one line, its line ending
/// (`\n` or `\r\n`) removed, then held to the password policy. Every copy
/// is wiped when dropped.
fn read_new_password(min_len: usize, personal: &[&str]) -> anyhow::Result<Zeroizing<String>> {
    let mut raw = Zeroizing::new(Vec::new());
    // A little more than the limit allows, so a longer one is seen as such.
    std::io::stdin()
        .take(password_policy::MAX_BYTES as u64 + 3)
        .read_to_end(&mut raw)
        .context("cannot read the password from standard input")?;
    let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("the password on standard input is empty");
    }
    if line.contains(&b'\n') || line.contains(&b'\r') {
        bail!("standard input holds more than one line; give the password alone on one line");
    }
    if line.len() > password_policy::MAX_BYTES {
        return Err(password_policy::PolicyError::TooLong.into());
    }
    let pw = std::str::from_utf8(line)
        .map_err(|_| anyhow::anyhow!("the password on standard input is not UTF-8 text"))?;
    password_policy::check(pw, min_len, personal)?;
    Ok(Zeroizing::new(pw.to_owned()))
}
