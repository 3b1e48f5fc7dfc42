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
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{Backend, StoreError};

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
}

impl Writer {
    pub(crate) fn new(backend: Backend, pool: AnyPool, conn: Option<AnyConnection>) -> Writer {
        let (queue, handle) = match conn {
            Some(conn) => {
                let (tx, rx) = mpsc::channel(4096);
                (Some(tx), Some(tokio::spawn(group_commit(conn, rx))))
            }
            None => (None, None),
        };
        Writer {
            backend,
            pool,
            queue: Arc::new(Mutex::new(queue)),
            done: Arc::new(Mutex::new(handle)),
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
            let mut conn = self.pool.acquire().await?;
            let mut tx = conn.begin().await?;
            match work(&mut tx).await {
                Ok(v) => match tx.commit().await {
                    Ok(()) => return Ok(v),
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

async fn group_commit(mut conn: AnyConnection, mut rx: mpsc::Receiver<Unit>) {
    let mut group: Vec<Unit> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(u) => group.push(u),
                Err(_) => break,
            }
        }
        match run_group(&mut conn, &mut group).await {
            Ok(outputs) => {
                for (unit, out) in group.drain(..).zip(outputs) {
                    let _ = unit.reply.send(Ok(out));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, size = group.len(), "group rolled back; re-running its units alone");
                for mut unit in group.drain(..) {
                    let result = run_alone(&mut conn, &mut unit.work).await;
                    let _ = unit.reply.send(result);
                }
            }
        }
    }
    let _ = conn.close().await;
}

/// Runs every unit in one transaction; any error rolls the whole group back.
async fn run_group(
    conn: &mut AnyConnection,
    group: &mut [Unit],
) -> Result<Vec<Output>, StoreError> {
    conn.execute("BEGIN IMMEDIATE").await?;
    let mut outputs = Vec::with_capacity(group.len());
    for unit in group.iter_mut() {
        match (unit.work)(conn).await {
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
    Ok(outputs)
}

async fn run_alone(conn: &mut AnyConnection, work: &mut Work) -> Result<Output, StoreError> {
    conn.execute("BEGIN IMMEDIATE").await?;
    match work(conn).await {
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
    }
}
