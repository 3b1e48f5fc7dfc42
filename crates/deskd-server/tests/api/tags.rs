//! The Tags endpoints of users and organizations: list, add (PUT), set (POST, 201), remove
//! (DELETE, body or `?tags=`), as Zendesk's Tags reference has them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    user_tags_list_add_set_remove,
    organization_tags_list_add_set_remove,
    tag_writes_go_through_the_user_rules,
    bad_tags_are_refused_and_write_nothing,
    unknown_and_deleted_ids_are_404,
);

async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Resp {
    send_as(app, &Auth::admin(), method, path, body).await
}

async fn send_as(
    app: &TestApp,
    auth: &Auth,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
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

/// The same sequence on either kind of owner; `read_back` is the owner's own GET.
async fn sequence(app: &TestApp, base: &str, read_back: &str, key: &str) {
    let r = send(app, Method::GET, base, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"tags": []}));
    let r = send(
        app,
        Method::POST,
        &format!("{base}.json"),
        Some(json!({"tags": ["vip", "beta"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body, json!({"tags": ["vip", "beta"]}));
    let r = send(
        app,
        Method::PUT,
        base,
        Some(json!({"tags": ["beta", "gold"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"tags": ["vip", "beta", "gold"]}));
    // A string of space- or comma-separated tags reads as a list.
    let r = send(
        app,
        Method::PUT,
        base,
        Some(json!({"tags": "silver, bronze"})),
    )
    .await;
    assert_eq!(
        r.body["tags"],
        json!(["vip", "beta", "gold", "silver", "bronze"])
    );
    let r = send(
        app,
        Method::DELETE,
        base,
        Some(json!({"tags": ["beta", "nope"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"tags": ["vip", "gold", "silver", "bronze"]}));
    let r = send(
        app,
        Method::DELETE,
        &format!("{base}?tags=silver,bronze"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"tags": ["vip", "gold"]}));
    // Set replaces; kept tags keep their place.
    let r = send(
        app,
        Method::POST,
        base,
        Some(json!({"tags": ["new", "gold"]})),
    )
    .await;
    assert_eq!(r.body, json!({"tags": ["gold", "new"]}));
    assert_eq!(
        send(app, Method::GET, base, None).await.body,
        json!({"tags": ["gold", "new"]})
    );
    assert_eq!(
        app.get(read_back).await.body[key]["tags"],
        json!(["gold", "new"])
    );
    // An empty set clears.
    let r = send(app, Method::POST, base, Some(json!({"tags": []}))).await;
    assert_eq!(r.body, json!({"tags": []}));
}

async fn user_tags_list_add_set_remove(app: TestApp) {
    let id = app
        .make_user("Tagged", "tagged@example.org", "end-user")
        .await;
    let before = app.get(&format!("/api/v2/users/{id}")).await.body["user"]["updated_at"].clone();
    sequence(
        &app,
        &format!("/api/v2/users/{id}/tags"),
        &format!("/api/v2/users/{id}"),
        "user",
    )
    .await;
    assert!(
        app.get(&format!("/api/v2/users/{id}")).await.body["user"]["updated_at"].as_str()
            >= before.as_str()
    );
}

async fn organization_tags_list_add_set_remove(app: TestApp) {
    let id = org(&app, "Tagged Org").await;
    sequence(
        &app,
        &format!("/api/v2/organizations/{id}/tags"),
        &format!("/api/v2/organizations/{id}"),
        "organization",
    )
    .await;
}

async fn tag_writes_go_through_the_user_rules(app: TestApp) {
    let end = app.make_user("End", "end@example.org", "end-user").await;
    let other = app.make_user("Other", "other@example.org", "agent").await;
    app.make_user("Agent", "agent@example.org", "agent").await;
    let agent = Auth::as_user("agent@example.org");
    let enduser = Auth::as_user("end@example.org");
    let body = Some(json!({"tags": ["t"]}));
    // Agents tag end users, not other agents; end users tag nobody, themselves included.
    let r = send_as(
        &app,
        &agent,
        Method::PUT,
        &format!("/api/v2/users/{end}/tags"),
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for method in [Method::PUT, Method::POST, Method::DELETE] {
        let r = send_as(
            &app,
            &agent,
            method.clone(),
            &format!("/api/v2/users/{other}/tags"),
            body.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}");
        let r = send_as(
            &app,
            &enduser,
            method.clone(),
            &format!("/api/v2/users/{end}/tags"),
            body.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}");
    }
    let r = send_as(
        &app,
        &enduser,
        Method::GET,
        &format!("/api/v2/users/{end}/tags"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send_as(
        &app,
        &Auth::None,
        Method::GET,
        &format!("/api/v2/users/{end}/tags"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get(&format!("/api/v2/users/{other}")).await.body["user"]["tags"],
        json!([])
    );
    assert_eq!(
        app.get(&format!("/api/v2/users/{end}")).await.body["user"]["tags"],
        json!(["t"])
    );
    // Tags on the user are searchable at once.
    let r = app.get("/api/v2/users/search?query=tags%3At").await;
    assert_eq!(r.body["count"], 1, "{}", r.text);
}

async fn bad_tags_are_refused_and_write_nothing(app: TestApp) {
    let id = app.make_user("Bad", "bad@example.org", "end-user").await;
    let o = org(&app, "Bad Org").await;
    send(
        &app,
        Method::POST,
        &format!("/api/v2/users/{id}/tags"),
        Some(json!({"tags": ["keep"]})),
    )
    .await;
    let stamp = app
        .scalar(&format!("SELECT updated_at FROM users WHERE id = {id}"))
        .await;
    let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let thousand: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    for base in [
        format!("/api/v2/users/{id}/tags"),
        format!("/api/v2/organizations/{o}/tags"),
    ] {
        for method in [Method::PUT, Method::POST, Method::DELETE] {
            // No `tags`: 400 for an add or a set; a remove naming none removes nothing.
            let r = send(&app, method.clone(), &base, Some(json!({"labels": ["x"]}))).await;
            if method == Method::DELETE {
                assert_eq!(r.status, StatusCode::OK, "{base}: {}", r.text);
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::BAD_REQUEST,
                    "{method} {base}: {}",
                    r.text
                );
                assert_eq!(r.body["error"], "ParameterMissing");
            }
            // Not JSON: 400.
            let r = app
                .send(
                    method.clone(),
                    &base,
                    &Auth::admin(),
                    Some(b"{nope".to_vec()),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            assert_eq!(r.body["error"], "InvalidJSON");
            // Wrong types, U+0000, more than 1,000: 422 naming tags.
            for bad in [
                json!({"tags": [{"a": 1}]}),
                json!({"tags": 7}),
                json!({"tags": ["ok", "n\u{0}ul"]}),
                json!({"tags": many}),
            ] {
                let r = send(&app, method.clone(), &base, Some(bad.clone())).await;
                assert_eq!(
                    r.status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{method} {base} {bad}: {}",
                    r.text
                );
                assert_eq!(r.body["error"], "RecordInvalid");
                assert!(r.body["details"]["tags"].is_array(), "{}", r.text);
            }
        }
        // A DELETE with neither body nor query removes nothing (node-zendesk sends it so).
        let before = send(&app, Method::GET, &base, None).await.body;
        let r = send(&app, Method::DELETE, &base, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, before);
        // U+0000 in the query is refused before routing.
        let r = send(&app, Method::DELETE, &format!("{base}?tags=a%00b"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    // A list may reach 1,000 tags, not pass it.
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v2/organizations/{o}/tags"),
        Some(json!({"tags": thousand})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = send(
        &app,
        Method::PUT,
        &format!("/api/v2/organizations/{o}/tags"),
        Some(json!({"tags": ["one more"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get(&format!("/api/v2/organizations/{o}/tags"))
            .await
            .body["tags"]
            .as_array()
            .unwrap()
            .len(),
        1000
    );
    assert_eq!(
        app.get(&format!("/api/v2/users/{id}/tags")).await.body,
        json!({"tags": ["keep"]})
    );
    assert_eq!(
        app.scalar(&format!("SELECT updated_at FROM users WHERE id = {id}"))
            .await,
        stamp
    );
}

async fn unknown_and_deleted_ids_are_404(app: TestApp) {
    let gone = app.make_user("Gone", "gone@example.org", "end-user").await;
    send(
        &app,
        Method::POST,
        &format!("/api/v2/users/{gone}/tags"),
        Some(json!({"tags": ["old"]})),
    )
    .await;
    assert_eq!(
        send(&app, Method::DELETE, &format!("/api/v2/users/{gone}"), None)
            .await
            .status,
        StatusCode::OK
    );
    for base in [
        "/api/v2/users/9223372036854775807/tags",
        "/api/v2/organizations/9223372036854775807/tags",
        "/api/v2/users/abc/tags",
        "/api/v2/organizations/0/tags",
    ] {
        for method in [Method::GET, Method::PUT, Method::POST, Method::DELETE] {
            let r = send(&app, method.clone(), base, Some(json!({"tags": ["x"]}))).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {base}");
            assert_eq!(
                r.body,
                json!({"error": "RecordNotFound", "description": "Not found"})
            );
        }
    }
    // A soft-deleted user still reads, but is gone for writes.
    assert_eq!(
        send(
            &app,
            Method::GET,
            &format!("/api/v2/users/{gone}/tags"),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    for method in [Method::PUT, Method::POST, Method::DELETE] {
        let r = send(
            &app,
            method.clone(),
            &format!("/api/v2/users/{gone}/tags"),
            Some(json!({"tags": ["x"]})),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
    }
}
