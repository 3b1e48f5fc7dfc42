//! `/api/v2/organizations`: create, create_or_update, list, show, show_many, search, update,
//! delete, and the users of one organization.

use std::collections::BTreeMap;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};

use axum::response::Response;
use axum::routing::{get, post};
use deskd_model::Saved;
use deskd_model::organization::OrganizationRecord;
use deskd_model::organization_input::OrganizationInput;
use deskd_store::organizations;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Admin, Staff};
use crate::error::ApiError;
use crate::extract::path_id;
use crate::extract::{BaseUrl, JsonObject, Params, param, require_object};
use crate::paging::{ForwardsList, Listing, Paging, forwards_page, offset_body};
use crate::respond::ok;

/// Most values `show_many` takes.

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/organizations", get(list).post(create))
        .route(
            "/api/v2/organizations/create_or_update",
            post(create_or_update),
        )
        .route("/api/v2/organizations/show_many", get(show_many))
        .route("/api/v2/organizations/search", get(search))
        .route("/api/v2/organizations/autocomplete", get(autocomplete))
        .route("/api/v2/organizations/count", get(count))
        .route(
            "/api/v2/organizations/{id}",
            get(show).put(update).delete(destroy),
        )
        .route("/api/v2/organizations/{id}/users", get(users))
        .route("/api/v2/organizations/{id}/related", get(related))
}

/// `{"organization": ...}`, 201 or 200, with an absolute `Location`.
fn saved_response(saved: &Saved<OrganizationRecord>, base: &str) -> Response {
    let wire = saved.record().to_wire(base);
    crate::respond::saved(saved, "organization", &wire, &wire.url, true)
}

fn read_input(
    body: &serde_json::Map<String, Value>,
    with_id: bool,
) -> Result<Arc<OrganizationInput>, ApiError> {
    Ok(Arc::new(OrganizationInput::from_json(
        require_object(body, "organization")?,
        with_id,
    )?))
}

/// `POST /api/v2/organizations`: 201 with `Location`.
async fn create(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let input = read_input(&body, false)?;
    let now = deskd_model::time::now();
    let org = app
        .store
        .write(move |conn| {
            let input = input.clone();
            Box::pin(async move { organizations::create(conn, &input, now).await })
        })
        .await??;
    Ok(saved_response(&Saved::Created(org), &base))
}

/// `POST /api/v2/organizations/create_or_update`: matched by `id`, then `external_id` (never by
/// name); 201 when created, 200 when updated, `Location` on both.
async fn create_or_update(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let input = read_input(&body, true)?;
    let now = deskd_model::time::now();
    let saved = app
        .store
        .write(move |conn| {
            let input = input.clone();
            Box::pin(async move { organizations::create_or_update(conn, &input, now).await })
        })
        .await??;
    Ok(saved_response(&saved, &base))
}

/// `PUT /api/v2/organizations/{id}`: only the supplied keys change.
async fn update(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let input = read_input(&body, false)?;
    let now = deskd_model::time::now();
    let org = app
        .store
        .write(move |conn| {
            let input = input.clone();
            Box::pin(async move { organizations::update_by_id(conn, id, &input, now).await })
        })
        .await??;
    Ok(ok(&json!({ "organization": org.to_wire(&base) })))
}

/// `DELETE /api/v2/organizations/{id}`: 204; its users keep no organization. A body is ignored.
async fn destroy(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let now = deskd_model::time::now();
    let deleted = app
        .store
        .write(move |conn| Box::pin(async move { organizations::delete(conn, id, now).await }))
        .await?;
    if !deleted {
        return Err(ApiError::NotFound);
    }
    Ok(crate::respond::no_content())
}

/// `GET /api/v2/organizations/{id}`.
async fn show(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let mut conn = app.store.reader().await?;
    let org = organizations::load(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&json!({ "organization": org.to_wire(&base) })))
}

/// The account's organizations as a [`ForwardsList`].
struct AllOrganizations<'a> {
    conn: &'a mut deskd_store::Conn,
    base: &'a str,
}

impl AllOrganizations<'_> {
    fn rows(&self, orgs: Vec<OrganizationRecord>) -> Vec<(i64, Value)> {
        orgs.iter()
            .map(|o| (o.id, json!(o.to_wire(self.base))))
            .collect()
    }
}

impl ForwardsList for AllOrganizations<'_> {
    async fn count(&mut self) -> Result<i64, ApiError> {
        Ok(organizations::count(self.conn).await?)
    }
    async fn offset(&mut self, offset: i64, limit: i64) -> Result<Vec<(i64, Value)>, ApiError> {
        let orgs = organizations::list(self.conn, offset, limit).await?;
        Ok(self.rows(orgs))
    }
    async fn after(&mut self, id: i64, limit: i64) -> Result<Vec<(i64, Value)>, ApiError> {
        let orgs = organizations::page_by_id(self.conn, id, limit).await?;
        Ok(self.rows(orgs))
    }
}

