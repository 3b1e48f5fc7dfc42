//! Authentication and the role rules of create_or_update.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOKEN, Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(
    missing_and_bad_credentials_are_401,
    password_and_bearer_tokens_work,
    read_only_bearer_cannot_write,
    end_users_are_refused,
    agents_manage_end_users_only,
    suspended_users_cannot_authenticate,
);

const PATH: &str = "/api/v2/users/create_or_update";

fn body() -> serde_json::Value {
    json!({"user": {"name": "Someone", "email": "someone@example.org"}})
}

async fn missing_and_bad_credentials_are_401(app: TestApp) {
    for auth in [
        Auth::None,
        Auth::Token(ADMIN_EMAIL.into(), "wrong-token".into()),
        Auth::Token("nobody@example.org".into(), ADMIN_TOKEN.into()),
        Auth::Password(ADMIN_EMAIL.into(), "wrong password".into()),
        Auth::Raw("Basic !!!not-base64".into()),
        Auth::Raw("Basic bm9jb2xvbg==".into()),
        Auth::Raw("Basic ".into()),
        Auth::Raw("Digest abc".into()),
        Auth::Raw(format!("Basic {}", "QUFB".repeat(2000))),
        // A NUL or another control character in the email (PostgreSQL refuses NUL in text).
        Auth::Password(format!("admin\0{ADMIN_EMAIL}"), "wrong password".into()),
        Auth::Token(format!("{ADMIN_EMAIL}\0"), ADMIN_TOKEN.into()),
        Auth::Password(format!("{ADMIN_EMAIL}\n"), "x".into()),
    ] {
        let r = app.post_as(&auth, PATH, body()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}: {}", r.text);
        assert_eq!(r.body, json!({"error": "Couldn't authenticate you"}));
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"Web Password\"")
        );
    }
    let r = app
        .post_as(&Auth::Bearer("no-such-token".into()), PATH, body())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_token");
    assert_eq!(app.count_users().await, 1, "only the admin");
}

async fn password_and_bearer_tokens_work(app: TestApp) {
    let r = app
        .post_as(
            &Auth::Password(ADMIN_EMAIL.into(), ADMIN_PASSWORD.into()),
            PATH,
            body(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Again: served from the verified-password cache, same answer.
    let r = app
        .post_as(
            &Auth::Password(ADMIN_EMAIL.to_uppercase(), ADMIN_PASSWORD.into()),
            PATH,
            body(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let t = app
        .post(
            "/api/v2/oauth/tokens",
            json!({"token": {"scopes": ["read", "write"]}}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text);
    let bearer = t.body["token"]["full_token"].as_str().unwrap().to_owned();
    let r = app
        .post_as(&Auth::Bearer(bearer.clone()), PATH, body())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = t.body["token"]["id"].as_i64().unwrap();
    let d = app
        .send(
            Method::DELETE,
            &format!("/api/v2/oauth/tokens/{id}"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let r = app.post_as(&Auth::Bearer(bearer), PATH, body()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "revoked at once");
}

async fn read_only_bearer_cannot_write(app: TestApp) {
    let t = app
        .post(
            "/api/v2/oauth/tokens",
            json!({"token": {"scopes": ["read"]}}),
        )
        .await;
    let bearer = Auth::Bearer(t.body["token"]["full_token"].as_str().unwrap().to_owned());
    assert_eq!(
        app.get_as(&bearer, "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    let r = app.post_as(&bearer, PATH, body()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "Forbidden");
}

async fn end_users_are_refused(app: TestApp) {
    let id = app.make_user("End", "end@example.org", "end-user").await;
    let end = Auth::as_user("end@example.org");
    let r = app.post_as(&end, PATH, body()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body,
        json!({"error": "Forbidden", "description": "You do not have access to this page. Please contact the account owner of this help desk for further help."})
    );
    assert_eq!(
        app.get_as(&end, &format!("/api/v2/users/{id}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let me = app.get_as(&end, "/api/v2/users/me").await;
    assert_eq!(me.body["user"]["id"].as_i64(), Some(id));
    assert!(
        me.body["user"].get("notes").is_none(),
        "end users get the reduced object"
    );
    assert_eq!(me.body["user"]["email"], "end@example.org");
}

async fn agents_manage_end_users_only(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    app.make_user("Other agent", "agent2@example.org", "agent")
        .await;
    let agent = Auth::as_user("agent@example.org");
    let r = app
        .post_as(
            &agent,
            PATH,
            json!({"user": {"name": "Cust", "email": "cust@example.org"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post_as(
            &agent,
            PATH,
            json!({"user": {"email": "cust@example.org", "notes": "ok"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let before = app.table_counts().await;
    for forbidden in [
        json!({"name": "New agent", "email": "na@example.org", "role": "agent"}),
        json!({"name": "New admin", "email": "nad@example.org", "role": "admin"}),
        json!({"name": "Custom", "email": "cr@example.org", "custom_role_id": 5}),
        json!({"email": "cust@example.org", "role": "admin"}),
        json!({"email": "agent2@example.org", "notes": "touching another agent"}),
        json!({"email": "agent@example.org", "role": "admin"}),
        json!({"email": ADMIN_EMAIL, "name": "pwned"}),
    ] {
        let r = app
            .post_as(&agent, PATH, json!({ "user": forbidden }))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{forbidden}: {}", r.text);
    }
    assert_eq!(app.table_counts().await, before);
    assert_eq!(
        app.get("/api/v2/users/me").await.body["user"]["name"],
        "Admin"
    );
}

async fn suspended_users_cannot_authenticate(app: TestApp) {
    app.make_user("Sus", "sus@example.org", "agent").await;
    let sus = Auth::as_user("sus@example.org");
    assert_eq!(
        app.get_as(&sus, "/api/v2/users/me").await.body["user"]["email"],
        "sus@example.org"
    );
    app.upsert(json!({"email": "sus@example.org", "suspended": true}))
        .await;
    let r = app.get_as(&sus, "/api/v2/users/me").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.post_as(&sus, PATH, body()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
