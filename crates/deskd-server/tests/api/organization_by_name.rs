//! A user write that names a new organization by `organization: {name}` creates it only for a
//! caller who may create organizations (admins); an agent may join users to existing ones.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(agents_cannot_create_organizations_by_name);

async fn agents_cannot_create_organizations_by_name(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    let agent = Auth::as_user("agent@example.org");
    // Directly: 403, as before.
    let r = app
        .post_as(
            &agent,
            "/api/v2/organizations",
            json!({"organization": {"name": "Agent Org"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Through a user: 403 too, and nothing written, for a single write and a bulk item alike.
    let before = app.table_counts().await;
    for path in ["/api/v2/users/create_or_update", "/api/v2/users"] {
        let r = app
            .post_as(&agent, path, json!({"user": {"name": "E", "email": "e@example.org", "organization": {"name": "Agent Org"}}}))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
    }
    let r = app
        .post_as(&agent, "/api/v2/users/create_or_update_many", json!({"users": [{"name": "E", "email": "e@example.org", "organization": {"name": "Agent Org"}}]}))
        .await;
    let done = crate::bulk::wait_for(&app, r.body["job_status"]["id"].as_str().expect("job")).await;
    assert_eq!(done["results"][0]["error"], "PermissionDenied", "{done}");
    assert_eq!(app.table_counts().await, before, "nothing written");
    // An existing organization, by name: the agent may put an end user in it.
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Existing Org"}}),
        )
        .await;
    let org = r.body["organization"]["id"].as_i64().expect("org");
    let r = app
        .post_as(&agent, "/api/v2/users/create_or_update", json!({"user": {"name": "E", "email": "e@example.org", "organization": {"name": "existing org"}}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["user"]["organization_id"], org);
    // An admin creates one by naming it.
    let r = app
        .upsert(
            json!({"name": "F", "email": "f@example.org", "organization": {"name": "Admin Org"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(
        r.body["user"]["organization_id"].as_i64().is_some(),
        "{}",
        r.text
    );
}
