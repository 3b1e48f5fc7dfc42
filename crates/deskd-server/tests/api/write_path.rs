//! The write path's promises that need no race to show: bounded requests, and a job that cannot
//! make progress ends `failed` and frees its slot.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::bulk::wait_for;
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(lists_and_identities_are_bounded);

/// Runs one statement against the test's database, behind the server's back.
async fn execute(app: &TestApp, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.db_url)
        .await
        .expect("connect");
    sqlx::query(sql).execute(&mut conn).await.expect("execute");
    let _ = conn.close().await;
}

async fn lists_and_identities_are_bounded(app: TestApp) {
    let before = app.table_counts().await;
    let tags: Vec<String> = (0..80_000).map(|i| format!("t{i}")).collect();
    let r = app
        .upsert(json!({"name": "Tags", "email": "tags@example.org", "tags": tags}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"], "RecordInvalid");
    assert!(
        r.body["details"]["tags"][0]["description"]
            .as_str()
            .unwrap()
            .contains("maximum is 1000")
    );
    let identities: Vec<Value> = (0..101)
        .map(|i| json!({"type": "email", "value": format!("i{i}@example.org")}))
        .collect();
    let r = app
        .upsert(json!({"name": "Ids", "identities": identities}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.body["details"]["identities"].is_array(), "{}", r.text);
    assert_eq!(app.table_counts().await, before);

    // At the bounds, accepted.
    let tags: Vec<String> = (0..1_000).map(|i| format!("t{i}")).collect();
    let identities: Vec<Value> = (0..100)
        .map(|i| json!({"type": "email", "value": format!("i{i}@example.org")}))
        .collect();
    let r = app
        .upsert(json!({"name": "Full", "tags": tags, "identities": identities}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["user"]["tags"].as_array().unwrap().len(), 1_000);
    assert_eq!(r.body["user"]["email"], "i0@example.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_progress_ends_failed_and_frees_its_slot_sqlite() {
    a_job_without_progress_ends_failed_and_frees_its_slot(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_progress_ends_failed_and_frees_its_slot_postgres() {
    if crate::helpers::pg_skipped() {
        return;
    }
    a_job_without_progress_ends_failed_and_frees_its_slot(Backend::Postgres).await
}

/// A server with no workers accepts the job; the job is then made to look as if five workers
/// had claimed it and died. The replica's worker must end it `failed` instead of running it again.
async fn a_job_without_progress_ends_failed_and_frees_its_slot(backend: Backend) {
    let config = deskd_server::Config {
        rate_limits: false,
        job_workers: 0,
        ..deskd_server::Config::default()
    };
    let quiet = TestApp::spawn_with(backend, config.clone()).await;
    let r = quiet
        .post(
            "/api/v2/users/create_or_update_many",
            json!({"users": [{"name": "Stuck", "email": "stuck@example.org"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    execute(
        &quiet,
        &format!("UPDATE jobs SET attempts = 5 WHERE id = '{id}'"),
    )
    .await;
    let app = TestApp::replica_of(
        &quiet,
        deskd_server::Config {
            job_workers: 1,
            ..config
        },
    )
    .await;
    let job = wait_for(&app, &id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["message"].as_str().unwrap().contains("attempts"),
        "{job}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM identities WHERE value_norm = 'stuck@example.org'")
            .await,
        0
    );
    // Its slot is free and the queue moves on: the next job runs.
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({"users": [{"name": "Next", "email": "next@example.org"}]}),
        )
        .await;
    let next = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    assert_eq!(next["status"], "completed", "{next}");
}

on_both_backends!(another_admin_cannot_take_over_the_owner);

/// Only the owner manages the owner's credentials and identities: another admin may not set its
/// password, give it an email (by the identities endpoints or create_or_update), or change,
/// verify, promote or delete its identities. The owner still can.
async fn another_admin_cannot_take_over_the_owner(app: TestApp) {
    use crate::helpers::Auth;
    let me = app.get("/api/v2/users/me").await;
    let owner = me.body["user"]["id"].as_i64().unwrap();
    let ident = app
        .get(&format!("/api/v2/users/{owner}/identities"))
        .await
        .body["identities"][0]["id"]
        .as_i64()
        .unwrap();
    app.make_user("Other Admin", "other-admin@example.org", "admin")
        .await;
    let other = Auth::as_user("other-admin@example.org");
    let before = app.table_counts().await;
    let attempts: Vec<(reqwest::Method, String, Value)> = vec![
        (
            reqwest::Method::POST,
            format!("/api/v2/users/{owner}/identities"),
            json!({"identity": {"type": "email", "value": "thief@example.org"}}),
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v2/users/{owner}/identities/{ident}"),
            json!({"identity": {"value": "thief@example.org"}}),
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v2/users/{owner}/identities/{ident}/verify"),
            json!({}),
        ),
        (
            reqwest::Method::POST,
            format!("/api/v2/users/{owner}/password"),
            json!({"password": "a new password 123"}),
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v2/users/{owner}/password"),
            json!({"password": "a new password 123"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v2/users/create_or_update".to_owned(),
            json!({"user": {"id": owner, "email": "thief@example.org"}}),
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v2/users/{owner}"),
            json!({"user": {"identities": [{"type": "email", "value": "thief@example.org"}]}}),
        ),
    ];
    for (method, path, body) in attempts {
        let r = app
            .send(
                method.clone(),
                &path,
                &other,
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            r.text
        );
    }
    assert_eq!(app.table_counts().await, before);
    // The owner's own password still logs in; the owner may change its own identities.
    let r = app
        .get_as(
            &Auth::Password(
                crate::helpers::ADMIN_EMAIL.into(),
                crate::helpers::ADMIN_PASSWORD.into(),
            ),
            "/api/v2/users/me",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v2/users/{owner}/identities"),
            json!({"identity": {"type": "email", "value": "owner2@example.org"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

on_both_backends!(search_and_page_edge_cases_are_4xx_or_literal);

/// Search terms are literal but for `*`: a trailing backslash (PostgreSQL's LIKE escape) and
/// `%`/`_` match themselves; a page number past any offset is the same 400 on both backends.
async fn search_and_page_edge_cases_are_4xx_or_literal(app: TestApp) {
    app.make_user("Percy", "percy@example.org", "end-user")
        .await;
    for q in [
        "email:*\\",
        "name:\\",
        "\\",
        "tags:a\\b",
        "email:per%",
        "name:p_rcy",
    ] {
        let encoded: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
        let r = app
            .get(&format!("/api/v2/users/search?query={encoded}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
        assert_eq!(r.body["count"], 0, "{q} matched: {}", r.text);
    }
    let r = app.get("/api/v2/users/search?query=name:Perc*").await;
    assert_eq!(r.body["count"], 1, "{}", r.text);
    for path in [
        "/api/v2/users?page=9223372036854775807",
        "/api/v2/organizations?page=9223372036854775807&per_page=100",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
    }
}

on_both_backends!(erasing_an_active_user_changes_nothing);

/// `DELETE /deleted_users/{id}` of a user that is not soft-deleted is a 404 that writes nothing
/// (it used to delete the user's identities and tokens before answering 404).
async fn erasing_an_active_user_changes_nothing(app: TestApp) {
    let id = app
        .make_user("Active", "active@example.org", "end-user")
        .await;
    let before = app.table_counts().await;
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v2/deleted_users/{id}"),
            &crate::helpers::Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(app.table_counts().await, before);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM identities WHERE user_id = {id}"
        ))
        .await,
        1
    );
}

/// Two writers merge different keys into one user's `user_fields` (one JSON column), one per
/// server on one PostgreSQL database: both keys must survive, so the second writer must decide
/// on the row as the first left it (the rows are locked before the facts are read). Without
/// the lock this lost a key in most of 12 rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_user_field_merges_on_two_servers_keep_both_keys() {
    if crate::helpers::pg_skipped() {
        return;
    }
    let one = TestApp::spawn(Backend::Postgres).await;
    let two = TestApp::replica_of(
        &one,
        deskd_server::Config {
            rate_limits: false,
            ..deskd_server::Config::default()
        },
    )
    .await;
    for k in ["left", "right"] {
        crate::custom_fields::make_field(&one, "user_fields", json!({"key": k, "title": k})).await;
    }
    let (one, two) = (std::sync::Arc::new(one), std::sync::Arc::new(two));
    let mut lost = 0;
    for round in 0..12 {
        let id = one
            .make_user(
                &format!("Fields {round}"),
                &format!("fields{round}@example.org"),
                "end-user",
            )
            .await;
        let path = format!("/api/v2/users/{id}");
        let (a, b) = (one.clone(), two.clone());
        let (pa, pb) = (path.clone(), path.clone());
        let ta = tokio::spawn(async move {
            a.put(&pa, json!({"user": {"user_fields": {"left": "L"}}}))
                .await
        });
        let tb = tokio::spawn(async move {
            b.put(&pb, json!({"user": {"user_fields": {"right": "R"}}}))
                .await
        });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        assert_eq!(ra.status, StatusCode::OK, "{}", ra.text);
        assert_eq!(rb.status, StatusCode::OK, "{}", rb.text);
        let fields = one.get(&path).await.body["user"]["user_fields"].clone();
        if fields["left"] != "L" || fields["right"] != "R" {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "a user_fields key was lost in {lost} of 12 rounds");
    crate::write_races::check_invariants(&one).await;
}
