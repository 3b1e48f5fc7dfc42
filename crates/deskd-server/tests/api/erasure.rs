//! Permanent deletion scrubs the user's personal data from stored job payloads and results too.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(erasing_a_user_scrubs_its_jobs);

async fn job(app: &TestApp, path: &str, body: serde_json::Value) -> serde_json::Value {
    let r = app.post(path, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    crate::bulk::wait_for(app, &id).await
}

async fn erasing_a_user_scrubs_its_jobs(app: TestApp) {
    let created = job(&app, "/api/v2/users/create_many", json!({"users": [
        {"name": "Secret Person", "email": "secret@example.org", "notes": "private note", "external_id": "sec-ext"},
        {"name": "Bystander", "email": "bystander@example.org"},
    ]}))
    .await;
    let id = created["results"][0]["id"].as_i64().expect("created");
    // A later job that failed on the same email (its entry carries no id), and an update by id.
    let failed = job(
        &app,
        "/api/v2/users/create_many",
        json!({"users": [
            {"name": "Again", "email": "secret@example.org"},
        ]}),
    )
    .await;
    assert_ne!(failed["results"][0]["status"], "Created", "{failed}");
    let r = app
        .send(
            Method::PUT,
            &format!("/api/v2/users/update_many?ids={id}"),
            &Auth::admin(),
            Some(
                json!({"user": {"notes": "another private note"}})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    crate::bulk::wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let stored = |pattern: &'static str| {
        let app = &app;
        async move {
            app.scalar(&format!(
                "SELECT COUNT(*) FROM jobs WHERE payload LIKE '%{pattern}%'"
            ))
            .await
                + app
                    .scalar(&format!(
                        "SELECT COUNT(*) FROM job_results WHERE result LIKE '%{pattern}%'"
                    ))
                    .await
        }
    };
    assert!(
        stored("secret@example.org").await > 0,
        "the jobs hold the data before"
    );
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v2/users/{id}"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Soft deletion alone leaves jobs as they were; permanent deletion scrubs them.
    assert!(stored("secret@example.org").await > 0);
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v2/deleted_users/{id}"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for pattern in [
        "secret@example.org",
        "private note",
        "sec-ext",
        "Secret Person",
    ] {
        assert_eq!(stored(pattern).await, 0, "{pattern} is gone from every job");
    }
    // Others' data stays, and the job statuses still read, with their outcomes.
    assert!(stored("bystander@example.org").await > 0);
    let id0 = created["id"].as_str().unwrap();
    let r = app.get(&format!("/api/v2/job_statuses/{id0}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["job_status"]["results"][0]["id"], id, "{}", r.text);
    assert_eq!(
        r.body["job_status"]["results"][0]["status"], "Created",
        "{}",
        r.text
    );
    assert_eq!(
        r.body["job_status"]["results"][1]["email"], "bystander@example.org",
        "{}",
        r.text
    );
}
