//! Schema migrations, one folder per backend, applied in order and recorded in the database.

use sqlx::{AnyPool, Connection, Executor, Row};

use crate::{Backend, StoreError};

/// Migrations in order; the version of each is its position, from 1.
const SQLITE: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_jobs.sql"),
    include_str!("../migrations/sqlite/0003_updated_index.sql"),
    include_str!("../migrations/sqlite/0004_rate_limits.sql"),
    include_str!("../migrations/sqlite/0005_credentials_epoch.sql"),
    include_str!("../migrations/sqlite/0006_job_attempts.sql"),
    include_str!("../migrations/sqlite/0007_organization_memberships.sql"),
    include_str!("../migrations/sqlite/0008_custom_fields.sql"),
    include_str!("../migrations/sqlite/0011_web_sessions.sql"),
    include_str!("../migrations/sqlite/0012_name_norm.sql"),
];
const POSTGRES: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_jobs.sql"),
    include_str!("../migrations/postgres/0003_updated_index.sql"),
    include_str!("../migrations/postgres/0004_rate_limits.sql"),
    include_str!("../migrations/postgres/0005_credentials_epoch.sql"),
    include_str!("../migrations/postgres/0006_job_attempts.sql"),
    include_str!("../migrations/postgres/0007_organization_memberships.sql"),
    include_str!("../migrations/postgres/0008_custom_fields.sql"),
    include_str!("../migrations/postgres/0011_web_sessions.sql"),
    include_str!("../migrations/postgres/0012_name_norm.sql"),
];

/// An arbitrary key for PostgreSQL's advisory lock, so replicas starting together migrate once.
const MIGRATION_LOCK: i64 = 0x0de5_6d00_0001;

pub(crate) async fn run(backend: Backend, pool: &AnyPool) -> Result<(), StoreError> {
    let migrations = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let mut conn = pool.acquire().await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let result = async {
        conn.execute("CREATE TABLE IF NOT EXISTS deskd_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM deskd_migrations")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for (version, sql) in (1i64..).zip(migrations.iter()) {
            if applied.contains(&version) {
                continue;
            }
            let mut tx = conn.begin().await?;
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO deskd_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(deskd_model::time::now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "applied migration");
        }
        Ok::<(), StoreError>(())
    }
    .await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    result
}

/// Migrations this build applies on `backend`.
pub(crate) fn count(backend: Backend) -> i64 {
    let n = match backend {
        Backend::Sqlite => SQLITE.len(),
        Backend::Postgres => POSTGRES.len(),
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}
