//! Custom field definitions (`custom_fields`, `custom_field_options`): the facts the field
//! plans and every user or organization write decide on, and the writes of those plans.

use std::collections::HashMap;

use deskd_model::custom_field::{FieldDef, FieldKey, FieldKind, FieldOption, Resource};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::rows::{all, b, first, flag, int, opt_text, text};

const COLUMNS: &str = "id, resource, key, type, title, raw_title, description, raw_description, \
    position, active, regexp_for_validation, tag, relationship_target_type, relationship_filter, \
    created_at, updated_at";

fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME
}

fn field(row: &AnyRow, resource: Resource) -> Result<FieldDef, StoreError> {
    let kind = text(row, "type")?;
    let filter = opt_text(row, "relationship_filter")?
        .map(|f| serde_json::from_str(&f))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("relationship_filter: {e}")))?;
    Ok(FieldDef {
        id: int(row, "id")?,
        resource,
        kind: FieldKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("custom field type {kind}")))?,
        key: text(row, "key")?,
        title: text(row, "title")?,
        raw_title: text(row, "raw_title")?,
        description: text(row, "description")?,
        raw_description: text(row, "raw_description")?,
        position: int(row, "position")?,
        active: flag(row, "active")?,
        regexp_for_validation: opt_text(row, "regexp_for_validation")?,
        tag: opt_text(row, "tag")?,
        options: Vec::new(),
        relationship_target_type: opt_text(row, "relationship_target_type")?,
        relationship_filter: filter,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

/// Attaches the options of `fields`, in one query.
async fn with_options(
    conn: &mut AnyConnection,
    mut fields: Vec<FieldDef>,
) -> Result<Vec<FieldDef>, StoreError> {
    let ids: Vec<i64> = fields
        .iter()
        .filter(|f| f.kind.has_options())
        .map(|f| f.id)
        .collect();
    if ids.is_empty() {
        return Ok(fields);
    }
    let mut p = crate::rows::Params::new(conn);
    let sql = format!(
        "SELECT id, field_id, name, raw_name, value, position FROM custom_field_options \
         WHERE field_id IN ({}) ORDER BY field_id, position, id",
        p.list(ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(*id);
    }
    let mut by_field: HashMap<i64, Vec<FieldOption>> = HashMap::new();
    for row in all(conn, q).await? {
        by_field
            .entry(int(&row, "field_id")?)
            .or_default()
            .push(FieldOption {
                id: int(&row, "id")?,
                name: text(&row, "name")?,
                raw_name: text(&row, "raw_name")?,
                value: text(&row, "value")?,
                position: int(&row, "position")?,
            });
    }
    for f in &mut fields {
        f.options = by_field.remove(&f.id).unwrap_or_default();
    }
    Ok(fields)
}

/// Every field of `resource`, in display order (position, then id).
pub async fn list(
    conn: &mut AnyConnection,
    resource: Resource,
) -> Result<Vec<FieldDef>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM custom_fields WHERE resource = $1 ORDER BY position, id");
    let rows = all(conn, sqlx::query(&sql).bind(resource.as_str())).await?;
    let fields = rows
        .iter()
        .map(|r| field(r, resource))
        .collect::<Result<Vec<_>, _>>()?;
    with_options(conn, fields).await
}

/// The key and type of every field of `resource`, in display order: what a read needs to show
/// values, in one query (no options).
pub async fn keys(
    conn: &mut AnyConnection,
    resource: Resource,
) -> Result<Vec<FieldKey>, StoreError> {
    let rows = all(
        conn,
        sqlx::query(
            "SELECT key, type FROM custom_fields WHERE resource = $1 ORDER BY position, id",
        )
        .bind(resource.as_str()),
    )
    .await?;
    rows.iter()
        .map(|r| {
            let kind = text(r, "type")?;
            Ok(FieldKey {
                key: text(r, "key")?,
                kind: FieldKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("custom field type {kind}")))?,
            })
        })
        .collect()
}

/// One field by id, or by key (Zendesk's `/user_fields/{id_or_key}`). With `lock`, on
/// PostgreSQL, its row stays locked until commit so two writers of one field serialize.
pub async fn load(
    conn: &mut AnyConnection,
    resource: Resource,
    id_or_key: &str,
    lock: bool,
) -> Result<Option<FieldDef>, StoreError> {
    let suffix = if lock && is_postgres(conn) {
        " FOR UPDATE"
    } else {
        ""
    };
    let by_id = id_or_key.parse::<i64>().ok();
    let sql = match by_id {
        Some(_) => {
            format!("SELECT {COLUMNS} FROM custom_fields WHERE resource = $1 AND id = $2{suffix}")
        }
        None => {
            format!("SELECT {COLUMNS} FROM custom_fields WHERE resource = $1 AND key = $2{suffix}")
        }
    };
    let q = sqlx::query(&sql).bind(resource.as_str());
    let q = match by_id {
        Some(id) => q.bind(id),
        None => q.bind(id_or_key.to_owned()),
    };
    let Some(row) = first(conn, q).await? else {
        return Ok(None);
    };
    let def = field(&row, resource)?;
    Ok(with_options(conn, vec![def]).await?.pop())
}

