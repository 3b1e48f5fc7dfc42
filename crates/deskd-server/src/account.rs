//! `/api/v2/account/settings`: the deskd-specific account switches.
//!
//! `settings.deskd.bulk_user_import` (bool) allows `create_many` and `create_or_update_many`;
//! Zendesk keeps bulk imports off until support enables them, deskd's default comes from
//! `deskd serve --bulk-import`.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use deskd_store::settings;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{JsonObject, require_object};
use crate::respond::ok;

const BULK_IMPORT: &str = "bulk_user_import";

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v2/account/settings", get(show).put(update))
}

/// Whether bulk user imports are on for the account.
pub async fn bulk_import_enabled(app: &AppState) -> Result<bool, ApiError> {
    let mut conn = app.store.reader().await?;
    Ok(match settings::get(&mut conn, BULK_IMPORT).await? {
        Some(v) => v == "true",
        None => app.config.bulk_import_default,
    })
}

async fn body(app: &AppState) -> Result<Value, ApiError> {
    Ok(json!({"settings": {"deskd": {BULK_IMPORT: bulk_import_enabled(app).await?}}}))
}

async fn show(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    Ok(ok(&body(&app).await?))
}

/// `PUT /api/v2/account/settings` `{"settings": {"deskd": {"bulk_user_import": false}}}`.
async fn update(
    State(app): State<AppState>,
    Admin(_): Admin,
    JsonObject(req): JsonObject,
) -> Result<Response, ApiError> {
    let settings_obj = require_object(&req, "settings")?;
    if let Some(deskd) = settings_obj.get("deskd") {
        let Value::Object(deskd) = deskd else {
            return Err(deskd_model::ValidationErrors::single(
                "deskd",
                "is invalid",
                Some("InvalidValue"),
            )
            .into());
        };
        if let Some(v) = deskd.get(BULK_IMPORT) {
            let Value::Bool(on) = v else {
                return Err(deskd_model::ValidationErrors::single(
                    BULK_IMPORT,
                    "is invalid",
                    Some("InvalidValue"),
                )
                .into());
            };
            let value = on.to_string();
            app.store
                .write(move |conn| {
                    let value = value.clone();
                    Box::pin(async move { settings::set(conn, BULK_IMPORT, &value).await })
                })
                .await?;
        }
    }
    Ok(ok(&body(&app).await?))
}
