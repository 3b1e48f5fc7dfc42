//! Reading users: list, show_many, search, count, and the deleted users.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use deskd_model::Role;
use deskd_model::user::UserRecord;
use deskd_store::user_queries::{self, UserFilter};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Admin, Staff};
use crate::error::ApiError;
use crate::extract::path_id;
use crate::extract::{BaseUrl, Params};
use crate::paging::{Paging, cursor_body, offset_body};
use crate::respond::ok;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/users", get(list).post(crate::users::create))
        .route("/api/v2/users/show_many", get(show_many))
        .route("/api/v2/users/search", get(search))
        .route("/api/v2/users/count", get(count))
        .route("/api/v2/users/autocomplete", get(autocomplete))
        .route("/api/v2/users/{id}/related", get(related))
        .route("/api/v2/deleted_users", get(deleted_list))
        .route("/api/v2/deleted_users/count", get(deleted_count))
        .route(
            "/api/v2/deleted_users/{id}",
            get(deleted_show).delete(deleted_erase),
        )
}

fn last(params: &[(String, String)]) -> BTreeMap<String, String> {
    params.iter().cloned().collect()
}

fn roles(params: &[(String, String)]) -> Result<Vec<Role>, ApiError> {
    params
        .iter()
        .filter(|(k, _)| k == "role" || k == "role[]")
        .map(|(_, v)| {
            Role::parse(v).ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidValue",
                    format!("role {v} is not end-user, agent or admin"),
                )
            })
        })
        .collect()
}

/// One page of `filter` in either pagination style, under `key`.
pub(crate) async fn page(
    app: &AppState,
    filter: &UserFilter,
    query: &BTreeMap<String, String>,
    base: &str,
    path: &str,
    key: &str,
    wire: fn(&UserRecord, &str) -> Value,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(query)?;
    let mut conn = app.store.reader().await?;
    let body = match paging {
        Paging::Offset { page, per_page } => {
            let users =
                user_queries::page_by_offset(&mut conn, filter, (page - 1) * per_page, per_page)
                    .await?;
            let count = user_queries::count(&mut conn, filter).await?;
            offset_body(
                key,
                users.iter().map(|u| wire(u, base)).collect(),
                count,
                page,
                per_page,
                base,
                path,
                query,
            )
        }
        Paging::Cursor {
            size,
            after,
            before,
        } => {
            let mut users =
                user_queries::page_by_id(&mut conn, filter, after, before, size).await?;
            let has_more = users.len() as i64 > size;
            if has_more {
                if before.is_some() {
                    users.remove(0);
                } else {
                    users.truncate(size as usize);
                }
            }
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            cursor_body(
                key,
                users.iter().map(|u| wire(u, base)).collect(),
                &ids,
                has_more,
                size,
                base,
                path,
                query,
            )
        }
    };
    Ok(ok(&body))
}

pub(crate) fn user_wire(u: &UserRecord, base: &str) -> Value {
    serde_json::to_value(u.to_wire(base)).unwrap_or(Value::Null)
}

/// `GET /api/v2/users`: active users; `role`, `role[]` and `external_id` filters.
async fn list(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let query = last(&params);
    let filter = UserFilter {
        roles: roles(&params)?,
        external_id: query.get("external_id").cloned(),
        ..UserFilter::default()
    };
    page(&app, &filter, &query, &base, "/users", "users", user_wire).await
}

/// `GET /api/v2/users/show_many?ids=1,2` or `?external_ids=a,b`: unknown ones are left out, and
/// deleted users unless `include_deleted=true`.
async fn show_many(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let query = last(&params);
    let ids: Vec<i64> = match query.get("ids") {
        Some(raw) => crate::extract::show_many_values("ids", raw)?
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        None => Vec::new(),
    };
    let external_ids = match query.get("external_ids") {
        Some(raw) => crate::extract::show_many_values("external_ids", raw)?,
        None => Vec::new(),
    };
    let empty = |k: &str| query.get(k).is_some_and(|v| v.trim().is_empty());
    if empty("ids")
        || empty("external_ids")
        || (!query.contains_key("ids") && !query.contains_key("external_ids"))
    {
        return Err(ApiError::bad_request(
            "ParameterMissing",
            "param is missing or the value is empty: ids",
        ));
    }
    let include_deleted = query.get("include_deleted").is_some_and(|v| v == "true");
    let mut conn = app.store.reader().await?;
    let users = user_queries::show_many(&mut conn, &ids, &external_ids, include_deleted).await?;
    let list: Vec<Value> = users.iter().map(|u| user_wire(u, &base)).collect();
    let count = list.len();
    Ok(ok(
        &json!({"users": list, "next_page": null, "previous_page": null, "count": count}),
    ))
}

