//! Organization memberships. Every write locks the users whose memberships it changes
//! (`users::lock`, PostgreSQL), reads their memberships after, asks `deskd_model::membership`
//! for a plan and applies it here, inside the caller's transaction. `users.organization_id`
//! always mirrors the default membership.

use std::collections::HashMap;

use deskd_model::Rejection;
use deskd_model::membership::{self, AddFacts, MembershipInput, MembershipRecord, Plan};
use deskd_model::role::Actor;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::rows::{Params, all, first, flag, int, text};
use crate::{organizations, users};

type Decided<T> = Result<T, Rejection>;

const COLUMNS: &str = "m.id, m.user_id, m.organization_id, m.is_default, m.view_tickets, \
     m.created_at, m.updated_at, o.name AS organization_name";
const FROM: &str = "organization_memberships m JOIN organizations o ON o.id = m.organization_id";

fn record(r: &AnyRow) -> Result<MembershipRecord, StoreError> {
    Ok(MembershipRecord {
        id: int(r, "id")?,
        user_id: int(r, "user_id")?,
        organization_id: int(r, "organization_id")?,
        default: flag(r, "is_default")?,
        view_tickets: flag(r, "view_tickets")?,
        organization_name: text(r, "organization_name")?,
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
    })
}

/// Whose memberships a list reads.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    All,
    User(i64),
    Organization(i64),
}

impl Scope {
    fn clause(self) -> (&'static str, Option<i64>) {
        match self {
            Scope::All => ("1 = 1", None),
            Scope::User(id) => ("m.user_id = $1", Some(id)),
            Scope::Organization(id) => ("m.organization_id = $1", Some(id)),
        }
    }
}

pub async fn load(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<MembershipRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE m.id = $1");
    first(conn, sqlx::query(&sql).bind(id))
        .await?
        .map(|r| record(&r))
        .transpose()
}

/// A user's memberships, by id.
pub async fn for_user(
    conn: &mut AnyConnection,
    user_id: i64,
) -> Result<Vec<MembershipRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE m.user_id = $1 ORDER BY m.id");
    all(conn, sqlx::query(&sql).bind(user_id))
        .await?
        .iter()
        .map(record)
        .collect()
}

/// The memberships of each of `user_ids`, by id.
pub async fn for_users(
    conn: &mut AnyConnection,
    user_ids: &[i64],
) -> Result<HashMap<i64, Vec<MembershipRecord>>, StoreError> {
    let mut out: HashMap<i64, Vec<MembershipRecord>> = HashMap::new();
    for chunk in user_ids.chunks(crate::rows::MAX_BOUND) {
        let sql = format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE m.user_id IN ({}) ORDER BY m.id",
            Params::new(conn).list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in all(conn, q).await? {
            let m = record(&r)?;
            out.entry(m.user_id).or_default().push(m);
        }
    }
    Ok(out)
}

/// How many memberships `scope` has.
pub async fn count(conn: &mut AnyConnection, scope: Scope) -> Result<i64, StoreError> {
    let (clause, arg) = scope.clause();
    let sql = format!("SELECT COUNT(*) AS n FROM {FROM} WHERE {clause}");
    let mut q = sqlx::query(&sql);
    if let Some(a) = arg {
        q = q.bind(a);
    }
    Ok(first(conn, q)
        .await?
        .map(|r| int(&r, "n"))
        .transpose()?
        .unwrap_or(0))
}

/// One offset page: a user's memberships default first, then by organization name (as Zendesk
/// lists them); others by id.
pub async fn page(
    conn: &mut AnyConnection,
    scope: Scope,
    offset: i64,
    limit: i64,
) -> Result<Vec<MembershipRecord>, StoreError> {
    let (clause, arg) = scope.clause();
    let order = match scope {
        Scope::User(_) => "m.is_default DESC, lower(o.name), m.id",
        _ => "m.id",
    };
    let n = if arg.is_some() { 2 } else { 1 };
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE {clause} ORDER BY {order} LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let mut q = sqlx::query(&sql);
    if let Some(a) = arg {
        q = q.bind(a);
    }
    all(conn, q.bind(limit).bind(offset))
        .await?
        .iter()
        .map(record)
        .collect()
}

