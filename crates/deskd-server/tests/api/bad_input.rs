//! Bad input gets a clear Zendesk-shaped error, the right status, and writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(
    malformed_json_is_400,
    body_not_an_object_is_400,
    missing_user_is_400,
    missing_or_empty_name_on_create_is_422,
    invalid_email_is_422,
    non_numeric_and_unknown_organization_id_are_422,
    unknown_role_is_422,
    oversized_body_is_413,
    invalid_utf8_is_400,
    deeply_nested_json_is_400,
    wrong_types_of_known_keys_are_422,
);

const PATH: &str = "/api/v2/users/create_or_update";

async fn raw(app: &TestApp, body: &[u8]) -> crate::helpers::Resp {
    app.send(Method::POST, PATH, &Auth::admin(), Some(body.to_vec()))
        .await
}

/// Sends `body`, expects `status` and an `error` of `code`, and checks nothing was written.
async fn rejects(
    app: &TestApp,
    body: &[u8],
    status: StatusCode,
    code: &str,
) -> crate::helpers::Resp {
    let before = app.table_counts().await;
    let r = raw(app, body).await;
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"], code, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(app.table_counts().await, before, "nothing written");
    r
}

async fn malformed_json_is_400(app: TestApp) {
    rejects(
        &app,
        br#"{"user": {"name": "x",}"#,
        StatusCode::BAD_REQUEST,
        "InvalidJSON",
    )
    .await;
    rejects(&app, b"", StatusCode::BAD_REQUEST, "InvalidJSON").await;
}

async fn body_not_an_object_is_400(app: TestApp) {
    rejects(&app, b"[1,2]", StatusCode::BAD_REQUEST, "InvalidJSON").await;
    rejects(&app, b"\"user\"", StatusCode::BAD_REQUEST, "InvalidJSON").await;
    rejects(
        &app,
        br#"{"user": "Roger"}"#,
        StatusCode::BAD_REQUEST,
        "InvalidParameter",
    )
    .await;
}

async fn missing_user_is_400(app: TestApp) {
    let r = rejects(
        &app,
        br#"{"name": "Roger"}"#,
        StatusCode::BAD_REQUEST,
        "ParameterMissing",
    )
    .await;
    assert_eq!(
        r.body["description"],
        "param is missing or the value is empty: user"
    );
    rejects(
        &app,
        br#"{"user": null}"#,
        StatusCode::BAD_REQUEST,
        "ParameterMissing",
    )
    .await;
}

async fn missing_or_empty_name_on_create_is_422(app: TestApp) {
    let r = rejects(
        &app,
        br#"{"user": {"email": "noname@example.org"}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
    assert_eq!(
        r.body["details"],
        json!({"name": [{"description": "Name: is too short (minimum is 1 characters)"}]})
    );
    rejects(
        &app,
        br#"{"user": {"name": "  ", "email": "noname@example.org"}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
    // Updating an existing user without a name is fine; blanking its name is not.
    app.upsert(json!({"name": "Has", "email": "has@example.org"}))
        .await;
    assert_eq!(
        app.upsert(json!({"email": "has@example.org", "notes": "n"}))
            .await
            .status,
        StatusCode::OK
    );
    rejects(
        &app,
        br#"{"user": {"name": "", "email": "has@example.org"}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
}

async fn invalid_email_is_422(app: TestApp) {
    let r = rejects(
        &app,
        br#"{"user": {"name": "B", "email": "badmail"}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
    assert_eq!(
        r.body["details"],
        json!({"email": [{"description": "Email: badmail is not properly formatted"}]})
    );
    rejects(
        &app,
        br#"{"user": {"name": "B", "identities": [{"type": "email", "value": "not an email"}]}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
    rejects(
        &app,
        br#"{"user": {"name": "B", "identities": [{"type": "carrier_pigeon", "value": "x"}]}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
}

async fn non_numeric_and_unknown_organization_id_are_422(app: TestApp) {
    let r = rejects(
        &app,
        br#"{"user": {"name": "O", "organization_id": "abc"}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
    assert_eq!(
        r.body["details"]["organization_id"][0]["error"],
        "InvalidValue"
    );
    let r = rejects(
        &app,
        br#"{"user": {"name": "O", "organization_id": 12345}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
    assert_eq!(
        r.body["details"]["organization_id"][0]["error"],
        "InvalidValue"
    );
    rejects(
        &app,
        br#"{"user": {"name": "O", "custom_role_id": "1.5"}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
}

async fn unknown_role_is_422(app: TestApp) {
    let r = rejects(
        &app,
        br#"{"user": {"name": "R", "role": "superuser"}}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "RecordInvalid",
    )
    .await;
    assert_eq!(r.body["details"]["role"][0]["error"], "InvalidValue");
}

async fn oversized_body_is_413(app: TestApp) {
    let big = format!(
        r#"{{"user": {{"name": "Big", "notes": "{}"}}}}"#,
        "x".repeat(deskd_server::MAX_BODY_BYTES + 10)
    );
    rejects(
        &app,
        big.as_bytes(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestTooLarge",
    )
    .await;
}

async fn invalid_utf8_is_400(app: TestApp) {
    rejects(
        &app,
        b"{\"user\": {\"name\": \"\xff\xfe\"}}",
        StatusCode::BAD_REQUEST,
        "InvalidJSON",
    )
    .await;
}

async fn deeply_nested_json_is_400(app: TestApp) {
    let deep = format!(
        r#"{{"user": {{"name": "D", "user_fields": {{"x": {}1{}}}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    rejects(
        &app,
        deep.as_bytes(),
        StatusCode::BAD_REQUEST,
        "InvalidJSON",
    )
    .await;
}

async fn wrong_types_of_known_keys_are_422(app: TestApp) {
    for body in [
        r#"{"user": {"name": {"first": "x"}}}"#,
        r#"{"user": {"name": "T", "tags": {"a": 1}}}"#,
        r#"{"user": {"name": "T", "user_fields": [1]}}"#,
        r#"{"user": {"name": "T", "identities": "x"}}"#,
        r#"{"user": {"name": "T", "verified": "maybe"}}"#,
        r#"{"user": {"name": "T", "ticket_restriction": "everything"}}"#,
    ] {
        rejects(
            &app,
            body.as_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "RecordInvalid",
        )
        .await;
    }
}
