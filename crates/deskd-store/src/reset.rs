//! Test mode's reset: the account back to empty, in one write transaction, keeping the account
//! owner (the first admin) and the account's API tokens so that the caller stays logged in.

use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{first, int, opt_int};

/// How many rows a reset removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reset {
    pub owner_id: i64,
    pub users: u64,
    pub organizations: u64,
    pub jobs: u64,
}

/// Deletes every user but the account owner (with their identities and bearer tokens),
/// every organization, job, job result, idempotency key, rate-limit bucket and account setting,
/// and bumps the credentials epoch so that cached logins of the deleted users stop at once.
/// The owner's row, identities, password and bearer tokens and the account API tokens stay.
/// Id sequences are not rewound: an id from before the reset never names a new record.
pub async fn reset_account(conn: &mut AnyConnection) -> Result<Reset, StoreError> {
    // On PostgreSQL, the rows in the order every writer takes them (field definitions, then
    // organizations, then users, each by id) before deleting any: a reset that deleted users
    // and then organizations deadlocked with writers, which lock an organization before its
    // users, and lost every retry under steady writes. (SQLite has one writer.)
    if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        for sql in [
            "SELECT id FROM custom_fields ORDER BY id FOR UPDATE",
            "SELECT id FROM organizations ORDER BY id FOR UPDATE",
            "SELECT id FROM users ORDER BY id FOR UPDATE",
        ] {
            sqlx::query(sql).fetch_all(&mut *conn).await?;
        }
    }
    let owner = match crate::users::account_owner(&mut *conn).await? {
        Some(id) => Some(id),
        // A database whose owner was never recorded: the oldest active admin.
        None => first(
            &mut *conn,
            sqlx::query("SELECT MIN(id) AS id FROM users WHERE role = 'admin' AND active = 1"),
        )
        .await?
        .map(|r| opt_int(&r, "id"))
        .transpose()?
        .flatten(),
    };
    let Some(owner) = owner else {
        return Err(StoreError::Corrupt(
            "the account has no owner to keep".into(),
        ));
    };
    let mut done = Reset {
        owner_id: owner,
        ..Reset::default()
    };
    sqlx::query("DELETE FROM job_results")
        .execute(&mut *conn)
        .await?;
    done.jobs = sqlx::query("DELETE FROM jobs")
        .execute(&mut *conn)
        .await?
        .rows_affected();
    for sql in [
        "DELETE FROM idempotency_keys",
        "DELETE FROM custom_field_options",
        "DELETE FROM custom_fields",
        "DELETE FROM rate_limits",
        "DELETE FROM settings WHERE key <> 'account_owner_id'",
    ] {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    for sql in [
        "DELETE FROM identities WHERE user_id <> $1",
        "DELETE FROM oauth_tokens WHERE user_id <> $1",
    ] {
        sqlx::query(sql).bind(owner).execute(&mut *conn).await?;
    }
    done.users = sqlx::query("DELETE FROM users WHERE id <> $1")
        .bind(owner)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("UPDATE users SET organization_id = NULL WHERE id = $1")
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    done.organizations = sqlx::query("DELETE FROM organizations")
        .execute(&mut *conn)
        .await?
        .rows_affected();
    crate::users::set_account_owner(&mut *conn, owner).await?;
    crate::credentials::bump_epoch(&mut *conn).await?;
    // Still there (a reset never removes the caller's own account).
    let left = first(
        &mut *conn,
        sqlx::query("SELECT COUNT(*) AS n FROM users WHERE id = $1").bind(owner),
    )
    .await?
    .map(|r| int(&r, "n"))
    .transpose()?
    .unwrap_or(0);
    if left != 1 {
        return Err(StoreError::Corrupt(format!(
            "the account owner {owner} is missing"
        )));
    }
    Ok(done)
}
