//! Whether the database is reachable, as this process last saw it.
//!
//! On PostgreSQL a supervisor (see `listen`) watches the database through its LISTEN connection;
//! any unit of work that fails because the database went away reports it too. While the database
//! is down, reads and writes fail at once with [`StoreError::Unavailable`] instead of each waiting
//! for the pool's connect timeout, and the supervisor marks it up again as soon as it can connect:
//! no restart needed. SQLite never goes down this way.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::StoreError;

#[derive(Default)]
pub(crate) struct Health {
    down: AtomicBool,
    reason: Mutex<String>,
    /// Wakes the supervisor when a unit of work saw the database go away.
    pub(crate) reported: Notify,
    /// Whether notifications from other processes reach this one (the LISTEN connection is up).
    pub(crate) listening: AtomicBool,
}

impl Health {
    /// `Unavailable` while the database is down.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(self.reason()));
        }
        Ok(())
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    pub(crate) fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Marks the database down with `reason` (logged once per outage).
    pub(crate) fn fail(&self, reason: &str) {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = reason.to_owned();
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                reason,
                "database unavailable; answering 503 until it is back"
            );
        }
    }

    /// Asks the probe to check the database now (a unit of work saw it go away).
    pub(crate) fn report(&self) {
        self.reported.notify_one();
    }

    /// Marks the database up.
    pub(crate) fn recover(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("database reachable again");
        }
    }
}
