//! deskd's persistence: one [`Store`] over SQLite or PostgreSQL through sqlx's `Any` driver, so
//! every query is written once. Writes go through [`Store::write`], which runs a unit of work in a
//! transaction: on SQLite all units share one writer connection and are committed in groups; on
//! PostgreSQL each runs in its own transaction and is retried when it loses a uniqueness race.

mod batcher;
mod connect;
mod error;
mod health;
mod listen;
mod migrate;
mod reader;
pub mod stats;
mod writer;

pub mod credentials;
pub mod custom_fields;
pub mod fixture;
pub mod identities;
pub mod jobs;
pub mod memberships;
pub mod merge;
pub mod organizations;
pub mod rate_limits;
pub mod reset;
pub mod rows;
pub mod search;
pub mod sessions;
pub mod settings;
pub mod snapshots;
pub mod tags;
pub mod upsert;
pub mod user_queries;
pub mod users;

pub use connect::{Backend, StoreOptions};
pub use error::StoreError;
pub use reader::{Reader, bound_statements};
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
    /// Permits for ordinary reads: fewer than the pool's connections (see `reader`).
    read_permits: Arc<tokio::sync::Semaphore>,
    /// Bumped whenever a write may take access away from someone (a role change, a suspension,
    /// a revoked token); authentication caches are valid only for the epoch they were filled in.
    credentials_epoch: Arc<AtomicU64>,
    /// Whether the database is reachable (see `health`).
    health: Arc<health::Health>,
    /// Woken when a job may be waiting: queued here, or (on PostgreSQL) by another replica.
    jobs_wake: Arc<tokio::sync::Notify>,
    stats: Arc<stats::Stats>,
    max_connections: u32,
    /// Turns true when the store closes; stops the background tasks.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Store {
    /// Connects, creating a SQLite file if needed, and migrates.
    pub async fn open(opts: &StoreOptions) -> Result<Store, StoreError> {
        let (backend, pool, writer_conn) = connect::connect(opts).await?;
        let read_permits = Arc::new(tokio::sync::Semaphore::new(opts.read_slots().1 as usize));
        migrate::run(backend, &pool).await?;
        let credentials_epoch = Arc::new(AtomicU64::new(0));
        let health = Arc::new(health::Health::default());
        let stats = Arc::new(stats::Stats::default());
        let jobs_wake = Arc::new(tokio::sync::Notify::new());
        let (closing, closed) = tokio::sync::watch::channel(false);
        let writer = writer::Writer::new(
            backend,
            pool.clone(),
            writer_conn,
            credentials_epoch.clone(),
            stats.clone(),
        );
        tokio::spawn(follow_credentials_epoch(
            pool.clone(),
            credentials_epoch.clone(),
            health.clone(),
        ));
        if backend == Backend::Postgres {
            let targets = listen::Targets {
                health: health.clone(),
                jobs: jobs_wake.clone(),
                epoch: credentials_epoch.clone(),
            };
            tokio::spawn(listen::listen(opts.url.clone(), targets, closed.clone()));
            tokio::spawn(listen::probe(
                opts.url.clone(),
                pool.clone(),
                health.clone(),
                closed,
            ));
        }
        let in_flight = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => opts.write_batches.max(1),
        };
        let batcher = batcher::Batcher::new(writer.clone(), stats.clone(), in_flight);
        Ok(Store {
            backend,
            pool,
            writer,
            batcher,
            read_permits,
            credentials_epoch,
            health,
            jobs_wake,
            stats,
            max_connections: opts.max_connections.max(2),
            closing: Arc::new(closing),
        })
    }

    /// Woken when a job may be waiting to be claimed (see the field).
    pub fn jobs_wake(&self) -> Arc<tokio::sync::Notify> {
        self.jobs_wake.clone()
    }

    /// Whether notifications from other replicas reach this one now (PostgreSQL's LISTEN
    /// connection is up); always false on SQLite, which has no other replicas.
    pub fn listening(&self) -> bool {
        self.health.listening.load(Ordering::Acquire)
    }

    /// What the store counts, for metrics.
    pub fn stats(&self) -> &stats::Stats {
        &self.stats
    }

    /// The connection pool now.
    pub fn pool_stats(&self) -> stats::PoolStats {
        stats::PoolStats {
            max: self.max_connections,
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            waiting: self.stats.waiting.load(Ordering::Relaxed),
        }
    }

    /// Why the store cannot serve now, if it cannot: the database is down or unreachable, or its
    /// schema is not the one this build migrates to (another version of deskd migrated it).
    pub async fn readiness(&self) -> Result<(), String> {
        self.health.check().map_err(|e| e.to_string())?;
        let expected = migrate::count(self.backend);
        let checked = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            let mut conn = self.pool.acquire().await?;
            sqlx::query("SELECT COUNT(*) AS n FROM deskd_migrations")
                .fetch_one(&mut *conn)
                .await
                .and_then(|r| sqlx::Row::try_get::<i64, _>(&r, "n"))
        })
        .await;
        match checked {
            Ok(Ok(n)) if n == expected => Ok(()),
            Ok(Ok(n)) => Err(format!(
                "the database has {n} migrations applied; this deskd expects {expected}"
            )),
            Ok(Err(e)) => {
                let e = StoreError::from(e);
                self.report(&e);
                Err(e.to_string())
            }
            Err(_) => Err("the database did not answer within 2 s".to_owned()),
        }
    }

    /// Wakes the probe when `e` says the database went away.
    fn report(&self, e: &StoreError) {
        if self.backend == Backend::Postgres && e.is_unavailable() {
            self.health.report();
        }
    }

    fn reported<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r {
            self.report(e);
        }
        r
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for an ordinary read (a list, a search, an export): these share what the
    /// pool has beyond its reserve, and wait for one another rather than for it.
    pub async fn reader(&self) -> Result<Reader, StoreError> {
        self.health.check()?;
        let _waiting = stats::Waiting::new(&self.stats.waiting);
        self.reported(reader::acquire(&self.read_permits, &self.pool).await)
    }

    /// A connection from the reserve as well: for authentication, rate limits and the reads a
    /// write makes, which must not queue behind heavy searches.
    pub async fn priority_reader(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        self.health.check()?;
        let _waiting = stats::Waiting::new(&self.stats.waiting);
        self.reported(self.pool.acquire().await.map_err(StoreError::from))
    }

    /// Runs `work` in a write transaction and returns its value once committed. `work` may run
    /// more than once (after a lost race, or when a group it shared is rolled back), so it must
    /// decide from what it reads inside the transaction.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut Conn) -> BoxFut<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.health.check()?;
        self.reported(self.writer.run(work).await)
    }

    /// create_or_update of one user, decided and written together with the requests waiting
    /// beside it.
    pub async fn create_or_update(
        &self,
        item: upsert::UpsertItem,
    ) -> Result<upsert::Answer, StoreError> {
        self.health.check()?;
        self.reported(self.batcher.submit(item).await)
    }

    /// The current credentials epoch (see the field).
    pub fn credentials_epoch(&self) -> u64 {
        self.credentials_epoch.load(Ordering::SeqCst)
    }

    /// True once the database answers a trivial query.
    pub async fn healthy(&self) -> bool {
        !self.health.is_down() && sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Stops the writer and closes every connection.
    pub async fn close(&self) {
        let _ = self.closing.send(true);
        self.batcher.close().await;
        self.writer.close().await;
        self.read_permits.close();
        self.pool.close().await;
    }
}

