//! `/api/v2/users/{user_id}/identities`: list, show, create, update, make_primary, verify,
//! request_verification, delete. Identity values are unique across the account.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use deskd_model::identity::{IdentityChange, IdentityRecord};
use deskd_model::identity_plan::{self, IdentityOp};
use deskd_store::{identities, users};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::path_id;
use crate::extract::{BaseUrl, JsonObject, Params, require_object};
use crate::respond::{json_response, ok};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/users/{user_id}/identities", get(list).post(create))
        .route(
            "/api/v2/users/{user_id}/identities/{id}",
            get(show).put(update).delete(remove),
        )
        .route(
            "/api/v2/users/{user_id}/identities/{id}/make_primary",
            put(make_primary),
        )
        .route(
            "/api/v2/users/{user_id}/identities/{id}/verify",
            put(verify),
        )
        .route(
            "/api/v2/users/{user_id}/identities/{id}/request_verification",
            put(request_verification),
        )
}

/// The user named by the path, if `caller` may read (or, with `write`, change) its identities.
async fn check(
    app: &AppState,
    caller: &Caller,
    user_id: &str,
    write: bool,
) -> Result<i64, ApiError> {
    let user_id = path_id(user_id)?;
    let mut conn = app.store.reader().await?;
    let user = users::load(&mut conn, user_id)
        .await?
        .filter(|u| u.active)
        .ok_or(ApiError::NotFound)?;
    if !identity_plan::allowed(caller.actor(), &user, write) {
        return Err(ApiError::Forbidden);
    }
    Ok(user_id)
}

/// Runs one identity operation in a write transaction; the store locks the user and the model
/// decides (permissions included, on the row as locked).
async fn change(
    app: &AppState,
    caller: &Caller,
    user_id: &str,
    op: IdentityOp,
) -> Result<identities::Applied, ApiError> {
    let user_id = path_id(user_id)?;
    let actor = caller.actor();
    let now = deskd_model::time::now();
    let op = std::sync::Arc::new(op);
    Ok(app
        .store
        .write(move |conn| {
            let op = op.clone();
            Box::pin(async move { identities::apply(conn, user_id, &op, actor, now).await })
        })
        .await??)
}

fn shown(applied: &identities::Applied) -> Result<&IdentityRecord, ApiError> {
    applied.shown.as_ref().ok_or(ApiError::NotFound)
}

async fn list(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path(user_id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let user_id = check(&app, &caller, &user_id, false).await?;
    let types: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "type[]" || k == "type")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut conn = app.store.reader().await?;
    let list: Vec<Value> = users::identities(&mut conn, user_id)
        .await?
        .iter()
        .filter(|i| types.is_empty() || types.contains(&i.kind.as_str()))
        .map(|i| json!(i.to_wire(&base)))
        .collect();
    let count = list.len();
    Ok(ok(
        &json!({"identities": list, "next_page": null, "previous_page": null, "count": count}),
    ))
}

async fn show(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user_id = check(&app, &caller, &user_id, false).await?;
    let mut conn = app.store.reader().await?;
    let ident = identities::load(&mut conn, user_id, path_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&json!({"identity": ident.to_wire(&base)})))
}

/// `POST`: 201 with the new identity; the first of its type, or one sent with `primary: true`,
/// becomes primary.
async fn create(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path(user_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    check(&app, &caller, &user_id, true).await?;
    let input = IdentityChange::from_json(require_object(&body, "identity")?, true, None)?;
    let applied = change(&app, &caller, &user_id, IdentityOp::Create(input)).await?;
    let created = shown(&applied)?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"identity": created.to_wire(&base)}),
    ))
}

/// `PUT`: may change `value` and `verified`; `primary` only through make_primary.
async fn update(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let uid = check(&app, &caller, &user_id, true).await?;
    let id = path_id(&id)?;
    let kind = {
        let mut conn = app.store.reader().await?;
        identities::load(&mut conn, uid, id)
            .await?
            .ok_or(ApiError::NotFound)?
            .kind
    };
    let input = IdentityChange::from_json(require_object(&body, "identity")?, false, Some(&kind))?;
    let applied = change(&app, &caller, &user_id, IdentityOp::Update(id, input)).await?;
    let updated = shown(&applied)?;
    Ok(ok(&json!({"identity": updated.to_wire(&base)})))
}

/// `PUT .../make_primary`: the whole list back, the new primary first.
async fn make_primary(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check(&app, &caller, &user_id, true).await?;
    let id = path_id(&id)?;
    let applied = change(&app, &caller, &user_id, IdentityOp::MakePrimary(id)).await?;
    let mut list = applied.identities;
    list.sort_by_key(|i| (i.id != id, !i.primary, i.id));
    Ok(ok(
        &json!({"identities": list.iter().map(|i| i.to_wire(&base)).collect::<Vec<_>>()}),
    ))
}

async fn verify(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check(&app, &caller, &user_id, true).await?;
    let id = path_id(&id)?;
    let applied = change(&app, &caller, &user_id, IdentityOp::Verify(id)).await?;
    let ident = shown(&applied)?;
    Ok(ok(&json!({"identity": ident.to_wire(&base)})))
}

/// deskd sends no email; the request is accepted as Zendesk accepts it.
async fn request_verification(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user_id = check(&app, &caller, &user_id, true).await?;
    let mut conn = app.store.reader().await?;
    identities::load(&mut conn, user_id, path_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&Value::Null))
}

/// `DELETE`: 204. A user's last identity cannot be removed.
async fn remove(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check(&app, &caller, &user_id, true).await?;
    let id = path_id(&id)?;
    change(&app, &caller, &user_id, IdentityOp::Delete(id)).await?;
    Ok(crate::respond::no_content())
}
