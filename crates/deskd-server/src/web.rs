//! The admin pages at `/admin`: server-rendered HTML (maud) for the people who run deskd.
//!
//! The pages add no rules of their own. A signed-in session stands for the credential it was
//! opened with ([`session`]); every write and most reads are handed to the API in-process with
//! that caller ([`api`]), so a page can do exactly what the API lets its user do, answered by the
//! same model and store code. The users list reads the store directly (the API's search syntax and
//! cursor positions, with filters the API splits over several endpoints), under the same rule the
//! API applies to those reads: staff only, which every session is.

mod api;
mod import;
mod jobs;
mod layout;
mod organizations;
mod session;
mod settings;
mod test_page;
mod users;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;

/// What the pages' handlers reach: the application and the API router they hand requests to.
#[derive(Clone)]
pub struct Web {
    pub app: AppState,
    pub api: Router,
    pub sessions: session::Cache,
}

impl FromRef<Web> for AppState {
    fn from_ref(web: &Web) -> AppState {
        web.app.clone()
    }
}

pub fn routes(app: AppState, api: Router) -> Router {
    let web = Web {
        app,
        api,
        sessions: session::Cache::default(),
    };
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/users") }))
        .route("/admin/", get(|| async { Redirect::to("/admin/users") }))
        .route("/admin/assets/admin.css", get(css))
        .route("/admin/assets/admin.js", get(js))
        .route(
            "/admin/login",
            get(session::login_form).post(session::login),
        )
        .route("/admin/logout", post(session::logout))
        .route("/admin/users", get(users::list))
        .route("/admin/users/new", get(users::new_form).post(users::create))
        .route("/admin/users/{id}", get(users::show).post(users::update))
        .route("/admin/users/{id}/suspend", post(users::suspend))
        .route("/admin/users/{id}/delete", post(users::delete))
        .route("/admin/organizations", get(organizations::list))
        .route("/admin/organizations/{id}", get(organizations::show))
        .route("/admin/jobs", get(jobs::list))
        .route("/admin/jobs/{id}", get(jobs::show))
        .route("/admin/jobs/{id}/events", get(jobs::events))
        .route("/admin/import", get(import::form).post(import::upload))
        .route("/admin/settings", get(settings::show))
        .route("/admin/settings/bulk_import", post(settings::bulk_import))
        .route("/admin/settings/tokens", post(settings::create_token))
        .route(
            "/admin/settings/tokens/{id}/revoke",
            post(settings::revoke_token),
        )
        .route("/admin/test", get(test_page::show))
        // Not a fallback: the API router keeps that (`InvalidEndpoint` for unknown paths).
        .route("/admin/{*rest}", axum::routing::any(layout::not_found))
        .layer(axum::middleware::from_fn(page_headers))
        .layer(axum::middleware::from_fn(crate::paths::log_requests))
        .with_state(web)
}

/// Every page: no caching of what a signed-in user saw, no framing, scripts and styles from
/// deskd itself only.
async fn page_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("web/assets/admin.css"),
    )
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("web/assets/admin.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
