//! Test mode's clock over HTTP. In its own test binary, because the clock is process-wide: the
//! API suite's servers never see it move. Scenarios here take one lock, so they never overlap.

#[allow(dead_code, unused_macros)]
#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use deskd_server::Config;
use reqwest::StatusCode;
use serde_json::json;

use helpers::{Backend, TestApp};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Puts the clock back to the real time when a scenario ends, passed or failed.
struct RealTimeAfter;

impl Drop for RealTimeAfter {
    fn drop(&mut self) {
        deskd_model::time::test_clock::reset();
    }
}

fn config(test_mode: bool) -> Config {
    Config {
        rate_limits: true,
        account_rate_limit: None,
        profile_rate_limit: Some(5),
        auth_failure_limit: Some(3),
        job_lease: Duration::from_secs(2),
        test_mode,
        ..Config::default()
    }
}

async fn clock_moves_what_follows_time(backend: Backend) {
    let _one = ONE_AT_A_TIME.lock().await;
    let _real = RealTimeAfter;
    let app = TestApp::spawn_with(backend, config(true)).await;
    let r = app.get("/__deskd/clock").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["clock"]["frozen"], false);
    assert!(r.body["clock"]["offset_ms"].as_i64().unwrap().abs() < 1000);

    let r = app
        .post(
            "/__deskd/clock",
            json!({"set": "2030-01-01T00:00:00Z", "freeze": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["clock"]["now"], "2030-01-01T00:00:00.000Z");
    assert_eq!(r.body["clock"]["frozen"], true);

    // Timestamps.
    let r = app
        .upsert(json!({"name": "Timely", "email": "timely@example.org"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["user"]["created_at"], "2030-01-01T00:00:00Z");
    let id = r.body["user"]["id"].as_i64().unwrap();
    let r = app.post("/__deskd/clock", json!({"advance": "36h"})).await;
    assert_eq!(r.body["clock"]["now"], "2030-01-02T12:00:00.000Z");
    let r = app
        .put(
            &format!("/api/v2/users/{id}"),
            json!({"user": {"notes": "later"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["updated_at"], "2030-01-02T12:00:00Z");

    // Rate-limit windows: five a minute per profile, then 429 until the minute has passed.
    for i in 0..4 {
        let r = app
            .upsert(json!({"email": "timely@example.org", "notes": format!("n{i}")}))
            .await;
        assert!(r.status.is_success(), "{i}: {}", r.text);
    }
    let r = app
        .upsert(json!({"email": "timely@example.org", "notes": "one too many"}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    app.post("/__deskd/clock", json!({"advance": 61})).await;
    let r = app
        .upsert(json!({"email": "timely@example.org", "notes": "a minute on"}))
        .await;
    assert!(r.status.is_success(), "the minute has passed: {}", r.text);

    // Job retention: a finished job is gone 24 hours on.
    let r = app
        .post(
            "/api/v2/users/create_many",
            json!({"users": [{"name": "Bulk", "email": "bulk@example.org"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let job = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    let mut done = false;
    for _ in 0..400 {
        let r = app.get(&format!("/api/v2/job_statuses/{job}")).await;
        if r.body["job_status"]["status"] == "completed" {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done, "the job completes on a frozen clock");
    app.post("/__deskd/clock", json!({"advance": "23h"})).await;
    assert_eq!(
        app.get(&format!("/api/v2/job_statuses/{job}")).await.status,
        StatusCode::OK
    );
    app.post("/__deskd/clock", json!({"advance": "61m"})).await;
    assert_eq!(
        app.get(&format!("/api/v2/job_statuses/{job}")).await.status,
        StatusCode::NOT_FOUND
    );

    // Failed-login lockouts cool down with the clock.
    let wrong = helpers::Auth::Password("timely@example.org".into(), "wrong".into());
    for _ in 0..3 {
        assert_eq!(
            app.get_as(&wrong, "/api/v2/users/me").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.get_as(&wrong, "/api/v2/users/me").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.post("/__deskd/clock", json!({"advance": "5m"})).await;
    assert_eq!(
        app.get_as(&wrong, "/api/v2/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Running again from where it stands; then back to the real time.
    let r = app.post("/__deskd/clock", json!({"freeze": false})).await;
    assert_eq!(r.body["clock"]["frozen"], false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app.get("/__deskd/clock").await;
    // 36 h + 61 s + 23 h + 61 min + 5 min after 2030-01-01, and a second on.
    let now = r.body["clock"]["now"].as_str().unwrap();
    assert!(
        now > "2030-01-03T12:07:02" && now < "2030-01-03T12:07:30",
        "{now}"
    );
    let r = app.post("/__deskd/clock", json!({"reset": true})).await;
    assert!(r.body["clock"]["offset_ms"].as_i64().unwrap().abs() < 1000);
    for bad in [
        json!({}),
        json!({"advance": "soon"}),
        json!({"set": "yesterday"}),
    ] {
        let r = app.post("/__deskd/clock", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_moves_what_follows_time_sqlite() {
    clock_moves_what_follows_time(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_moves_what_follows_time_postgres() {
    clock_moves_what_follows_time(Backend::Postgres).await;
}

/// With test mode off the clock cannot be reached, and the server keeps the real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_test_mode_the_clock_is_not_there() {
    let _one = ONE_AT_A_TIME.lock().await;
    let _real = RealTimeAfter;
    let app = TestApp::spawn_with(Backend::Sqlite, config(false)).await;
    for r in [
        app.get("/__deskd/clock").await,
        app.post("/__deskd/clock", json!({"set": "2030-01-01T00:00:00Z"}))
            .await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body["error"], "InvalidEndpoint");
    }
    let r = app
        .upsert(json!({"name": "Now", "email": "now@example.org"}))
        .await;
    let created =
        chrono::DateTime::parse_from_rfc3339(r.body["user"]["created_at"].as_str().unwrap())
            .unwrap()
            .timestamp();
    assert!((created - chrono::Utc::now().timestamp()).abs() <= 2);
}
