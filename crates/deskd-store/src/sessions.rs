//! The admin pages' sessions (`web_sessions`): stored by the digest of the cookie's secret, with
//! what sign-in checked (role, a digest of the password hash) so that the model can tell whether
//! a session still holds.

use deskd_model::Role;
use deskd_model::session::{Opened, UserNow};
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{all, first, flag, int, opt_text, text};

/// A session and its user as they are now (`None` for a user no longer there).
#[derive(Clone, Debug)]
pub struct Found {
    pub user_id: i64,
    pub opened: Opened,
    pub user: Option<UserNow>,
}

fn role(raw: &str) -> Result<Role, StoreError> {
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("role {raw:?}")))
}

/// Opens a session; expired ones are cleared on the way (sign-ins are rare, so this stays cheap).
pub async fn insert(
    conn: &mut AnyConnection,
    digest: &str,
    user_id: i64,
    opened: &Opened,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO web_sessions (digest, user_id, role, password_digest, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(digest.to_owned())
    .bind(user_id)
    .bind(opened.role.as_str().to_owned())
    .bind(opened.password_digest.clone())
    .bind(now)
    .bind(opened.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The session whose secret has `digest`, with its user's current role, state and password hash
/// (the hash itself: the caller digests it, so that the store never decides).
pub async fn load(
    conn: &mut AnyConnection,
    digest: &str,
) -> Result<Option<(Found, Option<String>)>, StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "SELECT s.user_id, s.role, s.password_digest, s.expires_at, \
             u.role AS user_role, u.active, u.suspended, u.password_hash \
             FROM web_sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.digest = $1",
        )
        .bind(digest.to_owned()),
    )
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let opened = Opened {
        role: role(&text(&r, "role")?)?,
        password_digest: text(&r, "password_digest")?,
        expires_at: int(&r, "expires_at")?,
    };
    let user = match opt_text(&r, "user_role")? {
        None => None,
        Some(raw) => Some(UserNow {
            role: role(&raw)?,
            active: flag(&r, "active")?,
            suspended: flag(&r, "suspended")?,
            password_digest: None,
        }),
    };
    let hash = opt_text(&r, "password_hash")?;
    Ok(Some((
        Found {
            user_id: int(&r, "user_id")?,
            opened,
            user,
        },
        hash,
    )))
}

/// Ends a session and bumps the credentials epoch, so that every process drops it from its
/// cache; false when there was none.
pub async fn delete(conn: &mut AnyConnection, digest: &str) -> Result<bool, StoreError> {
    let gone = !all(
        conn,
        sqlx::query("DELETE FROM web_sessions WHERE digest = $1 RETURNING digest")
            .bind(digest.to_owned()),
    )
    .await?
    .is_empty();
    if gone {
        crate::credentials::bump_epoch(conn).await?;
    }
    Ok(gone)
}
