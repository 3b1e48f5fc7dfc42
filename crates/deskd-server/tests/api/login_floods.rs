//! Floods of wrong passwords: the failed-login limit holds under concurrency (each attempt is
//! counted before its hash is checked), and argon2 runs a bounded number of times at once.

use std::time::{Duration, Instant};

use deskd_server::Config;
use reqwest::StatusCode;

use crate::helpers::{ADMIN_EMAIL, Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(config = failure_limit_10; concurrent_wrong_passwords_respect_the_failure_limit);
on_both_backends!(config = one_argon2_slot; password_verifications_are_bounded);

fn failure_limit_10() -> Config {
    flood_config(Some(10))
}

/// No failure limit: only the bound on concurrent argon2 computations stands between a flood and
/// the server's memory.
fn one_argon2_slot() -> Config {
    Config {
        password_verifications: 1,
        password_wait: Duration::ZERO,
        ..flood_config(None)
    }
}

fn flood_config(auth_failure_limit: Option<u32>) -> Config {
    Config {
        rate_limits: true,
        account_rate_limit: None,
        profile_rate_limit: None,
        auth_failure_limit,
        job_lease: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Sends `n` wrong passwords for `email` at once; returns the statuses, with every 429 checked
/// for its shape.
async fn flood(app: &TestApp, email: &str, n: usize) -> Vec<StatusCode> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let client = app.client.clone();
        let url = app.url("/api/v2/users/me");
        let email = email.to_owned();
        tasks.push(tokio::spawn(async move {
            let r = client
                .get(url)
                .basic_auth(email, Some(format!("wrong password {i}")))
                .send()
                .await
                .expect("request");
            let status = r.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let h = r.headers();
                assert_eq!(
                    h.get("content-type").and_then(|v| v.to_str().ok()),
                    Some("text/plain; charset=utf-8")
                );
                let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(retry >= 1);
            }
            status
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

async fn concurrent_wrong_passwords_respect_the_failure_limit(app: TestApp) {
    app.make_user("Bystander", "bystander@example.org", "agent")
        .await;
    let probe = {
        let (client, url) = (app.client.clone(), app.url("/api/v2/users/me"));
        tokio::spawn(async move {
            // While the flood runs, the server keeps answering other callers promptly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let start = Instant::now();
            let r = client
                .get(url)
                .basic_auth(
                    "bystander@example.org/token",
                    Some(crate::helpers::ADMIN_TOKEN),
                )
                .send()
                .await
                .expect("probe");
            (r.status(), start.elapsed())
        })
    };
    let statuses = flood(&app, ADMIN_EMAIL, 150).await;
    let evaluated = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        evaluated <= 10,
        "{evaluated} wrong passwords were evaluated; the limit is 10"
    );
    assert_eq!(evaluated + refused, 150, "{statuses:?}");
    let (status, took) = probe.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(took < Duration::from_secs(5), "bystander waited {took:?}");
    assert_eq!(
        app.get("/healthz").await.status,
        StatusCode::OK,
        "still healthy"
    );
}

async fn password_verifications_are_bounded(app: TestApp) {
    // Beyond the one slot (and no wait) logins are answered 429.
    let statuses = flood(&app, ADMIN_EMAIL, 40).await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(
        refused > 0,
        "40 concurrent argon2 verifications with one slot: none was turned away"
    );
    // Once the flood is over, the right password works.
    let r = app
        .get_as(
            &Auth::Password(ADMIN_EMAIL.into(), crate::helpers::ADMIN_PASSWORD.into()),
            "/api/v2/users/me",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
