//! Fixtures carry the account's custom field definitions, and the values checked against them:
//! export → reset → import → export gives the same document, and a value a fixture's own fields
//! refuse is a 400 that changes nothing. Both backends.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

macro_rules! in_test_mode {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::spawn($crate::helpers::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::spawn($crate::helpers::Backend::Postgres).await).await
            }
        }
    )*};
}

async fn spawn(backend: crate::helpers::Backend) -> TestApp {
    TestApp::spawn_with(backend, crate::testmode::test_config()).await
}

async fn export(app: &TestApp) -> Value {
    let r = app.get("/__deskd/export").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

in_test_mode!(
    field_definitions_and_values_survive_the_round_trip,
    a_value_the_fixture_fields_refuse_changes_nothing,
);

async fn field_definitions_and_values_survive_the_round_trip(app: TestApp) {
    let r = app
        .post(
            "/api/v2/user_fields",
            json!({"user_field": {"type": "dropdown", "key": "plan", "title": "Plan",
                   "custom_field_options": [{"name": "Pro", "value": "pro"}, {"name": "Free", "value": "free"}]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            "/api/v2/organization_fields",
            json!({"organization_field": {"type": "integer", "key": "seats", "title": "Seats"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .upsert(json!({"name": "Ann", "email": "ann@example.org", "user_fields": {"plan": "pro"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Acme", "organization_fields": {"seats": 12}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let before = export(&app).await;
    assert_eq!(before["user_fields"][0]["key"], "plan", "{before}");
    assert_eq!(
        before["user_fields"][0]["custom_field_options"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(before["organization_fields"][0]["key"], "seats");
    let r = app.post("/__deskd/reset", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.post("/__deskd/import", before.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(export(&app).await, before);
    // The fields are the account's again, and the values show through the API.
    let r = app.get("/api/v2/user_fields").await;
    assert_eq!(r.body["user_fields"][0]["key"], "plan", "{}", r.text);
    let r = app.get("/api/v2/organizations").await;
    assert_eq!(
        r.body["organizations"][0]["organization_fields"]["seats"], 12,
        "{}",
        r.text
    );
}

async fn a_value_the_fixture_fields_refuse_changes_nothing(app: TestApp) {
    let before = export(&app).await;
    let doc = json!({
        "deskd_fixture": 1,
        "organization_fields": [{"type": "integer", "key": "seats", "title": "Seats"}],
        "organizations": [{"name": "Acme", "organization_fields": {"seats": "many"}}],
    });
    let r = app.post("/__deskd/import", doc).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("/organizations/0"), "{}", r.text);
    assert_eq!(export(&app).await, before);
    let doc = json!({"deskd_fixture": 1, "user_fields": [{"type": "spaceship", "key": "k", "title": "K"}]});
    let r = app.post("/__deskd/import", doc).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("/user_fields/0"), "{}", r.text);
    assert_eq!(export(&app).await, before);
}
