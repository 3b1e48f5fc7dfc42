//! Bulk endpoints and job statuses.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, Backend, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    create_or_update_many_queues_then_completes_in_order,
    failed_items_do_not_stop_the_job,
    bad_bulk_requests_are_rejected_and_write_nothing,
    bulk_import_switch_gives_403,
    job_status_reads,
    idempotency_key_replays_the_first_job,
    create_many_and_update_many,
    repeated_items_in_one_job_make_one_user,
);

/// Polls a job until it completes (or 30 s pass).
pub async fn wait_for(app: &TestApp, id: &str) -> Value {
    for _ in 0..600 {
        let r = app.get(&format!("/api/v2/job_statuses/{id}.json")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let job = r.body["job_status"].clone();
        match job["status"].as_str() {
            Some("completed") | Some("failed") => return job,
            Some("queued") | Some("working") => {}
            other => panic!("unexpected status {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not complete");
}

async fn submit(app: &TestApp, users: Value) -> Resp {
    app.post(
        "/api/v2/users/create_or_update_many.json",
        json!({ "users": users }),
    )
    .await
}

async fn create_or_update_many_queues_then_completes_in_order(app: TestApp) {
    app.upsert(json!({"name": "Existing", "email": "existing@example.org"}))
        .await;
    let users: Vec<Value> = (0..60)
        .map(|i| json!({"name": format!("Bulk {i}"), "email": format!("bulk{i}@example.org"), "external_id": format!("b-{i}")}))
        .chain([json!({"email": "existing@example.org", "notes": "updated in bulk"})])
        .collect();
    let r = submit(&app, json!(users)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let job = &r.body["job_status"];
    let keys: Vec<&str> = job
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id", "url", "total", "progress", "status", "message", "results", "job_type"
        ]
    );
    assert_eq!(job["job_type"], "Bulk Create Or Update User");
    assert_eq!(job["status"], "queued");
    assert_eq!(job["progress"], Value::Null);
    assert_eq!(job["results"], Value::Null);
    assert_eq!(job["total"], 61);
    let id = job["id"].as_str().unwrap();
    assert!(
        id.starts_with("V3-") && id.len() == 35 && id[3..].chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        job["url"],
        app.url(&format!("/api/v2/job_statuses/{id}.json"))
    );

    let done = wait_for(&app, id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["progress"], 61);
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .starts_with("Completed at "),
        "{}",
        done["message"]
    );
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 61);
    for (i, res) in results.iter().enumerate() {
        assert_eq!(res["index"], i);
    }
    assert_eq!(results[0]["status"], "Created");
    assert_eq!(results[0]["email"], "bulk0@example.org");
    assert_eq!(results[0]["external_id"], "b-0");
    assert_eq!(results[60]["status"], "Updated");
    assert!(
        results[60].get("external_id").is_none(),
        "echoes only what the input had"
    );
    assert_eq!(app.count_users().await, 1 + 1 + 60);
    let uid = results[5]["id"].as_i64().unwrap();
    let u = app.get(&format!("/api/v2/users/{uid}")).await;
    assert_eq!(u.body["user"]["email"], "bulk5@example.org");
    let existing = app.upsert(json!({"email": "existing@example.org"})).await;
    assert_eq!(existing.body["user"]["notes"], "updated in bulk");
}

