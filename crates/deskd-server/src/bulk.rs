//! Bulk user endpoints: each stores a job (answered 200 with a queued `job_status`) that the
//! workers in `worker` complete. `create_or_update_many`, `create_many`, `update_many` (both forms).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use deskd_model::job::{JobKind, JobRecord};
use deskd_model::role::Actor;
use deskd_model::time;
use deskd_store::jobs;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::account::bulk_import_enabled;
use crate::auth::{Admin, Staff, digest};
use crate::error::ApiError;
use crate::extract::{BaseUrl, JsonObject, Params, require_object};
use crate::respond::{json_response, ok, too_many_requests};

/// Items one bulk call may carry.
pub const MAX_ITEMS: usize = 100;
/// Jobs an account may have queued or working at once.
pub const MAX_ACTIVE_JOBS: i64 = 30;
/// How long an `Idempotency-Key` replays its first response.
pub const IDEMPOTENCY_WINDOW_SECS: i64 = 2 * 60 * 60;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v2/users/create_or_update_many",
            post(create_or_update_many),
        )
        .route("/api/v2/users/create_many", post(create_many))
        .route("/api/v2/users/update_many", put(update_many))
        .route("/api/v2/users/destroy_many", delete(destroy_many))
        .route(
            "/api/v2/organizations/create_many",
            post(organizations_create_many),
        )
        .route(
            "/api/v2/organizations/update_many",
            put(organizations_update_many),
        )
        .route(
            "/api/v2/organizations/destroy_many",
            delete(organizations_destroy_many),
        )
        .route(
            "/api/v2/organization_memberships/create_many",
            post(memberships_create_many),
        )
        .route(
            "/api/v2/organization_memberships/destroy_many",
            delete(memberships_destroy_many),
        )
}

async fn create_or_update_many(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    import(
        &app,
        &base,
        &headers,
        &body,
        JobKind::CreateOrUpdateMany,
        caller.actor(),
    )
    .await
}

async fn create_many(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    import(
        &app,
        &base,
        &headers,
        &body,
        JobKind::CreateMany,
        caller.actor(),
    )
    .await
}

/// The two import endpoints: behind the account's bulk-import switch.
async fn import(
    app: &AppState,
    base: &str,
    headers: &HeaderMap,
    body: &Map<String, Value>,
    kind: JobKind,
    actor: Actor,
) -> Result<Response, ApiError> {
    let items = items_array(body, "users", true)?;
    if !bulk_import_enabled(app).await? {
        return Err(bulk_import_disabled());
    }
    submit(app, base, headers, body, kind, actor, items).await
}

#[derive(Deserialize)]
struct UpdateManyQuery {
    ids: Option<String>,
    external_ids: Option<String>,
}

impl From<std::collections::BTreeMap<String, String>> for UpdateManyQuery {
    fn from(mut q: std::collections::BTreeMap<String, String>) -> Self {
        UpdateManyQuery {
            ids: q.remove("ids"),
            external_ids: q.remove("external_ids"),
        }
    }
}

/// `PUT /users/update_many?ids=1,2` (or `external_ids=`) with one `user` applied to each, or
/// `PUT /users/update_many` with `users`, each naming its user by `id` or `external_id`.
async fn update_many(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Query(raw): Params,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let q = UpdateManyQuery::from(crate::extract::param_map(raw));
    let list = match (&q.ids, &q.external_ids) {
        (Some(ids), _) => Some(("id", ids)),
        (None, Some(ext)) => Some(("external_id", ext)),
        (None, None) => None,
    };
    let items = match list {
        Some((key, raw)) => {
            let values: Vec<&str> = crate::extract::comma_values(raw);
            if values.is_empty() {
                return Err(ApiError::bad_request(
                    "InvalidValue",
                    format!("{key}s must list at least one value"),
                ));
            }
            if values.len() > MAX_ITEMS {
                return Err(generic_too_many());
            }
            let user = require_object(&body, "user")?;
            values
                .into_iter()
                .map(|v| {
                    let mut item = user.clone();
                    item.insert(key.to_owned(), json!(v));
                    Value::Object(item)
                })
                .collect()
        }
        None => items_array(&body, "users", false)?,
    };
    submit(
        &app,
        &base,
        &headers,
        &body,
        JobKind::UpdateMany,
        caller.actor(),
        items,
    )
    .await
}

/// The items of a `destroy_many`: `{"id": ..}` or `{"external_id": ..}` from `ids=` or
/// `external_ids=` (when `external` is allowed), and the body to digest for idempotency.
fn destroy_items(
    q: &UpdateManyQuery,
    external: bool,
) -> Result<(Vec<Value>, Map<String, Value>), ApiError> {
    let (key, raw) = match (&q.ids, &q.external_ids) {
        (Some(ids), _) => ("id", ids),
        (None, Some(ext)) if external => ("external_id", ext),
        _ => {
            return Err(ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: ids",
            ));
        }
    };
    let values: Vec<&str> = crate::extract::comma_values(raw);
    if values.is_empty() {
        return Err(ApiError::bad_request(
            "ParameterMissing",
            format!("param is missing or the value is empty: {key}s"),
        ));
    }
    if values.len() > MAX_ITEMS {
        return Err(generic_too_many());
    }
    let items = values.into_iter().map(|v| json!({ key: v })).collect();
    let body = Map::from_iter([(format!("{key}s"), json!(raw))]);
    Ok((items, body))
}

