//! Request bodies nobody read.
//!
//! Many answers come before a handler reads the body: a 401 from the auth extractor, a 405 or
//! 404 from the router, a 429, a 400 for U+0000 in the path. hyper then drains what of the body
//! has already arrived and, when the rest is still in flight, closes the connection without a
//! word, so a client that reuses the keep-alive connection loses its next request ("remote end
//! closed connection without response"). This layer, outermost, watches every request body:
//! when the response is ready and the body was not read to its end, it reads and discards the
//! rest (up to [`DRAIN_LIMIT`], within [`DRAIN_TIME`]) before answering; a body it cannot finish
//! gets `Connection: close` on the answer, so the client knows not to reuse the connection. A
//! client that sent `Expect: 100-continue` has not sent the body and waits for leave to: it gets
//! the early answer with `Connection: close` at once instead of being asked for a body nobody
//! wants.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Frame;

/// Most bytes of an unread body discarded to keep the connection; beyond it, the connection closes.
pub const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// Longest wait for the rest of an unread body.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request body, shared between the handler (through [`Watched`]) and this layer.
struct Shared {
    body: Mutex<Option<Body>>,
    finished: AtomicBool,
}

/// What the handler sees: the real body, read through the shared slot.
struct Watched(Arc<Shared>);

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let shared = &self.0;
        let mut slot = match shared.body.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(body) = slot.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            shared.finished.store(true, Ordering::SeqCst);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.0.finished.load(Ordering::SeqCst)
    }
}

/// Whether the request announces a body (a length above zero, or chunks).
fn has_body(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// Reads `body` to its end, discarding it; false when it is longer than the limit or broken.
async fn discard(mut body: Body) -> bool {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    seen += d.len();
                    if seen > DRAIN_LIMIT {
                        return false;
                    }
                }
            }
            Err(_) => return false,
        }
    }
    true
}

pub async fn drain_unread_body(req: Request, next: Next) -> Response {
    if !has_body(&req) {
        return next.run(req).await;
    }
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let (parts, body) = req.into_parts();
    let shared = Arc::new(Shared {
        body: Mutex::new(Some(body)),
        finished: AtomicBool::new(false),
    });
    let watched = Body::new(Watched(shared.clone()));
    let mut resp = next.run(Request::from_parts(parts, watched)).await;
    if shared.finished.load(Ordering::SeqCst) {
        return resp;
    }
    let rest = match shared.body.lock() {
        Ok(mut s) => s.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    let drained = match rest {
        Some(_) if expects_continue => false,
        Some(body) => tokio::time::timeout(DRAIN_TIME, discard(body))
            .await
            .unwrap_or(false),
        None => false,
    };
    if !drained {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
