//! Incremental exports for sync tools, oldest change first, deleted users included
//! (`active: false`): `GET /api/v2/incremental/users/cursor` (cursor-based) and the time-based
//! `GET /api/v2/incremental/users` and `/incremental/organizations`; `include=identities`
//! sideloads users' identities.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use deskd_store::{user_queries, users};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{BaseUrl, Params};
use crate::respond::ok;

/// Users a page, as Zendesk's incremental exports (at most 1,000).
const PER_PAGE: i64 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/incremental/users/cursor", get(export))
        .route("/api/v2/incremental/users", get(users_by_time))
        .route(
            "/api/v2/incremental/organizations",
            get(organizations_by_time),
        )
}

/// The incremental exports' own budget, shared by the three of them as Zendesk's is: 429 with
/// `Retry-After` beyond it.
async fn within_limit(app: &AppState) -> Result<(), ApiError> {
    if let Some(rate) = app.limiter.incremental {
        let d = app.limiter.take(&app.store, "incremental", rate).await?;
        if !d.allowed {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: d.retry_after_secs,
                text: "Number of allowed incremental export API requests per minute exceeded",
            });
        }
    }
    Ok(())
}

fn bad(description: &str) -> ApiError {
    ApiError::bad_request("InvalidPaginationParameter", description)
}

fn encode(ts: i64, id: i64) -> String {
    crate::paging::encode_position(&(ts, id))
}

fn decode(raw: &str) -> Option<(i64, i64)> {
    crate::paging::decode_position(raw)
}

async fn export(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let q = crate::extract::param_map(q);
    within_limit(&app).await?;
    let now = deskd_model::time::now();
    let cursor = q.get("cursor").filter(|c| !c.is_empty());
    let (start, after) = match (cursor, q.get("start_time")) {
        (Some(c), _) => (
            0,
            Some(decode(c).ok_or_else(|| bad("cursor is not valid"))?),
        ),
        (None, Some(t)) => {
            let t: i64 = t
                .trim()
                .parse()
                .map_err(|_| bad("start_time must be a Unix time in seconds"))?;
            if t < 0 || t > now {
                return Err(bad("start_time must be in the past"));
            }
            (t, None)
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: start_time",
            ));
        }
    };
    let per_page = match q.get("per_page") {
        None => PER_PAGE,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=PER_PAGE).contains(n))
            .ok_or_else(|| bad("per_page must be between 1 and 1000"))?,
    };
    let include_identities = q
        .get("include")
        .is_some_and(|i| crate::extract::comma_values(i).contains(&"identities"));
    let mut conn = app.store.reader().await?;
    let mut page = user_queries::changed_since(&mut conn, start, after, per_page).await?;
    let end_of_stream = page.len() as i64 <= per_page;
    page.truncate(per_page as usize);
    // The cursor stays where the stream ends, so a client can poll it for later changes.
    let (after_cursor, after_url) = match (page.last(), after) {
        (Some(u), _) => (Some(encode(u.updated_at, u.id)), true),
        (None, Some((ts, id))) => (Some(encode(ts, id)), true),
        (None, None) => (None, false),
    };
    let include = if include_identities {
        "&include=identities"
    } else {
        ""
    };
    let mut body = json!({
        "users": page.iter().map(|u| json!(u.to_wire(&base))).collect::<Vec<_>>(),
        "after_url": after_url.then(|| format!("{base}/incremental/users/cursor.json?cursor={}{include}", after_cursor.clone().unwrap_or_default())),
        "after_cursor": after_cursor,
        "before_url": null,
        "before_cursor": null,
        "end_of_stream": end_of_stream,
    });
    if include_identities {
        let ids: Vec<i64> = page.iter().map(|u| u.id).collect();
        let identities: Vec<Value> = users::load_many_with_identities(&mut conn, &ids)
            .await?
            .into_iter()
            .flat_map(|(_, list)| list)
            .map(|i| json!(i.to_wire(&base)))
            .collect();
        body["identities"] = Value::Array(identities);
    }
    Ok(ok(&body))
}

/// Changes younger than this are left out of a time-based export, as Zendesk leaves out the last
/// minute: what a page says is complete stays complete. A `start_time` inside it is a 422.
const SETTLE_SECS: i64 = 60;

/// The `start_time` of a time-based export: a Unix time more than a minute in the past.
fn time_based_start(q: &BTreeMap<String, String>, now: i64) -> Result<i64, ApiError> {
    let Some(raw) = q.get("start_time").filter(|t| !t.trim().is_empty()) else {
        return Err(ApiError::bad_request(
            "ParameterMissing",
            "param is missing or the value is empty: start_time",
        ));
    };
    let t: i64 = raw
        .trim()
        .parse()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or_else(|| bad("start_time must be a Unix time in seconds"))?;
    if t > now - SETTLE_SECS {
        return Err(ApiError::Raw(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "InvalidValue", "description": "Too recent start_time. Use a start_time more than a minute in the past"}),
        ));
    }
    Ok(t)
}

