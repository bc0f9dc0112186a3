//! Refresh-token chains through a PostgreSQL outage longer than the retry
//! grace window, on two instances behind a round robin: nobody is logged
//! out, and the rows show nothing duplicated or lost.
//!
//! Each chain refreshes as fast as it can, keeps the newest token, and on
//! a 503 retries with the same token (RFC 6749 clients do). The private
//! PostgreSQL server (never the shared one) is stopped in the middle of
//! the traffic; the app clock moves past `refresh_grace` while it is down,
//! so a token spent by a request that then answered 503 would come back as
//! reuse and revoke its family. It must not: a rotation and everything the
//! new tokens need are written in one transaction, and the answer is made
//! before it. The two other tests put the fault at the worst moment on
//! purpose: a write refused inside that transaction, and a failure while
//! making the answer.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use gatehouse_server::clients::ClientSpec;
use sea_orm::sqlx::{self, Connection as _};
use serde_json::Value;

use crate::support::{self, pg_server::PgServer, TestClient};

/// What one chain saw.
#[derive(Debug, Default)]
struct Chain {
    /// Every refresh token it held, in order (the first from the code).
    tokens: Vec<String>,
    /// 200 answers (each delivered an access token).
    ok: usize,
    /// 503 answers (retried with the same token).
    unavailable: usize,
    /// 200 answers after the database came back.
    ok_after: usize,
    /// Anything else: status and body. Must stay empty.
    failures: Vec<(u16, String)>,
}

/// Runs one chain until `stop`, alternating between the two instances.
async fn run_chain(
    http: reqwest::Client,
    urls: [String; 2],
    client: TestClient,
    first: String,
    stop: Arc<AtomicBool>,
    back: Arc<AtomicBool>,
) -> Chain {
    let mut chain = Chain {
        tokens: vec![first],
        ..Chain::default()
    };
    let mut turn = 0;
    while !stop.load(Ordering::SeqCst) {
        let current = chain.tokens.last().cloned().unwrap_or_default();
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", current.as_str()),
        ];
        let mut req = http.post(&urls[turn % 2]);
        turn += 1;
        match &client.secret {
            Some(s) => req = req.basic_auth(&client.id, Some(s)),
            None => form.push(("client_id", client.id.as_str())),
        }
        let r = req.form(&form).send().await.unwrap();
        match r.status().as_u16() {
            200 => {
                let body: Value = r.json().await.unwrap();
                let next = body["refresh_token"].as_str().unwrap().to_owned();
                assert!(body["access_token"].is_string() && body["id_token"].is_string());
                chain.ok += 1;
                if back.load(Ordering::SeqCst) {
                    chain.ok_after += 1;
                }
                if next != current {
                    chain.tokens.push(next);
                }
            }
            503 => {
                chain.unavailable += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            s => {
                chain.failures.push((s, r.text().await.unwrap_or_default()));
                return chain;
            }
        }
    }
    chain
}

async fn count(conn: &mut sqlx::PgConnection, sql: &str, family: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(family)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_chains_survive_an_outage_longer_than_the_grace_window() {
    let Some(pg) = PgServer::init() else { return };
    pg.start();
    let one = support::configured::spawn_app_on_with(pg.url(), Default::default()).await;
    let two = one.second_instance().await;
    let grace = one.state.settings.lifetimes.refresh_grace;

    // Four confidential chains (no time limit on retries) and two public
    // ones (a bearer token's retries are limited to the grace window).
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(one.web_client().await);
    }
    for i in 0..2 {
        clients.push(
            one.create_client(ClientSpec {
                name: format!("SPA {i}"),
                redirect_uris: vec!["http://127.0.0.1:9999/spa".into()],
                auth_method: Some("none".into()),
                ..ClientSpec::default()
            })
            .await,
        );
    }
    let mut firsts = Vec::new();
    for c in &clients {
        let (code, verifier) = one.code(c, "openid offline_access", "").await;
        let r = one.redeem(c, &code, &verifier).await;
        firsts.push(r["refresh_token"].as_str().unwrap().to_owned());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let back = Arc::new(AtomicBool::new(false));
    let urls = [one.url("/token"), two.url("/token")];
    let chains: Vec<_> = clients
        .iter()
        .zip(&firsts)
        .map(|(c, first)| {
            tokio::spawn(run_chain(
                one.http.clone(),
                urls.clone(),
                c.clone(),
                first.clone(),
                stop.clone(),
                back.clone(),
            ))
        })
        .collect();

    // Traffic, then the outage in the middle of it; the app clock passes
    // the grace window while the database is away.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| pg.stop());
    tokio::time::sleep(Duration::from_millis(500)).await;
    one.clock.advance(grace + 5);
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| pg.start());
    let restarted = Instant::now();
    back.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for c in chains {
        results.push(c.await.unwrap());
    }

    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let revoked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(revoked, 0, "no family was revoked");
    let mut saw_outage = false;
    for (i, (chain, client)) in results.iter().zip(&clients).enumerate() {
        assert!(
            chain.failures.is_empty(),
            "chain {i} ({}) was cut off: {:?}",
            if client.secret.is_some() {
                "confidential"
            } else {
                "public"
            },
            chain.failures
        );
        saw_outage |= chain.unavailable > 0;
        assert!(
            chain.ok_after > 0,
            "chain {i} made no progress in the {:?} after the restart: {chain:?}",
            restarted.elapsed()
        );
        // The family, from its newest token.
        let newest = chain.tokens.last().unwrap();
        let family: String =
            sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(one.state.hasher.hash(newest))
                .fetch_one(&mut conn)
                .await
                .unwrap();
        // One row per token the chain held: none lost, none extra.
        let rows = count(
            &mut conn,
            "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1",
            &family,
        )
        .await;
        assert_eq!(rows, chain.tokens.len() as i64, "chain {i}: refresh rows");
        let unused = count(
            &mut conn,
            "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1 AND used_at IS NULL",
            &family,
        )
        .await;
        assert_eq!(unused, 1, "chain {i}: only the newest token is unused");
        // One status row per access token delivered (the code's included):
        // none recorded for an answer that failed, none missing.
        let statuses = count(
            &mut conn,
            "SELECT COUNT(*) FROM token_status WHERE family = $1",
            &family,
        )
        .await;
        assert_eq!(
            statuses,
            chain.ok as i64 + 1,
            "chain {i}: status rows vs access tokens delivered"
        );
    }
    assert!(saw_outage, "the outage was felt: some request answered 503");
    let _ = conn.close().await;
    two.stop().await;
    one.stop().await;
}

