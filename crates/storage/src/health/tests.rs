//! The health state against a private PostgreSQL server that is stopped
//! and started for real, and which errors count as a lost connection.

use std::{
    borrow::Cow,
    time::{Duration, Instant},
};

use gatehouse_testkit::pg_server::PgServer;
use sea_orm::{sqlx, ConnAcquireErr, ConnectionTrait, DbErr, RuntimeErr};

use crate::{error::is_connection_lost, model::User, Backend, Store, StoreError, StoreOptions};

const INTERVAL: Duration = Duration::from_millis(250);
/// What "fails at once" means here.
const FAST: Duration = Duration::from_millis(50);

async fn store_on(pg: &PgServer) -> Store {
    let options = StoreOptions {
        db_probe_interval: INTERVAL,
    };
    let store = Store::connect_with(&pg.url(), options).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Waits until the store sees the database up again; how long that took.
async fn until_up(store: &Store, within: Duration) -> Duration {
    let started = Instant::now();
    while !store.database_up() {
        assert!(started.elapsed() < within, "not up again within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

fn user(n: u32) -> User {
    User {
        id: format!("u{n}").into(),
        username: format!("user{n}"),
        email: None,
        email_verified: false,
        name: None,
        password_hash: "x".into(),
        disabled: false,
        created_at: 0,
        updated_at: 0,
        mfa_required: false,
    }
}

/// While down, every kind of operation (a read, a write, a transaction)
/// fails at once with `Unavailable`.
async fn fails_fast_while_down(store: &Store) {
    for i in 0..10 {
        let started = Instant::now();
        let results = [
            store.epoch("keys").await.map(|_| ()),
            store.create_user(&user(100 + i)).await,
            store.delete_client("nobody").await.map(|_| ()),
            store.ping().await,
        ];
        let took = started.elapsed();
        for r in results {
            let e = r.unwrap_err();
            assert!(e.is_unavailable(), "while down: {e}");
        }
        assert!(took < 4 * FAST, "four operations while down took {took:?}");
    }
    let started = Instant::now();
    let e = store.user_by_username("user1").await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());
}

/// Requests waiting for a connection when the server stops are woken with
/// `Unavailable` at once (not after the pool's 3 s); while down everything
/// fails fast; after the start the store is up within an interval and a
/// second, and the next request succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_woken_when_the_database_goes_down() {
    let Some(pg) = PgServer::init() else { return };
    pg.start();
    let store = store_on(&pg).await;
    store.create_user(&user(1)).await.unwrap();

    // Every pooled connection busy, then more requests waiting for one.
    let max = store.pool_stats().max;
    let sleepers: Vec<_> = (0..max)
        .map(|_| {
            let db = store.db.clone();
            tokio::spawn(async move { db.execute_unprepared("SELECT pg_sleep(30)").await })
        })
        .collect();
    let started = Instant::now();
    while store.pool_stats().open < max || store.pool_stats().idle > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "pool not full");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let r = store.user_by_username("user1").await;
                (r, Instant::now())
            })
        })
        .collect();
    // Waiting longer than the suspicion threshold probes the server, which
    // answers: a full pool is not an outage.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(store.database_up(), "a busy pool is not a down database");
    assert!(waiters.iter().all(|w| !w.is_finished()));

    tokio::task::block_in_place(|| pg.stop());
    let stopped = Instant::now();
    for w in waiters {
        let (r, at) = w.await.unwrap();
        let e = r.unwrap_err();
        assert!(e.is_unavailable(), "a waiter: {e}");
        let late = at.saturating_duration_since(stopped);
        eprintln!("a waiter answered {late:?} after the stop returned");
        assert!(
            late < Duration::from_millis(500),
            "a waiter woken {late:?} after the stop"
        );
    }
    for s in sleepers {
        let e = StoreError::from(s.await.unwrap().unwrap_err());
        assert!(e.is_unavailable(), "a statement cut off: {e}");
    }
    assert!(!store.database_up());
    fails_fast_while_down(&store).await;
    // Down stays down without a server: the probes keep failing.
    tokio::time::sleep(3 * INTERVAL).await;
    assert!(!store.database_up());

    tokio::task::block_in_place(|| pg.start());
    let took = until_up(&store, INTERVAL + Duration::from_secs(1)).await;
    eprintln!("up again {took:?} after the start");
    assert_eq!(
        store.user_by_username("user1").await.unwrap().unwrap().id,
        "u1"
    );
    store.create_user(&user(2)).await.unwrap();
}

