//! Rate limits as Zendesk enforces them, by GCRA: an account budget per minute on every API
//! request, 5 create_or_update/PUT a minute per user profile, and a throttle on failed logins per
//! email. Buckets live in memory on SQLite (one process) and in the database on PostgreSQL, so
//! replicas sharing it share their limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use deskd_store::{Backend, Store, StoreError, rate_limits};

use crate::AppState;
use crate::respond::too_many_requests;

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

    fn period_ms(self) -> i64 {
        i64::from(self.period_secs) * 1000
    }

    fn interval_ms(self) -> i64 {
        (self.period_ms() / i64::from(self.limit.max(1))).max(1)
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
    memory: Arc<Mutex<HashMap<String, i64>>>,
}

impl Limiter {
    pub fn new(
        account: Option<Rate>,
        profile: Option<Rate>,
        auth_failures: Option<Rate>,
    ) -> Limiter {
        Limiter {
            account,
            profile,
            auth_failures,
            memory: Arc::default(),
        }
    }

    pub fn off() -> Limiter {
        Limiter::new(None, None, None)
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
                let mut conn = store.reader().await?;
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
                let mut conn = store.reader().await?;
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

/// The account budget: every `/api/` request takes one; every response carries the headers.
pub async fn account_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(rate) = app
        .limiter
        .account
        .filter(|_| req.uri().path().starts_with("/api/"))
    else {
        return next.run(req).await;
    };
    let decision = match app.limiter.take(&app.store, "account", rate).await {
        Ok(d) => d,
        Err(e) => {
            // A limiter that cannot reach its store lets the request through rather than fail it.
            tracing::warn!(error = %e, "account rate limit unavailable");
            return next.run(req).await;
        }
    };
    let mut resp = if decision.allowed {
        next.run(req).await
    } else {
        too_many_requests(
            decision.retry_after_secs,
            "Number of allowed API requests per minute exceeded",
        )
    };
    account_headers(resp.headers_mut(), &decision);
    resp
}

fn account_headers(h: &mut HeaderMap, d: &Decision) {
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
