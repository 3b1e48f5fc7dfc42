//! Liveness and readiness.
//!
//! `/healthz` is liveness: the process answers (and says whether its database does). `/readyz` is
//! readiness, for a load balancer: 200 only while this replica can serve (database reachable,
//! schema migrated to this build's version, not shutting down); else 503 with the reason.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::respond::json_response;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// 200 once the database answers, 503 otherwise.
async fn healthz(State(app): State<AppState>) -> Response {
    if app.store.healthy().await {
        json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

async fn readyz(State(app): State<AppState>) -> Response {
    let not_ready = |reason: String| {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "unavailable", "reason": reason}),
        )
    };
    if app.draining.load(Ordering::Acquire) {
        return not_ready("shutting down".to_owned());
    }
    match app.store.readiness().await {
        Ok(()) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Err(reason) => not_ready(reason),
    }
}
