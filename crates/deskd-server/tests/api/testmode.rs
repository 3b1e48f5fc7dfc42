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
                if crate::helpers::pg_skipped() {
                    return;
                }
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
    ("GET", "/__deskd/jobs"),
    ("POST", "/__deskd/jobs/step"),
    ("POST", "/__deskd/jobs/fail"),
    ("DELETE", "/__deskd/jobs/fail"),
    ("GET", "/__deskd/export"),
    ("POST", "/__deskd/import"),
    ("GET", "/__deskd/snapshots"),
    ("POST", "/__deskd/snapshots/s"),
    ("POST", "/__deskd/snapshots/s/restore"),
    ("DELETE", "/__deskd/snapshots/s"),
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

/// The journal, as a test reads it.
async fn journal(app: &TestApp, query: &str) -> serde_json::Value {
    let r = app.get(&format!("/__deskd/requests{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

in_test_mode!(journal_records_requests_and_filters_them);

async fn journal_records_requests_and_filters_them(app: TestApp) {
    let admin = Auth::admin();
    assert_eq!(journal(&app, "").await["count"], 0);
    app.get("/api/v2/users.json?role=admin").await;
    let r = app
        .upsert(json!({"name": "Roger", "email": "roger@example.org"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.get("/api/v2/users/999").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let midway = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.get("/api/v2/tickets.json").await;
    app.send(
        Method::DELETE,
        "/api/v2/users/create_or_update",
        &admin,
        None,
    )
    .await;
    app.get_as(&Auth::None, "/healthz").await;

    let all = journal(&app, "").await;
    assert_eq!(all["count"], 6, "controls are not journaled: {all}");
    let e = &all["requests"];
    assert_eq!(e[0]["method"], "GET");
    assert_eq!(e[0]["path"], "/api/v2/users.json", "the path as sent");
    assert_eq!(e[0]["query"], "role=admin");
    assert_eq!(e[0]["status"], 200);
    assert_eq!(e[0]["response"]["body"]["count"], 1);
    assert_eq!(e[1]["method"], "POST");
    assert_eq!(
        e[1]["request"]["body"]["user"]["email"],
        "roger@example.org"
    );
    assert_eq!(
        e[1]["request"]["headers"]["content-type"],
        "application/json"
    );
    assert_eq!(e[1]["status"], 201);
    assert_eq!(e[1]["response"]["body"]["user"]["name"], "Roger");
    assert!(e[1]["response"]["headers"]["location"].is_string());
    assert_eq!(e[2]["response"]["body"]["error"], "RecordNotFound");
    assert_eq!(e[2]["unmatched"], false);
    assert_eq!(e[3]["unmatched"], true);
    assert!(e[0]["id"].as_u64() < e[1]["id"].as_u64());
    assert!(e[0]["time"].as_str().unwrap().ends_with('Z'));

    let count = |q: &'static str| {
        let app = &app;
        async move { journal(app, q).await["count"].as_u64().unwrap() }
    };
    assert_eq!(count("?method=post").await, 1);
    assert_eq!(count("?path=create_or_update").await, 2);
    assert_eq!(count("?path=/api/v2/users/*").await, 3);
    assert_eq!(count("?path=/api/v2/users").await, 4);
    assert_eq!(count("?status=404").await, 2);
    assert_eq!(count("?status=4xx").await, 3);
    assert_eq!(count("?status=2xx&method=GET").await, 2);
    assert_eq!(count(&*format!("?since={midway}").leak()).await, 3);
    let first = e[0]["id"].as_u64().unwrap();
    assert_eq!(count(&*format!("?after_id={first}").leak()).await, 5);
    assert_eq!(
        app.get("/__deskd/requests?status=abc").await.status,
        StatusCode::BAD_REQUEST
    );

    // Requests for endpoints deskd lacks, grouped, so the missing ones are plain.
    app.get("/api/v2/tickets").await;
    let r = app.get("/__deskd/requests/unmatched").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["count"], 3, "{}", r.text);
    assert_eq!(
        r.body["endpoints"],
        json!([
            {"method": "GET", "path": "/api/v2/tickets", "count": 2},
            {"method": "DELETE", "path": "/api/v2/users/create_or_update", "count": 1},
        ])
    );

    let r = app
        .send(Method::DELETE, "/__deskd/requests", &admin, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(journal(&app, "").await["count"], 0);
    app.get("/api/v2/users/me").await;
    assert_eq!(journal(&app, "").await["count"], 1);
    // A reset forgets the journal too.
    app.post("/__deskd/reset", json!({})).await;
    assert_eq!(journal(&app, "").await["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_keeps_the_last_thousand() {
    let app = spawn(crate::helpers::Backend::Sqlite).await;
    let n = 1010;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(8) {
                app.get_as(&Auth::None, &format!("/healthz?i={i}")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = journal(&app, "").await;
    assert_eq!(all["count"], 1000);
    assert_eq!(all["evicted"], 10);
    assert_eq!(all["capacity"], 1000);
}

in_test_mode!(journal_never_holds_credentials);

async fn journal_never_holds_credentials(app: TestApp) {
    use base64::Engine;
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let password = "agent-password-Zq81xP";
    let r = app
        .post(
            &format!("/api/v2/users/{agent}/password"),
            json!({"password": password}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app
        .post(
            "/api/v2/oauth/tokens",
            json!({"token": {"user_id": agent, "scopes": ["read", "write"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bearer = r.body["token"]["full_token"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/api/v2/api_tokens",
            json!({"api_token": {"description": "ci"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let api_token = r.body["api_token"]["token"].as_str().unwrap().to_owned();
    // Logins of every kind, right and wrong.
    let logins = [
        Auth::admin(),
        Auth::Password("agent@example.org".into(), password.into()),
        Auth::Bearer(bearer.clone()),
        Auth::Token("agent@example.org".into(), api_token.clone()),
        Auth::Password("agent@example.org".into(), "wrong-Password-Kk20".into()),
        Auth::Bearer("not-a-token-Yy31".into()),
    ];
    for auth in &logins {
        app.get_as(auth, "/api/v2/users/me").await;
    }
    // Secrets in cookies, queries and bodies that are not JSON.
    let r = app
        .client
        .post(app.url("/api/v2/users/me?access_token=query-secret-Ab12&page=1"))
        .header("Cookie", "_session=cookie-secret-Cd34")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&password=form-secret-Ef56&username=agent")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    app.client
        .post(app.url("/api/v2/users"))
        .basic_auth(
            format!("{}/token", crate::helpers::ADMIN_EMAIL),
            Some(crate::helpers::ADMIN_TOKEN),
        )
        .header("Content-Type", "application/json")
        .body("{\"user\": {\"password\": \"broken-json-secret-Gh78\"")
        .send()
        .await
        .unwrap();

    let all = app.get("/__deskd/requests").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.body["count"].as_u64().unwrap() >= 12, "{}", all.text);
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let secrets = [
        crate::helpers::ADMIN_TOKEN.to_owned(),
        crate::helpers::ADMIN_PASSWORD.to_owned(),
        password.to_owned(),
        bearer.clone(),
        api_token.clone(),
        "wrong-Password-Kk20".into(),
        "not-a-token-Yy31".into(),
        "query-secret-Ab12".into(),
        "cookie-secret-Cd34".into(),
        "form-secret-Ef56".into(),
        "broken-json-secret-Gh78".into(),
        b64(format!(
            "{}/token:{}",
            crate::helpers::ADMIN_EMAIL,
            crate::helpers::ADMIN_TOKEN
        )),
        b64(format!("agent@example.org:{password}")),
    ];
    for s in &secrets {
        assert!(!all.text.contains(s.as_str()), "{s} is in the journal");
    }
    let me = &all.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/api/v2/users/me" && e["status"] == 200)
        .unwrap()["request"]["headers"];
    assert_eq!(me["authorization"], "Basic [redacted]");
    let form = all.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["query"]
                .as_str()
                .is_some_and(|q| q.contains("access_token"))
        })
        .unwrap();
    assert_eq!(form["query"], "access_token=[redacted]&page=1");
    assert_eq!(form["request"]["headers"]["cookie"], "[redacted]");
    assert_eq!(
        form["request"]["body"],
        "grant_type=password&password=[redacted]&username=agent"
    );
}

async fn add_fault(app: &TestApp, rule: serde_json::Value) -> u64 {
    let r = app.post("/__deskd/faults", rule).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["fault"]["id"].as_u64().unwrap()
}

in_test_mode!(a_client_retries_through_two_429s);

async fn a_client_retries_through_two_429s(app: TestApp) {
    let id = add_fault(
        &app,
        json!({"method": "POST", "path": "/api/v2/users/create_or_update.json", "times": 2,
               "response": {"status": 429, "retry_after": 1}}),
    )
    .await;
    let client = deskd_client::Client::new(
        &app.url(""),
        deskd_client::Auth::Token {
            email: crate::helpers::ADMIN_EMAIL.into(),
            token: crate::helpers::ADMIN_TOKEN.into(),
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (user, created) = client
        .create_or_update(&json!({"name": "Patient", "email": "patient@example.org"}))
        .await
        .expect("the client waits out both 429s");
    assert!(created);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After: 1 twice"
    );
    assert_eq!(app.count_users().await, 2);
    let r = app.get("/__deskd/faults").await;
    assert_eq!(r.body["count"], 1, "{}", r.text);
    let rule = &r.body["faults"][0];
    assert_eq!(rule["id"], id);
    assert_eq!(
        (rule["matched"].as_u64(), rule["fired"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(rule["remaining"], 0);
    // The journal shows what the client went through.
    let j = journal(&app, "?method=POST&path=create_or_update").await;
    let seen: Vec<_> = j["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_u64().unwrap(), e["fault"].as_u64()))
        .collect();
    assert_eq!(seen, vec![(429, Some(id)), (429, Some(id)), (201, None)]);
    assert_eq!(j["requests"][0]["response"]["headers"]["retry-after"], "1");
    assert_eq!(j["requests"][2]["response"]["body"]["user"]["id"], user.id);
    // Cleared, nothing fires.
    let r = app
        .send(Method::DELETE, "/__deskd/faults", &Auth::admin(), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/__deskd/faults").await.body["count"], 0);
}

in_test_mode!(faults_of_every_kind);

async fn faults_of_every_kind(app: TestApp) {
    let admin = Auth::admin();
    // 503 with Retry-After and Zendesk-like JSON; only for GET.
    add_fault(
        &app,
        json!({"method": "GET", "path": "/api/v2/users/count", "times": 1,
               "response": {"status": 503, "retry_after": 7}}),
    )
    .await;
    let r = app.post("/api/v2/users/count", json!({})).await;
    assert_ne!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "another method passes"
    );
    let r = app.get("/api/v2/users/count.json").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.body["error"], "ServiceUnavailable");
    assert_eq!(app.get("/api/v2/users/count").await.status, StatusCode::OK);

    // 500, and a Zendesk error body of the test's choosing, on a glob.
    add_fault(
        &app,
        json!({"path": "/api/v2/organizations*", "times": 1, "response": {"status": 500}}),
    )
    .await;
    let r = app.get("/api/v2/organizations/42").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body["error"], "InternalError");
    let body = json!({"error": "RecordInvalid", "description": "Record validation errors",
        "details": {"email": [{"description": "Email: is already being used by another user", "error": "DuplicateValue"}]}});
    add_fault(
        &app,
        json!({"fault": {"method": "post", "path": "/api/v2/users", "times": 1,
               "response": {"status": 422, "body": body, "headers": {"x-custom": "yes"}}}}),
    )
    .await;
    let r = app
        .post(
            "/api/v2/users",
            json!({"user": {"name": "N", "email": "n@example.org"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body, body);
    assert_eq!(r.header("x-custom"), Some("yes"));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        app.count_users().await,
        1,
        "a faulted request never reaches deskd"
    );

    // A delay, after which the request is served as usual.
    let slow = add_fault(
        &app,
        json!({"path": "/api/v2/users/me", "response": {"delay_ms": 300}}),
    )
    .await;
    let t = std::time::Instant::now();
    let r = app.get("/api/v2/users/me").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    let r = app
        .send(
            Method::DELETE,
            &format!("/__deskd/faults/{slow}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .send(
            Method::DELETE,
            &format!("/__deskd/faults/{slow}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A dropped connection: no response at all.
    add_fault(
        &app,
        json!({"path": "/api/v2/users/show_many", "times": 1, "response": {"drop": true}}),
    )
    .await;
    let err = app
        .client
        .get(app.url("/api/v2/users/show_many?ids=1"))
        .basic_auth(
            format!("{}/token", crate::helpers::ADMIN_EMAIL),
            Some(crate::helpers::ADMIN_TOKEN),
        )
        .send()
        .await
        .expect_err("the connection is dropped");
    assert!(!err.is_status(), "{err}");
    let r = app.get("/api/v2/users/show_many?ids=1").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the next one is served: {}",
        r.text
    );
    let j = journal(&app, "?path=show_many").await;
    assert_eq!(j["requests"][0]["dropped"], true);
    assert_eq!(j["requests"][0]["status"], serde_json::Value::Null);

    // A fraction with a seed fires on the same requests every run.
    let pattern = |seed: u64| {
        let app = &app;
        async move {
            app.send(Method::DELETE, "/__deskd/faults", &Auth::admin(), None)
                .await;
            add_fault(
                app,
                json!({"path": "/healthz", "fraction": 0.5, "seed": seed, "response": {"status": 503}}),
            )
            .await;
            let mut out = Vec::new();
            for _ in 0..20 {
                out.push(app.get_as(&Auth::None, "/healthz").await.status.as_u16());
            }
            out
        }
    };
    let first = pattern(11).await;
    assert_eq!(first, pattern(11).await);
    let fired = first.iter().filter(|s| **s == 503).count();
    assert!((3..=17).contains(&fired), "{first:?}");
    // A rule matching everything never blocks the controls.
    add_fault(&app, json!({"path": "*", "response": {"status": 500}})).await;
    assert_eq!(
        app.get("/api/v2/users/me").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(app.get("/__deskd/faults").await.status, StatusCode::OK);
    // A reset clears the rules.
    assert_eq!(
        app.post("/__deskd/reset", json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get("/api/v2/users/me").await.status, StatusCode::OK);

    // Rules that make no sense are refused.
    for bad in [
        json!({"path": "/x"}),
        json!({"path": "/x", "response": {"status": 42}}),
        json!({"path": "/x", "times": -1, "response": {"status": 500}}),
        json!({"path": "/x", "response": {"drop": true, "status": 500}}),
    ] {
        let r = app.post("/__deskd/faults", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert_eq!(r.body["error"], "InvalidFault");
    }
}

in_test_mode!(held_jobs_stay_queued_until_released);

async fn held_jobs_stay_queued_until_released(app: TestApp) {
    let r = app.post("/__deskd/jobs/hold", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["jobs"]["held"], true);
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({"users": [{"name": "Held", "email": "held@example.org"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    // Well past the time a job takes (and a worker's poll), it is still queued.
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = app.get(&format!("/api/v2/job_statuses/{id}")).await;
        assert_eq!(r.body["job_status"]["status"], "queued", "{}", r.text);
    }
    assert_eq!(app.count_users().await, 1);
    assert_eq!(app.get("/__deskd").await.body["deskd"]["jobs_held"], true);
    let r = app.post("/__deskd/jobs/release", json!({})).await;
    assert_eq!(r.body["jobs"]["held"], false);
    let started = std::time::Instant::now();
    let done = crate::bulk::wait_for(&app, &id).await;
    assert_eq!(done["status"], "completed");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(app.count_users().await, 2);
}

in_test_mode!(reset_under_concurrent_writes_fails_nothing);

/// Resets while writers run: every write and every reset answers (no 5xx), and what is left is
/// consistent — the owner, and only users written after the last reset.
async fn reset_under_concurrent_writes_fails_nothing(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (app, stop) = (app.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = app
                    .upsert(json!({"name": format!("W{w} {i}"), "email": format!("w{w}-{}@example.org", i % 5),
                                   "organization": {"name": format!("Org {}", i % 3)}}))
                    .await;
                assert!(r.status.is_success(), "{}: {}", r.status, r.text);
                i += 1;
            }
        }));
    }
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let r = app.post("/__deskd/reset", json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(app.get("/api/v2/users/me").await.status, StatusCode::OK);
    let r = app.post("/__deskd/reset", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.count_users().await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM organizations").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM identities WHERE user_id NOT IN (SELECT id FROM users)")
            .await,
        0
    );
}
