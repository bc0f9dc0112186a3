//! `serve --templates-dir` and `--assets-dir`, their environment variables
//! and config keys: a broken template or directory stops `serve` with one
//! line naming it; admin commands never read them; a good one is served.

use std::fs;

use crate::support::{assert_mentions, free_port, sqlite_env};

const LOGIN: &str = r#"{% extends "base.html" %}
{% block content %}<h1>Sign in to Example Corp</h1><img src="/assets/logo.svg" alt="Example Corp">
<form method="post" action="/login"><input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="tx" value="{% if tx %}{{ tx }}{% endif %}">
<input name="username" value="{{ username }}">{% if error %}{{ error }}{% endif %}</form>{% endblock content %}"#;

#[tokio::test]
async fn branding_options_are_checked_before_serving() {
    let env = sqlite_env().await;
    let templates = env.dir().join("templates");
    let assets = env.dir().join("assets");
    fs::create_dir(&templates).unwrap();
    fs::create_dir(&assets).unwrap();
    fs::write(
        templates.join("login.html"),
        LOGIN.replace("{{ username }}", "{{ user.name }}"),
    )
    .unwrap();
    let serve = ["serve", "--listen", "127.0.0.1:0"];

    // The flag, the environment variable and the config key say the same.
    let mut flag = serve.to_vec();
    flag.extend(["--templates-dir", "templates"]);
    let line = env.fails(&flag);
    assert_mentions(
        &line,
        &["templates_dir templates", "login.html", "user.name"],
    );
    let line = env
        .cmd(&serve)
        .env("GATEHOUSE_TEMPLATES_DIR", "templates")
        .fails();
    assert_mentions(&line, &["login.html", "user.name"]);
    fs::write(
        env.dir().join("branding.toml"),
        "templates_dir = \"templates\"\nassets_dir = \"assets\"\n",
    )
    .unwrap();
    let mut config = vec!["--config", "branding.toml"];
    config.extend(serve);
    let line = env.fails(&config);
    assert_mentions(&line, &["login.html", "user.name"]);
    // Only `serve` renders pages: an admin command with the same config
    // works, and the flags are `serve`'s alone.
    env.json(&["--config", "branding.toml", "users", "list", "--json"]);
    let out = env
        .cmd(&["users", "list", "--templates-dir", "templates"])
        .run();
    assert!(!out.status.success());
    assert!(out.stderr.contains("--templates-dir"), "{}", out.stderr);

    // A name that is no template's.
    fs::write(templates.join("login.html"), LOGIN).unwrap();
    fs::write(templates.join("signin.html"), LOGIN).unwrap();
    let line = env.fails(&flag);
    assert_mentions(&line, &["signin.html", "not one of Gatehouse's templates"]);
    fs::remove_file(templates.join("signin.html")).unwrap();

    // The assets directory: missing, or holding what the stylesheet hides.
    let mut missing = serve.to_vec();
    missing.extend(["--assets-dir", "no-such-assets"]);
    assert_mentions(&env.fails(&missing), &["assets_dir", "no-such-assets"]);
    fs::write(assets.join("gatehouse.css"), "body{}").unwrap();
    let line = env
        .cmd(&serve)
        .env("GATEHOUSE_ASSETS_DIR", "assets")
        .fails();
    assert_mentions(&line, &["assets_dir", "gatehouse.css", "templates_dir"]);
    fs::remove_file(assets.join("gatehouse.css")).unwrap();

    // Good ones are served.
    fs::write(
        assets.join("logo.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    fs::write(templates.join("gatehouse.css"), "body{color:#0f766e}").unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let issuer = format!("http://{listen}");
    let mut server = env
        .cmd(&[
            "serve",
            "--listen",
            &listen,
            "--issuer",
            &issuer,
            "--templates-dir",
            "templates",
        ])
        .env("GATEHOUSE_ASSETS_DIR", "assets")
        .spawn_server(port, env.dir());
    server.wait_healthy().await;
    let r = server.http.get(server.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign in to Example Corp"));
    let r = server
        .http
        .get(server.url("/assets/gatehouse.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "body{color:#0f766e}");
    let r = server
        .http
        .get(server.url("/assets/logo.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(server.terminate().success());
}
