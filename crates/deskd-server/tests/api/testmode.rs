//! Test mode (`deskd serve --test-mode`): the `/__deskd/` controls, over HTTP, on both backends.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

/// Runs each scenario `async fn name(app: TestApp)` on both backends, with test mode on.
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

pub fn test_config() -> deskd_server::Config {
    deskd_server::Config {
        rate_limits: false,
        job_lease: std::time::Duration::from_secs(2),
        test_mode: true,
        ..deskd_server::Config::default()
    }
}

async fn spawn(backend: crate::helpers::Backend) -> TestApp {
    TestApp::spawn_with(backend, test_config()).await
}

const CONTROLS: &[(&str, &str)] = &[
    ("GET", "/__deskd"),
    ("POST", "/__deskd/reset"),
    ("GET", "/__deskd/requests"),
    ("DELETE", "/__deskd/requests"),
    ("GET", "/__deskd/requests/unmatched"),
    ("GET", "/__deskd/faults"),
    ("POST", "/__deskd/faults"),
    ("DELETE", "/__deskd/faults"),
    ("GET", "/__deskd/clock"),
    ("POST", "/__deskd/clock"),
    ("POST", "/__deskd/jobs/hold"),
    ("POST", "/__deskd/jobs/release"),
];

on_both_backends!(controls_are_invalid_endpoint_when_test_mode_is_off);

async fn controls_are_invalid_endpoint_when_test_mode_is_off(app: TestApp) {
    for (method, path) in CONTROLS {
        for auth in [Auth::admin(), Auth::None] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let r = app
                .send(method.clone(), path, &auth, Some(b"{}".to_vec()))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(
                r.body,
                json!({"error": "InvalidEndpoint", "description": "Not found"}),
                "{method} {path}"
            );
        }
    }
}

in_test_mode!(controls_need_an_admin);

async fn controls_need_an_admin(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    app.make_user("End", "end@example.org", "end-user").await;
    let r = app.get_as(&Auth::None, "/__deskd").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    for who in ["agent@example.org", "end@example.org"] {
        let r = app.get_as(&Auth::as_user(who), "/__deskd").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text);
    }
    let r = app.get("/__deskd").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["deskd"]["test_mode"], true);
    // A path under the prefix that is not a control is an unknown endpoint, as elsewhere.
    let r = app.get("/__deskd/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "InvalidEndpoint");
}

/// Counts of every table a reset empties, straight from the database.
async fn table_rows(app: &TestApp) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in [
        "users",
        "identities",
        "organizations",
        "jobs",
        "job_results",
        "idempotency_keys",
        "oauth_tokens",
        "settings",
    ] {
        out.push((
            table,
            app.scalar(&format!("SELECT COUNT(*) FROM {table}")).await,
        ));
    }
    out
}

in_test_mode!(reset_empties_the_account_and_keeps_the_admin);

async fn reset_empties_the_account_and_keeps_the_admin(app: TestApp) {
    let fresh = table_rows(&app).await;
    // An account with something of everything.
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let r = app
        .upsert(
            json!({"name": "Roger", "email": "roger@example.org", "external_id": "rw-1",
            "identities": [{"type": "twitter", "value": "rogerwilco"}],
            "organization": {"name": "Sierra"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let roger = r.body["user"]["id"].as_i64().unwrap();
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Lucas"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .client
        .post(app.url("/api/v2/users/create_many"))
        .basic_auth(
            format!("{}/token", crate::helpers::ADMIN_EMAIL),
            Some(crate::helpers::ADMIN_TOKEN),
        )
        .header("Idempotency-Key", "reset-test-1")
        .json(
            &json!({"users": [{"name": "Bulk 1", "email": "bulk1@example.org"},
                                {"name": "Bulk 2", "email": "bulk2@example.org"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let job: serde_json::Value = r.json().await.unwrap();
    let job_id = job["job_status"]["id"].as_str().unwrap().to_owned();
    crate::bulk::wait_for(&app, &job_id).await;
    let r = app
        .put(
            "/api/v2/account/settings",
            json!({"settings": {"deskd": {"bulk_user_import": false}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            "/api/v2/oauth/tokens",
            json!({"token": {"user_id": agent, "scopes": ["read"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bearer = Auth::Bearer(r.body["token"]["full_token"].as_str().unwrap().to_owned());
    // Logged in (and cached) before the reset.
    let agent_auth = Auth::as_user("agent@example.org");
    assert_eq!(
        app.get_as(&agent_auth, "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(&bearer, "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    assert_eq!(app.count_users().await, 5);

    let r = app.post("/__deskd/reset", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["reset"]["deleted"]["users"], 4, "{}", r.text);
    assert_eq!(r.body["reset"]["deleted"]["organizations"], 2, "{}", r.text);
    assert_eq!(r.body["reset"]["deleted"]["jobs"], 1, "{}", r.text);

    assert_eq!(table_rows(&app).await, fresh);
    // The deleted users' logins die at once, cached or not.
    for auth in [&agent_auth, &bearer] {
        let r = app.get_as(auth, "/api/v2/users/me").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}: {}", r.text);
    }
    for path in [
        format!("/api/v2/users/{roger}"),
        format!("/api/v2/job_statuses/{job_id}"),
    ] {
        assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    // The admin still works, with token and password, and the account is as new.
    let me = app.get("/api/v2/users/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["email"], crate::helpers::ADMIN_EMAIL);
    let pw = Auth::Password(
        crate::helpers::ADMIN_EMAIL.into(),
        crate::helpers::ADMIN_PASSWORD.into(),
    );
    assert_eq!(
        app.get_as(&pw, "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v2/users/count").await.body["count"]["value"],
        1
    );
    let r = app.get("/api/v2/account/settings").await;
    assert_eq!(
        r.body["settings"]["deskd"]["bulk_user_import"], true,
        "{}",
        r.text
    );
    // Emails, external ids, organization names and idempotency keys are free again.
    let r = app
        .upsert(
            json!({"name": "Roger again", "email": "roger@example.org", "external_id": "rw-1",
            "identities": [{"type": "twitter", "value": "rogerwilco"}],
            "organization": {"name": "Sierra"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(
        r.body["user"]["id"].as_i64().unwrap() > roger,
        "ids are not reused"
    );
    app.make_user("Agent again", "agent@example.org", "agent")
        .await;
    let r = app
        .client
        .post(app.url("/api/v2/users/create_many"))
        .basic_auth(
            format!("{}/token", crate::helpers::ADMIN_EMAIL),
            Some(crate::helpers::ADMIN_TOKEN),
        )
        .header("Idempotency-Key", "reset-test-1")
        .json(&json!({"users": [{"name": "Bulk 3", "email": "bulk1@example.org"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()
            .get("x-idempotency-lookup")
            .is_none_or(|v| v != "hit")
    );
    let job: serde_json::Value = r.json().await.unwrap();
    let done = crate::bulk::wait_for(&app, job["job_status"]["id"].as_str().unwrap()).await;
    assert_eq!(done["results"][0]["status"], "Created", "{done}");
    assert_eq!(app.count_users().await, 4);
}
