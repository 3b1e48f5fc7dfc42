//! Organizations in bulk (create_many, update_many both forms, destroy_many by ids and external
//! ids) as jobs, `job_type` on every job, and the organization reads added beside them:
//! show_many's page keys, autocomplete, count, related.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bulk::wait_for;
use crate::helpers::{Auth, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    organizations_create_many_is_a_job_with_id_and_index_results,
    organizations_create_many_limits_and_bad_input,
    organizations_update_many_by_ids_and_by_list,
    organizations_destroy_many_by_ids_and_external_ids,
    organization_bulk_routes_are_not_swallowed_by_the_id_route,
    organization_bulk_is_for_admins_only,
    job_type_on_every_job,
    organizations_autocomplete_count_and_related,
);

const ORGS: &str = "/api/v2/organizations";

async fn send(app: &TestApp, auth: &Auth, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.send(
        method,
        path,
        auth,
        body.map(|b| serde_json::to_vec(&b).unwrap()),
    )
    .await
}

async fn make(app: &TestApp, org: Value) -> i64 {
    let r = app
        .post(&format!("{ORGS}.json"), json!({ "organization": org }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["organization"]["id"].as_i64().unwrap()
}

/// Submits and waits; returns the finished job.
async fn job(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Value {
    let r = send(app, &Auth::admin(), method, path, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let queued = &r.body["job_status"];
    assert_eq!(queued["status"], "queued", "{}", r.text);
    assert!(queued["results"].is_null());
    wait_for(app, queued["id"].as_str().unwrap()).await
}

async fn count_orgs(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM organizations").await
}

async fn organizations_create_many_is_a_job_with_id_and_index_results(app: TestApp) {
    make(&app, json!({"name": "Taken"})).await;
    let done = job(
        &app,
        Method::POST,
        &format!("{ORGS}/create_many.json"),
        Some(json!({"organizations": [
            {"name": "One", "external_id": "e-1"},
            {"name": "taken"},
            {"name": "Two", "tags": ["a"]},
            "not an object",
            {"name": ""},
        ]})),
    )
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["job_type"], "Bulk Create Organization");
    assert_eq!(done["total"], 5);
    assert_eq!(done["progress"], 5);
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    let one = results[0]["id"].as_i64().unwrap();
    assert_eq!(
        results[0],
        json!({"index": 0, "id": one, "external_id": "e-1"})
    );
    assert_eq!(results[1]["index"], 1);
    assert_eq!(results[1]["error"], "DuplicateValue");
    assert!(results[1]["details"].as_str().unwrap().contains("taken"));
    assert!(results[2]["id"].is_i64());
    assert_eq!(results[3]["error"], "InvalidValue");
    assert_eq!(results[4]["error"], "BlankValue");
    let r = app.get(&format!("{ORGS}/{one}")).await;
    assert_eq!(r.body["organization"]["name"], "One");
    assert_eq!(r.body["organization"]["external_id"], "e-1");
    assert_eq!(count_orgs(&app).await, 3);
}

async fn organizations_create_many_limits_and_bad_input(app: TestApp) {
    let before = count_orgs(&app).await;
    let jobs_before = app.scalar("SELECT COUNT(*) FROM jobs").await;
    let many: Vec<Value> = (0..101).map(|i| json!({"name": format!("O{i}")})).collect();
    let path = format!("{ORGS}/create_many");
    let r = app.post(&path, json!({ "organizations": many })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"error": "TooManyValues", "description": "Parameter  cannot specify more than 100 values", "max_count": 100})
    );
    for body in [
        json!({}),
        json!({"organizations": []}),
        json!({"organizations": null}),
        json!({"organizations": {"name": "x"}}),
        json!({"organization": {"name": "x"}}),
    ] {
        let r = app.post(&path, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert!(r.body["error"].is_string());
    }
    let r = app
        .send(Method::POST, &path, &Auth::admin(), Some(b"{nope".to_vec()))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(count_orgs(&app).await, before);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, jobs_before);
    // Exactly 100 is accepted.
    let hundred: Vec<Value> = (0..100).map(|i| json!({"name": format!("O{i}")})).collect();
    let done = job(
        &app,
        Method::POST,
        &path,
        Some(json!({ "organizations": hundred })),
    )
    .await;
    assert_eq!(done["results"].as_array().unwrap().len(), 100);
    assert_eq!(count_orgs(&app).await, before + 100);
}

async fn organizations_update_many_by_ids_and_by_list(app: TestApp) {
    let a = make(&app, json!({"name": "A"})).await;
    let b = make(&app, json!({"name": "B", "external_id": "ext-b"})).await;
    let c = make(&app, json!({"name": "C"})).await;
    // One object applied to each of ids=.
    let done = job(
        &app,
        Method::PUT,
        &format!("{ORGS}/update_many.json?ids={a},{b},{}", c + 1000),
        Some(json!({"organization": {"notes": "bulk", "tags": ["t"]}})),
    )
    .await;
    assert_eq!(done["job_type"], "Bulk Update Organization");
    let results = done["results"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"index": 0, "id": a, "action": "update", "status": "Updated", "success": true})
    );
    assert_eq!(results[1]["id"], b);
    assert_eq!(results[1]["success"], true);
    assert_eq!(results[2]["id"], c + 1000);
    assert_eq!(results[2]["status"], "Failed");
    assert_eq!(results[2]["success"], false);
    assert_eq!(results[2]["error"], "RecordNotFound");
    for id in [a, b] {
        let o = app.get(&format!("{ORGS}/{id}")).await.body["organization"].clone();
        assert_eq!(o["notes"], "bulk");
        assert_eq!(o["tags"], json!(["t"]));
    }
    assert!(app.get(&format!("{ORGS}/{c}")).await.body["organization"]["notes"].is_null());
    // A list, each naming its organization by id or external_id.
    let done = job(
        &app,
        Method::PUT,
        &format!("{ORGS}/update_many"),
        Some(json!({"organizations": [
            {"id": a, "details": "da"},
            {"external_id": "EXT-B", "details": "db"},
            {"id": c, "name": "B"},
            {"external_id": "nobody", "details": "x"},
        ]})),
    )
    .await;
    let results = done["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "Updated");
    assert_eq!(results[1]["id"], b);
    assert_eq!(results[1]["status"], "Updated");
    assert_eq!(results[2]["error"], "DuplicateValue");
    assert_eq!(results[2]["success"], false);
    assert_eq!(results[3]["error"], "RecordNotFound");
    assert_eq!(
        app.get(&format!("{ORGS}/{b}")).await.body["organization"]["details"],
        "db"
    );
    assert_eq!(
        app.get(&format!("{ORGS}/{c}")).await.body["organization"]["name"],
        "C"
    );
    // ids= with no organization object, or nothing at all, is refused before a job exists.
    let jobs = app.scalar("SELECT COUNT(*) FROM jobs").await;
    for (path, body) in [
        (format!("{ORGS}/update_many?ids={a}"), json!({})),
        (
            format!("{ORGS}/update_many?ids=,"),
            json!({"organization": {}}),
        ),
        (format!("{ORGS}/update_many"), json!({"organizations": []})),
    ] {
        let r = send(&app, &Auth::admin(), Method::PUT, &path, Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
    }
    // The list beside ids= must still be a list a request may carry.
    let nulls: Vec<Value> = (0..101).map(|_| Value::Null).collect();
    let r = send(
        &app,
        &Auth::admin(),
        Method::PUT,
        &format!("{ORGS}/update_many?ids={a}"),
        Some(json!({"organization": {"notes": "x"}, "organizations": nulls})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    for body in [
        json!({"organization": {"notes": "x"}, "organizations": null}),
        json!({"organization": null, "organizations": [{"id": a}]}),
    ] {
        let r = send(
            &app,
            &Auth::admin(),
            Method::PUT,
            &format!("{ORGS}/update_many?ids={a}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
    }
    let r = send(
        &app,
        &Auth::admin(),
        Method::PUT,
        &format!("{ORGS}/update_many?ids={a}"),
        Some(json!({"organization": {"organization_fields": [1], "group_id": "x"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"], "RecordInvalid");
    assert!(r.body["details"]["group_id"].is_array());
    let ids: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let r = send(
        &app,
        &Auth::admin(),
        Method::PUT,
        &format!("{ORGS}/update_many?ids={}", ids.join(",")),
        Some(json!({"organization": {"notes": "x"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "TooManyValues");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, jobs);
}

async fn organizations_destroy_many_by_ids_and_external_ids(app: TestApp) {
    let a = make(&app, json!({"name": "A"})).await;
    let b = make(&app, json!({"name": "B", "external_id": "ext-b"})).await;
    let c = make(&app, json!({"name": "C", "external_id": "ext-c"})).await;
    let member = app
        .upsert(json!({"name": "M", "email": "m@example.org", "organization_id": a}))
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    let done = job(
        &app,
        Method::DELETE,
        &format!("{ORGS}/destroy_many?ids={a},{}", a + 1000),
        None,
    )
    .await;
    assert_eq!(done["job_type"], "Bulk Delete Organization");
    let results = done["results"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"index": 0, "id": a, "action": "delete", "status": "Deleted", "success": true})
    );
    assert_eq!(results[1]["error"], "RecordNotFound");
    assert_eq!(results[1]["success"], false);
    assert_eq!(
        app.get(&format!("{ORGS}/{a}")).await.status,
        StatusCode::NOT_FOUND
    );
    let u = app.get(&format!("/api/v2/users/{member}")).await;
    assert!(u.body["user"]["organization_id"].is_null(), "{}", u.text);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM organization_memberships WHERE user_id = {member}"
        ))
        .await,
        0
    );
    let done = job(
        &app,
        Method::DELETE,
        &format!("{ORGS}/destroy_many.json?external_ids=EXT-B,ext-c"),
        None,
    )
    .await;
    let results = done["results"].as_array().unwrap();
    assert_eq!(results[0]["id"], b);
    assert_eq!(results[1]["id"], c);
    assert_eq!(results[1]["status"], "Deleted");
    assert_eq!(count_orgs(&app).await, 0);
    for path in [
        format!("{ORGS}/destroy_many"),
        format!("{ORGS}/destroy_many?ids="),
        format!("{ORGS}/destroy_many?ids=,,"),
    ] {
        let r = send(&app, &Auth::admin(), Method::DELETE, &path, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        assert_eq!(r.body["error"], "ParameterMissing");
    }
}

async fn organization_bulk_routes_are_not_swallowed_by_the_id_route(app: TestApp) {
    let a = make(&app, json!({"name": "A"})).await;
    for (method, path, body) in [
        (
            Method::PUT,
            format!("{ORGS}/update_many?ids={a}"),
            Some(json!({"organization": {"notes": "n"}})),
        ),
        (Method::DELETE, format!("{ORGS}/destroy_many?ids={a}"), None),
        (
            Method::POST,
            format!("{ORGS}/create_many"),
            Some(json!({"organizations": [{"name": "B"}]})),
        ),
    ] {
        let r = send(&app, &Auth::admin(), method.clone(), &path, body).await;
        assert_eq!(r.status, StatusCode::OK, "{method} {path}: {}", r.text);
        assert!(r.body["job_status"]["id"].is_string());
        wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    }
    // The id routes still answer for ids.
    let b = app.get(&format!("{ORGS}/search?name=B")).await.body["organizations"][0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(app.get(&format!("{ORGS}/{b}")).await.status, StatusCode::OK);
    for path in ["count", "autocomplete?name=b", "show_many?ids=1"] {
        let r = app.get(&format!("{ORGS}/{path}")).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
}

async fn organization_bulk_is_for_admins_only(app: TestApp) {
    let a = make(&app, json!({"name": "A"})).await;
    app.make_user("Agent", "agent@example.org", "agent").await;
    app.make_user("End", "end@example.org", "end-user").await;
    let jobs = app.scalar("SELECT COUNT(*) FROM jobs").await;
    for auth in [
        Auth::as_user("agent@example.org"),
        Auth::as_user("end@example.org"),
        Auth::None,
    ] {
        for (method, path, body) in [
            (
                Method::POST,
                format!("{ORGS}/create_many"),
                Some(json!({"organizations": [{"name": "B"}]})),
            ),
            (
                Method::PUT,
                format!("{ORGS}/update_many?ids={a}"),
                Some(json!({"organization": {"notes": "n"}})),
            ),
            (Method::DELETE, format!("{ORGS}/destroy_many?ids={a}"), None),
        ] {
            let r = send(&app, &auth, method, &path, body).await;
            let expected = if matches!(auth, Auth::None) {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(r.status, expected, "{path}: {}", r.text);
        }
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, jobs);
    assert_eq!(count_orgs(&app).await, 1);
}

async fn job_type_on_every_job(app: TestApp) {
    let u = app.make_user("U", "u@example.org", "end-user").await;
    for (method, path, body, job_type) in [
        (
            Method::POST,
            "/api/v2/users/create_many".to_owned(),
            Some(json!({"users": [{"name": "C", "email": "c@example.org"}]})),
            "Bulk Create User",
        ),
        (
            Method::POST,
            "/api/v2/users/create_or_update_many".to_owned(),
            Some(json!({"users": [{"name": "D", "email": "d@example.org"}]})),
            "Bulk Create Or Update User",
        ),
        (
            Method::PUT,
            format!("/api/v2/users/update_many?ids={u}"),
            Some(json!({"user": {"notes": "n"}})),
            "Bulk Update User",
        ),
        (
            Method::DELETE,
            format!("/api/v2/users/destroy_many?ids={u}"),
            None,
            "Bulk Delete User",
        ),
    ] {
        let r = send(&app, &Auth::admin(), method, &path, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["job_status"]["job_type"], job_type);
        let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
        assert_eq!(wait_for(&app, &id).await["job_type"], job_type);
    }
    let list = app.get("/api/v2/job_statuses").await;
    for j in list.body["job_statuses"].as_array().unwrap() {
        assert!(j["job_type"].as_str().unwrap().starts_with("Bulk "));
    }
}

async fn organizations_autocomplete_count_and_related(app: TestApp) {
    let acme = make(&app, json!({"name": "Acme"})).await;
    make(&app, json!({"name": "acme west"})).await;
    make(&app, json!({"name": "Beta"})).await;
    let r = app.get(&format!("{ORGS}/autocomplete?name=AC")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let names: Vec<&str> = r.body["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme", "acme west"]);
    assert_eq!(r.body["count"], 2);
    assert!(r.body["next_page"].is_null());
    let r = app
        .get(&format!("{ORGS}/autocomplete.json?name=ac&per_page=1"))
        .await;
    assert_eq!(r.body["organizations"].as_array().unwrap().len(), 1);
    assert!(r.body["next_page"].as_str().unwrap().contains("page=2"));
    // A LIKE wildcard is a character like any other.
    assert_eq!(
        app.get(&format!("{ORGS}/autocomplete?name=%25")).await.body["count"],
        0
    );
    for path in [
        "autocomplete",
        "autocomplete?name=",
        "autocomplete?name=%20",
    ] {
        let r = app.get(&format!("{ORGS}/{path}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.body["error"], "ParameterMissing");
    }

    let r = app.get(&format!("{ORGS}/count")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["count"]["value"], 3);
    assert!(
        r.body["count"]["refreshed_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    app.upsert(json!({"name": "M1", "email": "m1@example.org", "organization_id": acme}))
        .await;
    let m2 = app
        .upsert(json!({"name": "M2", "email": "m2@example.org", "organization_id": acme}))
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    let r = app.get(&format!("{ORGS}/{acme}/related")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"organization_related": {"tickets_count": 0, "users_count": 2}})
    );
    app.send(
        Method::DELETE,
        &format!("/api/v2/users/{m2}"),
        &Auth::admin(),
        None,
    )
    .await;
    assert_eq!(
        app.get(&format!("{ORGS}/{acme}/related")).await.body["organization_related"]["users_count"],
        1
    );
    assert_eq!(
        app.get(&format!("{ORGS}/{}/related", acme + 999))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{ORGS}/nope/related")).await.status,
        StatusCode::NOT_FOUND
    );
    app.make_user("End", "end@example.org", "end-user").await;
    for path in ["count", "autocomplete?name=a", &format!("{acme}/related")] {
        let r = app
            .get_as(&Auth::as_user("end@example.org"), &format!("{ORGS}/{path}"))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
}
