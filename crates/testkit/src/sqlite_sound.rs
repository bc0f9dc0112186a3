//! After a fault, a SQLite database must still be sound: shared by the
//! tests that break one for real (in-process and on a `gatehouse serve`).

#![allow(clippy::unwrap_used)]

use sea_orm::sqlx::{self, Connection as _};

/// `PRAGMA integrity_check` is ok, and every rotated refresh token's
/// successor exists (rotation and successor commit together); checked on a
/// connection of the test's own.
pub async fn assert_sqlite_sound(url: &str) {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let dangling: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refresh_tokens WHERE successor_hash IS NOT NULL \
         AND successor_hash NOT IN (SELECT token_hash FROM refresh_tokens)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(dangling, 0, "a rotated refresh token without its successor");
    conn.close().await.unwrap();
}
