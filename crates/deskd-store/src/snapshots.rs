//! Test mode's snapshots: copies of the account's tables kept in the database itself
//! (`CREATE TABLE … AS SELECT *`), so saving and restoring are a few set-based statements on
//! either backend, with no decoding of rows — much faster than exporting and importing a
//! document. The registry (`deskd_snapshots`) and the copies are made on first use, only in
//! test mode, and are not part of the migrated schema. Snapshots outlive resets and imports
//! (a suite saves one at the start and restores it before each test) and are shared by every
//! process on the same database.

use sqlx::AnyConnection;

use crate::rows::{all, first, int, opt_int, text};
use crate::{StoreError, reset};

/// The tables a snapshot copies, in the order a restore writes them back (parents first),
/// each with the rows a restore takes from it: everything but the account owner's own rows,
/// which a restore leaves as they are (so the caller stays logged in).
/// The third field says whether the filter takes the owner's id as `$1`.
const TABLES: &[(&str, &str, bool)] = &[
    ("organizations", "1 = 1", false),
    ("users", "id <> $1", true),
    ("identities", "user_id <> $1", true),
    ("organization_memberships", "1 = 1", false),
    ("oauth_tokens", "user_id <> $1", true),
    ("settings", "key <> 'account_owner_id'", false),
    ("custom_fields", "1 = 1", false),
    ("custom_field_options", "1 = 1", false),
];

/// A saved snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
    pub created_at: i64,
    pub users: i64,
    pub organizations: i64,
}

async fn registry(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS deskd_snapshots (name TEXT PRIMARY KEY, slot BIGINT NOT NULL, \
         created_at BIGINT NOT NULL, users BIGINT NOT NULL, organizations BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn copy_name(slot: i64, table: &str) -> String {
    format!("deskd_snapshot_{slot}_{table}")
}

async fn slot_of(conn: &mut AnyConnection, name: &str) -> Result<Option<i64>, StoreError> {
    first(
        &mut *conn,
        sqlx::query("SELECT slot FROM deskd_snapshots WHERE name = $1").bind(name.to_owned()),
    )
    .await?
    .map(|r| int(&r, "slot"))
    .transpose()
}

async fn drop_copies(conn: &mut AnyConnection, slot: i64) -> Result<(), StoreError> {
    for (table, _, _) in TABLES {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", copy_name(slot, table)))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Saves the account's state as `name` (replacing a snapshot of that name).
pub async fn save(conn: &mut AnyConnection, name: &str, now: i64) -> Result<Snapshot, StoreError> {
    // One view of every table: under READ COMMITTED each copy would see its own moment, and a
    // user created between two copies could leave identities without their user.
    if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *conn)
            .await?;
    }
    registry(conn).await?;
    let slot = match slot_of(conn, name).await? {
        Some(slot) => {
            drop_copies(conn, slot).await?;
            slot
        }
        None => {
            first(
                &mut *conn,
                sqlx::query("SELECT MAX(slot) AS m FROM deskd_snapshots"),
            )
            .await?
            .map(|r| opt_int(&r, "m"))
            .transpose()?
            .flatten()
            .unwrap_or(0)
                + 1
        }
    };
    for (table, _, _) in TABLES {
        sqlx::query(&format!(
            "CREATE TABLE {} AS SELECT * FROM {table}",
            copy_name(slot, table)
        ))
        .execute(&mut *conn)
        .await?;
    }
    let count = |table: &str| format!("SELECT COUNT(*) AS n FROM {}", copy_name(slot, table));
    let users = first(&mut *conn, sqlx::query(&count("users")))
        .await?
        .map(|r| int(&r, "n"))
        .transpose()?
        .unwrap_or(0);
    let organizations = first(&mut *conn, sqlx::query(&count("organizations")))
        .await?
        .map(|r| int(&r, "n"))
        .transpose()?
        .unwrap_or(0);
    sqlx::query("DELETE FROM deskd_snapshots WHERE name = $1")
        .bind(name.to_owned())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO deskd_snapshots (name, slot, created_at, users, organizations) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(name.to_owned())
    .bind(slot)
    .bind(now)
    .bind(users)
    .bind(organizations)
    .execute(&mut *conn)
    .await?;
    Ok(Snapshot {
        name: name.to_owned(),
        created_at: now,
        users,
        organizations,
    })
}

/// Returns the account to snapshot `name`: a reset (jobs, idempotency keys and rate-limit
/// buckets go too), then the snapshot's rows back. `None` when there is no such snapshot.
pub async fn restore(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<reset::Reset>, StoreError> {
    registry(conn).await?;
    let Some(slot) = slot_of(conn, name).await? else {
        return Ok(None);
    };
    let done = reset::reset_account(&mut *conn).await?;
    let owner = done.owner_id;
    for (table, rows, binds) in TABLES {
        let sql = format!(
            "INSERT INTO {table} SELECT * FROM {} WHERE {rows}",
            copy_name(slot, table)
        );
        let mut q = sqlx::query(&sql);
        if *binds {
            q = q.bind(owner);
        }
        q.execute(&mut *conn).await?;
    }
    // The owner's default organization, as it was.
    sqlx::query(&format!(
        "UPDATE users SET organization_id = (SELECT organization_id FROM {} WHERE id = $1) WHERE id = $1",
        copy_name(slot, "users")
    ))
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(Some(done))
}

/// Every snapshot, by name.
pub async fn list(conn: &mut AnyConnection) -> Result<Vec<Snapshot>, StoreError> {
    registry(conn).await?;
    all(
        &mut *conn,
        sqlx::query(
            "SELECT name, created_at, users, organizations FROM deskd_snapshots ORDER BY name",
        ),
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Snapshot {
            name: text(r, "name")?,
            created_at: int(r, "created_at")?,
            users: int(r, "users")?,
            organizations: int(r, "organizations")?,
        })
    })
    .collect()
}

/// Deletes snapshot `name`; false when there was none.
pub async fn delete(conn: &mut AnyConnection, name: &str) -> Result<bool, StoreError> {
    registry(conn).await?;
    let Some(slot) = slot_of(conn, name).await? else {
        return Ok(false);
    };
    drop_copies(conn, slot).await?;
    sqlx::query("DELETE FROM deskd_snapshots WHERE name = $1")
        .bind(name.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(true)
}
