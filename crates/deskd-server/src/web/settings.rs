//! Settings (admins): the bulk-import switch, API tokens (created — shown once —, listed,
//! revoked), and the rate limits in force. Everything but the limits goes through the API, which
//! answers an agent 403.

use axum::extract::{Form, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Web;
use super::api::Api;
use super::layout::{self, csrf, notice_box, page, see_other, when_iso};
use super::session::Signed;
use super::users::{Fields, field};

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    done: Option<String>,
}

pub async fn show(State(web): State<Web>, signed: Signed, Query(q): Query<ShowQuery>) -> Response {
    render(&web, &signed, q.done.as_deref(), None, None).await
}

fn limit(v: Option<u32>, unit: &str) -> String {
    match v {
        Some(n) => format!("{n} {unit}"),
        None => "no limit".to_owned(),
    }
}

/// The page; `created` is a token just made (its secret shown this once), `problem` the API's
/// reason a form was refused.
async fn render(
    web: &Web,
    signed: &Signed,
    done: Option<&str>,
    created: Option<&Value>,
    problem: Option<(StatusCode, String)>,
) -> Response {
    let api = Api::new(web, signed);
    let settings = match api.get("/api/v2/account/settings").await {
        Ok(a) if a.ok() => a.body,
        Ok(a) => return layout::refused(web, signed, &a),
        Err(e) => return layout::internal(e),
    };
    let tokens = match api.get("/api/v2/api_tokens").await {
        Ok(a) if a.ok() => a.body["api_tokens"].as_array().cloned().unwrap_or_default(),
        Ok(a) => return layout::refused(web, signed, &a),
        Err(e) => return layout::internal(e),
    };
    let bulk = settings["settings"]["deskd"]["bulk_user_import"]
        .as_bool()
        .unwrap_or(false);
    let c = &web.app.config;
    let on = c.rate_limits;
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.0);
    let body = html! {
        h1 { "Settings" }
        (notice_box(done))
        @if let Some((_, p)) = &problem { p.error role="alert" { (p) } }
        section {
            h2 { "Bulk user import" }
            p { "Bulk imports (" code { "create_many" } ", " code { "create_or_update_many" } ") are "
                strong data-field="bulk" { @if bulk { "on" } @else { "off" } } "." }
            form.inline method="post" action="/admin/settings/bulk_import" {
                (csrf(signed))
                input type="hidden" name="on" value=(if bulk { "false" } else { "true" });
                button type="submit" { @if bulk { "Turn off" } @else { "Turn on" } }
            }
        }
        section {
            h2 { "API tokens" }
            @if let Some(t) = created {
                div.notice.secret role="status" {
                    p { "Token created. Copy it now: it will not be shown again." }
                    code.mono data-field="new-token" { (t["token"].as_str().unwrap_or_default()) }
                }
            }
            @if tokens.is_empty() { p.empty { "No active tokens." } }
            @else {
                table.list {
                    thead { tr { th { "Id" } th { "Description" } th.hide-sm { "Created" } th {} } }
                    tbody {
                        @for t in &tokens {
                            tr {
                                td { (t["id"]) }
                                td { (t["description"].as_str().unwrap_or_default()) }
                                td.hide-sm { (when_iso(&t["created_at"])) }
                                td {
                                    form.inline method="post" action=(format!("/admin/settings/tokens/{}/revoke", t["id"])) data-confirm="Revoke this token? Integrations using it stop working." {
                                        (csrf(signed))
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.inline id="new-token" method="post" action="/admin/settings/tokens" {
                (csrf(signed))
                input type="text" name="description" placeholder="What uses it" maxlength="255" aria-label="Description";
                button type="submit" { "Create token" }
            }
        }
        section {
            h2 { "Rate limits in force" }
            @if !on { p { "Rate limits are off (" code { "DESKD_RATE_LIMITS=off" } ")." } }
            @else {
                dl.facts {
                    dt { "Account" } dd { (limit(c.account_rate_limit, "requests a minute")) }
                    dt { "One user profile" } dd { (limit(c.profile_rate_limit, "updates a minute")) }
                    dt { "Failed sign-ins" } dd { (limit(c.auth_failure_limit, "per email and address in 5 minutes")) }
                    dt { "Incremental exports" } dd { (limit(c.incremental_rate_limit, "requests a minute")) }
                    dt { "Unauthenticated" } dd { (limit(c.anonymous_rate_limit, "requests a minute per address")) }
                }
            }
            p.hint { "Pages do not spend the account's budget (a sign-in is one API request); failed sign-ins count as failed logins, as on the API." }
        }
    };
    layout::html(status, page(web, Some(signed), "Settings", body))
}

pub async fn bulk_import(
    State(web): State<Web>,
    signed: Signed,
    Form(form): Form<Fields>,
) -> Response {
    if let Some(r) = signed.refuse_csrf(&web, field(&form, "_csrf")) {
        return r;
    }
    let on = field(&form, "on") == Some("true");
    let body = json!({"settings": {"deskd": {"bulk_user_import": on}}});
    match Api::new(&web, &signed)
        .send(Method::PUT, "/api/v2/account/settings", &body)
        .await
    {
        Ok(a) if a.ok() => see_other("/admin/settings?done=settings"),
        Ok(a) => layout::refused(&web, &signed, &a),
        Err(e) => layout::internal(e),
    }
}

pub async fn create_token(
    State(web): State<Web>,
    signed: Signed,
    Form(form): Form<Fields>,
) -> Response {
    if let Some(r) = signed.refuse_csrf(&web, field(&form, "_csrf")) {
        return r;
    }
    let description = field(&form, "description")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let body = json!({"api_token": {"description": description}});
    match Api::new(&web, &signed)
        .send(Method::POST, "/api/v2/api_tokens", &body)
        .await
    {
        // Shown in this answer only: the secret is not stored, so no later page can show it.
        Ok(a) if a.ok() => render(&web, &signed, None, Some(&a.body["api_token"]), None).await,
        Ok(a) if a.status == StatusCode::FORBIDDEN => layout::refused(&web, &signed, &a),
        Ok(a) => render(&web, &signed, None, None, Some((a.status, a.problem()))).await,
        Err(e) => layout::internal(e),
    }
}

pub async fn revoke_token(
    State(web): State<Web>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    if let Some(r) = signed.refuse_csrf(&web, field(&form, "_csrf")) {
        return r;
    }
    let Ok(id) = crate::extract::path_id(&raw) else {
        return layout::not_found().await;
    };
    match Api::new(&web, &signed)
        .call(Method::DELETE, &format!("/api/v2/api_tokens/{id}"), None)
        .await
    {
        Ok(a) if a.ok() => see_other("/admin/settings?done=revoked"),
        Ok(a) => layout::refused(&web, &signed, &a),
        Err(e) => layout::internal(e),
    }
}