/// The items of an `update_many`: `?ids=` / `?external_ids=` with one `single` object applied
/// to each, or the `plural` array, each item naming its record.
fn update_items(
    q: &UpdateManyQuery,
    body: &Map<String, Value>,
    single: &str,
    plural: &str,
) -> Result<Vec<Value>, ApiError> {
    let list = match (&q.ids, &q.external_ids) {
        (Some(ids), _) => Some(("id", ids)),
        (None, Some(ext)) => Some(("external_id", ext)),
        (None, None) => None,
    };
    // Whichever form is used, the other key, when present, must still be what a request may
    // carry: one object, or a list of 1 to 100.
    if body.contains_key(single) {
        // One object for every item: a bad value in it is the request's 422, not each item's.
        let object = require_object(body, single)?;
        if single == "organization" {
            deskd_model::organization_input::OrganizationInput::from_json(object, true)?;
        }
    }
    if body.contains_key(plural) {
        items_array(body, plural, false)?;
    }
    let Some((key, raw)) = list else {
        return items_array(body, plural, false);
    };
    let values: Vec<&str> = crate::extract::comma_values(raw);
    if values.is_empty() {
        return Err(ApiError::bad_request(
            "InvalidValue",
            format!("{key}s must list at least one value"),
        ));
    }
    if values.len() > MAX_ITEMS {
        return Err(generic_too_many());
    }
    let object = require_object(body, single)?;
    Ok(values
        .into_iter()
        .map(|v| {
            let mut item = object.clone();
            item.insert(key.to_owned(), json!(v));
            Value::Object(item)
        })
        .collect())
}

/// `POST /organizations/create_many`: up to 100 organizations; admins.
async fn organizations_create_many(
    State(app): State<AppState>,
    Admin(caller): Admin,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let items = items_array(&body, "organizations", true)?;
    let kind = JobKind::OrganizationCreateMany;
    submit(&app, &base, &headers, &body, kind, caller.actor(), items).await
}

/// `PUT /organizations/update_many?ids=1,2` (or `external_ids=`) with one `organization`, or
/// with `organizations`, each naming its organization by `id` or `external_id`; admins.
async fn organizations_update_many(
    State(app): State<AppState>,
    Admin(caller): Admin,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Query(raw): Params,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let q = UpdateManyQuery::from(crate::extract::param_map(raw));
    let items = update_items(&q, &body, "organization", "organizations")?;
    let kind = JobKind::OrganizationUpdateMany;
    submit(&app, &base, &headers, &body, kind, caller.actor(), items).await
}

/// `DELETE /organizations/destroy_many?ids=1,2` (or `external_ids=`); admins.
async fn organizations_destroy_many(
    State(app): State<AppState>,
    Admin(caller): Admin,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Query(raw): Params,
) -> Result<Response, ApiError> {
    let (items, body) =
        destroy_items(&UpdateManyQuery::from(crate::extract::param_map(raw)), true)?;
    let kind = JobKind::OrganizationDestroyMany;
    submit(&app, &base, &headers, &body, kind, caller.actor(), items).await
}

/// `POST /organization_memberships/create_many`: up to 100 `{user_id, organization_id}`; agents
/// for end users (each other item fails PermissionDenied), admins for anyone.
async fn memberships_create_many(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let items = items_array(&body, "organization_memberships", true)?;
    let kind = JobKind::MembershipCreateMany;
    submit(&app, &base, &headers, &body, kind, caller.actor(), items).await
}

/// `DELETE /organization_memberships/destroy_many?ids=1,2`.
async fn memberships_destroy_many(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Query(raw): Params,
) -> Result<Response, ApiError> {
    let (items, body) = destroy_items(
        &UpdateManyQuery::from(crate::extract::param_map(raw)),
        false,
    )?;
    let kind = JobKind::MembershipDestroyMany;
    submit(&app, &base, &headers, &body, kind, caller.actor(), items).await
}

/// `DELETE /users/destroy_many?ids=1,2` (or `external_ids=`): soft-deletes each; admins only.
/// A body, if any, is ignored, as on every DELETE.
async fn destroy_many(
    State(app): State<AppState>,
    Admin(caller): Admin,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    Query(raw): Params,
) -> Result<Response, ApiError> {
    let (items, body) =
        destroy_items(&UpdateManyQuery::from(crate::extract::param_map(raw)), true)?;
    submit(
        &app,
        &base,
        &headers,
        &body,
        JobKind::DestroyMany,
        caller.actor(),
        items,
    )
    .await
}

