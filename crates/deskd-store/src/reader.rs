//! Read connections, and the share of the pool that ordinary reads may hold.
//!
//! Ordinary reads (lists, searches, exports) take a permit before a pool connection, and there
//! are fewer permits than connections: however many heavy searches run at once, the reserve stays
//! free for authentication, rate limits and writes, which take connections straight from the pool.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Backend, StoreError};

/// A pooled connection held for an ordinary read; its permit goes back with it.
pub struct Reader {
    conn: PoolConnection<Any>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Reader {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Reader {
    /// A read transaction whose statements are each bounded by `limit` (see
    /// [`bound_statements`]): one snapshot for a page and its count, and no read that outlives
    /// its welcome. Dropped without `commit`, it rolls back.
    pub async fn bounded(
        &mut self,
        limit: Duration,
    ) -> Result<sqlx::Transaction<'_, Any>, StoreError> {
        let backend = if self.conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut tx = sqlx::Connection::begin(&mut *self.conn).await?;
        bound_statements(backend, &mut tx, limit).await?;
        Ok(tx)
    }
}

pub(crate) async fn acquire(
    permits: &Arc<Semaphore>,
    pool: &sqlx::AnyPool,
) -> Result<Reader, StoreError> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| StoreError::Closed)?;
    Ok(Reader {
        conn: pool.acquire().await?,
        _permit: permit,
    })
}

/// Bounds each statement of the transaction open on `conn` to `limit`, on PostgreSQL (the
/// setting ends with the transaction). SQLite has no such setting; what bounds a read there is
/// the size of what it may ask (the search term cap).
pub async fn bound_statements(
    backend: Backend,
    conn: &mut AnyConnection,
    limit: Duration,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        // An integer in milliseconds, formatted here: SET takes no bind parameters.
        let ms = limit.as_millis().clamp(1, i32::MAX as u128);
        sqlx::query(&format!("SET LOCAL statement_timeout = {ms}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
