//! Organizations, as far as users need them.

use std::collections::{HashMap, HashSet};

use deskd_model::Saved;
use deskd_model::custom_field::Resource;
use deskd_model::organization::OrganizationRecord;
use deskd_model::text::normalize;
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{self, all, b, first, int, json};

pub async fn exists(conn: &mut AnyConnection, id: i64) -> Result<bool, StoreError> {
    Ok(first(
        conn,
        sqlx::query("SELECT id FROM organizations WHERE id = $1").bind(id),
    )
    .await?
    .is_some())
}

/// Locks organization `id` on PostgreSQL (`FOR UPDATE` or `FOR SHARE`) and says whether it
/// exists; on SQLite the single writer already serializes.
pub async fn lock(conn: &mut AnyConnection, id: i64, mode: &str) -> Result<bool, StoreError> {
    let suffix = if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        mode
    } else {
        ""
    };
    let sql = format!("SELECT id FROM organizations WHERE id = $1 {suffix}");
    Ok(first(conn, sqlx::query(&sql).bind(id)).await?.is_some())
}

/// Locks, on PostgreSQL, the organizations among `ids` and those named by `names_norm`
/// (normalised names) `FOR SHARE`, in id order, before a user write that will point at them
/// decides: a delete in progress (which holds its organization `FOR UPDATE`) is waited for, and
/// the write then finds the organization gone instead of failing its foreign key. Many writers
/// share the lock; the organization first, then users, as a delete and a membership take them.
pub async fn lock_shared(
    conn: &mut AnyConnection,
    ids: &[i64],
    names_norm: &[String],
) -> Result<(), StoreError> {
    if conn.backend_name() != <sqlx::Postgres as sqlx::Database>::NAME
        || (ids.is_empty() && names_norm.is_empty())
    {
        return Ok(());
    }
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut names_norm = names_norm.to_vec();
    names_norm.sort_unstable();
    names_norm.dedup();
    let mut p = rows::Params::new(conn);
    let mut clauses = Vec::new();
    if !ids.is_empty() {
        clauses.push(format!("id IN ({})", p.list(ids.len())));
    }
    if !names_norm.is_empty() {
        clauses.push(format!("name_norm IN ({})", p.list(names_norm.len())));
    }
    let sql = format!(
        "SELECT id FROM organizations WHERE {} ORDER BY id FOR SHARE",
        clauses.join(" OR ")
    );
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id);
    }
    for n in names_norm {
        q = q.bind(n);
    }
    all(conn, q).await?;
    Ok(())
}

/// The organization whose name matches `name` case-insensitively, trimmed.
pub async fn id_by_name(conn: &mut AnyConnection, name: &str) -> Result<Option<i64>, StoreError> {
    let row = first(
        conn,
        sqlx::query("SELECT id FROM organizations WHERE name_norm = $1").bind(normalize(name)),
    )
    .await?;
    row.map(|r| int(&r, "id")).transpose()
}

pub async fn load(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<OrganizationRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM organizations WHERE id = $1",
        rows::ORGANIZATION_COLUMNS
    );
    first(conn, sqlx::query(&sql).bind(id))
        .await?
        .map(|r| rows::organization(&r))
        .transpose()
}

pub async fn insert(conn: &mut AnyConnection, o: &OrganizationRecord) -> Result<i64, StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "INSERT INTO organizations (name, name_norm, external_id, external_id_norm, details, notes, group_id, \
             shared_tickets, shared_comments, domain_names, tags, organization_fields, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(o.name.trim().to_owned())
        .bind(normalize(&o.name))
        .bind(o.external_id.clone())
        .bind(o.external_id.as_deref().map(normalize))
        .bind(o.details.clone())
        .bind(o.notes.clone())
        .bind(o.group_id)
        .bind(b(o.shared_tickets))
        .bind(b(o.shared_comments))
        .bind(json(&o.domain_names))
        .bind(json(&o.tags))
        .bind(json(&o.organization_fields))
        .bind(o.created_at)
        .bind(o.updated_at),
    )
    .await?;
    row.map(|r| int(&r, "id"))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))
}

