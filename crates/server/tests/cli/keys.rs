//! `gatehouse keys`: list, rotate, generate, revoke; a wrong key-encryption key is refused.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{assert_mentions, free_port, random_kek, Env};

both_backends!(keys_list_rotate_generate_revoke, wrong_kek_is_refused);

/// The algorithms Gatehouse keeps an active and a next key for by default
/// (`signing_algs` RS256 and ES256, and the own encryption key).
const OWN_ALGS: [&str; 3] = ["RS256", "ES256", "ECDH-ES+A256KW"];

/// `(alg, state) -> kids` of a `keys list --json` output.
fn key_states(list: &Value) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for k in list.as_array().expect("keys list --json is an array") {
        out.entry((
            k["alg"].as_str().unwrap().to_owned(),
            k["state"].as_str().unwrap().to_owned(),
        ))
        .or_default()
        .push(k["kid"].as_str().unwrap().to_owned());
    }
    out
}

fn kids_in(list: &Value, alg: &str, state: &str) -> Vec<String> {
    key_states(list)
        .remove(&(alg.to_owned(), state.to_owned()))
        .unwrap_or_default()
}

fn the_one(list: &Value, alg: &str, state: &str) -> String {
    let kids = kids_in(list, alg, state);
    assert_eq!(
        kids.len(),
        1,
        "{alg} should have exactly one {state} key: {list:#}"
    );
    kids[0].clone()
}

