//! `gatehouse clients update` and `resources update`: the same flags as create.

use std::fs;

use crate::support::{assert_mentions, resource_jwk, Env};

both_backends!(clients_and_resources_update);

/// `clients update` and `resources update`: the same flags as create; only
/// the flags given change, a list flag replaces the list, an empty value
/// empties it; the secret stays; bad values are refused with one line.
async fn clients_and_resources_update(env: &Env) {
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "https://app.example/cb",
        "--scope",
        "orders:read",
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"], serde_json::json!(["orders:read"]));

    let updated = env.json(&[
        "clients",
        "update",
        &id,
        "--scope",
        "orders:write",
        "--scope",
        "orders:audit",
        "--access-token-ttl",
        "120",
    ]);
    assert_eq!(updated["client_id"], id.as_str());
    assert!(updated.get("client_secret").is_none(), "{updated:#}");
    assert_eq!(
        updated["scopes"],
        serde_json::json!(["orders:write", "orders:audit"])
    );
    assert_eq!(updated["access_token_lifetime"], 120);
    assert_eq!(updated["name"], "App", "flags not given stay");
    assert_eq!(
        updated["redirect_uris"],
        serde_json::json!(["https://app.example/cb"])
    );
    let cleared = env.json(&["clients", "update", &id, "--scope", "", "--name", "App 2"]);
    assert_eq!(cleared["scopes"], serde_json::json!([]));
    assert_eq!(cleared["name"], "App 2");
    let mut stored = cleared.clone();
    stored.as_object_mut().unwrap().remove("client_id");
    assert_eq!(env.json(&["clients", "show", &id]), stored);

    let line = env.fails(&[
        "clients",
        "update",
        &id,
        "--redirect-uri",
        "http://app.example/cb",
    ]);
    assert_mentions(&line, &["https"]);
    let line = env.fails(&["clients", "update", &id, "--auth-method", "none"]);
    assert_mentions(&line, &["token_endpoint_auth_method", "cannot change"]);
    let line = env.fails(&["clients", "update", "no-such-client", "--name", "X"]);
    assert_mentions(&line, &["no-such-client"]);
    assert_eq!(
        env.json(&["clients", "show", &id]),
        stored,
        "failed updates change nothing"
    );

    fs::write(env.dir().join("api.jwk"), resource_jwk().to_string()).unwrap();
    let api = env.json(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
        "--scope",
        "orders:read",
        "--client",
        &id,
    ]);
    assert_eq!(api["clients"], serde_json::json!([id]));
    let line = env.fails(&["resources", "create", "--audience", "https://x.example"]);
    assert_mentions(&line, &["--jwk-file"]);

    let api = env.json(&[
        "resources",
        "update",
        "https://api.example",
        "--scope",
        "orders:read",
        "--scope",
        "orders:write",
        "--format",
        "opaque",
    ]);
    assert_eq!(
        api["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );
    assert_eq!(api["token_format"], "opaque");
    assert_eq!(
        api["clients"],
        serde_json::json!([id]),
        "flags not given stay"
    );
    let api = env.json(&["resources", "update", "https://api.example", "--client", ""]);
    assert_eq!(api["clients"], serde_json::json!([]));
    let line = env.fails(&[
        "resources",
        "update",
        "https://api.example",
        "--client",
        "ghost",
    ]);
    assert_mentions(&line, &["ghost"]);
    let line = env.fails(&[
        "resources",
        "update",
        "https://api.example",
        "--scope",
        "openid",
    ]);
    assert_mentions(&line, &["openid"]);
    let line = env.fails(&[
        "resources",
        "update",
        "https://nope.example",
        "--format",
        "jwe",
    ]);
    assert_mentions(&line, &["https://nope.example"]);
    let list = env.json(&["resources", "list", "--json"]);
    assert_eq!(list[0]["clients"], serde_json::json!([]));
    assert_eq!(list[0]["token_format"], "opaque");
}
