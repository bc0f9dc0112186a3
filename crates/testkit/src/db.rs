//! A fresh, empty database per test, on SQLite or PostgreSQL, removed again on drop.
//!
//! It hands out a URL, not a `Store`: each caller opens its own
//! `Store::connect(&db.url)` (this crate depends on no Gatehouse crate).
//!
//! - SQLite: a new file in a new temporary directory.
//! - PostgreSQL: `CREATE DATABASE gh_test_<uuid>` on the server named by
//!   `GATEHOUSE_TEST_POSTGRES_URL`. Without that variable the PostgreSQL
//!   tests are skipped loudly, except under CI (`CI=true`) where that is an
//!   error.

use std::path::PathBuf;

use sea_orm::sqlx::{self, Connection as _};

/// The environment variable naming a PostgreSQL server tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "GATEHOUSE_TEST_POSTGRES_URL";

/// Which engine a [`TestDb`] runs on. (Not `Backend`: that name belongs to
/// `gatehouse_storage::Backend`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

/// A database that exists for one test. Dropping it deletes it.
#[derive(Debug)]
pub struct TestDb {
    /// What to hand to `Store::connect`.
    pub url: String,
    pub kind: DbKind,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    /// Remove this directory (and the SQLite file, WAL and SHM inside it).
    Dir(PathBuf),
    /// Drop database `name` through a connection to `admin_url`.
    PgDatabase { admin_url: String, name: String },
}

/// Creates a fresh, empty database. `None` only when PostgreSQL was asked
/// for, `GATEHOUSE_TEST_POSTGRES_URL` is unset and we are not under CI (the
/// caller then skips its test; a loud line has been printed).
pub async fn fresh(kind: DbKind) -> Option<TestDb> {
    match kind {
        DbKind::Sqlite => Some(fresh_sqlite()),
        DbKind::Postgres => fresh_postgres().await,
    }
}

fn fresh_sqlite() -> TestDb {
    let dir = std::env::temp_dir().join(format!("gatehouse-test-{}", uuid::Uuid::new_v4()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create test directory {}: {e}", dir.display());
    }
    let file = dir.join("gatehouse.db");
    TestDb {
        url: format!("sqlite://{}?mode=rwc", file.display()),
        kind: DbKind::Sqlite,
        cleanup: Cleanup::Dir(dir),
    }
}

async fn fresh_postgres() -> Option<TestDb> {
    let admin_url = match std::env::var(POSTGRES_URL_VAR) {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
                panic!("{POSTGRES_URL_VAR} must be set under CI (e.g. postgres://postgres@127.0.0.1:5432/test)");
            }
            eprintln!("SKIPPED: PostgreSQL tests need {POSTGRES_URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test)");
            return None;
        }
    };
    let name = format!("gh_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot connect to {POSTGRES_URL_VAR} ({}): {e}",
            redact(&admin_url)
        ),
    };
    if let Err(e) = sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
    {
        panic!("cannot create test database {name}: {e}");
    }
    let _ = conn.close().await;
    Some(TestDb {
        url: with_database(&admin_url, &name),
        kind: DbKind::Postgres,
        cleanup: Cleanup::PgDatabase { admin_url, name },
    })
}

/// `url` with its path (the database name) replaced by `/name`; the query
/// string, if any, is kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Hides a password in a URL before it reaches a message.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                if let Err(e) = std::fs::remove_dir_all(dir) {
                    eprintln!(
                        "warning: could not remove test directory {}: {e}",
                        dir.display()
                    );
                }
            }
            Cleanup::PgDatabase { admin_url, name } => {
                // Drop cannot await, and we may be inside a runtime already:
                // do the async work on a thread of its own with its own runtime.
                let admin_url = admin_url.clone();
                let db_name = name.clone();
                let worker = std::thread::spawn(move || -> Result<(), String> {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot start a runtime: {e}"))?;
                    rt.block_on(async {
                        let mut conn = sqlx::PgConnection::connect(&admin_url)
                            .await
                            .map_err(|e| format!("cannot connect: {e}"))?;
                        // WITH (FORCE) (PostgreSQL 13+) ends the store's pooled
                        // connections, which may outlive the test body.
                        let res = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
                        ))
                        .execute(&mut conn)
                        .await
                        .map_err(|e| format!("DROP DATABASE failed: {e}"));
                        let _ = conn.close().await;
                        res.map(|_| ())
                    })
                });
                match worker.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("warning: could not drop test database {name}: {e}"),
                    Err(_) => {
                        eprintln!("warning: the thread dropping test database {name} panicked")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
