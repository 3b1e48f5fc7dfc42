//! Jobs: the recent job statuses, and one job's page whose bar follows the job live through the
//! API's event stream (`GET /api/v2/job_statuses/{id}/events`), passed on as it comes.

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::Web;
use super::api::{Api, enc};
use super::layout::{self, page};
use super::session::Signed;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    after: Option<String>,
}

fn percent(job: &Value) -> i64 {
    let total = job["total"].as_i64().unwrap_or(0);
    let progress = job["progress"].as_i64().unwrap_or(0);
    match job["status"].as_str() {
        Some("completed") => 100,
        _ if total > 0 => (progress * 100 / total).clamp(0, 100),
        _ => 0,
    }
}

/// A progress bar the script can move (a `<progress>`: no inline style, which the pages' CSP
/// forbids).
pub fn bar(job: &Value) -> Markup {
    let p = percent(job);
    html! {
        div.meter {
            progress max="100" value=(p) aria-label="Progress" {}
            span.percent data-field="percent" { (p) " %" }
        }
    }
}

pub async fn list(State(web): State<Web>, signed: Signed, Query(q): Query<ListQuery>) -> Response {
    let mut uri = "/api/v2/job_statuses?page%5Bsize%5D=50".to_owned();
    if let Some(a) = q.after.as_deref() {
        uri.push_str(&format!("&page%5Bafter%5D={}", enc(a)));
    }
    let answer = match Api::new(&web, &signed).get(&uri).await {
        Ok(a) if a.ok() => a,
        Ok(a) => return layout::refused(&web, &signed, &a),
        Err(e) => return layout::internal(e),
    };
    let jobs = answer.body["job_statuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let next = answer.body["meta"]["has_more"]
        .as_bool()
        .filter(|m| *m)
        .and_then(|_| answer.body["meta"]["after_cursor"].as_str());
    let body = html! {
        h1 { "Jobs" }
        @if jobs.is_empty() { p.empty { "No recent jobs." } }
        @else {
            table.list {
                thead { tr { th { "Job" } th.hide-sm { "Type" } th { "Status" } th { "Progress" } } }
                tbody {
                    @for j in &jobs {
                        tr {
                            td { a.mono href=(format!("/admin/jobs/{}", enc(j["id"].as_str().unwrap_or_default()))) { (j["id"].as_str().unwrap_or_default()) } }
                            td.hide-sm { (j["job_type"].as_str().unwrap_or_default()) }
                            td { span.tag { (j["status"].as_str().unwrap_or_default()) } }
                            td { (j["progress"].as_i64().unwrap_or(0)) " / " (j["total"].as_i64().unwrap_or(0)) }
                        }
                    }
                }
            }
        }
        nav.pager {
            @if let Some(n) = next { a rel="next" href=(format!("/admin/jobs?after={}", enc(n))) { "Next →" } }
        }
    };
    layout::html(StatusCode::OK, page(&web, Some(&signed), "Jobs", body))
}

pub async fn show(State(web): State<Web>, signed: Signed, Path(id): Path<String>) -> Response {
    let job = match Api::new(&web, &signed)
        .get(&format!("/api/v2/job_statuses/{}", enc(&id)))
        .await
    {
        Ok(a) if a.ok() => a.body["job_status"].clone(),
        Ok(a) => return layout::refused(&web, &signed, &a),
        Err(e) => return layout::internal(e),
    };
    let status = job["status"].as_str().unwrap_or_default().to_owned();
    let finished = status == "completed" || status == "failed";
    let results = job["results"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = results.iter().filter(|r| is_failure(r)).collect();
    let body = html! {
        p.crumbs { a href="/admin/jobs" { "Jobs" } " / " }
        h1 { "Job " span.mono { (id) } }
        // The script follows the job while it runs and reloads the page once it has finished.
        div.job data-events=[(!finished).then(|| format!("/admin/jobs/{}/events", enc(&id)))] {
            (bar(&job))
            p.status {
                span.tag data-field="status" { (status) } " "
                span data-field="progress" { (job["progress"].as_i64().unwrap_or(0)) }
                " of " span data-field="total" { (job["total"].as_i64().unwrap_or(0)) }
                " · " span data-field="message" { (job["message"].as_str().unwrap_or_default()) }
            }
        }
        p { (job["job_type"].as_str().unwrap_or_default()) }
        @if finished {
            section {
                h2 { "Results" }
                p { (results.len()) " items, " (failed.len()) " failed." }
                @if !results.is_empty() {
                    table.list {
                        thead { tr { th { "#" } th { "Id" } th { "Status" } th { "Error" } } }
                        tbody {
                            @for (i, r) in results.iter().enumerate() {
                                tr.failed[is_failure(r)] {
                                    td { (r["index"].as_i64().unwrap_or(i as i64)) }
                                    td { (plain(&r["id"])) }
                                    td { (plain(&r["status"])) (plain(&r["action"])) }
                                    td { (plain(&r["error"])) " " (plain(&r["details"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::html(StatusCode::OK, page(&web, Some(&signed), "Job", body))
}

/// A job result entry that reports a failure.
fn is_failure(r: &Value) -> bool {
    r.get("error").is_some_and(|e| !e.is_null()) || r["status"].as_str() == Some("Failed")
}

/// A JSON value as plain text (strings without their quotes, nothing for null).
fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn events(State(web): State<Web>, signed: Signed, Path(id): Path<String>) -> Response {
    match Api::new(&web, &signed)
        .raw(
            Method::GET,
            &format!("/api/v2/job_statuses/{}/events", enc(&id)),
            None,
        )
        .await
    {
        Ok(resp) => resp,
        Err(e) => layout::internal(e),
    }
}