/// A server that stopped while the pool sat idle: the first request does
/// not wait out the pool's 3 s; the probe it asks for finds the server gone
/// and answers it. Then up again after the start, and working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_gone_while_idle_is_found_by_the_probe() {
    let Some(pg) = PgServer::init() else { return };
    pg.start();
    let store = store_on(&pg).await;
    store.create_user(&user(1)).await.unwrap();

    tokio::task::block_in_place(|| pg.stop());
    assert!(store.database_up(), "nothing has tried the database yet");
    let started = Instant::now();
    let e = store.user_by_username("user1").await.unwrap_err();
    let took = started.elapsed();
    eprintln!("the first request after an idle stop: {took:?}");
    assert!(e.is_unavailable(), "{e}");
    assert!(
        took < Duration::from_secs(1),
        "the first request took {took:?}"
    );
    assert!(!store.database_up());
    fails_fast_while_down(&store).await;

    tokio::task::block_in_place(|| pg.start());
    until_up(&store, INTERVAL + Duration::from_secs(1)).await;
    assert_eq!(
        store.user_by_username("user1").await.unwrap().unwrap().id,
        "u1"
    );
}

/// A stand-in for a database's error with a given code.
#[derive(Debug)]
struct Coded(&'static str);

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {}", self.0)
    }
}

impl std::error::Error for Coded {}

impl sqlx::error::DatabaseError for Coded {
    fn message(&self) -> &str {
        "coded"
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

fn coded(code: &'static str) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(Box::new(
        Coded(code),
    ))))
}

/// Lost connections mark the database down; a busy, full, read-only or
/// crowded database, our own closed pool and our own "down" answer do not.
#[test]
fn only_lost_connections_mark_the_database_down() {
    let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    let pg = Backend::Postgres;
    for e in [
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::Io(refused()))),
        DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Protocol("eof".into()))),
        coded("08006"),
        coded("08001"),
        coded("57P01"),
        coded("57P02"),
        coded("57P03"),
    ] {
        assert!(is_connection_lost(&e, pg), "{e}");
        assert!(StoreError::from(e).is_unavailable());
    }
    for e in [
        coded("53300"), // too many connections: the pool's own still work
        coded("53100"), // disk full
        coded("25006"), // read-only transaction
        coded("23505"),
        DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        crate::health::down_error(),
        DbErr::Custom("x".into()),
    ] {
        assert!(!is_connection_lost(&e, pg), "{e}");
    }
    // SQLite: busy, locked, full, read-only and I/O errors, and a pool
    // time-out (congestion: the file cannot go away).
    for e in [
        coded("5"),
        coded("517"),
        coded("6"),
        coded("13"),
        coded("8"),
        coded("10"),
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
    ] {
        assert!(!is_connection_lost(&e, Backend::Sqlite), "{e}");
    }
    assert!(is_connection_lost(
        &DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::WorkerCrashed)),
        Backend::Sqlite
    ));
}

/// Only the server's own word that it is going away marks the database
/// down at once; a lost connection or a pool time-out asks for a probe
/// (load must not switch everyone to failing fast).
#[test]
fn only_the_server_shutting_down_marks_down_without_a_probe() {
    for code in ["57P01", "57P02", "57P03"] {
        assert!(super::server_shutting_down(&coded(code)), "{code}");
    }
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    for e in [
        coded("08006"),
        coded("53300"),
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::Io(refused))),
    ] {
        assert!(!super::server_shutting_down(&e), "{e}");
    }
}
