//! Configuration: bad values are refused with one clear line; file, environment and flags take precedence in that order.

use std::{
    fs,
    time::{Duration, Instant},
};

use gatehouse_keys::Kek;
use serde_json::Value;

use crate::support::{assert_mentions, failure_line, free_port, sqlite_env};

#[tokio::test]
async fn config_bad_database_urls() {
    let env = sqlite_env().await;

    let line = env
        .cmd(&["migrate"])
        .env("GATEHOUSE_DATABASE_URL", "mysql://x")
        .fails();
    assert_mentions(&line, &["mysql://x", "sqlite://", "postgres://"]);
    // The flag says the same.
    let line = env.fails(&["--database-url", "mysql://x", "users", "list"]);
    assert_mentions(&line, &["mysql://x"]);

    let started = Instant::now();
    let line = env.fails(&[
        "--database-url",
        "postgres://postgres@127.0.0.1:1/nope",
        "migrate",
    ]);
    assert_mentions(&line, &["127.0.0.1:1"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up in time"
    );

    let missing = env.dir().join("no-such-dir").join("gatehouse.db");
    let line = env.fails(&[
        "--database-url",
        &format!("sqlite://{}", missing.display()),
        "users",
        "list",
    ]);
    assert_mentions(&line, &["no-such-dir", "cannot open"]);
    assert!(
        !missing.parent().unwrap().exists(),
        "no directory was created"
    );

    // A read-only database: mode=ro says so even for root.
    let ro_dir = env.dir().join("ro");
    fs::create_dir(&ro_dir).unwrap();
    let ro_file = ro_dir.join("gatehouse.db");
    env.cmd(&["migrate"])
        .env(
            "GATEHOUSE_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", ro_file.display()),
        )
        .ok();
    let line = env.fails(&[
        "--database-url",
        &format!("sqlite://{}?mode=ro", ro_file.display()),
        "users",
        "list",
    ]);
    assert_mentions(&line, &["not writable"]);

    // And a file and directory without write permission. Root ignores the
    // mode bits, so there (as in CI containers) this case is skipped.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ro_file, fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(&ro_dir, fs::Permissions::from_mode(0o555)).unwrap();
    let privileged = fs::OpenOptions::new().append(true).open(&ro_file).is_ok();
    let out = if privileged {
        None
    } else {
        Some(
            env.cmd(&["users", "list"])
                .env(
                    "GATEHOUSE_DATABASE_URL",
                    format!("sqlite://{}", ro_file.display()),
                )
                .run(),
        )
    };
    fs::set_permissions(&ro_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&ro_file, fs::Permissions::from_mode(0o644)).unwrap();
    match out {
        None => eprintln!(
            "SKIPPED: chmod 0444 does not stop this user (root) from writing; \
             the read-only case is covered by ?mode=ro above"
        ),
        Some(out) => {
            let line = failure_line(&out);
            assert_mentions(&line, &["gatehouse.db"]);
        }
    }
}

