//! The unified search: `GET /api/v2/search`, `/search/count` and `/search/export`, over users
//! and organizations (deskd keeps no tickets or groups: `type:ticket` finds nothing). Agents
//! only. Each result carries `result_type`. Offset pages of at most 100 reach the first 1,000
//! results, as Zendesk's; the export pages by cursor in (created_at, id) order.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use deskd_model::custom_field::{FieldKey, Resource};
use deskd_model::organization::OrganizationRecord;
use deskd_model::search::{Query as Parsed, ResultType, parse_query};
use deskd_model::user::UserRecord;
use deskd_store::search::{self as store, OrgFilter};
use deskd_store::user_queries::{self, UserFilter};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Staff;
use crate::error::ApiError;
use crate::extract::BaseUrl;
use crate::paging::{MAX_PER_PAGE, decode_position, encode_position, url};
use crate::respond::ok;

/// Zendesk's search answers the first 1,000 results of a query.
pub const RESULTS_CAP: i64 = 1_000;
/// The export's largest page.
const EXPORT_MAX: i64 = 1_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/search", get(search))
        .route("/api/v2/search/count", get(count))
        .route("/api/v2/search/export", get(export))
}

/// The `query` parameter, parsed.
pub(crate) fn query_of(params: &BTreeMap<String, String>) -> Result<Parsed, ApiError> {
    let q = params
        .get("query")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: query",
            )
        })?;
    parse_query(q).map_err(|e| ApiError::bad_request("InvalidQuery", e))
}

/// `sort_by` (created_at, updated_at; the ticket-only ones sort by relevance, as deskd has no
/// tickets) and `sort_order` (asc or desc, default desc), as the store's sort.
pub(crate) fn sort_of(params: &BTreeMap<String, String>) -> Option<(&'static str, bool)> {
    let col = match params.get("sort_by").map(|s| s.trim()) {
        Some("created_at") => "created_at",
        Some("updated_at") => "updated_at",
        _ => return None,
    };
    let desc = !params
        .get("sort_order")
        .is_some_and(|o| o.trim().eq_ignore_ascii_case("asc"));
    Some((col, desc))
}

pub(crate) fn user_filter(q: &Parsed, sort: Option<(&'static str, bool)>) -> UserFilter {
    let (terms, excluded) = q.split();
    UserFilter {
        terms,
        excluded,
        sort,
        ..UserFilter::default()
    }
}

fn org_filter(q: &Parsed, sort: Option<(&'static str, bool)>) -> OrgFilter {
    let (terms, excluded) = q.split();
    OrgFilter {
        terms,
        excluded,
        sort,
    }
}

fn wants(q: &Parsed, t: ResultType) -> bool {
    q.result_type.is_none_or(|have| have == t)
}

fn user_result(u: &UserRecord, base: &str, defs: &[FieldKey]) -> Value {
    let mut v = json!(crate::custom_fields::user(u, base, defs));
    v["result_type"] = json!("user");
    v
}

fn org_result(o: &OrganizationRecord, base: &str, defs: &[FieldKey]) -> Value {
    let mut v = json!(crate::custom_fields::organization(o, base, defs));
    v["result_type"] = json!("organization");
    v
}

/// Offset page parameters, leniently read as everywhere; past the 1,000th result is a 422.
fn offset(params: &BTreeMap<String, String>) -> Result<(i64, i64), ApiError> {
    let read = |k: &str, d: i64| {
        params
            .get(k)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(d)
    };
    let page = read("page", 1).max(1);
    let per_page = read("per_page", MAX_PER_PAGE).clamp(1, MAX_PER_PAGE);
    if (page - 1).saturating_mul(per_page) >= RESULTS_CAP {
        return Err(ApiError::Raw(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "InvalidPaginationParameter",
                   "description": "Search results are limited to the first 1,000; narrow the query or use /search/export"}),
        ));
    }
    Ok((page, per_page))
}

/// `GET /api/v2/search?query=...`: users and organizations matching the query (one type with
/// `type:`), `{results, facets, next_page, previous_page, count}`; `count` is every match, even
/// beyond the 1,000 reachable.
async fn search(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = query_of(&params)?;
    let sort = sort_of(&params);
    let (page, per_page) = offset(&params)?;
    let (uf, of) = (user_filter(&q, sort), org_filter(&q, sort));
    let mut conn = app.store.reader().await?;
    let end = page * per_page;
    let (mut users, mut orgs, mut total) = (Vec::new(), Vec::new(), 0);
    if wants(&q, ResultType::User) {
        total += user_queries::count(&mut conn, &uf).await?;
        users = user_queries::page_by_offset(&mut conn, &uf, 0, end).await?;
    }
    if wants(&q, ResultType::Organization) {
        total += store::count_organizations(&mut conn, &of).await?;
        orgs = store::organizations(&mut conn, &of, 0, end).await?;
    }
    let user_defs = deskd_store::custom_fields::keys(&mut conn, Resource::User).await?;
    let org_defs = deskd_store::custom_fields::keys(&mut conn, Resource::Organization).await?;
    drop(conn);
    // Both kinds in one order: the sort key when given (ties by kind, then id; all reversed
    // for desc), else users before organizations, each by id.
    let key = |at: (i64, i64)| match sort {
        Some(("updated_at", _)) => at.1,
        Some(_) => at.0,
        None => 0,
    };
    let mut merged: Vec<(i64, u8, i64, Value)> = users
        .iter()
        .map(|u| {
            (
                key((u.created_at, u.updated_at)),
                0,
                u.id,
                user_result(u, &base, &user_defs),
            )
        })
        .chain(orgs.iter().map(|o| {
            (
                key((o.created_at, o.updated_at)),
                1,
                o.id,
                org_result(o, &base, &org_defs),
            )
        }))
        .collect();
    let desc = sort.is_some_and(|(_, d)| d);
    merged.sort_by(|a, b| {
        let ord = a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2));
        if desc { ord.reverse() } else { ord }
    });
    let results: Vec<Value> = merged
        .into_iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .map(|(_, _, _, v)| v)
        .collect();
    let reachable = total.min(RESULTS_CAP);
    let link = |p: i64| {
        url(
            &base,
            "/search",
            &params,
            &[("page", p.to_string()), ("per_page", per_page.to_string())],
        )
    };
    Ok(ok(&json!({
        "results": results,
        "facets": null,
        "next_page": (end < reachable).then(|| link(page + 1)),
        "previous_page": (page > 1).then(|| link(page - 1)),
        "count": total,
    })))
}

