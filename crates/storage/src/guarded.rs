//! The connection every store method uses: sea-orm's pool behind the
//! database's health state (`health.rs`).
//!
//! A statement on the pool and `begin` first read the state: down, they
//! fail at once. Otherwise they race the database against the state's
//! down signal, so a request waiting for a connection is woken the moment
//! another one finds the database gone; one that waits longer than
//! [`SUSPECT_AFTER`] asks for a probe. A transaction that already holds its
//! connection is not raced: its statements fail on their own if the
//! connection is dead, and a cut-off commit must not be reported as
//! anything but what the database said. Every error is shown to the state,
//! which marks the database down on a lost connection.
//!
//! Migrations and pool statistics use the inner `DatabaseConnection`.

use std::{future::Future, sync::Arc};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};

use crate::health::{down_error, Health, SUSPECT_AFTER};

/// The store's connection: a `DatabaseConnection` that fails fast while
/// the database is down. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    conn: DatabaseConnection,
    health: Arc<Health>,
}

/// A transaction begun on a [`Db`]. Dropped without `commit`, it rolls back.
#[derive(Debug)]
pub(crate) struct Txn {
    inner: DatabaseTransaction,
    health: Arc<Health>,
    /// The up period it began in.
    epoch: u64,
}

impl Db {
    pub(crate) fn new(conn: DatabaseConnection, health: Arc<Health>) -> Db {
        Db { conn, health }
    }

    /// The pool itself, unguarded (migrations, pool statistics, closing).
    pub(crate) fn inner(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub(crate) fn health(&self) -> &Health {
        &self.health
    }

    /// Begins a transaction: fails at once while the database is down, and
    /// waits for a connection only until it goes down.
    ///
    /// The `BEGIN` runs in a task of its own that is never cancelled: when
    /// the request gives up, the task still finishes the `BEGIN` and drops
    /// the transaction, which queues its `ROLLBACK` on the connection.
    /// Cancelling a `BEGIN` already sent would return the connection to the
    /// pool inside a transaction sqlx does not know of.
    pub(crate) async fn begin(&self) -> Result<Txn, DbErr> {
        let conn = self.conn.clone();
        let task = tokio::spawn(async move { conn.begin().await });
        let begun = async move {
            task.await
                .map_err(|e| DbErr::Custom(format!("the BEGIN task failed: {e}")))?
        };
        let (inner, epoch) = self.guarded(begun).await?;
        Ok(Txn {
            inner,
            health: self.health.clone(),
            epoch,
        })
    }

    /// Runs `op` (a statement on the pool, or `begin`) unless the database
    /// is down, and gives up on it when the database goes down meanwhile.
    /// Returns the epoch it ran in.
    async fn guarded<T>(
        &self,
        op: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<(T, u64), DbErr> {
        let (seen, mut watcher) = self.health.watch();
        if !seen.up {
            return Err(down_error());
        }
        let health = &self.health;
        let woken = async {
            let down = watcher.wait_for(|s| !s.up || s.epoch != seen.epoch);
            tokio::pin!(down);
            if tokio::time::timeout(SUSPECT_AFTER, &mut down)
                .await
                .is_err()
            {
                health.suspect();
                let _ = down.await;
            }
        };
        let result = tokio::select! {
            biased;
            r = op => r,
            () = woken => Err(down_error()),
        };
        match result {
            Ok(v) => Ok((v, seen.epoch)),
            Err(e) => {
                self.health.observe(&e, seen.epoch);
                Err(e)
            }
        }
    }
}

impl Txn {
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        let Txn {
            inner,
            health,
            epoch,
        } = self;
        inner
            .commit()
            .await
            .inspect_err(|e| health.observe(e, epoch))
    }

    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        let Txn {
            inner,
            health,
            epoch,
        } = self;
        inner
            .rollback()
            .await
            .inspect_err(|e| health.observe(e, epoch))
    }

    fn seen<T>(&self, r: Result<T, DbErr>) -> Result<T, DbErr> {
        r.inspect_err(|e| self.health.observe(e, self.epoch))
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        Ok(self.guarded(self.conn.execute(stmt)).await?.0)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        Ok(self.guarded(self.conn.execute_unprepared(sql)).await?.0)
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        Ok(self.guarded(self.conn.query_one(stmt)).await?.0)
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        Ok(self.guarded(self.conn.query_all(stmt)).await?.0)
    }

    fn support_returning(&self) -> bool {
        ConnectionTrait::support_returning(&self.conn)
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Txn {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.seen(self.inner.execute(stmt).await)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.seen(self.inner.execute_unprepared(sql).await)
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.seen(self.inner.query_one(stmt).await)
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.seen(self.inner.query_all(stmt).await)
    }

    fn support_returning(&self) -> bool {
        ConnectionTrait::support_returning(&self.inner)
    }
}