/// The `key` array of a bulk body (`users`, `organizations`, …): present, an array, 1 to 100
/// items. `creating` users get the users wording of TooManyValues, everything else the generic.
fn items_array(
    body: &Map<String, Value>,
    key: &str,
    creating: bool,
) -> Result<Vec<Value>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Err(ApiError::bad_request(
            "ParameterMissing",
            format!("param is missing or the value is empty: {key}"),
        )),
        Some(Value::Array(items)) if items.is_empty() => Err(ApiError::bad_request(
            "ParameterMissing",
            format!("param is missing or the value is empty: {key}"),
        )),
        Some(Value::Array(items)) if items.len() > MAX_ITEMS => {
            Err(if creating && key == "users" {
                ApiError::Raw(
                    axum::http::StatusCode::BAD_REQUEST,
                    json!({"error": "TooManyValues", "description": "Maximum 100 users may be created per call"}),
                )
            } else {
                generic_too_many()
            })
        }
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(ApiError::bad_request(
            "InvalidParameter",
            format!("{key} must be an array"),
        )),
    }
}

fn generic_too_many() -> ApiError {
    ApiError::Raw(
        axum::http::StatusCode::BAD_REQUEST,
        json!({"error": "TooManyValues", "description": "Parameter  cannot specify more than 100 values", "max_count": 100}),
    )
}

fn bulk_import_disabled() -> ApiError {
    ApiError::Raw(
        axum::http::StatusCode::FORBIDDEN,
        json!({"error": "Forbidden", "description": "Bulk user imports are not enabled for this account"}),
    )
}

enum Submitted {
    Job(JobRecord),
    Replay(String),
    KeyReused,
    TooManyJobs,
}

/// A new job id: `V3-` and 32 lowercase hex digits, as Zendesk's.
fn new_job_id() -> String {
    // Seeded in a `--test-seed` run, so recorded responses repeat.
    let n = crate::testmode::seeded::random_u128();
    format!("V3-{n:032x}")
}

async fn submit(
    app: &AppState,
    base: &str,
    headers: &HeaderMap,
    body: &Map<String, Value>,
    kind: JobKind,
    actor: Actor,
    items: Vec<Value>,
) -> Result<Response, ApiError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let key = key.map(|k| format!("{}:{k}", kind.as_str()));
    let request_digest = digest(&format!(
        "{}:{}",
        kind.as_str(),
        Value::Object(body.clone())
    ));
    let total = items.len() as i64;
    let payload = Value::Array(items).to_string();
    let id = new_job_id();
    let now = time::now();
    let base_owned = base.to_owned();
    let outcome = app
        .store
        .write(move |conn| {
            let (key, request_digest, payload, id, base) = (
                key.clone(),
                request_digest.clone(),
                payload.clone(),
                id.clone(),
                base_owned.clone(),
            );
            Box::pin(async move {
                let window = now - IDEMPOTENCY_WINDOW_SECS;
                if let Some(k) = &key {
                    if let Some((seen_digest, response)) =
                        jobs::idempotency_get(conn, k, window).await?
                    {
                        return Ok(if seen_digest == request_digest {
                            Submitted::Replay(response)
                        } else {
                            Submitted::KeyReused
                        });
                    }
                }
                if jobs::active_count(conn).await? >= MAX_ACTIVE_JOBS {
                    return Ok(Submitted::TooManyJobs);
                }
                let job = jobs::insert(conn, &id, kind, total, actor, &payload, now).await?;
                if let Some(k) = &key {
                    let response = json!({"job_status": job.to_wire(&base, None)}).to_string();
                    jobs::idempotency_put(conn, k, &request_digest, &response, now, window).await?;
                }
                Ok(Submitted::Job(job))
            })
        })
        .await?;
    let lookup = |resp: &mut Response, v: &'static str| {
        if headers.contains_key("idempotency-key") {
            resp.headers_mut()
                .insert("x-idempotency-lookup", HeaderValue::from_static(v));
        }
    };
    match outcome {
        Submitted::Job(job) => {
            app.jobs_notify.notify_one();
            let mut resp = ok(&json!({"job_status": job.to_wire(base, None)}));
            lookup(&mut resp, "miss");
            Ok(resp)
        }
        Submitted::Replay(stored) => {
            let value: Value = serde_json::from_str(&stored).map_err(|e| ApiError::internal(e))?;
            let mut resp = json_response(axum::http::StatusCode::OK, &value);
            lookup(&mut resp, "hit");
            Ok(resp)
        }
        Submitted::KeyReused => Err(ApiError::Raw(
            axum::http::StatusCode::BAD_REQUEST,
            json!({"error": "IdempotentRequestError", "description": "This Idempotency-Key was already used with a different request body"}),
        )),
        Submitted::TooManyJobs => Ok(too_many_requests(
            5,
            "Too many jobs are queued or running for this account (at most 30). Wait for one to complete, then retry.",
        )
        .into_response()),
    }
}
