//! Import: a CSV or JSON Lines upload, read and checked by the same code as `deskd import`
//! (`deskd_model::import`: line numbers, batches of 100, the failures file), sent through the
//! API's `create_or_update_many` on the signed-in user's behalf, and watched to the end.
//!
//! The upload's answer is a stream of JSON lines the page reads as they come (`submitted` per
//! job, `progress` whenever the count moves, then `done` with the tally and the failures file),
//! so one connection carries the whole import whatever its number of jobs.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use deskd_model::import::{self, BATCH, FailureWriter, ItemResult, Outcome, Row};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Web;
use super::api::Api;
use super::layout::{self, page};
use super::session::Signed;

/// The largest upload (about 100,000 users of typical size); `deskd import` has no limit.
pub const MAX_UPLOAD: usize = 32 * 1024 * 1024;
/// Jobs of one import queued or running at once (as `deskd import`'s default).
const IN_FLIGHT: usize = 8;
/// How often the import looks at its jobs.
const POLL: Duration = Duration::from_millis(200);
/// Problems listed at most when a file is refused.
const MAX_PROBLEMS: usize = 200;

pub async fn form(State(web): State<Web>, signed: Signed) -> Response {
    let body = html! {
        h1 { "Import users" }
        p { "A CSV file with a header row (" code { "name,email,external_id,role,organization,tags,user_fields.KEY" } ") or JSON Lines (one user object a line). "
            "Every row is checked first; nothing is sent if any row is invalid. Users are matched by email or external id and created or updated, 100 a job, as " code { "deskd import" } " does." }
        form.edit id="import" data-csrf=(signed.csrf) {
            label { "File" input id="import-file" type="file" name="file" accept=".csv,.jsonl,.ndjson,.json,text/csv,application/x-ndjson" required; }
            label { "Format"
                select name="format" {
                    option value="" { "From the file name" }
                    option value="csv" { "CSV" }
                    option value="jsonl" { "JSON Lines" }
                }
            }
            button type="submit" { "Import" }
        }
        section id="import-progress" hidden {
            div.meter { progress id="import-bar" max="100" value="0" aria-label="Import progress" {} span.percent id="import-percent" { "0 %" } }
            p id="import-status" role="status" {}
            ul.plain.jobs id="import-jobs" {}
        }
        section id="import-problems" hidden {
            h2 { "Problems" }
            ul id="import-problem-list" {}
        }
        section id="import-failures" hidden {
            h2 { "Failed rows" }
            p { a id="import-failures-file" download="failures.csv" { "Download the failures file" } " (the rows with an " code { "error" } " column; fix and import it again)" }
            table.list { thead { tr { th { "Line" } th { "Error" } } } tbody id="import-failure-rows" {} }
        }
    };
    layout::html(StatusCode::OK, page(&web, Some(&signed), "Import", body))
}

#[derive(Deserialize, Default)]
pub struct UploadQuery {
    format: Option<String>,
    name: Option<String>,
}

fn json_answer(status: StatusCode, body: &Value) -> Response {
    crate::respond::json_response(status, body)
}

pub async fn upload(
    State(web): State<Web>,
    signed: Signed,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if signed.refuse_csrf(&web, token).is_some() {
        return json_answer(
            StatusCode::FORBIDDEN,
            &json!({"error": "The form expired; reload the page."}),
        );
    }
    let bytes = match axum::body::to_bytes(body, MAX_UPLOAD).await {
        Ok(b) => b,
        Err(_) => {
            return json_answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": format!("The file is larger than {} MiB; use deskd import for it.", MAX_UPLOAD / 1024 / 1024)}),
            );
        }
    };
    let source: Arc<[u8]> = Arc::from(bytes.to_vec());
    let format = q.format.as_deref().filter(|f| !f.is_empty());
    let prepared = (|| {
        let csv = import::is_csv(format, q.name.as_deref().unwrap_or(""), &source)?;
        let header = if csv {
            Some(import::csv_header(&source)?)
        } else {
            None
        };
        let (count, problems) = import::validate(&source, header.as_deref())?;
        Ok::<_, String>((header, count, problems))
    })();
    let (header, count, problems) = match prepared {
        Ok(p) => p,
        Err(e) => {
            return json_answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"problems": [e], "rows": 0}),
            );
        }
    };
    if !problems.is_empty() || count == 0 {
        let mut listed: Vec<String> = problems.iter().take(MAX_PROBLEMS).cloned().collect();
        if count == 0 && problems.is_empty() {
            listed.push("the file has no rows".into());
        }
        return json_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"problems": listed, "problem_count": problems.len().max(1), "rows": count}),
        );
    }
    let rows: Vec<Row> =
        match import::read_rows(&source, header.as_deref()).and_then(|r| r.collect()) {
            Ok(r) => r,
            Err(e) => {
                return json_answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"problems": [e], "rows": 0}),
                );
            }
        };
    let (tx, rx) = mpsc::channel::<String>(64);
    let signed = signed.clone();
    tokio::spawn(async move {
        let outcome = run(&web, &signed, rows, header, &tx).await;
        let last = match outcome {
            Ok(done) => json!({"done": done}),
            Err(e) => json!({"error": e}),
        };
        let _ = tx.send(format!("{last}\n")).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), rx))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson; charset=utf-8"),
    );
    resp
}

