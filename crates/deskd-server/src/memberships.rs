//! `/api/v2/organization_memberships` and the per-user and per-organization views of it: list,
//! show, create, delete, make_default. `create_many` and `destroy_many` are jobs (see `bulk`).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, put};
use deskd_model::membership::{self, MembershipInput, MembershipRecord};
use deskd_store::memberships::{self, Scope, Which};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Caller, Staff};
use crate::error::ApiError;
use crate::extract::{BaseUrl, JsonObject, Params, path_id, require_object};
use crate::paging::{ForwardsList, Listing, Paging, forwards_page, offset_body};
use crate::respond::{json_response, no_content, ok};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v2/organization_memberships",
            get(list_all).post(create),
        )
        .route(
            "/api/v2/organization_memberships/{id}",
            get(show).delete(destroy),
        )
        .route(
            "/api/v2/users/{user_id}/organization_memberships",
            get(list_for_user).post(create_for_user),
        )
        .route(
            "/api/v2/users/{user_id}/organization_memberships/{id}",
            get(show_for_user).delete(destroy_for_user),
        )
        .route(
            "/api/v2/users/{user_id}/organization_memberships/{id}/make_default",
            put(make_default_membership),
        )
        .route(
            "/api/v2/users/{user_id}/organizations/{id}/make_default",
            put(make_default_organization),
        )
        .route(
            "/api/v2/users/{user_id}/organizations/{id}",
            axum::routing::delete(unassign),
        )
        .route(
            "/api/v2/users/{user_id}/organizations",
            get(organizations_of_user),
        )
        .route(
            "/api/v2/organizations/{id}/organization_memberships",
            get(list_for_organization),
        )
}

fn wire(list: &[MembershipRecord], base: &str) -> Vec<Value> {
    list.iter().map(|m| json!(m.to_wire(base))).collect()
}

/// `scope`'s memberships as a [`ForwardsList`].
struct ScopedMemberships<'a> {
    conn: &'a mut deskd_store::Conn,
    scope: Scope,
    base: &'a str,
}

impl ScopedMemberships<'_> {
    fn rows(&self, list: Vec<MembershipRecord>) -> Vec<(i64, Value)> {
        list.iter()
            .map(|m| m.id)
            .zip(wire(&list, self.base))
            .collect()
    }
}

impl ForwardsList for ScopedMemberships<'_> {
    async fn count(&mut self) -> Result<i64, ApiError> {
        Ok(memberships::count(self.conn, self.scope).await?)
    }
    async fn offset(&mut self, offset: i64, limit: i64) -> Result<Vec<(i64, Value)>, ApiError> {
        let list = memberships::page(self.conn, self.scope, offset, limit).await?;
        Ok(self.rows(list))
    }
    async fn after(&mut self, id: i64, limit: i64) -> Result<Vec<(i64, Value)>, ApiError> {
        let list = memberships::page_after(self.conn, self.scope, id, limit).await?;
        Ok(self.rows(list))
    }
}

/// A page of `scope`'s memberships, offset or cursor, under `path`.
async fn page(
    app: &AppState,
    scope: Scope,
    base: &str,
    path: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let query: BTreeMap<String, String> = pairs.into_iter().collect();
    let mut conn = app.store.reader().await?;
    let listing = Listing {
        key: "organization_memberships",
        base,
        path,
        query: &query,
    };
    let mut scoped = ScopedMemberships {
        conn: &mut conn,
        scope,
        base,
    };
    Ok(ok(&forwards_page(&listing, &mut scoped).await?))
}

/// `GET /organization_memberships`: the account's for staff; an end user's own.
async fn list_all(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    let scope = if caller.role.is_staff() {
        Scope::All
    } else {
        Scope::User(caller.user_id)
    };
    page(&app, scope, &base, "/organization_memberships", pairs).await
}

/// The user of a `/users/{user_id}/…` path, when it exists and the caller may read it.
async fn readable_user(app: &AppState, caller: &Caller, raw: &str) -> Result<i64, ApiError> {
    let user_id = path_id(raw)?;
    if !membership::may_read(caller.actor(), user_id) {
        return Err(ApiError::Forbidden);
    }
    let mut conn = app.store.reader().await?;
    deskd_store::users::load(&mut conn, user_id)
        .await?
        .filter(|u| u.active)
        .ok_or(ApiError::NotFound)?;
    Ok(user_id)
}

/// `GET /users/{user_id}/organization_memberships`: default first, then by organization name.
async fn list_for_user(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path(user_id): Path<String>,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    let user_id = readable_user(&app, &caller, &user_id).await?;
    let path = format!("/users/{user_id}/organization_memberships");
    page(&app, Scope::User(user_id), &base, &path, pairs).await
}

/// `GET /organizations/{id}/organization_memberships`.
async fn list_for_organization(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    {
        let mut conn = app.store.reader().await?;
        if !deskd_store::organizations::exists(&mut conn, id).await? {
            return Err(ApiError::NotFound);
        }
    }
    let path = format!("/organizations/{id}/organization_memberships");
    page(&app, Scope::Organization(id), &base, &path, pairs).await
}

fn one(m: &MembershipRecord, base: &str) -> Value {
    json!({ "organization_membership": m.to_wire(base) })
}

/// `GET /organization_memberships/{id}`: agents.
async fn show(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let mut conn = app.store.reader().await?;
    let m = memberships::load(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&one(&m, &base)))
}

/// `GET /users/{user_id}/organization_memberships/{id}`: the user's own membership.
async fn show_for_user(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user_id = readable_user(&app, &caller, &user_id).await?;
    let id = path_id(&id)?;
    let mut conn = app.store.reader().await?;
    let m = memberships::load(&mut conn, id)
        .await?
        .filter(|m| m.user_id == user_id)
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&one(&m, &base)))
}

