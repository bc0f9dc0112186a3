//! `gatehouse serve`: a running server sees admin changes; it waits for a database that is down.

use std::{
    fs,
    time::{Duration, Instant},
};

use gatehouse_testkit::pg_server;
use serde_json::Value;

use crate::support::{assert_mentions, assert_no_panic, free_port, resource_jwk, sqlite_env, Env};

both_backends!(running_server_sees_admin_changes);

async fn running_server_sees_admin_changes(env: &Env) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let mut server = env
        .cmd(&["serve", "--listen", &listen, "--issuer", &issuer])
        .spawn_server(port, env.dir());
    server.wait_healthy().await;

    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(discovery["jwks_uri"], format!("{issuer}/jwks").as_str());
    assert_eq!(
        discovery["token_endpoint"],
        format!("{issuer}/token").as_str()
    );

    // Rotate with the admin CLI; the running server publishes the new next key.
    let before = server.jwks_kids().await;
    let rotated = env.json(&["keys", "rotate", "--alg", "RS256"]);
    let r = &rotated["rotated"][0];
    assert_eq!(r["alg"], "RS256", "{rotated:#}");
    let new_next = r["next"].as_str().unwrap().to_owned();
    let retired = r["retired"].as_str().unwrap().to_owned();
    assert!(!before.contains(&new_next));
    assert!(before.contains(&retired));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = server.jwks_kids().await;
        if kids.contains(&new_next) {
            assert!(kids.contains(&retired), "a retired key stays published");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server's /jwks did not show {new_next} within 10 s: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A client registered while the server runs can use it at once.
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "Service",
        "--grant-type",
        "client_credentials",
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (status, body) = server.client_credentials(&id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0));
    let (status, body) = server.client_credentials(&id, "wrong-secret", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");

    // A resource server registered while it runs becomes a valid audience:
    // its token is a JWE (five parts).
    fs::write(env.dir().join("api.jwk"), resource_jwk().to_string()).unwrap();
    env.json(&[
        "resources",
        "create",
        "--audience",
        "https://api.example",
        "--jwk-file",
        "api.jwk",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server
            .client_credentials(&id, &secret, &[("resource", "https://api.example")])
            .await;
        if status == 200 {
            let token = body["access_token"].as_str().unwrap();
            assert_eq!(token.split('.').count(), 5, "a JWE: {token}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "resource not accepted within 10 s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An API-side client linked to the resource server may introspect its
    // tokens (RFC 7662 2.2).
    let auditor = env.json(&[
        "clients",
        "create",
        "--name",
        "Auditor",
        "--grant-type",
        "client_credentials",
    ]);
    let auditor_id = auditor["client_id"].as_str().unwrap().to_owned();
    let auditor_secret = auditor["client_secret"].as_str().unwrap().to_owned();
    env.json(&[
        "resources",
        "update",
        "https://api.example",
        "--client",
        &auditor_id,
    ]);
    let (_, body) = server
        .client_credentials(&id, &secret, &[("resource", "https://api.example")])
        .await;
    let api_token = body["access_token"].as_str().unwrap().to_owned();
    let introspect = |token: String| {
        let (http, url) = (server.http.clone(), server.url("/introspect"));
        let (aid, asec) = (auditor_id.clone(), auditor_secret.clone());
        async move {
            http.post(url)
                .basic_auth(aid, Some(asec))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while introspect(api_token.clone()).await["active"] != true {
        assert!(
            Instant::now() < deadline,
            "the linked client never saw the token active"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Deleting the client stops it within seconds and revokes its tokens
    // (as an RFC 7592 deletion does).
    env.json(&["clients", "delete", &id]);
    assert_eq!(
        introspect(api_token.clone()).await["active"],
        false,
        "a deleted client's token stays active"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = server.client_credentials(&id, &secret, &[]).await;
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a deleted client still got {status} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let log = server.log();
    let status = server.terminate();
    assert!(
        status.success(),
        "serve exited with {status} on SIGTERM:\n{log}"
    );
    assert_no_panic("gatehouse serve", &log);
}

/// `serve --wait-for-database` started while PostgreSQL is down (a private
/// server of this test's own, see `pg_server.rs`): it listens at once,
/// `/healthz` 200 and `/readyz` 503, logs one line per attempt, and once
/// the database comes up turns ready and issues tokens. Without the flag
/// (and when the wait runs out) it exits with the one-line error.
#[tokio::test]
async fn serve_waits_for_the_database() {
    let Some(pg) = pg_server::PgServer::init() else {
        return;
    };
    let env = Env::on_url(pg.url());

    // Default: no waiting, the one-line error at once.
    let started = Instant::now();
    let line = env.fails(&["serve", "--listen", &format!("127.0.0.1:{}", free_port())]);
    assert_mentions(
        &line,
        &[
            "database unavailable",
            "cannot connect to PostgreSQL",
            &pg.url(),
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up at once"
    );

    // A wait that runs out: attempts logged, then the same error line last.
    let started = Instant::now();
    let out = env
        .cmd(&["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .env("GATEHOUSE_WAIT_FOR_DATABASE", "2")
        .run();
    assert!(!out.status.success(), "gave up after the wait");
    assert!(out.stdout.trim().is_empty());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(15),
        "waited {elapsed:?} for a 2 s wait"
    );
    let lines: Vec<&str> = out.stderr.trim().lines().collect();
    let last = lines.last().copied().unwrap_or("");
    assert!(last.starts_with("error: "), "{}", out.stderr);
    assert_mentions(
        last,
        &["database unavailable", "cannot connect to PostgreSQL"],
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{}",
        out.stderr
    );
    let attempts = lines
        .iter()
        .filter(|l| l.contains("cannot reach the database yet"))
        .count();
    assert!(attempts >= 2, "one line per attempt:\n{}", out.stderr);

    // The flag: started down, ready once the database is up.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = env
        .cmd(&["serve", "--listen", &listen, "--wait-for-database", "60"])
        .env("GATEHOUSE_LOG", "info")
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    let r = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503, "not ready while the database is down");
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "starting");
    let r = server
        .http
        .post(server.url("/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    // Let it fail a couple of attempts, then bring the database up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.start();
    let up = Instant::now();
    let deadline = up + Duration::from_secs(20);
    loop {
        let r = server.http.get(server.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 within 20 s of the database starting:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = server.log();
    assert!(
        log.lines()
            .filter(|l| l.contains("cannot reach the database yet"))
            .count()
            >= 2,
        "one line per attempt:\n{log}"
    );
    assert!(log.contains("reached the database"), "{log}");
    assert!(log.contains("gatehouse is serving"), "{log}");

    // The server migrated the database: the admin CLI can register a client
    // on it, which the server then serves.
    let created = env.json(&[
        "clients",
        "create",
        "--name",
        "Service",
        "--grant-type",
        "client_credentials",
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (status, body) = server.client_credentials(&id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    let log = server.log();
    let status = server.terminate();
    assert!(status.success(), "serve exited with {status}:\n{log}");
    assert_no_panic("gatehouse serve", &log);
    drop(pg);
}

/// The wait can come from the config file too; a negative one is refused.
#[tokio::test]
async fn wait_for_database_config_rules() {
    let env = sqlite_env().await;
    let file = env.dir().join("gatehouse.toml");
    fs::write(&file, "wait_for_database = -1\n").unwrap();
    let line = env.fails(&["--config", &file.to_string_lossy(), "serve"]);
    assert_mentions(&line, &["wait_for_database", "-1"]);
    let line = env
        .cmd(&["serve"])
        .env("GATEHOUSE_WAIT_FOR_DATABASE", "soon")
        .run();
    assert!(!line.status.success());
    assert!(
        line.stderr.contains("--wait-for-database"),
        "{}",
        line.stderr
    );
}
