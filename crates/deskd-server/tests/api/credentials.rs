//! Account API tokens, passwords, and revocation reaching every replica.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, Auth, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    api_tokens_are_shown_once_and_revoked_at_once,
    passwords_set_and_changed
);

async fn api_tokens_are_shown_once_and_revoked_at_once(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    let r = app
        .post(
            "/api/v2/api_tokens.json",
            json!({"api_token": {"description": "integration"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = r.body["api_token"]["token"].as_str().unwrap().to_owned();
    let id = r.body["api_token"]["id"].as_i64().unwrap();
    assert!(token.len() >= 40);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM api_tokens WHERE digest = '{token}'"
        ))
        .await,
        0,
        "only a digest is stored"
    );
    let list = app.get("/api/v2/api_tokens").await;
    assert!(!list.text.contains(&token), "never listed");
    assert!(
        list.body["api_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["description"] == "integration")
    );
    let as_agent = Auth::Token("agent@example.org".into(), token.clone());
    assert_eq!(
        app.get_as(&as_agent, "/api/v2/users/me").await.body["user"]["email"],
        "agent@example.org"
    );
    assert_eq!(
        app.get_as(&as_agent, "/api/v2/api_tokens").await.status,
        StatusCode::FORBIDDEN,
        "admins only"
    );
    let d = app
        .send(
            Method::DELETE,
            &format!("/api/v2/api_tokens/{id}.json"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_as(&as_agent, "/api/v2/users/me").await.status,
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v2/api_tokens/{id}"),
            &Auth::admin(),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

async fn passwords_set_and_changed(app: TestApp) {
    let agent = app.make_user("Agent", "agent@example.org", "agent").await;
    let path = format!("/api/v2/users/{agent}/password.json");
    // An admin sets another user's password with POST (PUT changes one's own: see below).
    let short = app.post(&path, json!({"password": "short"})).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.put(&path, json!({"password": "first password"}))
            .await
            .status,
        StatusCode::FORBIDDEN,
        "PUT is only for one's own password"
    );
    assert_eq!(
        app.post(&path, json!({"password": "first password"}))
            .await
            .status,
        StatusCode::OK
    );
    let with_first = Auth::Password("agent@example.org".into(), "first password".into());
    assert_eq!(
        app.get_as(&with_first, "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    // The agent changes its own, proving the old one.
    let wrong = app
        .send(
            Method::PUT,
            &path,
            &with_first,
            Some(
                serde_json::to_vec(
                    &json!({"password": "second password", "previous_password": "nope"}),
                )
                .unwrap(),
            ),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let right = app
        .send(
            Method::PUT,
            &path,
            &with_first,
            Some(
                serde_json::to_vec(
                    &json!({"password": "second password", "previous_password": "first password"}),
                )
                .unwrap(),
            ),
        )
        .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.text);
    assert_eq!(
        app.get_as(&with_first, "/api/v2/users/me").await.status,
        StatusCode::UNAUTHORIZED,
        "the old password is gone at once"
    );
    let admin_id = app.get("/api/v2/users/me").await.body["user"]["id"]
        .as_i64()
        .unwrap();
    let other = app
        .send(
            Method::PUT,
            &format!("/api/v2/users/{admin_id}/password"),
            &Auth::Password("agent@example.org".into(), "second password".into()),
            Some(serde_json::to_vec(&json!({"password": "taken over!"})).unwrap()),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let hash = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {agent} AND password_hash LIKE '$argon2id$%'"
        ))
        .await;
    assert_eq!(hash, 1);
    let _ = ADMIN_EMAIL;
}

/// A token revoked through one server stops working on another server of the same database
/// within the epoch poll (200 ms), even though that server had the login cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_another_replica() {
    if crate::helpers::pg_skipped() {
        return;
    }
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = TestApp::replica_of(
        &a,
        deskd_server::Config {
            rate_limits: false,
            ..deskd_server::Config::default()
        },
    )
    .await;
    let r = a
        .post(
            "/api/v2/api_tokens",
            json!({"api_token": {"description": "replica"}}),
        )
        .await;
    let token = r.body["api_token"]["token"].as_str().unwrap().to_owned();
    let id = r.body["api_token"]["id"].as_i64().unwrap();
    let auth = Auth::Token(ADMIN_EMAIL.into(), token);
    assert_eq!(
        b.get_as(&auth, "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    assert_eq!(
        a.send(
            Method::DELETE,
            &format!("/api/v2/api_tokens/{id}"),
            &Auth::admin(),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let start = Instant::now();
    while b.get_as(&auth, "/api/v2/users/me").await.status != StatusCode::UNAUTHORIZED {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the other replica still accepts the revoked token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
