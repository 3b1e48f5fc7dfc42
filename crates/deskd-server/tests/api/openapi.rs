//! The OpenAPI document: served, committed, and true to the router.

use reqwest::{Method, StatusCode};

use crate::helpers::{Auth, Backend, TestApp};

/// The committed copy at the repository root must equal what the code builds. To refresh it
/// after a change: `DESKD_BLESS=1 cargo test -p deskd-server --test api openapi`.
#[test]
fn committed_document_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
    let generated =
        serde_json::to_string_pretty(&deskd_server::openapi::document()).unwrap() + "\n";
    if std::env::var_os("DESKD_BLESS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json is stale: run DESKD_BLESS=1 cargo test -p deskd-server --test api openapi"
    );
}

/// Every operation the document names is routed (no InvalidEndpoint), and the document is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let served = app.get_as(&Auth::None, "/api/v2/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body["openapi"], "3.1.0");
    for op in deskd_server::openapi::OPERATIONS {
        let path = format!("/api/v2{}", op.path)
            .replace("{job_id}", "V3-0")
            .replace(['{', '}'], "")
            .replace("user_id", "1")
            .replace("identity_id", "1")
            .replace("membership_id", "1")
            .replace("organization_id", "1")
            .replace("token_id", "1");
        let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let r = app
            .send(method, &path, &Auth::admin(), Some(b"{}".to_vec()))
            .await;
        assert_ne!(r.body["error"], "InvalidEndpoint", "{} {path}", op.method);
    }
}
