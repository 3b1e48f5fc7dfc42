//! `/api/v2/job_statuses`: show, list (newest first, cursor pagination), show_many.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use deskd_model::job::{COMPLETED, FAILED, JobRecord};
use deskd_model::time;
use deskd_store::{Conn, jobs};

use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Staff;
use crate::error::ApiError;
use crate::extract::{BaseUrl, Params};
use crate::respond::ok;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/job_statuses", get(list))
        .route("/api/v2/job_statuses/show_many", get(show_many))
        .route("/api/v2/job_statuses/{id}", get(show))
}

fn not_before(app: &AppState) -> i64 {
    time::now() - app.config.job_retention.as_secs() as i64
}

/// The wire object, with `results` once the job has finished.
async fn wire(conn: &mut Conn, base: &str, job: &JobRecord) -> Result<Value, ApiError> {
    let results = if job.status == COMPLETED || job.status == FAILED {
        Some(jobs::results(conn, &job.id).await?)
    } else {
        None
    };
    Ok(serde_json::to_value(job.to_wire(base, results)).map_err(|e| ApiError::internal(e))?)
}

async fn show(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut conn = app.store.reader().await?;
    let job = jobs::load(&mut conn, &id, not_before(&app))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(
        &json!({"job_status": wire(&mut conn, &base, &job).await?}),
    ))
}

async fn show_many(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let q = crate::extract::param_map(q);
    let raw = q
        .get("ids")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: ids",
            )
        })?;
    let ids = crate::extract::show_many_values("ids", raw)?;
    let mut conn = app.store.reader().await?;
    let mut out = Vec::new();
    for job in jobs::load_many(&mut conn, &ids, not_before(&app)).await? {
        out.push(wire(&mut conn, &base, &job).await?);
    }
    Ok(ok(&json!({"job_statuses": out})))
}

fn encode_cursor(job: &JobRecord) -> String {
    crate::paging::encode_position(&(job.created_at, &job.id))
}

fn decode_cursor(raw: &str) -> Option<(i64, String)> {
    crate::paging::decode_position(raw)
}

/// Newest first; cursor pagination with the empty terminal page link-following clients stop on.
async fn list(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let q = crate::extract::param_map(q);
    let size: i64 = match q.get("page[size]").map(String::as_str) {
        None => 100,
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidPaginationParameter",
                    "page[size] must be between 1 and 100",
                )
            })?,
    };
    let after = match q
        .get("page[after]")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(raw) => Some(decode_cursor(raw).ok_or_else(|| {
            ApiError::bad_request(
                "InvalidPaginationParameter",
                "page[after] is not a valid cursor",
            )
        })?),
    };
    let mut conn = app.store.reader().await?;
    let mut page = jobs::list(&mut conn, after, size + 1, not_before(&app)).await?;
    let has_more = page.len() as i64 > size;
    page.truncate(size as usize);
    let mut out = Vec::new();
    for job in &page {
        out.push(wire(&mut conn, &base, job).await?);
    }
    let after_cursor = page.last().map(encode_cursor);
    let before_cursor = page.first().map(encode_cursor);
    let next = after_cursor
        .as_ref()
        .map(|c| format!("{base}/job_statuses.json?page%5Bafter%5D={c}&page%5Bsize%5D={size}"));
    Ok(ok(&json!({
        "job_statuses": out,
        "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor},
        "links": {"prev": null, "next": next},
    })))
}
