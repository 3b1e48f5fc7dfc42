//! Test mode: deskd as the test double of a Zendesk integration's test suite.
//!
//! Off by default; `deskd serve --test-mode` (or `DESKD_TEST_MODE=1`) routes the controls under
//! `/__deskd/`, a prefix no Zendesk path uses. With test mode off they are not routed at all, so
//! they answer 404 `InvalidEndpoint` like any unknown path. With it on they need admin
//! credentials, like every other admin endpoint. They are deskd's own, not Zendesk's; the
//! fixture and snapshot controls are in the OpenAPI document (`openapi`), tagged as test mode's.

mod faults;
mod fixtures;
mod journal;
pub mod openapi;
mod pacing;
mod pattern;
pub mod seeded;

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

use crate::extract::{JsonObject, Params};
use journal::{Entry, Filter, Journal, StatusFilter};

pub use fixtures::{export_document, load as load_fixture};

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
    /// Jobs stay `queued` while true (`POST /__deskd/jobs/hold`, `/release`).
    jobs_held: std::sync::atomic::AtomicBool,
    /// Steps and planned item failures (`POST /__deskd/jobs/step`, `/fail`).
    pub pacing: pacing::Pacing,
}

impl TestState {
    /// Forgets everything a reset forgets: the journal, the fault rules and a hold on jobs
    /// (not the clock, which a test sets on purpose).
    fn reset(&self) {
        self.journal.clear();
        self.faults.clear();
        self.jobs_held
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.pacing.clear();
    }

    /// The journal as `GET /__deskd/requests` answers it, for those query parameters (method,
    /// path, status, since, after_id): callable from Rust, e.g. by a page that shows it.
    pub fn requests_json(&self, params: &[(String, String)]) -> Result<Value, ApiError> {
        let (found, evicted) = self.journal.find(&filter(params)?);
        Ok(json!({
            "requests": found.iter().map(Entry::to_json).collect::<Vec<_>>(),
            "count": found.len(),
            "evicted": evicted,
            "capacity": journal::CAPACITY,
        }))
    }

    /// `GET /__deskd/requests/unmatched`'s answer: unmatched requests and their endpoints.
    pub fn unmatched_json(&self, params: &[(String, String)]) -> Result<Value, ApiError> {
        let mut f = filter(params)?;
        f.unmatched_only = true;
        let (found, evicted) = self.journal.find(&f);
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
        Ok(json!({
            "endpoints": endpoints
                .iter()
                .map(|(m, p, n)| json!({"method": m, "path": p, "count": n}))
                .collect::<Vec<_>>(),
            "requests": found.iter().map(Entry::to_json).collect::<Vec<_>>(),
            "count": found.len(),
            "evicted": evicted,
        }))
    }

    /// `GET /__deskd/faults`'s answer: the rules with how often each matched and fired.
    pub fn faults_json(&self) -> Value {
        let rules = self.faults.list();
        json!({"faults": rules, "count": rules.len()})
    }

    /// Whether workers leave queued jobs alone.
    pub fn jobs_held(&self) -> bool {
        self.jobs_held.load(std::sync::atomic::Ordering::SeqCst)
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
        return with_date(next.run(req).await);
    }
    seeded::tick();
    let started = Instant::now();
    let at_ms = if seeded::active() {
        deskd_model::time::now_ms()
    } else {
        chrono::Utc::now().timestamp_millis()
    };
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
            entry.duration_ms = seeded::elapsed_ms(started);
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
    entry.duration_ms = seeded::elapsed_ms(started);
    test.journal.push(entry);
    with_date(Response::from_parts(rparts, Body::from(rbytes)))
}

