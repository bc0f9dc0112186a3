//! Opening the database named by a URL, applying migrations, health checks.

use std::{str::FromStr, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    sqlx::{
        postgres::{PgConnectOptions, PgPoolOptions},
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
        ConnectOptions as _, Connection as _,
    },
    ConnectionTrait, DatabaseConnection, DbBackend, SqlxPostgresConnector, SqlxSqliteConnector,
    Statement,
};

use crate::{
    entity::epochs,
    guarded::Db,
    health::{Health, Probe, DEFAULT_PROBE_INTERVAL},
    StoreError,
};

/// Largest PostgreSQL pool per instance.
const PG_MAX_CONNECTIONS: u32 = 16;
/// Largest SQLite pool.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// How long a request waits for a PostgreSQL connection (including
/// reconnecting to a server that went away) before it is answered 503.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The connection pool's use at one moment (for metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open now, in use or idle.
    pub open: u32,
    /// Open connections waiting in the pool.
    pub idle: u32,
    /// The most the pool will open.
    pub max: u32,
}

/// Which database engine a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite: the zero-setup default for one machine.
    Sqlite,
    /// PostgreSQL: for several Gatehouse instances sharing one database.
    Postgres,
}

/// How a [`Store`] watches its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// While the database is down, how often a probe asks whether it is
    /// back; also the least time between two probes on suspicion.
    pub db_probe_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            db_probe_interval: DEFAULT_PROBE_INTERVAL,
        }
    }
}

/// The handle every other crate uses to reach the database. Cheap to clone.
/// Clones share one health state (see [`Store::database_up`]).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: Db,
    backend: Backend,
}

