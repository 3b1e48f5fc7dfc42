//! A user's identities, one at a time (the identities endpoints). The user's `email` mirrors its
//! primary email identity and `verified` whether any identity is verified; `sync_user` keeps both.

use deskd_model::identity::IdentityRecord;
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{self, b, first};

pub async fn load(
    conn: &mut AnyConnection,
    user_id: i64,
    id: i64,
) -> Result<Option<IdentityRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM identities WHERE id = $1 AND user_id = $2",
        rows::IDENTITY_COLUMNS
    );
    first(conn, sqlx::query(&sql).bind(id).bind(user_id))
        .await?
        .map(|r| rows::identity(&r))
        .transpose()
}

pub async fn set_value(
    conn: &mut AnyConnection,
    id: i64,
    value: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE identities SET value = $1, value_norm = $2, updated_at = $3 WHERE id = $4")
        .bind(value.to_owned())
        .bind(deskd_model::text::normalize(value))
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes `id` the primary identity of its type for `user_id`, demoting the others.
pub async fn make_primary(
    conn: &mut AnyConnection,
    user_id: i64,
    id: i64,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE identities SET is_primary = 0, updated_at = $1 WHERE user_id = $2 AND type = $3 AND is_primary = 1 AND id <> $4")
        .bind(now)
        .bind(user_id)
        .bind(kind.to_owned())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE identities SET is_primary = 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes an identity; if it was the primary of its type, the oldest other becomes primary.
pub async fn delete(
    conn: &mut AnyConnection,
    ident: &IdentityRecord,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM identities WHERE id = $1")
        .bind(ident.id)
        .execute(&mut *conn)
        .await?;
    crate::credentials::bump_epoch(&mut *conn).await?;
    if ident.primary {
        let next = first(
            conn,
            sqlx::query(
                "SELECT id FROM identities WHERE user_id = $1 AND type = $2 ORDER BY id LIMIT 1",
            )
            .bind(ident.user_id)
            .bind(ident.kind.clone()),
        )
        .await?;
        if let Some(r) = next {
            make_primary(conn, ident.user_id, rows::int(&r, "id")?, &ident.kind, now).await?;
        }
    }
    Ok(())
}

/// Re-derives the user's `email` (its primary email identity) and `verified` (any identity
/// verified) after its identities changed.
pub async fn sync_user(conn: &mut AnyConnection, user_id: i64, now: i64) -> Result<(), StoreError> {
    let ids = crate::users::identities(conn, user_id).await?;
    let email = ids
        .iter()
        .find(|i| i.kind == "email" && i.primary)
        .map(|i| i.value.clone());
    let verified = ids.iter().any(|i| i.verified);
    sqlx::query("UPDATE users SET email = $1, verified = $2, updated_at = $3 WHERE id = $4")
        .bind(email)
        .bind(b(verified))
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
