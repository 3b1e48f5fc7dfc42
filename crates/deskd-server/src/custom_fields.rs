//! `/api/v2/user_fields` and `/api/v2/organization_fields`: list, show (by id or key), create,
//! update, delete, reorder; the options of a user field (`/user_fields/{id}/options`). Agents
//! read, admins write. Also the one place that shows users' and organizations' field values:
//! [`user`] and [`organization`] list every defined field (see `deskd_model::field_values`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use deskd_model::Rejection;
use deskd_model::custom_field::{self, FieldDef, FieldInput, FieldKey, OptionInput, Resource};
use deskd_model::field_values::project;
use deskd_model::organization::{Organization, OrganizationRecord};
use deskd_model::user::{User, UserRecord};
use deskd_store::custom_fields as store;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Admin, Staff};
use crate::error::ApiError;
use crate::extract::{BaseUrl, JsonObject, require_object};
use crate::paging::{Paging, cursor_body, offset_body};
use crate::respond::{json_response, no_content, ok};

/// The fields a response shows values of (keys and types, in order). A short read from the
/// reserve: a write's answer needs it, and must not queue behind heavy searches.
pub(crate) async fn defs(app: &AppState, resource: Resource) -> Result<Vec<FieldKey>, ApiError> {
    let mut conn = app.store.priority_reader().await?;
    Ok(store::keys(&mut conn, resource).await?)
}

/// A user as the API shows it, its `user_fields` listing every defined field.
pub(crate) fn user(u: &UserRecord, base: &str, defs: &[FieldKey]) -> User {
    let mut wire = u.to_wire(base);
    wire.user_fields = project(defs, &u.user_fields);
    wire
}

/// An organization as the API shows it, its `organization_fields` listing every defined field.
pub(crate) fn organization(o: &OrganizationRecord, base: &str, defs: &[FieldKey]) -> Organization {
    let mut wire = o.to_wire(base);
    wire.organization_fields = project(defs, &o.organization_fields);
    wire
}

/// Which resource a handler serves, as a type so one handler serves both routes.
pub(crate) trait Kind: Send + Sync + 'static {
    const RESOURCE: Resource;
}

pub(crate) struct Users;
pub(crate) struct Organizations;

impl Kind for Users {
    const RESOURCE: Resource = Resource::User;
}

impl Kind for Organizations {
    const RESOURCE: Resource = Resource::Organization;
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v2/user_fields",
            get(list::<Users>).post(create::<Users>),
        )
        .route(
            "/api/v2/user_fields/reorder",
            axum::routing::put(reorder::<Users>),
        )
        .route(
            "/api/v2/user_fields/{id}",
            get(show::<Users>)
                .put(update::<Users>)
                .delete(destroy::<Users>),
        )
        .route(
            "/api/v2/user_fields/{id}/options",
            get(options).post(upsert_option),
        )
        .route(
            "/api/v2/user_fields/{id}/options/{option_id}",
            get(show_option).delete(destroy_option),
        )
        .route(
            "/api/v2/organization_fields",
            get(list::<Organizations>).post(create::<Organizations>),
        )
        .route(
            "/api/v2/organization_fields/reorder",
            axum::routing::put(reorder::<Organizations>),
        )
        .route(
            "/api/v2/organization_fields/{id}",
            get(show::<Organizations>)
                .put(update::<Organizations>)
                .delete(destroy::<Organizations>),
        )
}

/// A field path segment: an id, or a key (Zendesk accepts either); anything else names nothing.
fn field_ref(raw: &str) -> Result<String, ApiError> {
    let ok = raw.parse::<i64>().is_ok_and(|id| id > 0) || custom_field::valid_key(raw);
    ok.then(|| raw.to_owned()).ok_or(ApiError::NotFound)
}

async fn load(app: &AppState, resource: Resource, raw: &str) -> Result<FieldDef, ApiError> {
    let r = field_ref(raw)?;
    let mut conn = app.store.reader().await?;
    store::load(&mut conn, resource, &r, false)
        .await?
        .ok_or(ApiError::NotFound)
}

fn one(resource: Resource, def: &FieldDef, base: &str) -> Value {
    json!({ resource.singular(): def.to_wire(base) })
}

