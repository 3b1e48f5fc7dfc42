//! Test mode's clock moves only once enabled (which only a test-mode server does). One test, in
//! its own binary, since the clock is process-wide.

use deskd_model::time::{self, test_clock};

fn real_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[test]
fn the_clock_is_real_until_test_mode_enables_it() {
    // Not enabled: nothing moves it.
    assert!(!test_clock::enabled());
    assert!(!test_clock::set(0));
    assert!(!test_clock::advance(86_400_000));
    assert!(!test_clock::freeze(true));
    assert!((time::now_ms() - real_ms()).abs() < 1_000);
    assert!((time::now() - real_ms() / 1000).abs() <= 1);

    test_clock::enable();
    let y2030 = 1_893_456_000_000;
    assert!(test_clock::freeze(true));
    assert!(test_clock::set(y2030));
    assert_eq!(time::now_ms(), y2030);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(time::now_ms(), y2030, "frozen");
    assert!(test_clock::advance(90_000));
    assert_eq!(time::now(), y2030 / 1000 + 90);
    assert_eq!(time::iso(time::now()), "2030-01-01T00:01:30Z");
    assert!(test_clock::freeze(false));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let running = time::now_ms();
    assert!(
        running > y2030 + 90_000 && running < y2030 + 95_000,
        "{running}"
    );
    let (_, offset, frozen) = test_clock::state();
    assert!(!frozen);
    assert!(offset > 0);
    test_clock::reset();
    assert!((time::now_ms() - real_ms()).abs() < 1_000);
}
