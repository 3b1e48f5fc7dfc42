//! Test mode: deskd as the test double of a Zendesk integration's test suite.
//!
//! Off by default; `deskd serve --test-mode` (or `DESKD_TEST_MODE=1`) routes the controls under
//! `/__deskd/`, a prefix no Zendesk path uses. With test mode off they are not routed at all, so
//! they answer 404 `InvalidEndpoint` like any unknown path. With it on they need admin
//! credentials, like every other admin endpoint. They are deskd's own, not Zendesk's, and are
//! not in the OpenAPI document.

mod faults;
mod journal;
mod pattern;

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use deskd_store::reset::reset_account;
use serde_json::{Value, json};

use crate::extract::JsonObject;
use journal::{Entry, Filter, Journal, StatusFilter};

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::respond::{json_response, no_content, ok};

/// The prefix of every test-mode path.
pub const PREFIX: &str = "/__deskd";

/// What test mode keeps in this process.
#[derive(Default)]
pub struct TestState {
    journal: Journal,
    faults: faults::Faults,
}

impl TestState {
    /// Forgets everything a reset forgets: the journal and the fault rules.
    fn reset(&self) {
        self.journal.clear();
        self.faults.clear();
    }
}

/// Whether `path` is one of test mode's own (never journaled, never faulted).
fn is_control(path: &str) -> bool {
    path == PREFIX || path.starts_with("/__deskd/") || path == "/__deskd.json"
}

/// Raised to drop a connection: unwinds the connection's task without a response (and, being
/// `resume_unwind`, without the panic hook's message).
struct DroppedByFault;

/// Before routing, in test mode: injects faults and keeps the journal. Outside test mode it
/// only passes the request on.
pub async fn observe(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(test) = app.test.clone() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    if is_control(&path) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let at_ms = chrono::Utc::now().timestamp_millis();
    let method = req.method().clone();
    let query = req.uri().query().map(journal::redact_query);
    let request_headers = journal::headers(req.headers());
    let content_type = |h: &axum::http::HeaderMap| {
        h.get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_type = content_type(req.headers());
    let (parts, body) = req.into_parts();
    let (bytes, unreadable) = match crate::extract::read_limited(body).await {
        Ok(b) => (b, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let request_body = journal::Body::capture(&bytes, request_type.as_deref());
    let fire = test.faults.decide(&method, &path);
    let mut entry = Entry {
        id: 0,
        at_ms,
        method,
        path,
        query,
        request_headers,
        request_body,
        status: None,
        response_headers: Value::Null,
        response_body: journal::Body::default(),
        duration_ms: 0.0,
        unmatched: false,
        fault: fire.as_ref().map(|f| f.rule),
    };
    if let Some(f) = &fire {
        if f.response.delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(f.response.delay_ms)).await;
        }
        if f.response.drop {
            entry.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            test.journal.push(entry);
            std::panic::resume_unwind(Box::new(DroppedByFault));
        }
    }
    let resp = match (&fire, fire.as_ref().and_then(|f| f.response.status)) {
        (Some(f), Some(status)) => faults::respond(f, status),
        _ => match unreadable {
            Some(e) => e.into_response(),
            None => {
                next.run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            }
        },
    };
    let (rparts, rbody) = resp.into_parts();
    let rbytes = match axum::body::to_bytes(rbody, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "test mode: a response body could not be read");
            axum::body::Bytes::new()
        }
    };
    entry.status = Some(rparts.status);
    entry.response_headers = journal::headers(&rparts.headers);
    entry.response_body = journal::Body::capture(&rbytes, content_type(&rparts.headers).as_deref());
    entry.unmatched = matches!(
        rparts.status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) && entry.response_body.value["error"] == "InvalidEndpoint";
    entry.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    test.journal.push(entry);
    Response::from_parts(rparts, Body::from(rbytes))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/__deskd", get(info))
        .route("/__deskd/reset", post(reset))
        .route("/__deskd/requests", get(requests).delete(clear_requests))
        .route("/__deskd/requests/unmatched", get(unmatched))
        .route(
            "/__deskd/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/__deskd/faults/{id}", delete(remove_fault))
}

fn test_state(app: &AppState) -> Result<&TestState, ApiError> {
    app.test.as_deref().ok_or(ApiError::InvalidEndpoint)
}

type Params = Query<Vec<(String, String)>>;

fn filter(params: &[(String, String)]) -> Result<Filter, ApiError> {
    let invalid = |name: &str, v: &str| {
        ApiError::bad_request("InvalidParameter", format!("{name}={v:?} is not valid"))
    };
    let mut f = Filter::default();
    for (k, v) in params {
        match k.as_str() {
            "method" => {
                f.method = Some(
                    Method::from_bytes(v.to_ascii_uppercase().as_bytes())
                        .map_err(|_| invalid(k, v))?,
                );
            }
            "path" => f.path = Some(pattern::Pattern::new(v)),
            "status" => f.status = Some(StatusFilter::parse(v).ok_or_else(|| invalid(k, v))?),
            "since" => f.since_ms = Some(journal::parse_since(v).ok_or_else(|| invalid(k, v))?),
            "after_id" => f.after_id = Some(v.parse().map_err(|_| invalid(k, v))?),
            _ => {}
        }
    }
    Ok(f)
}

