//! Write transactions.
//!
//! SQLite allows one writer at a time, so deskd gives it exactly one: a task owning one
//! connection takes units of work from a queue and commits whatever is waiting as one
//! transaction (group commit). Since units run one after another inside that transaction, each
//! sees everything written before it, and two upserts of one email can never both create.
//! If a unit fails with a database error the group is rolled back and its units re-run one by one,
//! so one bad unit cannot fail its neighbours.
//!
//! PostgreSQL takes writers in parallel: each unit runs in its own transaction on a pooled
//! connection and is re-run when it loses a race on a unique index; the re-run reads the
//! winner's row and becomes an update.

use std::any::Any as StdAny;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::credentials::EPOCH_BUMPED;
use crate::{Backend, StoreError};

/// Runs one unit of work, noting whether it took access away (see `credentials::bump_epoch`).
async fn tracked(work: &mut Work, conn: &mut AnyConnection) -> (Result<Output, StoreError>, bool) {
    EPOCH_BUMPED
        .scope(Cell::new(false), async move {
            let out = work(conn).await;
            (out, EPOCH_BUMPED.with(Cell::get))
        })
        .await
}

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

type Output = Box<dyn StdAny + Send>;
type Work =
    Box<dyn for<'c> FnMut(&'c mut AnyConnection) -> BoxFut<'c, Result<Output, StoreError>> + Send>;

struct Unit {
    work: Work,
    reply: oneshot::Sender<Result<Output, StoreError>>,
}

/// Most units committed together; bounds the latency a unit can add to its group.
const MAX_GROUP: usize = 256;
/// Attempts of a PostgreSQL unit that keeps losing races.
const MAX_ATTEMPTS: u32 = 8;

#[derive(Clone)]
pub(crate) struct Writer {
    backend: Backend,
    pool: AnyPool,
    queue: Arc<Mutex<Option<mpsc::Sender<Unit>>>>,
    done: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// This process's credentials epoch, bumped after a commit that took access away.
    epoch: Arc<AtomicU64>,
    stats: Arc<crate::stats::Stats>,
}

impl Writer {
    pub(crate) fn new(
        backend: Backend,
        pool: AnyPool,
        conn: Option<AnyConnection>,
        epoch: Arc<AtomicU64>,
        stats: Arc<crate::stats::Stats>,
    ) -> Writer {
        let (queue, handle) = match conn {
            Some(conn) => {
                let (tx, rx) = mpsc::channel(4096);
                (
                    Some(tx),
                    Some(tokio::spawn(group_commit(
                        conn,
                        rx,
                        epoch.clone(),
                        stats.clone(),
                    ))),
                )
            }
            None => (None, None),
        };
        Writer {
            backend,
            pool,
            queue: Arc::new(Mutex::new(queue)),
            done: Arc::new(Mutex::new(handle)),
            epoch,
            stats,
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) async fn run<T, F>(&self, mut work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut AnyConnection) -> BoxFut<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let out = match self.backend {
            Backend::Postgres => {
                let mut erased: Work = Box::new(move |c| {
                    let fut = work(c);
                    Box::pin(async move { fut.await.map(|v| Box::new(v) as Output) })
                });
                self.run_pooled(&mut erased).await?
            }
            Backend::Sqlite => {
                let sender = self.queue.lock().await.clone().ok_or(StoreError::Closed)?;
                let (reply, answer) = oneshot::channel();
                let erased: Work = Box::new(move |c| {
                    let fut = work(c);
                    Box::pin(async move { fut.await.map(|v| Box::new(v) as Output) })
                });
                sender
                    .send(Unit {
                        work: erased,
                        reply,
                    })
                    .await
                    .map_err(|_| StoreError::Closed)?;
                answer.await.map_err(|_| StoreError::Closed)??
            }
        };
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Corrupt("writer returned another type".into()))
    }

    async fn run_pooled(&self, work: &mut Work) -> Result<Output, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = {
                let _waiting = crate::stats::Waiting::new(&self.stats.waiting);
                self.pool.acquire().await?
            };
            let mut tx = conn.begin().await?;
            let (out, bumped) = tracked(work, &mut tx).await;
            match out {
                Ok(v) => match tx.commit().await {
                    Ok(()) => {
                        if bumped {
                            self.epoch.fetch_add(1, Ordering::SeqCst);
                        }
                        return Ok(v);
                    }
                    Err(e) => {
                        let e = StoreError::from(e);
                        if !e.is_retryable() || attempt >= MAX_ATTEMPTS {
                            return Err(e);
                        }
                    }
                },
                Err(e) => {
                    let _ = tx.rollback().await;
                    if !e.is_retryable() {
                        return Err(e);
                    }
                    if attempt >= MAX_ATTEMPTS {
                        return Err(StoreError::Contention(attempt));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
        }
    }

    pub(crate) async fn close(&self) {
        self.queue.lock().await.take();
        if let Some(handle) = self.done.lock().await.take() {
            let _ = handle.await;
        }
    }
}

async fn group_commit(
    mut conn: AnyConnection,
    mut rx: mpsc::Receiver<Unit>,
    epoch: Arc<AtomicU64>,
    stats: Arc<crate::stats::Stats>,
) {
    let mut group: Vec<Unit> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(u) => group.push(u),
                Err(_) => break,
            }
        }
        stats.write_groups.observe(group.len());
        match run_group(&mut conn, &mut group).await {
            Ok((outputs, bumped)) => {
                if bumped {
                    epoch.fetch_add(1, Ordering::SeqCst);
                }
                for (unit, out) in group.drain(..).zip(outputs) {
                    let _ = unit.reply.send(Ok(out));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, size = group.len(), "group rolled back; re-running its units alone");
                for mut unit in group.drain(..) {
                    let (result, bumped) = run_alone(&mut conn, &mut unit.work).await;
                    if bumped && result.is_ok() {
                        epoch.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = unit.reply.send(result);
                }
            }
        }
    }
    let _ = conn.close().await;
}

/// Runs every unit in one transaction; any error rolls the whole group back.
/// Returns the outputs and whether any unit took access away.
async fn run_group(
    conn: &mut AnyConnection,
    group: &mut [Unit],
) -> Result<(Vec<Output>, bool), StoreError> {
    conn.execute("BEGIN IMMEDIATE").await?;
    let mut outputs = Vec::with_capacity(group.len());
    let mut any_bumped = false;
    for unit in group.iter_mut() {
        let (out, bumped) = tracked(&mut unit.work, conn).await;
        any_bumped |= bumped;
        match out {
            Ok(out) => outputs.push(out),
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    if let Err(e) = conn.execute("COMMIT").await {
        let _ = conn.execute("ROLLBACK").await;
        return Err(e.into());
    }
    Ok((outputs, any_bumped))
}

async fn run_alone(
    conn: &mut AnyConnection,
    work: &mut Work,
) -> (Result<Output, StoreError>, bool) {
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        return (Err(e.into()), false);
    }
    let (out, bumped) = tracked(work, conn).await;
    let out = match out {
        Ok(out) => match conn.execute("COMMIT").await {
            Ok(_) => Ok(out),
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(e)
        }
    };
    (out, bumped)
}
