//! Attack: test mode's controls with hostile values.
//!
//! `POST /__deskd/clock` took any time: a clock set past year 292,277,026 (or advanced by a huge
//! duration) overflowed `now + offset`, so every later request panicked (its connection dropped
//! without an answer) until the clock was reset; times past 9999 showed as 1970 and a time of
//! `i64::MIN` ms unfroze a frozen clock (it is the "running" mark). On main (52967c0) the first
//! hostile time below was answered 200, every run (and the next request's connection dropped;
//! the job workers died the same way, leaving every later job `queued`).
//! Now such a time is a 400 and the clock does not move.
//!
//! The clock is process-wide: every request here must be refused, and the guard puts the real
//! time back whatever happens, so the rest of the suite never sees it move. The edges (1970 and
//! 9999) are accepted: see `deskd_model::time`'s unit test, which moves no clock.

use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;
use crate::testmode::test_config;

on_both_backends!(config = test_config; the_test_clock_refuses_times_it_cannot_show);

struct RealTimeAfter;

impl Drop for RealTimeAfter {
    fn drop(&mut self) {
        deskd_model::time::test_clock::reset();
    }
}

async fn the_test_clock_refuses_times_it_cannot_show(app: TestApp) {
    let _real = RealTimeAfter;
    let hostile: [Value; 8] = [
        json!({"set": 9_223_372_036_854_775u64}),
        json!({"set": 1e30}),
        json!({"set": -9_223_372_036_854_775_808i64}),
        json!({"set": -1}),
        json!({"set": "9999-12-31T23:59:59Z", "advance": 1}),
        json!({"advance": "100000000000d"}),
        json!({"advance": -1e300}),
        json!({"freeze": true, "set": 253_402_300_800u64}),
    ];
    for body in hostile {
        let r = app.post("/__deskd/clock", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.body["error"], "InvalidClock", "{body}: {}", r.text);
        // Nothing moved, and the API still answers.
        let clock = app.get("/__deskd/clock").await.body["clock"].clone();
        assert_eq!(clock["frozen"], false, "{body}: {clock}");
        assert!(
            clock["offset_ms"]
                .as_i64()
                .is_some_and(|o| o.abs() < 10_000),
            "{body}: {clock}"
        );
        let me = app.get_as(&Auth::admin(), "/api/v2/users/me").await;
        assert_eq!(me.status, 200, "{body}: {}", me.text);
    }
    // The job workers read the clock too: on main each one that did so panicked and was gone
    // for good, so jobs stayed `queued` even after the clock was put back.
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({"users": [{"name": "After", "email": "after-clock@example.org"}]}),
        )
        .await;
    let done = crate::attack_support::job(&app, r).await;
    assert_eq!(done["status"], "completed", "{done}");
}
