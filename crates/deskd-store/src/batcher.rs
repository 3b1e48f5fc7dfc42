//! The create_or_update requests that arrive while the previous batch is being written are
//! decided and written together as one batch (see `upsert`): one set of lookups, a few multi-row
//! inserts and one commit for all of them instead of a dozen statements and a commit each.
//! On PostgreSQL a batch that loses a uniqueness race to another replica is re-run whole, and a
//! batch that fails is re-run item by item.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::StoreError;
use crate::upsert::{Answer, Batch, UpsertItem, create_or_update_batch};
use crate::writer::Writer;

type Reply = oneshot::Sender<Result<Answer, StoreError>>;

/// Most requests decided in one batch.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub(crate) struct Batcher {
    queue: Arc<Mutex<Option<mpsc::Sender<(UpsertItem, Reply)>>>>,
}

impl Batcher {
    pub(crate) fn new(
        writer: Writer,
        stats: Arc<crate::stats::Stats>,
        in_flight: usize,
    ) -> Batcher {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(writer, rx, stats, in_flight));
        Batcher {
            queue: Arc::new(Mutex::new(Some(tx))),
        }
    }

    pub(crate) async fn submit(&self, item: UpsertItem) -> Result<Answer, StoreError> {
        let sender = self.queue.lock().await.clone().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send((item, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn close(&self) {
        self.queue.lock().await.take();
    }
}

async fn run(
    writer: Writer,
    mut rx: mpsc::Receiver<(UpsertItem, Reply)>,
    stats: Arc<crate::stats::Stats>,
    in_flight: usize,
) {
    // SQLite has one writer: batches one after another. PostgreSQL writes in parallel: while one
    // batch waits for its commit, the next is decided (two batches racing on one email settle as
    // two replicas do: the loser's re-run finds the winner's row).
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        // Requests arriving while every batch slot was busy join this batch.
        let mut waiting: Vec<(UpsertItem, Reply)> = Vec::with_capacity(MAX_BATCH);
        waiting.push(first);
        while waiting.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => waiting.push(next),
                Err(_) => break,
            }
        }
        stats.upsert_batches.observe(waiting.len());
        let writer = writer.clone();
        tokio::spawn(async move {
            settle(&writer, waiting).await;
            drop(permit);
        });
    }
    // Closed: wait for the batches still being written.
    let _ = permits.acquire_many(in_flight.max(1) as u32).await;
}

/// Writes one batch and answers its requests.
async fn settle(writer: &Writer, mut waiting: Vec<(UpsertItem, Reply)>) {
    let items: Arc<Vec<UpsertItem>> = Arc::new(waiting.iter().map(|(i, _)| i.clone()).collect());
    match run_batch(writer, items).await {
        Ok(batch) => {
            for ((_, reply), outcome) in waiting.drain(..).zip(batch.outcomes) {
                let _ = reply.send(Ok(Answer {
                    outcome,
                    user_fields: batch.user_fields.clone(),
                }));
            }
        }
        // The database is away: every item would fail the same way, after as long a wait.
        Err(e) if e.is_unavailable() => {
            let why = e.to_string();
            for (_, reply) in waiting.drain(..) {
                let _ = reply.send(Err(StoreError::Unavailable(why.clone())));
            }
        }
        // A batch that failed as a whole is retried item by item, so one cannot sink the rest.
        Err(_) => {
            for (item, reply) in waiting.drain(..) {
                let result = run_batch(writer, Arc::new(vec![item]))
                    .await
                    .and_then(|mut b| {
                        let outcome = b
                            .outcomes
                            .pop()
                            .ok_or(StoreError::Corrupt("no outcome".into()))?;
                        Ok(Answer {
                            outcome,
                            user_fields: b.user_fields,
                        })
                    });
                let _ = reply.send(result);
            }
        }
    }
}

async fn run_batch(writer: &Writer, items: Arc<Vec<UpsertItem>>) -> Result<Batch, StoreError> {
    let backend = writer.backend();
    let now = deskd_model::time::now();
    writer
        .run(move |conn| {
            let items = items.clone();
            Box::pin(async move { create_or_update_batch(conn, backend, &items, now).await })
        })
        .await
}
