//! The storage crate's one error type.

use sea_orm::{sqlx, DbErr, RuntimeErr, SqlErr};

/// A storage failure. `Display` is safe to show to an operator; it never
/// contains secrets (only hashes are stored).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be understood.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or opened.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint was violated (a duplicate username, client id, ...).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The row the caller named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A stored value could not be decoded (corrupt or hand-edited row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Db(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(msg)) = e.sql_err() {
            return StoreError::Conflict(msg);
        }
        if is_outage(&e) || cannot_write_now(&e) {
            return StoreError::Unavailable(e.to_string());
        }
        StoreError::Db(e)
    }
}

/// True when `e` says the database is away or going away rather than that
/// the statement was wrong: no connection could be had, the connection
/// broke, or the server is shutting down, starting up or out of
/// connections. Decided on the error's type and SQLSTATE, not its wording.
fn is_outage(e: &DbErr) -> bool {
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => sqlx_outage(s),
        // sea-orm's own connection errors carry no sqlx error.
        DbErr::Conn(RuntimeErr::Internal(_)) => true,
        _ => false,
    }
}

fn sqlx_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or("");
            if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), also as extended
                // codes (low byte): the busy timeout ran out.
                return code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            }
            // PostgreSQL (SQLSTATE): class 08 connection exception; 57P01
            // admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
            // now; 53300 too many connections.
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }
        _ => false,
    }
}

/// True when `e` says the connection to the database itself is lost or
/// cannot be had: the database is down, not merely busy or full. This is
/// what marks the health state down (see `health.rs`); every such error is
/// also [`is_outage`]. Not SQLite's busy or locked, not "cannot write"
/// (disk full, read-only), not too many connections (the pool's own
/// connections still work), not our own pool being closed. On SQLite a pool
/// time-out is congestion, not an outage (an embedded file does not go away).
pub(crate) fn is_connection_lost(e: &DbErr, backend: crate::Backend) -> bool {
    match e {
        DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout) => {
            backend == crate::Backend::Postgres
        }
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => sqlx_connection_lost(s, backend),
        _ => false,
    }
}

/// [`is_connection_lost`] for an error of sqlx itself (the health probe's
/// direct connection).
pub(crate) fn sqlx_connection_lost(e: &sqlx::Error, backend: crate::Backend) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::PoolTimedOut => backend == crate::Backend::Postgres,
        // PostgreSQL's SQLSTATE: connection exception, shutdown, starting
        // up. (SQLite's codes are plain numbers and never match.)
        sqlx::Error::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or("");
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        _ => false,
    }
}

/// True when the database answers but cannot write now: its disk (or the
/// SQLite file's page limit) is full, it is read-only (a standby after a
/// failover, a file system remounted read-only) or the storage failed an
/// I/O. Answered 503 like an outage, but the database is not down: reads
/// still work.
pub(crate) fn cannot_write_now(e: &DbErr) -> bool {
    let (DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::Database(d)))
    | DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(d)))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(d)))) = e
    else {
        return false;
    };
    let code = d.code();
    let code = code.as_deref().unwrap_or("");
    if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse::<i64>().is_ok_and(sqlite_write_fault)
    } else {
        pg_write_fault(code)
    }
}

/// SQLITE_READONLY (8), SQLITE_IOERR (10) and SQLITE_FULL (13), also as
/// extended result codes (low byte).
fn sqlite_write_fault(code: i64) -> bool {
    matches!(code & 0xff, 8 | 10 | 13)
}

/// SQLSTATE 53100 disk full, 25006 read-only SQL transaction.
fn pg_write_fault(sqlstate: &str) -> bool {
    matches!(sqlstate, "53100" | "25006")
}

impl StoreError {
    /// True when the failure is the database being away (retry later, answer 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod write_faults;

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use gatehouse_testkit::pg_server::PgServer;
    use sea_orm::ConnectionTrait;

    use super::*;
    use crate::Store;

    /// A real restart of a private PostgreSQL server: the statement in
    /// flight is cut off with SQLSTATE 57P01, statements while it is down
    /// cannot get a connection, and both are outages (503), not errors
    /// (500). Afterwards the pool reconnects by itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_restart_is_an_outage() {
        let Some(pg) = PgServer::init() else { return };
        pg.start();
        let store = Store::connect(&pg.url()).await.unwrap();
        let stats = store.pool_stats();
        assert!(stats.open >= 1 && stats.open <= stats.max, "{stats:?}");
        assert_eq!(stats.max, 16);

        let db = store.db.clone();
        let slow = tokio::spawn(async move { db.execute_unprepared("SELECT pg_sleep(30)").await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| pg.stop());
        let cut = slow.await.unwrap().unwrap_err();
        let cut = StoreError::from(cut);
        assert!(
            cut.is_unavailable(),
            "a statement cut off by the restart: {cut}"
        );

        let started = Instant::now();
        let down = store.ping().await.unwrap_err();
        assert!(down.is_unavailable(), "a statement while down: {down}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "failed fast: {:?}",
            started.elapsed()
        );

        tokio::task::block_in_place(|| pg.start());
        // The store learns it from its probe (health.rs), within a moment.
        let started = Instant::now();
        while !store.database_up() {
            assert!(started.elapsed() < Duration::from_secs(5), "not up again");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.ping().await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(store.epoch("keys").await.unwrap(), 0);
    }

    #[test]
    fn outages_are_unavailable_and_mistakes_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
            DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Io(refused))),
            DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::PoolTimedOut)),
            DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Protocol(
                "unexpected end of stream".into(),
            ))),
        ] {
            assert!(StoreError::from(e).is_unavailable());
        }
        for e in [
            DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::RowNotFound)),
            DbErr::Custom("x".into()),
            DbErr::RecordNotFound("x".into()),
        ] {
            assert!(!StoreError::from(e).is_unavailable());
        }
    }
}
