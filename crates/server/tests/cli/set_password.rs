//! `gatehouse users set-password`: the new password is held to the policy,
//! stored as a new hash, audited, and every session of the user ends.

use gatehouse_server::password::Gate;
use gatehouse_storage::{model::Session, Store};
use serde_json::{json, Value};

use crate::support::{assert_mentions, audit_lines, create_user, Env, AUDIT_LOG};

both_backends!(
    set_password_changes_it_and_ends_sessions,
    set_password_refusals
);

const OLD: &str = "Glacier-Violin-7-Harbour";
const NEW: &str = "Lantern Quarry Nineteen Oaks";

async fn stored_hash(store: &Store) -> String {
    store
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

async fn verifies(password: &str, hash: &str) -> bool {
    Gate::global()
        .acquire()
        .await
        .unwrap()
        .verify(password.to_owned(), Some(hash.to_owned()))
        .await
}

async fn set_password_changes_it_and_ends_sessions(env: &Env) {
    let sub = create_user(env, "alice", OLD);
    let store = Store::connect(&env.url).await.unwrap();
    let before = stored_hash(&store).await;
    assert!(verifies(OLD, &before).await);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    store
        .create_session(&Session {
            id_hash: "hash-1".into(),
            sid: "sid-1".into(),
            user_id: sub.clone().into(),
            auth_time: now,
            amr: vec!["pwd".into()],
            acr: None,
            created_at: now,
            last_seen_at: now,
            expires_at: now + 3600,
            ip: None,
            user_agent: None,
        })
        .await
        .unwrap();

    // A line ending of either kind is not part of the password.
    let out = env
        .cmd(&[
            "users",
            "set-password",
            "--user",
            "Alice",
            "--password-stdin",
        ])
        .env("GATEHOUSE_LOG", AUDIT_LOG)
        .stdin(&format!("{NEW}\r\n"))
        .ok();
    let done: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(done["sub"], sub.as_str());
    assert_eq!(done["username"], "alice");
    assert_eq!(done["password_changed"], true);
    assert_eq!(done["sessions_ended"], 1, "{done:#}");
    assert!(done["backchannel"].is_array(), "{done:#}");
    assert!(!out.stdout.contains(NEW) && !out.stderr.contains(NEW));

    let audit = audit_lines(&out.stderr);
    let changed: Vec<&Value> = audit
        .iter()
        .filter(|l| l["event"] == "password_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{}", out.stderr);
    assert_eq!(changed[0]["user_id"], sub.as_str());
    assert_eq!(changed[0]["by"], "operator");
    assert!(
        audit
            .iter()
            .any(|l| l["event"] == "forced_logout" && l["sessions_ended"] == json!(1)),
        "{}",
        out.stderr
    );

    let after = stored_hash(&store).await;
    assert_ne!(after, before);
    assert!(verifies(NEW, &after).await, "the new password works");
    assert!(!verifies(OLD, &after).await, "the old one does not");
    assert!(!verifies(&format!("{NEW}\r"), &after).await);
    assert!(store.sessions_of_user(&sub).await.unwrap().is_empty());
    store.close().await.unwrap();
}

async fn set_password_refusals(env: &Env) {
    create_user(env, "alice", OLD);
    let store = Store::connect(&env.url).await.unwrap();
    let before = stored_hash(&store).await;
    let set = |input: String| {
        env.cmd(&[
            "users",
            "set-password",
            "--user",
            "alice",
            "--password-stdin",
        ])
        .stdin(&input)
        .fails()
    };
    assert_mentions(&set("short pw 1\n".into()), &["too short", "12 characters"]);
    assert_mentions(&set("Password1234\n".into()), &["commonly used"]);
    assert_mentions(
        &set(format!("{}\n", "x".repeat(1025))),
        &["too long", "1024 bytes"],
    );
    assert_mentions(&set(format!("{}\n", "x".repeat(5000))), &["too long"]);
    assert_mentions(&set("\n".into()), &["password", "empty"]);
    assert_mentions(&set(format!("{NEW}\nsecond line\n")), &["one line"]);
    let line = env
        .cmd(&[
            "users",
            "set-password",
            "--user",
            "nobody",
            "--password-stdin",
        ])
        .stdin(&format!("{NEW}\n"))
        .fails();
    assert_mentions(&line, &["no user", "nobody"]);
    // --password-stdin is required (clap's usage error is its own format).
    let out = env.cmd(&["users", "set-password", "--user", "alice"]).run();
    assert!(!out.status.success());
    assert!(out.stderr.contains("--password-stdin"), "{}", out.stderr);

    assert_eq!(stored_hash(&store).await, before, "nothing changed");
    store.close().await.unwrap();
}
