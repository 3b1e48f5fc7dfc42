//! Rate-limit buckets in the database, so that replicas sharing it share their limits: one
//! statement takes a token (GCRA) and says whether it was allowed.

use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{first, int};

/// GCRA in one statement: the bucket's theoretical arrival time moves on by `interval_ms` when
/// that stays within `period_ms` of now; otherwise it stays and the call is refused.
/// Returns (allowed, tat_ms after the call).
pub async fn take(
    conn: &mut AnyConnection,
    key: &str,
    now_ms: i64,
    interval_ms: i64,
    period_ms: i64,
) -> Result<(bool, i64), StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "INSERT INTO rate_limits (key, tat_ms, allowed) VALUES ($1, $2 + $3, 1) \
             ON CONFLICT (key) DO UPDATE SET \
               allowed = CASE WHEN (CASE WHEN rate_limits.tat_ms > $2 THEN rate_limits.tat_ms ELSE $2 END) + $3 - $2 <= $4 THEN 1 ELSE 0 END, \
               tat_ms = CASE WHEN (CASE WHEN rate_limits.tat_ms > $2 THEN rate_limits.tat_ms ELSE $2 END) + $3 - $2 <= $4 \
                        THEN (CASE WHEN rate_limits.tat_ms > $2 THEN rate_limits.tat_ms ELSE $2 END) + $3 ELSE rate_limits.tat_ms END \
             RETURNING allowed, tat_ms",
        )
        .bind(key.to_owned())
        .bind(now_ms)
        .bind(interval_ms)
        .bind(period_ms),
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("rate limit upsert returned nothing".into()))?;
    Ok((int(&row, "allowed")? == 1, int(&row, "tat_ms")?))
}

/// Deletes buckets that have drained (their arrival time is in the past).
pub async fn purge(conn: &mut AnyConnection, now_ms: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rate_limits WHERE tat_ms < $1")
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// A bucket's theoretical arrival time, without taking from it.
pub async fn peek(conn: &mut AnyConnection, key: &str) -> Result<Option<i64>, StoreError> {
    let row = first(
        conn,
        sqlx::query("SELECT tat_ms FROM rate_limits WHERE key = $1").bind(key.to_owned()),
    )
    .await?;
    row.map(|r| int(&r, "tat_ms")).transpose()
}

/// Gives back one request taken from `key` (its arrival time moves back by `interval_ms`, never
/// before `now_ms`): for an attempt that was counted up front and turned out not to need counting.
pub async fn refund(
    conn: &mut AnyConnection,
    key: &str,
    now_ms: i64,
    interval_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE rate_limits SET tat_ms = CASE WHEN tat_ms - $2 > $3 THEN tat_ms - $2 ELSE $3 END \
         WHERE key = $1",
    )
    .bind(key.to_owned())
    .bind(interval_ms)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}
