//! `GET /api/v2/incremental/users/cursor`: every user changed since `start_time`, oldest change
//! first, for sync tools; `include=identities` sideloads their identities.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use deskd_store::{user_queries, users};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::BaseUrl;
use crate::respond::ok;

/// Users a page, as Zendesk's incremental exports (at most 1,000).
const PER_PAGE: i64 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v2/incremental/users/cursor", get(export))
}

fn bad(description: &str) -> ApiError {
    ApiError::bad_request("InvalidPaginationParameter", description)
}

fn encode(ts: i64, id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ts}|{id}"))
}

fn decode(raw: &str) -> Option<(i64, i64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (ts, id) = text.split_once('|')?;
    Some((ts.parse().ok()?, id.parse().ok()?))
}

async fn export(
    State(app): State<AppState>,
    Admin(_): Admin,
    BaseUrl(base): BaseUrl,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
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
        .is_some_and(|i| i.split(',').any(|s| s.trim() == "identities"));
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
