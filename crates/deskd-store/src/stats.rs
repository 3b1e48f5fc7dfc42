//! Counters the store keeps for the server's metrics: batch sizes and pool waiters.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds of the batch-size buckets (the last one is `+Inf`).
pub const BATCH_BUCKETS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// A histogram of batch sizes, lock-free.
#[derive(Default)]
pub struct BatchSizes {
    /// Non-cumulative counts per bucket of `BATCH_BUCKETS`, then `+Inf`.
    buckets: [AtomicU64; BATCH_BUCKETS.len() + 1],
    sum: AtomicU64,
    count: AtomicU64,
}

/// A histogram's state: cumulative counts per upper bound (`+Inf` last), the sum and the count.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum: u64,
    pub count: u64,
}

impl BatchSizes {
    pub fn observe(&self, size: usize) {
        let size = size as u64;
        let slot = BATCH_BUCKETS
            .iter()
            .position(|b| size <= *b)
            .unwrap_or(BATCH_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(size, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(BATCH_BUCKETS.len() + 1);
        for (i, b) in self.buckets.iter().enumerate() {
            running += b.load(Ordering::Relaxed);
            let bound = BATCH_BUCKETS.get(i).map_or(f64::INFINITY, |b| *b as f64);
            buckets.push((bound, running));
        }
        HistogramSnapshot {
            buckets,
            sum: self.sum.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

/// What the store counts.
#[derive(Default)]
pub struct Stats {
    /// create_or_update requests decided and written together.
    pub upsert_batches: BatchSizes,
    /// Units of work committed in one SQLite transaction (group commit).
    pub write_groups: BatchSizes,
    /// Tasks waiting for a pooled connection now.
    pub(crate) waiting: AtomicI64,
}

/// Counts a task as waiting for a connection while it lives.
pub(crate) struct Waiting<'a>(&'a AtomicI64);

impl<'a> Waiting<'a> {
    pub(crate) fn new(n: &'a AtomicI64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The pool as the metrics show it.
#[derive(Clone, Copy, Debug)]
pub struct PoolStats {
    pub max: u32,
    pub size: u32,
    pub idle: u32,
    pub waiting: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let h = BatchSizes::default();
        for n in [1, 1, 3, 200, 1000] {
            h.observe(n);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 5);
        assert_eq!(s.sum, 1205);
        assert_eq!(s.buckets[0], (1.0, 2));
        assert_eq!(s.buckets[2], (4.0, 3));
        assert_eq!(s.buckets[8], (256.0, 4));
        assert_eq!(s.buckets[9], (f64::INFINITY, 5));
    }
}
