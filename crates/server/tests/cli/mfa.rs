//! `gatehouse users mfa require|optional|list|reset`: the requirement, the
//! listing of a user's factors, and the lost-authenticator reset that ends
//! her sessions and sends back-channel logout.

use gatehouse_storage::{model::Session, Store};
use serde_json::{json, Value};

use crate::support::{
    assert_mentions, audit_lines, create_user, BackchannelReceiver, Env, AUDIT_LOG,
};

both_backends!(mfa_require_list_reset, mfa_commands_refuse_unknown_users);

const PASSWORD: &str = "Glacier-Violin-7-Harbour";

fn session(sub: &str, n: u8, now: i64) -> Session {
    Session {
        id_hash: format!("hash-{sub}-{n}"),
        sid: format!("sid-{n}"),
        user_id: sub.to_owned().into(),
        auth_time: now,
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        acr: Some("urn:gatehouse:acr:mfa".into()),
        created_at: now,
        last_seen_at: now,
        expires_at: now + 3600,
        ip: None,
        user_agent: None,
    }
}

/// The one audit event of kind `kind` a run wrote.
fn event(stderr: &str, kind: &str) -> Value {
    let found: Vec<Value> = audit_lines(stderr)
        .into_iter()
        .filter(|l| l["event"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} event in:\n{stderr}");
    found[0].clone()
}

async fn mfa_require_list_reset(env: &Env) {
    let sub = create_user(env, "alice", PASSWORD);
    let report = env.json(&["users", "mfa", "list", "--user", "Alice", "--json"]);
    assert_eq!(
        report,
        json!({
            "sub": sub, "username": "alice", "mfa_required": false,
            "totp": { "state": "none", "created_at": null, "confirmed_at": null },
            "recovery_codes": { "unused": 0, "used_at": [], "created_at": null },
            "passkeys": 0,
            "wrong_codes": { "in_a_row": 0, "last_at": null, "held_until": null },
        })
    );

    // require: the flag, its audit event, and the user listing shows it.
    let out = env
        .cmd(&["users", "mfa", "require", "--user", " ALICE "])
        .env("GATEHOUSE_LOG", AUDIT_LOG)
        .ok();
    let set: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        set,
        json!({ "sub": sub, "username": "alice", "mfa_required": true })
    );
    let e = event(&out.stderr, "mfa_requirement_set");
    assert_eq!((&e["user_id"], &e["required"]), (&json!(sub), &json!(true)));
    assert_eq!(
        env.json(&["users", "list", "--json"])[0]["mfa_required"],
        true
    );

    // A pending enrolment, then a confirmed one with recovery codes, two
    // of them used (written as the sign-in pages write them).
    let store = Store::connect(&env.url).await.unwrap();
    store
        .begin_totp(&sub, vec![7; 40], "s", 1_000)
        .await
        .unwrap();
    let pending = env.json(&["users", "mfa", "list", "--user", "alice", "--json"]);
    assert_eq!(
        pending["totp"],
        json!({ "state": "pending", "created_at": 1000, "confirmed_at": null })
    );
    assert!(store.confirm_totp(&sub, "s", 999, 40, 1_100).await.unwrap());
    let hashes: Vec<String> = (0..4).map(|i| format!("code-hash-{i}")).collect();
    store
        .replace_recovery_codes(&sub, &hashes, 1_200)
        .await
        .unwrap();
    assert!(store
        .use_recovery_code(&sub, &hashes[2], 1_400)
        .await
        .unwrap());
    assert!(store
        .use_recovery_code(&sub, &hashes[0], 1_300)
        .await
        .unwrap());
    // 100 wrong codes in a row, the last just now: her codes are held off.
    let now = unix_now();
    for _ in 0..100 {
        assert_eq!(
            store
                .count_factor_attempt(&sub, 100, 86_400, now)
                .await
                .unwrap(),
            None
        );
    }
    let report = env.json(&["users", "mfa", "list", "--user", "alice", "--json"]);
    assert_eq!(
        report,
        json!({
            "sub": sub, "username": "alice", "mfa_required": true,
            "totp": { "state": "enrolled", "created_at": 1000, "confirmed_at": 1100 },
            "recovery_codes": { "unused": 2, "used_at": [1300, 1400], "created_at": 1200 },
            "passkeys": 0,
            "wrong_codes": { "in_a_row": 100, "last_at": now, "held_until": now + 86_400 },
        })
    );
    // unlock forgets the wrong codes and keeps the factors.
    let unlocked = env.json(&["users", "mfa", "unlock", "--user", "alice"]);
    assert_eq!(
        unlocked,
        json!({ "sub": sub, "username": "alice", "unlocked": true })
    );
    assert_eq!(store.factor_failures(&sub).await.unwrap(), None);
    assert!(store.totp_factor(&sub).await.unwrap().is_some());
    let report = env.json(&["users", "mfa", "list", "--user", "alice", "--json"]);
    assert_eq!(
        report["wrong_codes"],
        json!({ "in_a_row": 0, "last_at": null, "held_until": null })
    );
    let text = env
        .cmd(&["users", "mfa", "list", "--user", "alice"])
        .ok()
        .stdout;
    for needle in [
        "alice",
        sub.as_str(),
        "MFA REQUIRED    yes",
        "PASSKEYS        0",
        "WRONG CODES     0 in a row",
        "enrolled",
        "confirmed 1100",
        "2 unused",
        "used 1300 1400",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }

    // Two sessions, one of which gave tokens to a client that listens for
    // back-channel logout.
    let receiver = BackchannelReceiver::start();
    let client = env.json(&[
        "clients",
        "create",
        "--name",
        "RP",
        "--redirect-uri",
        "https://rp.example/cb",
        "--backchannel-logout-uri",
        &receiver.uri,
    ]);
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let now = unix_now();
    for n in 1..=2 {
        store.create_session(&session(&sub, n, now)).await.unwrap();
    }
    store
        .add_session_client("sid-1", &client_id, now)
        .await
        .unwrap();

    // The help desk's lost-phone path.
    let out = env
        .cmd(&["users", "mfa", "reset", "--user", "alice"])
        .env("GATEHOUSE_LOG", AUDIT_LOG)
        .ok();
    let reset: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(reset["sub"], sub.as_str());
    assert_eq!(reset["username"], "alice");
    assert_eq!(reset["totp_removed"], true);
    assert_eq!(reset["recovery_codes_removed"], 4);
    assert_eq!(reset["mfa_required"], true, "the requirement stays");
    assert_eq!(reset["sessions_ended"], 2);
    let delivered = reset["backchannel"].as_array().unwrap();
    assert_eq!(delivered.len(), 1, "{reset:#}");
    assert_eq!(delivered[0]["client_id"], client_id.as_str());
    assert_eq!(delivered[0]["delivered"], true, "{reset:#}");
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].starts_with("logout_token="), "{bodies:?}");
    let removed = event(&out.stderr, "second_factors_removed");
    assert_eq!(
        (&removed["user_id"], &removed["by"]),
        (&json!(sub), &json!("operator"))
    );
    assert_eq!(event(&out.stderr, "forced_logout")["sessions_ended"], 2);

    assert_eq!(store.totp_factor(&sub).await.unwrap(), None);
    assert!(store.recovery_codes(&sub).await.unwrap().is_empty());
    assert!(store.sessions_of_user(&sub).await.unwrap().is_empty());
    let report = env.json(&["users", "mfa", "list", "--user", "alice", "--json"]);
    assert_eq!(report["totp"]["state"], "none");
    assert_eq!(report["recovery_codes"]["unused"], 0);
    assert_eq!(report["mfa_required"], true);

    // Again: nothing left to remove, nothing to audit as removed, still fine.
    let out = env
        .cmd(&["users", "mfa", "reset", "--user", "alice"])
        .env("GATEHOUSE_LOG", AUDIT_LOG)
        .ok();
    let again: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(again["totp_removed"], false);
    assert_eq!(again["recovery_codes_removed"], 0);
    assert_eq!(again["sessions_ended"], 0);
    assert!(
        !audit_lines(&out.stderr)
            .iter()
            .any(|l| l["event"] == "second_factors_removed"),
        "{}",
        out.stderr
    );

    // optional lifts the requirement.
    let out = env
        .cmd(&["users", "mfa", "optional", "--user", "alice"])
        .env("GATEHOUSE_LOG", AUDIT_LOG)
        .ok();
    let lifted: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(lifted["mfa_required"], false);
    assert_eq!(event(&out.stderr, "mfa_requirement_set")["required"], false);
    assert_eq!(
        env.json(&["users", "mfa", "list", "--user", "alice", "--json"])["mfa_required"],
        false
    );
    store.close().await.unwrap();
}

async fn mfa_commands_refuse_unknown_users(env: &Env) {
    create_user(env, "alice", PASSWORD);
    for verb in ["require", "optional", "list", "reset", "unlock"] {
        let line = env.fails(&["users", "mfa", verb, "--user", "nobody"]);
        assert_mentions(&line, &["no user", "nobody"]);
    }
    // --user is required.
    let out = env.cmd(&["users", "mfa", "reset"]).run();
    assert!(!out.status.success());
    assert!(out.stderr.contains("--user"), "{}", out.stderr);
    assert_eq!(
        env.json(&["users", "list", "--json"])[0]["mfa_required"],
        false,
        "nothing changed"
    );
}

fn unix_now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}
