//! `/api/v2/users`: create_or_update, show, me.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};

use axum::response::Response;
use axum::routing::{get, post};
use deskd_model::custom_field::Resource;
use deskd_model::input::UserInput;
use deskd_store::upsert::{Mode, UpsertItem};
use deskd_store::users;
use serde_json::json;

use crate::AppState;
use crate::auth::{MaybeCaller, Staff};
use crate::error::ApiError;
use crate::extract::{BaseUrl, JsonObject, path_id, require_object};
use crate::respond::{Keyed, ok};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/users/create_or_update", post(create_or_update))
        .route("/api/v2/users/me", get(me))
        .route("/api/v2/users/{id}", get(show).put(update).delete(destroy))
        .route("/api/v2/users/{id}/merge", axum::routing::put(merge))
}

/// Runs one upsert of `input` in `mode` and answers with the user: 201 + `Location` when
/// created; 200 when updated, with `Location` if `location_on_update`.
async fn upsert(
    app: &AppState,
    base: &str,
    input: UserInput,
    caller: &crate::auth::Caller,
    mode: Mode,
    location_on_update: bool,
) -> Result<Response, ApiError> {
    // create_or_update and PUT /users/{id} count against the target profile's own limit.
    let (profile, profile_key) = match (mode, app.limiter.profile) {
        (Mode::CreateOrUpdate | Mode::UpdateOnly, Some(rate)) => {
            match profile_key(app, &input).await? {
                Some(key) => (
                    Some(app.limiter.take(&app.store, &key, rate).await?),
                    Some(key),
                ),
                None => (None, None),
            }
        }
        _ => (None, None),
    };
    if let Some(d) = profile.filter(|d| !d.allowed) {
        let text = format!(
            "You have exceeded the rate limit for updating a single unique user. user email: {} id: {} external_id: {}",
            input.email.as_deref().unwrap_or(""),
            input.id.map(|i| i.to_string()).unwrap_or_default(),
            input.external_id.clone().flatten().unwrap_or_default(),
        );
        let mut resp = crate::respond::too_many_requests(d.retry_after_secs, &text);
        crate::limits::profile_header(resp.headers_mut(), &d);
        return Ok(resp);
    }
    let item = UpsertItem {
        input: Arc::new(input),
        actor: caller.actor(),
        mode,
    };
    let answer = app.store.create_or_update(item).await?;
    let saved = answer.outcome?;
    let user = saved.record();
    // A profile first seen by email or external id is the new user's from now on: its first
    // request counts there too, so the limit holds across the switch of key.
    if let (Some(rate), Some(key)) = (app.limiter.profile, &profile_key) {
        let id_key = format!("profile:{}", user.id);
        if *key != id_key {
            app.limiter.take(&app.store, &id_key, rate).await?;
        }
    }
    let wire = crate::custom_fields::user(user, base, &answer.user_fields);
    let mut resp = crate::respond::saved(&saved, "user", &wire, &wire.url, location_on_update);
    if let Some(d) = &profile {
        crate::limits::profile_header(resp.headers_mut(), d);
    }
    Ok(resp)
}

/// The key of the "unique end-user profile" a write targets: the resolved user id, else the
/// normalised external_id, else the normalised email.
async fn profile_key(app: &AppState, input: &UserInput) -> Result<Option<String>, ApiError> {
    if let Some(id) = input.id {
        return Ok(Some(format!("profile:{id}")));
    }
    let mut conn = app.store.priority_reader().await?;
    if let Some(Some(ext)) = &input.external_id {
        return Ok(Some(
            match users::id_by_external_id(&mut conn, ext).await? {
                Some(id) => format!("profile:{id}"),
                None => format!("profile:ext:{}", deskd_model::text::normalize(ext)),
            },
        ));
    }
    if let Some(email) = input.emails().next() {
        return Ok(Some(
            match users::id_by_identity(&mut conn, "email", email).await? {
                Some(id) => format!("profile:{id}"),
                None => format!("profile:email:{}", deskd_model::text::normalize(email)),
            },
        ));
    }
    Ok(None)
}

/// `POST /api/v2/users/create_or_update`: 201 when created, 200 when updated, `Location` on both.
async fn create_or_update(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let input = UserInput::from_json(require_object(&body, "user")?)?;
    upsert(&app, &base, input, &caller, Mode::CreateOrUpdate, true).await
}