/// 201 `{"organization_membership": …}` with `Location`.
fn created(m: &MembershipRecord, base: &str) -> Response {
    let wire = m.to_wire(base);
    let mut resp = json_response(
        StatusCode::CREATED,
        &json!({ "organization_membership": wire }),
    );
    if let Ok(loc) = HeaderValue::from_str(&wire.url) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

async fn write_create(
    app: &AppState,
    caller: &Caller,
    input: MembershipInput,
) -> Result<MembershipRecord, ApiError> {
    let actor = caller.actor();
    let now = deskd_model::time::now();
    Ok(app
        .store
        .write(move |conn| {
            Box::pin(async move { memberships::create(conn, actor, input, now).await })
        })
        .await??)
}

/// `POST /organization_memberships` with `{"organization_membership": {user_id,
/// organization_id}}`: admins, agents for end users. 422 when the user is already a member.
async fn create(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let input = MembershipInput::from_json(require_object(&body, "organization_membership")?)?;
    let m = write_create(&app, &caller, input).await?;
    Ok(created(&m, &base))
}

/// `POST /users/{user_id}/organization_memberships`: the path names the user.
async fn create_for_user(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    Path(user_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let user_id = path_id(&user_id)?;
    let mut obj = require_object(&body, "organization_membership")?.clone();
    obj.insert("user_id".into(), json!(user_id));
    let input = MembershipInput::from_json(&obj)?;
    let m = write_create(&app, &caller, input).await?;
    Ok(created(&m, &base))
}

async fn write_delete(
    app: &AppState,
    caller: &Caller,
    id: i64,
    user_id: Option<i64>,
) -> Result<Response, ApiError> {
    let actor = caller.actor();
    let now = deskd_model::time::now();
    if let Some(user_id) = user_id {
        let mut conn = app.store.reader().await?;
        if !memberships::load(&mut conn, id)
            .await?
            .is_some_and(|m| m.user_id == user_id)
        {
            return Err(ApiError::NotFound);
        }
    }
    app.store
        .write(move |conn| Box::pin(async move { memberships::delete(conn, actor, id, now).await }))
        .await??;
    Ok(no_content())
}

/// `DELETE /organization_memberships/{id}`: 204; admins, agents for end users.
async fn destroy(
    State(app): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    write_delete(&app, &caller, path_id(&id)?, None).await
}

/// `DELETE /users/{user_id}/organization_memberships/{id}`.
async fn destroy_for_user(
    State(app): State<AppState>,
    Staff(caller): Staff,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user_id = path_id(&user_id)?;
    write_delete(&app, &caller, path_id(&id)?, Some(user_id)).await
}

/// `DELETE /users/{user_id}/organizations/{organization_id}`: removes the user from the
/// organization; 204.
async fn unassign(
    State(app): State<AppState>,
    Staff(caller): Staff,
    Path((user_id, org)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (user_id, org) = (path_id(&user_id)?, path_id(&org)?);
    let m = {
        let mut conn = app.store.reader().await?;
        memberships::find(&mut conn, user_id, org)
            .await?
            .ok_or(ApiError::NotFound)?
    };
    write_delete(&app, &caller, m.id, Some(user_id)).await
}

async fn make_default(
    app: &AppState,
    caller: &Caller,
    base: &str,
    user_id: &str,
    which: impl FnOnce(i64) -> Which,
    raw: &str,
) -> Result<Response, ApiError> {
    let user_id = path_id(user_id)?;
    let which = which(path_id(raw)?);
    let actor = caller.actor();
    let now = deskd_model::time::now();
    let list = app
        .store
        .write(move |conn| {
            Box::pin(
                async move { memberships::make_default(conn, actor, user_id, which, now).await },
            )
        })
        .await??;
    Ok(ok(
        &json!({ "organization_memberships": wire(&list, base) }),
    ))
}

/// `PUT /users/{user_id}/organization_memberships/{id}/make_default`: the user's memberships
/// afterwards.
async fn make_default_membership(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    make_default(&app, &caller, &base, &user_id, Which::Membership, &id).await
}

/// `PUT /users/{user_id}/organizations/{organization_id}/make_default`.
async fn make_default_organization(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    make_default(&app, &caller, &base, &user_id, Which::Organization, &id).await
}

/// `GET /users/{user_id}/organizations`: the organizations the user belongs to, by name; an end
/// user may list their own.
async fn organizations_of_user(
    State(app): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    Path(user_id): Path<String>,
    Query(pairs): Params,
) -> Result<Response, ApiError> {
    let user_id = readable_user(&app, &caller, &user_id).await?;
    let query: BTreeMap<String, String> = pairs.into_iter().collect();
    let (page, per_page) = match Paging::from_query(&query)? {
        Paging::Offset { page, per_page } => (page, per_page),
        Paging::Cursor { .. } => {
            return Err(ApiError::bad_request(
                "InvalidPaginationParameter",
                "a user's organizations page by offset (page, per_page)",
            ));
        }
    };
    let mut conn = app.store.reader().await?;
    let count = memberships::count(&mut conn, Scope::User(user_id)).await?;
    let orgs =
        deskd_store::organizations::of_user(&mut conn, user_id, (page - 1) * per_page, per_page)
            .await?;
    let wire = orgs.iter().map(|o| json!(o.to_wire(&base))).collect();
    Ok(ok(&offset_body(
        "organizations",
        wire,
        count,
        page,
        per_page,
        &base,
        &format!("/users/{user_id}/organizations"),
        &query,
    )))
}