/// Which of `ids` name an organization.
pub async fn existing_ids(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<HashSet<i64>, StoreError> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(crate::rows::MAX_BOUND) {
        let sql = format!(
            "SELECT id FROM organizations WHERE id IN ({})",
            crate::rows::Params::new(conn).list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in all(conn, q).await? {
            out.insert(int(&r, "id")?);
        }
    }
    Ok(out)
}

/// Organization ids by normalised name.
pub async fn ids_by_names(
    conn: &mut AnyConnection,
    names_norm: &[String],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut out = HashMap::new();
    for chunk in names_norm.chunks(crate::rows::MAX_BOUND) {
        let sql = format!(
            "SELECT id, name_norm FROM organizations WHERE name_norm IN ({})",
            crate::rows::Params::new(conn).list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for n in chunk {
            q = q.bind(n.clone());
        }
        for r in all(conn, q).await? {
            out.insert(rows::text(&r, "name_norm")?, int(&r, "id")?);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The Organizations endpoints.

type Decided<T> = Result<T, deskd_model::Rejection>;

/// The organization whose external id matches case-insensitively, trimmed.
pub async fn id_by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> Result<Option<i64>, StoreError> {
    let row = first(
        conn,
        sqlx::query("SELECT id FROM organizations WHERE external_id_norm = $1")
            .bind(normalize(external_id)),
    )
    .await?;
    row.map(|r| int(&r, "id")).transpose()
}

/// Gathers who holds `org`'s name and external id; the model decides.
async fn check_unique(
    conn: &mut AnyConnection,
    org: &OrganizationRecord,
) -> Result<Decided<()>, StoreError> {
    let name_holder = id_by_name(conn, &org.name).await?;
    let ext_holder = match &org.external_id {
        Some(ext) => id_by_external_id(conn, ext).await?,
        None => None,
    };
    Ok(
        deskd_model::organization_input::check_unique(org, name_holder, ext_holder)
            .map_err(Into::into),
    )
}

/// Writes every field of an existing organization.
pub async fn update(conn: &mut AnyConnection, o: &OrganizationRecord) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE organizations SET name = $1, name_norm = $2, external_id = $3, external_id_norm = $4, \
         details = $5, notes = $6, group_id = $7, shared_tickets = $8, shared_comments = $9, \
         domain_names = $10, tags = $11, organization_fields = $12, updated_at = $13 WHERE id = $14",
    )
    .bind(o.name.trim().to_owned())
    .bind(normalize(&o.name))
    .bind(o.external_id.clone())
    .bind(o.external_id.as_deref().map(normalize))
    .bind(o.details.clone())
    .bind(o.notes.clone())
    .bind(o.group_id)
    .bind(b(o.shared_tickets))
    .bind(b(o.shared_comments))
    .bind(json(&o.domain_names))
    .bind(json(&o.tags))
    .bind(json(&o.organization_fields))
    .bind(o.updated_at)
    .bind(o.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `POST /organizations`: a new organization, or a rejection (blank or taken name, taken
/// external id). Decided inside the write transaction, so a re-run sees the winner of a race.
pub async fn create(
    conn: &mut AnyConnection,
    input: &deskd_model::organization_input::OrganizationInput,
    now: i64,
) -> Result<Decided<OrganizationRecord>, StoreError> {
    let fields = crate::custom_fields::list(conn, Resource::Organization).await?;
    let mut org = match input.create(&fields, now) {
        Ok(o) => o,
        Err(e) => return Ok(Err(e.into())),
    };
    if let Err(r) = check_unique(conn, &org).await? {
        return Ok(Err(r));
    }
    org.id = insert(conn, &org).await?;
    Ok(Ok(org))
}

/// `PUT /organizations/{id}`: only the supplied keys change.
pub async fn update_by_id(
    conn: &mut AnyConnection,
    id: i64,
    input: &deskd_model::organization_input::OrganizationInput,
    now: i64,
) -> Result<Decided<OrganizationRecord>, StoreError> {
    // `update` writes every column back: read the row under its lock (as the tags endpoints
    // do), or a concurrent write of another field is lost, and a delete meanwhile answers 200.
    lock(conn, id, "FOR UPDATE").await?;
    let Some(mut org) = load(conn, id).await? else {
        return Ok(Err(deskd_model::Rejection::NotFound));
    };
    let fields = crate::custom_fields::list(conn, Resource::Organization).await?;
    match input.update(&mut org, &fields, now) {
        Ok(false) => return Ok(Ok(org)),
        Ok(true) => {}
        Err(e) => return Ok(Err(e.into())),
    }
    if let Err(r) = check_unique(conn, &org).await? {
        return Ok(Err(r));
    }
    update(conn, &org).await?;
    Ok(Ok(org))
}

/// `POST /organizations/create_or_update`: the organization named by `id` (unknown → 404), else
/// the one with the external id, is updated; otherwise one is created. The name is no key.
pub async fn create_or_update(
    conn: &mut AnyConnection,
    input: &deskd_model::organization_input::OrganizationInput,
    now: i64,
) -> Result<Decided<Saved<OrganizationRecord>>, StoreError> {
    let ext_holder = match (input.id, input.lookup_external_id()) {
        (None, Some(ext)) => id_by_external_id(conn, ext).await?,
        _ => None,
    };
    if let Some(id) = input.create_or_update_target(ext_holder) {
        return Ok(update_by_id(conn, id, input, now)
            .await?
            .map(Saved::Updated));
    }
    let fields = crate::custom_fields::list(conn, Resource::Organization).await?;
    let mut org = match input.create(&fields, now) {
        Ok(o) => o,
        Err(e) => return Ok(Err(e.into())),
    };
    // The uniqueness check reads the holders again. A create of the same external id that
    // committed since the lookup above (READ COMMITTED) is found there: it is updated, as if
    // this request had come second, rather than refused as "taken", which no order of the two
    // requests answers. A commit after this read fails the insert on the unique index, and the
    // write is re-run.
    let name_holder = id_by_name(conn, &org.name).await?;
    let ext_holder = match &org.external_id {
        Some(ext) => id_by_external_id(conn, ext).await?,
        None => None,
    };
    if let Some(id) = input.create_or_update_target(ext_holder) {
        return Ok(update_by_id(conn, id, input, now)
            .await?
            .map(Saved::Updated));
    }
    if let Err(e) = deskd_model::organization_input::check_unique(&org, name_holder, None) {
        return Ok(Err(e.into()));
    }
    org.id = insert(conn, &org).await?;
    Ok(Ok(Saved::Created(org)))
}

/// Deletes an organization; its users lose it. False when there was none.
pub async fn delete(conn: &mut AnyConnection, id: i64, now: i64) -> Result<bool, StoreError> {
    // Held until commit: a membership or user write meanwhile waits (their `FOR SHARE`, see
    // `lock_shared`) and then finds the organization gone, so no member is missed.
    if !lock(conn, id, "FOR UPDATE").await? {
        return Ok(false);
    }
    // Members lose the membership (and, where it was their default, move to another one);
    // anyone left pointing at the organization loses it, dated.
    crate::memberships::remove_organization(conn, id, now).await?;
    sqlx::query(
        "UPDATE users SET organization_id = NULL, updated_at = $1 WHERE organization_id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// How many organizations there are.
pub async fn count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let row = first(conn, sqlx::query("SELECT COUNT(*) AS n FROM organizations")).await?;
    row.map(|r| int(&r, "n"))
        .transpose()
        .map(|n| n.unwrap_or(0))
}

/// Organizations by id, ascending, after the id `after` (a cursor page); `limit` rows.
pub async fn page_by_id(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM organizations WHERE id > $1 ORDER BY id LIMIT $2",
        rows::ORGANIZATION_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(after).bind(limit))
        .await?
        .iter()
        .map(rows::organization)
        .collect()
}

/// One page of organizations by id, ascending.
pub async fn list(
    conn: &mut AnyConnection,
    offset: i64,
    limit: i64,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM organizations ORDER BY id LIMIT $1 OFFSET $2",
        rows::ORGANIZATION_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(limit).bind(offset))
        .await?
        .iter()
        .map(rows::organization)
        .collect()
}

/// The organizations among `ids`, by id ascending; unknown ids are left out.
pub async fn load_many(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(rows::MAX_BOUND) {
        let sql = format!(
            "SELECT {} FROM organizations WHERE id IN ({}) ORDER BY id",
            rows::ORGANIZATION_COLUMNS,
            rows::Params::new(conn).list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in all(conn, q).await? {
            out.push(rows::organization(&r)?);
        }
    }
    out.sort_by_key(|o| o.id);
    out.dedup_by_key(|o| o.id);
    Ok(out)
}

/// The organizations whose external ids match any of `external_ids` (case-insensitive,
/// trimmed), by id ascending.
pub async fn load_many_by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[String],
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let norms: Vec<String> = external_ids.iter().map(|e| normalize(e)).collect();
    let mut out = Vec::new();
    for chunk in norms.chunks(rows::MAX_BOUND) {
        let sql = format!(
            "SELECT {} FROM organizations WHERE external_id_norm IN ({}) ORDER BY id",
            rows::ORGANIZATION_COLUMNS,
            rows::Params::new(conn).list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for n in chunk {
            q = q.bind(n.clone());
        }
        for r in all(conn, q).await? {
            out.push(rows::organization(&r)?);
        }
    }
    out.sort_by_key(|o| o.id);
    out.dedup_by_key(|o| o.id);
    Ok(out)
}

/// Exact, case-insensitive search by name or external id (at most one match each, as both are
/// unique).
pub async fn search(
    conn: &mut AnyConnection,
    name: Option<&str>,
    external_id: Option<&str>,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let (col, value) = match (name, external_id) {
        (Some(n), _) => ("name_norm", normalize(n)),
        (None, Some(e)) => ("external_id_norm", normalize(e)),
        (None, None) => return Ok(Vec::new()),
    };
    let sql = format!(
        "SELECT {} FROM organizations WHERE {col} = $1 ORDER BY id",
        rows::ORGANIZATION_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(value))
        .await?
        .iter()
        .map(rows::organization)
        .collect()
}

/// Organizations whose name starts with `prefix` (case-insensitive, trimmed), by name: how many
/// there are, and the page at `offset`.
pub async fn autocomplete(
    conn: &mut AnyConnection,
    prefix: &str,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<OrganizationRecord>), StoreError> {
    let norm = normalize(prefix);
    let len = norm.chars().count() as i64;
    let row = first(
        conn,
        sqlx::query("SELECT COUNT(*) AS n FROM organizations WHERE substr(name_norm, 1, CAST($1 AS INTEGER)) = $2")
            .bind(len)
            .bind(norm.clone()),
    )
    .await?;
    let n = row.map(|r| int(&r, "n")).transpose()?.unwrap_or(0);
    let sql = format!(
        "SELECT {} FROM organizations WHERE substr(name_norm, 1, CAST($1 AS INTEGER)) = $2 ORDER BY name_norm, id LIMIT $3 OFFSET $4",
        rows::ORGANIZATION_COLUMNS
    );
    let list = all(
        conn,
        sqlx::query(&sql)
            .bind(len)
            .bind(norm)
            .bind(limit)
            .bind(offset),
    )
    .await?
    .iter()
    .map(rows::organization)
    .collect::<Result<_, _>>()?;
    Ok((n, list))
}

/// The organizations `user_id` belongs to, by name: the page at `offset`.
pub async fn of_user(
    conn: &mut AnyConnection,
    user_id: i64,
    offset: i64,
    limit: i64,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let columns: Vec<String> = rows::ORGANIZATION_COLUMNS
        .split(',')
        .map(|c| format!("o.{}", c.trim()))
        .collect();
    let sql = format!(
        "SELECT {} FROM organizations o JOIN organization_memberships m ON m.organization_id = o.id \
         WHERE m.user_id = $1 ORDER BY o.name_norm, o.id LIMIT $2 OFFSET $3",
        columns.join(", ")
    );
    all(
        conn,
        sqlx::query(&sql).bind(user_id).bind(limit).bind(offset),
    )
    .await?
    .iter()
    .map(rows::organization)
    .collect()
}

/// For the time-based export: organizations changed at or after `start` and at or before
/// `until`, in (updated_at, id) order; at most `limit` rows.
pub async fn changed_in_window(
    conn: &mut AnyConnection,
    start: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM organizations WHERE updated_at >= $1 AND updated_at <= $2 ORDER BY updated_at, id LIMIT $3",
        rows::ORGANIZATION_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(start).bind(until).bind(limit))
        .await?
        .iter()
        .map(rows::organization)
        .collect()
}

/// Every organization changed at exactly `at` with an id above `after_id`, in id order.
pub async fn changed_at(
    conn: &mut AnyConnection,
    at: i64,
    after_id: i64,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM organizations WHERE updated_at = $1 AND id > $2 ORDER BY id",
        rows::ORGANIZATION_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(at).bind(after_id))
        .await?
        .iter()
        .map(rows::organization)
        .collect()
}
