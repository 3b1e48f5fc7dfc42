//! deskd's persistence: one [`Store`] over SQLite or PostgreSQL through sqlx's `Any` driver, so
//! every query is written once. Writes go through [`Store::write`], which runs a unit of work in a
//! transaction: on SQLite all units share one writer connection and are committed in groups; on
//! PostgreSQL each runs in its own transaction and is retried when it loses a uniqueness race.

mod batcher;
mod connect;
mod error;
mod migrate;
mod writer;

pub mod credentials;
pub mod custom_fields;
pub mod identities;
pub mod jobs;
pub mod memberships;
pub mod merge;
pub mod organizations;
pub mod rate_limits;
pub mod reset;
pub mod rows;
pub mod search;
pub mod settings;
pub mod tags;
pub mod upsert;
pub mod user_queries;
pub mod users;

pub use connect::{Backend, StoreOptions};
pub use error::StoreError;
pub use sqlx::AnyConnection as Conn;
pub use writer::BoxFut;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AnyPool;

/// The database deskd runs on.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    pool: AnyPool,
    writer: writer::Writer,
    batcher: batcher::Batcher,
    /// Bumped whenever a write may take access away from someone (a role change, a suspension,
    /// a revoked token); authentication caches are valid only for the epoch they were filled in.
    credentials_epoch: Arc<AtomicU64>,
}

impl Store {
    /// Connects, creating a SQLite file if needed, and migrates.
    pub async fn open(opts: &StoreOptions) -> Result<Store, StoreError> {
        let (backend, pool, writer_conn) = connect::connect(opts).await?;
        migrate::run(backend, &pool).await?;
        let credentials_epoch = Arc::new(AtomicU64::new(0));
        let writer = writer::Writer::new(
            backend,
            pool.clone(),
            writer_conn,
            credentials_epoch.clone(),
        );
        tokio::spawn(follow_credentials_epoch(
            pool.clone(),
            credentials_epoch.clone(),
        ));
        let batcher = batcher::Batcher::new(writer.clone());
        Ok(Store {
            backend,
            pool,
            writer,
            batcher,
            credentials_epoch,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for reads.
    pub async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// Runs `work` in a write transaction and returns its value once committed. `work` may run
    /// more than once (after a lost race, or when a group it shared is rolled back), so it must
    /// decide from what it reads inside the transaction.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut Conn) -> BoxFut<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.writer.run(work).await
    }

    /// create_or_update of one user, decided and written together with the requests waiting
    /// beside it.
    pub async fn create_or_update(
        &self,
        item: upsert::UpsertItem,
    ) -> Result<upsert::UpsertOutcome, StoreError> {
        self.batcher.submit(item).await
    }

    /// The current credentials epoch (see the field).
    pub fn credentials_epoch(&self) -> u64 {
        self.credentials_epoch.load(Ordering::SeqCst)
    }

    /// True once the database answers a trivial query.
    pub async fn healthy(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Stops the writer and closes every connection.
    pub async fn close(&self) {
        self.batcher.close().await;
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// How often a process looks for credentials changes made by other processes.
const EPOCH_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Follows the database's credentials epoch (bumped by any process that takes access away) and
/// bumps this process's when it moves, until the pool closes.
async fn follow_credentials_epoch(pool: AnyPool, local: Arc<AtomicU64>) {
    let mut seen: Option<i64> = None;
    while !pool.is_closed() {
        if let Ok(mut conn) = pool.acquire().await {
            if let Ok(e) = credentials::epoch(&mut conn).await {
                if seen.is_some_and(|s| s != e) {
                    local.fetch_add(1, Ordering::SeqCst);
                }
                seen = Some(e);
            }
        }
        tokio::time::sleep(EPOCH_POLL).await;
    }
}
