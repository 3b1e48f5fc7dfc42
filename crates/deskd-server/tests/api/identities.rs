//! The identities endpoints.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(identities_lifecycle, identity_bad_input_and_permissions);

async fn identities_lifecycle(app: TestApp) {
    let uid = app.make_user("Idy", "first@example.org", "end-user").await;
    let base = format!("/api/v2/users/{uid}/identities");
    let list = app.get(&format!("{base}.json")).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["count"], 1);
    let first = list.body["identities"][0].clone();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "url",
            "id",
            "user_id",
            "type",
            "value",
            "verified",
            "primary",
            "created_at",
            "updated_at",
            "undeliverable_count",
            "deliverable_state"
        ]
    );
    assert_eq!(first["primary"], true);
    assert_eq!(first["deliverable_state"], "reserved_example");

    let c = app
        .post(
            &base,
            json!({"identity": {"type": "email", "value": "second@example.org"}}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let second = c.body["identity"]["id"].as_i64().unwrap();
    assert_eq!(c.body["identity"]["primary"], false);
    let phone = app
        .post(
            &base,
            json!({"identity": {"type": "phone_number", "value": "+15551234"}}),
        )
        .await;
    assert_eq!(phone.body["identity"]["primary"], true, "first of its type");

    let show = app.get(&format!("{base}/{second}")).await;
    assert_eq!(show.body["identity"]["value"], "second@example.org");

    let mp = app
        .put(&format!("{base}/{second}/make_primary.json"), json!({}))
        .await;
    assert_eq!(mp.status, StatusCode::OK, "{}", mp.text);
    let listed: Vec<i64> = mp.body["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed[0], second, "the new primary comes first");
    assert_eq!(
        app.get(&format!("/api/v2/users/{uid}")).await.body["user"]["email"],
        "second@example.org",
        "user.email mirrors the primary"
    );

    let v = app.put(&format!("{base}/{second}/verify"), json!({})).await;
    assert_eq!(v.body["identity"]["verified"], true);
    assert_eq!(
        app.get(&format!("/api/v2/users/{uid}")).await.body["user"]["verified"],
        true
    );
    let rv = app
        .put(&format!("{base}/{second}/request_verification"), json!({}))
        .await;
    assert_eq!(rv.status, StatusCode::OK);

    let u = app
        .put(
            &format!("{base}/{second}"),
            json!({"identity": {"value": "renamed@example.org"}}),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    assert_eq!(u.body["identity"]["value"], "renamed@example.org");
    assert_eq!(
        app.get(&format!("/api/v2/users/{uid}")).await.body["user"]["email"],
        "renamed@example.org"
    );

    // Deleting the primary email promotes the other one.
    let d = app
        .send(
            Method::DELETE,
            &format!("{base}/{second}"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v2/users/{uid}")).await.body["user"]["email"],
        "first@example.org"
    );
    // The freed address can be used again.
    let again = app
        .upsert(json!({"name": "New owner", "email": "renamed@example.org"}))
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
}

async fn identity_bad_input_and_permissions(app: TestApp) {
    let uid = app.make_user("Only", "only@example.org", "end-user").await;
    app.make_user("Taken", "taken@example.org", "end-user")
        .await;
    let admin_id = app.get("/api/v2/users/me").await.body["user"]["id"]
        .as_i64()
        .unwrap();
    app.make_user("Agent", "agent@example.org", "agent").await;
    let base = format!("/api/v2/users/{uid}/identities");
    let before = app.table_counts().await;
    let dup = app
        .post(
            &base,
            json!({"identity": {"type": "email", "value": "TAKEN@example.org"}}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", dup.text);
    assert_eq!(dup.body["details"]["value"][0]["error"], "DuplicateValue");
    for bad in [
        json!({"identity": {"type": "email", "value": "not-an-email"}}),
        json!({"identity": {"type": "fax", "value": "1"}}),
        json!({"identity": {"value": "x@y.co"}}),
        json!({"nope": 1}),
    ] {
        let r = app.post(&base, bad.clone()).await;
        assert!(
            r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::BAD_REQUEST,
            "{bad}: {}",
            r.text
        );
    }
    assert_eq!(app.table_counts().await, before, "nothing written");
    let only = app.get(&base).await.body["identities"][0]["id"]
        .as_i64()
        .unwrap();
    let last = app
        .send(
            Method::DELETE,
            &format!("{base}/{only}"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(
        last.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the last identity stays"
    );
    assert_eq!(
        app.get(&format!("{base}/9223372036854775807")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v2/users/9223372036854775807/identities")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let type_change = app
        .put(
            &format!("{base}/{only}"),
            json!({"identity": {"type": "twitter"}}),
        )
        .await;
    assert_eq!(type_change.status, StatusCode::UNPROCESSABLE_ENTITY);

    // End users read their own identities only; agents change end users' only.
    let end = Auth::as_user("only@example.org");
    assert_eq!(app.get_as(&end, &base).await.status, StatusCode::OK);
    assert_eq!(
        app.get_as(&end, &format!("/api/v2/users/{admin_id}/identities"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(
            &end,
            &base,
            json!({"identity": {"type": "email", "value": "mine@example.org"}})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let agent = Auth::as_user("agent@example.org");
    assert_eq!(
        app.post_as(
            &agent,
            &base,
            json!({"identity": {"type": "email", "value": "ok@example.org"}})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let r = app
        .post_as(
            &agent,
            &format!("/api/v2/users/{admin_id}/identities"),
            json!({"identity": {"type": "email", "value": "hijack@example.org"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let _: Value = r.body;
}
