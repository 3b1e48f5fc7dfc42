use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::respond::json_response;

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// 200 once the database answers, 503 otherwise.
async fn healthz(State(app): State<AppState>) -> Response {
    if app.store.healthy().await {
        json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}