/// A seeded run's `Date` header (hyper's own is off then; see `serve`).
fn with_date(mut resp: Response) -> Response {
    if let Some(date) = seeded::date_header() {
        resp.headers_mut().insert(header::DATE, date);
    }
    resp
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
        .route("/__deskd/clock", get(clock).post(set_clock))
        .route("/__deskd/jobs/hold", post(hold_jobs))
        .route("/__deskd/jobs/release", post(release_jobs))
        .route("/__deskd/jobs", get(jobs))
        .route("/__deskd/jobs/step", post(step_jobs))
        .route(
            "/__deskd/jobs/fail",
            post(fail_job_item).delete(clear_job_failures),
        )
        .route("/__deskd/export", get(fixtures::export))
        .route("/__deskd/import", post(fixtures::import))
        .route("/__deskd/snapshots", get(fixtures::list_snapshots))
        .route(
            "/__deskd/snapshots/{name}",
            post(fixtures::save_snapshot).delete(fixtures::delete_snapshot),
        )
        .route(
            "/__deskd/snapshots/{name}/restore",
            post(fixtures::restore_snapshot),
        )
}

fn clock_json() -> Value {
    use deskd_model::time::test_clock;
    let (now, offset, frozen) = test_clock::state();
    json!({"clock": {
        "now": journal::iso_ms(now),
        "unix": now.div_euclid(1000),
        "unix_ms": now,
        "frozen": frozen,
        "offset_ms": offset,
        "real": journal::iso_ms(chrono::Utc::now().timestamp_millis()),
    }})
}

/// `GET /__deskd/clock`: the time deskd is living at.
async fn clock(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    test_state(&app)?;
    Ok(ok(&clock_json()))
}

/// A duration: seconds as a number, or text such as `500ms`, `90s`, `15m`, `24h`, `2d`
/// (negative moves back).
fn parse_duration_ms(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_f64() {
        return n.is_finite().then(|| (n * 1000.0).round() as i64);
    }
    let s = v.as_str()?.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.trim().parse().ok()?;
    let per = match unit.trim() {
        "ms" => 1.0,
        "" | "s" => 1000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = n * per;
    ms.is_finite().then(|| ms.round() as i64)
}

/// `POST /__deskd/clock` `{"set": TIME, "advance": DURATION, "freeze": BOOL, "reset": true}`
/// (any of them, applied in that order after `reset`): TIME is RFC 3339 or Unix seconds.
/// The clock is the process's: timestamps, rate-limit windows, lockouts, job retention,
/// idempotency windows and the incremental export follow it.
async fn set_clock(
    State(app): State<AppState>,
    Admin(_): Admin,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    use deskd_model::time::test_clock;
    test_state(&app)?;
    let invalid = |what: &str| ApiError::bad_request("InvalidClock", what.to_owned());
    let set = match body.get("set") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| invalid("set must be an RFC 3339 time or Unix seconds"))?
                .timestamp_millis(),
        ),
        Some(v) => Some(
            v.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| (f * 1000.0) as i64)
                .ok_or_else(|| invalid("set must be an RFC 3339 time or Unix seconds"))?,
        ),
    };
    let advance = match body.get("advance") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_duration_ms(v).ok_or_else(|| {
            invalid("advance must be seconds, or text such as 500ms, 90s, 15m, 24h, 2d")
        })?),
    };
    let freeze = match body.get("freeze") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid("freeze must be true or false")),
    };
    let reset = matches!(body.get("reset"), Some(Value::Bool(true)));
    if set.is_none() && advance.is_none() && freeze.is_none() && !reset {
        return Err(invalid("give set, advance, freeze or reset"));
    }
    if reset {
        test_clock::reset();
    }
    if let Some(ms) = set {
        test_clock::set(ms);
    }
    if let Some(ms) = advance {
        test_clock::advance(ms);
    }
    if let Some(on) = freeze {
        test_clock::freeze(on);
    }
    Ok(ok(&clock_json()))
}

fn jobs_json(test: &TestState) -> Value {
    let mut pacing = test.pacing.to_json();
    pacing["held"] = json!(test.jobs_held());
    json!({ "jobs": pacing })
}

/// `GET /__deskd/jobs`: whether jobs are held, the step permits left, the planned failures.
async fn jobs(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    Ok(ok(&jobs_json(test_state(&app)?)))
}

/// Most items one step call may grant.
const MAX_STEP: u64 = 100_000;