/// `GET /__deskd/requests?method=&path=&status=&since=&after_id=`: the journal, oldest first.
async fn requests(
    State(app): State<AppState>,
    Admin(_): Admin,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let test = test_state(&app)?;
    let (found, evicted) = test.journal.find(&filter(&params)?);
    Ok(ok(&json!({
        "requests": found.iter().map(Entry::to_json).collect::<Vec<_>>(),
        "count": found.len(),
        "evicted": evicted,
        "capacity": journal::CAPACITY,
    })))
}

/// `GET /__deskd/requests/unmatched`: requests answered `InvalidEndpoint` (a path deskd does not
/// serve, or a method it does not serve there), and those endpoints with their counts.
async fn unmatched(
    State(app): State<AppState>,
    Admin(_): Admin,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let test = test_state(&app)?;
    let mut f = filter(&params)?;
    f.unmatched_only = true;
    let (found, evicted) = test.journal.find(&f);
    let mut endpoints: Vec<(String, String, u64)> = Vec::new();
    for e in &found {
        let path = e.path.strip_suffix(".json").unwrap_or(&e.path);
        match endpoints
            .iter_mut()
            .find(|(m, p, _)| m == e.method.as_str() && p == path)
        {
            Some(slot) => slot.2 += 1,
            None => endpoints.push((e.method.to_string(), path.to_owned(), 1)),
        }
    }
    Ok(ok(&json!({
        "endpoints": endpoints
            .iter()
            .map(|(m, p, n)| json!({"method": m, "path": p, "count": n}))
            .collect::<Vec<_>>(),
        "requests": found.iter().map(Entry::to_json).collect::<Vec<_>>(),
        "count": found.len(),
        "evicted": evicted,
    })))
}

/// `DELETE /__deskd/requests`: empties the journal.
async fn clear_requests(
    State(app): State<AppState>,
    Admin(_): Admin,
) -> Result<Response, ApiError> {
    test_state(&app)?.journal.clear();
    Ok(no_content())
}

/// `POST /__deskd/faults`: adds a rule; 201 with it.
async fn add_fault(
    State(app): State<AppState>,
    Admin(_): Admin,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let test = test_state(&app)?;
    let rule = faults::Rule::parse(&body).map_err(|e| ApiError::bad_request("InvalidFault", e))?;
    let shown = test
        .faults
        .add(rule)
        .map_err(|e| ApiError::bad_request("InvalidFault", e))?;
    Ok(json_response(StatusCode::CREATED, &json!({"fault": shown})))
}

/// `GET /__deskd/faults`: the rules, with how often each matched and fired.
async fn list_faults(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let rules = test_state(&app)?.faults.list();
    Ok(ok(&json!({"faults": rules, "count": rules.len()})))
}

/// `DELETE /__deskd/faults`: removes every rule.
async fn clear_faults(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    test_state(&app)?.faults.clear();
    Ok(no_content())
}

/// `DELETE /__deskd/faults/{id}`: removes one rule.
async fn remove_fault(
    State(app): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::NotFound)?;
    if test_state(&app)?.faults.remove(id) {
        Ok(no_content())
    } else {
        Err(ApiError::NotFound)
    }
}

/// `GET /__deskd`: that test mode is on, and what it offers.
async fn info(State(_app): State<AppState>, Admin(_): Admin) -> Response {
    ok(&json!({"deskd": {
        "test_mode": true,
        "version": env!("CARGO_PKG_VERSION"),
    }}))
}

/// `POST /__deskd/reset`: back to an empty account, in one write transaction — every user but
/// the account owner, every organization, job, idempotency key and setting; the rate-limit
/// buckets, and this process's test-mode state. The owner and the account's API tokens stay, so
/// the caller is still logged in; cached logins of everyone else stop at once.
async fn reset(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let start = std::time::Instant::now();
    let done = app
        .store
        .write(|conn| Box::pin(async move { reset_account(conn).await }))
        .await?;
    app.limiter.clear();
    if let Some(test) = &app.test {
        test.reset();
    }
    tracing::info!(
        users = done.users,
        organizations = done.organizations,
        jobs = done.jobs,
        "test mode: account reset"
    );
    Ok(ok(&json!({"reset": {
        "owner_id": done.owner_id,
        "deleted": {"users": done.users, "organizations": done.organizations, "jobs": done.jobs},
        "ms": start.elapsed().as_secs_f64() * 1000.0,
    }})))
}