/// `GET /api/v2/search/count?query=...`: `{"count": N}`.
async fn count(
    State(app): State<AppState>,
    Staff(_): Staff,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = query_of(&params)?;
    let mut conn = app.store.reader().await?;
    let mut total = 0;
    if wants(&q, ResultType::User) {
        total += user_queries::count(&mut conn, &user_filter(&q, None)).await?;
    }
    if wants(&q, ResultType::Organization) {
        total += store::count_organizations(&mut conn, &org_filter(&q, None)).await?;
    }
    Ok(ok(&json!({ "count": total })))
}

/// An export position: the last result's (created_at, id).
#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    c: i64,
    i: i64,
}

/// `GET /api/v2/search/export?query=...&filter[type]=user`: one type (from `filter[type]`, never
/// `type:` in the query), cursor pages of `page[size]` (default 100, at most 1,000) in
/// (created_at, id) order: `{results, facets, meta: {has_more, after_cursor, before_cursor},
/// links: {prev, next}}`, no `count`. Backward paging is not supported, as on Zendesk. A `type:`
/// in the query must agree with `filter[type]`.
async fn export(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = query_of(&params)?;
    let kind = params
        .get("filter[type]")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "ParameterMissing",
                "param is missing or the value is empty: filter[type]",
            )
        })?;
    let kind = ResultType::parse(kind).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidParameter",
            "filter[type] must be ticket, organization, user or group",
        )
    })?;
    // zenpy sends the type twice (`filter[type]=user` and `type:user`); only a contradiction
    // is refused.
    if q.result_type.is_some_and(|t| t != kind) {
        return Err(ApiError::bad_request(
            "InvalidQuery",
            "the query's type: differs from filter[type]",
        ));
    }
    let size = match params.get("page[size]").map(|s| s.trim().parse::<i64>()) {
        None => MAX_PER_PAGE,
        Some(Ok(n)) if (1..=EXPORT_MAX).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad_request(
                "InvalidPaginationParameter",
                "page[size] must be between 1 and 1000",
            ));
        }
    };
    let after = match params.get("page[after]").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            decode_position::<Position>(raw)
                .map(|p| (p.c, p.i))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "InvalidPaginationParameter",
                        "the page cursor is not valid",
                    )
                })?,
        ),
    };
    let mut conn = app.store.reader().await?;
    let (mut results, mut last) = (Vec::new(), None);
    let has_more = match kind {
        ResultType::User => {
            let defs = deskd_store::custom_fields::keys(&mut conn, Resource::User).await?;
            let mut page =
                store::export_users(&mut conn, &user_filter(&q, None), after, size).await?;
            let more = page.len() as i64 > size;
            page.truncate(size as usize);
            last = page.last().map(|u| (u.created_at, u.id));
            results.extend(page.iter().map(|u| user_result(u, &base, &defs)));
            more
        }
        ResultType::Organization => {
            let defs = deskd_store::custom_fields::keys(&mut conn, Resource::Organization).await?;
            let mut page =
                store::export_organizations(&mut conn, &org_filter(&q, None), after, size).await?;
            let more = page.len() as i64 > size;
            page.truncate(size as usize);
            last = page.last().map(|o| (o.created_at, o.id));
            results.extend(page.iter().map(|o| org_result(o, &base, &defs)));
            more
        }
        ResultType::Other => false,
    };
    let after_cursor = last.map(|(c, i)| encode_position(&Position { c, i }));
    // As Zendesk's (and deskd's other cursor pages): a non-empty page links to the next, and
    // the empty page after the last one has no link, so link-following clients stop.
    let next = after_cursor.as_ref().map(|cursor| {
        url(
            &base,
            "/search/export",
            &params,
            &[
                ("page[after]", cursor.clone()),
                ("page[size]", size.to_string()),
            ],
        )
    });
    Ok(ok(&json!({
        "results": results,
        "facets": null,
        "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": null},
        "links": {"prev": null, "next": next},
    })))
}