async fn failed_items_do_not_stop_the_job(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    app.make_user("Owner", "owner@example.org", "end-user")
        .await;
    app.upsert(
        json!({"name": "Ext holder", "external_id": "ext-held", "email": "held@example.org"}),
    )
    .await;
    let users = json!([
        {"name": "Good", "email": "good@example.org"},
        {"name": "Dup", "external_id": "ext-held", "email": "owner@example.org"},
        "not an object",
        {"name": "Bad email", "email": "nope"},
        {"name": "Boss", "email": "boss@example.org", "role": "admin"},
        {"name": "Good 2", "email": "good2@example.org"}
    ]);
    let r = app
        .post_as(
            &Auth::as_user("agent@example.org"),
            "/api/v2/users/create_or_update_many",
            json!({ "users": users }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let res = done["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], "Created");
    assert_eq!(res[1]["error"], "DuplicateValue");
    assert_eq!(
        res[1]["details"],
        "Email: owner@example.org is already being used by another user"
    );
    assert_eq!(res[1]["email"], "owner@example.org");
    assert_eq!(res[2]["error"], "InvalidValue");
    assert_eq!(res[3]["error"], "InvalidValue");
    assert_eq!(res[4]["error"], "PermissionDenied");
    assert_eq!(res[5]["status"], "Created");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
            .await,
        1
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM identities WHERE value_norm IN ('good@example.org', 'good2@example.org', 'boss@example.org')").await, 2);
}

async fn bad_bulk_requests_are_rejected_and_write_nothing(app: TestApp) {
    let before = app.scalar("SELECT COUNT(*) FROM jobs").await;
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"name": format!("U{i}"), "email": format!("u{i}@example.org")}))
        .collect();
    let r = submit(&app, json!(too_many)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"error": "TooManyValues", "description": "Maximum 100 users may be created per call"})
    );
    for body in [json!({"users": []}), json!({}), json!({"users": null})] {
        let r = app.post("/api/v2/users/create_or_update_many", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.body["error"], "ParameterMissing");
    }
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({"users": {"name": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .send(
            Method::POST,
            "/api/v2/users/create_or_update_many",
            &Auth::admin(),
            Some(b"{\"users\": [".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let end = app.make_user("End", "end@example.org", "end-user").await;
    let _ = end;
    let r = app
        .post_as(
            &Auth::as_user("end@example.org"),
            "/api/v2/users/create_or_update_many",
            json!({"users": [{"name": "x"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, before);
}

async fn bulk_import_switch_gives_403(app: TestApp) {
    let r = app
        .send(
            Method::PUT,
            "/api/v2/account/settings",
            &Auth::admin(),
            Some(br#"{"settings": {"deskd": {"bulk_user_import": false}}}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["settings"]["deskd"]["bulk_user_import"], false);
    for path in [
        "/api/v2/users/create_or_update_many",
        "/api/v2/users/create_many",
    ] {
        let r = app
            .post(
                path,
                json!({"users": [{"name": "x", "email": "x@example.org"}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            r.body,
            json!({"error": "Forbidden", "description": "Bulk user imports are not enabled for this account"})
        );
    }
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let _ = agent;
    let r = app
        .send(
            Method::PUT,
            "/api/v2/account/settings",
            &Auth::as_user("agent@example.org"),
            Some(br#"{"settings": {"deskd": {"bulk_user_import": true}}}"#.to_vec()),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "only admins change settings"
    );
    let r = app
        .send(
            Method::PUT,
            "/api/v2/account/settings.json",
            &Auth::admin(),
            Some(br#"{"settings": {"deskd": {"bulk_user_import": true}}}"#.to_vec()),
        )
        .await;
    assert_eq!(r.body["settings"]["deskd"]["bulk_user_import"], true);
    assert_eq!(
        submit(&app, json!([{"name": "x", "email": "x@example.org"}]))
            .await
            .status,
        StatusCode::OK
    );
}

async fn job_status_reads(app: TestApp) {
    let a = submit(&app, json!([{"name": "A", "email": "a@example.org"}])).await;
    let b = submit(&app, json!([{"name": "B", "email": "b@example.org"}])).await;
    let (ida, idb) = (
        a.body["job_status"]["id"].as_str().unwrap().to_owned(),
        b.body["job_status"]["id"].as_str().unwrap().to_owned(),
    );
    wait_for(&app, &ida).await;
    wait_for(&app, &idb).await;
    let many = app.get(&format!("/api/v2/job_statuses/show_many.json?ids={ida},{idb},V3-00000000000000000000000000000000")).await;
    let got: Vec<&str> = many.body["job_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ida.as_str(), idb.as_str()]);
    let list = app.get("/api/v2/job_statuses?page[size]=1").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["job_statuses"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["meta"]["has_more"], true);
    let all = app.get("/api/v2/job_statuses.json").await;
    let ids: Vec<&str> = all.body["job_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let missing = app
        .get("/api/v2/job_statuses/V3-0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.body,
        json!({"error": "RecordNotFound", "description": "Not found"})
    );
    assert_eq!(
        app.get("/api/v2/job_statuses?page[after]=%%%").await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn idempotency_key_replays_the_first_job(app: TestApp) {
    let body = json!({"users": [{"name": "Idem", "email": "idem@example.org"}]});
    let send = |b: Value, key: &'static str| {
        let app = &app;
        async move {
            let req = app
                .client
                .post(app.url("/api/v2/users/create_or_update_many"))
                .basic_auth(
                    format!("{}/token", crate::helpers::ADMIN_EMAIL),
                    Some(crate::helpers::ADMIN_TOKEN),
                )
                .header("Idempotency-Key", key)
                .json(&b);
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let lookup = resp
                .headers()
                .get("x-idempotency-lookup")
                .map(|v| v.to_str().unwrap().to_owned());
            let v: Value = resp.json().await.unwrap();
            (status, lookup, v)
        }
    };
    let (s1, l1, v1) = send(body.clone(), "key-1").await;
    assert_eq!((s1, l1.as_deref()), (StatusCode::OK, Some("miss")));
    let (s2, l2, v2) = send(body.clone(), "key-1").await;
    assert_eq!((s2, l2.as_deref()), (StatusCode::OK, Some("hit")));
    assert_eq!(v1["job_status"]["id"], v2["job_status"]["id"]);
    let (s3, _, v3) = send(
        json!({"users": [{"name": "Other", "email": "other@example.org"}]}),
        "key-1",
    )
    .await;
    assert_eq!(s3, StatusCode::BAD_REQUEST);
    assert_eq!(v3["error"], "IdempotentRequestError");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, 1);
}

async fn create_many_and_update_many(app: TestApp) {
    app.upsert(json!({"name": "Taken", "email": "taken@example.org"}))
        .await;
    let r = app
        .post(
            "/api/v2/users/create_many",
            json!({"users": [
                {"name": "New", "email": "new@example.org", "external_id": "n-1"},
                {"name": "Taken again", "email": "taken@example.org"}
            ]}),
        )
        .await;
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let res = done["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], "Created");
    assert_eq!(res[1]["error"], "DuplicateValue");
    let new_id = res[0]["id"].as_i64().unwrap();

    let r = app
        .send(
            Method::PUT,
            &format!("/api/v2/users/update_many.json?ids={new_id},9223372036854775807"),
            &Auth::admin(),
            Some(serde_json::to_vec(&json!({"user": {"notes": "same change"}})).unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let res = done["results"].as_array().unwrap();
    assert_eq!(
        res[0],
        json!({"index": 0, "id": new_id, "action": "update", "status": "Updated", "success": true})
    );
    assert_eq!(res[1]["error"], "RecordNotFound");
    assert_eq!(res[1]["success"], false);

    let r = app.send(Method::PUT, "/api/v2/users/update_many", &Auth::admin(),
        Some(serde_json::to_vec(&json!({"users": [{"external_id": "N-1", "name": "Renamed"}, {"email": "taken@example.org", "name": "no key"}]})).unwrap())).await;
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let res = done["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], "Updated");
    assert_eq!(res[1]["error"], "RecordNotFound");
    assert_eq!(
        app.get(&format!("/api/v2/users/{new_id}")).await.body["user"]["name"],
        "Renamed"
    );

    let ids: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let r = app
        .send(
            Method::PUT,
            &format!("/api/v2/users/update_many?ids={}", ids.join(",")),
            &Auth::admin(),
            Some(serde_json::to_vec(&json!({"user": {"notes": "x"}})).unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"error": "TooManyValues", "description": "Parameter  cannot specify more than 100 values", "max_count": 100})
    );
}

async fn repeated_items_in_one_job_make_one_user(app: TestApp) {
    let users: Vec<Value> = (0..40).map(|i| json!({"name": format!("Same {i}"), "email": if i % 2 == 0 { "same@example.org" } else { "SAME@example.org" }})).collect();
    let r = submit(&app, json!(users)).await;
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let res = done["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], "Created");
    assert!(
        res[1..]
            .iter()
            .all(|r| r["status"] == "Updated" && r["id"] == res[0]["id"])
    );
    assert_eq!(app.count_users().await, 2);
}

/// The 31st job waiting for a worker gets 429 with Retry-After; no worker runs in this app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_jobs_at_most() {
    let config = deskd_server::Config {
        rate_limits: false,
        job_workers: 0,
        ..deskd_server::Config::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    for i in 0..30 {
        let r = submit(
            &app,
            json!([{"name": "J", "email": format!("j{i}@example.org")}]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{i}: {}", r.text);
    }
    let r = submit(&app, json!([{"name": "J", "email": "j31@example.org"}])).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, 30);
}

/// Job statuses expire after the retention period: then 404 RecordNotFound, and the sweeper
/// deletes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_jobs_are_not_found() {
    let config = deskd_server::Config {
        rate_limits: false,
        job_retention: Duration::from_secs(1),
        ..deskd_server::Config::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let r = submit(&app, json!([{"name": "Old", "email": "old@example.org"}])).await;
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    wait_for(&app, &id).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let gone = app.get(&format!("/api/v2/job_statuses/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body,
        json!({"error": "RecordNotFound", "description": "Not found"})
    );
}

/// Two servers on one PostgreSQL database share the job queue: every job completes once, and
/// every user exists once, whichever server's workers ran it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_job_queue() {
    if crate::helpers::pg_skipped() {
        return;
    }
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = TestApp::replica_of(
        &a,
        deskd_server::Config {
            rate_limits: false,
            ..deskd_server::Config::default()
        },
    )
    .await;
    let mut ids = Vec::new();
    for j in 0..12 {
        let users: Vec<Value> = (0..50)
            .map(|i| json!({"name": format!("R{j}-{i}"), "email": format!("r{j}-{i}@example.org")}))
            .collect();
        let app = if j % 2 == 0 { &a } else { &b };
        let r = app
            .post(
                "/api/v2/users/create_or_update_many",
                json!({ "users": users }),
            )
            .await;
        ids.push(r.body["job_status"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let done = wait_for(&b, id).await;
        assert_eq!(done["status"], "completed");
        assert!(
            done["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == "Created")
        );
    }
    assert_eq!(a.count_users().await, 1 + 12 * 50);
    assert_eq!(
        a.scalar("SELECT COUNT(*) FROM job_results").await,
        12 * 50,
        "each item ran once"
    );
}
