//! Path conventions and headers common to every response.

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// U+0000 means nothing in any Zendesk parameter, and PostgreSQL cannot compare text holding
/// it: a path or query that decodes to one is a 400, and Basic credentials holding one are a
/// 401, before any handler reads them. (Bodies are checked field by field by the input readers,
/// so one bad item of a bulk job fails alone.) Zendesk clients append `.json` to every path and
/// some do not: both reach the same route.
pub async fn normalize(mut req: Request, next: Next) -> Response {
    if let Some(refused) = refuse_nul(&req) {
        return refused;
    }
    strip_json_suffix(&mut req);
    next.run(req).await
}

/// A 400 for U+0000 in the path or query, a 401 for one in Basic credentials.
fn refuse_nul(req: &Request) -> Option<Response> {
    let in_uri =
        req.uri().path().contains("%00") || req.uri().query().is_some_and(|q| q.contains("%00"));
    if in_uri {
        return ApiError::bad_request(
            "InvalidParameter",
            "Parameters may not contain the character U+0000",
        )
        .into_response()
        .into();
    }
    let basic_has_nul = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .is_some_and(|raw| raw.contains(&0));
    basic_has_nul.then(|| ApiError::Unauthorized.into_response())
}

/// `/api/v2/users.json` → `/api/v2/users`, the query kept.
fn strip_json_suffix(req: &mut Request) {
    let path = req.uri().path();
    if let Some(stripped) = path.strip_suffix(".json") {
        let new_path = match req.uri().query() {
            Some(q) => format!("{stripped}?{q}"),
            None => stripped.to_owned(),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = new_path.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
}

/// Around every API request: the headers Zendesk puts on every response, and the log line.
pub async fn around(req: Request, next: Next) -> Response {
    logged(req, next, common_headers).await
}

/// One debug line per request: method, path, status, time. Never headers or bodies (they carry
/// credentials and personal data); the query string only names what was asked for.
pub async fn log_requests(req: Request, next: Next) -> Response {
    logged(req, next, |r| r).await
}

async fn logged(req: Request, next: Next, finish: fn(Response) -> Response) -> Response {
    let logged = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (req.method().clone(), req.uri().path().to_owned()));
    let start = std::time::Instant::now();
    let resp = finish(next.run(req).await);
    if let Some((method, path)) = logged {
        tracing::debug!(%method, %path, status = resp.status().as_u16(), micros = start.elapsed().as_micros() as u64, "request");
    }
    resp
}

/// Headers Zendesk puts on every response; a 405 (a known path, another method: axum answers
/// it with `Allow`) gets a JSON body like every other error.
fn common_headers(mut resp: Response) -> Response {
    if resp.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        let allow = resp.headers().get(axum::http::header::ALLOW).cloned();
        resp = crate::respond::json_response(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": "InvalidEndpoint", "description": "Method not allowed"}),
        );
        if let Some(a) = allow {
            resp.headers_mut().insert(axum::http::header::ALLOW, a);
        }
    }
    resp.headers_mut()
        .insert("x-zendesk-api-version", HeaderValue::from_static("v2"));
    resp
}

pub async fn invalid_endpoint() -> Response {
    ApiError::InvalidEndpoint.into_response()
}
