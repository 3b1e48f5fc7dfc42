//! Organization memberships: users in several organizations, one of them the default
//! (`user.organization_id`); the endpoints, the jobs, and every other write that touches them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bulk::wait_for;
use crate::helpers::{Auth, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    membership_create_show_and_lists,
    membership_bad_input_writes_nothing,
    membership_make_default_both_forms,
    membership_delete_moves_the_default,
    user_organization_id_replaces_memberships,
    organization_users_and_delete_follow_memberships,
    membership_permissions_by_role,
    membership_jobs_create_many_and_destroy_many,
    concurrent_membership_writes_keep_one_default,
    merging_users_moves_memberships,
);

const MS: &str = "/api/v2/organization_memberships";

async fn send(app: &TestApp, auth: &Auth, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.send(
        method,
        path,
        auth,
        body.map(|b| serde_json::to_vec(&b).unwrap()),
    )
    .await
}

async fn org(app: &TestApp, name: &str) -> i64 {
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": name}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["organization"]["id"].as_i64().unwrap()
}

async fn join_as(app: &TestApp, auth: &Auth, user: i64, org: i64) -> Resp {
    send(
        app,
        auth,
        Method::POST,
        MS,
        Some(json!({"organization_membership": {"user_id": user, "organization_id": org}})),
    )
    .await
}

async fn join(app: &TestApp, user: i64, org: i64) -> i64 {
    let r = join_as(app, &Auth::admin(), user, org).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["organization_membership"]["id"].as_i64().unwrap()
}

async fn user_org(app: &TestApp, user: i64) -> Value {
    app.get(&format!("/api/v2/users/{user}")).await.body["user"]["organization_id"].clone()
}

/// The user's memberships as (organization id, default) pairs, as listed.
async fn memberships_of(app: &TestApp, user: i64) -> Vec<(i64, bool)> {
    let r = app
        .get(&format!("/api/v2/users/{user}/organization_memberships"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["organization_memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["organization_id"].as_i64().unwrap(),
                m["default"] == json!(true),
            )
        })
        .collect()
}

async fn count_memberships(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM organization_memberships")
        .await
}