/// One cursor page, by id, after `after`.
pub async fn page_after(
    conn: &mut AnyConnection,
    scope: Scope,
    after: i64,
    limit: i64,
) -> Result<Vec<MembershipRecord>, StoreError> {
    let (clause, arg) = scope.clause();
    let n = if arg.is_some() { 2 } else { 1 };
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE {clause} AND m.id > ${n} ORDER BY m.id LIMIT ${}",
        n + 1
    );
    let mut q = sqlx::query(&sql);
    if let Some(a) = arg {
        q = q.bind(a);
    }
    all(conn, q.bind(after).bind(limit))
        .await?
        .iter()
        .map(record)
        .collect()
}

/// Applies one user's plan; returns the ids of the inserted memberships, in order.
pub async fn apply(
    conn: &mut AnyConnection,
    user_id: i64,
    plan: &Plan,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    for id in &plan.delete {
        sqlx::query("DELETE FROM organization_memberships WHERE id = $1 AND user_id = $2")
            .bind(*id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    if let Some(id) = plan.set_default {
        sqlx::query(
            "UPDATE organization_memberships SET is_default = CASE WHEN id = $1 THEN 1 ELSE 0 END, \
             updated_at = $2 WHERE user_id = $3 AND (is_default = 1 OR id = $1)",
        )
        .bind(id)
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    }
    let mut ids = Vec::with_capacity(plan.insert.len());
    for m in &plan.insert {
        if m.default {
            // One default per user: the new one takes over.
            sqlx::query(
                "UPDATE organization_memberships SET is_default = 0, updated_at = $1 WHERE user_id = $2 AND is_default = 1",
            )
            .bind(now)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        }
        let row = first(
            conn,
            sqlx::query(
                "INSERT INTO organization_memberships (user_id, organization_id, is_default, view_tickets, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(user_id)
            .bind(m.organization_id)
            .bind(crate::rows::b(m.default))
            .bind(crate::rows::b(m.view_tickets))
            .bind(m.created_at)
            .bind(m.updated_at),
        )
        .await?;
        ids.push(
            row.map(|r| int(&r, "id"))
                .transpose()?
                .ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))?,
        );
    }
    if let Some(org) = plan.user_organization {
        sqlx::query("UPDATE users SET organization_id = $1, updated_at = $2 WHERE id = $3")
            .bind(org)
            .bind(now)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(ids)
}

/// `POST /organization_memberships` (and each item of `create_many`).
pub async fn create(
    conn: &mut AnyConnection,
    actor: Actor,
    input: MembershipInput,
    now: i64,
) -> Result<Decided<MembershipRecord>, StoreError> {
    // The organization first, then the user: the order an organization delete takes them in.
    organizations::lock(conn, input.organization_id, "FOR SHARE").await?;
    users::lock(conn, &[input.user_id]).await?;
    let user = users::load(conn, input.user_id).await?.filter(|u| u.active);
    let org = organizations::load(conn, input.organization_id).await?;
    let facts = AddFacts {
        user: user.map(|u| (u.role, u.ticket_restriction)),
        organization_name: org.map(|o| o.name),
        existing: for_user(conn, input.user_id).await?,
    };
    let plan = match membership::add(actor, input, &facts, now) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    let ids = apply(conn, input.user_id, &plan, now).await?;
    let mut created = plan.insert[0].clone();
    created.id = ids[0];
    Ok(Ok(created))
}

/// Locks the user of membership `id` and reads the membership again under the lock.
async fn locked_membership(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<MembershipRecord>, StoreError> {
    let Some(m) = load(conn, id).await? else {
        return Ok(None);
    };
    users::lock(conn, &[m.user_id]).await?;
    load(conn, id).await
}

/// Removes membership `id` for `actor`; the user's default moves on if it was this one.
pub async fn delete(
    conn: &mut AnyConnection,
    actor: Actor,
    id: i64,
    now: i64,
) -> Result<Decided<MembershipRecord>, StoreError> {
    let Some(m) = locked_membership(conn, id).await? else {
        return Ok(Err(Rejection::NotFound));
    };
    let Some(user) = users::load(conn, m.user_id).await? else {
        return Ok(Err(Rejection::NotFound));
    };
    if !membership::may_manage(actor, user.role) {
        return Ok(Err(Rejection::Forbidden));
    }
    let existing = for_user(conn, m.user_id).await?;
    let plan = membership::remove(&existing, &[id]);
    apply(conn, m.user_id, &plan, now).await?;
    Ok(Ok(m))
}

/// The membership of `user_id` in `organization_id`, if any.
pub async fn find(
    conn: &mut AnyConnection,
    user_id: i64,
    organization_id: i64,
) -> Result<Option<MembershipRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM {FROM} WHERE m.user_id = $1 AND m.organization_id = $2");
    first(conn, sqlx::query(&sql).bind(user_id).bind(organization_id))
        .await?
        .map(|r| record(&r))
        .transpose()
}

/// Which membership `make_default` names.
#[derive(Clone, Copy, Debug)]
pub enum Which {
    Membership(i64),
    Organization(i64),
}

/// Makes a membership the user's default; returns the user's memberships afterwards, default
/// first.
pub async fn make_default(
    conn: &mut AnyConnection,
    actor: Actor,
    user_id: i64,
    which: Which,
    now: i64,
) -> Result<Decided<Vec<MembershipRecord>>, StoreError> {
    users::lock(conn, &[user_id]).await?;
    let Some(user) = users::load(conn, user_id).await?.filter(|u| u.active) else {
        return Ok(Err(Rejection::NotFound));
    };
    if !membership::may_manage(actor, user.role) {
        return Ok(Err(Rejection::Forbidden));
    }
    let existing = for_user(conn, user_id).await?;
    let target = existing.iter().find(|m| match which {
        Which::Membership(id) => m.id == id,
        Which::Organization(org) => m.organization_id == org,
    });
    let Some(plan) = target.and_then(|t| membership::make_default(&existing, t.id)) else {
        return Ok(Err(Rejection::NotFound));
    };
    apply(conn, user_id, &plan, now).await?;
    let mut after = for_user(conn, user_id).await?;
    membership::sort_for_user(&mut after);
    Ok(Ok(after))
}

/// Rounds of "find the members, lock them, look again" before giving up (the write is retried).
const LOCK_ROUNDS: u32 = 4;

async fn member_ids(
    conn: &mut AnyConnection,
    organization_id: i64,
) -> Result<Vec<i64>, StoreError> {
    let rows = all(
        conn,
        sqlx::query(
            "SELECT user_id FROM organization_memberships WHERE organization_id = $1 ORDER BY user_id",
        )
        .bind(organization_id),
    )
    .await?;
    rows.iter().map(|r| int(r, "user_id")).collect()
}

/// Before an organization is deleted: every member loses the membership, and a user whose
/// default it was moves on to its oldest other membership (or none).
pub async fn remove_organization(
    conn: &mut AnyConnection,
    organization_id: i64,
    now: i64,
) -> Result<(), StoreError> {
    let mut locked: Vec<i64> = Vec::new();
    let mut round = 0;
    let users_now = loop {
        let found = member_ids(conn, organization_id).await?;
        let missing: Vec<i64> = found
            .iter()
            .copied()
            .filter(|u| !locked.contains(u))
            .collect();
        if missing.is_empty() {
            break found;
        }
        round += 1;
        if round > LOCK_ROUNDS {
            return Err(StoreError::Contention(round));
        }
        users::lock(conn, &missing).await?;
        locked.extend(missing);
    };
    let mut all_memberships = for_users(conn, &users_now).await?;
    for user_id in users_now {
        let existing = all_memberships.remove(&user_id).unwrap_or_default();
        let removed: Vec<i64> = existing
            .iter()
            .filter(|m| m.organization_id == organization_id)
            .map(|m| m.id)
            .collect();
        let plan = membership::remove(&existing, &removed);
        apply(conn, user_id, &plan, now).await?;
    }
    Ok(())
}

/// After a batch of user writes: each `(user, organization, view_tickets)` had its
/// `organization_id` set, which replaces its memberships with that one organization. The users
/// are already locked and their `organization_id` written.
pub async fn replace_for_users(
    conn: &mut AnyConnection,
    items: &[(i64, Option<i64>, bool)],
    now: i64,
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = items.iter().map(|(u, _, _)| *u).collect();
    let mut existing = for_users(conn, &ids).await?;
    for (user_id, org, view) in items {
        let current = existing.remove(user_id).unwrap_or_default();
        let plan = membership::replace(*user_id, &current, org.map(|o| (o, "")), *view, now);
        apply(conn, *user_id, &plan, now).await?;
    }
    Ok(())
}

/// How many active users belong to `organization_id`.
pub async fn user_count(conn: &mut AnyConnection, organization_id: i64) -> Result<i64, StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "SELECT COUNT(*) AS n FROM organization_memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = $1 AND u.active = 1",
        )
        .bind(organization_id),
    )
    .await?;
    Ok(row.map(|r| int(&r, "n")).transpose()?.unwrap_or(0))
}
