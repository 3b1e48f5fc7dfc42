//! Fixtures (test mode's export, import and `--seed`): reading the account's state for
//! `deskd_model::fixture::document`, and writing a checked `Fixture` after a reset. The caller
//! runs `owner_facts`, the model's plan, `reset::reset_account` and `apply` in one write
//! transaction, so a refused document changes nothing.

use deskd_model::custom_field::Resource;
use deskd_model::fixture::{Fixture, Member, OwnerFacts};
use deskd_model::identity::IdentityRecord;
use deskd_model::membership::MembershipRecord;
use deskd_model::text::normalize;
use deskd_model::user::UserRecord;
use serde_json::Value;
use sqlx::AnyConnection;

use crate::rows::{self, Params, all, b, first, flag, int, json, opt_text};
use crate::{Backend, StoreError, settings, users};

const BULK_IMPORT_KEY: &str = deskd_model::fixture::BULK_IMPORT;

/// The account owner's id, external id and identities.
pub async fn owner_facts(conn: &mut AnyConnection) -> Result<OwnerFacts, StoreError> {
    let id = users::account_owner(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Corrupt("the account has no owner".into()))?;
    let external_id = first(
        &mut *conn,
        sqlx::query("SELECT external_id FROM users WHERE id = $1").bind(id),
    )
    .await?
    .map(|r| opt_text(&r, "external_id"))
    .transpose()?
    .flatten();
    Ok(OwnerFacts {
        id,
        external_id,
        identities: users::identities(&mut *conn, id).await?,
    })
}

/// The account's state as a fixture document, read in one transaction (repeatable read on
/// PostgreSQL, a read snapshot on SQLite) so that concurrent writes never show half: every
/// membership and identity of the document belongs to a user of it.
pub async fn export_consistent(conn: &mut AnyConnection) -> Result<Value, StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    if tx.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let doc = export(&mut tx).await?;
    tx.commit().await?;
    Ok(doc)
}

