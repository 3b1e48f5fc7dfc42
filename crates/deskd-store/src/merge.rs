//! `PUT /users/{id}/merge`, the store side of `deskd_model::merge`: both users locked (in id
//! order) and read, the model decides, the plan is written in the same transaction.

use deskd_model::Rejection;
use deskd_model::merge::{self, MergeFacts};
use deskd_model::role::Actor;
use deskd_model::user::UserRecord;
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::b;

/// Merges user `source` into user `target` for `actor`; the target as it is after.
pub async fn merge_users(
    conn: &mut AnyConnection,
    source: i64,
    target: i64,
    actor: Actor,
    now: i64,
) -> Result<Result<UserRecord, Rejection>, StoreError> {
    let mut ids = vec![source, target];
    ids.sort_unstable();
    ids.dedup();
    crate::users::lock(conn, &ids).await?;
    let found = crate::users::load_many_with_identities(conn, &ids).await?;
    let pick = |id: i64| found.iter().find(|(u, _)| u.id == id).cloned();
    let facts = MergeFacts {
        source: pick(source),
        target: pick(target),
    };
    let plan = match merge::plan(actor, &facts, now) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    for (identity, primary) in &plan.moved {
        sqlx::query(
            "UPDATE identities SET user_id = $1, is_primary = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(plan.target.id)
        .bind(b(*primary))
        .bind(now)
        .bind(*identity)
        .execute(&mut *conn)
        .await?;
    }
    if let Some((before, _)) = &facts.target {
        crate::users::update(conn, before, &plan.target).await?;
    }
    // The source's organization memberships move to the target too (both users are locked).
    let target_ms = crate::memberships::for_user(conn, plan.target.id).await?;
    let source_ms = crate::memberships::for_user(conn, plan.source_id).await?;
    let absorbed = deskd_model::membership::absorb(
        plan.target.id,
        &target_ms,
        &source_ms,
        plan.target.organization_id,
        now,
    );
    crate::memberships::apply(conn, plan.target.id, &absorbed, now).await?;
    let removed: Vec<i64> = source_ms.iter().map(|m| m.id).collect();
    let gone = deskd_model::membership::Plan {
        delete: removed,
        user_organization: Some(None),
        ..Default::default()
    };
    crate::memberships::apply(conn, plan.source_id, &gone, now).await?;
    crate::users::soft_delete(conn, plan.source_id, now).await?;
    crate::credentials::bump_epoch(&mut *conn).await?;
    Ok(Ok(plan.target))
}