/// `POST /api/v2/users`: 201 + `Location`; an email or external id already in use is a 422.
/// An `id` in the body is ignored (zenpy sends `"id": ""`).
pub async fn create(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut user = require_object(&body, "user")?.clone();
    user.remove("id");
    let input = UserInput::from_json(&user)?;
    upsert(&app, &base, input, &caller, Mode::CreateOnly, false).await
}

/// `PUT /api/v2/users/{id}`: only the keys given change; 404 for an unknown id.
async fn update(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let mut input = UserInput::from_json(require_object(&body, "user")?)?;
    input.id = Some(id);
    upsert(&app, &base, input, &caller, Mode::UpdateOnly, false).await
}

/// `GET /api/v2/users/{id}`: soft-deleted users still answer, with `active: false`.
async fn show(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let defs = crate::custom_fields::defs(&app, Resource::User).await?;
    let id = path_id(&id)?;
    let mut conn = app.store.reader().await?;
    let user = users::load(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&Keyed(
        "user",
        &crate::custom_fields::user(&user, &base, &defs),
    )))
}

/// `DELETE /api/v2/users/{id}`: soft delete; 200 with the user, `active: false`, its identities
/// and external id released. Admins may delete anyone but the account owner, agents end users.
async fn destroy(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let defs = crate::custom_fields::defs(&app, Resource::User).await?;
    let id = path_id(&id)?;
    let actor = caller.actor();
    let now = deskd_model::time::now();
    let deleted = app
        .store
        .write(move |conn| {
            Box::pin(async move { users::delete_for(conn, actor, Some(id), None, now).await })
        })
        .await??;
    Ok(ok(&Keyed(
        "user",
        &crate::custom_fields::user(&deleted, &base, &defs),
    )))
}

/// `GET /api/v2/users/me`: the caller, with an `authenticity_token`; anonymous callers get the
/// anonymous user.
async fn me(
    State(app): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    let defs = crate::custom_fields::defs(&app, Resource::User).await?;
    let Some(caller) = caller else {
        return Ok(ok(&json!({ "user": anonymous_user() })));
    };
    let mut conn = app.store.reader().await?;
    let user = users::load(&mut conn, caller.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let mut wire = crate::custom_fields::user(&user, &base, &defs);
    wire.authenticity_token = Some(crate::auth::new_secret());
    let mut body = json!(wire);
    // End users see the reduced object Zendesk shows them.
    if let (deskd_model::Role::EndUser, Some(obj)) = (caller.role, body.as_object_mut()) {
        obj.retain(|k, _| deskd_model::user::END_USER_FIELDS.contains(&k.as_str()));
    }
    Ok(ok(&json!({ "user": body })))
}

fn anonymous_user() -> serde_json::Value {
    json!({
        "id": null, "url": null, "name": "Anonymous user", "email": "invalid@example.com",
        "created_at": null, "updated_at": null, "time_zone": deskd_model::user::DEFAULT_TIME_ZONE,
        "iana_time_zone": deskd_model::user::DEFAULT_TIME_ZONE, "phone": null, "shared_phone_number": null,
        "photo": null, "locale_id": deskd_model::user::DEFAULT_LOCALE_ID, "locale": deskd_model::user::DEFAULT_LOCALE,
        "organization_id": null, "role": "end-user", "verified": false, "authenticity_token": crate::auth::new_secret(),
    })
}

/// `PUT /api/v2/users/{id}/merge` `{"user": {"id": TARGET}}`: the end user `{id}` is merged into
/// the end user TARGET (its identities, tags and organization move there) and soft-deleted;
/// 200 with the target. Admins and agents; only end users merge, never into themselves.
async fn merge(
    State(app): State<AppState>,
    Staff(caller): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let defs = crate::custom_fields::defs(&app, Resource::User).await?;
    let source = path_id(&id)?;
    let user = require_object(&body, "user")?;
    let target = match user.get("id") {
        None | Some(serde_json::Value::Null) => {
            return Err(ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: user.id",
            ));
        }
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    }
    .filter(|t| *t > 0)
    .ok_or_else(|| ApiError::bad_request("InvalidParameter", "user.id must be a user id"))?;
    let actor = caller.actor();
    let now = deskd_model::time::now();
    let merged = app
        .store
        .write(move |conn| {
            Box::pin(async move {
                deskd_store::merge::merge_users(conn, source, target, actor, now).await
            })
        })
        .await??;
    Ok(ok(&Keyed(
        "user",
        &crate::custom_fields::user(&merged, &base, &defs),
    )))
}
