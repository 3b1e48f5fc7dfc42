//! Organizations: the list (by name prefix, the API's autocomplete), and an organization's page
//! with its users, read through the API.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::Web;
use super::api::{Api, enc};
use super::layout::{self, page, when_iso};
use super::session::Signed;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
}

/// A cursor-paged API list: its items and the cursor of the next page, if there is one.
fn page_of(body: &Value, key: &str) -> (Vec<Value>, Option<String>) {
    let items = body[key].as_array().cloned().unwrap_or_default();
    let next = body["meta"]["has_more"]
        .as_bool()
        .filter(|m| *m)
        .and_then(|_| body["meta"]["after_cursor"].as_str())
        .map(str::to_owned);
    (items, next)
}

pub async fn list(State(web): State<Web>, signed: Signed, Query(q): Query<ListQuery>) -> Response {
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let uri = match (search, q.after.as_deref()) {
        (Some(s), _) => format!("/api/v2/organizations/autocomplete?name={}", enc(s)),
        (None, Some(a)) => format!(
            "/api/v2/organizations?page%5Bsize%5D=50&page%5Bafter%5D={}",
            enc(a)
        ),
        (None, None) => "/api/v2/organizations?page%5Bsize%5D=50".to_owned(),
    };
    let answer = match Api::new(&web, &signed).get(&uri).await {
        Ok(a) => a,
        Err(e) => return layout::internal(e),
    };
    let (orgs, next, problem) = if answer.ok() {
        let (o, n) = page_of(&answer.body, "organizations");
        (o, n, None)
    } else {
        (Vec::new(), None, Some(answer.problem()))
    };
    let body = html! {
        h1 { "Organizations" }
        form.filters method="get" action="/admin/organizations" role="search" {
            input type="search" name="q" value=(search.unwrap_or_default()) placeholder="Name starts with…" aria-label="Search";
            button type="submit" { "Search" }
        }
        @if let Some(p) = &problem { p.error role="alert" { (p) } }
        @if orgs.is_empty() && problem.is_none() { p.empty { "No organizations." } }
        @else if !orgs.is_empty() {
            table.list {
                thead { tr { th { "Name" } th.hide-sm { "External id" } th.hide-sm { "Domains" } th { "Created" } } }
                tbody {
                    @for o in &orgs {
                        tr {
                            td { a href=(format!("/admin/organizations/{}", o["id"])) { (o["name"].as_str().unwrap_or_default()) } }
                            td.hide-sm { (o["external_id"].as_str().unwrap_or_default()) }
                            td.hide-sm { (strings(&o["domain_names"]).join(", ")) }
                            td { (when_iso(&o["created_at"])) }
                        }
                    }
                }
            }
        }
        nav.pager {
            @if let Some(n) = &next { a rel="next" href=(format!("/admin/organizations?after={}", enc(n))) { "Next →" } }
        }
    };
    let status = if problem.is_some() {
        answer.status
    } else {
        axum::http::StatusCode::OK
    };
    layout::html(status, page(&web, Some(&signed), "Organizations", body))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

pub async fn show(
    State(web): State<Web>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let Ok(id) = crate::extract::path_id(&raw) else {
        return layout::not_found().await;
    };
    let api = Api::new(&web, &signed);
    let org = match api.get(&format!("/api/v2/organizations/{id}")).await {
        Ok(a) if a.ok() => a.body["organization"].clone(),
        Ok(a) => return layout::refused(&web, &signed, &a),
        Err(e) => return layout::internal(e),
    };
    let mut uri = format!("/api/v2/organizations/{id}/users?page%5Bsize%5D=50");
    if let Some(a) = q.after.as_deref() {
        uri.push_str(&format!("&page%5Bafter%5D={}", enc(a)));
    }
    let (users, next) = match api.get(&uri).await {
        Ok(a) if a.ok() => page_of(&a.body, "users"),
        Ok(a) => return layout::refused(&web, &signed, &a),
        Err(e) => return layout::internal(e),
    };
    let name = org["name"].as_str().unwrap_or_default().to_owned();
    let body = html! {
        p.crumbs { a href="/admin/organizations" { "Organizations" } " / " }
        h1 { (name) }
        dl.facts {
            dt { "Id" } dd { (id) }
            dt { "External id" } dd { (org["external_id"].as_str().unwrap_or_default()) }
            dt { "Domains" } dd { (strings(&org["domain_names"]).join(", ")) }
            dt { "Tags" } dd { (strings(&org["tags"]).join(" ")) }
            dt { "Details" } dd { (org["details"].as_str().unwrap_or_default()) }
            dt { "Notes" } dd { (org["notes"].as_str().unwrap_or_default()) }
            dt { "Created" } dd { (when_iso(&org["created_at"])) }
            dt { "Updated" } dd { (when_iso(&org["updated_at"])) }
        }
        section {
            div.bar {
                h2 { "Users" }
                a href=(format!("/admin/users?organization_id={id}")) { "Search these users" }
            }
            @if users.is_empty() { p.empty { "No users." } }
            @else {
                table.list {
                    thead { tr { th { "Name" } th { "Email" } th { "Role" } } }
                    tbody {
                        @for u in &users {
                            tr {
                                td { a href=(format!("/admin/users/{}", u["id"])) { (u["name"].as_str().unwrap_or_default()) } }
                                td { (u["email"].as_str().unwrap_or_default()) }
                                td { (u["role"].as_str().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if let Some(n) = &next { a rel="next" href=(format!("/admin/organizations/{id}?after={}", enc(n))) { "Next →" } }
            }
        }
    };
    layout::html(
        axum::http::StatusCode::OK,
        page(&web, Some(&signed), &name, body),
    )
}