/// `GET /api/v2/users/search?query=...` or `?external_id=...`; offset pagination only.
async fn search(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let mut query = last(&params);
    let mut filter = UserFilter::default();
    match (query.get("query"), query.get("external_id")) {
        (Some(q), _) => {
            filter.terms = deskd_model::search::parse(q)
                .map_err(|e| ApiError::bad_request("InvalidQuery", e))?;
        }
        (None, Some(ext)) => filter.external_id = Some(ext.clone()),
        (None, None) => {
            return Err(ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: query",
            ));
        }
    }
    // Search pages by offset only.
    query.retain(|k, _| !k.starts_with("page["));
    page(
        &app,
        &filter,
        &query,
        &base,
        "/users/search",
        "users",
        user_wire,
    )
    .await
}

async fn count_body(app: &AppState, filter: &UserFilter) -> Result<Response, ApiError> {
    let mut conn = app.store.reader().await?;
    let n = user_queries::count(&mut conn, filter).await?;
    Ok(ok(
        &json!({"count": {"refreshed_at": deskd_model::time::iso(deskd_model::time::now()), "value": n}}),
    ))
}

/// `GET /api/v2/users/count`.
async fn count(
    State(app): State<AppState>,
    Staff(_): Staff,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let filter = UserFilter {
        roles: roles(&params)?,
        ..UserFilter::default()
    };
    count_body(&app, &filter).await
}

/// A deleted user as `/deleted_users` shows it.
fn deleted_wire(u: &UserRecord, base: &str) -> Value {
    json!({
        "id": u.id,
        "url": format!("{base}/deleted_users/{}.json", u.id),
        "name": u.name,
        "email": u.email,
        "created_at": deskd_model::time::iso(u.created_at),
        "updated_at": deskd_model::time::iso(u.updated_at),
        "time_zone": u.time_zone,
        "phone": u.phone,
        "shared_phone_number": u.shared_phone_number,
        "photo": null,
        "locale_id": u.locale_id,
        "locale": u.locale,
        "organization_id": u.organization_id,
        "role": u.role.as_str(),
        "active": false,
    })
}

fn deleted() -> UserFilter {
    UserFilter {
        deleted: true,
        ..UserFilter::default()
    }
}

async fn deleted_list(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(params): Params,
) -> Result<Response, ApiError> {
    page(
        &app,
        &deleted(),
        &last(&params),
        &base,
        "/deleted_users",
        "deleted_users",
        deleted_wire,
    )
    .await
}

async fn deleted_count(State(app): State<AppState>, Staff(_): Staff) -> Result<Response, ApiError> {
    count_body(&app, &deleted()).await
}

async fn load_deleted(app: &AppState, id: i64) -> Result<UserRecord, ApiError> {
    let mut conn = app.store.reader().await?;
    deskd_store::users::load(&mut conn, id)
        .await?
        .filter(|u| !u.active)
        .ok_or(ApiError::NotFound)
}

async fn deleted_show(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = load_deleted(&app, path_id(&id)?).await?;
    Ok(ok(&json!({"deleted_user": deleted_wire(&user, &base)})))
}

/// `DELETE /api/v2/deleted_users/{id}`: permanent deletion of a soft-deleted user; its personal
/// data is erased, not hidden.
async fn deleted_erase(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let now = deskd_model::time::now();
    let erased = app
        .store
        .write(move |conn| Box::pin(async move { user_queries::erase(conn, id, now).await }))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&json!({"deleted_user": deleted_wire(&erased, &base)})))
}

/// `GET /api/v2/users/autocomplete?name=ro`: active users whose name starts with `name`
/// (case-insensitive), leaving out users with a foreign identity, as Zendesk does; offset pages
/// of at most 100.
async fn autocomplete(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let query = last(&params);
    let name = query
        .get("name")
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: name",
            )
        })?;
    let filter = UserFilter {
        name_prefix: Some(name),
        ..UserFilter::default()
    };
    let mut query = query;
    query.retain(|k, _| !k.starts_with("page["));
    page(
        &app,
        &filter,
        &query,
        &base,
        "/users/autocomplete",
        "users",
        user_wire,
    )
    .await
}

/// `GET /api/v2/users/{id}/related`: counts of what relates to the user, with Zendesk's keys;
/// deskd keeps no tickets nor subscriptions, so each is 0.
async fn related(
    State(app): State<AppState>,
    Staff(_): Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let mut conn = app.store.reader().await?;
    deskd_store::users::load(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&json!({"user_related": {
        "assigned_tickets": 0,
        "ccd_tickets": 0,
        "organization_subscriptions": 0,
        "requested_tickets": 0,
    }})))
}
