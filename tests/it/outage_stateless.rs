//! What keeps working while the database is away, against a private
//! PostgreSQL server stopped for real (see `outage.rs`):
//!
//! - client_credentials JWE access tokens go on being issued from the
//!   status-list indices each instance reserved ahead, far beyond one
//!   block of 1,024, with no index handed out twice across two instances;
//! - clients are served from the registry cache, and a client the cache
//!   does not know is answered 503, never `invalid_client`;
//! - private_key_jwt assertions are checked and their `jti` recorded in
//!   memory: a replay is refused during the outage and after it, at the
//!   instance that saw it and, once the database is back, at the others;
//! - introspection and userinfo answer from reads at most
//!   `outage_staleness_secs` old, then 503; never "active" from nothing.

use std::{
    collections::HashSet,
    ops::AsyncFnMut,
    time::{Duration, Instant},
};

use gatehouse_server::{clients::ClientSpec, config::RawConfig};
use sea_orm::sqlx::{self, Connection as _};
use serde_json::{json, Value};

use crate::{
    private_key_jwt::{assertion, keypair, token_with},
    support::{self, pg_server::PgServer, TestApp, TestClient},
};

/// Indices per list, and the block size of the fixed reservation this
/// replaces (gatehouse_server's LIST_BITS and BLOCK).
const LIST_BITS: i64 = 1 << 20;
const BLOCK: usize = 1024;
/// Tokens each instance issues before the outage: the last minute's rate
/// its spare indices follow.
const WARM_UP: usize = 1600;
/// Tokens each instance issues during the outage: more than a block.
const DURING: usize = 1500;
const _: () = assert!(DURING > BLOCK && DURING <= WARM_UP);