/// The fault at the worst moment, made deterministic: the database refuses
/// the write of the new access token's status row ("disk full", SQLSTATE
/// 53100, raised by a trigger) after the refresh rotation or the code
/// redemption has been made in the same transaction. The answer is 503;
/// later (past the grace window) the same refresh token and the same code
/// still work, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_after_the_rotation_spends_nothing() {
    let Some(app) = support::spawn_app(support::db::DbKind::Postgres).await else {
        return;
    };
    // A public client: its retries are limited to the grace window, so a
    // spent refresh token would be lost for good.
    let web = app
        .create_client(ClientSpec {
            name: "SPA".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/spa".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    let (code, verifier) = app.code(&web, "openid offline_access", "").await;
    let r0 = app.redeem(&web, &code, &verifier).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pending, pending_verifier) = app.code(&web, "openid offline_access", "").await;

    let mut conn = sqlx::PgConnection::connect(app.db_url()).await.unwrap();
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_status() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = '53100'; END $$; \
         CREATE TRIGGER refuse_status BEFORE INSERT ON token_status \
         FOR EACH ROW EXECUTE FUNCTION refuse_status();",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let refresh = |rt: String| {
        let (app, web) = (&app, &web);
        async move { app.refresh(web, &rt).await }
    };
    let redeem = || app.redeem_response(&web, &pending, &pending_verifier);
    let r = refresh(r0.clone()).await;
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
    let r = redeem().await;
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());

    // Long after, the fault cleared: nothing was spent.
    app.clock
        .advance(app.state.settings.lifetimes.refresh_grace + 30);
    sqlx::raw_sql("DROP TRIGGER refuse_status ON token_status")
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    let r = refresh(r0.clone()).await;
    assert_eq!(r.status(), 200, "the refresh token survived");
    let r1 = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(refresh(r1).await.status(), 200, "and its successor works");
    let r = redeem().await;
    assert_eq!(r.status(), 200, "the code survived");
    let r = redeem().await;
    assert_eq!(r.status(), 400, "once");
    app.stop().await;
}

/// The answer is made before the code is spent or the refresh token
/// rotated: when making it fails (here the client's ID-token algorithm has
/// no published key, as after an operator narrowed `signing_algs`), the
/// request fails and nothing is spent; once the cause is mended, the same
/// code and the same refresh token work, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_making_the_answer_spends_nothing() {
    let Some(app) = support::spawn_app(support::db::DbKind::Postgres).await else {
        return;
    };
    let web = app.web_client().await;
    let (code, verifier) = app.code(&web, "openid offline_access", "").await;
    let r0 = app.redeem(&web, &code, &verifier).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pending, pending_verifier) = app.code(&web, "openid offline_access", "").await;

    let mut conn = sqlx::PgConnection::connect(app.db_url()).await.unwrap();
    let set_alg = |alg: &'static str| {
        format!(
            "UPDATE clients SET id_token_signed_response_alg = '{alg}' WHERE id = '{}'; \
             UPDATE epochs SET value = value + 1 WHERE name = 'clients';",
            web.id
        )
    };
    sqlx::raw_sql(&set_alg("PS256"))
        .execute(&mut conn)
        .await
        .unwrap();
    app.state.registry.refresh().await.unwrap();

    let refresh = || app.refresh(&web, &r0);
    let redeem = || app.redeem_response(&web, &pending, &pending_verifier);
    let r = refresh().await;
    assert_eq!(r.status(), 500, "no key for the client's algorithm");
    let r = redeem().await;
    assert_eq!(r.status(), 500, "no key for the client's algorithm");

    // Mended, much later: nothing was spent.
    app.clock
        .advance(app.state.settings.lifetimes.refresh_grace + 30);
    sqlx::raw_sql(&set_alg("RS256"))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    app.state.registry.refresh().await.unwrap();
    let r = refresh().await;
    assert_eq!(r.status(), 200, "the refresh token was not spent");
    let r = redeem().await;
    assert_eq!(r.status(), 200, "the code was not spent");
    let r = redeem().await;
    assert_eq!(r.status(), 400, "once");
    app.stop().await;
}
