//! POST /api/v2/users/create_or_update: the seed's behaviour, end to end.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(
    creates_then_updates_with_location,
    response_has_every_seed_field_in_recorded_order,
    seed_curl_body_with_real_values,
    matches_external_id_case_insensitively_and_rewrites_case,
    matches_secondary_email_identity,
    matches_by_id_and_unknown_id_is_404,
    blank_id_is_ignored,
    email_owned_by_another_user_is_422_and_writes_nothing,
    update_merges_fields_and_adds_secondary_email,
    organization_by_name_is_attached_or_created,
    roles_and_custom_roles,
    show_and_me_read_back,
    paths_work_with_and_without_json_suffix,
);

async fn creates_then_updates_with_location(app: TestApp) {
    let first = app
        .upsert(json!({"name": "Roger Wilco", "email": "roger@example.org"}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let id = first.body["user"]["id"].as_i64().unwrap();
    let location = first.header("location").unwrap().to_owned();
    assert_eq!(location, app.url(&format!("/api/v2/users/{id}.json")));
    assert_eq!(first.body["user"]["url"], location);
    assert_eq!(
        first.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    let second = app
        .upsert(json!({"name": "Roger Wilco", "email": "roger@example.org"}))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.body["user"]["id"].as_i64(), Some(id));
    assert_eq!(second.header("location"), Some(location.as_str()));
    assert_eq!(app.count_users().await, 2, "the admin and Roger");
}

async fn response_has_every_seed_field_in_recorded_order(app: TestApp) {
    let r = app
        .upsert(json!({"name": "Order", "email": "order@example.org"}))
        .await;
    let keys: Vec<&str> = r.body["user"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "url",
            "name",
            "email",
            "created_at",
            "updated_at",
            "time_zone",
            "iana_time_zone",
            "phone",
            "shared_phone_number",
            "photo",
            "remote_photo_url",
            "locale_id",
            "locale",
            "organization_id",
            "role",
            "verified",
            "external_id",
            "tags",
            "alias",
            "active",
            "shared",
            "shared_agent",
            "last_login_at",
            "two_factor_auth_enabled",
            "signature",
            "details",
            "notes",
            "role_type",
            "custom_role_id",
            "moderator",
            "ticket_restriction",
            "only_private_comments",
            "restricted_agent",
            "suspended",
            "default_group_id",
            "report_csv",
            "chat_only",
            "user_fields",
        ]
    );
    // The raw text keeps that order too (clients that compare bytes see Zendesk's layout).
    assert!(r.text.starts_with(r#"{"user":{"id":"#));
    let u = &r.body["user"];
    assert_eq!(u["role"], "end-user");
    assert_eq!(u["active"], true);
    assert_eq!(u["verified"], false);
    assert_eq!(u["locale"], "en-US");
    assert_eq!(u["locale_id"], 1);
    assert_eq!(u["tags"], json!([]));
    assert_eq!(u["user_fields"], json!({}));
    let created = u["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 20, "YYYY-MM-DDTHH:MM:SSZ: {created}");
    assert!(created.ends_with('Z'));
}

/// The seed's curl body, every field sent as a string as the Chilkat samples do, with real values.
async fn seed_curl_body_with_real_values(app: TestApp) {
    let org = app.upsert(json!({"name": "Org holder", "email": "holder@example.org", "organization": {"name": "Seed Org"}})).await;
    let org_id = org.body["user"]["organization_id"].as_i64().unwrap();
    let body = json!({"user": {
        "name": "Seed User",
        "email": "seed.user@example.org",
        "custom_role_id": "",
        "external_id": "seed-ext-1",
        "identities": [
            {"type": "email", "value": "seed.alt@example.org"},
            {"type": "twitter", "value": "seeduser"}
        ],
        "organization": {"name": "Ignored Because Id Wins"},
        "organization_id": org_id.to_string(),
        "role": "end-user"
    }});
    let r = app
        .post("/api/v2/users/create_or_update", body.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let u = &r.body["user"];
    assert_eq!(u["organization_id"].as_i64(), Some(org_id));
    assert_eq!(u["external_id"], "seed-ext-1");
    assert_eq!(u["email"], "seed.user@example.org");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM organizations").await,
        1,
        "organization_id decided; no org created"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM identities WHERE user_id = {}",
            u["id"]
        ))
        .await,
        3
    );
    let again = app.post("/api/v2/users/create_or_update", body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["user"]["id"], u["id"]);
}

async fn matches_external_id_case_insensitively_and_rewrites_case(app: TestApp) {
    let a = app
        .upsert(json!({"name": "Ext", "external_id": "ian1"}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let b = app
        .upsert(json!({"external_id": " IAN1 ", "notes": "found"}))
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    assert_eq!(b.body["user"]["id"], a.body["user"]["id"]);
    assert_eq!(b.body["user"]["external_id"], "IAN1");
    assert_eq!(b.body["user"]["notes"], "found");
    assert_eq!(b.body["user"]["name"], "Ext");
}

async fn matches_secondary_email_identity(app: TestApp) {
    let a = app
        .upsert(json!({"name": "Two", "email": "one@example.org", "identities": [{"type": "email", "value": "two@example.org"}]}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let b = app
        .upsert(json!({"email": "TWO@example.org", "phone": "+15551234567"}))
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    assert_eq!(b.body["user"]["id"], a.body["user"]["id"]);
    assert_eq!(
        b.body["user"]["email"], "one@example.org",
        "primary unchanged"
    );
    assert_eq!(b.body["user"]["phone"], "+15551234567");
}

async fn matches_by_id_and_unknown_id_is_404(app: TestApp) {
    let a = app
        .upsert(json!({"name": "ById", "email": "byid@example.org"}))
        .await;
    let id = a.body["user"]["id"].as_i64().unwrap();
    let b = app
        .upsert(json!({"id": id.to_string(), "name": "Renamed"}))
        .await;
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(b.body["user"]["name"], "Renamed");
    let before = app.table_counts().await;
    let c = app.upsert(json!({"id": 9_223_372_036_854_775_807i64, "name": "Nobody", "email": "nobody@example.org"})).await;
    assert_eq!(c.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.body,
        json!({"error": "RecordNotFound", "description": "Not found"})
    );
    assert_eq!(app.table_counts().await, before);
}

async fn blank_id_is_ignored(app: TestApp) {
    let r = app
        .upsert(json!({"id": "", "name": "Blank", "email": "blank@example.org"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .upsert(json!({"id": null, "name": "Blank", "email": "blank@example.org"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn email_owned_by_another_user_is_422_and_writes_nothing(app: TestApp) {
    app.upsert(json!({"name": "Owner", "email": "taken@example.org"}))
        .await;
    let other = app
        .upsert(json!({"name": "Other", "external_id": "other-1", "email": "other@example.org"}))
        .await;
    let before = app.table_counts().await;
    let r = app
        .upsert(json!({"external_id": "other-1", "email": "Taken@example.org", "name": "Changed"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body,
        json!({"error": "RecordInvalid", "description": "Record validation errors", "details": {"email": [
            {"description": "Email: Taken@example.org is already being used by another user", "error": "DuplicateValue"}]}})
    );
    assert_eq!(app.table_counts().await, before);
    let id = other.body["user"]["id"].as_i64().unwrap();
    let now = app.get(&format!("/api/v2/users/{id}")).await;
    assert_eq!(now.body["user"]["name"], "Other", "nothing written");
}

async fn update_merges_fields_and_adds_secondary_email(app: TestApp) {
    for (k, t) in [("plan", "text"), ("seats", "integer"), ("region", "text")] {
        crate::custom_fields::make_field(
            &app,
            "user_fields",
            json!({"key": k, "title": k, "type": t}),
        )
        .await;
    }
    let a = app
        .upsert(json!({"name": "Merge", "email": "merge@example.org", "tags": ["a", "b"], "user_fields": {"plan": "gold", "seats": 3}}))
        .await;
    let id = a.body["user"]["id"].as_i64().unwrap();
    let b = app
        .upsert(json!({"email": "merge@example.org", "tags": ["c", "b"], "user_fields": {"seats": null, "region": "eu"}, "alias": "M"}))
        .await;
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(b.body["user"]["tags"], json!(["b", "c"]));
    assert_eq!(
        b.body["user"]["user_fields"],
        json!({"plan": "gold", "seats": null, "region": "eu"})
    );
    assert_eq!(b.body["user"]["alias"], "M");
    let c = app
        .upsert(json!({"id": id, "email": "second@example.org", "alias": null}))
        .await;
    assert_eq!(
        c.body["user"]["email"], "merge@example.org",
        "a new email on update is secondary"
    );
    assert_eq!(
        c.body["user"]["alias"], "",
        "a cleared alias reads back empty"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM identities WHERE user_id = {id}"
        ))
        .await,
        2
    );
    let d = app.upsert(json!({"email": "second@example.org"})).await;
    assert_eq!(
        d.body["user"]["id"].as_i64(),
        Some(id),
        "the secondary email now matches"
    );
}

async fn organization_by_name_is_attached_or_created(app: TestApp) {
    let a = app
        .upsert(
            json!({"name": "O1", "email": "o1@example.org", "organization": {"name": "Acme Inc"}}),
        )
        .await;
    let org = a.body["user"]["organization_id"].as_i64().unwrap();
    let b = app.upsert(json!({"name": "O2", "email": "o2@example.org", "organization": {"name": "  ACME inc "}})).await;
    assert_eq!(b.body["user"]["organization_id"].as_i64(), Some(org));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM organizations").await, 1);
    let c = app
        .upsert(json!({"email": "o2@example.org", "organization_id": null}))
        .await;
    assert_eq!(c.body["user"]["organization_id"], Value::Null);
}

async fn roles_and_custom_roles(app: TestApp) {
    let agent = app
        .upsert(json!({"name": "Ag", "email": "ag@example.org", "role": "agent"}))
        .await;
    assert_eq!(agent.body["user"]["role"], "agent");
    assert_eq!(agent.body["user"]["ticket_restriction"], Value::Null);
    let custom = app.upsert(json!({"name": "Cu", "email": "cu@example.org", "role": "end-user", "custom_role_id": "42"})).await;
    assert_eq!(custom.body["user"]["role"], "agent");
    assert_eq!(custom.body["user"]["custom_role_id"], 42);
    assert_eq!(custom.body["user"]["role_type"], 0);
    let admin = app
        .upsert(json!({"name": "Ad", "email": "ad@example.org", "role": "admin"}))
        .await;
    assert_eq!(admin.body["user"]["role_type"], 4);
    assert_eq!(admin.body["user"]["restricted_agent"], false);
}

async fn show_and_me_read_back(app: TestApp) {
    let a = app
        .upsert(
            json!({"name": "Show", "email": "show@example.org", "verified": true, "details": "d"}),
        )
        .await;
    let id = a.body["user"]["id"].as_i64().unwrap();
    let s = app.get(&format!("/api/v2/users/{id}.json")).await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.body["user"], a.body["user"]);
    assert_eq!(s.body["user"]["verified"], true);
    let missing = app.get("/api/v2/users/9223372036854775807.json").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.body,
        json!({"error": "RecordNotFound", "description": "Not found"})
    );
    assert_eq!(
        app.get("/api/v2/users/abc").await.status,
        StatusCode::NOT_FOUND
    );
    let me = app.get("/api/v2/users/me.json").await;
    assert_eq!(me.body["user"]["email"], crate::helpers::ADMIN_EMAIL);
    assert_eq!(me.body["user"]["role"], "admin");
    assert!(me.body["user"]["authenticity_token"].is_string());
    let anon = app.get_as(&Auth::None, "/api/v2/users/me").await;
    assert_eq!(anon.status, StatusCode::OK);
    assert_eq!(anon.body["user"]["id"], Value::Null);
}

async fn paths_work_with_and_without_json_suffix(app: TestApp) {
    let a = app
        .post(
            "/api/v2/users/create_or_update.json",
            json!({"user": {"name": "J", "email": "j@example.org"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let b = app
        .post(
            "/api/v2/users/create_or_update",
            json!({"user": {"name": "J", "email": "j@example.org"}}),
        )
        .await;
    assert_eq!(b.status, StatusCode::OK);
    let id = a.body["user"]["id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/v2/users/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v2/users/{id}.json?include=roles"))
            .await
            .status,
        StatusCode::OK
    );
}
