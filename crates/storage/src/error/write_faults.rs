//! Tests: a database that answers but cannot write now (full, read-only,
//! failed I/O) is `Unavailable`, decided on real errors where a test can
//! cause them.

use sea_orm::{ConnectionTrait, Database, TransactionTrait};

use super::*;

#[test]
fn write_faults_by_code() {
    // SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR and extended codes of
    // them: IOERR_READ (266), IOERR_WRITE (778), IOERR_FSYNC (1034),
    // IOERR_SHMSIZE (4874), READONLY_RECOVERY (264), READONLY_DBMOVED (1032).
    for code in [13, 8, 10, 266, 778, 1034, 4874, 264, 1032] {
        assert!(sqlite_write_fault(code), "{code}");
    }
    // SQLITE_ERROR, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_CONSTRAINT and
    // CONSTRAINT_UNIQUE (2067), SQLITE_BUSY (an outage, decided elsewhere).
    for code in [1, 11, 14, 19, 2067, 5] {
        assert!(!sqlite_write_fault(code), "{code}");
    }
    for state in ["53100", "25006"] {
        assert!(pg_write_fault(state), "{state}");
    }
    // Unique violation, undefined table, out of memory, a failed
    // transaction, connection failure (an outage, decided elsewhere).
    for state in ["23505", "42P01", "53200", "25P02", "08006", ""] {
        assert!(!pg_write_fault(state), "{state}");
    }
}

/// A real SQLITE_FULL: the connection's page limit is reached.
#[tokio::test]
async fn a_full_sqlite_database_is_unavailable() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    // One connection for the whole test: `max_page_count` is per connection.
    let txn = db.begin().await.unwrap();
    txn.execute_unprepared("CREATE TABLE t (x BLOB); PRAGMA max_page_count = 1")
        .await
        .unwrap();
    let e = txn
        .execute_unprepared("INSERT INTO t VALUES (zeroblob(100000))")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("(code: 13)"), "{e}");
    let e = StoreError::from(e);
    assert!(e.is_unavailable(), "{e}");
}

/// A real SQLITE_READONLY: a write through a read-only connection.
#[tokio::test]
async fn a_read_only_sqlite_database_is_unavailable() {
    let dir = std::env::temp_dir().join(format!("gatehouse-ro-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ro.db");
    let rw = Database::connect(format!("sqlite://{}?mode=rwc", file.display()))
        .await
        .unwrap();
    rw.execute_unprepared("CREATE TABLE t (x INTEGER)")
        .await
        .unwrap();
    rw.close().await.unwrap();
    let ro = Database::connect(format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let e = ro
        .execute_unprepared("INSERT INTO t VALUES (1)")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("(code: 8)"), "{e}");
    let e = StoreError::from(e);
    assert!(e.is_unavailable(), "{e}");
    // Reading still works: the database is not down.
    ro.execute_unprepared("SELECT count(*) FROM t")
        .await
        .unwrap();
    ro.close().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A real SQLSTATE 25006 from PostgreSQL: a write in a read-only
/// transaction, as on a standby after a failover. Nothing is written (the
/// statement is refused and the transaction rolled back).
#[tokio::test]
async fn a_read_only_postgres_transaction_is_unavailable() {
    let Some(url) = std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        eprintln!("SKIPPED: needs GATEHOUSE_TEST_POSTGRES_URL");
        return;
    };
    let db = Database::connect(url).await.unwrap();
    let txn = db.begin().await.unwrap();
    txn.execute_unprepared("SET TRANSACTION READ ONLY")
        .await
        .unwrap();
    let e = txn
        .execute_unprepared("CREATE TABLE gatehouse_never_created (x INTEGER)")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("read-only transaction"), "{e}");
    let e = StoreError::from(e);
    assert!(e.is_unavailable(), "{e}");
    txn.rollback().await.unwrap();
    db.close().await.unwrap();
}

/// After SQLITE_FULL rolled a transaction back (SQLite does that by
/// itself), no pooled connection is handed out still counted in that
/// transaction: its next transaction would begin as a savepoint, and a
/// rollback of that would keep the write lock ("database is locked" for
/// every other writer) until the process ends.
#[tokio::test]
async fn no_connection_is_left_in_a_transaction_sqlite_rolled_back() {
    let dir = std::env::temp_dir().join(format!("gatehouse-full-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = crate::Store::connect(&format!("sqlite://{}/full.db", dir.display()))
        .await
        .unwrap();
    store
        .db
        .execute_unprepared(
            "CREATE TABLE t (x BLOB); CREATE TABLE u (x INTEGER); INSERT INTO u VALUES (1)",
        )
        .await
        .unwrap();
    store.sqlite_page_limit(Some(1)).await.unwrap();
    for _ in 0..3 {
        let txn = store.db.begin().await.unwrap();
        txn.execute_unprepared("UPDATE u SET x = x + 1")
            .await
            .unwrap();
        let e = txn
            .execute_unprepared("INSERT INTO t VALUES (zeroblob(100000))")
            .await
            .unwrap_err();
        assert!(StoreError::from(e).is_unavailable());
        drop(txn);
    }
    store.sqlite_page_limit(None).await.unwrap();

    // Every connection of the pool at once: none is inside a transaction.
    let pool = store.db.inner().get_sqlite_connection_pool();
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        held.push(pool.acquire().await.unwrap());
    }
    for conn in &mut held {
        assert!(!sqlx::Connection::is_in_transaction(&**conn));
        sqlx::raw_sql("BEGIN; ROLLBACK")
            .execute(&mut **conn)
            .await
            .unwrap();
    }
    drop(held);
    // And a write goes through.
    store
        .db
        .execute_unprepared("UPDATE u SET x = 0")
        .await
        .unwrap();
    store.close().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
