//! The `gatehouse` command line, run as a real subprocess: admin commands on
//! fresh SQLite and PostgreSQL databases, a running server picking up admin
//! changes, and the refusal of bad configuration with one clear line.
//!
//! Every run gets a fresh database, a fresh working directory, a random
//! key-encryption key and `GATEHOUSE_LOG=warn`; no `GATEHOUSE_*` variable of
//! the test's own environment leaks into the child. Whatever a command does,
//! its stderr must never show a panic or a backtrace hint; a failing command
//! must exit non-zero with exactly one `error: ...` line on stderr and
//! nothing on stdout.
//!
//! One file per command or concern; the harness is in `support.rs`. A
//! scenario that runs on both backends is an `async fn name(env: &Env)`
//! listed in its file's `both_backends!`, which makes `FILE::sqlite::name`
//! and `FILE::postgres::name`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Runs each scenario of the calling file on SQLite and on PostgreSQL:
/// `sqlite::NAME` and `postgres::NAME` beside it.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let env = $crate::support::Env::new(gatehouse_testkit::db::DbKind::Sqlite)
                        .await
                        .unwrap();
                    super::$name(&env).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(env) =
                        $crate::support::Env::new(gatehouse_testkit::db::DbKind::Postgres).await
                    else {
                        return;
                    };
                    super::$name(&env).await;
                }
            )*
        }
    };
}

mod support;

mod bench;
mod branding;
mod clients;
mod config;
mod keys;
mod logs;
mod mfa;
mod migrate;
mod password_policy;
mod require_acr;
mod resources;
mod serve;
mod set_password;
mod token_exchange;
mod update;
mod users;
