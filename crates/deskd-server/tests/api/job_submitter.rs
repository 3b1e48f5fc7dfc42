//! Bulk jobs answer to their submitter: an `Idempotency-Key` replays only its caller's own job,
//! and a queued job runs with the rights its submitter has when it runs (deleted, suspended or
//! demoted: its items fail `PermissionDenied`, and the job still completes).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;
use crate::testmode::test_config;

on_both_backends!(
    config = test_config;
    idempotency_keys_are_scoped_to_the_caller,
    a_deleted_or_suspended_submitters_job_runs_nothing,
    a_demoted_submitters_job_runs_with_its_rights_now,
);

async fn submit(
    app: &TestApp,
    auth: &Auth,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> (String, Option<String>, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    req = match auth {
        Auth::Token(e, t) => req.basic_auth(format!("{e}/token"), Some(t)),
        _ => unreachable!("tokens only here"),
    };
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let r = req.send().await.expect("request");
    let lookup = r
        .headers()
        .get("x-idempotency-lookup")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = r.json().await.expect("json");
    let id = body["job_status"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (id, lookup, body)
}

async fn idempotency_keys_are_scoped_to_the_caller(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    let agent = Auth::as_user("agent@example.org");
    let body = json!({"users": [{"name": "Imported", "email": "imported@example.org"}]});
    let path = "/api/v2/users/create_many";
    let (admins, lookup, b) = submit(&app, &Auth::admin(), path, Some("key-1"), body.clone()).await;
    assert_eq!(lookup.as_deref(), Some("miss"), "{b}");
    // The same key and body from another caller is that caller's own first use, not a replay of
    // the admin's job.
    let (agents, lookup, b) = submit(&app, &agent, path, Some("key-1"), body.clone()).await;
    assert_eq!(lookup.as_deref(), Some("miss"), "{b}");
    assert!(!agents.is_empty() && agents != admins, "{b}");
    // Each caller's replay is its own job.
    let (again, lookup, _) = submit(&app, &agent, path, Some("key-1"), body.clone()).await;
    assert_eq!(
        (again.as_str(), lookup.as_deref()),
        (agents.as_str(), Some("hit"))
    );
    let (again, lookup, _) = submit(&app, &Auth::admin(), path, Some("key-1"), body).await;
    assert_eq!(
        (again.as_str(), lookup.as_deref()),
        (admins.as_str(), Some("hit"))
    );
    // Another body under one's own key is still refused.
    let (_, _, b) = submit(
        &app,
        &agent,
        path,
        Some("key-1"),
        json!({"users": [{"name": "Other", "email": "other@example.org"}]}),
    )
    .await;
    assert_eq!(b["error"], "IdempotentRequestError", "{b}");
}

/// Holds jobs, lets `submitter` submit `body` to `path`, runs `meanwhile`, releases and waits.
async fn held_job(app: &TestApp, submitter: &Auth, path: &str, body: Value) -> String {
    let r = app.post("/__deskd/jobs/hold", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (id, _, b) = submit(app, submitter, path, None, body).await;
    assert!(!id.is_empty(), "{b}");
    id
}

async fn release_and_wait(app: &TestApp, id: &str) -> Value {
    let r = app.post("/__deskd/jobs/release", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    crate::bulk::wait_for(app, id).await
}

fn all_denied(job: &Value, n: usize) {
    assert_eq!(job["status"], "completed", "{job}");
    let results = job["results"].as_array().expect("results");
    assert_eq!(results.len(), n, "{job}");
    for r in results {
        assert_eq!(r["error"], "PermissionDenied", "{job}");
    }
}

async fn a_deleted_or_suspended_submitters_job_runs_nothing(app: TestApp) {
    let body = json!({"users": [
        {"name": "One", "email": "one@example.org"},
        {"name": "Two", "email": "two@example.org"},
    ]});
    for (n, how) in ["delete", "suspend"].iter().enumerate() {
        let email = format!("agent{n}@example.org");
        let agent = app.make_user("Agent", &email, "agent").await;
        let before = app.count_users().await;
        let job = held_job(
            &app,
            &Auth::as_user(&email),
            "/api/v2/users/create_or_update_many",
            body.clone(),
        )
        .await;
        let r = match *how {
            "delete" => {
                app.send(
                    reqwest::Method::DELETE,
                    &format!("/api/v2/users/{agent}"),
                    &Auth::admin(),
                    None,
                )
                .await
            }
            _ => {
                app.put(
                    &format!("/api/v2/users/{agent}"),
                    json!({"user": {"suspended": true}}),
                )
                .await
            }
        };
        assert_eq!(r.status, StatusCode::OK, "{how}: {}", r.text);
        let done = release_and_wait(&app, &job).await;
        all_denied(&done, 2);
        assert_eq!(app.count_users().await, before, "{how}: nothing imported");
    }
}

async fn a_demoted_submitters_job_runs_with_its_rights_now(app: TestApp) {
    let second = app
        .make_user("Second admin", "second@example.org", "admin")
        .await;
    let auth = Auth::as_user("second@example.org");
    // An organization job needs an admin: demoted to agent, its items are denied.
    let orgs = held_job(
        &app,
        &auth,
        "/api/v2/organizations/create_many",
        json!({"organizations": [{"name": "Demoted Org"}]}),
    )
    .await;
    // A user job an agent may run: it runs, with an agent's rights (no admin may be made).
    let users = submit(
        &app,
        &auth,
        "/api/v2/users/create_or_update_many",
        None,
        json!({"users": [
            {"name": "Plain", "email": "plain@example.org"},
            {"name": "Promoted", "email": "promoted@example.org", "role": "admin"},
        ]}),
    )
    .await
    .0;
    let r = app
        .put(
            &format!("/api/v2/users/{second}"),
            json!({"user": {"role": "agent"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = release_and_wait(&app, &orgs).await;
    all_denied(&done, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM organizations").await, 0);
    let done = crate::bulk::wait_for(&app, &users).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["results"][0]["status"], "Created", "{done}");
    assert_eq!(done["results"][1]["error"], "PermissionDenied", "{done}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .await,
        1,
        "only the first admin is one"
    );
}
