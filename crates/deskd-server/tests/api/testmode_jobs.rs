//! Test mode's job pacing over HTTP, on both backends: one item per step, so a client's
//! polling sees every state, and item K of a job failing with a chosen error.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};

macro_rules! in_test_mode {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::spawn($crate::helpers::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::spawn($crate::helpers::Backend::Postgres).await).await
            }
        }
    )*};
}

async fn spawn(backend: crate::helpers::Backend) -> TestApp {
    TestApp::spawn_with(backend, crate::testmode::test_config()).await
}

async fn job(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/api/v2/job_statuses/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["job_status"].clone()
}

fn users(n: usize, tag: &str) -> Value {
    json!(
        (0..n)
            .map(
                |i| json!({"name": format!("{tag} {i}"), "email": format!("{tag}{i}@example.org")})
            )
            .collect::<Vec<_>>()
    )
}

in_test_mode!(
    steps_run_one_item_each_and_polling_sees_every_state,
    item_k_fails_with_the_chosen_error,
    pacing_refuses_bad_input_and_non_admins,
);

async fn steps_run_one_item_each_and_polling_sees_every_state(app: TestApp) {
    let r = app.post("/__deskd/jobs/hold", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .post(
            "/api/v2/users/create_many",
            json!({"users": users(3, "step")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    assert_eq!(job(&app, &id).await["status"], "queued");
    let mut seen = Vec::new();
    for k in 1..=3 {
        let r = app.post("/__deskd/jobs/step", json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["jobs"]["ran"], 1, "{}", r.text);
        assert_eq!(r.body["jobs"]["held"], true);
        let j = job(&app, &id).await;
        assert_eq!(j["progress"], k, "{j}");
        seen.push(j["status"].as_str().unwrap().to_owned());
        assert_eq!(app.count_users().await, 1 + k, "one user a step");
    }
    assert_eq!(seen, ["working", "working", "completed"]);
    let j = job(&app, &id).await;
    assert_eq!(j["results"].as_array().unwrap().len(), 3, "{j}");
    // Nothing left to run: the permit comes back at once.
    let r = app.post("/__deskd/jobs/step", json!({"items": 2})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["jobs"]["ran"], 0, "{}", r.text);
    assert_eq!(r.body["jobs"]["unused"], 2, "{}", r.text);
    // Several items in one call, across two jobs, then release runs the rest at once.
    let a = app
        .post("/api/v2/users/create_many", json!({"users": users(2, "a")}))
        .await;
    let b = app
        .post("/api/v2/users/create_many", json!({"users": users(2, "b")}))
        .await;
    let (a, b) = (
        a.body["job_status"]["id"].as_str().unwrap().to_owned(),
        b.body["job_status"]["id"].as_str().unwrap().to_owned(),
    );
    let r = app.post("/__deskd/jobs/step", json!({"items": 3})).await;
    assert_eq!(r.body["jobs"]["ran"], 3, "{}", r.text);
    let progress = |j: &Value| j["progress"].as_i64().unwrap_or(0);
    let (ja, jb) = (job(&app, &a).await, job(&app, &b).await);
    assert_eq!(progress(&ja) + progress(&jb), 3, "{ja} {jb}");
    let r = app.post("/__deskd/jobs/release", json!({})).await;
    assert_eq!(r.body["jobs"]["held"], false);
    for id in [a, b] {
        assert_eq!(
            crate::bulk::wait_for(&app, &id).await["status"],
            "completed"
        );
    }
    assert_eq!(app.count_users().await, 8);
    // A reset forgets the hold and permits.
    app.post("/__deskd/jobs/hold", json!({})).await;
    app.post("/__deskd/reset", json!({})).await;
    let r = app.get("/__deskd/jobs").await;
    assert_eq!(
        r.body["jobs"],
        json!({"held": false, "permits": 0, "failures": []})
    );
}

async fn item_k_fails_with_the_chosen_error(app: TestApp) {
    let r = app
        .post(
            "/__deskd/jobs/fail",
            json!({"index": 1, "error": "DuplicateValue", "details": "Email: is already being used"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({"users": users(3, "fail")}),
        )
        .await;
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    let done = crate::bulk::wait_for(&app, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["status"], "Created", "{done}");
    assert_eq!(results[1]["error"], "DuplicateValue", "{done}");
    assert_eq!(results[1]["details"], "Email: is already being used");
    assert_eq!(results[1]["email"], "fail1@example.org");
    assert_eq!(results[2]["status"], "Created", "{done}");
    assert_eq!(app.count_users().await, 3, "the failed item wrote nothing");
    // The rule is bound to that job: the next job runs whole.
    let r = app.get("/__deskd/jobs").await;
    assert_eq!(r.body["jobs"]["failures"][0]["job_id"], id.as_str());
    assert_eq!(r.body["jobs"]["failures"][0]["fired"], 1);
    let r = app
        .post(
            "/api/v2/users/create_many",
            json!({"users": users(2, "next")}),
        )
        .await;
    let next = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    let done = crate::bulk::wait_for(&app, &next).await;
    assert!(
        done["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["error"].is_null()),
        "{done}"
    );
    // Organization jobs too, with the default error, while stepping.
    let r = app
        .send(
            reqwest::Method::DELETE,
            "/__deskd/jobs/fail",
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.post("/__deskd/jobs/fail", json!({"index": 0})).await;
    app.post("/__deskd/jobs/hold", json!({})).await;
    let r = app
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "Zero"}, {"name": "One"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let org_job = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    let r = app.post("/__deskd/jobs/step", json!({"items": 1})).await;
    assert_eq!(r.body["jobs"]["ran"], 1);
    let j = job(&app, &org_job).await;
    // (Results are shown once a job completes, as on Zendesk.)
    assert_eq!(
        (j["status"].as_str(), j["progress"].as_i64()),
        (Some("working"), Some(1)),
        "{j}"
    );
    app.post("/__deskd/jobs/step", json!({})).await;
    let j = job(&app, &org_job).await;
    assert_eq!(j["status"], "completed", "{j}");
    assert_eq!(j["results"][0]["error"], "InjectedFailure", "{j}");
    assert!(j["results"][1]["id"].is_i64(), "{j}");
    let r = app.get("/api/v2/organizations").await;
    let names: Vec<&str> = r.body["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["One"], "{}", r.text);
}

async fn pacing_refuses_bad_input_and_non_admins(app: TestApp) {
    for body in [
        json!({"index": "x"}),
        json!({"index": -1}),
        json!({}),
        json!({"index": 0, "error": ""}),
        json!({"index": 0, "error": 5}),
        json!({"index": 0, "details": "x".repeat(2000)}),
        json!({"index": 0, "job_id": 7}),
    ] {
        let r = app.post("/__deskd/jobs/fail", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.body["error"], "InvalidJobFailure", "{body}");
    }
    for body in [
        json!({"items": 0}),
        json!({"items": "many"}),
        json!({"items": 1e9}),
    ] {
        let r = app.post("/__deskd/jobs/step", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
    }
    let r = app
        .send(
            reqwest::Method::POST,
            "/__deskd/jobs/step",
            &Auth::admin(),
            Some(b"[1".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        app.get("/__deskd/jobs").await.body["jobs"]["held"],
        false,
        "a refused step holds nothing"
    );
    app.make_user("Agent", "agent@example.org", "agent").await;
    for path in ["/__deskd/jobs/step", "/__deskd/jobs/fail"] {
        let r = app
            .post_as(
                &Auth::as_user("agent@example.org"),
                path,
                json!({"index": 0}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        let r = app.post_as(&Auth::None, path, json!({"index": 0})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = app.get("/__deskd/jobs").await;
    assert_eq!(r.body["jobs"]["failures"], json!([]));
}
