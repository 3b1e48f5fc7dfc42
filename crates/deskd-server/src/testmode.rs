//! Test mode: deskd as the test double of a Zendesk integration's test suite.
//!
//! Off by default; `deskd serve --test-mode` (or `DESKD_TEST_MODE=1`) routes the controls under
//! `/__deskd/`, a prefix no Zendesk path uses. With test mode off they are not routed at all, so
//! they answer 404 `InvalidEndpoint` like any unknown path. With it on they need admin
//! credentials, like every other admin endpoint. They are deskd's own, not Zendesk's, and are
//! not in the OpenAPI document.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use deskd_store::reset::reset_account;
use serde_json::json;

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::respond::ok;

/// The prefix of every test-mode path.
pub const PREFIX: &str = "/__deskd";

/// What test mode keeps in this process.
#[derive(Default)]
pub struct TestState {}

impl TestState {
    /// Forgets everything a reset forgets.
    fn reset(&self) {}
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/__deskd", get(info))
        .route("/__deskd/reset", post(reset))
}

/// `GET /__deskd`: that test mode is on, and what it offers.
async fn info(State(_app): State<AppState>, Admin(_): Admin) -> Response {
    ok(&json!({"deskd": {
        "test_mode": true,
        "version": env!("CARGO_PKG_VERSION"),
    }}))
}

/// `POST /__deskd/reset`: back to an empty account, in one write transaction — every user but
/// the account owner, every organization, job, idempotency key and setting; the rate-limit
/// buckets, and this process's test-mode state. The owner and the account's API tokens stay, so
/// the caller is still logged in; cached logins of everyone else stop at once.
async fn reset(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let start = std::time::Instant::now();
    let done = app
        .store
        .write(|conn| Box::pin(async move { reset_account(conn).await }))
        .await?;
    app.limiter.clear();
    if let Some(test) = &app.test {
        test.reset();
    }
    tracing::info!(
        users = done.users,
        organizations = done.organizations,
        jobs = done.jobs,
        "test mode: account reset"
    );
    Ok(ok(&json!({"reset": {
        "owner_id": done.owner_id,
        "deleted": {"users": done.users, "organizations": done.organizations, "jobs": done.jobs},
        "ms": start.elapsed().as_secs_f64() * 1000.0,
    }})))
}