/// How often a process looks for credentials changes made by other processes: often when no
/// notification would tell it (SQLite, or PostgreSQL while the LISTEN connection is down), as a
/// fallback when one would.
const EPOCH_POLL: std::time::Duration = std::time::Duration::from_millis(200);
const EPOCH_POLL_LISTENING: std::time::Duration = std::time::Duration::from_secs(2);

/// Follows the database's credentials epoch (bumped by any process that takes access away) and
/// bumps this process's when it moves, until the pool closes.
async fn follow_credentials_epoch(
    pool: AnyPool,
    local: Arc<AtomicU64>,
    health: Arc<health::Health>,
) {
    let mut seen: Option<i64> = None;
    while !pool.is_closed() {
        let poll = if health.listening.load(Ordering::Acquire) {
            EPOCH_POLL_LISTENING
        } else {
            EPOCH_POLL
        };
        if health.is_down() {
            tokio::time::sleep(poll).await;
            continue;
        }
        if let Ok(mut conn) = pool.acquire().await {
            if let Ok(e) = credentials::epoch(&mut conn).await {
                if seen.is_some_and(|s| s != e) {
                    local.fetch_add(1, Ordering::SeqCst);
                }
                seen = Some(e);
            }
        }
        tokio::time::sleep(poll).await;
    }
}
