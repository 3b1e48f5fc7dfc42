//! Rate limits as Zendesk enforces them, by GCRA: an account budget per minute on every
//! authenticated API request, 5 create_or_update/PUT a minute per user profile, and a throttle on
//! failed logins per email; and deskd's own: a budget per client address for unauthenticated and
//! failed-auth requests, which never spend the account's. Buckets live in memory on SQLite (one process) and in the database on PostgreSQL, so
//! replicas sharing it share their limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue};
use deskd_store::{Backend, Store, StoreError, rate_limits};

/// `limit` requests per `period_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub period_secs: u32,
}

impl Rate {
    pub const fn per_minute(limit: u32) -> Rate {
        Rate {
            limit,
            period_secs: 60,
        }
    }

    /// The window the bucket spans: `limit` whole intervals (59.5 s for 700 a minute, whose
    /// interval, 85.7 ms, is counted as 85), so that a full bucket holds exactly `limit`.
    fn period_ms(self) -> i64 {
        self.interval_ms() * i64::from(self.limit.max(1))
    }

    fn interval_ms(self) -> i64 {
        (i64::from(self.period_secs) * 1000 / i64::from(self.limit.max(1))).max(1)
    }
}

/// The outcome of taking one request from a bucket.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds to wait before the next request is allowed (when refused), at least 1.
    pub retry_after_secs: u64,
}

fn decide(rate: Rate, allowed: bool, tat: i64, now: i64) -> Decision {
    let (period, interval) = (rate.period_ms(), rate.interval_ms());
    let ahead = (tat - now).max(0);
    let remaining = ((period - ahead) / interval).clamp(0, i64::from(rate.limit)) as u32;
    // Refused: the next request fits once the arrival time of one more is within the period.
    let wait = (ahead + interval - period).max(0);
    Decision {
        allowed,
        limit: rate.limit,
        remaining,
        reset_secs: ((ahead + 999) / 1000) as u64,
        retry_after_secs: (((wait + 999) / 1000) as u64).max(1),
    }
}

/// On test mode's clock when a test moved it, so "after the minute resets" runs at once.
fn now_ms() -> i64 {
    deskd_model::time::now_ms()
}

/// The buckets, with the configured rates.
#[derive(Clone)]
pub struct Limiter {
    pub account: Option<Rate>,
    pub profile: Option<Rate>,
    pub auth_failures: Option<Rate>,
    /// The incremental exports, for the whole account (Zendesk: 10 a minute).
    pub incremental: Option<Rate>,
    /// Unauthenticated and failed-auth requests, per client address.
    pub anonymous: Option<Rate>,
    memory: Arc<Mutex<HashMap<String, i64>>>,
}

impl Limiter {
    pub fn new(
        account: Option<Rate>,
        profile: Option<Rate>,
        auth_failures: Option<Rate>,
        anonymous: Option<Rate>,
    ) -> Limiter {
        Limiter {
            account,
            profile,
            auth_failures,
            incremental: None,
            anonymous,
            memory: Arc::default(),
        }
    }

    /// The same limiter with the incremental exports' rate.
    pub fn with_incremental(mut self, rate: Option<Rate>) -> Limiter {
        self.incremental = rate;
        self
    }

    pub fn off() -> Limiter {
        Limiter::new(None, None, None, None)
    }

    /// Empties this process's buckets (test mode's reset; the database's are emptied with it).
    pub fn clear(&self) {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Takes one request for `key` at `rate`.
    pub async fn take(&self, store: &Store, key: &str, rate: Rate) -> Result<Decision, StoreError> {
        let now = now_ms();
        let (allowed, tat) = match store.backend() {
            Backend::Postgres => {
                let key = key.to_owned();
                let mut conn = store.priority_reader().await?;
                rate_limits::take(&mut conn, &key, now, rate.interval_ms(), rate.period_ms())
                    .await?
            }
            Backend::Sqlite => {
                let mut map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                if map.len() > 100_000 {
                    map.retain(|_, tat| *tat > now);
                }
                let tat = map.get(key).copied().unwrap_or(now).max(now);
                let next = tat + rate.interval_ms();
                if next - now <= rate.period_ms() {
                    map.insert(key.to_owned(), next);
                    (true, next)
                } else {
                    (false, tat)
                }
            }
        };
        Ok(decide(rate, allowed, tat, now))
    }

    /// Gives back one request taken from `key` at `rate` (an attempt counted up front that turned
    /// out not to count: a login that succeeded, or one that was never evaluated).
    pub async fn refund(&self, store: &Store, key: &str, rate: Rate) -> Result<(), StoreError> {
        let now = now_ms();
        match store.backend() {
            Backend::Postgres => {
                let mut conn = store.priority_reader().await?;
                rate_limits::refund(&mut conn, key, now, rate.interval_ms()).await
            }
            Backend::Sqlite => {
                let mut map = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(tat) = map.get_mut(key) {
                    *tat = (*tat - rate.interval_ms()).max(now);
                }
                Ok(())
            }
        }
    }

    /// Whether the next request for `key` would be refused, without taking one.
    pub async fn would_refuse(
        &self,
        store: &Store,
        key: &str,
        rate: Rate,
    ) -> Result<Option<Decision>, StoreError> {
        let now = now_ms();
        let tat = match store.backend() {
            Backend::Postgres => {
                let mut conn = store.priority_reader().await?;
                rate_limits::peek(&mut conn, key).await?
            }
            Backend::Sqlite => self
                .memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .copied(),
        };
        Ok(tat
            .filter(|tat| tat.max(&now) + rate.interval_ms() - now > rate.period_ms())
            .map(|tat| decide(rate, false, tat, now)))
    }
}

/// On PostgreSQL, deletes drained buckets every ten minutes (per-address and per-profile keys
/// would otherwise accumulate); on SQLite the in-memory map prunes itself.
pub fn spawn_purge(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if store.backend() != Backend::Postgres {
            return;
        }
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            let purged = match store.priority_reader().await {
                Ok(mut conn) => rate_limits::purge(&mut conn, now_ms()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = purged {
                tracing::warn!(error = %e, "rate limit purge failed");
            }
        }
    })
}

/// The account budget's headers, on every authenticated API response.
pub fn account_headers(h: &mut HeaderMap, d: &Decision) {
    h.insert("x-rate-limit", HeaderValue::from(d.limit));
    h.insert("x-rate-limit-remaining", HeaderValue::from(d.remaining));
    h.insert("ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(d.reset_secs.max(1)));
}

/// `Zendesk-RateLimit-create-update-user: total=5; remaining=4; resets=60`.
pub fn profile_header(h: &mut HeaderMap, d: &Decision) {
    if let Ok(v) = HeaderValue::from_str(&format!(
        "total={}; remaining={}; resets={}",
        d.limit,
        d.remaining,
        d.reset_secs.max(1)
    )) {
        h.insert("zendesk-ratelimit-create-update-user", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_arithmetic() {
        let rate = Rate::per_minute(5);
        // A fresh bucket after one request: 4 left, full again in 12 s.
        let d = decide(rate, true, 12_000, 0);
        assert_eq!((d.remaining, d.reset_secs), (4, 12));
        // Five taken at once: none left; the sixth waits 12 s.
        let d = decide(rate, false, 60_000, 0);
        assert_eq!((d.remaining, d.retry_after_secs), (0, 12));
    }
}
