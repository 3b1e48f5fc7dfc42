//! Request bodies: JSON only (415 otherwise, on every endpoint, before any handler), and no more
//! bytes of them read and parsed at once than the server's budget.

use std::time::Duration;

use deskd_server::Config;
use deskd_server::scopes::ROUTES;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_EMAIL, ADMIN_TOKEN, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    non_json_bodies_are_415_everywhere,
    json_with_parameters_and_bodiless_requests_pass,
);

/// Sends `body` with `content_type` (none when `None`) as the admin.
async fn send_typed(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .basic_auth(format!("{ADMIN_EMAIL}/token"), Some(ADMIN_TOKEN))
        .body(body.to_owned());
    if let Some(t) = content_type {
        req = req.header("Content-Type", t);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

async fn non_json_bodies_are_415_everywhere(app: TestApp) {
    let id = app
        .make_user("Target", "target@example.org", "end-user")
        .await;
    let before = app.table_counts().await;
    let body = r#"{"user": {"name": "Form", "email": "form@example.org"}}"#;
    // Every route that takes a method with a body, ids filled in: a browser form's types and a
    // body with no type at all are refused before the handler, whether or not it reads bodies.
    for (method, pattern, _) in ROUTES {
        if matches!(*method, "GET" | "HEAD") {
            continue;
        }
        let path = pattern
            .replace("{user_id}", &id.to_string())
            .replace("{id}", &id.to_string())
            .replace("{organization_id}", "1")
            .replace("{identity_id}", "1")
            .replace("{job_id}", "1");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        for t in [
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("text/plain"),
            Some("application/jsonx"),
            None,
        ] {
            let (status, err) = send_typed(&app, method.clone(), &path, t, body).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {path} with {t:?}: {err}"
            );
            assert_eq!(err["error"], "UnsupportedMediaType", "{method} {path}");
        }
    }
    assert_eq!(app.table_counts().await, before, "nothing written");
}

async fn json_with_parameters_and_bodiless_requests_pass(app: TestApp) {
    for (i, t) in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"user": {"name": "J", "email": format!("j{i}@example.org")}}).to_string();
        let (status, b) = send_typed(
            &app,
            Method::POST,
            "/api/v2/users/create_or_update",
            Some(t),
            &body,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{t}: {b}");
    }
    // A DELETE without a body nor a content type, as several clients send it, and one whose
    // client still names a form type for its empty body.
    let id = app.make_user("Gone", "gone@example.org", "end-user").await;
    let (status, b) = send_typed(
        &app,
        Method::DELETE,
        &format!("/api/v2/users/{id}"),
        None,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let id = app
        .make_user("Tagged", "tagged@example.org", "end-user")
        .await;
    let (status, b) = send_typed(
        &app,
        Method::DELETE,
        &format!("/api/v2/users/{id}/tags?tags=a"),
        Some("application/x-www-form-urlencoded"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
}

/// Reads one HTTP/1.1 response's status code off `stream`.
async fn status_of(stream: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line")
}

/// A body being uploaded holds its share of the budget: with a budget of 1 MiB, a request that
/// announced 2 MiB and is still sending keeps a second body from being read until it is done;
/// requests without a body are not held. The second request is then answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_flight_holds_the_budget_sqlite() {
    budget_is_shared(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_flight_holds_the_budget_postgres() {
    budget_is_shared(Backend::Postgres).await
}

async fn budget_is_shared(backend: Backend) {
    let config = Config {
        rate_limits: false,
        body_budget: 1024 * 1024,
        ..Config::default()
    };
    let app = std::sync::Arc::new(TestApp::spawn_with(backend, config).await);
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{ADMIN_EMAIL}/token:{ADMIN_TOKEN}"))
    };
    let big = 2 * 1024 * 1024;
    let mut first = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/v2/users/create_or_update HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {big}\r\n\r\n"
    );
    first.write_all(head.as_bytes()).await.expect("write");
    let prefix = br#"{"user": {"name": "Big", "email": "big@example.org", "notes": ""#;
    first.write_all(prefix).await.expect("write");
    // The first request's headers are authenticated and its budget taken as soon as they
    // arrive; give that a moment before the second asks (nothing else is timed).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A small write waits while the big body is in flight...
    let small = {
        let app = app.clone();
        tokio::spawn(async move {
            app.upsert(json!({"name": "Small", "email": "small@example.org"}))
                .await
        })
    };
    // ...but a request without a body does not.
    let r = app.get("/api/v2/users/me").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!small.is_finished(), "the second body waits for the budget");
    // The big body completes (its note is too long: a 422, as any such body); then the small
    // one runs.
    let rest = big - prefix.len() - 3;
    first.write_all(&vec![b'x'; rest]).await.expect("write");
    first.write_all(br#""}}"#).await.expect("write");
    let status = status_of(&mut first).await;
    assert!(matches!(status, 201 | 422), "{status}");
    let r = tokio::time::timeout(Duration::from_secs(30), small)
        .await
        .expect("the small write ran once the budget was free")
        .expect("task");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}