/// The account's state as a fixture document (see [`export_consistent`]).
pub async fn export(conn: &mut AnyConnection) -> Result<Value, StoreError> {
    let owner = users::account_owner(&mut *conn).await?.unwrap_or(0);
    let bulk = settings::get(&mut *conn, BULK_IMPORT_KEY)
        .await?
        .map(|v| v == "true");
    let orgs = all(
        &mut *conn,
        sqlx::query(&format!(
            "SELECT {} FROM organizations ORDER BY id",
            rows::ORGANIZATION_COLUMNS
        )),
    )
    .await?
    .iter()
    .map(rows::organization)
    .collect::<Result<Vec<_>, _>>()?;
    let user_rows = all(
        &mut *conn,
        sqlx::query(&format!(
            "SELECT {} FROM users ORDER BY id",
            rows::USER_COLUMNS
        )),
    )
    .await?;
    let identity_rows = all(
        &mut *conn,
        sqlx::query(&format!(
            "SELECT {} FROM identities ORDER BY user_id, is_primary DESC, id",
            rows::IDENTITY_COLUMNS
        )),
    )
    .await?;
    let mut by_user: std::collections::HashMap<i64, Vec<IdentityRecord>> =
        std::collections::HashMap::new();
    for r in &identity_rows {
        let i = rows::identity(r)?;
        by_user.entry(i.user_id).or_default().push(i);
    }
    let mut list: Vec<(UserRecord, Vec<IdentityRecord>)> = Vec::with_capacity(user_rows.len());
    for r in &user_rows {
        let u = rows::user(r)?;
        let ids = by_user.remove(&u.id).unwrap_or_default();
        list.push((u, ids));
    }
    let memberships = all(
        &mut *conn,
        sqlx::query(
            "SELECT id, user_id, organization_id, is_default, view_tickets, created_at, updated_at \
             FROM organization_memberships ORDER BY id",
        ),
    )
    .await?
    .iter()
    .map(|r| {
        Ok(MembershipRecord {
            id: int(r, "id")?,
            user_id: int(r, "user_id")?,
            organization_id: int(r, "organization_id")?,
            default: flag(r, "is_default")?,
            view_tickets: flag(r, "view_tickets")?,
            organization_name: String::new(),
            created_at: int(r, "created_at")?,
            updated_at: int(r, "updated_at")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let mut fields = crate::custom_fields::list(&mut *conn, Resource::User).await?;
    fields.extend(crate::custom_fields::list(&mut *conn, Resource::Organization).await?);
    Ok(deskd_model::fixture::document(
        owner,
        bulk,
        &orgs,
        &list,
        &memberships,
        &fields,
    ))
}

/// How many records an import wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub organizations: usize,
    pub users: usize,
    pub identities: usize,
    pub memberships: usize,
}

/// Writes `fixture` into an account just reset (only the owner left). Records with id 0 get
/// new ids after those given are written, so a given id never collides with an allocated one.
pub async fn apply(
    conn: &mut AnyConnection,
    backend: Backend,
    owner: i64,
    fixture: &Fixture,
) -> Result<Applied, StoreError> {
    if let Some(on) = fixture.bulk_user_import {
        settings::set(&mut *conn, BULK_IMPORT_KEY, &on.to_string()).await?;
    }
    for def in &fixture.fields {
        let mut def = def.clone();
        def.id = 0;
        crate::custom_fields::insert(&mut *conn, &def).await?;
    }
    // Organizations.
    let mut orgs = fixture.organizations.clone();
    let given: Vec<&deskd_model::organization::OrganizationRecord> =
        orgs.iter().filter(|o| o.id != 0).collect();
    for chunk in given.chunks(100) {
        let values = Params::new(conn).rows(chunk.len(), 15);
        let sql = format!(
            "INSERT INTO organizations (id, name, name_norm, external_id, external_id_norm, details, notes, \
             group_id, shared_tickets, shared_comments, domain_names, tags, organization_fields, created_at, \
             updated_at) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for o in chunk {
            q = q
                .bind(o.id)
                .bind(o.name.clone())
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
                .bind(o.updated_at);
        }
        q.execute(&mut *conn).await?;
    }
    follow_sequence(conn, backend, "organizations").await?;
    for o in orgs.iter_mut().filter(|o| o.id == 0) {
        o.id = crate::organizations::insert(&mut *conn, o).await?;
    }

    // Users, with their default organizations.
    let mut list: Vec<UserRecord> = fixture.users.iter().map(|(u, _)| u.clone()).collect();
    for (i, u) in list.iter_mut().enumerate() {
        u.organization_id = fixture
            .default_organization(Member::User(i))
            .map(|j| orgs[j].id);
    }
    let given: Vec<UserRecord> = list.iter().filter(|u| u.id != 0).cloned().collect();
    users::insert_many(&mut *conn, &given).await?;
    follow_sequence(conn, backend, "users").await?;
    let fresh = list.iter().filter(|u| u.id == 0).count();
    let mut new_ids = users::allocate_ids(&mut *conn, backend, fresh)
        .await?
        .into_iter();
    let mut allocated = Vec::with_capacity(fresh);
    for u in list.iter_mut().filter(|u| u.id == 0) {
        u.id = new_ids
            .next()
            .ok_or_else(|| StoreError::Corrupt("too few user ids".into()))?;
        allocated.push(u.clone());
    }
    users::insert_many(&mut *conn, &allocated).await?;
    for u in list.iter().filter(|u| u.last_login_at.is_some()) {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(u.last_login_at)
            .bind(u.id)
            .execute(&mut *conn)
            .await?;
    }
    let owner_org = fixture
        .default_organization(Member::Owner)
        .map(|j| orgs[j].id);
    sqlx::query("UPDATE users SET organization_id = $1 WHERE id = $2")
        .bind(owner_org)
        .bind(owner)
        .execute(&mut *conn)
        .await?;

    // Identities: the given ids first, then the rest.
    let mut identities: Vec<IdentityRecord> = Vec::new();
    for (i, (_, ids)) in fixture.users.iter().enumerate() {
        for ident in ids {
            let mut ident = ident.clone();
            ident.user_id = list[i].id;
            identities.push(ident);
        }
    }
    let given: Vec<&IdentityRecord> = identities.iter().filter(|i| i.id != 0).collect();
    insert_identities(conn, &given, true).await?;
    follow_sequence(conn, backend, "identities").await?;
    let fresh: Vec<&IdentityRecord> = identities.iter().filter(|i| i.id == 0).collect();
    insert_identities(conn, &fresh, false).await?;

    // Memberships.
    let member_id = |m: Member| match m {
        Member::Owner => owner,
        Member::User(i) => list[i].id,
    };
    let mut rows_given = Vec::new();
    let mut rows_fresh = Vec::new();
    for m in &fixture.memberships {
        let mut r = m.record.clone();
        r.user_id = member_id(m.member);
        r.organization_id = orgs[m.organization].id;
        if r.id == 0 {
            rows_fresh.push(r);
        } else {
            rows_given.push(r);
        }
    }
    insert_memberships(conn, &rows_given, true).await?;
    follow_sequence(conn, backend, "organization_memberships").await?;
    insert_memberships(conn, &rows_fresh, false).await?;
    Ok(Applied {
        organizations: orgs.len(),
        users: list.len(),
        identities: identities.len(),
        memberships: fixture.memberships.len(),
    })
}

async fn insert_identities(
    conn: &mut AnyConnection,
    list: &[&IdentityRecord],
    with_id: bool,
) -> Result<(), StoreError> {
    let per_row = if with_id { 9 } else { 8 };
    let cols = "user_id, type, value, value_norm, verified, is_primary, created_at, updated_at";
    for chunk in list.chunks(200) {
        let values = Params::new(conn).rows(chunk.len(), per_row);
        let sql = if with_id {
            format!("INSERT INTO identities (id, {cols}) VALUES {values}")
        } else {
            format!("INSERT INTO identities ({cols}) VALUES {values}")
        };
        let mut q = sqlx::query(&sql);
        for i in chunk {
            if with_id {
                q = q.bind(i.id);
            }
            q = q
                .bind(i.user_id)
                .bind(i.kind.clone())
                .bind(i.value.clone())
                .bind(normalize(&i.value))
                .bind(b(i.verified))
                .bind(b(i.primary))
                .bind(i.created_at)
                .bind(i.updated_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_memberships(
    conn: &mut AnyConnection,
    list: &[MembershipRecord],
    with_id: bool,
) -> Result<(), StoreError> {
    let per_row = if with_id { 7 } else { 6 };
    let cols = "user_id, organization_id, is_default, view_tickets, created_at, updated_at";
    for chunk in list.chunks(200) {
        let values = Params::new(conn).rows(chunk.len(), per_row);
        let sql = if with_id {
            format!("INSERT INTO organization_memberships (id, {cols}) VALUES {values}")
        } else {
            format!("INSERT INTO organization_memberships ({cols}) VALUES {values}")
        };
        let mut q = sqlx::query(&sql);
        for m in chunk {
            if with_id {
                q = q.bind(m.id);
            }
            q = q
                .bind(m.user_id)
                .bind(m.organization_id)
                .bind(b(m.default))
                .bind(b(m.view_tickets))
                .bind(m.created_at)
                .bind(m.updated_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// After rows were written with their own ids: PostgreSQL's identity sequence moves past the
/// highest (never back), so ids it hands out later are new. SQLite's AUTOINCREMENT counter
/// follows explicit ids by itself.
async fn follow_sequence(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &'static str,
) -> Result<(), StoreError> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    let sql = format!(
        "SELECT setval(s, m) AS v FROM (SELECT pg_get_serial_sequence('{table}', 'id') AS s, \
         (SELECT MAX(id) FROM {table}) AS m) x \
         WHERE m IS NOT NULL AND m > COALESCE(pg_sequence_last_value(s::regclass), 0)"
    );
    all(&mut *conn, sqlx::query(&sql)).await?;
    Ok(())
}
