//! The store contract: every test below runs once on SQLite and once on PostgreSQL.
//!
//! Each test is written once as `async fn name(store: Store)`, in the file of
//! its concern; `contract!` there generates a `sqlite_name` and a
//! `postgres_name` wrapper that give it a fresh, migrated database. A test
//! that needs the database before migration takes a `DbKind` instead
//! (`contract! { on name => ...; }`) and gets the same two wrappers. There
//! is no other way to declare a test here, so none runs on one backend only.
//! The PostgreSQL wrappers need `GATEHOUSE_TEST_POSTGRES_URL` (see
//! `gatehouse_testkit::db`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use gatehouse_storage::{Backend, Store};
use gatehouse_testkit::db::{self, DbKind};

/// A fixed "now" (Unix seconds); tests move time explicitly.
const NOW: i64 = 1_700_000_000;

/// Gives `test` a fresh, migrated store on `kind`, then cleans up.
async fn run<F, Fut>(kind: DbKind, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = db::fresh(kind).await else {
        return; // skipped; `fresh` said so loudly
    };
    let store = Store::connect(&db.url).await.expect("connect");
    assert_eq!(store.backend(), backend(kind));
    store.migrate().await.expect("migrate");
    test(store.clone()).await;
    // Nothing here (concurrent writers included) looks like an outage.
    assert!(store.database_up(), "the database was marked down");
    store.close().await.expect("close");
    drop(db);
}

/// The store's name for the engine a test database runs on.
fn backend(kind: DbKind) -> Backend {
    match kind {
        DbKind::Sqlite => Backend::Sqlite,
        DbKind::Postgres => Backend::Postgres,
    }
}

/// `contract! { test => sqlite_test, postgres_test; on raw_test => sqlite_raw_test, postgres_raw_test; }`:
/// `test` takes a migrated `Store`, `raw_test` (after `on`) the `DbKind` of
/// a fresh database it opens itself.
macro_rules! contract {
    () => {};
    ($test:ident => $sqlite:ident, $postgres:ident; $($rest:tt)*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            $crate::run($crate::DbKind::Sqlite, $test).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            $crate::run($crate::DbKind::Postgres, $test).await;
        }
        contract! { $($rest)* }
    };
    (on $test:ident => $sqlite:ident, $postgres:ident; $($rest:tt)*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            $test($crate::DbKind::Sqlite).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            $test($crate::DbKind::Postgres).await;
        }
        contract! { $($rest)* }
    };
}

mod fixtures;

mod authorization_tx;
mod clients;
mod codes;
mod device;
mod dpop;
mod factors;
mod grant_writes;
mod keys;
mod migrations;
mod passkeys;
mod pushed;
mod refresh;
mod registration;
mod resources;
mod revocation;
mod sessions;
mod token_exchange;
mod unknown_names;
mod users;
