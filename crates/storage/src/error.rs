//! The storage crate's one error type.

use sea_orm::{DbErr, SqlErr};

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
        match e {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => StoreError::Unavailable(e.to_string()),
            other => StoreError::Db(other),
        }
    }
}

impl StoreError {
    /// True when the failure is the database being away (retry later, answer 503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Db(DbErr::Exec(e)) | StoreError::Db(DbErr::Query(e)) => {
                let s = e.to_string();
                s.contains("Connection refused")
                    || s.contains("connection closed")
                    || s.contains("pool timed out")
                    || s.contains("database is locked")
            }
            _ => false,
        }
    }
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}