impl Store {
    /// [`Store::connect_with`] with the default options.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, StoreOptions::default()).await
    }

    /// Opens the database named by `url`: `sqlite://PATH` (created if
    /// missing), `sqlite::memory:`, or `postgres://...`. SQLite runs in WAL
    /// mode with a busy timeout so concurrent writers queue rather than fail.
    /// Starts the database's health state (a task probing it while down).
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let interval = options.db_probe_interval;
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(format!("{url}: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .disable_statement_logging();
            let pool = SqlitePoolOptions::new()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .acquire_timeout(Duration::from_secs(10))
                .before_acquire(|conn, _| {
                    Box::pin(std::future::ready(Ok(!left_in_rolled_back_transaction(
                        conn,
                    ))))
                })
                .connect_with(opts)
                .await
                .map_err(|e| {
                    StoreError::Unavailable(format!("cannot open SQLite database {url}: {e}"))
                })?;
            let conn = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
            let health = Health::start(Probe::Sqlite(conn.clone()), Backend::Sqlite, interval);
            let store = Store {
                db: Db::new(conn, health),
                backend: Backend::Sqlite,
            };
            // WAL needs a writable file: surface a read-only file now, not on
            // the first write (unguarded: this error is the whole report).
            store
                .db
                .inner()
                .execute_unprepared("CREATE TABLE IF NOT EXISTS _gatehouse_probe (x INTEGER); DROP TABLE IF EXISTS _gatehouse_probe;")
                .await
                .map_err(|e| StoreError::Unavailable(format!("SQLite database {url} is not writable: {e}")))?;
            Ok(store)
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", redact(url))))?
                .disable_statement_logging();
            // One direct attempt first: the pool would report any failure
            // as a bare time-out, and the operator needs the real reason.
            match tokio::time::timeout(
                Duration::from_secs(10),
                sea_orm::sqlx::PgConnection::connect_with(&opts),
            )
            .await
            {
                Ok(Ok(conn)) => drop(conn),
                Ok(Err(e)) => {
                    return Err(StoreError::Unavailable(format!(
                        "cannot connect to PostgreSQL at {}: {e}",
                        redact(url)
                    )))
                }
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "cannot connect to PostgreSQL at {}: no answer within 10 s",
                        redact(url)
                    )))
                }
            }
            // Outages: a pooled connection is pinged before use and on
            // release, so connections the server dropped (restart, failover)
            // are replaced, not handed out; while the server is away an
            // acquire retries connecting for `PG_ACQUIRE_TIMEOUT` and then
            // fails (503), instead of holding the request.
            let pool = PgPoolOptions::new()
                .max_connections(PG_MAX_CONNECTIONS)
                .min_connections(1)
                .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                .test_before_acquire(true)
                .idle_timeout(Duration::from_secs(300))
                .max_lifetime(Duration::from_secs(1800))
                .connect_with(opts.clone())
                .await
                .map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot connect to PostgreSQL at {}: {e}",
                        redact(url)
                    ))
                })?;
            let health =
                Health::start(Probe::Postgres(Box::new(opts)), Backend::Postgres, interval);
            Ok(Store {
                db: Db::new(SqlxPostgresConnector::from_sqlx_postgres_pool(pool), health),
                backend: Backend::Postgres,
            })
        } else {
            Err(StoreError::InvalidUrl(format!(
                "{}: expected sqlite://PATH or postgres://USER@HOST/DB",
                redact(url)
            )))
        }
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Is the database up, as far as this store knows? Memory only: false
    /// from the first lost connection until a probe reaches the database
    /// again; meanwhile every operation fails at once with
    /// [`StoreError::Unavailable`].
    pub fn database_up(&self) -> bool {
        self.db.health().is_up()
    }

    /// Applies every pending migration. Safe to run on every start and from
    /// several instances at once (sea-orm records applied migrations).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(self.db.inner(), None).await?;
        Ok(())
    }

    /// Names of migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        Ok(Migrator::get_pending_migrations(self.db.inner())
            .await?
            .iter()
            .map(|m| m.name().to_owned())
            .collect())
    }

    /// One trivial round trip: does the database answer? (Fails at once
    /// while the database is marked down.)
    pub async fn ping(&self) -> Result<(), StoreError> {
        let backend: DbBackend = self.db.get_database_backend();
        self.db
            .query_one(Statement::from_string(backend, "SELECT 1"))
            .await?;
        Ok(())
    }

    /// How many pooled connections are open, idle, and allowed.
    pub fn pool_stats(&self) -> PoolStats {
        fn stats<DB: sea_orm::sqlx::Database>(p: &sea_orm::sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                open: p.size(),
                idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                max: p.options().get_max_connections(),
            }
        }
        // Matched on the connection itself: the pool getters panic on the
        // other engine.
        let db = self.db.inner();
        match db {
            DatabaseConnection::SqlxPostgresPoolConnection(_) => {
                stats(db.get_postgres_connection_pool())
            }
            DatabaseConnection::SqlxSqlitePoolConnection(_) => {
                stats(db.get_sqlite_connection_pool())
            }
            _ => PoolStats {
                open: 0,
                idle: 0,
                max: 0,
            },
        }
    }

    /// Closes the pool (graceful shutdown); probing stops.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.health().close();
        self.db.inner().clone().close().await?;
        Ok(())
    }

    /// The change counter named `name` ("keys", "clients", "resources"):
    /// instances poll it to learn that an admin command or another instance
    /// changed something they cache.
    pub async fn epoch(&self, name: &str) -> Result<i64, StoreError> {
        use sea_orm::EntityTrait;
        Ok(epochs::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await?
            .map(|m| m.value)
            .unwrap_or(0))
    }

    pub(crate) async fn bump_epoch<C: ConnectionTrait>(
        c: &C,
        name: &str,
    ) -> Result<(), StoreError> {
        use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
        epochs::Entity::update_many()
            .col_expr(
                epochs::Column::Value,
                Expr::col(epochs::Column::Value).add(1),
            )
            .filter(epochs::Column::Name.eq(name))
            .exec(c)
            .await?;
        Ok(())
    }
}

/// SQLite rolls a whole transaction back by itself on SQLITE_FULL or
/// SQLITE_IOERR; sqlx then still counts it open, so the connection's next
/// transaction would begin as a savepoint, and rolling that back would leave
/// a write transaction, and the database's write lock, open for good (every
/// other write: "database is locked"). Such a connection is closed rather
/// than handed out (the pool flushes pending rollbacks on release).
fn left_in_rolled_back_transaction(conn: &sea_orm::sqlx::SqliteConnection) -> bool {
    let stale = conn.is_in_transaction();
    if stale {
        tracing::warn!("replacing a SQLite connection whose transaction SQLite rolled back");
    }
    stale
}

/// Hides the password in a database URL before it reaches a message.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}
