//! Rate limits: the per-profile limit, the account budget, failed-login throttling, and limits
//! shared by two servers on one PostgreSQL database.

use std::time::Duration;

use deskd_server::Config;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, Auth, Backend, TestApp};

fn limited(account: u32) -> Config {
    Config {
        rate_limits: true,
        account_rate_limit: Some(account),
        profile_rate_limit: Some(5),
        auth_failure_limit: Some(3),
        ..Config::default()
    }
}

async fn profile_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, limited(1000)).await;
    let body = json!({"name": "Limited", "email": "limited@example.org"});
    for i in 0..5 {
        let r = app.upsert(body.clone()).await;
        assert!(r.status.is_success(), "{i}: {}", r.text);
        assert_eq!(
            r.header("zendesk-ratelimit-create-update-user")
                .unwrap()
                .split(';')
                .nth(1)
                .unwrap()
                .trim(),
            format!("remaining={}", 4 - i)
        );
        assert!(r.header("retry-after").is_none(), "never on a success");
    }
    let r = app.upsert(body.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(
        r.text
            .starts_with("You have exceeded the rate limit for updating a single unique user."),
        "{}",
        r.text
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "{retry}");
    // PUT /users/{id} counts against the same profile.
    let id = app
        .get("/api/v2/users/search?query=email%3Alimited%40example.org")
        .await
        .body["users"][0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.put(
            &format!("/api/v2/users/{id}"),
            json!({"user": {"notes": "x"}})
        )
        .await
        .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another profile is unaffected.
    assert_eq!(
        app.upsert(json!({"name": "Other", "email": "other@example.org"}))
            .await
            .status,
        StatusCode::CREATED
    );
    // Retry-After is truthful: after that long the next call succeeds.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert!(app.upsert(body).await.status.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_limit_sqlite() {
    profile_limit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_limit_postgres() {
    if crate::helpers::pg_skipped() {
        return;
    }
    profile_limit(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_limit_headers_and_429() {
    let app = TestApp::spawn_with(Backend::Sqlite, limited(6)).await;
    let r = app.get("/api/v2/users/me").await;
    assert_eq!(r.header("x-rate-limit"), Some("6"));
    assert_eq!(r.header("x-rate-limit-remaining"), Some("5"));
    assert_eq!(r.header("ratelimit-limit"), Some("6"));
    assert_eq!(r.header("ratelimit-remaining"), Some("5"));
    assert!(r.header("ratelimit-reset").unwrap().parse::<u64>().unwrap() >= 1);
    for _ in 0..5 {
        assert_eq!(app.get("/api/v2/users/me").await.status, StatusCode::OK);
    }
    let r = app.get("/api/v2/users/me").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text, "Number of allowed API requests per minute exceeded");
    assert_eq!(r.header("x-rate-limit-remaining"), Some("0"));
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(
        app.get("/healthz").await.status,
        StatusCode::OK,
        "health checks are not API calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_email() {
    let app = TestApp::spawn_with(Backend::Sqlite, limited(1000)).await;
    app.make_user("Bystander", "bystander@example.org", "agent")
        .await;
    let wrong = Auth::Password(ADMIN_EMAIL.into(), "wrong".into());
    for _ in 0..3 {
        assert_eq!(
            app.get_as(&wrong, "/api/v2/users/me").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = app.get_as(&wrong, "/api/v2/users/me").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    // Even the right password waits now, from this address; the API token does not, and another
    // user is unaffected.
    assert_eq!(
        app.get_as(
            &Auth::Password(ADMIN_EMAIL.into(), crate::helpers::ADMIN_PASSWORD.into()),
            "/api/v2/users/me"
        )
        .await
        .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.get_as(&Auth::admin(), "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(&Auth::as_user("bystander@example.org"), "/api/v2/users/me")
            .await
            .status,
        StatusCode::OK
    );
    // An unknown email and a wrong secret answer alike.
    let unknown = app
        .get_as(
            &Auth::Token("nobody@example.org".into(), "x".into()),
            "/api/v2/users/me",
        )
        .await;
    let bad = app
        .get_as(
            &Auth::Token("bystander@example.org".into(), "x".into()),
            "/api/v2/users/me",
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.text.clone()),
        (bad.status, bad.text.clone())
    );
}

/// Two servers on one PostgreSQL database share the account budget and the profile limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_through_postgres() {
    if crate::helpers::pg_skipped() {
        return;
    }
    let a = TestApp::spawn_with(Backend::Postgres, limited(10)).await;
    let b = TestApp::replica_of(&a, limited(10)).await;
    let mut refused = 0;
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        if app.get("/api/v2/users/me").await.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 2, "10 of 12 fit in the shared budget");
    let c = TestApp::spawn_with(Backend::Postgres, limited(1000)).await;
    let d = TestApp::replica_of(&c, limited(1000)).await;
    let body = json!({"name": "Shared", "email": "shared@example.org"});
    for i in 0..5 {
        let app = if i % 2 == 0 { &c } else { &d };
        assert!(app.upsert(body.clone()).await.status.is_success());
    }
    assert_eq!(
        d.upsert(body.clone()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(c.upsert(body).await.status, StatusCode::TOO_MANY_REQUESTS);
}
