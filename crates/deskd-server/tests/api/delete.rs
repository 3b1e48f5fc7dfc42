//! Soft deletion: DELETE /users/{id} and DELETE /users/destroy_many.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bulk::wait_for;
use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(
    delete_is_soft_and_releases_identities,
    deletion_permissions,
    destroy_many_deletes_in_a_job
);

async fn delete_is_soft_and_releases_identities(app: TestApp) {
    let r = app.upsert(json!({"name": "Gone", "email": "gone@example.org", "external_id": "gone-1", "tags": ["t"], "verified": true})).await;
    let id = r.body["user"]["id"].as_i64().unwrap();
    let d = app
        .send(
            Method::DELETE,
            &format!("/api/v2/users/{id}.json"),
            &Auth::admin(),
            Some(br#"{"user": {"id": 1}}"#.to_vec()),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    let u = &d.body["user"];
    assert_eq!(
        (
            u["active"].clone(),
            u["email"].clone(),
            u["external_id"].clone(),
            u["verified"].clone()
        ),
        (json!(false), Value::Null, Value::Null, json!(false))
    );
    assert_eq!(u["name"], "Gone");
    assert_eq!(u["tags"], json!(["t"]));
    let again = app.get(&format!("/api/v2/users/{id}")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["user"]["active"], false);
    // The email and external id are free again: the same upsert now creates a new user.
    let fresh = app
        .upsert(json!({"name": "Back", "email": "gone@example.org", "external_id": "gone-1"}))
        .await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.text);
    assert_ne!(fresh.body["user"]["id"].as_i64(), Some(id));
    assert_eq!(
        app.send(
            Method::DELETE,
            "/api/v2/users/9223372036854775807",
            &Auth::admin(),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

async fn deletion_permissions(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    let other = app
        .make_user("Other agent", "other@example.org", "agent")
        .await;
    let end = app.make_user("End", "end@example.org", "end-user").await;
    let agent = Auth::as_user("agent@example.org");
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v2/users/{other}"),
            &agent,
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v2/users/{end}"),
            &agent,
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    let owner = app.get("/api/v2/users/me").await.body["user"]["id"]
        .as_i64()
        .unwrap();
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v2/users/{owner}"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the account owner cannot be deleted"
    );
    // A deleted user's credentials stop working at once.
    assert_eq!(
        app.get_as(&Auth::as_user("other@example.org"), "/api/v2/users/me")
            .await
            .body["user"]["id"]
            .as_i64(),
        Some(other)
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v2/users/{other}"),
            &Auth::admin(),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(&Auth::as_user("other@example.org"), "/api/v2/users/me")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .send(
            Method::DELETE,
            "/api/v2/users/destroy_many?ids=1",
            &agent,
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "destroy_many is for admins"
    );
}

async fn destroy_many_deletes_in_a_job(app: TestApp) {
    let a = app.make_user("A", "a@example.org", "end-user").await;
    app.upsert(json!({"name": "B", "email": "b@example.org", "external_id": "ext-b"}))
        .await;
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v2/users/destroy_many.json?ids={a},9223372036854775807"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let res = done["results"].as_array().unwrap();
    assert_eq!(
        res[0],
        json!({"index": 0, "id": a, "action": "delete", "status": "Deleted", "success": true})
    );
    assert_eq!(res[1]["error"], "RecordNotFound");
    assert_eq!(res[1]["success"], false);
    let r = app
        .send(
            Method::DELETE,
            "/api/v2/users/destroy_many?external_ids=EXT-B",
            &Auth::admin(),
            None,
        )
        .await;
    let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    assert_eq!(done["results"][0]["status"], "Deleted");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users WHERE active = 0")
            .await,
        2
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            "/api/v2/users/destroy_many",
            &Auth::admin(),
            None
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v2/users/destroy_many?ids={}", many.join(",")),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "TooManyValues");
}

on_both_backends!(the_account_owner_cannot_be_demoted_or_suspended);

async fn the_account_owner_cannot_be_demoted_or_suspended(app: TestApp) {
    let owner = app.get("/api/v2/users/me").await.body["user"]["id"]
        .as_i64()
        .unwrap();
    app.make_user("Second admin", "admin2@example.org", "admin")
        .await;
    let other = Auth::as_user("admin2@example.org");
    for body in [
        json!({"user": {"role": "end-user"}}),
        json!({"user": {"suspended": true}}),
    ] {
        let r = app
            .send(
                Method::PUT,
                &format!("/api/v2/users/{owner}"),
                &other,
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}");
    }
    // The owner may still change its own other fields.
    assert_eq!(
        app.put(
            &format!("/api/v2/users/{owner}"),
            json!({"user": {"notes": "mine"}})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v2/users/me").await.body["user"]["role"],
        "admin"
    );
}
