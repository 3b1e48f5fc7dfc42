//! Credentials: account API tokens and OAuth-style bearer tokens, both stored as SHA-256 digests
//! only, and the user behind an email address.

use deskd_model::Role;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::rows::{all, first, flag, int, opt_text, text};

/// What authentication needs to know about a user.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: i64,
    pub role: Role,
    pub active: bool,
    pub suspended: bool,
    pub password_hash: Option<String>,
    /// For token logins: whether the presented account API token is active.
    pub token_ok: bool,
}

fn principal(r: &AnyRow) -> Result<Principal, StoreError> {
    let role = text(r, "role")?;
    Ok(Principal {
        user_id: int(r, "id")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        active: flag(r, "active")?,
        suspended: flag(r, "suspended")?,
        password_hash: opt_text(r, "password_hash")?,
        token_ok: int(r, "token_ok")? > 0,
    })
}

/// The user whose email identity is `email`, and (in the same query) whether `token_digest`
/// names an active account API token.
pub async fn principal_by_email(
    conn: &mut AnyConnection,
    email: &str,
    token_digest: &str,
) -> Result<Option<Principal>, StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "SELECT u.id, u.role, u.active, u.suspended, u.password_hash, \
             (SELECT COUNT(*) FROM api_tokens t WHERE t.digest = $2 AND t.active = 1) AS token_ok \
             FROM identities i JOIN users u ON u.id = i.user_id WHERE i.type = 'email' AND i.value_norm = $1",
        )
        .bind(deskd_model::text::normalize(email))
        .bind(token_digest.to_owned()),
    )
    .await?;
    row.as_ref().map(principal).transpose()
}

/// The user an OAuth bearer token was issued for, with the token's scopes.
pub async fn principal_by_bearer(
    conn: &mut AnyConnection,
    digest: &str,
) -> Result<Option<(Principal, Vec<String>)>, StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "SELECT u.id, u.role, u.active, u.suspended, u.password_hash, 1 AS token_ok, o.scopes \
             FROM oauth_tokens o JOIN users u ON u.id = o.user_id WHERE o.digest = $1",
        )
        .bind(digest.to_owned()),
    )
    .await?;
    match row {
        None => Ok(None),
        Some(r) => {
            let scopes = crate::rows::string_list(&r, "scopes")?;
            Ok(Some((principal(&r)?, scopes)))
        }
    }
}

pub async fn insert_api_token(
    conn: &mut AnyConnection,
    digest: &str,
    description: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let row = first(
        conn,
        sqlx::query("INSERT INTO api_tokens (digest, description, active, created_at) VALUES ($1, $2, 1, $3) RETURNING id")
            .bind(digest.to_owned())
            .bind(description.to_owned())
            .bind(now),
    )
    .await?;
    row.map(|r| int(&r, "id"))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))
}

/// An OAuth token as listed: never the secret, which is not stored.
#[derive(Clone, Debug)]
pub struct OauthToken {
    pub id: i64,
    pub user_id: i64,
    pub scopes: Vec<String>,
    pub created_at: i64,
}

pub async fn insert_oauth_token(
    conn: &mut AnyConnection,
    user_id: i64,
    digest: &str,
    scopes: &[String],
    now: i64,
) -> Result<OauthToken, StoreError> {
    let scopes_json = serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into());
    let row = first(
        conn,
        sqlx::query("INSERT INTO oauth_tokens (user_id, digest, scopes, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(user_id)
            .bind(digest.to_owned())
            .bind(scopes_json)
            .bind(now),
    )
    .await?;
    let id = row
        .map(|r| int(&r, "id"))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))?;
    Ok(OauthToken {
        id,
        user_id,
        scopes: scopes.to_vec(),
        created_at: now,
    })
}

/// Deletes an OAuth token (bumping the credentials epoch); false when there was none.
pub async fn delete_oauth_token(conn: &mut AnyConnection, id: i64) -> Result<bool, StoreError> {
    bump_epoch(&mut *conn).await?;
    let rows = all(
        conn,
        sqlx::query("DELETE FROM oauth_tokens WHERE id = $1 RETURNING id").bind(id),
    )
    .await?;
    Ok(!rows.is_empty())
}

tokio::task_local! {
    /// Set by [`bump_epoch`] inside a unit of work that `Store::write` runs; the writer reads it
    /// after the commit and drops this process's cached logins at once. Other processes follow
    /// the database's epoch.
    pub(crate) static EPOCH_BUMPED: std::cell::Cell<bool>;
}

/// Records, inside the caller's transaction, that access was taken away from someone. The only
/// way to say so: the write that calls it invalidates every cached login once it commits.
pub async fn bump_epoch(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE credentials_epoch SET epoch = epoch + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    crate::listen::notify(conn, crate::listen::CREDENTIALS).await?;
    let _ = EPOCH_BUMPED.try_with(|b| b.set(true));
    Ok(())
}

pub async fn epoch(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let row = first(
        conn,
        sqlx::query("SELECT epoch FROM credentials_epoch WHERE id = 1"),
    )
    .await?;
    row.map(|r| int(&r, "epoch"))
        .transpose()
        .map(|e| e.unwrap_or(0))
}

/// An account API token as listed: never the secret, which is not stored.
#[derive(Clone, Debug)]
pub struct ApiToken {
    pub id: i64,
    pub description: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn api_token(r: &AnyRow) -> Result<ApiToken, StoreError> {
    let created_at = int(r, "created_at")?;
    Ok(ApiToken {
        id: int(r, "id")?,
        description: opt_text(r, "description")?,
        active: flag(r, "active")?,
        created_at,
        updated_at: crate::rows::opt_int(r, "updated_at")?.unwrap_or(created_at),
    })
}

pub async fn list_api_tokens(conn: &mut AnyConnection) -> Result<Vec<ApiToken>, StoreError> {
    all(conn, sqlx::query("SELECT id, description, active, created_at, updated_at FROM api_tokens WHERE active = 1 ORDER BY id"))
        .await?
        .iter()
        .map(api_token)
        .collect()
}

pub async fn load_api_token(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<ApiToken>, StoreError> {
    let row = first(conn, sqlx::query("SELECT id, description, active, created_at, updated_at FROM api_tokens WHERE id = $1 AND active = 1").bind(id)).await?;
    row.as_ref().map(api_token).transpose()
}

/// Revokes (deletes) an account API token and bumps the credentials epoch; false when none.
pub async fn revoke_api_token(conn: &mut AnyConnection, id: i64) -> Result<bool, StoreError> {
    let gone = !all(
        conn,
        sqlx::query("DELETE FROM api_tokens WHERE id = $1 RETURNING id").bind(id),
    )
    .await?
    .is_empty();
    if gone {
        bump_epoch(conn).await?;
    }
    Ok(gone)
}

/// The user `id` as authentication sees it.
pub async fn principal_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<Principal>, StoreError> {
    let row = first(
        conn,
        sqlx::query("SELECT id, role, active, suspended, password_hash, 0 AS token_ok FROM users WHERE id = $1").bind(id),
    )
    .await?;
    row.as_ref().map(principal).transpose()
}
