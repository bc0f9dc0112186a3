//! `gatehouse migrate`: JSON output, idempotent.

use serde_json::Value;

use crate::support::Env;

both_backends!(migrate_prints_json_and_is_idempotent);

async fn migrate_prints_json_and_is_idempotent(env: &Env) {
    let first = env.json(&["migrate"]);
    let applied = first["applied"].as_array().expect("applied is an array");
    assert!(
        !applied.is_empty(),
        "a fresh database has migrations to apply: {first}"
    );
    assert!(applied.iter().all(Value::is_string), "{first}");

    let again = env.json(&["migrate"]);
    assert_eq!(again, serde_json::json!({ "applied": [] }));

    // The schema is there: an admin command works on it.
    assert_eq!(
        env.json(&["users", "list", "--json"]),
        serde_json::json!([])
    );
}