fn time_based_per_page(q: &BTreeMap<String, String>) -> Result<i64, ApiError> {
    match q.get("per_page") {
        None => Ok(PER_PAGE),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=PER_PAGE).contains(n))
            .ok_or_else(|| bad("per_page must be between 1 and 1000")),
    }
}

/// One time-based page, decided from what the store returned: `first` holds up to `per_page + 1`
/// rows from `start` on, `(updated_at, id)` of each from `stamp`. A page never splits a second:
/// when it is full, the rest of its last second comes with it (so a page may pass `per_page`, as
/// Zendesk's do). `end_time` is where the next page starts (the `start_time` of `next_page`):
/// everything changed before it and at least a minute ago has been delivered, so following
/// `next_page` neither repeats nor skips an item, and the page after the last one is empty.
struct TimePage<T> {
    items: Vec<T>,
    end_time: i64,
    end_of_stream: bool,
}

async fn time_page<T, F, Fut>(
    mut first: Vec<T>,
    start: i64,
    per_page: i64,
    stamp: impl Fn(&T) -> (i64, i64),
    rest_of_second: F,
) -> Result<TimePage<T>, ApiError>
where
    F: FnOnce(i64, i64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, ApiError>>,
{
    if first.len() as i64 <= per_page {
        let end_time = first.last().map(|i| stamp(i).0 + 1).unwrap_or(start);
        return Ok(TimePage {
            items: first,
            end_time,
            end_of_stream: true,
        });
    }
    first.truncate(per_page as usize);
    let (last_at, last_id) = first.last().map(&stamp).unwrap_or((start, 0));
    first.extend(rest_of_second(last_at, last_id).await?);
    Ok(TimePage {
        items: first,
        end_time: last_at + 1,
        end_of_stream: false,
    })
}

/// The body of a time-based page under `key`, with `next_page` keeping the request's
/// `per_page` and `include`.
fn time_body(
    key: &str,
    items: Vec<Value>,
    page: (i64, bool),
    base: &str,
    path: &str,
    q: &BTreeMap<String, String>,
) -> Value {
    let (end_time, end_of_stream) = page;
    let count = items.len();
    let mut next = format!("{base}{path}.json?start_time={end_time}");
    for k in ["per_page", "include"] {
        if let Some(v) = q.get(k) {
            let v: String = v
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ',' | '_'))
                .collect();
            next.push_str(&format!("&{k}={v}"));
        }
    }
    json!({
        key: items,
        "count": count,
        "end_time": end_time,
        "next_page": next,
        "end_of_stream": end_of_stream,
    })
}

/// `GET /api/v2/incremental/users?start_time=`: time-based export of users (admins).
async fn users_by_time(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let q = crate::extract::param_map(q);
    within_limit(&app).await?;
    let now = deskd_model::time::now();
    let start = time_based_start(&q, now)?;
    let per_page = time_based_per_page(&q)?;
    let include_identities = q
        .get("include")
        .is_some_and(|i| crate::extract::comma_values(i).contains(&"identities"));
    let mut conn = app.store.reader().await?;
    let first =
        user_queries::changed_in_window(&mut conn, start, now - SETTLE_SECS, per_page + 1).await?;
    let page = {
        let conn = &mut conn;
        time_page(
            first,
            start,
            per_page,
            |u| (u.updated_at, u.id),
            |at, id| async move { Ok(user_queries::changed_at(conn, at, id).await?) },
        )
        .await?
    };
    let wire: Vec<Value> = page.items.iter().map(|u| json!(u.to_wire(&base))).collect();
    let mut body = time_body(
        "users",
        wire,
        (page.end_time, page.end_of_stream),
        &base,
        "/incremental/users",
        &q,
    );
    if include_identities {
        let ids: Vec<i64> = page.items.iter().map(|u| u.id).collect();
        let identities: Vec<Value> = users::load_many_with_identities(&mut conn, &ids)
            .await?
            .into_iter()
            .flat_map(|(_, list)| list)
            .map(|i| json!(i.to_wire(&base)))
            .collect();
        body["identities"] = Value::Array(identities);
    }
    Ok(ok(&body))
}

/// `GET /api/v2/incremental/organizations?start_time=`: time-based export of organizations
/// (admins). A deleted organization is gone from deskd, so it is not in the stream.
async fn organizations_by_time(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let q = crate::extract::param_map(q);
    within_limit(&app).await?;
    use deskd_store::organizations;
    let now = deskd_model::time::now();
    let start = time_based_start(&q, now)?;
    let per_page = time_based_per_page(&q)?;
    let mut conn = app.store.reader().await?;
    let first =
        organizations::changed_in_window(&mut conn, start, now - SETTLE_SECS, per_page + 1).await?;
    let page = {
        let conn = &mut conn;
        time_page(
            first,
            start,
            per_page,
            |o| (o.updated_at, o.id),
            |at, id| async move { Ok(organizations::changed_at(conn, at, id).await?) },
        )
        .await?
    };
    let wire: Vec<Value> = page.items.iter().map(|o| json!(o.to_wire(&base))).collect();
    Ok(ok(&time_body(
        "organizations",
        wire,
        (page.end_time, page.end_of_stream),
        &base,
        "/incremental/organizations",
        &q,
    )))
}
