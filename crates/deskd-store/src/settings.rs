//! Account settings: a small key/value table.

use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{first, text};

pub async fn get(conn: &mut AnyConnection, key: &str) -> Result<Option<String>, StoreError> {
    let row = first(
        conn,
        sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key.to_owned()),
    )
    .await?;
    row.map(|r| text(&r, "value")).transpose()
}

pub async fn set(conn: &mut AnyConnection, key: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(key.to_owned())
        .bind(value.to_owned())
        .execute(conn)
        .await?;
    Ok(())
}