/// A batch sent: its job, and its rows.
struct InFlight {
    job: String,
    rows: std::ops::Range<usize>,
}

#[derive(Default)]
struct Tally {
    created: u64,
    updated: u64,
    failed: u64,
    /// (line, error) of each failed row.
    failures: Vec<(usize, String)>,
}

async fn say(tx: &mpsc::Sender<String>, v: Value) {
    // A page that went away stops listening; the import still finishes what it started.
    let _ = tx.send(format!("{v}\n")).await;
}

/// Sends the rows in batches, at most [`IN_FLIGHT`] jobs at once, and follows the jobs to the end.
async fn run(
    web: &Web,
    signed: &Signed,
    rows: Vec<Row>,
    header: Option<Vec<String>>,
    tx: &mpsc::Sender<String>,
) -> Result<Value, String> {
    let api = Api::new(web, signed);
    let total = rows.len();
    let mut failures = FailureWriter::new(Vec::new(), header.as_deref(), true)?;
    let mut tally = Tally::default();
    let mut next = 0usize;
    let mut flying: Vec<InFlight> = Vec::new();
    let mut progress: BTreeMap<String, i64> = BTreeMap::new();
    let mut finished_rows = 0usize;
    let mut said = usize::MAX;
    let stopping = web.app.stopping.subscribe();
    loop {
        while next < total && flying.len() < IN_FLIGHT {
            let end = (next + BATCH).min(total);
            let users: Vec<Value> = rows[next..end]
                .iter()
                .map(|r| Value::Object(r.user.clone()))
                .collect();
            let a = api
                .send(
                    Method::POST,
                    "/api/v2/users/create_or_update_many",
                    &json!({ "users": users }),
                )
                .await
                .map_err(|e| e.to_string())?;
            if a.status == StatusCode::TOO_MANY_REQUESTS {
                // The account's job cap (or a limit): wait for a job to finish, then try again.
                break;
            }
            if !a.ok() {
                return Err(format!(
                    "the API refused the batch of lines {}–{}: {}",
                    rows[next].line,
                    rows[end - 1].line,
                    a.problem()
                ));
            }
            let Some(job) = a.body["job_status"]["id"].as_str().map(str::to_owned) else {
                return Err("the API answered without a job".into());
            };
            say(tx, json!({"submitted": {"id": job, "first_line": rows[next].line, "last_line": rows[end - 1].line}})).await;
            flying.push(InFlight {
                job,
                rows: next..end,
            });
            next = end;
        }
        if flying.is_empty() && next >= total {
            break;
        }
        if *stopping.borrow() {
            return Err(
                "deskd is shutting down; the jobs already sent will finish, see Jobs".into(),
            );
        }
        tokio::time::sleep(POLL).await;
        if flying.is_empty() {
            continue;
        }
        let ids: Vec<&str> = flying.iter().map(|f| f.job.as_str()).collect();
        let a = api
            .get(&format!(
                "/api/v2/job_statuses/show_many?ids={}",
                ids.join(",")
            ))
            .await
            .map_err(|e| e.to_string())?;
        if !a.ok() {
            return Err(a.problem());
        }
        let jobs = a.body["job_statuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut still = Vec::new();
        for f in flying.drain(..) {
            let Some(job) = jobs
                .iter()
                .find(|j| j["id"].as_str() == Some(f.job.as_str()))
            else {
                return Err(format!("job {} is gone", f.job));
            };
            match job["status"].as_str() {
                Some("completed") | Some("failed") => {
                    let results: Vec<ItemResult> = job["results"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(ItemResult::from_json)
                        .collect();
                    for (i, row) in rows[f.rows.clone()].iter().enumerate() {
                        match import::outcome(&results, i) {
                            Outcome::Created => tally.created += 1,
                            Outcome::Updated => tally.updated += 1,
                            Outcome::Failed(e) => {
                                tally.failed += 1;
                                failures.write(row, &e)?;
                                tally.failures.push((row.line, e));
                            }
                        }
                    }
                    finished_rows += f.rows.len();
                    progress.remove(&f.job);
                }
                _ => {
                    progress.insert(f.job.clone(), job["progress"].as_i64().unwrap_or(0));
                    still.push(f);
                }
            }
        }
        flying = still;
        let done = finished_rows + progress.values().map(|p| *p as usize).sum::<usize>();
        if done != said {
            said = done;
            say(
                tx,
                json!({"progress": {"done": done.min(total), "total": total}}),
            )
            .await;
        }
    }
    let file = String::from_utf8(failures.into_inner()?).unwrap_or_default();
    let listed: Vec<Value> = tally
        .failures
        .iter()
        .take(MAX_PROBLEMS)
        .map(|(line, e)| json!({"line": line, "error": e}))
        .collect();
    Ok(json!({
        "total": total,
        "created": tally.created,
        "updated": tally.updated,
        "failed": tally.failed,
        "failures": listed,
        "failures_file": if tally.failed > 0 { Value::String(file) } else { Value::Null },
        "failures_name": if header.is_some() { "failures.csv" } else { "failures.jsonl" },
    }))
}
