//! Test mode's job pacing: while jobs are held, `POST /__deskd/jobs/step` lets one worker run
//! a given number of items, one item per committed step, so a client polling a job sees
//! `queued`, then `working` with each progress value, then `completed`; and
//! `POST /__deskd/jobs/fail` makes item K of a job fail with a chosen error. The state is this
//! process's (the stepping worker is its first).

use std::sync::Mutex;

use deskd_model::job::ItemOutcome;
use serde_json::{Value, json};

/// A planned failure: item `index` of job `job_id` (of the next job to reach that index, until
/// one does; then of that job, so a retried item fails again).
#[derive(Clone, Debug)]
struct Failure {
    job_id: Option<String>,
    index: usize,
    error: String,
    details: String,
    fired: u64,
}

#[derive(Default)]
struct State {
    /// Items the stepping worker may still run.
    permits: u64,
    /// Items run under permits, ever (the step endpoint waits for this to reach its target).
    ran: u64,
    /// Permits taken whose items have not finished yet.
    in_flight: u64,
    /// Bumped when the stepping worker, holding permits, found no job to run.
    idle: u64,
    failures: Vec<Failure>,
}

/// What `step` saw happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stepped {
    pub ran: u64,
    /// Permits given back because no job was left to run.
    pub unused: u64,
}

#[derive(Default)]
pub struct Pacing {
    state: Mutex<State>,
    changed: tokio::sync::Notify,
}

impl Pacing {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn clear(&self) {
        let mut s = self.lock();
        s.permits = 0;
        s.failures.clear();
        drop(s);
        self.changed.notify_waiters();
    }

    pub(super) fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Whether the stepping worker has items to run.
    pub fn has_permits(&self) -> bool {
        self.lock().permits > 0
    }

    /// Takes one item's permit, if there is one.
    pub fn take_permit(&self) -> bool {
        let mut s = self.lock();
        if s.permits == 0 {
            return false;
        }
        s.permits -= 1;
        s.in_flight += 1;
        true
    }

    /// An item run under a permit has finished (committed, or failed and left to a retry).
    pub fn item_done(&self) {
        let mut s = self.lock();
        s.ran += 1;
        s.in_flight = s.in_flight.saturating_sub(1);
        drop(s);
        self.changed.notify_waiters();
    }

    /// The stepping worker holds permits but found no job.
    pub fn idle(&self) {
        self.lock().idle += 1;
        self.changed.notify_waiters();
    }

    /// Grants `items` permits and waits until they are used or no job is left to use them;
    /// `wake` tells the workers. Bounded by `patience` in case no worker is running.
    pub async fn step(
        &self,
        items: u64,
        wake: impl Fn(),
        patience: std::time::Duration,
    ) -> Stepped {
        let (start, target, idle_seen) = {
            let mut s = self.lock();
            s.permits += items;
            (s.ran, s.ran + s.permits, s.idle)
        };
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                // Done when the items ran, or when nothing is granted or running any more (a
                // reset took the permits back).
                if s.ran >= target || (s.permits == 0 && s.in_flight == 0) {
                    return Stepped {
                        ran: s.ran - start,
                        unused: 0,
                    };
                }
                if s.idle != idle_seen || tokio::time::Instant::now() >= deadline {
                    let unused = s.permits;
                    s.permits = 0;
                    return Stepped {
                        ran: s.ran - start,
                        unused,
                    };
                }
            }
            wake();
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Adds a planned failure.
    pub fn add_failure(
        &self,
        job_id: Option<String>,
        index: usize,
        error: String,
        details: String,
    ) {
        self.lock().failures.push(Failure {
            job_id,
            index,
            error,
            details,
            fired: 0,
        });
    }

    /// The outcome planned for item `index` of job `job_id`, if any.
    pub fn failure(&self, job_id: &str, index: usize) -> Option<ItemOutcome> {
        let mut s = self.lock();
        let f = s
            .failures
            .iter_mut()
            .filter(|f| f.index == index)
            .find(|f| f.job_id.as_deref().is_none_or(|j| j == job_id))?;
        f.job_id.get_or_insert_with(|| job_id.to_owned());
        f.fired += 1;
        Some(ItemOutcome::Injected {
            error: f.error.clone(),
            details: f.details.clone(),
        })
    }

    pub fn to_json(&self) -> Value {
        let s = self.lock();
        json!({
            "permits": s.permits,
            "failures": s.failures.iter().map(|f| json!({
                "job_id": f.job_id,
                "index": f.index,
                "error": f.error,
                "details": f.details,
                "fired": f.fired,
            })).collect::<Vec<_>>(),
        })
    }
}
