//! `/api/v2/users/{id}/tags` and `/api/v2/organizations/{id}/tags`: list (`GET`), add (`PUT`),
//! set (`POST`, 201), remove (`DELETE`, tags in the body or `?tags=a,b`); each answers
//! `{"tags": [...]}` with the tags after. Allowed for agents (Zendesk's Tags reference); on users
//! the rules of every user write hold: agents change end users only, soft-deleted users are 404.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use deskd_model::tags::{self, TagOp};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Staff;
use crate::error::ApiError;
use crate::extract::{JsonObject, OptionalJsonObject, Params, path_id};
use crate::respond::json_response;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v2/users/{id}/tags",
            get(list_user)
                .put(add_user)
                .post(set_user)
                .delete(remove_user),
        )
        .route(
            "/api/v2/organizations/{id}/tags",
            get(list_org).put(add_org).post(set_org).delete(remove_org),
        )
}

fn missing() -> ApiError {
    ApiError::bad_request(
        "ParameterMissing",
        "param is missing or the value is empty: tags",
    )
}

/// The tags an add or a set names: the body's `tags` (required).
fn given(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    tags::read(body)?.ok_or_else(missing)
}

/// The tags a remove names: the body's `tags`, else `?tags=`. A remove naming none removes
/// nothing (200 with the tags as they are): node-zendesk's `removeTags` sends its DELETE without
/// a body.
fn given_to_remove(
    body: Option<&Map<String, Value>>,
    pairs: &[(String, String)],
) -> Result<Vec<String>, ApiError> {
    if let Some(list) = body.map(tags::read).transpose()?.flatten() {
        return Ok(list);
    }
    match crate::extract::param(pairs, "tags") {
        Some(raw) => Ok(tags::read_query(raw)?),
        None => Ok(Vec::new()),
    }
}

fn answer(status: StatusCode, list: Vec<String>) -> Response {
    json_response(status, &json!({ "tags": list }))
}

fn status_of(op: TagOp) -> StatusCode {
    match op {
        TagOp::Set => StatusCode::CREATED,
        TagOp::Add | TagOp::Remove => StatusCode::OK,
    }
}

async fn write_user(
    app: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
    op: TagOp,
    list: Vec<String>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let actor = caller.actor();
    let now = deskd_model::time::now();
    let after = app
        .store
        .write(move |conn| {
            let list = list.clone();
            Box::pin(async move { deskd_store::tags::user(conn, id, op, &list, actor, now).await })
        })
        .await??;
    Ok(answer(status_of(op), after))
}

async fn write_org(
    app: &AppState,
    id: &str,
    op: TagOp,
    list: Vec<String>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let now = deskd_model::time::now();
    let after = app
        .store
        .write(move |conn| {
            let list = list.clone();
            Box::pin(async move { deskd_store::tags::organization(conn, id, op, &list, now).await })
        })
        .await??;
    Ok(answer(status_of(op), after))
}

async fn list_user(
    State(app): State<AppState>,
    Staff(_): Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let mut conn = app.store.reader().await?;
    let user = deskd_store::users::load(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(answer(StatusCode::OK, user.tags))
}

async fn add_user(
    State(app): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let list = given(&body)?;
    write_user(&app, &caller, &id, TagOp::Add, list).await
}

async fn set_user(
    State(app): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let list = given(&body)?;
    write_user(&app, &caller, &id, TagOp::Set, list).await
}

async fn remove_user(
    State(app): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
    Query(pairs): Params,
    OptionalJsonObject(body): OptionalJsonObject,
) -> Result<Response, ApiError> {
    let list = given_to_remove(body.as_ref(), &pairs)?;
    write_user(&app, &caller, &id, TagOp::Remove, list).await
}

async fn list_org(
    State(app): State<AppState>,
    Staff(_): Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let mut conn = app.store.reader().await?;
    let org = deskd_store::organizations::load(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(answer(StatusCode::OK, org.tags))
}

async fn add_org(
    State(app): State<AppState>,
    Staff(_): Staff,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let list = given(&body)?;
    write_org(&app, &id, TagOp::Add, list).await
}

async fn set_org(
    State(app): State<AppState>,
    Staff(_): Staff,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let list = given(&body)?;
    write_org(&app, &id, TagOp::Set, list).await
}

async fn remove_org(
    State(app): State<AppState>,
    Staff(_): Staff,
    Path(id): Path<String>,
    Query(pairs): Params,
    OptionalJsonObject(body): OptionalJsonObject,
) -> Result<Response, ApiError> {
    let list = given_to_remove(body.as_ref(), &pairs)?;
    write_org(&app, &id, TagOp::Remove, list).await
}
