//! The Organizations endpoints: create, create_or_update, list, show, show_many, search, update,
//! delete and the users of an organization.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    create_answers_201_with_location_and_recorded_shape,
    names_are_unique_case_insensitively,
    external_ids_are_unique_case_insensitively,
    missing_or_blank_name_is_422,
    bad_input_is_rejected_and_writes_nothing,
    lenient_values_and_unknown_keys,
    only_admins_write,
    show_and_unknown_ids,
    create_or_update_matches_by_id_then_external_id_never_name,
    update_changes_only_given_keys,
    list_paginates_by_id,
    show_many_by_ids_and_external_ids,
    search_by_name_or_external_id,
    delete_detaches_users,
    organization_users_paginate,
    racing_creates_of_one_name_make_one_organization,
);

const ORGS: &str = "/api/v2/organizations";

async fn count_orgs(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM organizations").await
}

async fn create(app: &TestApp, org: Value) -> Resp {
    app.post(&format!("{ORGS}.json"), json!({ "organization": org }))
        .await
}

/// Creates an organization and returns its id.
async fn make(app: &TestApp, org: Value) -> i64 {
    let r = create(app, org).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["organization"]["id"].as_i64().unwrap()
}

async fn put(app: &TestApp, auth: &Auth, path: &str, body: Value) -> Resp {
    app.send(
        Method::PUT,
        path,
        auth,
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await
}

async fn delete(app: &TestApp, auth: &Auth, path: &str) -> Resp {
    app.send(Method::DELETE, path, auth, None).await
}

fn names(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {body}"))
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

async fn create_answers_201_with_location_and_recorded_shape(app: TestApp) {
    let r = create(&app, json!({"name": "  testOrganizationNone "})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let org = &r.body["organization"];
    let id = org["id"].as_i64().unwrap();
    let url = app.url(&format!("/api/v2/organizations/{id}.json"));
    assert_eq!(r.header("location"), Some(url.as_str()));
    assert_eq!(org["url"], json!(url));
    assert_eq!(
        keys(org),
        [
            "url",
            "id",
            "name",
            "shared_tickets",
            "shared_comments",
            "external_id",
            "created_at",
            "updated_at",
            "domain_names",
            "details",
            "notes",
            "group_id",
            "tags",
            "organization_fields"
        ]
    );
    assert_eq!(org["name"], "testOrganizationNone", "the name is trimmed");
    assert_eq!(
        (
            org["shared_tickets"].clone(),
            org["shared_comments"].clone(),
            org["external_id"].clone(),
            org["domain_names"].clone(),
            org["details"].clone(),
            org["notes"].clone(),
            org["group_id"].clone(),
            org["tags"].clone(),
            org["organization_fields"].clone(),
        ),
        (
            json!(false),
            json!(false),
            Value::Null,
            json!([]),
            Value::Null,
            Value::Null,
            Value::Null,
            json!([]),
            json!({})
        )
    );
    let ts = org["created_at"].as_str().unwrap();
    assert!(ts.len() == 20 && ts.ends_with('Z'), "{ts}");
    assert_eq!(org["updated_at"], org["created_at"]);

    // Every writable field.
    for k in ["tier", "region"] {
        crate::custom_fields::make_field(
            &app,
            "organization_fields",
            json!({"key": k, "title": k}),
        )
        .await;
    }
    let r = create(
        &app,
        json!({"name": "Full", "external_id": "Ext-1", "details": "d", "notes": "n", "group_id": 7,
               "shared_tickets": true, "shared_comments": true, "domain_names": ["a.example", "b.example"],
               "tags": ["vip", "gold"], "organization_fields": {"tier": "1", "region": null}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let org = &r.body["organization"];
    assert_eq!(org["external_id"], "Ext-1");
    assert_eq!(org["details"], "d");
    assert_eq!(org["notes"], "n");
    assert_eq!(org["group_id"], 7);
    assert_eq!(org["shared_tickets"], true);
    assert_eq!(org["shared_comments"], true);
    assert_eq!(org["domain_names"], json!(["a.example", "b.example"]));
    assert_eq!(org["tags"], json!(["vip", "gold"]));
    assert_eq!(
        org["organization_fields"],
        json!({"tier": "1", "region": null})
    );
    // What was answered is what is stored.
    let id = org["id"].as_i64().unwrap();
    let shown = app.get(&format!("{ORGS}/{id}")).await;
    assert_eq!(shown.body["organization"], *org);
}

async fn names_are_unique_case_insensitively(app: TestApp) {
    make(&app, json!({"name": "Lorem Ipsum"})).await;
    let before = app.table_counts().await;
    for dup in ["Lorem Ipsum", "lorem ipsum", "  LOREM IPSUM  "] {
        let r = create(&app, json!({"name": dup})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(
            r.body,
            json!({"error": "RecordInvalid", "description": "Record validation errors",
                   "details": {"name": [{"description": format!("Name: {} has already been taken", dup.trim()), "error": "DuplicateValue"}]}})
        );
    }
    assert_eq!(app.table_counts().await, before, "nothing written");
    // Renaming another organization onto the name is refused the same way.
    let other = make(&app, json!({"name": "Other"})).await;
    let r = put(
        &app,
        &Auth::admin(),
        &format!("{ORGS}/{other}"),
        json!({"organization": {"name": "LOREM ipsum"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["details"]["name"][0]["error"], "DuplicateValue");
    assert_eq!(
        app.get(&format!("{ORGS}/{other}")).await.body["organization"]["name"],
        "Other"
    );
    // Renaming an organization to another case of its own name is fine.
    let r = put(
        &app,
        &Auth::admin(),
        &format!("{ORGS}/{other}"),
        json!({"organization": {"name": "OTHER"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["organization"]["name"], "OTHER");
}

async fn external_ids_are_unique_case_insensitively(app: TestApp) {
    make(&app, json!({"name": "A", "external_id": "Acme-1"})).await;
    let before = count_orgs(&app).await;
    let r = create(&app, json!({"name": "B", "external_id": " acme-1 "})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"], "RecordInvalid");
    assert_eq!(
        r.body["details"]["external_id"][0]["error"], "DuplicateValue",
        "{}",
        r.text
    );
    assert_eq!(count_orgs(&app).await, before);
    let b = make(&app, json!({"name": "B", "external_id": "b-1"})).await;
    let r = put(
        &app,
        &Auth::admin(),
        &format!("{ORGS}/{b}"),
        json!({"organization": {"external_id": "ACME-1"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["details"]["external_id"][0]["error"],
        "DuplicateValue"
    );
    // Blank external ids are no external ids, and many organizations may have none.
    make(&app, json!({"name": "C", "external_id": ""})).await;
    make(&app, json!({"name": "D", "external_id": null})).await;
}

async fn missing_or_blank_name_is_422(app: TestApp) {
    let before = count_orgs(&app).await;
    for org in [
        json!({}),
        json!({"name": null}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"external_id": "x"}),
    ] {
        let r = create(&app, org.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{org}: {}",
            r.text
        );
        assert_eq!(r.body["error"], "RecordInvalid");
        assert_eq!(r.body["description"], "Record validation errors");
        assert!(
            r.body["details"]["name"][0]["description"]
                .as_str()
                .unwrap()
                .starts_with("Name: "),
            "{}",
            r.text
        );
    }
    // Blanking the name of an existing organization is refused too.
    let id = make(&app, json!({"name": "Keep"})).await;
    let r = put(
        &app,
        &Auth::admin(),
        &format!("{ORGS}/{id}"),
        json!({"organization": {"name": " "}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.body["details"]["name"].is_array());
    assert_eq!(count_orgs(&app).await, before + 1);
}

async fn bad_input_is_rejected_and_writes_nothing(app: TestApp) {
    let id = make(&app, json!({"name": "Target", "notes": "kept"})).await;
    let target = format!("{ORGS}/{id}");
    let before = app.table_counts().await;
    let cases: Vec<(Method, String, Vec<u8>, StatusCode, &str)> = vec![
        (
            Method::POST,
            ORGS.to_owned(),
            br#"{"organization": {"name": "x",}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "InvalidJSON",
        ),
        (
            Method::POST,
            ORGS.to_owned(),
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "InvalidJSON",
        ),
        (
            Method::POST,
            ORGS.to_owned(),
            b"[1, 2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "InvalidJSON",
        ),
        (
            Method::POST,
            ORGS.to_owned(),
            br#"{"name": "no wrapper"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "ParameterMissing",
        ),
        (
            Method::POST,
            ORGS.to_owned(),
            br#"{"organization": null}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "ParameterMissing",
        ),
        (
            Method::POST,
            ORGS.to_owned(),
            br#"{"organization": "Acme"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            Method::POST,
            format!("{ORGS}/create_or_update"),
            br#"{"organization": ["Acme"]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            Method::PUT,
            target.clone(),
            br#"{"organization": {"notes": "x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "InvalidJSON",
        ),
        (
            Method::PUT,
            target.clone(),
            br#"{"notes": "x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "ParameterMissing",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let r = app
            .send(method.clone(), &path, &Auth::admin(), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            status,
            "{method} {path} {}: {}",
            String::from_utf8_lossy(&body),
            r.text
        );
        assert_eq!(r.body["error"], code, "{}", r.text);
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
    }
    // Wrong types of known keys: 422 on that key.
    for (field, value) in [
        ("name", json!(["x"])),
        ("group_id", json!("abc")),
        ("group_id", json!(1.5)),
        ("shared_tickets", json!("yes")),
        ("shared_comments", json!({"a": 1})),
        ("domain_names", json!(5)),
        ("domain_names", json!([{"a": 1}])),
        ("tags", json!({"a": 1})),
        ("organization_fields", json!([1])),
        ("details", json!({})),
        ("external_id", json!([])),
    ] {
        let mut org = json!({"name": "Typed", "notes": "changed"});
        org[field] = value.clone();
        for (method, path) in [
            (Method::POST, ORGS.to_owned()),
            (Method::POST, format!("{ORGS}/create_or_update")),
            (Method::PUT, target.clone()),
        ] {
            let r = app
                .send(
                    method.clone(),
                    &path,
                    &Auth::admin(),
                    Some(serde_json::to_vec(&json!({ "organization": org })).unwrap()),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {path} {field}={value}: {}",
                r.text
            );
            assert_eq!(r.body["error"], "RecordInvalid");
            assert!(r.body["details"][field].is_array(), "{field}: {}", r.text);
        }
    }
    let r = app
        .post(
            &format!("{ORGS}/create_or_update"),
            json!({"organization": {"id": "abc", "name": "X"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.body["details"]["id"].is_array());
    assert_eq!(app.table_counts().await, before, "nothing written");
    let shown = app.get(&target).await;
    assert_eq!(shown.body["organization"]["name"], "Target");
    assert_eq!(shown.body["organization"]["notes"], "kept");
}

async fn lenient_values_and_unknown_keys(app: TestApp) {
    // Chilkat-style strings, read-only keys and unknown keys.
    let r = create(
        &app,
        json!({"name": "Lenient", "group_id": "42", "shared_tickets": "true", "shared_comments": "false",
               "id": 5, "url": "x", "created_at": "never", "whatever": {"a": [1]},
               "tags": "one two,one", "domain_names": " x.example ,y.example "}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let org = &r.body["organization"];
    assert_ne!(org["id"], 5);
    assert_eq!(org["group_id"], 42);
    assert_eq!(org["shared_tickets"], true);
    assert_eq!(org["shared_comments"], false);
    assert_eq!(org["tags"], json!(["one", "two"]));
    assert_eq!(org["domain_names"], json!(["x.example", "y.example"]));
    assert_ne!(org["created_at"], "never");
    // Numeric strings clear with "" and null.
    let id = org["id"].as_i64().unwrap();
    let r = put(
        &app,
        &Auth::admin(),
        &format!("{ORGS}/{id}.json"),
        json!({"organization": {"group_id": ""}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["organization"]["group_id"], Value::Null);
}

async fn only_admins_write(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    app.make_user("End", "end@example.org", "end-user").await;
    let agent = Auth::as_user("agent@example.org");
    let end = Auth::as_user("end@example.org");
    let id = make(&app, json!({"name": "Guarded", "external_id": "g-1"})).await;
    let before = app.table_counts().await;
    let forbidden = json!({"error": "Forbidden", "description": "You do not have access to this page. Please contact the account owner of this help desk for further help."});
    for who in [&agent, &end] {
        let r = app
            .post_as(who, ORGS, json!({"organization": {"name": "Nope"}}))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert_eq!(r.body, forbidden);
        let r = app
            .post_as(
                who,
                &format!("{ORGS}/create_or_update"),
                json!({"organization": {"external_id": "g-1", "name": "Renamed"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        let r = put(
            &app,
            who,
            &format!("{ORGS}/{id}"),
            json!({"organization": {"name": "Renamed"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        let r = delete(&app, who, &format!("{ORGS}/{id}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }
    assert_eq!(app.table_counts().await, before, "nothing written");
    // Agents read; end users do not; anonymous callers are not authenticated.
    for path in [
        ORGS.to_owned(),
        format!("{ORGS}/{id}"),
        format!("{ORGS}/show_many?ids={id}"),
        format!("{ORGS}/search?name=guarded"),
        format!("{ORGS}/{id}/users"),
    ] {
        assert_eq!(
            app.get_as(&agent, &path).await.status,
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            app.get_as(&end, &path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            app.get_as(&Auth::None, &path).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        app.post_as(&Auth::None, ORGS, json!({"organization": {"name": "Anon"}}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn show_and_unknown_ids(app: TestApp) {
    let id = make(&app, json!({"name": "Shown"})).await;
    for path in [format!("{ORGS}/{id}"), format!("{ORGS}/{id}.json")] {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["organization"]["id"], id);
        assert_eq!(r.body["organization"]["name"], "Shown");
    }
    let not_found = json!({"error": "RecordNotFound", "description": "Not found"});
    for path in [
        format!("{ORGS}/{}", id + 1000),
        format!("{ORGS}/abc"),
        format!("{ORGS}/-1"),
        format!("{ORGS}/0.json"),
        format!("{ORGS}/99999999999999999999999"),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(r.body, not_found);
        let r = put(
            &app,
            &Auth::admin(),
            &path,
            json!({"organization": {"name": "x"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "PUT {path}: {}", r.text);
        assert_eq!(r.body, not_found);
        let r = delete(&app, &Auth::admin(), &path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "DELETE {path}: {}", r.text);
        assert_eq!(r.body, not_found);
        let r = app.get(&format!("{path}/users")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}/users: {}", r.text);
    }
    assert_eq!(count_orgs(&app).await, 1);
}

async fn create_or_update_matches_by_id_then_external_id_never_name(app: TestApp) {
    let path = format!("{ORGS}/create_or_update.json");
    let r = app
        .post(
            &path,
            json!({"organization": {"name": "Sierra", "external_id": "SIERRA-1", "notes": "first"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["organization"]["id"].as_i64().unwrap();
    let url = app.url(&format!("/api/v2/organizations/{id}.json"));
    assert_eq!(r.header("location"), Some(url.as_str()));

    // By external id, in another case: an update, which takes the request's case.
    let r = app
        .post(
            &path,
            json!({"organization": {"name": "Sierra On-Line", "external_id": " sierra-1 "}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("location"), Some(url.as_str()));
    let org = &r.body["organization"];
    assert_eq!(org["id"], id);
    assert_eq!(org["name"], "Sierra On-Line");
    assert_eq!(org["external_id"], "sierra-1");
    assert_eq!(org["notes"], "first", "keys not given are kept");

    // By id: an update, even of the external id.
    let r = app
        .post(
            &path,
            json!({"organization": {"id": id.to_string(), "external_id": "sierra-2"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["organization"]["id"], id);
    assert_eq!(r.body["organization"]["external_id"], "sierra-2");
    assert_eq!(r.body["organization"]["name"], "Sierra On-Line");

    // An unknown id is a 404, never a create.
    let before = count_orgs(&app).await;
    let r = app
        .post(
            &path,
            json!({"organization": {"id": id + 1000, "name": "Ghost"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.body["error"], "RecordNotFound");

    // The name is no matching key: repeating a name-only call is a duplicate.
    let r = app
        .post(&path, json!({"organization": {"name": "sierra on-line"}}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"error": "RecordInvalid", "description": "Record validation errors",
               "details": {"name": [{"description": "Name: sierra on-line has already been taken", "error": "DuplicateValue"}]}})
    );
    // A new external id with a taken name: a create that is refused.
    let r = app
        .post(
            &path,
            json!({"organization": {"name": "Sierra On-Line", "external_id": "new"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["details"]["name"][0]["error"], "DuplicateValue");
    // A blank id is no id.
    let r = app
        .post(&path, json!({"organization": {"id": "", "name": "Fresh"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(count_orgs(&app).await, before + 1);
    // A name-only create is a create.
    let r = app
        .post(&path, json!({"organization": {"name": "Only a name"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn update_changes_only_given_keys(app: TestApp) {
    for (k, t) in [("tier", "text"), ("region", "text"), ("size", "integer")] {
        crate::custom_fields::make_field(
            &app,
            "organization_fields",
            json!({"key": k, "title": k, "type": t}),
        )
        .await;
    }
    let id = make(
        &app,
        json!({"name": "Before", "external_id": "u-1", "details": "d", "notes": "n", "group_id": 3,
               "shared_tickets": true, "domain_names": ["a.example"], "tags": ["a", "b"],
               "organization_fields": {"tier": "gold", "region": "eu"}}),
    )
    .await;
    let path = format!("{ORGS}/{id}.json");
    let created = app.get(&path).await.body["organization"].clone();
    let r = put(
        &app,
        &Auth::admin(),
        &path,
        json!({"organization": {"notes": "new notes", "tags": ["b", "c"],
               "organization_fields": {"tier": null, "size": 10}, "id": 1, "url": "ignored"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.header("location").is_none());
    let org = &r.body["organization"];
    assert_eq!(org["id"], id);
    assert_eq!(org["name"], "Before");
    assert_eq!(org["external_id"], "u-1");
    assert_eq!(org["details"], "d");
    assert_eq!(org["notes"], "new notes");
    assert_eq!(org["group_id"], 3);
    assert_eq!(org["shared_tickets"], true);
    assert_eq!(org["domain_names"], json!(["a.example"]));
    assert_eq!(org["tags"], json!(["b", "c"]), "tags are replaced");
    assert_eq!(
        org["organization_fields"],
        json!({"tier": null, "region": "eu", "size": 10}),
        "fields merge by key; null clears a key"
    );
    assert_eq!(org["created_at"], created["created_at"]);
    assert_eq!(app.get(&path).await.body["organization"], *org);

    // null clears the nullable ones; an empty body object changes nothing.
    let r = put(
        &app,
        &Auth::admin(),
        &path,
        json!({"organization": {"external_id": null, "details": null, "group_id": null,
               "domain_names": [], "tags": null, "shared_tickets": false, "name": " After "}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let org = r.body["organization"].clone();
    assert_eq!(org["name"], "After");
    assert_eq!(org["external_id"], Value::Null);
    assert_eq!(org["details"], Value::Null);
    assert_eq!(org["group_id"], Value::Null);
    assert_eq!(org["domain_names"], json!([]));
    assert_eq!(org["tags"], json!([]));
    assert_eq!(org["shared_tickets"], false);
    assert_eq!(org["notes"], "new notes");
    let r = put(&app, &Auth::admin(), &path, json!({"organization": {}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["organization"], org);
    // The released external id may be taken by another organization now.
    make(&app, json!({"name": "Heir", "external_id": "U-1"})).await;
}

async fn list_paginates_by_id(app: TestApp) {
    let empty = app.get(ORGS).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(
        empty.body,
        json!({"organizations": [], "next_page": null, "previous_page": null, "count": 0})
    );
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(make(&app, json!({"name": format!("Org {i}")})).await);
    }
    let all = app.get(&format!("{ORGS}.json")).await;
    assert_eq!(
        keys(&all.body),
        ["organizations", "next_page", "previous_page", "count"]
    );
    assert_eq!(all.body["count"], 5);
    assert_eq!(all.body["next_page"], Value::Null);
    assert_eq!(all.body["previous_page"], Value::Null);
    let got: Vec<i64> = all.body["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids, "by id, ascending");

    let p1 = app.get(&format!("{ORGS}?per_page=2")).await;
    assert_eq!(names(&p1.body, "organizations"), ["Org 0", "Org 1"]);
    assert_eq!(p1.body["count"], 5);
    assert_eq!(p1.body["previous_page"], Value::Null);
    let next = p1.body["next_page"].as_str().unwrap().to_owned();
    assert_eq!(
        next,
        app.url("/api/v2/organizations.json?page=2&per_page=2")
    );
    // next_page is followed as given.
    let p2 = app.get(next.strip_prefix(&app.url("")).unwrap()).await;
    assert_eq!(names(&p2.body, "organizations"), ["Org 2", "Org 3"]);
    assert_eq!(
        p2.body["previous_page"],
        json!(app.url("/api/v2/organizations.json?page=1&per_page=2"))
    );
    let p3 = app.get(&format!("{ORGS}?page=3&per_page=2")).await;
    assert_eq!(names(&p3.body, "organizations"), ["Org 4"]);
    assert_eq!(p3.body["next_page"], Value::Null);
    let beyond = app.get(&format!("{ORGS}?page=9&per_page=2")).await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert_eq!(beyond.body["organizations"], json!([]));
    assert_eq!(beyond.body["next_page"], Value::Null);
    assert_eq!(beyond.body["count"], 5);
    // per_page is clamped to 1..=100; nonsense falls back to the defaults.
    let big = app.get(&format!("{ORGS}?per_page=1000&page=x")).await;
    assert_eq!(big.status, StatusCode::OK, "{}", big.text);
    assert_eq!(big.body["organizations"].as_array().unwrap().len(), 5);
    let one = app.get(&format!("{ORGS}?per_page=0")).await;
    assert_eq!(one.body["organizations"].as_array().unwrap().len(), 1);
    assert_eq!(
        one.body["next_page"],
        json!(app.url("/api/v2/organizations.json?page=2&per_page=1"))
    );
}

async fn show_many_by_ids_and_external_ids(app: TestApp) {
    let a = make(&app, json!({"name": "A", "external_id": "ext-a"})).await;
    let b = make(&app, json!({"name": "B", "external_id": "EXT-B"})).await;
    let _c = make(&app, json!({"name": "C"})).await;
    let r = app
        .get(&format!(
            "{ORGS}/show_many.json?ids={b},{},{a},abc",
            a + 999
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        ["organizations", "next_page", "previous_page", "count"]
    );
    assert_eq!(r.body["count"], 2);
    assert_eq!(names(&r.body, "organizations"), ["A", "B"]);
    assert_eq!(r.body["organizations"][0]["id"], a);
    let r = app
        .get(&format!("{ORGS}/show_many?external_ids=ext-b, EXT-A ,nope"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(names(&r.body, "organizations"), ["A", "B"]);
    // An empty list is a missing parameter, as on users and job statuses.
    let r = app.get(&format!("{ORGS}/show_many?ids=")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], "ParameterMissing");

    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let r = app
        .get(&format!("{ORGS}/show_many?ids={}", many.join(",")))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"error": "TooManyValues", "description": "Parameter ids cannot specify more than 100 values", "max_count": 100})
    );
    let r = app
        .get(&format!("{ORGS}/show_many?external_ids={}", many.join(",")))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], "TooManyValues");
    assert_eq!(r.body["max_count"], 100);
    // Exactly 100 is fine.
    let r = app
        .get(&format!("{ORGS}/show_many?ids={}", many[..100].join(",")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn search_by_name_or_external_id(app: TestApp) {
    let a = make(&app, json!({"name": "Acme Corp", "external_id": "Acme-7"})).await;
    make(&app, json!({"name": "Acme Corporation"})).await;
    let r = app
        .get(&format!("{ORGS}/search.json?name=acme%20corp"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        ["organizations", "next_page", "previous_page", "count"]
    );
    assert_eq!(
        names(&r.body, "organizations"),
        ["Acme Corp"],
        "exact match"
    );
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["organizations"][0]["id"], a);
    let r = app.get(&format!("{ORGS}/search?external_id=ACME-7")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(names(&r.body, "organizations"), ["Acme Corp"]);
    let r = app.get(&format!("{ORGS}/search?name=nobody")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"organizations": [], "next_page": null, "previous_page": null, "count": 0})
    );
    for bad in ["", "?name=a&external_id=b", "?other=1"] {
        let r = app.get(&format!("{ORGS}/search{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert!(r.body["error"].is_string(), "{}", r.text);
        assert!(r.body["description"].is_string(), "{}", r.text);
    }
    // Search reflects writes at once.
    put(
        &app,
        &Auth::admin(),
        &format!("{ORGS}/{a}"),
        json!({"organization": {"name": "Renamed"}}),
    )
    .await;
    let r = app.get(&format!("{ORGS}/search?name=RENAMED")).await;
    assert_eq!(names(&r.body, "organizations"), ["Renamed"]);
}

async fn delete_detaches_users(app: TestApp) {
    let org = make(&app, json!({"name": "Doomed", "external_id": "doomed"})).await;
    let keep = make(&app, json!({"name": "Kept"})).await;
    let r = app
        .upsert(json!({"name": "Member", "email": "member@example.org", "organization_id": org}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let member = r.body["user"]["id"].as_i64().unwrap();
    assert_eq!(r.body["user"]["organization_id"], org);
    let r = app
        .upsert(json!({"name": "Other", "email": "other@example.org", "organization_id": keep}))
        .await;
    let other = r.body["user"]["id"].as_i64().unwrap();
    let users_before = app.count_users().await;

    let r = app
        .send(
            Method::DELETE,
            &format!("{ORGS}/{org}.json"),
            &Auth::admin(),
            Some(br#"{"organization": {"id": 1}}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(r.text, "");
    assert_eq!(
        app.get(&format!("{ORGS}/{org}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&app, &Auth::admin(), &format!("{ORGS}/{org}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count_users().await, users_before, "users stay");
    let m = app.get(&format!("/api/v2/users/{member}")).await;
    assert_eq!(m.body["user"]["organization_id"], Value::Null, "{}", m.text);
    let o = app.get(&format!("/api/v2/users/{other}")).await;
    assert_eq!(o.body["user"]["organization_id"], keep);
    // The name and external id are free again.
    make(&app, json!({"name": "doomed", "external_id": "DOOMED"})).await;
}

async fn organization_users_paginate(app: TestApp) {
    let org = make(&app, json!({"name": "Staffed"})).await;
    let empty = make(&app, json!({"name": "Empty"})).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = app
            .upsert(json!({"name": format!("U{i}"), "email": format!("u{i}@example.org"), "organization_id": org.to_string()}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["user"]["id"].as_i64().unwrap());
    }
    app.upsert(json!({"name": "Outsider", "email": "out@example.org"}))
        .await;

    let r = app.get(&format!("{ORGS}/{org}/users.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        ["users", "next_page", "previous_page", "count"]
    );
    assert_eq!(names(&r.body, "users"), ["U0", "U1", "U2"]);
    assert_eq!(r.body["count"], 3);
    // Full user objects, as GET /users/{id} answers them.
    let shown = app.get(&format!("/api/v2/users/{}", ids[0])).await;
    assert_eq!(r.body["users"][0], shown.body["user"]);

    let p1 = app.get(&format!("{ORGS}/{org}/users?per_page=2")).await;
    assert_eq!(names(&p1.body, "users"), ["U0", "U1"]);
    assert_eq!(
        p1.body["next_page"],
        json!(app.url(&format!(
            "/api/v2/organizations/{org}/users.json?page=2&per_page=2"
        )))
    );
    assert_eq!(p1.body["previous_page"], Value::Null);
    let p2 = app
        .get(&format!("{ORGS}/{org}/users?per_page=2&page=2"))
        .await;
    assert_eq!(names(&p2.body, "users"), ["U2"]);
    assert_eq!(p2.body["next_page"], Value::Null);
    assert!(p2.body["previous_page"].is_string());

    let r = app.get(&format!("{ORGS}/{empty}/users")).await;
    assert_eq!(
        r.body,
        json!({"users": [], "next_page": null, "previous_page": null, "count": 0})
    );
    // A user moved elsewhere leaves the list.
    app.upsert(json!({"email": "u1@example.org", "organization_id": empty}))
        .await;
    let r = app.get(&format!("{ORGS}/{org}/users")).await;
    assert_eq!(names(&r.body, "users"), ["U0", "U2"]);
    let r = app.get(&format!("{ORGS}/{empty}/users")).await;
    assert_eq!(names(&r.body, "users"), ["U1"]);
}

async fn racing_creates_of_one_name_make_one_organization(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let name = if i % 2 == 0 { "Race" } else { "race " };
            create(&app, json!({"name": name, "notes": format!("{i}")}))
                .await
                .status
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(count_orgs(&app).await, 1);
}
