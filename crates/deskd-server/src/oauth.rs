//! `/api/v2/oauth/tokens`: bearer tokens an admin issues for a user, with Zendesk's scopes (`read`,
//! `write`, `users[:read|:write]`, `organizations[:read|:write]`; see `scopes.rs`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, post};
use deskd_model::time;
use deskd_store::{credentials, users};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Admin, digest, new_secret};
use crate::error::ApiError;
use crate::extract::path_id;
use crate::extract::{BaseUrl, JsonObject, require_object};
use crate::respond::json_response;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/oauth/tokens", post(create))
        .route("/api/v2/oauth/tokens/{id}", delete(revoke))
}

/// `POST /api/v2/oauth/tokens` `{"token": {"user_id": N, "scopes": ["read", "write"]}}`: 201 with
/// the full token, shown this once.
async fn create(
    State(app): State<AppState>,
    Admin(caller): Admin,
    BaseUrl(base): BaseUrl,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let spec = require_object(&body, "token")?;
    let user_id = match spec.get("user_id") {
        None | Some(Value::Null) => caller.user_id,
        Some(v) => deskd_model::input::parse_int(v)
            .ok()
            .flatten()
            .ok_or_else(|| {
                deskd_model::ValidationErrors::single(
                    "user_id",
                    "is not a number",
                    Some("InvalidValue"),
                )
            })?,
    };
    let scopes: Vec<String> = match spec.get("scopes") {
        None | Some(Value::Null) => vec!["read".into(), "write".into()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        Some(_) => {
            return Err(deskd_model::ValidationErrors::single(
                "scopes",
                "is invalid",
                Some("InvalidValue"),
            )
            .into());
        }
    };
    if scopes.is_empty() || !scopes.iter().all(|s| crate::scopes::Scopes::known(s)) {
        return Err(deskd_model::ValidationErrors::single(
            "scopes",
            "is invalid",
            Some("InvalidValue"),
        )
        .into());
    }
    let secret = new_secret();
    let token_digest = digest(&secret);
    let now = time::now();
    let token = app
        .store
        .write(move |conn| {
            let (scopes, token_digest) = (scopes.clone(), token_digest.clone());
            Box::pin(async move {
                if users::load(conn, user_id).await?.is_none() {
                    return Ok(None);
                }
                credentials::insert_oauth_token(conn, user_id, &token_digest, &scopes, now)
                    .await
                    .map(Some)
            })
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    let body = json!({"token": {
        "url": format!("{base}/oauth/tokens/{}.json", token.id),
        "id": token.id,
        "user_id": token.user_id,
        "client_id": null,
        "token": secret,
        "full_token": secret,
        "scopes": token.scopes,
        "created_at": time::iso(token.created_at),
        "expires_at": null,
    }});
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `DELETE /api/v2/oauth/tokens/{id}`: 204; the token stops working at once.
async fn revoke(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let deleted = app
        .store
        .write(move |conn| Box::pin(async move { credentials::delete_oauth_token(conn, id).await }))
        .await?;
    if !deleted {
        return Err(ApiError::NotFound);
    }
    Ok(crate::respond::no_content())
}
