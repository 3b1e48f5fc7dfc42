//! Admission of request bodies: JSON only, and no more bytes of them read and parsed at once
//! than the server's budget.
//!
//! A body sent as anything but `application/json` (with any parameters, e.g. `; charset=utf-8`)
//! is refused with 415 before any handler runs, whether or not the endpoint reads it: a browser
//! form (urlencoded, multipart, text/plain) posted across sites never reaches deskd's logic. A
//! request without a body passes whatever its headers say (clients send DELETE and PUT without
//! one, and often without a content type).
//!
//! Parsing a JSON body into values costs many times its size (a 4 MiB body of small objects
//! took ~80 MiB), so the bodies in flight share one budget, a semaphore counted in bytes: a body
//! takes its size (capped at the budget, so one larger than the budget still runs, alone) before
//! it is read when `Content-Length` announces it, else once it has been read, and gives it back
//! when its request has been answered, since the parsed values live as long as the handler.
//! One acquisition per body, in arrival order: bodies never hold part of the budget while
//! waiting for more, so they cannot deadlock one another.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppState;
use crate::error::ApiError;

/// Whether a `Content-Type` names JSON: `application/json`, with any parameters, in any case.
pub fn is_json_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether a request carries a body: a non-zero `Content-Length`, or a chunked one.
fn has_body(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The budget, as a request's extension: where a body extractor takes its share, and where the
/// share stays until the request is answered.
#[derive(Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    cap: usize,
    held: Arc<Mutex<Vec<OwnedSemaphorePermit>>>,
}

impl BodyBudget {
    /// Takes `bytes` of the budget for the rest of the request, waiting for them if need be.
    pub async fn take(&self, bytes: usize) {
        let n = bytes.min(self.cap).min(u32::MAX as usize) as u32;
        if n == 0 {
            return;
        }
        // Closed only when the server is dropping the semaphore: then there is nothing to bound.
        if let Ok(p) = self.permits.clone().acquire_many_owned(n).await {
            self.held.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        }
    }
}

/// A fresh semaphore for a budget of `bytes`.
pub fn semaphore(bytes: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(
        bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)),
    ))
}

/// Refuses bodies that are not JSON; gives each request the budget, and takes back its share
/// once the response is built.
pub async fn layer(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let reads_bodies = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if reads_bodies && has_body(&req) {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_media_type);
        if !json {
            return ApiError::UnsupportedMediaType.into_response();
        }
    }
    let held = Arc::new(Mutex::new(Vec::new()));
    req.extensions_mut().insert(BodyBudget {
        permits: app.body_permits.clone(),
        cap: app.config.body_budget.max(1),
        held: held.clone(),
    });
    let resp = next.run(req).await;
    drop(held);
    resp
}
