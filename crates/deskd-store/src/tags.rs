//! The Tags endpoints' writes: the store side of `deskd_model::tags`. A user's tags change on
//! the user write path (lock the user, read it, let the model decide, write the plan); an
//! organization's under its row lock.

use deskd_model::Rejection;
use deskd_model::role::Actor;
use deskd_model::tags::{self, TagOp};
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::json;

type Decided<T> = Result<T, Rejection>;

/// Applies `op` with `given` to the tags of user `id` for `actor`; the tags after.
pub async fn user(
    conn: &mut AnyConnection,
    id: i64,
    op: TagOp,
    given: &[String],
    actor: Actor,
    now: i64,
) -> Result<Decided<Vec<String>>, StoreError> {
    crate::users::lock(conn, &[id]).await?;
    let user = crate::users::load(conn, id).await?;
    match tags::plan_user(op, given, actor, user.as_ref(), now) {
        Err(r) => Ok(Err(r)),
        Ok(None) => Ok(Ok(user.map(|u| u.tags).unwrap_or_default())),
        Ok(Some(after)) => {
            sqlx::query("UPDATE users SET tags = $1, updated_at = $2 WHERE id = $3")
                .bind(json(&after.tags))
                .bind(after.updated_at)
                .bind(after.id)
                .execute(&mut *conn)
                .await?;
            Ok(Ok(after.tags))
        }
    }
}

/// Applies `op` with `given` to the tags of organization `id`; the tags after.
pub async fn organization(
    conn: &mut AnyConnection,
    id: i64,
    op: TagOp,
    given: &[String],
    now: i64,
) -> Result<Decided<Vec<String>>, StoreError> {
    crate::organizations::lock(conn, id, "FOR UPDATE").await?;
    let Some(org) = crate::organizations::load(conn, id).await? else {
        return Ok(Err(Rejection::NotFound));
    };
    let after = match tags::apply(op, &org.tags, given) {
        Ok(t) => t,
        Err(e) => return Ok(Err(Rejection::Invalid(e))),
    };
    if after != org.tags {
        sqlx::query("UPDATE organizations SET tags = $1, updated_at = $2 WHERE id = $3")
            .bind(json(&after))
            .bind(now.max(org.updated_at))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Ok(after))
}
