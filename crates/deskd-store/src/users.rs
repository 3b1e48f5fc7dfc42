//! Users and their identities.

use deskd_model::identity::{IdentityKey, IdentityRecord};
use deskd_model::upsert::NewIdentity;
use deskd_model::user::UserRecord;
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{self, Q, all, b, first, int, json};

/// Columns written from a [`UserRecord`], in bind order.
const WRITE_COLUMNS: [&str; 28] = [
    "name", "email", "external_id", "external_id_norm", "role", "custom_role_id", "organization_id",
    "default_group_id", "time_zone", "locale", "locale_id", "phone", "shared_phone_number", "alias",
    "details", "notes", "signature", "remote_photo_url", "ticket_restriction", "tags", "user_fields",
    "moderator", "only_private_comments", "suspended", "verified", "active", "created_at", "updated_at",
];

fn bind_user<'q>(q: Q<'q>, u: &UserRecord) -> Q<'q> {
    q.bind(u.name.clone())
        .bind(u.email.clone())
        .bind(u.external_id.clone())
        .bind(u.external_id.as_deref().map(deskd_model::text::normalize))
        .bind(u.role.as_str())
        .bind(u.custom_role_id)
        .bind(u.organization_id)
        .bind(u.default_group_id)
        .bind(u.time_zone.clone())
        .bind(u.locale.clone())
        .bind(u.locale_id)
        .bind(u.phone.clone())
        .bind(u.shared_phone_number.map(b))
        .bind(u.alias.clone())
        .bind(u.details.clone())
        .bind(u.notes.clone())
        .bind(u.signature.clone())
        .bind(u.remote_photo_url.clone())
        .bind(u.ticket_restriction.clone())
        .bind(json(&u.tags))
        .bind(json(&u.user_fields))
        .bind(b(u.moderator))
        .bind(b(u.only_private_comments))
        .bind(b(u.suspended))
        .bind(b(u.verified))
        .bind(b(u.active))
        .bind(u.created_at)
        .bind(u.updated_at)
}

fn insert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let params: Vec<String> = (1..=WRITE_COLUMNS.len()).map(|i| format!("${i}")).collect();
        format!("INSERT INTO users ({}) VALUES ({}) RETURNING id", WRITE_COLUMNS.join(", "), params.join(", "))
    })
}

fn update_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let sets: Vec<String> = WRITE_COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
        format!("UPDATE users SET {} WHERE id = ${}", sets.join(", "), WRITE_COLUMNS.len() + 1)
    })
}

/// Inserts a user and returns its new id.
pub async fn insert(conn: &mut AnyConnection, u: &UserRecord) -> Result<i64, StoreError> {
    let row = first(conn, bind_user(sqlx::query(insert_sql()), u)).await?;
    row.map(|r| int(&r, "id")).transpose()?.ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))
}

/// Writes every column of an existing user.
pub async fn update(conn: &mut AnyConnection, u: &UserRecord) -> Result<(), StoreError> {
    bind_user(sqlx::query(update_sql()), u).bind(u.id).execute(conn).await?;
    Ok(())
}

pub async fn load(conn: &mut AnyConnection, id: i64) -> Result<Option<UserRecord>, StoreError> {
    let sql = format!("SELECT {} FROM users WHERE id = $1", rows::USER_COLUMNS);
    first(conn, sqlx::query(&sql).bind(id)).await?.map(|r| rows::user(&r)).transpose()
}

/// The user holding `external_id` (compared case-insensitively, trimmed).
pub async fn id_by_external_id(conn: &mut AnyConnection, external_id: &str) -> Result<Option<i64>, StoreError> {
    let norm = deskd_model::text::normalize(external_id);
    let row = first(conn, sqlx::query("SELECT id FROM users WHERE external_id_norm = $1").bind(norm)).await?;
    row.map(|r| int(&r, "id")).transpose()
}

/// The user holding an identity, by type and value (case-insensitive, trimmed).
pub async fn id_by_identity(conn: &mut AnyConnection, kind: &str, value: &str) -> Result<Option<i64>, StoreError> {
    Ok(identity_owners(conn, &[IdentityKey::new(kind, value)]).await?.into_iter().next().map(|(_, id)| id))
}

/// Who holds each of `keys`; keys nobody holds are left out.
pub async fn identity_owners(conn: &mut AnyConnection, keys: &[IdentityKey]) -> Result<Vec<(IdentityKey, i64)>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let clauses: Vec<String> =
        (0..keys.len()).map(|i| format!("(type = ${} AND value_norm = ${})", 2 * i + 1, 2 * i + 2)).collect();
    let sql = format!("SELECT type, value_norm, user_id FROM identities WHERE {}", clauses.join(" OR "));
    let mut q = sqlx::query(&sql);
    for k in keys {
        q = q.bind(k.kind.clone()).bind(k.value_norm.clone());
    }
    all(conn, q)
        .await?
        .iter()
        .map(|r| {
            Ok((
                IdentityKey { kind: rows::text(r, "type")?, value_norm: rows::text(r, "value_norm")? },
                int(r, "user_id")?,
            ))
        })
        .collect()
}

/// A user's identities, primary ones first, then oldest first.
pub async fn identities(conn: &mut AnyConnection, user_id: i64) -> Result<Vec<IdentityRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM identities WHERE user_id = $1 ORDER BY is_primary DESC, id",
        rows::IDENTITY_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(user_id)).await?.iter().map(rows::identity).collect()
}

pub async fn insert_identity(conn: &mut AnyConnection, user_id: i64, n: &NewIdentity, now: i64) -> Result<i64, StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "INSERT INTO identities (user_id, type, value, value_norm, verified, is_primary, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(user_id)
        .bind(n.kind.clone())
        .bind(n.value.clone())
        .bind(deskd_model::text::normalize(&n.value))
        .bind(b(n.verified))
        .bind(b(n.primary))
        .bind(now),
    )
    .await?;
    row.map(|r| int(&r, "id")).transpose()?.ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))
}

/// Sets the verified flag of a user's primary email identity.
pub async fn set_primary_email_verified(conn: &mut AnyConnection, user_id: i64, verified: bool, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE identities SET verified = $1, updated_at = $2 WHERE user_id = $3 AND type = 'email' AND is_primary = 1 AND verified <> $1",
    )
    .bind(b(verified))
    .bind(now)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether any admin exists (deskd creates the first one at start).
pub async fn admin_exists(conn: &mut AnyConnection) -> Result<bool, StoreError> {
    Ok(first(conn, sqlx::query("SELECT id FROM users WHERE role = 'admin' AND active = 1 LIMIT 1")).await?.is_some())
}

pub async fn set_password_hash(conn: &mut AnyConnection, user_id: i64, hash: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(hash.to_owned()).bind(user_id).execute(conn).await?;
    Ok(())
}

pub async fn delete_identity_by_value(conn: &mut AnyConnection, user_id: i64, kind: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM identities WHERE user_id = $1 AND type = $2 AND value_norm = $3")
        .bind(user_id)
        .bind(kind.to_owned())
        .bind(deskd_model::text::normalize(value))
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE users SET email = NULL WHERE id = $1 AND email IS NOT NULL AND lower(trim(email)) = $2")
        .bind(user_id)
        .bind(deskd_model::text::normalize(value))
        .execute(conn)
        .await?;
    Ok(())
}
