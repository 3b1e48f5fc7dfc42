//! Organizations, as far as users need them.

use std::collections::{HashMap, HashSet};

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