#[tokio::test]
async fn config_file_errors() {
    let env = sqlite_env().await;

    let line = env.fails(&["--config", "/nonexistent.toml", "migrate"]);
    assert_mentions(&line, &["/nonexistent.toml"]);
    // Through the environment too.
    let line = env
        .cmd(&["migrate"])
        .env("GATEHOUSE_CONFIG", "/nonexistent.toml")
        .fails();
    assert_mentions(&line, &["/nonexistent.toml"]);

    // Errors in reading the file name the file, its line and the key.
    let cases: &[(&str, &[&str])] = &[
        // An unknown key (a typo must not be ignored).
        (
            "issuer = \"http://127.0.0.1:8080\"\nlisten_addr = \"127.0.0.1:9\"\n",
            &["listen_addr", "line 2"],
        ),
        // Malformed TOML.
        ("issuer = [1\n", &["line ", "column "]),
        // A wrong type.
        (
            "access_token_ttl = \"soon\"\n",
            &["access_token_ttl", "line 1"],
        ),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let name = format!("bad-{i}.toml");
        fs::write(env.dir().join(&name), text).unwrap();
        let line = env.fails(&["--config", &name, "migrate"]);
        assert_mentions(&line, needles);
        assert_mentions(&line, &[&name]);
    }
    // Values checked after merging the layers name the setting.
    let cases: &[(&str, &[&str])] = &[
        ("access_token_ttl = -5\n", &["access_token_ttl", "-5"]),
        ("log_format = \"xml\"\n", &["xml", "text", "json"]),
        ("key_prepublish = 60\n", &["key_prepublish", "jwks_max_age"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let name = format!("invalid-{i}.toml");
        fs::write(env.dir().join(&name), text).unwrap();
        assert_mentions(&env.fails(&["--config", &name, "migrate"]), needles);
    }

    let line = env.fails(&["--log-format", "xml", "migrate"]);
    assert_mentions(&line, &["xml"]);
    let line = env.fails(&["serve", "--listen", "everywhere"]);
    assert_mentions(&line, &["everywhere", "HOST:PORT"]);
}

#[tokio::test]
async fn config_db_probe_interval() {
    let env = sqlite_env().await;
    for bad in ["0", "60001"] {
        let line = env
            .cmd(&["migrate"])
            .env("GATEHOUSE_DB_PROBE_INTERVAL_MS", bad)
            .fails();
        assert_mentions(&line, &["db_probe_interval_ms", "10 and 60000", bad]);
    }
    fs::write(env.dir().join("probe.toml"), "db_probe_interval_ms = 5\n").unwrap();
    let line = env.fails(&["--config", "probe.toml", "migrate"]);
    assert_mentions(&line, &["db_probe_interval_ms", "got 5"]);
    // The flag beats the file.
    env.json(&[
        "--config",
        "probe.toml",
        "--db-probe-interval-ms",
        "100",
        "migrate",
    ]);
}

#[tokio::test]
async fn config_precedence_file_env_flag() {
    let env = sqlite_env().await;

    // The file is honoured: its non-loopback http issuer is refused...
    fs::write(
        env.dir().join("gatehouse.toml"),
        "issuer = \"http://file.example.com\"\n",
    )
    .unwrap();
    let line = env.fails(&["--config", "gatehouse.toml", "migrate"]);
    assert_mentions(&line, &["http://file.example.com"]);
    // ...the environment beats the file...
    let line = env
        .cmd(&["--config", "gatehouse.toml", "migrate"])
        .env("GATEHOUSE_ISSUER", "http://env.example.com")
        .fails();
    assert_mentions(&line, &["http://env.example.com"]);
    // ...and the flag beats both.
    env.cmd(&[
        "--config",
        "gatehouse.toml",
        "--issuer",
        "http://127.0.0.1:9",
        "migrate",
    ])
    .env("GATEHOUSE_ISSUER", "http://env.example.com")
    .json();

    // A server: listen comes from the file, the issuer from the flag.
    let port = free_port();
    fs::write(
        env.dir().join("server.toml"),
        format!("listen = \"127.0.0.1:{port}\"\nissuer = \"http://127.0.0.1:1\"\n"),
    )
    .unwrap();
    let issuer = format!("http://localhost:{port}");
    let mut server = env
        .cmd(&["serve", "--config", "server.toml", "--issuer", &issuer])
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["issuer"], issuer.as_str());
    let status = server.terminate();
    assert!(status.success(), "{status}");

    // The --listen flag beats the file's listen.
    fs::write(env.dir().join("listen.toml"), "listen = \"nowhere\"\n").unwrap();
    let line = env.fails(&["serve", "--config", "listen.toml"]);
    assert_mentions(&line, &["nowhere"]);
    let port = free_port();
    let mut server = env
        .cmd(&[
            "serve",
            "--config",
            "listen.toml",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &format!("http://127.0.0.1:{port}"),
        ])
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    assert!(server.terminate().success());
}

#[tokio::test]
async fn config_issuer_rules() {
    let env = sqlite_env().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");

    let line = env.fails(&[
        "serve",
        "--listen",
        &listen,
        "--issuer",
        "http://login.example.com",
    ]);
    assert_mentions(&line, &["http://login.example.com", "https", "loopback"]);
    let line = env.fails(&["--issuer", "http://login.example.com", "users", "list"]);
    assert_mentions(&line, &["https"]);
    let line = env.fails(&["--issuer", "https://login.example.com/?x=1", "migrate"]);
    assert_mentions(&line, &["query"]);
    let line = env.fails(&["--issuer", "login.example.com", "migrate"]);
    assert_mentions(&line, &["login.example.com", "absolute URL"]);
    // The refused server never listened.
    assert!(std::net::TcpListener::bind(&listen).is_ok());
}

#[tokio::test]
async fn config_key_encryption_key_rules() {
    let env = sqlite_env().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");

    // An https (production) issuer needs a KEK.
    let line = env
        .cmd(&[
            "serve",
            "--listen",
            &listen,
            "--issuer",
            "https://login.example.com",
        ])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .fails();
    assert_mentions(
        &line,
        &["GATEHOUSE_KEY_ENCRYPTION_KEY", "--key-encryption-key-file"],
    );
    let line = env
        .cmd(&["--issuer", "https://login.example.com", "keys", "list"])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .fails();
    assert_mentions(&line, &["GATEHOUSE_KEY_ENCRYPTION_KEY"]);

    // A malformed KEK is refused, even where none would be needed.
    let short = Kek::generate().to_base64url()[..40].to_owned();
    for bad in ["not a key!", "c2hvcnQ", short.as_str()] {
        let line = env
            .cmd(&["keys", "list"])
            .env("GATEHOUSE_KEY_ENCRYPTION_KEY", bad)
            .fails();
        assert_mentions(&line, &["GATEHOUSE_KEY_ENCRYPTION_KEY", "32 bytes"]);
        assert!(!line.contains(bad), "the key itself is not echoed: {line}");
    }

    // A KEK file: missing, malformed, or good.
    let line = env
        .cmd(&["--issuer", "https://login.example.com", "keys", "list"])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY_FILE", "missing.kek")
        .fails();
    assert_mentions(&line, &["missing.kek"]);
    fs::write(env.dir().join("bad.kek"), "garbage\n").unwrap();
    let line = env
        .cmd(&["--key-encryption-key-file", "bad.kek", "keys", "list"])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .fails();
    assert_mentions(&line, &["bad.kek", "32 bytes"]);
    fs::write(env.dir().join("good.kek"), format!("{}\n", env.kek)).unwrap();
    let via_file = env
        .cmd(&[
            "--issuer",
            "https://login.example.com",
            "--key-encryption-key-file",
            "good.kek",
            "keys",
            "list",
            "--json",
        ])
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .json();
    // The same KEK as in the environment: the keys open either way.
    assert_eq!(env.json(&["keys", "list", "--json"]), via_file);
}

#[tokio::test]
async fn config_loopback_issuer_generates_a_development_kek() {
    let env = sqlite_env().await;
    // All defaults: sqlite://gatehouse.db in the working directory, loopback issuer, no KEK.
    let dev = |args: &[&str]| {
        env.cmd(args)
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
    };
    let out = dev(&["keys", "list", "--json"]).ok();
    let first: Value = serde_json::from_str(&out.stdout).unwrap();
    // Active and next for RS256, ES256 (the default signing_algs) and the own encryption key.
    assert_eq!(first.as_array().unwrap().len(), 6);
    let kek_file = env.dir().join("gatehouse.db.kek");
    assert!(env.dir().join("gatehouse.db").is_file());
    assert!(kek_file.is_file(), "gatehouse.db.kek beside the database");
    assert_mentions(&out.stderr, &["DEVELOPMENT ONLY", "gatehouse.db.kek"]);
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no colour codes in a piped log: {:?}",
        out.stderr
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&kek_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the KEK file is private");
    let text = fs::read_to_string(&kek_file).unwrap();
    assert!(Kek::from_base64url(&text).is_ok(), "a valid KEK: {text:?}");

    // The next run reuses it silently and opens the same keys.
    let out = dev(&["keys", "list", "--json"]).ok();
    assert!(!out.stderr.contains("DEVELOPMENT"), "{}", out.stderr);
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap(), first);
    assert_eq!(fs::read_to_string(&kek_file).unwrap(), text);

    // And it is the KEK: the same file given explicitly works too.
    let explicit = env
        .cmd(&[
            "--key-encryption-key-file",
            "gatehouse.db.kek",
            "keys",
            "list",
            "--json",
        ])
        .env_remove("GATEHOUSE_DATABASE_URL")
        .env_remove("GATEHOUSE_KEY_ENCRYPTION_KEY")
        .json();
    assert_eq!(explicit, first);
}

/// Access tokens live at most a day: the day keys of own tokens and sealed
/// references open for a day either side, and revocation entries last a day.
#[tokio::test]
async fn access_token_ttl_is_capped_at_a_day() {
    let env = sqlite_env().await;
    let file = env.dir().join("gatehouse.toml");
    fs::write(&file, "access_token_ttl = 172800\n").unwrap();
    let line = env.fails(&["--config", &file.to_string_lossy(), "serve"]);
    assert_mentions(&line, &["access_token_ttl", "86400", "172800"]);
}