/// `n` client_credentials requests, eight at a time; the status and the
/// token of each.
async fn issue(app: &TestApp, c: &TestClient, n: usize) -> Vec<(u16, Option<String>)> {
    let mut tasks = Vec::new();
    for part in 0..8 {
        let (http, url, c) = (app.http.clone(), app.url("/token"), c.clone());
        let count = n / 8 + usize::from(part < n % 8);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..count {
                let r = http
                    .post(&url)
                    .basic_auth(&c.id, c.secret.as_deref())
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                out.push((status, body["access_token"].as_str().map(str::to_owned)));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// The global status-list index of a token addressed to Gatehouse itself.
fn status_index(app: &TestApp, token: &str) -> i64 {
    let v = app.state.keys.open_own_token(token).unwrap();
    let s = &v.claims["status"]["status_list"];
    let list: i64 = s["uri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    list * LIST_BITS + s["idx"].as_i64().unwrap()
}

/// Every request answered 200; the tokens' status indices.
fn indices(app: &TestApp, what: &str, answers: &[(u16, Option<String>)]) -> Vec<i64> {
    let failed: Vec<u16> = answers
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "{what}: {} not 200: {failed:?}",
        failed.len()
    );
    answers
        .iter()
        .map(|(_, t)| status_index(app, t.as_deref().unwrap()))
        .collect()
}

/// Waits (at most 10 s) until `ok` holds.
async fn eventually(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok().await {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready(app: &TestApp) -> bool {
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    r.status() == 200
}

async fn one_value(pg: &PgServer, sql: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    let _ = conn.close().await;
    n
}

fn cc_client(name: &str) -> ClientSpec {
    ClientSpec {
        name: name.into(),
        grant_types: vec!["client_credentials".into()],
        ..ClientSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_issuance_outlasts_blocks_at_two_instances() {
    let Some(pg) = PgServer::init() else { return };
    pg.start();
    let a = support::configured::spawn_app_on_with(pg.url(), RawConfig::default()).await;
    let b = a.second_instance().await;
    let svc = a.create_client(cc_client("svc")).await;
    let (key, public) = keypair("k1");
    let jwt_client = a
        .create_client(ClientSpec {
            auth_method: Some("private_key_jwt".into()),
            jwks: Some(json!({ "keys": [public] }).to_string()),
            ..cc_client("jwt svc")
        })
        .await;
    // Both instances see the new clients now rather than at their next poll.
    for app in [&a, &b] {
        app.state.registry.refresh().await.unwrap();
    }
    let issuer = a.state.settings.issuer.clone();

    // Warm-up traffic at both instances; the assertion client once at each.
    let (warm_a, warm_b) = tokio::join!(issue(&a, &svc, WARM_UP), issue(&b, &svc, WARM_UP));
    let mut seen = indices(&a, "warm-up at a", &warm_a);
    seen.extend(indices(&b, "warm-up at b", &warm_b));
    for (app, jti) in [(&a, "before-a"), (&b, "before-b")] {
        let jwt = assertion(app, &jwt_client.id, &key, &issuer, 120, jti);
        assert_eq!(token_with(app, &jwt).await, 200, "{jti}");
    }
    // The spares follow the rate, refilled in the background.
    for app in [&a, &b] {
        eventually("spare indices reserved", async || {
            app.state.status_lists.held() >= WARM_UP as i64
        })
        .await;
    }

    tokio::task::block_in_place(|| pg.stop());

    // Both instances go on issuing, well past one block each.
    let (during_a, during_b) = tokio::join!(issue(&a, &svc, DURING), issue(&b, &svc, DURING));
    seen.extend(indices(&a, "outage at a", &during_a));
    seen.extend(indices(&b, "outage at b", &during_b));
    let distinct: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a status index was handed out twice"
    );

    // A client the cache does not know cannot be checked: 503, not 401.
    let r = a
        .http
        .post(a.url("/token"))
        .basic_auth("never-seen-client", Some("whatever-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "an unknown client during the outage");
    assert!(r.headers().contains_key("retry-after"));

    // private_key_jwt: checked, its jti recorded in memory; a replay is refused.
    let during = assertion(&a, &jwt_client.id, &key, &issuer, 120, "during-outage");
    assert_eq!(
        token_with(&a, &during).await,
        200,
        "an assertion during the outage"
    );
    assert_eq!(
        token_with(&a, &during).await,
        401,
        "its replay during the outage"
    );
    let again = assertion(&a, &jwt_client.id, &key, &issuer, 120, "during-outage-2");
    assert_eq!(token_with(&a, &again).await, 200, "another jti is fine");

    tokio::task::block_in_place(|| pg.start());
    for app in [&a, &b] {
        eventually("ready again", async || ready(app).await).await;
    }
    assert_eq!(
        token_with(&a, &during).await,
        401,
        "refused after the outage by the instance that saw it"
    );
    // Written to the database once it is back, so the other instance
    // refuses it too.
    let recorded = format!(
        "SELECT count(*) FROM revoked_tokens WHERE jti IN \
         ('assertion:{0}:during-outage', 'assertion:{0}:during-outage-2')",
        jwt_client.id
    );
    eventually("the outage's jti written to the database", async || {
        one_value(&pg, &recorded).await == 2
    })
    .await;
    assert_eq!(
        token_with(&b, &during).await,
        401,
        "refused at the other instance"
    );
    let after = assertion(&b, &jwt_client.id, &key, &issuer, 120, "after-outage");
    assert_eq!(token_with(&b, &after).await, 200);

    // Issuance goes on after the outage, still without duplicates.
    let after_a = issue(&a, &svc, 50).await;
    seen.extend(indices(&a, "after at a", &after_a));
    let distinct: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len());
    b.stop().await;
    a.stop().await;
    drop(pg);
}

/// POSTs `token` to `/introspect` as `c`: the status and the JSON body.
async fn introspect(app: &TestApp, c: &TestClient, token: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GETs `/userinfo` with `token`: the status and the JSON body (or, when
/// there is none, the `WWW-Authenticate` challenge and the time taken).
async fn userinfo(app: &TestApp, token: &str) -> (u16, Value) {
    let started = Instant::now();
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = r.json().await.unwrap_or_else(
        |_| json!({ "challenge": challenge, "took_ms": started.elapsed().as_millis() as u64 }),
    );
    (status, body)
}

async fn one_token(app: &TestApp, c: &TestClient) -> String {
    let (status, token) = issue(app, c, 1).await.remove(0);
    assert_eq!(status, 200);
    token.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_userinfo_answer_from_recent_reads_then_503() {
    let Some(pg) = PgServer::init() else { return };
    pg.start();
    let app = support::configured::spawn_app_on_with(pg.url(), RawConfig::default()).await;
    let svc = app.create_client(cc_client("svc")).await;
    let web = app.web_client().await;
    app.state.registry.refresh().await.unwrap();
    let staleness = app.state.settings.outage_staleness_secs;
    assert_eq!(staleness, 10, "the default");

    // Read once before the outage: an active token, a revoked one, and a
    // user's token at userinfo. One more token is never looked at.
    let active = one_token(&app, &svc).await;
    assert_eq!(introspect(&app, &svc, &active).await.1["active"], true);
    let revoked = one_token(&app, &svc).await;
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&svc.id, svc.secret.as_deref())
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(&app, &svc, &revoked).await.1["active"], false);
    let unseen = one_token(&app, &svc).await;
    let (code, verifier) = app.code(&web, "openid profile", "").await;
    let user_token = app.redeem(&web, &code, &verifier).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, before) = userinfo(&app, &user_token).await;
    assert_eq!(status, 200);
    assert_eq!(before["preferred_username"], "dave");

    tokio::task::block_in_place(|| pg.stop());

    // Within the window: the recent reads answer.
    let (status, body) = introspect(&app, &svc, &active).await;
    assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");
    assert_eq!(body["client_id"], svc.id.as_str());
    let (status, body) = introspect(&app, &svc, &revoked).await;
    assert_eq!(
        (status, &body["active"]),
        (200, &json!(false)),
        "revoked stays revoked"
    );
    let (status, body) = userinfo(&app, &user_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, before);
    // Never "active" from nothing.
    let (status, body) = introspect(&app, &svc, &unseen).await;
    assert_eq!(status, 503, "a token never read: {body}");
    assert_eq!(body["error"], "temporarily_unavailable");

    // Past the window: 503.
    app.clock.advance(staleness + 1);
    let (status, body) = introspect(&app, &svc, &active).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(userinfo(&app, &user_token).await.0, 503);

    tokio::task::block_in_place(|| pg.start());
    eventually("ready again", async || ready(&app).await).await;
    assert_eq!(introspect(&app, &svc, &active).await.1["active"], true);
    assert_eq!(introspect(&app, &svc, &unseen).await.1["active"], true);
    assert_eq!(introspect(&app, &svc, &revoked).await.1["active"], false);
    assert_eq!(userinfo(&app, &user_token).await.0, 200);
    app.stop().await;
    drop(pg);
}
