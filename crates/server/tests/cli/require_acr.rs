//! `gatehouse clients create|update --require-acr LEVEL`: the operator's
//! required authentication level for a client, shown as `require_acr`,
//! removed with `none`, and out of reach of dynamic registration (neither
//! /register nor an RFC 7592 update sets or clears it).

use serde_json::{json, Value};

use crate::support::{assert_mentions, free_port, sqlite_env, Env};

both_backends!(clients_require_acr);

const MFA: &str = "urn:gatehouse:acr:mfa";
const PHR: &str = "urn:gatehouse:acr:phr";

fn client<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {list:#}"))
}

async fn clients_require_acr(env: &Env) {
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "Bank",
        "--redirect-uri",
        "https://bank.example/cb",
        "--require-acr",
        MFA,
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert_eq!(created["require_acr"], MFA);
    assert_eq!(env.json(&["clients", "show", &id])["require_acr"], MFA);
    assert_eq!(
        client(&env.json(&["clients", "list", "--json"]), &id)["require_acr"],
        MFA
    );

    // Other changes keep it; a new level replaces it; none removes it.
    let renamed = env.json(&["clients", "update", &id, "--name", "Bank 2"]);
    assert_eq!(renamed["require_acr"], MFA, "flags not given stay");
    let raised = env.json(&["clients", "update", &id, "--require-acr", PHR]);
    assert_eq!(raised["require_acr"], PHR);
    let cleared = env.json(&["clients", "update", &id, "--require-acr", "none"]);
    assert!(cleared.get("require_acr").is_none(), "{cleared:#}");
    assert!(env
        .json(&["clients", "show", &id])
        .get("require_acr")
        .is_none());

    // Without the flag (or with none) a client requires no level.
    let plain = env.json(&[
        "clients",
        "create",
        "--name",
        "Plain",
        "--redirect-uri",
        "https://plain.example/cb",
        "--require-acr",
        "none",
    ]);
    assert!(plain.get("require_acr").is_none(), "{plain:#}");

    // A wrong level: clap's error, listing the three levels; nothing changes.
    for bad in ["mfa", "urn:gatehouse:acr:MFA", "urn:gatehouse:acr:otp"] {
        let out = env
            .cmd(&["clients", "update", &id, "--require-acr", bad])
            .run();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert_mentions(
            &out.stderr,
            &[
                "--require-acr",
                bad,
                "urn:gatehouse:acr:pwd",
                MFA,
                PHR,
                "none",
            ],
        );
    }
    let out = env
        .cmd(&[
            "clients",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            "https://x.example/cb",
            "--require-acr",
            "high",
        ])
        .run();
    assert!(!out.status.success());
    assert_mentions(&out.stderr, &["authentication level", "high"]);
    assert_eq!(
        env.json(&["clients", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2,
        "no client was created"
    );
    assert!(env
        .json(&["clients", "show", &id])
        .get("require_acr")
        .is_none());
}

/// A dynamically registered client: /register ignores a `require_acr` in
/// its metadata, the operator sets one, and the client's own RFC 7592
/// update (which replaces all its metadata) keeps it.
#[tokio::test]
async fn registration_cannot_set_or_clear_require_acr() {
    let env = sqlite_env().await;
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let mut server = env
        .cmd(&["serve", "--listen", &listen, "--issuer", &issuer])
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    let token = env
        .cmd(&["--issuer", &issuer, "registration-token", "create"])
        .ok()
        .stdout
        .trim()
        .to_owned();

    let metadata = json!({
        "client_name": "Self-registered",
        "redirect_uris": ["https://rp.example/cb"],
        "require_acr": "urn:gatehouse:acr:pwd",
    });
    let r = server
        .http
        .post(server.url("/register"))
        .bearer_auth(&token)
        .json(&metadata)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let reg: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{reg:#}");
    let id = reg["client_id"].as_str().unwrap().to_owned();
    assert!(reg.get("require_acr").is_none(), "{reg:#}");
    let shown = env.json(&["--issuer", &issuer, "clients", "show", &id]);
    assert!(shown.get("require_acr").is_none(), "{shown:#}");

    let set = env.json(&[
        "--issuer",
        &issuer,
        "clients",
        "update",
        &id,
        "--require-acr",
        MFA,
    ]);
    assert_eq!(set["require_acr"], MFA);

    // RFC 7592 2.2: the client replaces its metadata (renaming itself).
    let mut update = metadata.clone();
    update["client_id"] = json!(id);
    update["client_name"] = json!("Renamed");
    let r = server
        .http
        .put(reg["registration_client_uri"].as_str().unwrap())
        .bearer_auth(reg["registration_access_token"].as_str().unwrap())
        .json(&update)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body:#}");
    let shown = env.json(&["--issuer", &issuer, "clients", "show", &id]);
    assert_eq!(shown["name"], "Renamed", "the update took effect");
    assert_eq!(shown["require_acr"], MFA, "and kept the operator's level");
    server.terminate();
}
