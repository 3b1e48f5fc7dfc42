//! OAuth scopes of bearer tokens: a resource scope reaches its resource only; credentials,
//! settings, identities and the export need the broad scopes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(
    resource_scoped_tokens_cannot_reach_credentials_or_settings,
    resource_scopes_reach_their_resource,
    broad_scopes_follow_the_method,
);

async fn bearer(app: &TestApp, scopes: Value) -> (Auth, i64) {
    let t = app
        .post("/api/v2/oauth/tokens", json!({"token": {"scopes": scopes}}))
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text);
    (
        Auth::Bearer(t.body["token"]["full_token"].as_str().unwrap().to_owned()),
        t.body["token"]["id"].as_i64().unwrap(),
    )
}

async fn send(app: &TestApp, auth: &Auth, method: Method, path: &str, body: Option<Value>) -> u16 {
    app.send(
        method,
        path,
        auth,
        body.map(|b| serde_json::to_vec(&b).unwrap()),
    )
    .await
    .status
    .as_u16()
}

async fn resource_scoped_tokens_cannot_reach_credentials_or_settings(app: TestApp) {
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let (_, other_token) = bearer(&app, json!(["read"])).await;
    let api_token = app
        .post(
            "/api/v2/api_tokens",
            json!({"api_token": {"description": "x"}}),
        )
        .await
        .body["api_token"]["id"]
        .as_i64()
        .unwrap();
    for scopes in [
        json!(["users:write"]),
        json!(["users:read"]),
        json!(["users"]),
        json!(["organizations:write"]),
        json!([
            "users:read",
            "users:write",
            "organizations:read",
            "organizations:write"
        ]),
    ] {
        let (auth, _) = bearer(&app, scopes.clone()).await;
        let before = app.scalar("SELECT COUNT(*) FROM api_tokens").await;
        for (method, path, body) in [
            (
                Method::POST,
                "/api/v2/api_tokens".to_owned(),
                Some(json!({"api_token": {"description": "escalate"}})),
            ),
            (Method::GET, "/api/v2/api_tokens".to_owned(), None),
            (Method::GET, format!("/api/v2/api_tokens/{api_token}"), None),
            (
                Method::DELETE,
                format!("/api/v2/api_tokens/{api_token}"),
                None,
            ),
            (
                Method::POST,
                "/api/v2/oauth/tokens".to_owned(),
                Some(json!({"token": {"scopes": ["read", "write"]}})),
            ),
            (
                Method::DELETE,
                format!("/api/v2/oauth/tokens/{other_token}"),
                None,
            ),
            (Method::GET, "/api/v2/account/settings".to_owned(), None),
            (
                Method::PUT,
                "/api/v2/account/settings".to_owned(),
                Some(json!({"settings": {"deskd": {"bulk_user_import": false}}})),
            ),
            (
                Method::PUT,
                format!("/api/v2/users/{agent}/password"),
                Some(json!({"password": "taken over password"})),
            ),
            (
                Method::GET,
                "/api/v2/incremental/users/cursor?start_time=0".to_owned(),
                None,
            ),
            (
                Method::GET,
                format!("/api/v2/users/{agent}/identities"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v2/users/{agent}/identities"),
                Some(json!({"identity": {"type": "email", "value": "evil@example.org"}})),
            ),
        ] {
            let r = app
                .send(
                    method.clone(),
                    &path,
                    &auth,
                    body.map(|b| serde_json::to_vec(&b).unwrap()),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{scopes} {method} {path}: {}",
                r.text
            );
            assert!(
                r.body["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("You are missing the following required scopes: "),
                "{}",
                r.text
            );
        }
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM api_tokens").await,
            before,
            "{scopes}: no token was created or revoked"
        );
    }
    // The tokens and settings are as they were.
    assert_eq!(
        app.get("/api/v2/account/settings").await.body["settings"]["deskd"]["bulk_user_import"],
        true
    );
    assert_eq!(
        app.get(&format!("/api/v2/api_tokens/{api_token}"))
            .await
            .status,
        StatusCode::OK
    );
    // A write-only token is not a resource-scoped one, but it cannot mint a token that reads.
    let (write_only, _) = bearer(&app, json!(["write"])).await;
    assert_eq!(
        send(
            &app,
            &write_only,
            Method::POST,
            "/api/v2/oauth/tokens",
            Some(json!({"token": {"scopes": ["read", "write"]}})),
        )
        .await,
        403
    );
}

async fn resource_scopes_reach_their_resource(app: TestApp) {
    let org = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Scoped Org"}}),
        )
        .await
        .body["organization"]["id"]
        .as_i64()
        .unwrap();
    let (users_read, _) = bearer(&app, json!(["users:read"])).await;
    let (users_write, _) = bearer(&app, json!(["users:write"])).await;
    let (orgs_write, _) = bearer(&app, json!(["organizations:write"])).await;
    let (users, _) = bearer(&app, json!(["users"])).await;
    let create = json!({"user": {"name": "Scoped", "email": "scoped@example.org"}});
    let org_body = json!({"organization": {"name": "Another Org"}});
    let upsert = "/api/v2/users/create_or_update";
    assert_eq!(
        send(&app, &users_read, Method::GET, "/api/v2/users", None).await,
        200
    );
    assert_eq!(
        send(&app, &users_read, Method::GET, "/api/v2/users/me", None).await,
        200
    );
    assert_eq!(
        send(
            &app,
            &users_read,
            Method::POST,
            upsert,
            Some(create.clone())
        )
        .await,
        403,
        "users:read does not write"
    );
    assert_eq!(
        send(
            &app,
            &users_read,
            Method::GET,
            "/api/v2/organizations",
            None
        )
        .await,
        403,
        "users:read does not read organizations"
    );
    assert_eq!(
        send(
            &app,
            &users_write,
            Method::POST,
            upsert,
            Some(create.clone())
        )
        .await,
        201
    );
    assert_eq!(
        send(&app, &users_write, Method::GET, "/api/v2/users", None).await,
        403,
        "users:write does not read"
    );
    assert_eq!(
        send(
            &app,
            &users_write,
            Method::PUT,
            &format!("/api/v2/organizations/{org}"),
            Some(json!({"organization": {"notes": "x"}}))
        )
        .await,
        403
    );
    let job = app
        .send(
            Method::POST,
            "/api/v2/users/create_or_update_many",
            &users,
            Some(
                serde_json::to_vec(&json!({"users": [{"name": "B", "email": "b@example.org"}]}))
                    .unwrap(),
            ),
        )
        .await;
    assert_eq!(job.status, StatusCode::OK, "{}", job.text);
    let id = job.body["job_status"]["id"].as_str().unwrap();
    assert_eq!(
        send(
            &app,
            &users,
            Method::GET,
            &format!("/api/v2/job_statuses/{id}"),
            None
        )
        .await,
        200,
        "the users scope follows its bulk jobs"
    );
    assert_eq!(
        send(
            &app,
            &orgs_write,
            Method::POST,
            "/api/v2/organizations",
            Some(org_body)
        )
        .await,
        201
    );
    assert_eq!(
        send(&app, &orgs_write, Method::POST, upsert, Some(create)).await,
        403
    );
    assert_eq!(
        send(&app, &orgs_write, Method::GET, "/api/v2/users/me", None).await,
        403
    );
}

