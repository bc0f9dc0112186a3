//! Token exchange from the command line: a client given the grant type
//! (`clients create --grant-type urn:ietf:params:oauth:grant-type:token-exchange`,
//! refused for a public client) and `resources create|update
//! --allow-exchange-from`, a list flag like `--client`.

use std::fs;

use crate::support::{assert_mentions, resource_jwk, Env};

both_backends!(exchange_grant_and_allowances);

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

async fn exchange_grant_and_allowances(env: &Env) {
    let service = |name: &str| {
        env.json(&[
            "clients",
            "create",
            "--name",
            name,
            "--grant-type",
            TOKEN_EXCHANGE,
        ])["client_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let b = service("B");
    let c = service("C");
    assert_eq!(
        env.json(&["clients", "show", &b])["grant_types"],
        serde_json::json!([TOKEN_EXCHANGE])
    );
    let line = env.fails(&[
        "clients",
        "create",
        "--name",
        "Public",
        "--auth-method",
        "none",
        "--grant-type",
        TOKEN_EXCHANGE,
    ]);
    assert_mentions(&line, &["public client", TOKEN_EXCHANGE]);

    fs::write(env.dir().join("api.jwk"), resource_jwk().to_string()).unwrap();
    let api = env.json(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
        "--allow-exchange-from",
        &b,
        "--allow-exchange-from",
        &c,
    ]);
    assert_eq!(api["allow_exchange_from"], serde_json::json!([b, c]));
    assert_eq!(api["clients"], serde_json::json!([]), "its own list");

    // Replaced by the flags given, kept when not given, emptied by ''.
    let api = env.json(&[
        "resources",
        "update",
        "https://api.example",
        "--allow-exchange-from",
        &c,
    ]);
    assert_eq!(api["allow_exchange_from"], serde_json::json!([c]));
    let api = env.json(&["resources", "update", "https://api.example", "--client", &b]);
    assert_eq!(api["allow_exchange_from"], serde_json::json!([c]));
    let list = env.json(&["resources", "list", "--json"]);
    assert_eq!(list[0]["allow_exchange_from"], serde_json::json!([c]));
    let line = env.fails(&[
        "resources",
        "update",
        "https://api.example",
        "--allow-exchange-from",
        "ghost",
    ]);
    assert_mentions(&line, &["--allow-exchange-from", "ghost"]);
    let api = env.json(&[
        "resources",
        "update",
        "https://api.example",
        "--allow-exchange-from",
        "",
    ]);
    assert_eq!(api["allow_exchange_from"], serde_json::json!([]));
    assert_eq!(api["clients"], serde_json::json!([b]));
}
