//! `gatehouse bench`: measures what it names and leaves nothing behind.

use crate::support::Env;

both_backends!(bench_measures_and_cleans_up);

/// `gatehouse bench --json` measures every figure it names and leaves no
/// throwaway client or resource server behind.
async fn bench_measures_and_cleans_up(env: &Env) {
    let r = env.json(&["bench", "--seconds", "1", "--json"]);
    for size in [
        "id_token",
        "access_token_jwe_own",
        "access_token_jwe_resource_server",
        "access_token_opaque",
        "refresh_token",
        "session_cookie",
    ] {
        assert!(
            r["sizes_bytes"][size].as_u64().unwrap_or(0) > 20,
            "{size}: {r}"
        );
    }
    // The size targets: a user's token (openid profile email, with its
    // grant) and a client_credentials token with one short scope, both
    // encrypted to a resource server.
    let sizes = &r["sizes_bytes"];
    let user = sizes["access_token_jwe_resource_server"]
        .as_u64()
        .unwrap_or(0);
    let client = sizes["access_token_jwe_resource_server_client_credentials"]
        .as_u64()
        .unwrap_or(0);
    assert!((1..=1500).contains(&user), "user token: {user} bytes");
    assert!((1..=1300).contains(&client), "client token: {client} bytes");
    for (section, name) in [
        (
            "issuance_per_second",
            "raw_crypto_es256_sign_ecdh_es_encrypt",
        ),
        ("issuance_per_second", "jwe_resource_server_es256_ecdh_es"),
        ("issuance_per_second", "jwe_own_key"),
        ("issuance_per_second", "opaque_with_database_write"),
        ("check_per_second", "own_token_read_with_revocation_check"),
        ("check_per_second", "jwe_local_decrypt_and_verify"),
        ("check_per_second", "introspection_round_trip"),
        ("check_per_second", "session_lookup"),
        (
            "issuance_per_second",
            "jwe_resource_server_dpop_bound_with_proof_check",
        ),
        (
            "check_per_second",
            "own_dpop_bound_token_read_with_proof_check",
        ),
        ("check_per_second", "dpop_proof_check_without_replay_write"),
    ] {
        assert!(
            r[section][name]["rate"].as_f64().unwrap_or(0.0) > 0.0,
            "{name}: {r}"
        );
    }
    assert_eq!(
        env.json(&["clients", "list", "--json"]),
        serde_json::json!([])
    );
    assert_eq!(
        env.json(&["resources", "list", "--json"]),
        serde_json::json!([])
    );
}
