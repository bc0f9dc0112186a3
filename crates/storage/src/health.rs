//! The database's health, one state per [`Store`](crate::Store): up or
//! down, so that while the database is away every operation fails at once
//! instead of each waiting out the pool's acquire timeout.
//!
//! - Down: the first connection-class error an operation meets
//!   ([`crate::error::is_connection_lost`]), or a probe that cannot reach
//!   the database. The change is published on a `watch` channel, which
//!   wakes every operation still waiting for a connection (`guarded.rs`).
//! - Suspicion: an operation that has waited [`SUSPECT_AFTER`] asks for a
//!   probe, so a database that went away while the pool was idle is found
//!   within about that time, not after the pool's 3 s. One probe at a time,
//!   at most one per probe interval.
//! - Up again: while down, a probe every probe interval; the first that
//!   succeeds marks the database up. Only this recovery probe marks up.
//!
//! The probe: PostgreSQL, a direct connection (not through the pool, whose
//! connections may be the dead ones) with `SELECT 1`, within
//! [`PROBE_TIMEOUT`]; SQLite, `SELECT 1` through the pool within the same
//! time (a slow answer there is congestion, never "down").
//!
//! Each up period has an epoch. An error or a probe result from an earlier
//! epoch (an operation that began before the database came back) does not
//! mark the new period down.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Weak,
    },
    time::{Duration, Instant},
};

use sea_orm::{
    sqlx::{self, postgres::PgConnectOptions, Connection as _},
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement,
};
use tokio::sync::{watch, Notify};

use crate::{
    error::{cannot_write_now, is_connection_lost, sqlx_connection_lost},
    Backend,
};

/// How long an operation waits for the database before it asks for a probe.
pub(crate) const SUSPECT_AFTER: Duration = Duration::from_millis(100);
/// How long a probe may take. A PostgreSQL server that does not answer a
/// new connection in this time counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The probe interval unless configured otherwise.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// At most one warning per this time while the database refuses writes.
const WRITE_FAULT_LOG_EVERY: Duration = Duration::from_secs(60);

/// The state every operation reads before it starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Status {
    pub(crate) up: bool,
    /// Counts the up periods; an error marks down only the period it began in.
    pub(crate) epoch: u64,
    /// When the current state began.
    since: Instant,
}

/// How to ask the database whether it answers.
pub(crate) enum Probe {
    /// A direct connection with these options (their `Debug` would show the password).
    Postgres(Box<PgConnectOptions>),
    /// `SELECT 1` through the pool.
    Sqlite(DatabaseConnection),
}

enum Outcome {
    Up,
    /// Unreachable, with the reason for the log.
    Down(String),
    /// The database answered, but not "yes" (busy, out of connections,
    /// refused our credentials): no reason to change the state.
    Unknown,
}

/// One store's view of its database.
pub(crate) struct Health {
    status: watch::Sender<Status>,
    suspect: Arc<Notify>,
    probe: Probe,
    backend: Backend,
    interval: Duration,
    closed: AtomicBool,
    /// When a refused write (full, read-only, I/O error) was last logged.
    write_fault_logged: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("up", &self.is_up())
            .field("backend", &self.backend)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The error an operation gets while the database is marked down. A
/// connection error, so `StoreError::from` makes it `Unavailable`.
/// PostgreSQL's own word that it is going away or not there yet: 57P01
/// admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now.
fn server_shutting_down(e: &DbErr) -> bool {
    let (DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::Database(d)))
    | DbErr::Exec(RuntimeErr::SqlxError(sqlx::Error::Database(d)))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Database(d)))) = e
    else {
        return false;
    };
    matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
}

pub(crate) fn down_error() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(
        "the database is down (failing fast until a probe reaches it)".to_owned(),
    ))
}

impl Health {
    /// A health state that starts up, with its monitor task (probes on
    /// suspicion and while down; ends when the state is dropped).
    pub(crate) fn start(probe: Probe, backend: Backend, interval: Duration) -> Arc<Health> {
        let (status, watcher) = watch::channel(Status {
            up: true,
            epoch: 0,
            since: Instant::now(),
        });
        let suspect = Arc::new(Notify::new());
        let health = Arc::new(Health {
            status,
            suspect: suspect.clone(),
            probe,
            backend,
            interval,
            closed: AtomicBool::new(false),
            write_fault_logged: std::sync::Mutex::new(None),
        });
        tokio::spawn(monitor(Arc::downgrade(&health), watcher, suspect));
        health
    }

    /// Is the database up? Memory only.
    pub(crate) fn is_up(&self) -> bool {
        self.status.borrow().up
    }

    /// The state now, and a receiver that sees every later change.
    pub(crate) fn watch(&self) -> (Status, watch::Receiver<Status>) {
        let rx = self.status.subscribe();
        let now = *rx.borrow();
        (now, rx)
    }

