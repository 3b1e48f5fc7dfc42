//! Users and their identities.

use std::collections::HashMap;

use deskd_model::identity::{IdentityKey, IdentityRecord};
use deskd_model::upsert::NewIdentity;
use deskd_model::user::UserRecord;
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{self, MAX_BOUND, Params, Q, all, b, first, int, json};

/// Columns written from a [`UserRecord`], in bind order.
const WRITE_COLUMNS: [&str; 29] = [
    "name",
    "name_norm",
    "email",
    "external_id",
    "external_id_norm",
    "role",
    "custom_role_id",
    "organization_id",
    "default_group_id",
    "time_zone",
    "locale",
    "locale_id",
    "phone",
    "shared_phone_number",
    "alias",
    "details",
    "notes",
    "signature",
    "remote_photo_url",
    "ticket_restriction",
    "tags",
    "user_fields",
    "moderator",
    "only_private_comments",
    "suspended",
    "verified",
    "active",
    "created_at",
    "updated_at",
];

/// One column's value, as bound.
#[derive(Clone, PartialEq)]
enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

/// The values of [`WRITE_COLUMNS`] for `u`, in order.
fn values(u: &UserRecord) -> [Val; 29] {
    use Val::{Int, Text};
    [
        Text(Some(u.name.clone())),
        Text(Some(deskd_model::text::fold(&u.name))),
        Text(u.email.clone()),
        Text(u.external_id.clone()),
        Text(u.external_id.as_deref().map(deskd_model::text::normalize)),
        Text(Some(u.role.as_str().to_owned())),
        Int(u.custom_role_id),
        Int(u.organization_id),
        Int(u.default_group_id),
        Text(Some(u.time_zone.clone())),
        Text(Some(u.locale.clone())),
        Int(Some(u.locale_id)),
        Text(u.phone.clone()),
        Int(u.shared_phone_number.map(b)),
        Text(u.alias.clone()),
        Text(u.details.clone()),
        Text(u.notes.clone()),
        Text(u.signature.clone()),
        Text(u.remote_photo_url.clone()),
        Text(u.ticket_restriction.clone()),
        Text(Some(json(&u.tags))),
        Text(Some(json(&u.user_fields))),
        Int(Some(b(u.moderator))),
        Int(Some(b(u.only_private_comments))),
        Int(Some(b(u.suspended))),
        Int(Some(b(u.verified))),
        Int(Some(b(u.active))),
        Int(Some(u.created_at)),
        Int(Some(u.updated_at)),
    ]
}

fn bind_val<'q>(q: Q<'q>, v: Val) -> Q<'q> {
    match v {
        Val::Text(t) => q.bind(t),
        Val::Int(i) => q.bind(i),
    }
}

fn bind_user<'q>(mut q: Q<'q>, u: &UserRecord) -> Q<'q> {
    for v in values(u) {
        q = bind_val(q, v);
    }
    q
}

fn insert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let params: Vec<String> = (1..=WRITE_COLUMNS.len()).map(|i| format!("${i}")).collect();
        format!(
            "INSERT INTO users ({}) VALUES ({}) RETURNING id",
            WRITE_COLUMNS.join(", "),
            params.join(", ")
        )
    })
}

/// Inserts a user and returns its new id.
pub async fn insert(conn: &mut AnyConnection, u: &UserRecord) -> Result<i64, StoreError> {
    let row = first(conn, bind_user(sqlx::query(insert_sql()), u)).await?;
    row.map(|r| int(&r, "id"))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))
}