async fn membership_create_show_and_lists(app: TestApp) {
    let user = app.make_user("U", "u@example.org", "end-user").await;
    let (beta, alpha) = (org(&app, "Beta").await, org(&app, "alpha").await);
    let r = join_as(&app, &Auth::admin(), user, beta).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let m = &r.body["organization_membership"];
    let id = m["id"].as_i64().unwrap();
    let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "url",
            "user_id",
            "organization_id",
            "default",
            "organization_name",
            "view_tickets",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(m["default"], true);
    assert_eq!(m["organization_name"], "Beta");
    assert_eq!(m["user_id"], user);
    assert_eq!(m["view_tickets"], false);
    assert!(
        m["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/organization_memberships/{id}.json"))
    );
    assert_eq!(r.header("location"), m["url"].as_str());
    assert_eq!(user_org(&app, user).await, beta);

    let second = join(&app, user, alpha).await;
    let r = app.get(&format!("{MS}/{second}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["organization_membership"]["default"].is_null(),
        "{}",
        r.text
    );
    assert_eq!(
        user_org(&app, user).await,
        beta,
        "the first stays the default"
    );
    // A user's list: the default first, then by organization name.
    assert_eq!(
        memberships_of(&app, user).await,
        [(beta, true), (alpha, false)]
    );
    let r = app
        .get(&format!(
            "/api/v2/organizations/{alpha}/organization_memberships"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["organization_memberships"][0]["id"], second);
    let r = app.get(MS).await;
    assert_eq!(r.body["count"], 2);
    let r = app.get(&format!("{MS}.json?page[size]=1")).await;
    assert_eq!(
        r.body["organization_memberships"].as_array().unwrap().len(),
        1
    );
    assert_eq!(r.body["meta"]["has_more"], true);
    let r = app
        .get(&format!(
            "/api/v2/users/{user}/organization_memberships/{second}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // The staff view_tickets rule.
    let agent = app.make_user("A", "a@example.org", "agent").await;
    let r = join_as(&app, &Auth::admin(), agent, alpha).await;
    assert_eq!(r.body["organization_membership"]["view_tickets"], true);
    // Unknown ids.
    for path in [
        format!("{MS}/{}", second + 999),
        format!("{MS}/nope"),
        format!("/api/v2/users/{}/organization_memberships", user + 999),
        format!(
            "/api/v2/organizations/{}/organization_memberships",
            alpha + 999
        ),
        format!("/api/v2/users/{agent}/organization_memberships/{second}"),
    ] {
        assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    // `default: true` on create takes the default over.
    let gamma = org(&app, "Gamma").await;
    let r = send(
        &app,
        &Auth::admin(),
        Method::POST,
        MS,
        Some(json!({"organization_membership": {"user_id": user, "organization_id": gamma, "default": true}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["organization_membership"]["default"], true);
    assert_eq!(user_org(&app, user).await, gamma);
    assert_eq!(
        memberships_of(&app, user).await,
        [(gamma, true), (alpha, false), (beta, false)]
    );
    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("/api/v2/users/{user}/organizations/{gamma}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        user_org(&app, user).await,
        beta,
        "the oldest other is the default again"
    );
    // The organizations a user belongs to, by name.
    let r = app
        .get(&format!("/api/v2/users/{user}/organizations"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let names: Vec<&str> = r.body["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "Beta"]);
    assert_eq!(r.body["count"], 2);
    let r = app
        .get(&format!(
            "/api/v2/users/{user}/organizations.json?per_page=1&page=2"
        ))
        .await;
    assert_eq!(r.body["organizations"][0]["name"], "Beta");
    assert_eq!(
        app.get(&format!("/api/v2/users/{}/organizations", user + 999))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn membership_bad_input_writes_nothing(app: TestApp) {
    let user = app.make_user("U", "u@example.org", "end-user").await;
    let a = org(&app, "A").await;
    join(&app, user, a).await;
    let before = count_memberships(&app).await;
    let r = join_as(&app, &Auth::admin(), user, a).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"], "RecordInvalid");
    assert_eq!(r.body["details"]["user_id"][0]["error"], "DuplicateValue");
    for (body, field) in [
        (
            json!({"organization_membership": {"organization_id": a}}),
            "user",
        ),
        (
            json!({"organization_membership": {"user_id": user}}),
            "organization",
        ),
        (
            json!({"organization_membership": {"user_id": user + 999, "organization_id": a}}),
            "user",
        ),
        (
            json!({"organization_membership": {"user_id": user, "organization_id": a + 999}}),
            "organization",
        ),
        (
            json!({"organization_membership": {"user_id": "abc", "organization_id": a}}),
            "user_id",
        ),
    ] {
        let r = send(&app, &Auth::admin(), Method::POST, MS, Some(body.clone())).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(r.body["details"][field].is_array(), "{body}: {}", r.text);
    }
    for body in [json!({}), json!({"organization_membership": 5})] {
        let r = send(&app, &Auth::admin(), Method::POST, MS, Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    assert_eq!(count_memberships(&app).await, before);
    assert_eq!(user_org(&app, user).await, a);
}

async fn membership_make_default_both_forms(app: TestApp) {
    let user = app.make_user("U", "u@example.org", "end-user").await;
    let (a, b) = (org(&app, "A").await, org(&app, "B").await);
    join(&app, user, a).await;
    let mb = join(&app, user, b).await;
    let r = send(
        &app,
        &Auth::admin(),
        Method::PUT,
        &format!("/api/v2/users/{user}/organization_memberships/{mb}/make_default"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.body["organization_memberships"].as_array().unwrap();
    assert_eq!(list[0]["id"], mb);
    assert_eq!(list[0]["default"], true);
    assert!(list[1]["default"].is_null());
    assert_eq!(user_org(&app, user).await, b);
    let r = send(
        &app,
        &Auth::admin(),
        Method::PUT,
        &format!("/api/v2/users/{user}/organizations/{a}/make_default.json"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(user_org(&app, user).await, a);
    assert_eq!(memberships_of(&app, user).await, [(a, true), (b, false)]);
    let other = app.make_user("O", "o@example.org", "end-user").await;
    for path in [
        format!(
            "/api/v2/users/{user}/organization_memberships/{}/make_default",
            mb + 999
        ),
        format!("/api/v2/users/{other}/organization_memberships/{mb}/make_default"),
        format!(
            "/api/v2/users/{user}/organizations/{}/make_default",
            b + 999
        ),
        format!(
            "/api/v2/users/{}/organizations/{a}/make_default",
            user + 999
        ),
    ] {
        let r = send(&app, &Auth::admin(), Method::PUT, &path, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
    }
    assert_eq!(user_org(&app, user).await, a);
}

async fn membership_delete_moves_the_default(app: TestApp) {
    let user = app.make_user("U", "u@example.org", "end-user").await;
    let (a, b, c) = (
        org(&app, "A").await,
        org(&app, "B").await,
        org(&app, "C").await,
    );
    let ma = join(&app, user, a).await;
    join(&app, user, b).await;
    join(&app, user, c).await;
    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("{MS}/{ma}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(r.text, "");
    assert_eq!(
        user_org(&app, user).await,
        b,
        "the oldest other becomes the default"
    );
    assert_eq!(memberships_of(&app, user).await, [(b, true), (c, false)]);
    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("{MS}/{ma}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The other documented form.
    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("/api/v2/users/{user}/organizations/{b}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(user_org(&app, user).await, c);
    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("/api/v2/users/{user}/organizations/{b}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let mc = memberships_of(&app, user).await;
    assert_eq!(mc, [(c, true)]);
    let id = app
        .get(&format!("/api/v2/users/{user}/organization_memberships"))
        .await
        .body["organization_memberships"][0]["id"]
        .as_i64()
        .unwrap();
    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("/api/v2/users/{user}/organization_memberships/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(user_org(&app, user).await.is_null());
    assert_eq!(count_memberships(&app).await, 0);
}

async fn user_organization_id_replaces_memberships(app: TestApp) {
    let (a, b, c) = (
        org(&app, "A").await,
        org(&app, "B").await,
        org(&app, "C").await,
    );
    // Created with an organization: one default membership.
    let r = app
        .upsert(json!({"name": "U", "email": "u@example.org", "organization_id": a}))
        .await;
    let user = r.body["user"]["id"].as_i64().unwrap();
    assert_eq!(memberships_of(&app, user).await, [(a, true)]);
    join(&app, user, b).await;
    // PUT organization_id: all memberships become that one.
    let r = app
        .put(
            &format!("/api/v2/users/{user}"),
            json!({"user": {"organization_id": c}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(memberships_of(&app, user).await, [(c, true)]);
    // Setting it to an organization it already belongs to keeps that membership, drops others.
    join(&app, user, a).await;
    let kept = app
        .get(&format!("/api/v2/users/{user}/organization_memberships"))
        .await
        .body["organization_memberships"][1]["id"]
        .clone();
    app.upsert(json!({"email": "u@example.org", "organization_id": a}))
        .await;
    let r = app
        .get(&format!("/api/v2/users/{user}/organization_memberships"))
        .await;
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["organization_memberships"][0]["id"], kept);
    assert_eq!(r.body["organization_memberships"][0]["default"], true);
    // organization: {name} does the same, creating the organization when needed.
    app.upsert(json!({"email": "u@example.org", "organization": {"name": "New Org"}}))
        .await;
    let now = memberships_of(&app, user).await;
    assert_eq!(now.len(), 1);
    assert_eq!(user_org(&app, user).await, now[0].0);
    // A write that does not mention the organization leaves memberships alone.
    join(&app, user, b).await;
    app.upsert(json!({"email": "u@example.org", "notes": "n"}))
        .await;
    assert_eq!(memberships_of(&app, user).await.len(), 2);
    // Bulk update_many too.
    let r = app
        .put(
            &format!("/api/v2/users/update_many?ids={user}"),
            json!({"user": {"organization_id": b}}),
        )
        .await;
    wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    assert_eq!(memberships_of(&app, user).await, [(b, true)]);
    // null removes them all.
    app.put(
        &format!("/api/v2/users/{user}"),
        json!({"user": {"organization_id": null}}),
    )
    .await;
    assert!(memberships_of(&app, user).await.is_empty());
    assert!(user_org(&app, user).await.is_null());
    // An unknown organization is a 422 and changes nothing.
    join(&app, user, a).await;
    let r = app
        .put(
            &format!("/api/v2/users/{user}"),
            json!({"user": {"organization_id": c + 999}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(memberships_of(&app, user).await, [(a, true)]);
}

async fn organization_users_and_delete_follow_memberships(app: TestApp) {
    let (a, b) = (org(&app, "A").await, org(&app, "B").await);
    let u1 = app
        .upsert(json!({"name": "U1", "email": "u1@example.org", "organization_id": a}))
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    let u2 = app
        .upsert(json!({"name": "U2", "email": "u2@example.org", "organization_id": b}))
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    join(&app, u1, b).await;
    let r = app.get(&format!("/api/v2/organizations/{b}/users")).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut ids: Vec<i64> = r.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [u1, u2]);
    assert_eq!(r.body["count"], 2);
    // Deleting a user's default organization moves the user to its other membership.
    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("/api/v2/organizations/{a}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(user_org(&app, u1).await, b);
    assert_eq!(memberships_of(&app, u1).await, [(b, true)]);
    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("/api/v2/organizations/{b}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(user_org(&app, u1).await.is_null());
    assert!(user_org(&app, u2).await.is_null());
    assert_eq!(count_memberships(&app).await, 0);
}

async fn membership_permissions_by_role(app: TestApp) {
    let end = app.make_user("End", "end@example.org", "end-user").await;
    let other_end = app
        .make_user("Other", "other@example.org", "end-user")
        .await;
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let agent2 = app.make_user("Agent2", "agent2@example.org", "agent").await;
    let (a, b) = (org(&app, "A").await, org(&app, "B").await);
    let as_agent = Auth::as_user("agent@example.org");
    let as_end = Auth::as_user("end@example.org");
    // Agents manage end users' memberships only.
    let r = join_as(&app, &as_agent, end, a).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mine = r.body["organization_membership"]["id"].as_i64().unwrap();
    let r = join_as(&app, &as_agent, agent2, a).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let theirs = join(&app, agent2, a).await;
    join(&app, other_end, b).await;
    for (method, path) in [
        (Method::DELETE, format!("{MS}/{theirs}")),
        (
            Method::PUT,
            format!("/api/v2/users/{agent2}/organizations/{a}/make_default"),
        ),
    ] {
        let r = send(&app, &as_agent, method, &path, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
    }
    let r = send(
        &app,
        &as_agent,
        Method::PUT,
        &format!("/api/v2/users/{end}/organizations/{a}/make_default"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // End users read their own memberships and nothing else, and write none.
    let r = app.get_as(&as_end, MS).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["organization_memberships"][0]["id"], mine);
    let r = app
        .get_as(
            &as_end,
            &format!("/api/v2/users/{end}/organization_memberships"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for path in [
        format!("/api/v2/users/{other_end}/organization_memberships"),
        format!("{MS}/{mine}"),
        format!("/api/v2/organizations/{a}/organization_memberships"),
    ] {
        assert_eq!(
            app.get_as(&as_end, &path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let before = count_memberships(&app).await;
    let r = join_as(&app, &as_end, end, b).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, &as_end, Method::DELETE, &format!("{MS}/{mine}"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.get_as(&Auth::None, MS).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(count_memberships(&app).await, before);
    let _ = agent;
}

async fn membership_jobs_create_many_and_destroy_many(app: TestApp) {
    let end = app.make_user("End", "end@example.org", "end-user").await;
    let agent2 = app.make_user("Agent2", "agent2@example.org", "agent").await;
    app.make_user("Agent", "agent@example.org", "agent").await;
    let (a, b) = (org(&app, "A").await, org(&app, "B").await);
    let r = send(
        &app,
        &Auth::as_user("agent@example.org"),
        Method::POST,
        &format!("{MS}/create_many"),
        Some(json!({"organization_memberships": [
            {"user_id": end, "organization_id": a},
            {"user_id": end, "organization_id": b},
            {"user_id": end, "organization_id": a},
            {"user_id": agent2, "organization_id": a},
            {"user_id": end},
        ]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["job_status"]["job_type"],
        "Bulk Create Organization Membership"
    );
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let results = done["results"].as_array().unwrap();
    let m0 = results[0]["id"].as_i64().unwrap();
    assert_eq!(results[0], json!({"index": 0, "id": m0}));
    assert!(results[1]["id"].is_i64());
    assert_eq!(results[2]["error"], "DuplicateValue");
    assert_eq!(results[3]["error"], "PermissionDenied");
    assert_eq!(results[4]["error"], "BlankValue");
    assert_eq!(memberships_of(&app, end).await, [(a, true), (b, false)]);
    let m1 = results[1]["id"].as_i64().unwrap();

    let r = send(
        &app,
        &Auth::admin(),
        Method::DELETE,
        &format!("{MS}/destroy_many?ids={m0},{}", m1 + 999),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    assert_eq!(done["job_type"], "Bulk Delete Organization Membership");
    let results = done["results"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"index": 0, "id": m0, "action": "delete", "status": "Deleted", "success": true})
    );
    assert_eq!(results[1]["error"], "RecordNotFound");
    assert_eq!(results[1]["success"], false);
    assert_eq!(memberships_of(&app, end).await, [(b, true)]);
    assert_eq!(user_org(&app, end).await, b);

    // Refused before a job exists.
    let jobs = app.scalar("SELECT COUNT(*) FROM jobs").await;
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"user_id": end, "organization_id": a}))
        .collect();
    for (method, path, body, status) in [
        (
            Method::POST,
            format!("{MS}/create_many"),
            Some(json!({"organization_memberships": many})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("{MS}/create_many"),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("{MS}/destroy_many"),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("{MS}/destroy_many?external_ids=x"),
            None,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = send(&app, &Auth::admin(), method, &path, body).await;
        assert_eq!(r.status, status, "{path}: {}", r.text);
    }
    let r = send(
        &app,
        &Auth::as_user("end@example.org"),
        Method::DELETE,
        &format!("{MS}/destroy_many?ids={m1}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, jobs);
}

/// Racing creates for one user (and an organization deleted meanwhile) leave exactly one
/// default membership, mirrored in `user.organization_id`, and no membership of a deleted
/// organization.
async fn concurrent_membership_writes_keep_one_default(app: TestApp) {
    let user = app.make_user("U", "u@example.org", "end-user").await;
    let mut orgs = Vec::new();
    for i in 0..8 {
        orgs.push(org(&app, &format!("Org {i}")).await);
    }
    let doomed = orgs[7];
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for o in orgs.clone() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            join_as(&app, &Auth::admin(), user, o).await.status
        }));
    }
    let deleter = {
        let app = app.clone();
        tokio::spawn(async move {
            send(
                &app,
                &Auth::admin(),
                Method::DELETE,
                &format!("/api/v2/organizations/{doomed}"),
                None,
            )
            .await
            .status
        })
    };
    for t in tasks {
        let status = t.await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{status}"
        );
    }
    assert_eq!(deleter.await.unwrap(), StatusCode::NO_CONTENT);
    let list = memberships_of(&app, user).await;
    assert!(list.len() >= 7, "{list:?}");
    assert!(list.iter().all(|(o, _)| *o != doomed));
    let defaults: Vec<i64> = list.iter().filter(|(_, d)| *d).map(|(o, _)| *o).collect();
    assert_eq!(defaults.len(), 1, "{list:?}");
    assert_eq!(user_org(&app, user).await, defaults[0]);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM organization_memberships WHERE user_id = {user} AND is_default = 1"
        ))
        .await,
        1
    );
}

/// `PUT /users/{id}/merge`: the source's memberships move to the target (its default stays).
async fn merging_users_moves_memberships(app: TestApp) {
    let (a, b, c) = (
        org(&app, "A").await,
        org(&app, "B").await,
        org(&app, "C").await,
    );
    let source = app
        .upsert(json!({"name": "Src", "email": "src@example.org", "organization_id": a}))
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    join(&app, source, b).await;
    let target = app
        .upsert(json!({"name": "Dst", "email": "dst@example.org", "organization_id": c}))
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    join(&app, target, b).await;
    let r = app
        .put(
            &format!("/api/v2/users/{source}/merge"),
            json!({"user": {"id": target}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(user_org(&app, target).await, c);
    assert_eq!(
        memberships_of(&app, target).await,
        [(c, true), (a, false), (b, false)]
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM organization_memberships WHERE user_id = {source}"
        ))
        .await,
        0
    );
    // A target without an organization takes the source's default.
    let s2 = app
        .upsert(json!({"name": "Src2", "email": "src2@example.org", "organization_id": b}))
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    let t2 = app.make_user("Dst2", "dst2@example.org", "end-user").await;
    let r = app
        .put(
            &format!("/api/v2/users/{s2}/merge"),
            json!({"user": {"id": t2}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(user_org(&app, t2).await, b);
    assert_eq!(memberships_of(&app, t2).await, [(b, true)]);
}
