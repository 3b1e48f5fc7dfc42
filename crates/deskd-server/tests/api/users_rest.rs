//! The rest of the users endpoints: related, autocomplete, merge, and an admin setting a
//! password (`POST /users/{id}/password`) with the password requirements.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    related_counts_with_zendesk_keys,
    autocomplete_matches_name_prefixes,
    merge_moves_identities_tags_and_organization,
    merge_refusals_write_nothing,
    admins_set_passwords_and_requirements_are_listed,
);

async fn put(app: &TestApp, auth: &Auth, path: &str, body: Value) -> Resp {
    app.send(
        Method::PUT,
        path,
        auth,
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await
}

async fn related_counts_with_zendesk_keys(app: TestApp) {
    let id = app.make_user("Rel", "rel@example.org", "end-user").await;
    app.make_user("Agent", "agent@example.org", "agent").await;
    let r = app.get(&format!("/api/v2/users/{id}/related.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"user_related": {"assigned_tickets": 0, "ccd_tickets": 0, "organization_subscriptions": 0, "requested_tickets": 0}})
    );
    let r = app
        .get_as(
            &Auth::as_user("agent@example.org"),
            &format!("/api/v2/users/{id}/related"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .get_as(
            &Auth::as_user("rel@example.org"),
            &format!("/api/v2/users/{id}/related"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .get_as(&Auth::None, &format!("/api/v2/users/{id}/related"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for bad in ["9223372036854775807", "abc", "0", "-1"] {
        let r = app.get(&format!("/api/v2/users/{bad}/related")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(
            r.body,
            json!({"error": "RecordNotFound", "description": "Not found"})
        );
    }
}

async fn autocomplete_matches_name_prefixes(app: TestApp) {
    let roger = app
        .make_user("Roger Wilco", "roger@example.org", "end-user")
        .await;
    let rob = app.make_user("rob Ross", "rob@example.org", "agent").await;
    app.make_user("Ramona", "ramona@example.org", "end-user")
        .await;
    app.make_user("Percent%", "pct@example.org", "end-user")
        .await;
    let gone = app
        .make_user("Roderick", "rod@example.org", "end-user")
        .await;
    app.send(
        Method::DELETE,
        &format!("/api/v2/users/{gone}"),
        &Auth::admin(),
        None,
    )
    .await;
    let r = app
        .upsert(json!({"name": "Rogue Foreign", "identities": [{"type": "foreign", "value": "ext-77"}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let names = |r: &Resp| -> Vec<String> {
        r.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app.get("/api/v2/users/autocomplete.json?name=ro").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(names(&r), ["Roger Wilco", "rob Ross"]);
    assert_eq!(r.body["count"], 2);
    assert_eq!(r.body["users"][0]["id"], roger);
    assert_eq!(r.body["users"][1]["id"], rob);
    assert_eq!(
        names(&app.get("/api/v2/users/autocomplete?name=ROG").await),
        ["Roger Wilco"]
    );
    assert_eq!(
        names(&app.get("/api/v2/users/autocomplete?name=%20wil").await),
        Vec::<String>::new()
    );
    // LIKE's wildcards are plain characters here.
    assert_eq!(
        names(&app.get("/api/v2/users/autocomplete?name=_").await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app.get("/api/v2/users/autocomplete?name=%25").await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app.get("/api/v2/users/autocomplete?name=Percent%25").await),
        ["Percent%"]
    );
    // Offset pages, at most 100 a page.
    let r = app
        .get("/api/v2/users/autocomplete?name=r&per_page=1")
        .await;
    assert_eq!(names(&r), ["Roger Wilco"]);
    assert_eq!(r.body["count"], 3);
    assert!(
        r.body["next_page"].as_str().unwrap().contains("name=r"),
        "{}",
        r.text
    );
    let r = app
        .get("/api/v2/users/autocomplete?name=r&per_page=1000")
        .await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 3);
    for bad in [
        "/api/v2/users/autocomplete",
        "/api/v2/users/autocomplete?name=",
        "/api/v2/users/autocomplete?name=%20",
    ] {
        let r = app.get(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["error"], "ParameterMissing");
    }
    let r = app.get("/api/v2/users/autocomplete?name=r%00").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    app.make_user("Agent", "agent@example.org", "agent").await;
    assert_eq!(
        app.get_as(
            &Auth::as_user("agent@example.org"),
            "/api/v2/users/autocomplete?name=ro"
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(
            &Auth::as_user("roger@example.org"),
            "/api/v2/users/autocomplete?name=ro"
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_as(&Auth::None, "/api/v2/users/autocomplete?name=ro")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn merge_moves_identities_tags_and_organization(app: TestApp) {
    let r = app
        .upsert(json!({"name": "Source", "email": "src@example.org", "external_id": "src-1",
                       "identities": [{"type": "email", "value": "src2@example.org"}, {"type": "twitter", "value": "srctw"}],
                       "tags": ["a", "b"], "organization": {"name": "Merge Org"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let source = r.body["user"]["id"].as_i64().unwrap();
    let org = r.body["user"]["organization_id"].as_i64().unwrap();
    let r = app
        .upsert(json!({"name": "Target", "email": "dst@example.org", "tags": ["b", "c"]}))
        .await;
    let target = r.body["user"]["id"].as_i64().unwrap();
    app.make_user("Agent", "agent@example.org", "agent").await;
    let r = put(
        &app,
        &Auth::as_user("agent@example.org"),
        &format!("/api/v2/users/{source}/merge.json"),
        json!({"user": {"id": target}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let merged = &r.body["user"];
    assert_eq!(merged["id"], target);
    assert_eq!(merged["email"], "dst@example.org");
    assert_eq!(merged["tags"], json!(["b", "c", "a"]));
    assert_eq!(merged["organization_id"], org);
    assert_eq!(merged["active"], true);
    let ids = app.get(&format!("/api/v2/users/{target}/identities")).await;
    let mut values: Vec<(String, bool)> = ids.body["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["value"].as_str().unwrap().to_owned(),
                i["primary"].as_bool().unwrap(),
            )
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        [
            ("dst@example.org".to_owned(), true),
            ("src2@example.org".to_owned(), false),
            ("src@example.org".to_owned(), false),
            ("srctw".to_owned(), true)
        ]
    );
    // The source is soft-deleted: still readable, inactive, its external id released.
    let src = app.get(&format!("/api/v2/users/{source}")).await.body["user"].clone();
    assert_eq!(src["active"], false);
    assert_eq!(src["email"], Value::Null);
    assert_eq!(src["external_id"], Value::Null);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM identities WHERE user_id = {source}"
        ))
        .await,
        0
    );
    // Its emails now name the target.
    let r = app
        .upsert(json!({"email": "src2@example.org", "notes": "found"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["id"], target);
    // A merged source is gone for further merges.
    let r = put(
        &app,
        &Auth::admin(),
        &format!("/api/v2/users/{source}/merge"),
        json!({"user": {"id": target}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A numeric string names the target too; a target with an organization keeps its own.
    let other = app.upsert(json!({"name": "Other", "email": "other@example.org", "organization": {"name": "Second Org"}})).await;
    let (other, other_org) = (
        other.body["user"]["id"].as_i64().unwrap(),
        other.body["user"]["organization_id"].clone(),
    );
    let r = put(
        &app,
        &Auth::admin(),
        &format!("/api/v2/users/{other}/merge"),
        json!({"user": {"id": target.to_string()}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["organization_id"], org);
    assert_ne!(r.body["user"]["organization_id"], other_org);
}

async fn merge_refusals_write_nothing(app: TestApp) {
    let a = app.make_user("A", "a@example.org", "end-user").await;
    let b = app.make_user("B", "b@example.org", "end-user").await;
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let agent_auth = Auth::as_user("agent@example.org");
    let admin = Auth::admin();
    let end_auth = Auth::as_user("a@example.org");
    let none = Auth::None;
    let before = (
        app.table_counts().await,
        app.scalar("SELECT CAST(SUM(updated_at) AS BIGINT) FROM users")
            .await,
        app.scalar("SELECT CAST(SUM(active) AS BIGINT) FROM users")
            .await,
    );
    let cases: Vec<(&Auth, String, Value, u16)> = vec![
        (
            &admin,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": a}}),
            422,
        ),
        (
            &admin,
            format!("/api/v2/users/{agent}/merge"),
            json!({"user": {"id": b}}),
            422,
        ),
        (
            &admin,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": agent}}),
            422,
        ),
        (
            &agent_auth,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": agent}}),
            403,
        ),
        (
            &end_auth,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": b}}),
            403,
        ),
        (
            &none,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": b}}),
            401,
        ),
        (
            &admin,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": 9223372036854775807i64}}),
            404,
        ),
        (
            &admin,
            "/api/v2/users/9223372036854775807/merge".to_owned(),
            json!({"user": {"id": b}}),
            404,
        ),
        (
            &admin,
            "/api/v2/users/abc/merge".to_owned(),
            json!({"user": {"id": b}}),
            404,
        ),
        (
            &admin,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {}}),
            400,
        ),
        (
            &admin,
            format!("/api/v2/users/{a}/merge"),
            json!({"id": b}),
            400,
        ),
        (
            &admin,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": "b\u{0}"}}),
            400,
        ),
        (
            &admin,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": [b]}}),
            400,
        ),
        (
            &admin,
            format!("/api/v2/users/{a}/merge"),
            json!({"user": {"id": -4}}),
            400,
        ),
    ];
    for (auth, path, body, expected) in cases {
        let r = put(&app, auth, &path, body.clone()).await;
        assert_eq!(r.status.as_u16(), expected, "{path} {body}: {}", r.text);
        assert!(r.body["error"].is_string(), "{}", r.text);
    }
    let r = app
        .send(
            Method::PUT,
            &format!("/api/v2/users/{a}/merge"),
            &admin,
            Some(b"{nope".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let after = (
        app.table_counts().await,
        app.scalar("SELECT CAST(SUM(updated_at) AS BIGINT) FROM users")
            .await,
        app.scalar("SELECT CAST(SUM(active) AS BIGINT) FROM users")
            .await,
    );
    assert_eq!(before, after);
}

async fn admins_set_passwords_and_requirements_are_listed(app: TestApp) {
    let end = app.make_user("End", "end@example.org", "end-user").await;
    let other = app
        .make_user("Other", "other@example.org", "end-user")
        .await;
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let body = |p: &str| Some(serde_json::to_vec(&json!({"password": p})).unwrap());
    let r = app
        .send(
            Method::POST,
            &format!("/api/v2/users/{end}/password.json"),
            &Auth::admin(),
            body("a fine new password"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({}));
    let me = app
        .get_as(
            &Auth::Password("end@example.org".into(), "a fine new password".into()),
            "/api/v2/users/me",
        )
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["id"], end);
    // Only admins POST, even for themselves; PUT still changes one's own.
    for (auth, id) in [
        (Auth::as_user("agent@example.org"), end),
        (Auth::as_user("end@example.org"), end),
        (Auth::as_user("agent@example.org"), agent),
    ] {
        let r = app
            .send(
                Method::POST,
                &format!("/api/v2/users/{id}/password"),
                &auth,
                body("another long password"),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = app
        .send(Method::PUT, &format!("/api/v2/users/{end}/password"), &Auth::Password("end@example.org".into(), "a fine new password".into()),
              Some(serde_json::to_vec(&json!({"password": "third password!", "previous_password": "a fine new password"})).unwrap()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Bad input: nothing changes.
    for (b, status) in [
        (json!({"password": "short"}), 422),
        (json!({"password": "long enough\u{0}x"}), 422),
        (json!({}), 400),
        (json!({"password": 12345678}), 400),
    ] {
        let r = app
            .send(
                Method::POST,
                &format!("/api/v2/users/{end}/password"),
                &Auth::admin(),
                Some(serde_json::to_vec(&b).unwrap()),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{b}: {}", r.text);
    }
    assert_eq!(
        app.get_as(
            &Auth::Password("end@example.org".into(), "third password!".into()),
            "/api/v2/users/me"
        )
        .await
        .status,
        StatusCode::OK
    );
    app.send(
        Method::DELETE,
        &format!("/api/v2/users/{other}"),
        &Auth::admin(),
        None,
    )
    .await;
    for id in [
        "9223372036854775807".to_owned(),
        "x".to_owned(),
        other.to_string(),
    ] {
        let r = app
            .send(
                Method::POST,
                &format!("/api/v2/users/{id}/password"),
                &Auth::admin(),
                body("long enough password"),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
        let r = app
            .get(&format!("/api/v2/users/{id}/password/requirements"))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
    }
    // Requirements: staff for anyone, a user for themselves.
    let r = app
        .get(&format!("/api/v2/users/{end}/password/requirements.json"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"requirements": ["must be at least 8 characters"]})
    );
    assert_eq!(
        app.get_as(
            &Auth::as_user("end@example.org"),
            &format!("/api/v2/users/{end}/password/requirements")
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(
            &Auth::as_user("end@example.org"),
            &format!("/api/v2/users/{agent}/password/requirements")
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_as(
            &Auth::as_user("agent@example.org"),
            &format!("/api/v2/users/{end}/password/requirements")
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(
            &Auth::None,
            &format!("/api/v2/users/{end}/password/requirements")
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}