async fn broad_scopes_follow_the_method(app: TestApp) {
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let (read, _) = bearer(&app, json!(["read"])).await;
    let (write, _) = bearer(&app, json!(["write"])).await;
    let (both, _) = bearer(&app, json!(["read", "write"])).await;
    let identities = format!("/api/v2/users/{agent}/identities");
    let new_identity = json!({"identity": {"type": "email", "value": "second@example.org"}});
    assert_eq!(send(&app, &read, Method::GET, &identities, None).await, 200);
    assert_eq!(
        send(&app, &read, Method::GET, "/api/v2/account/settings", None).await,
        200
    );
    assert_eq!(
        send(
            &app,
            &read,
            Method::POST,
            &identities,
            Some(new_identity.clone())
        )
        .await,
        403
    );
    assert_eq!(
        send(&app, &read, Method::GET, "/api/v2/api_tokens", None).await,
        403,
        "credentials need read and write"
    );
    assert_eq!(
        send(&app, &write, Method::GET, &identities, None).await,
        403
    );
    assert_eq!(
        send(&app, &write, Method::POST, &identities, Some(new_identity)).await,
        201
    );
    assert_eq!(
        send(&app, &both, Method::GET, "/api/v2/api_tokens", None).await,
        200
    );
    // Unknown scopes are refused when the token is made.
    let r = app
        .post(
            "/api/v2/oauth/tokens",
            json!({"token": {"scopes": ["tickets:read"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
}
