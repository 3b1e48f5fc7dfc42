//! `/api/v2/api_tokens`: account API tokens (admins). The full token is shown once, on creation;
//! only its SHA-256 digest is stored. Revocation reaches every process at once (credentials epoch).
//! Also the passwords: `PUT /api/v2/users/{id}/password` (change), `POST` (an admin sets it) and
//! `GET /api/v2/users/{id}/password/requirements`, with one implementation.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use deskd_model::{Role, ValidationErrors, time};
use deskd_store::credentials::{self, ApiToken};
use deskd_store::users;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Admin, Caller, digest, hash_password, new_secret};
use crate::error::ApiError;
use crate::extract::path_id;
use crate::extract::{BaseUrl, JsonObject};
use crate::respond::{json_response, ok};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/api_tokens", get(list).post(create))
        .route("/api/v2/api_tokens/{id}", get(show).delete(revoke))
        .route(
            "/api/v2/users/{id}/password",
            put(change_password).post(set_password),
        )
        .route(
            "/api/v2/users/{id}/password/requirements",
            get(password_requirements),
        )
}

fn wire(t: &ApiToken, base: &str) -> Value {
    json!({
        "url": format!("{base}/api_tokens/{}.json", t.id),
        "id": t.id,
        "description": t.description,
        "active": t.active,
        "created_at": time::iso(t.created_at),
        "updated_at": time::iso(t.updated_at),
    })
}

async fn list(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
) -> Result<Response, ApiError> {
    let mut conn = app.store.reader().await?;
    let tokens: Vec<Value> = credentials::list_api_tokens(&mut conn)
        .await?
        .iter()
        .map(|t| wire(t, &base))
        .collect();
    let count = tokens.len();
    Ok(ok(
        &json!({"api_tokens": tokens, "next_page": null, "previous_page": null, "count": count}),
    ))
}

async fn show(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut conn = app.store.reader().await?;
    let t = credentials::load_api_token(&mut conn, path_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&json!({"api_token": wire(&t, &base)})))
}

/// `POST` `{"api_token": {"description": "..."}}` → 201 with the token, this once.
async fn create(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let description = match body.get("api_token") {
        None | Some(Value::Null) => String::new(),
        Some(Value::Object(o)) => match o.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) if s.chars().count() <= 255 && !s.contains('\0') => s.clone(),
            Some(_) => {
                return Err(ValidationErrors::single(
                    "description",
                    "is invalid",
                    Some("InvalidValue"),
                )
                .into());
            }
        },
        Some(_) => {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                "api_token must be a JSON object",
            ));
        }
    };
    let (token, id) = create_token(&app, &description).await?;
    let mut conn = app.store.reader().await?;
    let t = credentials::load_api_token(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut w = wire(&t, &base);
    w["token"] = json!(token);
    Ok(json_response(StatusCode::CREATED, &json!({"api_token": w})))
}

/// Creates a token; returns the secret (to show once) and the id.
pub async fn create_token(app: &AppState, description: &str) -> Result<(String, i64), ApiError> {
    let token = new_secret();
    let (token_digest, description, now) = (digest(&token), description.to_owned(), time::now());
    let id = app
        .store
        .write(move |conn| {
            let (d, desc) = (token_digest.clone(), description.clone());
            Box::pin(async move { credentials::insert_api_token(conn, &d, &desc, now).await })
        })
        .await?;
    Ok((token, id))
}

/// `DELETE`: 204; the token stops working at once, on every replica.
async fn revoke(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let gone = app
        .store
        .write(move |conn| Box::pin(async move { credentials::revoke_api_token(conn, id).await }))
        .await?;
    if !gone {
        return Err(ApiError::NotFound);
    }
    Ok(crate::respond::no_content())
}

/// Shortest password deskd accepts.
const MIN_PASSWORD: usize = 8;

/// What `GET /users/{id}/password/requirements` lists: the rules [`write_password`] checks.
fn requirements() -> Vec<String> {
    vec![format!("must be at least {MIN_PASSWORD} characters")]
}

/// `PUT /api/v2/users/{id}/password` `{"password": "..."}`: admins set anyone's; a user changes
/// their own with `previous_password`.
async fn change_password(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    write_password(&app, &caller, &id, &body).await
}

/// `POST /api/v2/users/{id}/password` `{"password": "..."}`: an admin sets a user's password.
async fn set_password(
    State(app): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    write_password(&app, &caller, &id, &body).await
}

/// `GET /api/v2/users/{id}/password/requirements`: staff for anyone, a user for themselves.
async fn password_requirements(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    if !caller.role.is_staff() && caller.user_id != id {
        return Err(ApiError::Forbidden);
    }
    let mut conn = app.store.reader().await?;
    users::load(&mut conn, id)
        .await?
        .filter(|u| u.active)
        .ok_or(ApiError::NotFound)?;
    Ok(ok(&json!({ "requirements": requirements() })))
}

/// The one password write: admins set anyone's, a user their own after proving the previous
/// one. Stored as argon2id; cached logins are dropped.
async fn write_password(
    app: &AppState,
    caller: &Caller,
    id: &str,
    body: &serde_json::Map<String, Value>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let own = caller.user_id == id;
    if caller.role != Role::Admin && !own {
        return Err(ApiError::Forbidden);
    }
    let password = match body.get("password") {
        Some(Value::String(p)) => p.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: password",
            ));
        }
    };
    if password.contains('\0') {
        return Err(ValidationErrors::single(
            "password",
            "contains a character that is not allowed (U+0000)",
            Some("InvalidValue"),
        )
        .into());
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(ValidationErrors::single(
            "password",
            &format!("is too short (minimum is {MIN_PASSWORD} characters)"),
            Some("InvalidValue"),
        )
        .into());
    }
    let mut conn = app.store.reader().await?;
    // A soft-deleted user is gone for writes.
    users::load(&mut conn, id)
        .await?
        .filter(|u| u.active)
        .ok_or(ApiError::NotFound)?;
    let principal = credentials::principal_by_id(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(conn);
    if own && caller.role != Role::Admin {
        let previous = body
            .get("previous_password")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let ok = match principal.password_hash.clone() {
            Some(hash) => {
                crate::auth::with_argon2(&app, move || {
                    crate::auth::verify_password(&previous, &hash)
                })
                .await?
            }
            None => false,
        };
        if !ok {
            return Err(ValidationErrors::single(
                "previous_password",
                "is not correct",
                Some("InvalidValue"),
            )
            .into());
        }
    }
    let hash = crate::auth::with_argon2(&app, move || hash_password(&password)).await??;
    app.store
        .write(move |conn| {
            let hash = hash.clone();
            Box::pin(async move { users::set_password(conn, id, Some(&hash)).await })
        })
        .await?;
    Ok(ok(&json!({})))
}
