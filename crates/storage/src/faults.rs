//! Fault injection for tests (feature `fault-injection`, and this crate's
//! own tests): a SQLite database that is full, as on a full disk, on every
//! connection the store uses.

use sea_orm::{sqlx, DatabaseConnection, DbErr, RuntimeErr};

use crate::{Store, StoreError};

/// SQLite's largest page count (`SQLITE_MAX_PAGE_COUNT`): the pragma clamps
/// larger values to it, so setting it lifts any limit.
const NO_PAGE_LIMIT: u64 = 0xffff_fffe;

impl Store {
    /// Caps the SQLite database at `pages` pages (`PRAGMA max_page_count`;
    /// SQLite never sets it below the file's current size, so `Some(1)`
    /// means "full now") on every pooled connection and every connection
    /// opened later; `None` lifts the cap. Writes that need a new page then
    /// fail with SQLITE_FULL, exactly as when the disk is full.
    ///
    /// The pragma belongs to a connection, so this holds every connection
    /// of the pool at once while it applies it: call it when no request
    /// holds one connection while waiting for a second.
    pub async fn sqlite_page_limit(&self, pages: Option<u32>) -> Result<(), StoreError> {
        let DatabaseConnection::SqlxSqlitePoolConnection(_) = self.db.inner() else {
            return Err(StoreError::InvalidUrl(
                "a page limit needs a SQLite database".into(),
            ));
        };
        let value = pages.map_or(NO_PAGE_LIMIT, u64::from);
        let pool = self.db.inner().get_sqlite_connection_pool();
        let opts = (*pool.connect_options())
            .clone()
            .pragma("max_page_count", value.to_string());
        pool.set_connect_options(opts);
        let failed = |e: sqlx::Error| StoreError::from(DbErr::Exec(RuntimeErr::SqlxError(e)));
        let mut held = Vec::new();
        for _ in 0..pool.options().get_max_connections() {
            held.push(pool.acquire().await.map_err(failed)?);
        }
        let pragma = format!("PRAGMA max_page_count = {value}");
        for conn in &mut held {
            sqlx::query(&pragma)
                .execute(&mut **conn)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
}