/// Locks every field of `resource` (PostgreSQL) before a reorder decides on their positions.
pub async fn lock_all(conn: &mut AnyConnection, resource: Resource) -> Result<(), StoreError> {
    if is_postgres(conn) {
        sqlx::query("SELECT id FROM custom_fields WHERE resource = $1 FOR UPDATE")
            .bind(resource.as_str())
            .fetch_all(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts a planned field and its options; returns it with their ids.
pub async fn insert(conn: &mut AnyConnection, def: &FieldDef) -> Result<FieldDef, StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "INSERT INTO custom_fields (resource, key, type, title, raw_title, description, raw_description, \
             position, active, regexp_for_validation, tag, relationship_target_type, relationship_filter, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(def.resource.as_str())
        .bind(def.key.clone())
        .bind(def.kind.as_str())
        .bind(def.title.clone())
        .bind(def.raw_title.clone())
        .bind(def.description.clone())
        .bind(def.raw_description.clone())
        .bind(def.position)
        .bind(b(def.active))
        .bind(def.regexp_for_validation.clone())
        .bind(def.tag.clone())
        .bind(def.relationship_target_type.clone())
        .bind(def.relationship_filter.as_ref().map(|f| f.to_string()))
        .bind(def.created_at)
        .bind(def.updated_at),
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("INSERT … RETURNING gave no row".into()))?;
    let mut saved = def.clone();
    saved.id = int(&row, "id")?;
    sync_options(conn, &mut saved, &[]).await?;
    Ok(saved)
}

/// Writes a planned update of a field (`previous` is the field as loaded): its columns, and its
/// options as the plan lists them (kept ones updated, dropped ones deleted, new ones inserted).
pub async fn update(
    conn: &mut AnyConnection,
    def: &FieldDef,
    previous: &FieldDef,
) -> Result<FieldDef, StoreError> {
    sqlx::query(
        "UPDATE custom_fields SET title = $1, raw_title = $2, description = $3, raw_description = $4, \
         position = $5, active = $6, regexp_for_validation = $7, tag = $8, relationship_target_type = $9, \
         relationship_filter = $10, updated_at = $11 WHERE id = $12",
    )
    .bind(def.title.clone())
    .bind(def.raw_title.clone())
    .bind(def.description.clone())
    .bind(def.raw_description.clone())
    .bind(def.position)
    .bind(b(def.active))
    .bind(def.regexp_for_validation.clone())
    .bind(def.tag.clone())
    .bind(def.relationship_target_type.clone())
    .bind(def.relationship_filter.as_ref().map(|f| f.to_string()))
    .bind(def.updated_at)
    .bind(def.id)
    .execute(&mut *conn)
    .await?;
    let mut saved = def.clone();
    sync_options(conn, &mut saved, &previous.options).await?;
    Ok(saved)
}

async fn sync_options(
    conn: &mut AnyConnection,
    def: &mut FieldDef,
    previous: &[FieldOption],
) -> Result<(), StoreError> {
    for old in previous {
        if !def.options.iter().any(|o| o.id == old.id) {
            sqlx::query("DELETE FROM custom_field_options WHERE id = $1")
                .bind(old.id)
                .execute(&mut *conn)
                .await?;
        }
    }
    for o in &mut def.options {
        if o.id == 0 {
            let row = first(
                conn,
                sqlx::query(
                    "INSERT INTO custom_field_options (field_id, name, raw_name, value, position) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(def.id)
                .bind(o.name.clone())
                .bind(o.raw_name.clone())
                .bind(o.value.clone())
                .bind(o.position),
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("INSERT … RETURNING gave no row".into()))?;
            o.id = int(&row, "id")?;
        } else if previous.iter().any(|p| p == o) {
            continue;
        } else {
            sqlx::query(
                "UPDATE custom_field_options SET name = $1, raw_name = $2, value = $3, position = $4 \
                 WHERE id = $5 AND field_id = $6",
            )
            .bind(o.name.clone())
            .bind(o.raw_name.clone())
            .bind(o.value.clone())
            .bind(o.position)
            .bind(o.id)
            .bind(def.id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Sets the positions a reorder planned.
pub async fn set_positions(
    conn: &mut AnyConnection,
    positions: &[(i64, i64)],
    now: i64,
) -> Result<(), StoreError> {
    for (id, position) in positions {
        sqlx::query(
            "UPDATE custom_fields SET position = $1, updated_at = $2 WHERE id = $3 AND position <> $1",
        )
        .bind(*position)
        .bind(now)
        .bind(*id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Deletes a field (its options go with it) and the values stored under its key, so a field
/// made later with the same key starts empty. False when there was no such field.
pub async fn delete(conn: &mut AnyConnection, def: &FieldDef) -> Result<bool, StoreError> {
    let gone = sqlx::query("DELETE FROM custom_fields WHERE id = $1")
        .bind(def.id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if gone == 0 {
        return Ok(false);
    }
    let (table, column) = match def.resource {
        Resource::User => ("users", "user_fields"),
        Resource::Organization => ("organizations", "organization_fields"),
    };
    // The one statement that differs by backend: removing a key from a JSON text column. Keys
    // are letters, digits and underscores, so the SQLite path needs no escaping beyond quotes.
    let sql = if is_postgres(conn) {
        format!(
            "UPDATE {table} SET {column} = ({column}::jsonb - $1)::text WHERE {column} LIKE $2 ESCAPE '\\'"
        )
    } else {
        format!(
            "UPDATE {table} SET {column} = json_remove({column}, $1) WHERE {column} LIKE $2 ESCAPE '\\'"
        )
    };
    let first_arg = if is_postgres(conn) {
        def.key.clone()
    } else {
        format!("$.\"{}\"", def.key)
    };
    let pattern = format!("%\"{}\"%", def.key.replace('_', "\\_"));
    sqlx::query(&sql)
        .bind(first_arg)
        .bind(pattern)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}
