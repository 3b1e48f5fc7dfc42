//! Request ids: every request runs in a tracing span carrying its id, taken from the client's
//! `X-Request-Id` (a load balancer's, so one id follows the request across hops) or made here,
//! and returned in the response's `X-Request-Id`. Whatever is logged while the request is served
//! (a 500's cause chain, a slow statement) carries the id.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// Longest client-given id kept; a longer or odd one is replaced.
const MAX_LEN: usize = 128;

/// The request's id, for handlers that want it.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .filter(|v| acceptable(v.as_bytes()))
        .cloned()
        .unwrap_or_else(made);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %String::from_utf8_lossy(id.as_bytes()),
        method = %req.method(),
        path = %req.uri().path(),
    );
    let mut resp = next.run(req).instrument(span).await;
    resp.headers_mut().insert(HEADER, id);
    resp
}

/// Visible ASCII only, so it is safe in a header and a log line.
fn acceptable(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_LEN && v.iter().all(|b| b.is_ascii_graphic())
}

/// 128 random bits as hex; from `--test-seed`'s generator when there is one, so a seeded
/// session's responses are byte-identical.
fn made() -> HeaderValue {
    let hex = format!("{:032x}", crate::testmode::seeded::random_u128());
    HeaderValue::from_str(&hex).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(acceptable(b"abc-123"));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"a b"));
        assert!(!acceptable(&[b'a'; 129]));
        assert!(!acceptable("é".as_bytes()));
        let m = made();
        assert_eq!(m.len(), 32);
        assert!(acceptable(m.as_bytes()));
        assert_ne!(m, made());
    }
}
