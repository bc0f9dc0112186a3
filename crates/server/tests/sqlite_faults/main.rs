//! SQLite faults on a real `gatehouse serve` process: an I/O error under the
//! running server, and a SIGKILL in the middle of refresh traffic.
//!
//! The I/O error is real: the test lowers the server process's file-size
//! limit (`prlimit --fsize`, RLIMIT_FSIZE, no privileges needed for one's
//! own process), so the kernel refuses every write to the database files
//! with EFBIG and SQLite reports SQLITE_IOERR_WRITE (the process ignores
//! SIGXFSZ, as a shell started with `trap '' XFSZ` hands down). Writes must
//! answer 503, reads go on, and once the limit is raised traffic resumes.
//! After either fault the file passes `PRAGMA integrity_check`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod world;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;
use world::{http, World};

async fn json(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

/// A 503 `temporarily_unavailable` with Retry-After.
async fn assert_unavailable(what: &str, r: reqwest::Response) {
    assert_eq!(r.status(), 503, "{what}");
    assert!(r.headers().contains_key("retry-after"), "{what}");
    assert_eq!(json(r).await["error"], "temporarily_unavailable", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_io_error_answers_503_and_clears() {
    let w = World::new().await;
    let mut serve = w.serve();
    serve.wait_ready(&w.base()).await;
    let tokens = json(w.redeem(&w.code().await).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let pending = w.code().await;
    let cc = [("grant_type", "client_credentials")];
    assert_eq!(w.token(&cc).await.unwrap().status(), 200);

    // No byte may be written past the first: every write fails with EFBIG.
    serve.file_size_limit("1");
    assert_unavailable("a refresh", w.refresh(&rt).await).await;
    assert_unavailable("the same refresh retried", w.refresh(&rt).await).await;
    assert_unavailable("a code redemption", w.redeem(&pending).await).await;
    let r = w.sign_in().await;
    assert_eq!(r.status(), 503, "a sign-in");
    assert!(r.headers().contains_key("retry-after"));
    // Reads go on: userinfo, introspection, keys, client_credentials (its
    // status index comes from the block it holds in memory); the database
    // answers, so the instance stays ready.
    let r = http()
        .get(format!("{}/readyz", w.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "readyz");
    let r = http()
        .get(format!("{}/userinfo", w.base()))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "userinfo");
    let r = http()
        .post(format!("{}/introspect", w.base()))
        .basic_auth(&w.id, Some(&w.secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["active"], true, "introspection");
    let r = http()
        .get(format!("{}/jwks", w.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "jwks");
    assert_eq!(
        w.token(&cc).await.unwrap().status(),
        200,
        "client_credentials"
    );
    // At the default level: one warning naming SQLite's I/O error, not one
    // per refused request; the database was never marked down.
    let log = serve.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the database refuses writes"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("disk I/O error"), "{log}");
    assert!(!log.contains("the database is unreachable"), "{log}");

    // The limit raised: the same refresh token and the same code work.
    serve.file_size_limit("unlimited");
    let r = w.refresh(&rt).await;
    assert_eq!(r.status(), 200, "the refresh after the fault");
    let next = json(r).await["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(w.refresh(&next).await.status(), 200);
    assert_eq!(w.redeem(&pending).await.status(), 200, "the pending code");
    assert_eq!(w.sign_in().await.status(), 303);
    serve.kill();
    w.assert_sound().await;
}

/// Refresh chains running side by side, each on its own grant.
const CHAINS: usize = 4;

/// SIGKILL while four refresh chains rotate as fast as they can, then a
/// new start on the same file. Each chain's last token that got a 200
/// still works (the rotation that produced it was committed, and the WAL
/// kept it). If the request in flight at the kill had committed its
/// rotation, that token's use is a retry and returns the same successor;
/// either way the client continues. The token before it is reuse (its
/// successor, the last token, has been used), which revokes the family.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_refresh_traffic_loses_no_rotation() {
    let w = Arc::new(World::new().await);
    let mut serve = w.serve();
    serve.wait_ready(&w.base()).await;
    let mut firsts = Vec::new();
    for _ in 0..CHAINS {
        let t = json(w.redeem(&w.code().await).await).await;
        firsts.push(t["refresh_token"].as_str().unwrap().to_owned());
    }
    let slowest = Arc::new(Mutex::new(vec![0usize; CHAINS]));
    let chains: Vec<_> = firsts
        .into_iter()
        .enumerate()
        .map(|(i, first)| {
            let (w, counts) = (w.clone(), slowest.clone());
            tokio::spawn(async move {
                // Every token this client got with a 200, oldest first.
                let mut got = vec![first];
                loop {
                    let current = got.last().unwrap().clone();
                    let form = [("grant_type", "refresh_token"), ("refresh_token", &current)];
                    let Ok(r) = w.token(&form).await else {
                        return got; // the server is gone
                    };
                    assert_eq!(r.status(), 200);
                    let Ok(body) = r.json::<Value>().await else {
                        return got; // cut off mid-answer: never received
                    };
                    got.push(body["refresh_token"].as_str().unwrap().to_owned());
                    counts.lock().unwrap()[i] += 1;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while slowest.lock().unwrap().iter().any(|n| *n < 10) {
        assert!(Instant::now() < deadline, "the chains did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serve.kill();
    let mut received = Vec::new();
    for c in chains {
        received.push(c.await.unwrap());
    }

    // A new start on the same file serves at once: the first refresh
    // (chain 0's last token) gets its 200 within two seconds of the start
    // (a stale lock would hold it for the 10 s busy timeout).
    let serve = w.serve();
    let first_answer = loop {
        assert!(
            serve.started.elapsed() < Duration::from_secs(2),
            "no answer two seconds after the start:\n{}",
            serve.log()
        );
        match w
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", received[0].last().unwrap()),
            ])
            .await
        {
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            // Answered before the database was reached: nothing was read.
            Ok(r) if r.status() == 503 => tokio::time::sleep(Duration::from_millis(10)).await,
            Ok(r) => {
                assert_eq!(r.status(), 200, "{}", serve.log());
                break (serve.started.elapsed(), json(r).await);
            }
        }
    };
    println!("the first refresh after the restart: {:?}", first_answer.0);
    assert!(
        first_answer.0 < Duration::from_secs(2),
        "{:?}",
        first_answer.0
    );
    for (i, got) in received.iter().enumerate() {
        let (last, before) = (&got[got.len() - 1], &got[got.len() - 2]);
        let after = if i == 0 {
            first_answer.1.clone()
        } else {
            let r = w.refresh(last).await;
            assert_eq!(r.status(), 200, "chain {i}: its last token");
            json(r).await
        };
        let after = after["refresh_token"].as_str().unwrap();
        if i % 2 == 0 {
            assert_eq!(w.refresh(after).await.status(), 200, "chain {i} goes on");
        } else {
            let r = w.refresh(before).await;
            assert_eq!(r.status(), 400, "chain {i}: the token before the last");
            let body = json(r).await;
            assert_eq!(body["error"], "invalid_grant");
            assert!(body["error_description"]
                .as_str()
                .unwrap()
                .contains("already been used"));
            assert_eq!(
                w.refresh(after).await.status(),
                400,
                "chain {i}: family revoked"
            );
        }
    }
    drop(serve);
    w.assert_sound().await;
}
