//! `GET /api/v2/job_statuses/{id}/events`, a deskd extension: a job's progress as Server-Sent
//! Events, so that a client (or the admin pages) can watch a job without polling it.
//!
//! One `progress` event whenever the job's status or progress changes (the first at once, with the
//! job as it is), then one `completed` or `failed` event with the `job_status` object and its
//! `results`, and the stream ends. The store is the only source of truth, so the stream reads it
//! every [`POLL`]: a job worked by another process on the same database is watched the same way.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use deskd_model::job::{COMPLETED, FAILED, JobRecord};
use deskd_store::jobs;
use futures_util::stream::{self, Stream};
use serde_json::json;

use crate::AppState;
use crate::auth::Staff;
use crate::error::ApiError;
use crate::extract::BaseUrl;

/// How often a stream looks at its job.
const POLL: Duration = Duration::from_millis(200);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v2/job_statuses/{id}/events", get(events))
}

fn not_before(app: &AppState) -> i64 {
    deskd_model::time::now() - app.config.job_retention.as_secs() as i64
}

async fn events(
    State(app): State<AppState>,
    Staff(_): Staff,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut conn = app.store.reader().await?;
    // An unknown job is a 404 before the stream starts, as `GET /job_statuses/{id}` answers.
    jobs::load(&mut conn, &id, not_before(&app))
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(conn);
    Ok(Sse::new(watch(app, base, id))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Where a stream is: the last (status, progress) it sent, and whether it has ended.
struct Watch {
    app: AppState,
    base: String,
    id: String,
    sent: Option<(String, Option<i64>)>,
    done: bool,
    stopping: tokio::sync::watch::Receiver<bool>,
}

fn watch(app: AppState, base: String, id: String) -> impl Stream<Item = Result<Event, Infallible>> {
    let stopping = app.stopping.subscribe();
    let start = Watch {
        app,
        base,
        id,
        sent: None,
        done: false,
        stopping,
    };
    stream::unfold(start, |mut w| async move {
        if w.done {
            return None;
        }
        loop {
            match next_event(&mut w).await {
                Ok(Some(event)) => return Some((Ok(event), w)),
                Ok(None) => {}
                Err(e) => {
                    // The stream ends with an error event; the client may reconnect.
                    tracing::warn!(error = %e, job = %w.id, "job events: store unavailable");
                    w.done = true;
                    return Some((
                        Ok(Event::default().event("error").data("store unavailable")),
                        w,
                    ));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = w.stopping.wait_for(|s| *s) => return None,
            }
        }
    })
}

/// The event to send now, if the job changed since the last one.
async fn next_event(w: &mut Watch) -> Result<Option<Event>, ApiError> {
    let mut conn = w.app.store.reader().await?;
    let Some(job) = jobs::load(&mut conn, &w.id, not_before(&w.app)).await? else {
        // Purged (past its retention) while watched.
        w.done = true;
        return Ok(Some(Event::default().event("gone").data("{}")));
    };
    let now = (job.status.clone(), job.progress);
    if w.sent.as_ref() == Some(&now) {
        return Ok(None);
    }
    w.sent = Some(now);
    let finished = job.status == COMPLETED || job.status == FAILED;
    let results = if finished {
        Some(jobs::results(&mut conn, &job.id).await?)
    } else {
        None
    };
    if finished {
        w.done = true;
    }
    Ok(Some(event(&w.base, &job, results, finished)?))
}

fn event(
    base: &str,
    job: &JobRecord,
    results: Option<Vec<serde_json::Value>>,
    finished: bool,
) -> Result<Event, ApiError> {
    let name = if finished {
        job.status.as_str()
    } else {
        "progress"
    };
    let body = json!({"job_status": job.to_wire(base, results)});
    Event::default()
        .event(name)
        .id(format!("{}:{}", job.status, job.progress.unwrap_or(0)))
        .json_data(body)
        .map_err(ApiError::internal)
}
