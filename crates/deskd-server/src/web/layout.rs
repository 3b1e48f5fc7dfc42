//! The frame every page shares, and the answers that are pages too (errors, not found).
//! maud escapes every value it is given: a user named `<script>` is shown as that text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Web;
use super::session::Signed;

/// An HTML answer.
pub fn html(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// 303 to `to`: where a form's POST goes next.
pub fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The hidden field every form of a session carries.
pub fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="_csrf" value=(signed.csrf); }
}

pub fn page(web: &Web, signed: Option<&Signed>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · deskd" }
                link rel="stylesheet" href="/admin/assets/admin.css";
                script src="/admin/assets/admin.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/admin/users" { "deskd" }
                    @if let Some(s) = signed {
                        nav {
                            a href="/admin/users" { "Users" }
                            a href="/admin/organizations" { "Organizations" }
                            a href="/admin/jobs" { "Jobs" }
                            a href="/admin/import" { "Import" }
                            @if s.is_admin() { a href="/admin/settings" { "Settings" } }
                            @if web.app.config.test_mode { a href="/admin/test" { "Test mode" } }
                        }
                        form.signout method="post" action="/admin/logout" {
                            (csrf(s))
                            span.who { (s.name) " · " (s.caller.role.as_str()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page that says why something could not be done.
pub fn problem(
    web: &Web,
    signed: Option<&Signed>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    html(
        status,
        page(
            web,
            signed,
            title,
            html! {
                h1 { (title) }
                p.error role="alert" { (message) }
                p { a href="/admin/users" { "Back to users" } }
            },
        ),
    )
}

/// The page for an API answer that refused a page's request: the API's status and reason.
pub fn refused(web: &Web, signed: &Signed, answer: &super::api::Answer) -> Response {
    let title = match answer.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        _ => "Refused",
    };
    problem(web, Some(signed), answer.status, title, &answer.problem())
}

pub async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        html! {
            (DOCTYPE)
            html lang="en" { head { meta charset="utf-8"; title { "Not found · deskd" } link rel="stylesheet" href="/admin/assets/admin.css"; }
            body { main { h1 { "Not found" } p { a href="/admin/users" { "deskd admin" } } } } }
        },
    )
}

/// 500, logged in full by `ApiError`'s own response; the page says only that it failed.
pub fn internal(e: crate::ApiError) -> Response {
    let status = e.into_response().status();
    html(
        status,
        html! {
            (DOCTYPE)
            html lang="en" { head { meta charset="utf-8"; title { "Error · deskd" } link rel="stylesheet" href="/admin/assets/admin.css"; }
            body { main { h1 { "Something went wrong" } p { "deskd could not answer this page; it has been logged. Try again." } } } }
        },
    )
}

/// A fixed message for a `?done=` code (never the query's own text, so links cannot make the
/// pages say anything).
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "User created.",
        "saved" => "Changes saved.",
        "unchanged" => "Nothing changed.",
        "suspended" => "User suspended.",
        "unsuspended" => "User unsuspended.",
        "deleted" => "User deleted.",
        "revoked" => "Token revoked.",
        "settings" => "Settings saved.",
        _ => return None,
    })
}

pub fn notice_box(done: Option<&str>) -> Markup {
    html! { @if let Some(n) = notice(done) { p.notice role="status" { (n) } } }
}

/// `2026-12-02 00:33 UTC` for a Unix time.
pub fn when(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// An ISO time from the API, shown the same way.
pub fn when_iso(v: &serde_json::Value) -> String {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| when(d.timestamp()))
        .unwrap_or_else(|| "—".to_owned())
}
