//! Timestamps as Zendesk writes them. Stored as Unix seconds; shown in UTC with second precision.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Seconds since the Unix epoch, now (on test mode's clock, when a test has moved it).
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Milliseconds since the Unix epoch, now (on test mode's clock, when a test has moved it).
pub fn now_ms() -> i64 {
    let real = Utc::now().timestamp_millis();
    if !test_clock::ENABLED.load(Ordering::Relaxed) {
        return real;
    }
    match test_clock::FROZEN_AT.load(Ordering::SeqCst) {
        // Saturating: the offset is kept within `RANGE_MS` of the epoch, but the real clock moves.
        test_clock::RUNNING => real.saturating_add(test_clock::OFFSET.load(Ordering::SeqCst)),
        frozen => frozen,
    }
}

/// Test mode's controllable clock: set, advanced or frozen through `/__deskd/clock`. It is
/// process-wide (every server of one process shares it) and moves only once [`enable`] has
/// been called, which only a server started in test mode does; until then [`now`] is the real
/// clock and nothing here can change it.
///
/// [`enable`]: test_clock::enable
pub mod test_clock {
    use super::*;

    pub(super) static ENABLED: AtomicBool = AtomicBool::new(false);
    /// Added to the real clock while running.
    pub(super) static OFFSET: AtomicI64 = AtomicI64::new(0);
    /// The frozen time in ms, or [`RUNNING`].
    pub(super) static FROZEN_AT: AtomicI64 = AtomicI64::new(RUNNING);
    pub(super) const RUNNING: i64 = i64::MIN;

    /// The times the clock may be moved to, in ms: from the Unix epoch to the last millisecond
    /// of year 9999, what a `*_at` field can show (and far from `i64` overflow and from the
    /// `RUNNING` mark).
    pub const RANGE_MS: std::ops::RangeInclusive<i64> = 0..=253_402_300_799_999;

    /// Where a clock showing `now_ms` stands after being set to `set` and then advanced by
    /// `advance` (either may be absent); `None` when that is outside [`RANGE_MS`], and the clock
    /// must not move.
    pub fn target(now_ms: i64, set: Option<i64>, advance: Option<i64>) -> Option<i64> {
        let at = set.unwrap_or(now_ms);
        let at = at.checked_add(advance.unwrap_or(0))?;
        (RANGE_MS.contains(&at) && set.is_none_or(|s| RANGE_MS.contains(&s))).then_some(at)
    }

    /// Lets this process's clock be moved (test mode only).
    pub fn enable() {
        ENABLED.store(true, Ordering::SeqCst);
    }

    pub fn enabled() -> bool {
        ENABLED.load(Ordering::SeqCst)
    }

    /// The clock's state: (now in ms, offset from the real clock in ms, frozen).
    pub fn state() -> (i64, i64, bool) {
        let now = now_ms();
        (
            now,
            now - Utc::now().timestamp_millis(),
            FROZEN_AT.load(Ordering::SeqCst) != RUNNING,
        )
    }

    /// Sets the time to `ms` (frozen there if frozen, else running on from it). False (and no
    /// change) unless enabled.
    pub fn set(ms: i64) -> bool {
        if !enabled() {
            return false;
        }
        if FROZEN_AT.load(Ordering::SeqCst) != RUNNING {
            FROZEN_AT.store(ms, Ordering::SeqCst);
        } else {
            OFFSET.store(ms - Utc::now().timestamp_millis(), Ordering::SeqCst);
        }
        true
    }

    /// Moves the time on by `ms` (or back, when negative).
    pub fn advance(ms: i64) -> bool {
        if !enabled() {
            return false;
        }
        let _ = FROZEN_AT.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| {
            (f != RUNNING).then(|| f.saturating_add(ms))
        });
        if FROZEN_AT.load(Ordering::SeqCst) == RUNNING {
            OFFSET.fetch_add(ms, Ordering::SeqCst);
        }
        true
    }

    /// Stops the clock at its current time (`true`) or lets it run on from there (`false`).
    pub fn freeze(on: bool) -> bool {
        if !enabled() {
            return false;
        }
        let now = now_ms();
        if on {
            if FROZEN_AT.load(Ordering::SeqCst) == RUNNING {
                FROZEN_AT.store(now, Ordering::SeqCst);
            }
        } else if FROZEN_AT.load(Ordering::SeqCst) != RUNNING {
            OFFSET.store(now - Utc::now().timestamp_millis(), Ordering::SeqCst);
            FROZEN_AT.store(RUNNING, Ordering::SeqCst);
        }
        true
    }

    /// Back to the real time, running.
    pub fn reset() {
        FROZEN_AT.store(RUNNING, Ordering::SeqCst);
        OFFSET.store(0, Ordering::SeqCst);
    }
}

/// `2023-09-18T23:28:11Z`, the format of every `*_at` field.
/// Written digit by digit: every user shown has several, and chrono's formatter is the
/// costliest part of showing one.
pub fn iso(ts: i64) -> String {
    use chrono::{Datelike, Timelike};
    let Some(t) = DateTime::<Utc>::from_timestamp(ts, 0) else {
        return "1970-01-01T00:00:00Z".to_owned();
    };
    let Ok(year) = u32::try_from(t.year()) else {
        return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    };
    if year > 9999 {
        return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    let mut out = String::with_capacity(20);
    for (n, after) in [
        (year / 100, None),
        (year % 100, Some('-')),
        (t.month(), Some('-')),
        (t.day(), Some('T')),
        (t.hour(), Some(':')),
        (t.minute(), Some(':')),
        (t.second(), Some('Z')),
    ] {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
        out.extend(after);
    }
    out
}

/// `2023-09-18 23:26:10 +0000`, the format of a completed job's message.
pub fn job_message(ts: i64) -> String {
    match DateTime::<Utc>::from_timestamp(ts, 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S +0000").to_string(),
        None => "1970-01-01 00:00:00 +0000".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_clock_stays_between_1970_and_9999() {
        use test_clock::target;
        assert_eq!(target(5_000, None, Some(1_000)), Some(6_000));
        assert_eq!(target(5_000, Some(0), None), Some(0));
        assert_eq!(target(5_000, Some(10), Some(-10)), Some(0));
        assert_eq!(target(5_000, None, Some(-5_001)), None);
        assert_eq!(
            target(5_000, Some(-1), Some(1)),
            None,
            "the set time itself is checked"
        );
        assert_eq!(target(5_000, Some(253_402_300_800_000), None), None);
        assert_eq!(target(5_000, None, Some(i64::MAX)), None);
        assert_eq!(target(5_000, Some(i64::MIN), None), None);
    }

    #[test]
    fn formats_like_zendesk() {
        assert_eq!(iso(1_695_079_691), "2023-09-18T23:28:11Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59Z");
        assert_eq!(iso(-62_135_596_800), "0001-01-01T00:00:00Z");
        assert_eq!(iso(253_402_300_800), "+10000-01-01T00:00:00Z");
        for ts in [1, 59, 86_399, 951_782_400, 4_102_444_799, 1_709_251_199] {
            let t = DateTime::<Utc>::from_timestamp(ts, 0).unwrap();
            assert_eq!(iso(ts), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        assert_eq!(job_message(1_695_079_570), "2023-09-18 23:26:10 +0000");
    }
}
