//! Test mode's fixtures and snapshots: `GET /__deskd/export`, `POST /__deskd/import`
//! (also `deskd serve --seed FILE`, through [`load`]), and `/__deskd/snapshots`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use deskd_model::fixture::{self, FixtureError};
use deskd_store::fixture::Applied;
use deskd_store::{Store, StoreError, snapshots};
use serde_json::{Value, json};

use super::test_state;
use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::JsonObject;
use crate::respond::{json_response, no_content, ok};

/// Replaces the account's state with `doc`, in one write transaction: the owner's facts are
/// read, the model checks the document, and only then is the account reset and the fixture
/// written. A refused document (the inner `Err`) changed nothing.
pub async fn load(
    store: &Store,
    doc: Arc<Value>,
) -> Result<Result<Applied, FixtureError>, StoreError> {
    let backend = store.backend();
    store
        .write(move |conn| {
            let doc = doc.clone();
            Box::pin(async move {
                let owner = deskd_store::fixture::owner_facts(&mut *conn).await?;
                let planned = match fixture::plan(&doc, &owner, deskd_model::time::now()) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let reset = deskd_store::reset::reset_account(&mut *conn).await?;
                deskd_store::fixture::apply(&mut *conn, backend, reset.owner_id, &planned)
                    .await
                    .map(Ok)
            })
        })
        .await
}

/// The account's state as a fixture document.
pub async fn export_document(store: &Store) -> Result<Value, StoreError> {
    let mut conn = store.reader().await?;
    deskd_store::fixture::export_consistent(&mut conn).await
}

fn refused(e: &FixtureError) -> ApiError {
    ApiError::Raw(
        StatusCode::BAD_REQUEST,
        json!({
            "error": "InvalidFixture",
            "description": e.sentence(),
            "details": {"pointer": e.pointer, "message": e.message},
        }),
    )
}

/// Forgets what a reset forgets besides the database: rate-limit buckets and this process's
/// test-mode state.
fn forget(app: &AppState) {
    app.limiter.clear();
    if let Some(test) = &app.test {
        test.reset();
    }
}

/// `GET /__deskd/export`: the account as a fixture document.
pub async fn export(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    test_state(&app)?;
    Ok(ok(&export_document(&app.store).await?))
}

/// `POST /__deskd/import`: the account replaced by the document (the owner and its
/// credentials stay); 400 `InvalidFixture` with a JSON pointer, and nothing changed, when the
/// document breaks a rule.
pub async fn import(
    State(app): State<AppState>,
    Admin(_): Admin,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    test_state(&app)?;
    let start = std::time::Instant::now();
    let done = load(&app.store, Arc::new(Value::Object(body)))
        .await?
        .map_err(|e| refused(&e))?;
    forget(&app);
    Ok(ok(&json!({"import": {
        "organizations": done.organizations,
        "users": done.users,
        "identities": done.identities,
        "memberships": done.memberships,
        "ms": super::seeded::elapsed_ms(start),
    }})))
}

fn snapshot_name(name: &str) -> Result<String, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ApiError::bad_request(
            "InvalidSnapshot",
            "a snapshot name is 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

fn snapshot_json(s: &snapshots::Snapshot) -> Value {
    json!({
        "name": s.name,
        "created_at": deskd_model::time::iso(s.created_at),
        "users": s.users,
        "organizations": s.organizations,
    })
}

/// `POST /__deskd/snapshots/{name}`: saves the account's state under `name` (replacing one of
/// that name); 201.
pub async fn save_snapshot(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    test_state(&app)?;
    let name = snapshot_name(&name)?;
    let start = std::time::Instant::now();
    let saved = app
        .store
        .write(move |conn| {
            let name = name.clone();
            Box::pin(
                async move { snapshots::save(&mut *conn, &name, deskd_model::time::now()).await },
            )
        })
        .await?;
    let mut body = snapshot_json(&saved);
    body["ms"] = json!(super::seeded::elapsed_ms(start));
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"snapshot": body}),
    ))
}

/// `POST /__deskd/snapshots/{name}/restore`: the account back to the snapshot (the owner and
/// its credentials stay; jobs, the journal and fault rules go, as on a reset); 404 when there
/// is no snapshot of that name.
pub async fn restore_snapshot(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    test_state(&app)?;
    let name = snapshot_name(&name)?;
    let start = std::time::Instant::now();
    let shown = name.clone();
    let done = app
        .store
        .write(move |conn| {
            let name = name.clone();
            Box::pin(async move { snapshots::restore(&mut *conn, &name).await })
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    forget(&app);
    Ok(ok(&json!({"restore": {
        "name": shown,
        "owner_id": done.owner_id,
        "ms": super::seeded::elapsed_ms(start),
    }})))
}

/// `GET /__deskd/snapshots`: every snapshot, by name.
pub async fn list_snapshots(
    State(app): State<AppState>,
    Admin(_): Admin,
) -> Result<Response, ApiError> {
    test_state(&app)?;
    // The registry is made on first use: a write.
    let list = app
        .store
        .write(|conn| Box::pin(async move { snapshots::list(&mut *conn).await }))
        .await?;
    Ok(ok(&json!({
        "snapshots": list.iter().map(snapshot_json).collect::<Vec<_>>(),
        "count": list.len(),
    })))
}

/// `DELETE /__deskd/snapshots/{name}`: 204, or 404 when there is none of that name.
pub async fn delete_snapshot(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    test_state(&app)?;
    let name = snapshot_name(&name)?;
    let gone = app
        .store
        .write(move |conn| {
            let name = name.clone();
            Box::pin(async move { snapshots::delete(&mut *conn, &name).await })
        })
        .await?;
    if gone {
        Ok(no_content())
    } else {
        Err(ApiError::NotFound)
    }
}