    /// An operation has waited long: ask the monitor for a probe (it runs
    /// at most one per interval, and none while the database is down).
    pub(crate) fn suspect(&self) {
        self.suspect.notify_one();
    }

    /// An operation of `epoch` failed with `e`. The server saying it is
    /// shutting down or starting up marks the database down; any other
    /// lost connection (one connection reset, a pool time-out under load)
    /// only asks for a probe, which marks it down if it cannot connect:
    /// load alone must not switch every request to failing fast. A refused
    /// write (full, read-only, failing I/O: the database is up and reads
    /// work) is logged at most once per [`WRITE_FAULT_LOG_EVERY`].
    pub(crate) fn observe(&self, e: &DbErr, epoch: u64) {
        if server_shutting_down(e) {
            self.mark_down(epoch, &e.to_string());
        } else if is_connection_lost(e, self.backend) {
            self.suspect();
        } else if cannot_write_now(e) {
            let Ok(mut last) = self.write_fault_logged.lock() else {
                return;
            };
            if last.is_none_or(|t| t.elapsed() >= WRITE_FAULT_LOG_EVERY) {
                *last = Some(Instant::now());
                tracing::warn!(
                    error = %e,
                    "the database refuses writes (full, read-only or failing I/O): writes answer 503, reads go on"
                );
            }
        }
    }

    /// The store is closing: no more probes.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn mark_down(&self, epoch: u64, reason: &str) {
        let changed = self.status.send_if_modified(|s| {
            if !s.up || s.epoch != epoch {
                return false;
            }
            s.up = false;
            s.since = Instant::now();
            true
        });
        if changed {
            tracing::warn!(
                error = reason,
                probe_interval_ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX),
                "the database is unreachable: failing fast until a probe reaches it"
            );
        }
    }

    fn mark_up(&self) {
        let mut down_for = None;
        self.status.send_if_modified(|s| {
            if s.up {
                return false;
            }
            down_for = Some(s.since.elapsed());
            *s = Status {
                up: true,
                epoch: s.epoch + 1,
                since: Instant::now(),
            };
            true
        });
        if let Some(d) = down_for {
            tracing::info!(
                down_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                "the database is reachable again"
            );
        }
    }

    async fn probe(&self) -> Outcome {
        match &self.probe {
            Probe::Postgres(opts) => {
                let attempt = async {
                    let mut conn = sqlx::PgConnection::connect_with(opts).await?;
                    let answer = sqlx::query("SELECT 1").execute(&mut conn).await;
                    let _ = conn.close().await;
                    answer.map(|_| ())
                };
                match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
                    Ok(Ok(())) => Outcome::Up,
                    Ok(Err(e)) if sqlx_connection_lost(&e, self.backend) => {
                        Outcome::Down(e.to_string())
                    }
                    // The server answered (too many connections, a refused
                    // login ...): it is reachable; requests meet their own
                    // errors.
                    Ok(Err(sqlx::Error::Database(_))) => Outcome::Up,
                    Ok(Err(_)) => Outcome::Unknown,
                    Err(_) => Outcome::Down(format!(
                        "no answer to a new connection within {} ms",
                        PROBE_TIMEOUT.as_millis()
                    )),
                }
            }
            Probe::Sqlite(db) => {
                let select = db.query_one(Statement::from_string(DbBackend::Sqlite, "SELECT 1"));
                match tokio::time::timeout(PROBE_TIMEOUT, select).await {
                    Ok(Ok(_)) => Outcome::Up,
                    Ok(Err(e)) if is_connection_lost(&e, self.backend) => {
                        Outcome::Down(e.to_string())
                    }
                    Ok(Err(_)) | Err(_) => Outcome::Unknown,
                }
            }
        }
    }
}

/// The monitor: while up, a probe when an operation is suspicious (then a
/// pause of one interval); while down, a probe every interval until one
/// succeeds. Holds the state weakly: it ends with the last `Store` clone.
async fn monitor(health: Weak<Health>, mut watcher: watch::Receiver<Status>, suspect: Arc<Notify>) {
    loop {
        let went_down = async { watcher.wait_for(|s| !s.up).await.is_ok() };
        tokio::select! {
            down = went_down => {
                if !down {
                    return; // the state is gone
                }
            }
            () = suspect.notified() => {
                let Some(h) = health.upgrade() else { return };
                let seen = *h.status.borrow();
                if seen.up {
                    if let Outcome::Down(reason) = h.probe().await {
                        h.mark_down(seen.epoch, &reason);
                    }
                }
                let interval = h.interval;
                drop(h);
                tokio::time::sleep(interval).await;
                continue;
            }
        }
        loop {
            let Some(h) = health.upgrade() else { return };
            let interval = h.interval;
            drop(h);
            tokio::time::sleep(interval).await;
            let Some(h) = health.upgrade() else { return };
            if h.closed.load(Ordering::SeqCst) {
                return;
            }
            if let Outcome::Up = h.probe().await {
                h.mark_up();
                break;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;