/// Writes the columns of a user that differ between `old` (as read, under the user's lock) and
/// `new`: a write never rewrites what it did not change.
pub async fn update(
    conn: &mut AnyConnection,
    old: &UserRecord,
    new: &UserRecord,
) -> Result<(), StoreError> {
    let changed: Vec<(usize, Val)> = values(old)
        .into_iter()
        .zip(values(new))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (_, b))| (i, b))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let sets: Vec<String> = changed
        .iter()
        .enumerate()
        .map(|(n, (i, _))| format!("{} = ${}", WRITE_COLUMNS[*i], n + 1))
        .collect();
    let sql = format!(
        "UPDATE users SET {} WHERE id = ${}",
        sets.join(", "),
        changed.len() + 1
    );
    let mut q = sqlx::query(&sql);
    for (_, v) in changed {
        q = bind_val(q, v);
    }
    q.bind(new.id).execute(conn).await?;
    Ok(())
}

/// Locks the rows of `ids` (sorted, without repeats) until the transaction ends, on
/// PostgreSQL; SQLite's single writer already serializes every write. Facts a plan relies on
/// are read after this, so they are current and stay so until the commit.
pub async fn lock(conn: &mut AnyConnection, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() || conn.backend_name() != <sqlx::Postgres as sqlx::Database>::NAME {
        return Ok(());
    }
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id FROM users WHERE id IN ({}) ORDER BY id FOR UPDATE",
            Params::new(conn).list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        all(conn, q).await?;
    }
    Ok(())
}

/// On PostgreSQL, finds and locks in one statement the users a batch names: by id, by
/// normalised external id, or by identity. Returns the ids locked (empty on SQLite, whose single
/// writer already serializes). The caller reads its facts afterwards and locks any user that
/// changed hands in between (see `upsert::gather`).
pub async fn lock_named(
    conn: &mut AnyConnection,
    ids: &[i64],
    external_ids: &[String],
    keys: &[IdentityKey],
) -> Result<Vec<i64>, StoreError> {
    if conn.backend_name() != <sqlx::Postgres as sqlx::Database>::NAME
        || (ids.is_empty() && external_ids.is_empty() && keys.is_empty())
    {
        return Ok(Vec::new());
    }
    let mut p = Params::new(conn);
    let mut branches: Vec<String> = Vec::new();
    if !ids.is_empty() {
        branches.push(format!(
            "SELECT id FROM users WHERE id IN ({})",
            p.list(ids.len())
        ));
    }
    if !external_ids.is_empty() {
        branches.push(format!(
            "SELECT id FROM users WHERE external_id_norm IN ({})",
            p.list(external_ids.len())
        ));
    }
    let mut by_kind: Vec<(&str, Vec<&str>)> = Vec::new();
    for k in keys {
        match by_kind.iter_mut().find(|(kind, _)| *kind == k.kind) {
            Some((_, values)) => values.push(&k.value_norm),
            None => by_kind.push((&k.kind, vec![&k.value_norm])),
        }
    }
    for (_, values) in &by_kind {
        branches.push(format!(
            "SELECT user_id FROM identities WHERE type = {} AND value_norm IN ({})",
            p.one(),
            p.list(values.len())
        ));
    }
    let sql = format!(
        "SELECT id FROM users WHERE id IN ({}) ORDER BY id FOR UPDATE",
        branches.join(" UNION ")
    );
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    for e in external_ids {
        q = q.bind(e.clone());
    }
    for (kind, values) in by_kind {
        q = q.bind(kind.to_owned());
        for v in values {
            q = q.bind(v.to_owned());
        }
    }
    all(conn, q).await?.iter().map(|r| int(r, "id")).collect()
}

