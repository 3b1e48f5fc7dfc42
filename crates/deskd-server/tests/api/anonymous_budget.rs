//! Strangers cannot spend the account's budget: unauthenticated and failed-auth requests are
//! limited per client address, and only authenticated requests take from the account's.

use std::time::Duration;

use deskd_server::Config;
use reqwest::StatusCode;

use crate::helpers::{ADMIN_EMAIL, ADMIN_TOKEN, TestApp};
use crate::on_both_backends;

on_both_backends!(config = zendesk_limits; anonymous_traffic_does_not_spend_the_account_budget);

/// The limits deskd starts with, but a slower refill for strangers (10 a minute, one every 6 s)
/// so that a slow machine cannot refill a slot between the burst and the last check.
fn zendesk_limits() -> Config {
    Config {
        job_lease: Duration::from_secs(2),
        anonymous_rate_limit: Some(10),
        ..Config::default()
    }
}

async fn anonymous_traffic_does_not_spend_the_account_budget(app: TestApp) {
    let paths = [
        "/api/v2/users/me",
        "/api/v2/users",
        "/api/v2/no/such/endpoint",
        "/api/v2/organizations",
    ];
    let mut refused = 0;
    for batch in 0..15 {
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (client, n) = (app.client.clone(), batch * 50 + i);
            let url = app.url(paths[n % paths.len()]);
            tasks.push(tokio::spawn(async move {
                let req = client.get(url);
                // One in three carries credentials that do not work.
                let req = match n % 3 {
                    0 => req.basic_auth(format!("stranger{n}@example.org/token"), Some("guess")),
                    1 => req.bearer_auth(format!("no-such-token-{n}")),
                    _ => req,
                };
                let r = req.send().await.expect("request");
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                (status, text)
            }));
        }
        for t in tasks {
            let (status, text) = t.await.unwrap();
            assert!(
                matches!(status.as_u16(), 200 | 401 | 404 | 429),
                "{status} {text}"
            );
            if status == StatusCode::TOO_MANY_REQUESTS {
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "750 anonymous requests in a burst, none refused"
    );
    // The account's integrations are untouched: the budget is whole.
    let r = app.get("/api/v2/users/me").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("x-rate-limit"), Some("700"));
    assert_eq!(r.header("x-rate-limit-remaining"), Some("699"));
    // Also with the credentials of the user the strangers guessed at, from the same address.
    let r = app
        .get_as(
            &crate::helpers::Auth::Token(ADMIN_EMAIL.into(), ADMIN_TOKEN.into()),
            "/api/v2/users",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // An anonymous request from that address is still refused, with a truthful Retry-After.
    let r = app
        .get_as(&crate::helpers::Auth::None, "/api/v2/users/me")
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text.contains("unauthenticated"), "{}", r.text);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(
        r.header("x-rate-limit-remaining").is_none(),
        "not the account's budget"
    );
}
