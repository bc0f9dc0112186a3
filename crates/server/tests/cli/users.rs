//! `gatehouse users`: create, list, disable.

use crate::support::{assert_mentions, Env};

both_backends!(users_create_list_disable);

async fn users_create_list_disable(env: &Env) {
    let created = env
        .cmd(&[
            "users",
            "create",
            "--username",
            "Alice",
            "--email",
            "a@example.com",
            "--name",
            "Alice A",
            "--password-stdin",
        ])
        .stdin("correct horse battery staple\n")
        .json();
    let sub = created["sub"].as_str().expect("sub").to_owned();
    assert!(uuid::Uuid::parse_str(&sub).is_ok(), "sub {sub:?} is a UUID");
    assert_eq!(created["username"], "alice", "the username is normalized");

    // Same name in another case: a duplicate, refused by name.
    let dup = env
        .cmd(&["users", "create", "--username", "ALICE", "--password-stdin"])
        .stdin("another password\n")
        .fails();
    assert_mentions(&dup, &["alice"]);

    // No password on stdin, or only a newline: refused, and nothing created.
    for input in ["", "\n"] {
        let empty = env
            .cmd(&["users", "create", "--username", "bob", "--password-stdin"])
            .stdin(input)
            .fails();
        assert_mentions(&empty, &["password", "empty"]);
    }
    // --password-stdin is required (clap's usage error is its own, multi-line format).
    let out = env.cmd(&["users", "create", "--username", "bob"]).run();
    assert!(!out.status.success());
    assert!(out.stderr.contains("--password-stdin"), "{}", out.stderr);

    let list = env.json(&["users", "list", "--json"]);
    let users = list.as_array().unwrap();
    assert_eq!(users.len(), 1, "only alice exists: {list:#}");
    let alice = &users[0];
    assert_eq!(alice["id"], sub.as_str());
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "a@example.com");
    assert_eq!(alice["name"], "Alice A");
    assert_eq!(alice["disabled"], false);
    let raw = env.cmd(&["users", "list", "--json"]).ok().stdout;
    assert!(
        !raw.contains("argon2") && !raw.contains("password"),
        "no password hash in the listing: {raw}"
    );

    let table = env.cmd(&["users", "list"]).ok().stdout;
    let row = table
        .lines()
        .find(|l| l.contains("alice"))
        .unwrap_or_else(|| panic!("alice in the table:\n{table}"));
    assert!(row.contains(&sub) && row.contains("active"), "{row}");

    let disabled = env.json(&["users", "disable", "alice"]);
    assert_eq!(disabled["sub"], sub.as_str());
    assert_eq!(disabled["username"], "alice");
    assert_eq!(disabled["disabled"], true);

    assert_eq!(env.json(&["users", "list", "--json"])[0]["disabled"], true);
    let table = env.cmd(&["users", "list"]).ok().stdout;
    let row = table.lines().find(|l| l.contains("alice")).unwrap();
    assert!(row.contains("disabled"), "{row}");

    let unknown = env.fails(&["users", "disable", "nobody"]);
    assert_mentions(&unknown, &["nobody"]);
}
