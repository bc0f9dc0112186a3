//! Logs never carry secrets.

use std::{fs, path::PathBuf};

use gatehouse_testkit::db::DbKind;
use serde_json::Value;

use crate::support::{free_port, Env};

/// The value of a hidden form field.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).map(|i| i + marker.len()).unwrap_or(0);
    let rest = &html[start..];
    rest[..rest.find('"').unwrap_or(0)]
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
        .replace("&#x3D;", "=")
}

/// Runs a whole login, code flow, refresh, introspection and a failed login
/// against a server logging at debug level, then searches its log for every
/// secret that crossed it: the password, the client secret, the code,
/// every token and the key-encryption key.
#[tokio::test]
async fn logs_never_contain_secrets() {
    let env = Env::new(DbKind::Sqlite).await.unwrap();
    let password = "S3cret-Pa55word-xyz";
    let wrong = "Wr0ng-Pa55word-abc";
    env.cmd(&["users", "create", "--username", "grace", "--password-stdin"])
        .stdin(&format!("{password}\n"))
        .ok();
    let redirect = "http://127.0.0.1:9/cb";
    let client = env.json(&[
        "clients",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        redirect,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
    ]);
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut server = env
        .cmd(&[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &issuer,
        ])
        .env("GATEHOUSE_LOG", "debug")
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let loc = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();
    let abs = |l: String| {
        if l.starts_with('/') {
            format!("{issuer}{l}")
        } else {
            l
        }
    };

    // A failed login first.
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf");
    let r = browser
        .post(server.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "grace"),
            ("password", wrong),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The code flow: authorize -> login -> authorize -> consent -> authorize -> redirect.
    let verifier = "v".repeat(50);
    let challenge = "CrlVwe1WSHWuTQYh3iczmx3aS-faRx6C92k9_hNxl4A"; // S256 of 50 x 'v'
    let start = format!(
        "{issuer}/authorize?client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid%20offline_access&state=s&code_challenge={challenge}&code_challenge_method=S256"
    );
    let r = browser.get(&start).send().await.unwrap();
    let login = abs(loc(&r));
    let html = browser
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(server.url("/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("username", "grace"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = browser.get(abs(loc(&r))).send().await.unwrap();
    let html = browser
        .get(abs(loc(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = browser
        .post(server.url("/consent"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("tx", hidden(&html, "tx").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let r = browser.get(abs(loc(&r))).send().await.unwrap();
    let back = loc(&r);
    assert!(back.starts_with(redirect), "{back}");
    let code = back
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    let token = |form: Vec<(&'static str, String)>| {
        let (http, url, id, secret) = (
            server.http.clone(),
            server.url("/token"),
            id.clone(),
            secret.clone(),
        );
        async move {
            let r = http
                .post(url)
                .basic_auth(&id, Some(&secret))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let t = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", redirect.into()),
        ("code_verifier", verifier),
    ])
    .await;
    let t2 = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", t["refresh_token"].as_str().unwrap().into()),
    ])
    .await;
    let r = server
        .http
        .post(server.url("/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", t2["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    let status = server.terminate();
    assert!(status.success());

    let log = fs::read_to_string(env.dir().join(server_log_name(&env))).unwrap_or_default();
    assert!(
        log.contains("login failed") && log.contains("login succeeded"),
        "the log is really at debug level:\n{log}"
    );
    let mut secrets = vec![
        password.to_owned(),
        wrong.to_owned(),
        secret.clone(),
        code.clone(),
        env.kek.clone(),
    ];
    for t in [&t, &t2] {
        for k in ["access_token", "refresh_token", "id_token"] {
            if let Some(v) = t[k].as_str() {
                secrets.push(v.to_owned());
                // Also any 40-character piece of it (a token split across fields).
                secrets.push(v.chars().skip(v.len() / 2).take(40).collect());
            }
        }
    }
    for s in secrets {
        assert!(
            !log.contains(&s),
            "the log contains a secret ({} chars)",
            s.len()
        );
    }
}

/// The stderr file of the only server a test started in `env`.
fn server_log_name(env: &Env) -> PathBuf {
    fs::read_dir(env.dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .find(|n| {
            n.to_string_lossy().starts_with("serve-") && n.to_string_lossy().ends_with(".stderr")
        })
        .map(PathBuf::from)
        .unwrap_or_default()
}