fn state_of(list: &Value, kid: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not listed"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn keys_list_rotate_generate_revoke(env: &Env) {
    // First use generates an active and a next key per algorithm.
    let list = env.json(&["keys", "list", "--json"]);
    for alg in OWN_ALGS {
        the_one(&list, alg, "active");
        the_one(&list, alg, "next");
    }
    assert_eq!(
        list.as_array().unwrap().len(),
        2 * OWN_ALGS.len(),
        "{list:#}"
    );
    for k in list.as_array().unwrap() {
        let use_ = if k["alg"] == "ECDH-ES+A256KW" {
            "enc"
        } else {
            "sig"
        };
        assert_eq!(k["use"], use_, "{k}");
        assert!(k.get("sealed_private_key").is_none() && k.get("d").is_none());
    }
    // Opening the ring again changes nothing.
    assert_eq!(env.json(&["keys", "list", "--json"]), list);
    let table = env.cmd(&["keys", "list"]).ok().stdout;
    for alg in OWN_ALGS {
        assert!(table.contains(alg), "{alg} in:\n{table}");
    }

    // rotate --alg ES256: next → active, active → retired, a new next.
    let es_active = the_one(&list, "ES256", "active");
    let es_next = the_one(&list, "ES256", "next");
    let rotated = env.json(&["keys", "rotate", "--alg", "ES256"]);
    let r = rotated["rotated"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{rotated:#}");
    assert_eq!(r[0]["alg"], "ES256");
    assert_eq!(r[0]["activated"], es_next.as_str());
    assert_eq!(r[0]["retired"], es_active.as_str());
    let new_next = r[0]["next"].as_str().unwrap().to_owned();
    assert!(new_next != es_next && new_next != es_active);
    let after = env.json(&["keys", "list", "--json"]);
    assert_eq!(state_of(&after, &es_active), "retired");
    assert_eq!(state_of(&after, &es_next), "active");
    assert_eq!(state_of(&after, &new_next), "next");
    assert_eq!(the_one(&after, "ES256", "active"), es_next);
    assert_eq!(the_one(&after, "ES256", "next"), new_next);
    for alg in OWN_ALGS.iter().filter(|a| **a != "ES256") {
        for state in ["active", "next"] {
            assert_eq!(
                kids_in(&after, alg, state),
                kids_in(&list, alg, state),
                "{alg} {state}"
            );
        }
    }

    // rotate --use enc: only the encryption key.
    let before = after;
    let enc_active = the_one(&before, "ECDH-ES+A256KW", "active");
    let enc_next = the_one(&before, "ECDH-ES+A256KW", "next");
    let rotated = env.json(&["keys", "rotate", "--use", "enc"]);
    let r = rotated["rotated"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{rotated:#}");
    assert_eq!(r[0]["alg"], "ECDH-ES+A256KW");
    assert_eq!(r[0]["activated"], enc_next.as_str());
    assert_eq!(r[0]["retired"], enc_active.as_str());
    let after = env.json(&["keys", "list", "--json"]);
    assert_eq!(state_of(&after, &enc_active), "retired");
    assert_eq!(the_one(&after, "ECDH-ES+A256KW", "active"), enc_next);
    for alg in OWN_ALGS.iter().filter(|a| **a != "ECDH-ES+A256KW") {
        for state in ["active", "next", "retired"] {
            assert_eq!(
                kids_in(&after, alg, state),
                kids_in(&before, alg, state),
                "{alg} {state}"
            );
        }
    }

    // generate --alg RS256: one more next key.
    let rs_next_before = kids_in(&after, "RS256", "next");
    let generated = env.json(&["keys", "generate", "--alg", "RS256"]);
    assert_eq!(generated["alg"], "RS256");
    assert_eq!(generated["state"], "next");
    let kid = generated["generated"].as_str().unwrap().to_owned();
    let after = env.json(&["keys", "list", "--json"]);
    let rs_next = kids_in(&after, "RS256", "next");
    assert_eq!(rs_next.len(), rs_next_before.len() + 1);
    assert!(rs_next.contains(&kid) && state_of(&after, &kid) == "next");

    // revoke the active ES256 key: the next one is promoted, with a warning.
    let ps_active = the_one(&after, "ES256", "active");
    let ps_next = the_one(&after, "ES256", "next");
    let out = env.cmd(&["keys", "revoke", &ps_active]).ok();
    let revoked: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(revoked["revoked"], ps_active.as_str());
    assert_eq!(revoked["was"], "active");
    assert_eq!(revoked["activated"], ps_next.as_str());
    assert!(revoked["next"].is_string());
    assert!(
        out.stderr.contains(&ps_active) && out.stderr.contains(&ps_next),
        "revoking an active key warns on stderr: {:?}",
        out.stderr
    );
    let after = env.json(&["keys", "list", "--json"]);
    assert_eq!(state_of(&after, &ps_active), "revoked");
    assert_eq!(the_one(&after, "ES256", "active"), ps_next);
    assert_eq!(
        the_one(&after, "ES256", "next"),
        revoked["next"].as_str().unwrap()
    );

    // Refusals.
    assert_mentions(
        &env.fails(&["keys", "revoke", "no-such-kid"]),
        &["no-such-kid"],
    );
    assert_mentions(
        &env.fails(&["keys", "revoke", &ps_active]),
        &[&ps_active, "revoked"],
    );
    for args in [
        &["keys", "generate", "--alg", "HS256"][..],
        &["keys", "rotate", "--alg", "HS256"][..],
    ] {
        assert_mentions(&env.fails(args), &["HS256", "RS256", "ES256"]);
    }
    // RSA-OAEP-256 exists only for resource servers' keys: a Gatehouse key of
    // it would never become active.
    assert_mentions(
        &env.fails(&["keys", "generate", "--alg", "RSA-OAEP-256"]),
        &["RSA-OAEP-256"],
    );
    // EdDSA and PS256 keys are kept only when signing_algs lists them.
    assert_mentions(
        &env.fails(&["keys", "generate", "--alg", "EdDSA"]),
        &["EdDSA", "signing_algs"],
    );
    assert_mentions(
        &env.fails(&["keys", "rotate", "--use", "both"]),
        &["both", "sig", "enc"],
    );
    assert_mentions(
        &env.fails(&["keys", "rotate", "--use", "sig", "--alg", "ECDH-ES+A256KW"]),
        &["ECDH-ES+A256KW", "enc", "sig"],
    );
    // ... and none of them changed anything.
    assert_eq!(env.json(&["keys", "list", "--json"]), after);
}

async fn wrong_kek_is_refused(env: &Env) {
    // Keys sealed under the environment's KEK...
    let list = env.json(&["keys", "list", "--json"]);
    // Active and next for RS256, ES256 (the default signing_algs) and the own encryption key.
    assert_eq!(list.as_array().unwrap().len(), 6);

    // ...cannot be opened with another one: a clear error, not garbage.
    let other = random_kek();
    let line = env
        .cmd(&["keys", "list", "--json"])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(&line, &["key-encryption key"]);
    let line = env
        .cmd(&["keys", "rotate"])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(&line, &["key-encryption key"]);

    // Disabling a user needs the keys (forced logout): with the wrong KEK it
    // fails before anything changes.
    env.cmd(&["users", "create", "--username", "alice", "--password-stdin"])
        .stdin("correct horse battery staple\n")
        .json();
    let line = env
        .cmd(&["users", "disable", "alice"])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(&line, &["key-encryption key"]);
    assert_eq!(
        env.json(&["users", "list", "--json"])[0]["disabled"],
        false,
        "a failed disable left the user as she was"
    );

    // A client secret hashed under the wrong KEK would never match at the
    // server: registration is refused rather than handing out a dead secret.
    let line = env
        .cmd(&[
            "clients",
            "create",
            "--name",
            "App",
            "--grant-type",
            "client_credentials",
        ])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(
        &line,
        &["key-encryption key", "GATEHOUSE_KEY_ENCRYPTION_KEY"],
    );
    assert_eq!(
        env.json(&["clients", "list", "--json"]),
        serde_json::json!([])
    );

    // The server refuses to start with it.
    let port = free_port();
    let line = env
        .cmd(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &format!("http://127.0.0.1:{port}"),
        ])
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", &other)
        .fails();
    assert_mentions(&line, &["key-encryption key"]);

    // The right KEK still works and nothing changed.
    assert_eq!(env.json(&["keys", "list", "--json"]), list);
}