/// Clears the external ids of `ids`, before a batch hands them to other users.
pub async fn release_external_ids(conn: &mut AnyConnection, ids: &[i64]) -> Result<(), StoreError> {
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "UPDATE users SET external_id = NULL, external_id_norm = NULL WHERE id IN ({})",
            Params::new(conn).list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn load(conn: &mut AnyConnection, id: i64) -> Result<Option<UserRecord>, StoreError> {
    let sql = format!("SELECT {} FROM users WHERE id = $1", rows::USER_COLUMNS);
    first(conn, sqlx::query(&sql).bind(id))
        .await?
        .map(|r| rows::user(&r))
        .transpose()
}

/// The user holding `external_id` (compared case-insensitively, trimmed).
pub async fn id_by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> Result<Option<i64>, StoreError> {
    let norm = deskd_model::text::normalize(external_id);
    let row = first(
        conn,
        sqlx::query("SELECT id FROM users WHERE external_id_norm = $1").bind(norm),
    )
    .await?;
    row.map(|r| int(&r, "id")).transpose()
}

/// The user holding an identity, by type and value (case-insensitive, trimmed).
pub async fn id_by_identity(
    conn: &mut AnyConnection,
    kind: &str,
    value: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(identity_owners(conn, &[IdentityKey::new(kind, value)])
        .await?
        .into_iter()
        .next()
        .map(|(_, id)| id))
}

/// Who holds each of `keys`; keys nobody holds are left out. One `type = ? AND value_norm IN
/// (...)` query per identity type, which both backends answer from the unique index.
pub async fn identity_owners(
    conn: &mut AnyConnection,
    keys: &[IdentityKey],
) -> Result<Vec<(IdentityKey, i64)>, StoreError> {
    let mut by_kind: Vec<(&str, Vec<&str>)> = Vec::new();
    for k in keys {
        match by_kind.iter_mut().find(|(kind, _)| *kind == k.kind) {
            Some((_, values)) => values.push(&k.value_norm),
            None => by_kind.push((&k.kind, vec![&k.value_norm])),
        }
    }
    let mut out = Vec::new();
    for (kind, values) in by_kind {
        for chunk in values.chunks(CHUNK) {
            let mut p = Params::new(conn);
            let sql = format!(
                "SELECT value_norm, user_id FROM identities WHERE type = {} AND value_norm IN ({})",
                p.one(),
                p.list(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(kind.to_owned());
            for v in chunk {
                q = q.bind((*v).to_owned());
            }
            for r in all(conn, q).await? {
                out.push((
                    IdentityKey {
                        kind: kind.to_owned(),
                        value_norm: rows::text(&r, "value_norm")?,
                    },
                    int(&r, "user_id")?,
                ));
            }
        }
    }
    Ok(out)
}

const CHUNK: usize = MAX_BOUND;

/// The users holding each of the normalised `external_ids`.
pub async fn ids_by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[String],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut out = HashMap::new();
    for chunk in external_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, external_id_norm FROM users WHERE external_id_norm IN ({})",
            Params::new(conn).list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q.bind(e.clone());
        }
        for r in all(conn, q).await? {
            out.insert(rows::text(&r, "external_id_norm")?, int(&r, "id")?);
        }
    }
    Ok(out)
}

