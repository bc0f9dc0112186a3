//! `gatehouse clients` and `registration-token`: create, show, list, delete, bad metadata refused, PKCE, registration policies.

use gatehouse_keys::Kek;
use serde_json::Value;

use crate::support::{assert_mentions, sqlite_env, Env};

both_backends!(
    clients_create_show_list_delete,
    clients_create_refuses_bad_metadata,
    registration_token_policy
);

fn assert_no_secret_fields(v: &Value) {
    let o = v.as_object().expect("a client is an object");
    for k in o.keys() {
        assert!(
            !k.contains("secret") && !k.contains("hash"),
            "field {k:?} must not be shown: {v:#}"
        );
    }
}

async fn clients_create_show_list_delete(env: &Env) {
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "https://app.example/cb",
    ]);
    let id = created["client_id"].as_str().expect("client_id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    assert!(!id.is_empty() && secret.len() >= 32, "{created:#}");
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["name"], "App");
    assert_eq!(
        created["redirect_uris"],
        serde_json::json!(["https://app.example/cb"])
    );
    assert_eq!(
        created["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert!(created.get("secret_hash").is_none(), "{created:#}");

    let shown_raw = env.cmd(&["clients", "show", &id]).ok().stdout;
    assert!(
        !shown_raw.contains(&secret),
        "the secret is shown once only"
    );
    let shown: Value = serde_json::from_str(&shown_raw).unwrap();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["grant_types"], created["grant_types"]);
    assert_no_secret_fields(&shown);

    // A public client gets no secret.
    let public = env.json(&[
        "clients",
        "create",
        "--name",
        "SPA",
        "--redirect-uri",
        "http://127.0.0.1:3000/cb",
        "--auth-method",
        "none",
    ]);
    assert_eq!(public["token_endpoint_auth_method"], "none");
    assert!(public.get("client_secret").is_none(), "{public:#}");
    let public_id = public["client_id"].as_str().unwrap().to_owned();

    // client_secret_jwt: a secret long enough for HS512, shown once, kept
    // sealed (never printed, not even sealed).
    let hmac = env.json(&[
        "clients",
        "create",
        "--name",
        "Service",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "client_secret_jwt",
        "--auth-signing-alg",
        "HS512",
    ]);
    assert_eq!(hmac["token_endpoint_auth_method"], "client_secret_jwt");
    assert_eq!(hmac["token_endpoint_auth_signing_alg"], "HS512");
    let hmac_secret = hmac["client_secret"].as_str().expect("client_secret");
    assert!(hmac_secret.len() >= 64, "{hmac:#}");
    let hmac_id = hmac["client_id"].as_str().unwrap().to_owned();
    let shown_raw = env.cmd(&["clients", "show", &hmac_id]).ok().stdout;
    assert!(!shown_raw.contains(hmac_secret));
    assert_no_secret_fields(&serde_json::from_str(&shown_raw).unwrap());
    assert_eq!(
        env.json(&["clients", "delete", &hmac_id]),
        serde_json::json!({ "deleted": hmac_id })
    );

    let list_raw = env.cmd(&["clients", "list", "--json"]).ok().stdout;
    assert!(!list_raw.contains(&secret));
    let list: Value = serde_json::from_str(&list_raw).unwrap();
    let mut ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![id.as_str(), public_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    list.as_array()
        .unwrap()
        .iter()
        .for_each(assert_no_secret_fields);

    let table = env.cmd(&["clients", "list"]).ok().stdout;
    assert!(
        table.contains(&id) && table.contains("https://app.example/cb"),
        "{table}"
    );

    assert_eq!(
        env.json(&["clients", "delete", &id]),
        serde_json::json!({ "deleted": id })
    );
    assert_mentions(&env.fails(&["clients", "show", &id]), &[&id]);
    assert_mentions(&env.fails(&["clients", "delete", &id]), &[&id]);
    assert_eq!(
        env.json(&["clients", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn clients_create_refuses_bad_metadata(env: &Env) {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--redirect-uri", "not a url"],
            &["not a url", "absolute URL"],
        ),
        (
            &["--redirect-uri", "http://evil.example/cb"],
            &["http://evil.example/cb", "https"],
        ),
        (
            &["--redirect-uri", "https://app.example/cb#top"],
            &["fragment"],
        ),
        (
            &[
                "--redirect-uri",
                "https://app.example/cb",
                "--grant-type",
                "password",
            ],
            &["grant type", "password", "authorization_code"],
        ),
        (
            &[
                "--redirect-uri",
                "https://app.example/cb",
                "--auth-method",
                "magic",
            ],
            &["auth method", "magic", "client_secret_basic"],
        ),
        (
            &[
                "--auth-method",
                "none",
                "--grant-type",
                "client_credentials",
            ],
            &["none", "client_credentials"],
        ),
        (
            &[
                "--grant-type",
                "client_credentials",
                "--auth-method",
                "client_secret_jwt",
                "--auth-signing-alg",
                "RS256",
            ],
            &["RS256", "client_secret_jwt", "HS256"],
        ),
        // The code grant (the default) needs somewhere to send the code.
        (&[], &["--redirect-uri"]),
    ];
    for (extra, needles) in cases {
        let mut args = vec!["clients", "create", "--name", "App"];
        args.extend_from_slice(extra);
        let line = env.fails(&args);
        assert_mentions(&line, needles);
    }
    // None of them left a client behind.
    assert_eq!(
        env.json(&["clients", "list", "--json"]),
        serde_json::json!([])
    );
}

/// `clients create|update --require-par [true|false]`: the flag alone means
/// true; stored and shown as `require_pushed_authorization_requests`;
/// false by default; update turns it off and on and keeps it when not
/// given; any other value is refused.
#[tokio::test]
async fn clients_require_par() {
    let env = sqlite_env().await;
    let base = [
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "https://app.example/cb",
    ];
    const FIELD: &str = "require_pushed_authorization_requests";
    let plain = env.json(&base);
    assert_eq!(plain[FIELD], false, "{plain:#}");
    let strict = env.json(&[&base[..], &["--require-par"]].concat());
    assert_eq!(strict[FIELD], true, "{strict:#}");
    let id = strict["client_id"].as_str().unwrap();
    assert_eq!(env.json(&["clients", "show", id])[FIELD], true);
    let updated = env.json(&["clients", "update", id, "--require-par", "false"]);
    assert_eq!(updated[FIELD], false, "{updated:#}");
    assert_eq!(env.json(&["clients", "show", id])[FIELD], false);
    let updated = env.json(&["clients", "update", id, "--require-par", "true"]);
    assert_eq!(updated[FIELD], true, "{updated:#}");
    // Another change keeps it.
    let renamed = env.json(&["clients", "update", id, "--name", "Renamed"]);
    assert_eq!(renamed[FIELD], true, "{renamed:#}");
    let out = env
        .cmd(&["clients", "update", id, "--require-par", "maybe"])
        .run();
    assert!(!out.status.success());
    assert!(out.stderr.contains("--require-par"), "{}", out.stderr);
    assert_eq!(env.json(&["clients", "show", id])[FIELD], true);
}

/// `clients create --require-pkce true|false`: stored and shown; false by
/// default; any other value is refused.
#[tokio::test]
async fn clients_create_require_pkce() {
    let env = sqlite_env().await;
    let base = [
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "https://app.example/cb",
    ];
    let strict = env.json(&[&base[..], &["--require-pkce", "true"]].concat());
    assert_eq!(strict["require_pkce"], true, "{strict:#}");
    let id = strict["client_id"].as_str().unwrap();
    assert_eq!(env.json(&["clients", "show", id])["require_pkce"], true);
    let relaxed = env.json(&[&base[..], &["--require-pkce", "false"]].concat());
    assert_eq!(relaxed["require_pkce"], false, "{relaxed:#}");
    assert_eq!(env.json(&base)["require_pkce"], false);
    // clap's usage error is its own, multi-line format.
    let out = env
        .cmd(&[&base[..], &["--require-pkce", "maybe"]].concat())
        .run();
    assert!(!out.status.success());
    assert!(out.stderr.contains("--require-pkce"), "{}", out.stderr);
    assert_eq!(
        env.json(&["clients", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// `registration-token create --scope ... --grant-type ...` stores the
/// policy with the token; without them the default policy.
async fn registration_token_policy(env: &Env) {
    use gatehouse_storage::{model::RegistrationPolicy, Store};
    let hasher = gatehouse_keys::SecretHasher::new(&Kek::from_base64url(&env.kek).unwrap());
    let with = env
        .cmd(&[
            "registration-token",
            "create",
            "--scope",
            "orders:read",
            "--grant-type",
            "client_credentials",
        ])
        .ok()
        .stdout;
    let plain = env.cmd(&["registration-token", "create"]).ok().stdout;
    let line = env.fails(&["registration-token", "create", "--grant-type", "implicit"]);
    assert_mentions(&line, &["implicit"]);
    let line = env.fails(&["registration-token", "create", "--scope", "a b"]);
    assert_mentions(&line, &["scope"]);
    // The device grant is never self-registered.
    let line = env.fails(&[
        "registration-token",
        "create",
        "--grant-type",
        "urn:ietf:params:oauth:grant-type:device_code",
    ]);
    assert_mentions(&line, &["device", "administrator"]);

    let store = Store::connect(&env.url).await.unwrap();
    assert_eq!(
        store
            .registration_token_policy(&hasher.hash(with.trim()))
            .await
            .unwrap(),
        Some(RegistrationPolicy {
            grant_types: vec![gatehouse_server::oauth::GrantType::ClientCredentials],
            scopes: vec!["orders:read".into()],
        })
    );
    assert_eq!(
        store
            .registration_token_policy(&hasher.hash(plain.trim()))
            .await
            .unwrap(),
        Some(RegistrationPolicy::default())
    );
    store.close().await.unwrap();
}
