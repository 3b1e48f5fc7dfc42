//! Test mode (`deskd serve --test-mode`): the request journal and the fault rules in force, as
//! `/__deskd/requests` and `/__deskd/faults` report them. Shown as those endpoints answer, so
//! this page follows them as they change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use super::Web;
use super::api::Api;
use super::layout::{self, page};
use super::session::Signed;

/// Journal entries shown, newest last.
const SHOWN: usize = 50;

pub async fn show(State(web): State<Web>, signed: Signed) -> Response {
    if !web.app.config.test_mode {
        return layout::not_found().await;
    }
    let api = Api::new(&web, &signed);
    let mut parts = Vec::new();
    for path in ["/__deskd/requests", "/__deskd/faults"] {
        match api.get(path).await {
            Ok(a) => parts.push(a.body),
            Err(e) => return layout::internal(e),
        }
    }
    let list = |v: &Value, key: &str| -> Vec<Value> {
        v[key]
            .as_array()
            .cloned()
            .unwrap_or_else(|| v.as_array().cloned().unwrap_or_default())
    };
    let requests = list(&parts[0], "requests");
    let faults = list(&parts[1], "faults");
    let recent = &requests[requests.len().saturating_sub(SHOWN)..];
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let body = html! {
        h1 { "Test mode" }
        section {
            h2 { "Fault rules" }
            @if faults.is_empty() { p.empty { "None." } }
            @for f in &faults { pre.mono { (serde_json::to_string_pretty(f).unwrap_or_default()) } }
        }
        section {
            h2 { "Request journal" }
            p { (requests.len()) " requests recorded; the last " (recent.len()) " below." }
            table.list {
                thead { tr { th { "Method" } th { "Path" } th { "Status" } } }
                tbody {
                    @for r in recent {
                        tr {
                            td { (text(&r["method"])) }
                            td.mono { (text(&r["path"])) }
                            td { (text(&r["status"])) }
                        }
                    }
                }
            }
        }
    };
    layout::html(StatusCode::OK, page(&web, Some(&signed), "Test mode", body))
}