/// A page of `items` (already in order) in either pagination style. Fields are few, so a page
/// is cut from the whole list; a cursor is the id of a field in it.
fn page_of(
    key: &str,
    items: Vec<(i64, Value)>,
    query: &BTreeMap<String, String>,
    base: &str,
    path: &str,
) -> Result<Value, ApiError> {
    Ok(match Paging::from_query(query)? {
        Paging::Offset { page, per_page } => {
            let count = items.len() as i64;
            let from = ((page - 1) * per_page).min(count) as usize;
            let list: Vec<Value> = items
                .into_iter()
                .skip(from)
                .take(per_page as usize)
                .map(|(_, v)| v)
                .collect();
            offset_body(key, list, count, page, per_page, base, path, query)
        }
        Paging::Cursor {
            size,
            after,
            before,
        } => {
            let at = |id: i64| items.iter().position(|(i, _)| *i == id);
            let (from, to) = match (after, before) {
                (Some(a), _) => (at(a).map_or(items.len(), |i| i + 1), items.len()),
                (_, Some(b)) => (0, at(b).unwrap_or(0)),
                _ => (0, items.len()),
            };
            let window = &items[from..to];
            let size = size as usize;
            let (chosen, has_more) = if before.is_some() {
                let start = window.len().saturating_sub(size);
                (&window[start..], start > 0)
            } else {
                (&window[..window.len().min(size)], window.len() > size)
            };
            let ids: Vec<i64> = chosen.iter().map(|(i, _)| *i).collect();
            let list = chosen.iter().map(|(_, v)| v.clone()).collect();
            cursor_body(key, list, &ids, has_more, size as i64, base, path, query)
        }
    })
}

/// `GET /api/v2/user_fields`: every field in display order; offset or cursor pages of ≤ 100.
async fn list<K: Kind>(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let r = K::RESOURCE;
    let mut conn = app.store.reader().await?;
    let fields = store::list(&mut conn, r).await?;
    drop(conn);
    let items = fields.iter().map(|f| (f.id, f.to_wire(&base))).collect();
    let path = format!("/{}", r.plural());
    Ok(ok(&page_of(r.plural(), items, &query, &base, &path)?))
}

/// `GET /api/v2/user_fields/{id_or_key}`.
async fn show<K: Kind>(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let def = load(&app, K::RESOURCE, &id).await?;
    Ok(ok(&one(K::RESOURCE, &def, &base)))
}

fn read_input(body: &serde_json::Map<String, Value>, r: Resource) -> Result<FieldInput, ApiError> {
    Ok(custom_field::read_input(require_object(
        body,
        r.singular(),
    )?)?)
}

/// `POST /api/v2/user_fields`: 201 with `Location`. A taken key is a 422 `DuplicateValue`,
/// decided by the unique index when two requests race.
async fn create<K: Kind>(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let r = K::RESOURCE;
    let input = Arc::new(read_input(&body, r)?);
    let now = deskd_model::time::now();
    let def = app
        .store
        .write(move |conn| {
            let input = input.clone();
            Box::pin(async move {
                let existing = store::list(conn, r).await?;
                match custom_field::plan_create(r, &input, &existing, now) {
                    Ok(def) => Ok(Ok(store::insert(conn, &def).await?)),
                    Err(e) => Ok(Err(Rejection::Invalid(e))),
                }
            })
        })
        .await??;
    let mut resp = json_response(StatusCode::CREATED, &one(r, &def, &base));
    if let Ok(loc) = HeaderValue::from_str(&def.url(&base)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// `PUT /api/v2/user_fields/{id_or_key}`: the given keys change; `type` and `key` cannot.
async fn update<K: Kind>(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let r = K::RESOURCE;
    let target = field_ref(&id)?;
    let input = Arc::new(read_input(&body, r)?);
    let now = deskd_model::time::now();
    let def = app
        .store
        .write(move |conn| {
            let (input, target) = (input.clone(), target.clone());
            Box::pin(async move {
                let Some(current) = store::load(conn, r, &target, true).await? else {
                    return Ok(Err(Rejection::NotFound));
                };
                match custom_field::plan_update(&input, &current, now) {
                    Ok((def, true)) => Ok(Ok(store::update(conn, &def, &current).await?)),
                    Ok((def, false)) => Ok(Ok(def)),
                    Err(e) => Ok(Err(Rejection::Invalid(e))),
                }
            })
        })
        .await??;
    Ok(ok(&one(r, &def, &base)))
}

/// `DELETE /api/v2/user_fields/{id_or_key}`: 204; the values stored under its key go too.
async fn destroy<K: Kind>(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = K::RESOURCE;
    let target = field_ref(&id)?;
    app.store
        .write(move |conn| {
            let target = target.clone();
            Box::pin(async move {
                let Some(current) = store::load(conn, r, &target, true).await? else {
                    return Ok(Err(Rejection::NotFound));
                };
                if store::delete(conn, &current).await? {
                    Ok(Ok(()))
                } else {
                    Ok(Err(Rejection::NotFound))
                }
            })
        })
        .await??;
    Ok(no_content())
}

/// `PUT /api/v2/user_fields/reorder` `{"user_field_ids": [..]}`: 200 with an empty body, as
/// documented. Fields left out keep their relative order after the listed ones.
async fn reorder<K: Kind>(
    State(app): State<AppState>,
    Admin(_): Admin,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let r = K::RESOURCE;
    let key = r.ids_key();
    let ids: Vec<i64> = match body.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                deskd_model::input::parse_int(v)
                    .ok()
                    .flatten()
                    .filter(|i| *i > 0)
            })
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| {
                ApiError::bad_request("InvalidParameter", format!("{key} must be a list of ids"))
            })?,
        Some(Value::Null) | None => {
            return Err(ApiError::bad_request(
                "ParameterMissing",
                format!("param is missing or the value is empty: {key}"),
            ));
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                format!("{key} must be a list of ids"),
            ));
        }
    };
    let ids = Arc::new(ids);
    let now = deskd_model::time::now();
    app.store
        .write(move |conn| {
            let ids = ids.clone();
            Box::pin(async move {
                store::lock_all(conn, r).await?;
                let fields = store::list(conn, r).await?;
                match custom_field::plan_reorder(r, &fields, &ids) {
                    Ok(positions) => {
                        store::set_positions(conn, &positions, now).await?;
                        Ok(Ok(()))
                    }
                    Err(e) => Ok(Err(Rejection::Invalid(e))),
                }
            })
        })
        .await??;
    let mut resp = Response::default();
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

