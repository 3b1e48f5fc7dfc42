//! A user's identities, one at a time (the identities endpoints): the store side of
//! `deskd_model::identity_plan`.

use deskd_model::Rejection;
use deskd_model::identity::IdentityRecord;
use deskd_model::identity_plan::{self, IdentityFacts, IdentityOp};
use deskd_model::role::Actor;
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

/// The result of an identity write: the identity to show and the user's identities after.
#[derive(Clone, Debug)]
pub struct Applied {
    pub shown: Option<IdentityRecord>,
    pub identities: Vec<IdentityRecord>,
}

/// Runs one identities-endpoint operation inside the caller's transaction: locks the user,
/// reads the facts, lets the model decide, writes the plan (bumping the credentials epoch when
/// it takes access away).
pub async fn apply(
    conn: &mut AnyConnection,
    user_id: i64,
    op: &IdentityOp,
    actor: Actor,
    now: i64,
) -> Result<Result<Applied, Rejection>, StoreError> {
    crate::users::lock(conn, &[user_id]).await?;
    let user = crate::users::load(conn, user_id).await?;
    let identities = match &user {
        Some(_) => crate::users::identities(conn, user_id).await?,
        None => Vec::new(),
    };
    let value_owner = match op.claimed_value(&identities) {
        Some((kind, value)) => crate::users::id_by_identity(conn, &kind, &value).await?,
        None => None,
    };
    let facts = IdentityFacts {
        user,
        identities,
        value_owner,
    };
    let plan = match identity_plan::plan(op, actor, &facts, now) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    if let Some(id) = plan.delete {
        sqlx::query("DELETE FROM identities WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    // Demotions before promotions, so no moment has two primaries of a type.
    let mut updates = plan.update.clone();
    updates.sort_by_key(|i| i.primary);
    for i in &updates {
        sqlx::query(
            "UPDATE identities SET value = $1, value_norm = $2, verified = $3, is_primary = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(i.value.clone())
        .bind(deskd_model::text::normalize(&i.value))
        .bind(b(i.verified))
        .bind(b(i.primary))
        .bind(i.updated_at)
        .bind(i.id)
        .execute(&mut *conn)
        .await?;
    }
    let inserted = match &plan.insert {
        Some(n) => Some(crate::users::insert_identity(conn, user_id, n, now).await?),
        None => None,
    };
    if plan.changed {
        sqlx::query("UPDATE users SET email = $1, verified = $2, updated_at = $3 WHERE id = $4")
            .bind(plan.user_email.clone())
            .bind(b(plan.user_verified))
            .bind(now)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    if plan.reduces_access {
        crate::credentials::bump_epoch(&mut *conn).await?;
    }
    let identities = crate::users::identities(conn, user_id).await?;
    let shown_id = inserted.or(plan.shown);
    let shown = shown_id.and_then(|id| identities.iter().find(|i| i.id == id).cloned());
    Ok(Ok(Applied { shown, identities }))
}
