//! Turning rows into records. Every statement is read to its end (`fetch_all`): on SQLite a
//! statement left mid-way keeps a read snapshot open and starves WAL checkpoints.

use deskd_model::Role;
use deskd_model::identity::IdentityRecord;
use deskd_model::organization::OrganizationRecord;
use deskd_model::user::UserRecord;
use serde_json::{Map, Value};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use crate::StoreError;

pub type Q<'q> = Query<'q, Any, AnyArguments<'q>>;

/// The first row of a query, after reading all of them.
pub async fn first(conn: &mut AnyConnection, q: Q<'_>) -> Result<Option<AnyRow>, StoreError> {
    Ok(q.fetch_all(conn).await?.into_iter().next())
}

pub async fn all(conn: &mut AnyConnection, q: Q<'_>) -> Result<Vec<AnyRow>, StoreError> {
    Ok(q.fetch_all(conn).await?)
}

pub fn int(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub fn opt_int(row: &AnyRow, col: &str) -> Result<Option<i64>, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

pub fn flag(row: &AnyRow, col: &str) -> Result<bool, StoreError> {
    Ok(int(row, col)? != 0)
}

pub fn text(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    Ok(row.try_get::<String, _>(col)?)
}

pub fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub fn string_list(row: &AnyRow, col: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(&text(row, col)?).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub fn object(row: &AnyRow, col: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(&text(row, col)?).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub fn b(v: bool) -> i64 {
    i64::from(v)
}

pub fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

pub const USER_COLUMNS: &str = "id, name, email, external_id, role, custom_role_id, organization_id, \
    default_group_id, time_zone, locale, locale_id, phone, shared_phone_number, alias, details, notes, \
    signature, remote_photo_url, ticket_restriction, tags, user_fields, moderator, only_private_comments, \
    suspended, verified, active, created_at, updated_at, last_login_at";

pub fn user(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let role = text(row, "role")?;
    Ok(UserRecord {
        id: int(row, "id")?,
        name: text(row, "name")?,
        email: opt_text(row, "email")?,
        external_id: opt_text(row, "external_id")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        custom_role_id: opt_int(row, "custom_role_id")?,
        organization_id: opt_int(row, "organization_id")?,
        default_group_id: opt_int(row, "default_group_id")?,
        time_zone: text(row, "time_zone")?,
        locale: text(row, "locale")?,
        locale_id: int(row, "locale_id")?,
        phone: opt_text(row, "phone")?,
        shared_phone_number: opt_int(row, "shared_phone_number")?.map(|v| v != 0),
        alias: opt_text(row, "alias")?,
        details: opt_text(row, "details")?,
        notes: opt_text(row, "notes")?,
        signature: opt_text(row, "signature")?,
        remote_photo_url: opt_text(row, "remote_photo_url")?,
        ticket_restriction: opt_text(row, "ticket_restriction")?,
        tags: string_list(row, "tags")?,
        user_fields: object(row, "user_fields")?,
        moderator: flag(row, "moderator")?,
        only_private_comments: flag(row, "only_private_comments")?,
        suspended: flag(row, "suspended")?,
        verified: flag(row, "verified")?,
        active: flag(row, "active")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
        last_login_at: opt_int(row, "last_login_at")?,
    })
}

pub const IDENTITY_COLUMNS: &str =
    "id, user_id, type, value, verified, is_primary, created_at, updated_at";

pub fn identity(row: &AnyRow) -> Result<IdentityRecord, StoreError> {
    Ok(IdentityRecord {
        id: int(row, "id")?,
        user_id: int(row, "user_id")?,
        kind: text(row, "type")?,
        value: text(row, "value")?,
        verified: flag(row, "verified")?,
        primary: flag(row, "is_primary")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

pub const ORGANIZATION_COLUMNS: &str = "id, name, external_id, details, notes, group_id, shared_tickets, \
    shared_comments, domain_names, tags, organization_fields, created_at, updated_at";

pub fn organization(row: &AnyRow) -> Result<OrganizationRecord, StoreError> {
    Ok(OrganizationRecord {
        id: int(row, "id")?,
        name: text(row, "name")?,
        external_id: opt_text(row, "external_id")?,
        details: opt_text(row, "details")?,
        notes: opt_text(row, "notes")?,
        group_id: opt_int(row, "group_id")?,
        shared_tickets: flag(row, "shared_tickets")?,
        shared_comments: flag(row, "shared_comments")?,
        domain_names: string_list(row, "domain_names")?,
        tags: string_list(row, "tags")?,
        organization_fields: object(row, "organization_fields")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

/// Bind placeholders for statements whose values are bound strictly in order: `$1, $2, …` on
/// PostgreSQL, anonymous `?` on SQLite. (sqlx finds a named SQLite parameter by a linear scan of
/// the statement's names, so a multi-row statement with `$N` names costs the square of its size;
/// anonymous ones cost nothing.)
pub struct Params {
    sqlite: bool,
    next: usize,
}

impl Params {
    pub fn new(conn: &AnyConnection) -> Self {
        Params {
            sqlite: conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME,
            next: 0,
        }
    }

    pub fn one(&mut self) -> String {
        self.next += 1;
        if self.sqlite {
            "?".to_owned()
        } else {
            format!("${}", self.next)
        }
    }

    /// `n` placeholders, comma-separated.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }

    /// `rows` parenthesised groups of `per_row` placeholders: the VALUES of a multi-row insert.
    pub fn rows(&mut self, rows: usize, per_row: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(per_row)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Most values bound in one set-based statement (SQLite allows 32,766, PostgreSQL 65,535).
pub const MAX_BOUND: usize = 2000;