/// `GET /api/v2/organizations`: by id, ascending; offset pagination, or cursor pagination
/// forwards with `page[size]` / `page[after]`.
async fn list(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    let query: BTreeMap<String, String> = pairs.into_iter().collect();
    let mut conn = app.store.reader().await?;
    let listing = Listing {
        key: "organizations",
        base: &base,
        path: "/organizations",
        query: &query,
    };
    let mut all = AllOrganizations {
        conn: &mut conn,
        base: &base,
    };
    Ok(ok(&forwards_page(&listing, &mut all).await?))
}

/// `GET /api/v2/organizations/show_many?ids=1,2` or `?external_ids=a,b`: unknown ones are
/// dropped silently.
async fn show_many(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    if ["ids", "external_ids"]
        .iter()
        .any(|k| param(&pairs, k).is_some_and(|v| v.trim().is_empty()))
    {
        return Err(ApiError::bad_request(
            "ParameterMissing",
            "param is missing or the value is empty: ids",
        ));
    }
    let orgs = match (param(&pairs, "ids"), param(&pairs, "external_ids")) {
        (Some(raw), _) => {
            // A value that is no id names no organization.
            let ids: Vec<i64> = crate::extract::show_many_values("ids", raw)?
                .iter()
                .filter_map(|v| v.parse::<i64>().ok())
                .collect();
            let mut conn = app.store.reader().await?;
            organizations::load_many(&mut conn, &ids).await?
        }
        (None, Some(raw)) => {
            let external_ids = crate::extract::show_many_values("external_ids", raw)?;
            let mut conn = app.store.reader().await?;
            organizations::load_many_by_external_ids(&mut conn, &external_ids).await?
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: ids",
            ));
        }
    };
    let wire: Vec<_> = orgs.iter().map(|o| o.to_wire(&base)).collect();
    Ok(ok(&json!({
        "organizations": wire,
        "next_page": null,
        "previous_page": null,
        "count": wire.len(),
    })))
}

/// `GET /api/v2/organizations/autocomplete?name=ac`: organizations whose name starts with the
/// value (case-insensitive), by name; offset pages.
async fn autocomplete(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    let name = param(&pairs, "name")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: name",
            )
        })?
        .to_owned();
    let query: BTreeMap<String, String> = pairs.into_iter().collect();
    let (page, per_page) = match Paging::from_query(&query)? {
        Paging::Offset { page, per_page } => (page, per_page),
        Paging::Cursor { .. } => {
            return Err(ApiError::bad_request(
                "InvalidPaginationParameter",
                "autocomplete pages by offset (page, per_page)",
            ));
        }
    };
    let mut conn = app.store.reader().await?;
    let (count, orgs) =
        organizations::autocomplete(&mut conn, &name, (page - 1) * per_page, per_page).await?;
    let wire = orgs.iter().map(|o| json!(o.to_wire(&base))).collect();
    Ok(ok(&offset_body(
        "organizations",
        wire,
        count,
        page,
        per_page,
        &base,
        "/organizations/autocomplete",
        &query,
    )))
}

/// `GET /api/v2/organizations/count`.
async fn count(State(app): State<AppState>, Staff(_): Staff) -> Result<Response, ApiError> {
    let mut conn = app.store.reader().await?;
    let n = organizations::count(&mut conn).await?;
    Ok(ok(&json!({"count": {
        "refreshed_at": deskd_model::time::iso(deskd_model::time::now()),
        "value": n,
    }})))
}

/// `GET /api/v2/organizations/{id}/related`: deskd keeps no tickets, so `tickets_count` is 0;
/// `users_count` counts the active members.
async fn related(
    State(app): State<AppState>,
    Staff(_): Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let mut conn = app.store.reader().await?;
    if !organizations::exists(&mut conn, id).await? {
        return Err(ApiError::NotFound);
    }
    let users = deskd_store::memberships::user_count(&mut conn, id).await?;
    Ok(ok(&json!({"organization_related": {
        "tickets_count": 0,
        "users_count": users,
    }})))
}

/// `GET /api/v2/organizations/search?name=X` or `?external_id=X` (exactly one): exact,
/// case-insensitive.
async fn search(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    let name = param(&pairs, "name");
    let external_id = param(&pairs, "external_id");
    match (name, external_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                "Specify either name or external_id, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: name or external_id",
            ));
        }
        _ => {}
    }
    let mut conn = app.store.reader().await?;
    let orgs = organizations::search(&mut conn, name, external_id).await?;
    let wire: Vec<_> = orgs.iter().map(|o| o.to_wire(&base)).collect();
    Ok(ok(&json!({
        "organizations": wire,
        "next_page": null,
        "previous_page": null,
        "count": wire.len(),
    })))
}

/// `GET /api/v2/organizations/{id}/users`: its active users, paginated as `GET /users`.
async fn users(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    {
        let mut conn = app.store.reader().await?;
        if !organizations::exists(&mut conn, id).await? {
            return Err(ApiError::NotFound);
        }
    }
    let filter = deskd_store::user_queries::UserFilter {
        organization_id: Some(id),
        ..Default::default()
    };
    let query: BTreeMap<String, String> = pairs.into_iter().collect();
    crate::user_reads::page(
        &app,
        &filter,
        &query,
        &base,
        &format!("/organizations/{id}/users"),
        "users",
        crate::user_reads::user_wire,
    )
    .await
}
