//! The password policy at `users create`: a minimum length
//! (`password_min_length`, file or `GATEHOUSE_PASSWORD_MIN_LENGTH`), at most
//! 1 KiB, not a common password, not the username or the service's name,
//! no composition rules.

use std::fs;

use crate::support::{assert_mentions, sqlite_env, Env};

both_backends!(users_create_holds_passwords_to_the_policy);

fn create(env: &Env, username: &str, password: &str) -> crate::support::Invocation {
    env.cmd(&[
        "users",
        "create",
        "--username",
        username,
        "--password-stdin",
    ])
    .stdin(&format!("{password}\n"))
}

fn usernames(env: &Env) -> Vec<String> {
    env.json(&["users", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn users_create_holds_passwords_to_the_policy(env: &Env) {
    // Refused: each names the rule broken, and creates no one.
    let line = create(env, "bob", "eleven char").fails();
    assert_mentions(&line, &["too short", "at least 12 characters"]);
    // Twelve characters in 13 bytes would pass a byte count; eleven
    // characters in 22 bytes must not.
    let line = create(env, "bob", &"é".repeat(11)).fails();
    assert_mentions(&line, &["too short"]);
    for common in ["password1234", "PassWord1234", "QWERTYUIOP123"] {
        let line = create(env, "bob", common).fails();
        assert_mentions(&line, &["commonly used"]);
    }
    let line = create(env, "bob", &"a".repeat(1025)).fails();
    assert_mentions(&line, &["too long", "1024 bytes"]);
    let line = create(env, "bob", &"é".repeat(513)).fails();
    assert_mentions(&line, &["too long"]);
    // Context-specific words: the username, the service's name.
    let line = create(env, "walker", "my name is WALKER ok").fails();
    assert_mentions(&line, &["contains the username"]);
    let line = create(env, "bob", "gatehouse password").fails();
    assert_mentions(&line, &["service's name"]);
    assert!(usernames(env).is_empty(), "nobody was created");

    // set-password holds the user's own name against her too.
    create(env, "walker", "a fine long phrase").ok();
    let line = env
        .cmd(&[
            "users",
            "set-password",
            "--user",
            "walker",
            "--password-stdin",
        ])
        .stdin("walker walker walker\n")
        .fails();
    assert_mentions(&line, &["contains the username"]);

    // Accepted: no composition rules, up to 1024 bytes, any script.
    create(env, "carol", &"é".repeat(12)).ok();
    create(env, "dave", "lowercase only words").ok();
    create(env, "erin", &"a".repeat(1024)).ok();
    create(env, "frank", "日本語のパスフレーズです").ok();
    assert_eq!(usernames(env).len(), 5, "walker and these four");
}

/// `password_min_length` from the environment and the file; a value
/// outside 8 to 64 is refused with one line naming the setting.
#[tokio::test]
async fn password_min_length_is_configurable() {
    let env = sqlite_env().await;
    let line = create(&env, "bob", "fifteen-chars!")
        .env("GATEHOUSE_PASSWORD_MIN_LENGTH", "15")
        .fails();
    assert_mentions(&line, &["at least 15 characters"]);
    create(&env, "bob", "sixteen-chars-ok")
        .env("GATEHOUSE_PASSWORD_MIN_LENGTH", "15")
        .ok();

    let file = env.dir().join("gatehouse.toml");
    fs::write(&file, "password_min_length = 8\n").unwrap();
    let file = file.to_str().unwrap().to_owned();
    env.cmd(&[
        "--config",
        &file,
        "users",
        "create",
        "--username",
        "carol",
        "--password-stdin",
    ])
    .stdin("nine-char\n")
    .ok();
    // The environment beats the file.
    let line = env
        .cmd(&[
            "--config",
            &file,
            "users",
            "create",
            "--username",
            "dave",
            "--password-stdin",
        ])
        .env("GATEHOUSE_PASSWORD_MIN_LENGTH", "10")
        .stdin("nine-char\n")
        .fails();
    assert_mentions(&line, &["at least 10 characters"]);

    for bad in ["7", "65", "0", "-1"] {
        let line = create(&env, "erin", "a perfectly good password")
            .env("GATEHOUSE_PASSWORD_MIN_LENGTH", bad)
            .fails();
        assert_mentions(
            &line,
            &["password_min_length must be between 8 and 64", bad],
        );
    }
    let line = create(&env, "erin", "a perfectly good password")
        .env("GATEHOUSE_PASSWORD_MIN_LENGTH", "twelve")
        .fails();
    assert_mentions(&line, &["GATEHOUSE_PASSWORD_MIN_LENGTH", "whole number"]);
}