/// Users by id, each with its identities; unknown ids are left out.
pub async fn load_many_with_identities(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<Vec<(UserRecord, Vec<IdentityRecord>)>, StoreError> {
    let mut unique: Vec<i64> = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut out = Vec::new();
    for chunk in unique.chunks(CHUNK) {
        let list = Params::new(conn).list(chunk.len());
        let sql = format!(
            "SELECT {} FROM users WHERE id IN ({list})",
            rows::USER_COLUMNS
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        let found: Vec<UserRecord> = all(conn, q)
            .await?
            .iter()
            .map(rows::user)
            .collect::<Result<_, _>>()?;
        if found.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT {} FROM identities WHERE user_id IN ({list}) ORDER BY is_primary DESC, id",
            rows::IDENTITY_COLUMNS
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        let mut by_user: HashMap<i64, Vec<IdentityRecord>> = HashMap::new();
        for r in all(conn, q).await? {
            let i = rows::identity(&r)?;
            by_user.entry(i.user_id).or_default().push(i);
        }
        for u in found {
            let ids = by_user.remove(&u.id).unwrap_or_default();
            out.push((u, ids));
        }
    }
    Ok(out)
}

/// Reserves `n` new user ids in one statement. SQLite has a single writer, so bumping
/// AUTOINCREMENT's counter is enough; PostgreSQL draws from the identity sequence.
pub async fn allocate_ids(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    n: usize,
) -> Result<Vec<i64>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let count = i64::try_from(n).map_err(|_| StoreError::Corrupt("too many ids".into()))?;
    match backend {
        crate::Backend::Sqlite => {
            let row = first(
                conn,
                sqlx::query(
                    "UPDATE sqlite_sequence SET seq = seq + $1 WHERE name = 'users' RETURNING seq",
                )
                .bind(count),
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("no users sequence".into()))?;
            let last = int(&row, "seq")?;
            Ok((last - count + 1..=last).collect())
        }
        crate::Backend::Postgres => {
            let rows = all(
                conn,
                sqlx::query("SELECT nextval(pg_get_serial_sequence('users', 'id')) AS id FROM generate_series(1, $1)").bind(count),
            )
            .await?;
            let mut ids: Vec<i64> = rows
                .iter()
                .map(|r| int(r, "id"))
                .collect::<Result<_, _>>()?;
            ids.sort_unstable();
            Ok(ids)
        }
    }
}

/// Inserts users whose ids were allocated with [`allocate_ids`], many rows a statement.
pub async fn insert_many(conn: &mut AnyConnection, list: &[UserRecord]) -> Result<(), StoreError> {
    let per_row = WRITE_COLUMNS.len() + 1;
    for chunk in list.chunks((CHUNK / per_row).max(1)) {
        let values = Params::new(conn).rows(chunk.len(), per_row);
        let sql = format!(
            "INSERT INTO users (id, {}) VALUES {values}",
            WRITE_COLUMNS.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for u in chunk {
            q = bind_user(q.bind(u.id), u);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts identities, many rows a statement.
pub async fn insert_identities(
    conn: &mut AnyConnection,
    list: &[(i64, NewIdentity)],
    now: i64,
) -> Result<(), StoreError> {
    const PER_ROW: usize = 8;
    for chunk in list.chunks(CHUNK / PER_ROW) {
        let values = Params::new(conn).rows(chunk.len(), PER_ROW);
        let sql = format!(
            "INSERT INTO identities (user_id, type, value, value_norm, verified, is_primary, created_at, updated_at) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for (user_id, n) in chunk {
            q = q
                .bind(*user_id)
                .bind(n.kind.clone())
                .bind(n.value.clone())
                .bind(deskd_model::text::normalize(&n.value))
                .bind(b(n.verified))
                .bind(b(n.primary))
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A user's identities, primary ones first, then oldest first.
pub async fn identities(
    conn: &mut AnyConnection,
    user_id: i64,
) -> Result<Vec<IdentityRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM identities WHERE user_id = $1 ORDER BY is_primary DESC, id",
        rows::IDENTITY_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(user_id))
        .await?
        .iter()
        .map(rows::identity)
        .collect()
}

pub async fn insert_identity(
    conn: &mut AnyConnection,
    user_id: i64,
    n: &NewIdentity,
    now: i64,
) -> Result<i64, StoreError> {
    let row = first(
        conn,
        sqlx::query(
            "INSERT INTO identities (user_id, type, value, value_norm, verified, is_primary, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(user_id)
        .bind(n.kind.clone())
        .bind(n.value.clone())
        .bind(deskd_model::text::normalize(&n.value))
        .bind(b(n.verified))
        .bind(b(n.primary))
        .bind(now),
    )
    .await?;
    row.map(|r| int(&r, "id"))
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))
}

/// Sets an identity's verified flag.
pub async fn set_identity_verified(
    conn: &mut AnyConnection,
    identity_id: i64,
    verified: bool,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE identities SET verified = $1, updated_at = $2 WHERE id = $3")
        .bind(b(verified))
        .bind(now)
        .bind(identity_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether any admin exists (deskd creates the first one at start).
pub async fn admin_exists(conn: &mut AnyConnection) -> Result<bool, StoreError> {
    Ok(first(
        conn,
        sqlx::query("SELECT id FROM users WHERE role = 'admin' AND active = 1 LIMIT 1"),
    )
    .await?
    .is_some())
}

/// Sets (or, with `None`, clears) a user's password hash; cached logins are dropped.
pub async fn set_password(
    conn: &mut AnyConnection,
    user_id: i64,
    hash: Option<&str>,
) -> Result<(), StoreError> {
    lock(conn, &[user_id]).await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash.map(str::to_owned))
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    crate::credentials::bump_epoch(conn).await
}

pub async fn set_password_hash(
    conn: &mut AnyConnection,
    user_id: i64,
    hash: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash.to_owned())
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_identity_by_value(
    conn: &mut AnyConnection,
    user_id: i64,
    kind: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM identities WHERE user_id = $1 AND type = $2 AND value_norm = $3")
        .bind(user_id)
        .bind(kind.to_owned())
        .bind(deskd_model::text::normalize(value))
        .execute(&mut *conn)
        .await?;
    // Compared after deskd's normalisation (SQL's lower() is not it: ASCII-only on SQLite, no
    // NFC nor IDNA anywhere).
    let row = first(
        conn,
        sqlx::query("SELECT email FROM users WHERE id = $1").bind(user_id),
    )
    .await?;
    let email = row
        .map(|r| rows::opt_text(&r, "email"))
        .transpose()?
        .flatten();
    if email
        .is_some_and(|e| deskd_model::text::normalize(&e) == deskd_model::text::normalize(value))
    {
        sqlx::query("UPDATE users SET email = NULL WHERE id = $1")
            .bind(user_id)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Soft delete, as Zendesk does it: the user stays readable with `active: false`, its identities
/// and external id are released for reuse, `email` reads null and `verified` false.
pub async fn soft_delete(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
) -> Result<Option<UserRecord>, StoreError> {
    sqlx::query("DELETE FROM identities WHERE user_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE users SET active = 0, email = NULL, external_id = NULL, external_id_norm = NULL, verified = 0, \
         updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    load(conn, id).await
}

/// The account owner (the first admin), who cannot be deleted.
pub async fn account_owner(conn: &mut AnyConnection) -> Result<Option<i64>, StoreError> {
    Ok(crate::settings::get(conn, OWNER_KEY)
        .await?
        .and_then(|v| v.parse().ok()))
}

pub async fn set_account_owner(conn: &mut AnyConnection, id: i64) -> Result<(), StoreError> {
    crate::settings::set(conn, OWNER_KEY, &id.to_string()).await
}

const OWNER_KEY: &str = "account_owner_id";

/// Deletes the user named by `id` or `external_id` for `actor`, if the rules allow.
pub async fn delete_for(
    conn: &mut AnyConnection,
    actor: deskd_model::role::Actor,
    id: Option<i64>,
    external_id: Option<&str>,
    now: i64,
) -> Result<Result<UserRecord, deskd_model::Rejection>, StoreError> {
    let id = match (id, external_id) {
        (Some(id), _) => Some(id),
        (None, Some(ext)) => id_by_external_id(conn, ext).await?,
        (None, None) => None,
    };
    if let Some(id) = id {
        lock(conn, &[id]).await?;
    }
    let Some(user) = (match id {
        Some(id) => load(conn, id).await?,
        None => None,
    }) else {
        return Ok(Err(deskd_model::Rejection::NotFound));
    };
    let owner = account_owner(conn).await?;
    if !deskd_model::role::may_delete(actor, user.role, user.id, owner) {
        return Ok(Err(deskd_model::Rejection::Forbidden));
    }
    if !user.active {
        return Ok(Ok(user));
    }
    let deleted = soft_delete(conn, user.id, now).await?;
    crate::credentials::bump_epoch(&mut *conn).await?;
    Ok(deleted.ok_or(deskd_model::Rejection::NotFound))
}
