//! `/api/v2/users/{user_id}/identities`: list, show, create, update, make_primary, verify,
//! request_verification, delete. Identity values are unique across the account.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use deskd_model::identity::{IdentityChange, IdentityRecord};
use deskd_model::upsert::NewIdentity;
use deskd_model::{Rejection, Role, ValidationErrors};
use deskd_store::{Conn, StoreError, identities, users};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{BaseUrl, JsonObject, require_object};
use crate::respond::{json_response, ok};
use crate::users::path_id;

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

/// Whether `caller` may read (or, with `write`, change) the identities of `user`: staff may read
/// anyone's, agents change end users' only, end users read their own.
fn allowed(caller: &Caller, user_id: i64, user_role: Role, write: bool) -> bool {
    match caller.role {
        Role::Admin => true,
        Role::Agent => !write || user_role == Role::EndUser,
        Role::EndUser => !write && caller.user_id == user_id,
    }
}

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
    if !allowed(caller, user.id, user.role, write) {
        return Err(ApiError::Forbidden);
    }
    Ok(user_id)
}

/// A duplicate identity value, as Zendesk words it.
fn duplicate(value: &str) -> Rejection {
    Rejection::Invalid(ValidationErrors::single(
        "value",
        &format!("{value} is already being used by another user"),
        Some("DuplicateValue"),
    ))
}

/// Runs a change to one identity in a write transaction, then syncs the user's email/verified.
async fn change<T, F>(app: &AppState, user_id: i64, id: Option<i64>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: for<'c> Fn(
            &'c mut Conn,
            Option<IdentityRecord>,
            i64,
        ) -> deskd_store::BoxFut<'c, Result<Result<T, Rejection>, StoreError>>
        + Send
        + Sync
        + 'static,
{
    let now = deskd_model::time::now();
    let work = std::sync::Arc::new(work);
    let out = app
        .store
        .write(move |conn| {
            let work = work.clone();
            Box::pin(async move {
                let ident = match id {
                    Some(id) => match identities::load(conn, user_id, id).await? {
                        Some(i) => Some(i),
                        None => return Ok(Err(Rejection::NotFound)),
                    },
                    None => None,
                };
                let out = work(conn, ident, now).await?;
                if out.is_ok() {
                    identities::sync_user(conn, user_id, now).await?;
                }
                Ok(out)
            })
        })
        .await??;
    Ok(out)
}

async fn list(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path(user_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
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
    let user_id = check(&app, &caller, &user_id, true).await?;
    let input = IdentityChange::from_json(require_object(&body, "identity")?, true, None)?;
    let created = change(&app, user_id, None, move |conn, _, now| {
        let input = input.clone();
        Box::pin(async move {
            let (kind, value) = (
                input.kind.clone().unwrap_or_default(),
                input.value.clone().unwrap_or_default(),
            );
            if users::id_by_identity(conn, &kind, &value).await?.is_some() {
                return Ok(Err(duplicate(&value)));
            }
            let existing = users::identities(conn, user_id).await?;
            let first_of_kind = !existing.iter().any(|i| i.kind == kind);
            let n = NewIdentity {
                kind: kind.clone(),
                value,
                verified: input.verified.unwrap_or(false),
                primary: first_of_kind,
            };
            let id = users::insert_identity(conn, user_id, &n, now).await?;
            if input.primary == Some(true) && !first_of_kind {
                identities::make_primary(conn, user_id, id, &kind, now).await?;
            }
            Ok(identities::load(conn, user_id, id)
                .await?
                .ok_or(Rejection::NotFound))
        })
    })
    .await?;
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
    let user_id = check(&app, &caller, &user_id, true).await?;
    let id = path_id(&id)?;
    let obj = require_object(&body, "identity")?.clone();
    let updated = change(&app, user_id, Some(id), move |conn, ident, now| {
        let obj = obj.clone();
        Box::pin(async move {
            let Some(ident) = ident else {
                return Ok(Err(Rejection::NotFound));
            };
            let input = match IdentityChange::from_json(&obj, false, Some(&ident.kind)) {
                Ok(i) => i,
                Err(v) => return Ok(Err(Rejection::Invalid(v))),
            };
            if let Some(value) = &input.value {
                if let Some(owner) = users::id_by_identity(conn, &ident.kind, value).await? {
                    if owner != user_id
                        || deskd_model::text::normalize(value)
                            != deskd_model::text::normalize(&ident.value)
                    {
                        return Ok(Err(duplicate(value)));
                    }
                }
                identities::set_value(conn, ident.id, value, now).await?;
            }
            if let Some(v) = input.verified {
                users::set_identity_verified(conn, ident.id, v, now).await?;
            }
            Ok(identities::load(conn, user_id, ident.id)
                .await?
                .ok_or(Rejection::NotFound))
        })
    })
    .await?;
    Ok(ok(&json!({"identity": updated.to_wire(&base)})))
}

/// `PUT .../make_primary`: the whole list back, the new primary first.
async fn make_primary(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user_id = check(&app, &caller, &user_id, true).await?;
    let id = path_id(&id)?;
    change(&app, user_id, Some(id), move |conn, ident, now| {
        Box::pin(async move {
            let Some(ident) = ident else {
                return Ok(Err(Rejection::NotFound));
            };
            identities::make_primary(conn, user_id, ident.id, &ident.kind, now).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    let mut conn = app.store.reader().await?;
    let mut list = users::identities(&mut conn, user_id).await?;
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
    let user_id = check(&app, &caller, &user_id, true).await?;
    let id = path_id(&id)?;
    let ident = change(&app, user_id, Some(id), move |conn, ident, now| {
        Box::pin(async move {
            let Some(ident) = ident else {
                return Ok(Err(Rejection::NotFound));
            };
            users::set_identity_verified(conn, ident.id, true, now).await?;
            Ok(identities::load(conn, user_id, ident.id)
                .await?
                .ok_or(Rejection::NotFound))
        })
    })
    .await?;
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
    let user_id = check(&app, &caller, &user_id, true).await?;
    let id = path_id(&id)?;
    change(&app, user_id, Some(id), move |conn, ident, now| {
        Box::pin(async move {
            let Some(ident) = ident else {
                return Ok(Err(Rejection::NotFound));
            };
            if users::identities(conn, user_id).await?.len() <= 1 {
                return Ok(Err(Rejection::Invalid(ValidationErrors::single(
                    "base",
                    "A user must keep at least one identity",
                    Some("InvalidValue"),
                ))));
            }
            identities::delete(conn, &ident, now).await?;
            Ok(Ok(()))
        })
    })
    .await?;
    app.store.credentials_changed();
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap_or_default())
}