/// `POST /__deskd/jobs/step` `{"items": N}` (default 1): holds jobs if they were not held, lets
/// the first worker run N more items one at a time, each committed on its own, and answers
/// once they have run (`ran`), or once no queued or running job is left (`unused` permits are
/// given back).
async fn step_jobs(
    State(app): State<AppState>,
    Admin(_): Admin,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let test = test_state(&app)?;
    // No body is `{"items": 1}`.
    let body: serde_json::Map<String, Value> = if raw.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice(&raw) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(ApiError::bad_request(
                    "InvalidStep",
                    "the body must be a JSON object such as {\"items\": 1}",
                ));
            }
        }
    };
    let items = match body.get("items") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_STEP).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidStep",
                    format!("items must be a whole number from 1 to {MAX_STEP}"),
                )
            })?,
    };
    test.jobs_held
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let notify = app.jobs_notify.clone();
    let done = test
        .pacing
        .step(
            items,
            move || notify.notify_waiters(),
            std::time::Duration::from_secs(30),
        )
        .await;
    let mut body = jobs_json(test);
    body["jobs"]["ran"] = json!(done.ran);
    body["jobs"]["unused"] = json!(done.unused);
    Ok(ok(&body))
}

/// `POST /__deskd/jobs/fail` `{"index": K, "error": "RecordInvalid", "details": "...",
/// "job_id": "V3-..."}`: item K (from 0) of that job, or of the next job to reach item K,
/// fails with that error code and details instead of being written.
async fn fail_job_item(
    State(app): State<AppState>,
    Admin(_): Admin,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let test = test_state(&app)?;
    let invalid = |what: &str| ApiError::bad_request("InvalidJobFailure", what.to_owned());
    let index = body
        .get("index")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| invalid("index must be a whole number (items count from 0)"))?;
    let text = |key: &str, default: &str| match body.get(key) {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 1024 && !s.contains('\0') => {
            Ok(s.clone())
        }
        Some(_) => Err(invalid(&format!("{key} must be text of 1 to 1024 bytes"))),
    };
    let error = text("error", "InjectedFailure")?;
    let details = text("details", "This item failed on purpose (deskd test mode)")?;
    let job_id = match body.get("job_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => Some(s.clone()),
        Some(_) => return Err(invalid("job_id must be a job's id")),
    };
    test.pacing.add_failure(job_id, index, error, details);
    Ok(json_response(StatusCode::CREATED, &jobs_json(test)))
}

/// `DELETE /__deskd/jobs/fail`: forgets the planned failures.
async fn clear_job_failures(
    State(app): State<AppState>,
    Admin(_): Admin,
) -> Result<Response, ApiError> {
    test_state(&app)?.pacing.clear_failures();
    Ok(no_content())
}

/// `POST /__deskd/jobs/hold`: jobs submitted from now on (and queued ones) stay `queued`.
async fn hold_jobs(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let test = test_state(&app)?;
    test.jobs_held
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(ok(&jobs_json(test)))
}

/// `POST /__deskd/jobs/release`: workers take queued jobs again, at once.
async fn release_jobs(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let test = test_state(&app)?;
    test.jobs_held
        .store(false, std::sync::atomic::Ordering::SeqCst);
    app.jobs_notify.notify_waiters();
    Ok(ok(&jobs_json(test)))
}

fn test_state(app: &AppState) -> Result<&TestState, ApiError> {
    app.test.as_deref().ok_or(ApiError::InvalidEndpoint)
}

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
    Ok(ok(&test_state(&app)?.requests_json(&params)?))
}

/// `GET /__deskd/requests/unmatched`: requests answered `InvalidEndpoint` (a path deskd does not
/// serve, or a method it does not serve there), and those endpoints with their counts.
async fn unmatched(
    State(app): State<AppState>,
    Admin(_): Admin,
    Query(params): Params,
) -> Result<Response, ApiError> {
    Ok(ok(&test_state(&app)?.unmatched_json(&params)?))
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
    Ok(ok(&test_state(&app)?.faults_json()))
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
async fn info(State(app): State<AppState>, Admin(_): Admin) -> Response {
    let held = app.test.as_ref().is_some_and(|t| t.jobs_held());
    ok(&json!({"deskd": {
        "test_mode": true,
        "version": env!("CARGO_PKG_VERSION"),
        "jobs_held": held,
        "journal_capacity": journal::CAPACITY,
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
        "ms": seeded::elapsed_ms(start),
    }})))
}
