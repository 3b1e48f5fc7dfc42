//! Server-wide behaviour: health, unknown routes, public URL.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Auth, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    healthz_answers_once_the_database_does,
    unknown_routes_are_invalid_endpoint
);

async fn healthz_answers_once_the_database_does(app: TestApp) {
    let r = app.get_as(&Auth::None, "/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-zendesk-api-version"), Some("v2"));
}

async fn unknown_routes_are_invalid_endpoint(app: TestApp) {
    for (method, path) in [
        (Method::GET, "/api/v2/nope"),
        (Method::GET, "/api/v2/users/1/nope.json"),
    ] {
        let r = app.send(method, path, &Auth::admin(), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.body,
            json!({"error": "InvalidEndpoint", "description": "Not found"})
        );
    }
    // A known path with another method: 405 with `Allow`, and a JSON body.
    let r = app
        .send(
            Method::DELETE,
            "/api/v2/users/create_or_update",
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.body["error"], "InvalidEndpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_url_builds_absolute_urls() {
    let config = deskd_server::Config {
        public_url: Some("https://help.example.com/".into()),
        rate_limits: false,
        ..deskd_server::Config::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await;
    let r = app
        .upsert(json!({"name": "P", "email": "p@example.org"}))
        .await;
    let id = r.body["user"]["id"].as_i64().unwrap();
    assert_eq!(
        r.header("location").unwrap(),
        format!("https://help.example.com/api/v2/users/{id}.json")
    );
    // A hostile Host (and forwarded scheme) changes nothing once the public URL is set.
    let r = app
        .client
        .get(app.url(&format!("/api/v2/users/{id}")))
        .basic_auth(
            format!("{}/token", crate::helpers::ADMIN_EMAIL),
            Some(crate::helpers::ADMIN_TOKEN),
        )
        .header("Host", "evil.example")
        .header("X-Forwarded-Proto", "http")
        .send()
        .await
        .expect("request");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        body["user"]["url"],
        format!("https://help.example.com/api/v2/users/{id}.json")
    );
}
