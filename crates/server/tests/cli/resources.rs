//! `gatehouse resources`: create, list, delete.

use std::fs;

use gatehouse_keys::{Alg, Kek};
use serde_json::Value;

use crate::support::{assert_mentions, resource_jwk, Env};

both_backends!(resources_create_list_delete);

async fn resources_create_list_delete(env: &Env) {
    let jwk = resource_jwk();
    fs::write(env.dir().join("api.jwk"), jwk.to_string()).unwrap();

    // A relative --jwk-file is read from the working directory.
    let created = env.json(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
    ]);
    assert_eq!(created["audience"], "https://api.example");
    assert_eq!(created["token_format"], "jwe");
    assert_eq!(created["signing_alg"], "ES256");
    let stored: Value =
        serde_json::from_str(created["encryption_jwk"].as_str().expect("encryption_jwk")).unwrap();
    assert_eq!(stored["x"], jwk["x"]);
    assert_eq!(stored["y"], jwk["y"]);
    assert!(stored.get("d").is_none());

    let opaque = env.json(&[
        "resources",
        "create",
        "--audience",
        "https://reports.example",
        "--jwk-file",
        "api.jwk",
        "--format",
        "opaque",
        "--scope",
        "reports.read",
    ]);
    assert_eq!(opaque["token_format"], "opaque");
    assert_eq!(opaque["scopes"], serde_json::json!(["reports.read"]));

    // A private key, a signing key, a missing file, a bad format, a duplicate.
    let mut private = jwk.clone();
    private["d"] = Value::from("8sq1YvHx0rGIbCB8m-mwgVB_GsoEBJHjHAOc-Oyf5-A");
    fs::write(env.dir().join("private.jwk"), private.to_string()).unwrap();
    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://other.example",
        "--jwk-file",
        "private.jwk",
    ]);
    assert_mentions(&line, &["private.jwk", "private"]);

    let sig = gatehouse_keys::generate(Alg::ES256, "sig-1", &Kek::generate()).unwrap();
    fs::write(env.dir().join("sig.jwk"), &sig.public_jwk).unwrap();
    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://other.example",
        "--jwk-file",
        "sig.jwk",
    ]);
    assert_mentions(&line, &["encryption key"]);

    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://other.example",
        "--jwk-file",
        "missing.jwk",
    ]);
    assert_mentions(&line, &["missing.jwk"]);

    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://other.example",
        "--jwk-file",
        "api.jwk",
        "--format",
        "paseto",
    ]);
    assert_mentions(&line, &["--format", "jwe", "opaque"]);

    let line = env.fails(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
    ]);
    assert_mentions(&line, &["https://api.example"]);

    let list = env.json(&["resources", "list", "--json"]);
    let mut auds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["audience"].as_str().unwrap())
        .collect();
    auds.sort_unstable();
    assert_eq!(auds, ["https://api.example", "https://reports.example"]);
    let table = env.cmd(&["resources", "list"]).ok().stdout;
    assert!(
        table.contains("https://reports.example") && table.contains("opaque"),
        "{table}"
    );

    assert_eq!(
        env.json(&["resources", "delete", "https://reports.example"]),
        serde_json::json!({ "deleted": "https://reports.example" })
    );
    let list = env.json(&["resources", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["audience"], "https://api.example");
    let line = env.fails(&["resources", "delete", "https://reports.example"]);
    assert_mentions(&line, &["https://reports.example"]);
}
