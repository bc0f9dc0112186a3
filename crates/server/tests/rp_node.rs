//! openid-client for Node (the most used certified relying-party library)
//! at its defaults against a real `gatehouse serve`, with a client made by
//! the real `gatehouse clients create` (default auth method
//! client_secret_basic; the library sends client_secret_post): discovery,
//! the code flow with PKCE, state and nonce, ID token validation, refresh,
//! introspection and revocation; once with a plain authorization URL, once
//! with a pushed authorization request (RFC 9126), once with the device
//! authorization grant (RFC 8628). The relying party is tests/rp-node/rp.mjs;
//! `.ci/run` installs it with `npm ci`. Outside CI the test skips loudly
//! when node or tests/rp-node/node_modules is missing; in CI it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use gatehouse_keys::Kek;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn rp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/rp-node")
}

/// Whether node and the installed library are there; if not, skip loudly
/// (or fail in CI, where `.ci/run` installs them).
fn node_ready() -> bool {
    let node = Command::new("node").arg("--version").output();
    let modules = rp_dir().join("node_modules/openid-client").is_dir();
    let ready = node.is_ok_and(|o| o.status.success()) && modules;
    if !ready {
        let msg = "node or tests/rp-node/node_modules is missing (run `npm ci` in tests/rp-node)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ready
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Serve(Child);
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gatehouse ARGS` with this test's database and KEK, no other GATEHOUSE_ variable.
fn gatehouse(db: &str, kek: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GATEHOUSE_") {
            cmd.env_remove(&k);
        }
    }
    cmd.args(args)
        .env("GATEHOUSE_LOG", "warn")
        .env("GATEHOUSE_DATABASE_URL", db)
        .env("GATEHOUSE_KEY_ENCRYPTION_KEY", kek);
    cmd
}

fn run_ok(mut cmd: Command, stdin: Option<&str>) -> String {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What a run of rp.mjs against a fresh `gatehouse serve` reported, and
/// the client `clients create` made for it.
struct Run {
    report: Value,
    created: Value,
    discovery: Value,
}

/// Starts `gatehouse serve` (with `serve_env` set) on a fresh database
/// with a user and a client made with `create_flags`, and runs rp.mjs in
/// `mode`.
async fn run_rp(mode: &str, create_flags: &[&str], serve_env: &[(&str, &str)]) -> Run {
    let dir = Dir(std::env::temp_dir().join(format!("gh-rp-node-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.0.join("gh.db").display());
    let kek = Kek::generate().to_base64url();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let redirect = "http://127.0.0.1:9/callback";

    run_ok(gatehouse(&db, &kek, &["migrate"]), None);
    run_ok(
        gatehouse(
            &db,
            &kek,
            &[
                "users",
                "create",
                "--username",
                "alice",
                "--email",
                "alice@example.com",
                "--email-verified",
                "--password-stdin",
            ],
        ),
        Some("correct horse battery staple\n"),
    );
    let create = [
        &[
            "clients",
            "create",
            "--name",
            "node rp",
            "--redirect-uri",
            redirect,
        ][..],
        create_flags,
    ]
    .concat();
    let created: Value =
        serde_json::from_str(&run_ok(gatehouse(&db, &kek, &create), None)).unwrap();
    assert_eq!(
        created["token_endpoint_auth_method"], "client_secret_basic",
        "the CLI default"
    );

    let mut serve = gatehouse(
        &db,
        &kek,
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &issuer,
        ],
    );
    serve.envs(serve_env.iter().copied());
    serve.stdout(Stdio::null()).stderr(Stdio::null());
    let _server = Serve(serve.spawn().unwrap());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{issuer}/readyz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let out = Command::new("node")
        .arg("rp.mjs")
        .current_dir(rp_dir())
        .env("ISSUER", &issuer)
        .env("CLIENT_ID", created["client_id"].as_str().unwrap())
        .env("CLIENT_SECRET", created["client_secret"].as_str().unwrap())
        .env("REDIRECT_URI", redirect)
        .env("USERNAME", "alice")
        .env("PASSWORD", "correct horse battery staple")
        .env("MODE", mode)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openid-client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        report: serde_json::from_slice(&out.stdout).unwrap(),
        created,
        discovery,
    }
}

/// What every run must show: sign-in, ID token with nonce, refresh,
/// introspection and revocation, all checked by the library.
fn assert_complete(run: &Run) {
    let report = &run.report;
    assert_eq!(report["email"], "alice@example.com", "{report}");
    assert_eq!(report["nonce_checked"], true, "{report}");
    assert_eq!(report["refreshed"], true, "{report}");
    assert_eq!(report["introspection_active"], true, "{report}");
    assert_eq!(
        report["introspected_client"], run.created["client_id"],
        "{report}"
    );
    assert_eq!(report["userinfo_email"], "alice@example.com", "{report}");
    assert_eq!(report["revoked_refresh_active"], false, "{report}");
    assert_eq!(
        report["refresh_after_revocation"], "invalid_grant",
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_for_node_at_its_defaults() {
    if !node_ready() {
        return;
    }
    let run = run_rp("plain", &[], &[]).await;
    assert_complete(&run);
    assert_eq!(run.report["mode"], "plain");
}

/// The library's `buildAuthorizationUrlWithPAR`: it pushes the request to
/// the endpoint discovery names (authenticating as at the token endpoint)
/// and sends the browser with client_id and request_uri only. The client
/// is created with `--require-par` and the server requires pushing
/// (`GATEHOUSE_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_for_node_with_par() {
    if !node_ready() {
        return;
    }
    let run = run_rp(
        "par",
        &["--require-par"],
        &[("GATEHOUSE_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS", "true")],
    )
    .await;
    assert_eq!(run.created["require_pushed_authorization_requests"], true);
    assert_eq!(run.discovery["require_pushed_authorization_requests"], true);
    assert_complete(&run);
    let report = &run.report;
    assert_eq!(report["mode"], "par", "{report}");
    assert_eq!(
        report["sent_parameters"],
        serde_json::json!(["client_id", "request_uri"]),
        "{report}"
    );
    assert_eq!(
        report["pushed_authorization_request_endpoint"],
        run.discovery["pushed_authorization_request_endpoint"],
        "{report}"
    );
}

/// The library's own DPoP (RFC 9449) with PAR, at its defaults, against a
/// server that requires pushing and DPoP nonces: the proof at the pushed
/// request binds the code; the code and refresh grants answer DPoP-bound
/// tokens; userinfo takes the bound token with its proof; introspection
/// shows the binding. The library answers `use_dpop_nonce` itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_for_node_with_par_and_dpop() {
    if !node_ready() {
        return;
    }
    let run = run_rp(
        "par-dpop",
        &["--require-par", "--dpop-bound"],
        &[
            ("GATEHOUSE_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS", "true"),
            ("GATEHOUSE_DPOP_NONCE", "true"),
        ],
    )
    .await;
    assert_eq!(run.created["dpop_bound_access_tokens"], true);
    assert_complete(&run);
    let report = &run.report;
    assert_eq!(report["mode"], "par-dpop", "{report}");
    assert_eq!(report["token_type"], "dpop", "{report}");
    assert_eq!(report["refreshed_token_type"], "dpop", "{report}");
    assert_eq!(report["introspected_token_type"], "DPoP", "{report}");
    assert!(report["introspected_cnf_jkt"].is_string(), "{report}");
    assert_eq!(
        run.discovery["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
}

/// The library's device authorization grant (RFC 8628):
/// `initiateDeviceAuthorization` at the endpoint discovery names, the user
/// agent at `verification_uri_complete` (the code prefilled, confirmed,
/// sign-in, the consent page), `pollDeviceAuthorizationGrant` waiting the
/// interval between polls; then the same refresh, userinfo,
/// introspection and revocation as the code flow. The client is made with
/// `--grant-type urn:ietf:params:oauth:grant-type:device_code`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_for_node_with_the_device_flow() {
    if !node_ready() {
        return;
    }
    let run = run_rp(
        "device",
        &[
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:device_code",
            "--grant-type",
            "refresh_token",
        ],
        &[],
    )
    .await;
    assert_complete(&run);
    let report = &run.report;
    assert_eq!(report["mode"], "device");
    assert_eq!(report["device_interval"], 5, "{report}");
    let code = report["device_user_code"].as_str().unwrap();
    assert!(
        code.len() == 9 && code.chars().nth(4) == Some('-'),
        "{report}"
    );
    assert_eq!(
        run.discovery["device_authorization_endpoint"],
        format!(
            "{}/device_authorization",
            run.discovery["issuer"].as_str().unwrap()
        )
    );
}
