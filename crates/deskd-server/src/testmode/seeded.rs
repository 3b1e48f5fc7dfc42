//! `deskd serve --test-mode --test-seed N`: runs that send the same requests get the same
//! bytes back. Random values deskd hands out (job ids, API and bearer tokens, a generated admin
//! token) come from one generator seeded with N; the clock starts frozen at
//! [`START`] and moves one second before each API request, so timestamps follow the requests,
//! not the wall clock; the `Date` header is that clock's; timings in control responses read 0.
//! Ids of records come from the database's sequences, which start from the same values in a
//! fresh database (`--database memory`).

use std::sync::{Mutex, OnceLock};

use rand::{Rng, RngCore, SeedableRng};

/// Where a seeded clock starts: 2024-01-01T00:00:00Z.
pub const START_MS: i64 = 1_704_067_200_000;
/// How far a seeded clock moves before each API request.
pub const STEP_MS: i64 = 1_000;

static SEEDED: OnceLock<Mutex<rand::rngs::StdRng>> = OnceLock::new();

/// Seeds this process (once; a second call changes nothing) and sets its clock.
pub fn install(seed: u64) {
    use deskd_model::time::test_clock;
    if SEEDED
        .set(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
        .is_ok()
    {
        test_clock::enable();
        test_clock::freeze(true);
        test_clock::set(START_MS);
    }
}

/// Whether this process runs with a test seed.
pub fn active() -> bool {
    SEEDED.get().is_some()
}

/// `f` with the process's random source: the seeded one, else the thread's.
pub fn with_rng<T>(f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
    match SEEDED.get() {
        Some(m) => {
            let mut rng = m.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut *rng)
        }
        None => f(&mut rand::thread_rng()),
    }
}

/// A random u128 from [`with_rng`].
pub fn random_u128() -> u128 {
    with_rng(|r| {
        let mut b = [0u8; 16];
        r.fill_bytes(&mut b);
        u128::from_le_bytes(b)
    })
}

/// A random index below `n` from [`with_rng`].
pub fn below(n: usize) -> usize {
    with_rng(|r| r.gen_range(0..n.max(1)))
}

/// Milliseconds since `start`, or 0 when seeded (so control responses are stable too).
pub fn elapsed_ms(start: std::time::Instant) -> f64 {
    if active() {
        0.0
    } else {
        start.elapsed().as_secs_f64() * 1000.0
    }
}

/// Before an API request of a seeded run: the clock's step.
pub fn tick() {
    if active() {
        deskd_model::time::test_clock::advance(STEP_MS);
    }
}

/// The `Date` header of a seeded run: the test clock's time in RFC 9110's format.
pub fn date_header() -> Option<axum::http::HeaderValue> {
    if !active() {
        return None;
    }
    let now = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(deskd_model::time::now_ms())?;
    axum::http::HeaderValue::from_str(&now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
}