/// `GET /api/v2/user_fields/{id}/options`: the options of a dropdown or multiselect field (none
/// for other types), in order; offset or cursor pages.
async fn options(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let def = load(&app, Resource::User, &id).await?;
    let items = def
        .options
        .iter()
        .map(|o| (o.id, def.option_wire(o, &base)))
        .collect();
    let path = format!("/user_fields/{}/options", def.id);
    Ok(ok(&page_of(
        "custom_field_options",
        items,
        &query,
        &base,
        &path,
    )?))
}

/// `GET /api/v2/user_fields/{id}/options/{option_id}`.
async fn show_option(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path((id, option_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let def = load(&app, Resource::User, &id).await?;
    let option_id = crate::extract::path_id(&option_id)?;
    let o = def
        .options
        .iter()
        .find(|o| o.id == option_id)
        .ok_or(ApiError::NotFound)?;
    Ok(ok(
        &json!({"custom_field_option": def.option_wire(o, &base)}),
    ))
}

/// `POST /api/v2/user_fields/{id}/options` `{"custom_field_option": {..}}`: updates the option
/// with that `id` (200) or adds one (201); `Location` is the field's options list.
async fn upsert_option(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let target = field_ref(&id)?;
    let input: OptionInput =
        custom_field::read_option(require_object(&body, "custom_field_option")?)?;
    let input = Arc::new(input);
    let now = deskd_model::time::now();
    let (def, created, value) = app
        .store
        .write(move |conn| {
            let (input, target) = (input.clone(), target.clone());
            Box::pin(async move {
                let Some(current) = store::load(conn, Resource::User, &target, true).await? else {
                    return Ok(Err(Rejection::NotFound));
                };
                match custom_field::plan_option(&current, &input, now) {
                    Ok((def, created)) => {
                        let saved = store::update(conn, &def, &current).await?;
                        Ok(Ok((saved, created, input.value.clone())))
                    }
                    Err(e) => Ok(Err(Rejection::Invalid(e))),
                }
            })
        })
        .await??;
    let option = def
        .options
        .iter()
        .find(|o| o.value == value)
        .ok_or_else(|| ApiError::internal("the saved option is missing"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = json_response(
        status,
        &json!({"custom_field_option": def.option_wire(option, &base)}),
    );
    let location = format!("{base}/user_fields/{}/options.json", def.id);
    if let Ok(loc) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// `DELETE /api/v2/user_fields/{id}/options/{option_id}`: 204.
async fn destroy_option(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path((id, option_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let target = field_ref(&id)?;
    let option_id = crate::extract::path_id(&option_id)?;
    let now = deskd_model::time::now();
    app.store
        .write(move |conn| {
            let target = target.clone();
            Box::pin(async move {
                let Some(current) = store::load(conn, Resource::User, &target, true).await? else {
                    return Ok(Err(Rejection::NotFound));
                };
                match custom_field::plan_option_removal(&current, option_id, now) {
                    None => Ok(Err(Rejection::NotFound)),
                    Some(Err(e)) => Ok(Err(Rejection::Invalid(e))),
                    Some(Ok(def)) => {
                        store::update(conn, &def, &current).await?;
                        Ok(Ok(()))
                    }
                }
            })
        })
        .await??;
    Ok(no_content())
}
