//! Building responses the way Zendesk sends them: JSON with an explicit charset.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

pub const JSON_UTF8: &str = "application/json; charset=utf-8";

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "response did not serialize");
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header(header::CONTENT_TYPE, JSON_UTF8)
                .body(Body::from(r#"{"error":"InternalError"}"#))
                .unwrap_or_default();
        }
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    resp
}

pub fn ok(body: &impl Serialize) -> Response {
    json_response(StatusCode::OK, body)
}

/// `{key: value}`, serialized straight to bytes (`json!` would first copy `value` into a tree
/// of `Value`s, which costs as much again as writing it).
pub struct Keyed<'a, T>(pub &'a str, pub &'a T);

impl<T: Serialize> Serialize for Keyed<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

/// A create-or-update answered as Zendesk does: 201 for a new record, 200 for an existing one,
/// `{key: wire}`, and an absolute `Location` (on an update only when `location_on_update`).
pub fn saved<T>(
    saved: &deskd_model::Saved<T>,
    key: &str,
    wire: &impl Serialize,
    url: &str,
    location_on_update: bool,
) -> Response {
    let status = if saved.created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = json_response(status, &Keyed(key, wire));
    if saved.created() || location_on_update {
        if let Ok(loc) = HeaderValue::from_str(url) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
    }
    resp
}

/// 204 with no body: the answer to every successful DELETE that returns nothing.
pub fn no_content() -> Response {
    let mut resp = Response::default();
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// 429: a plain-text sentence and a truthful integer `Retry-After` (at least 1 second).
pub fn too_many_requests(retry_after_secs: u64, sentence: &str) -> Response {
    let mut resp = Response::new(Body::from(sentence.to_owned()));
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs.max(1)),
    );
    resp.extensions_mut()
        .insert(RateLimited(limit_of(sentence)));
    resp
}

/// Which limit a 429 came from, for the metrics.
#[derive(Clone, Copy, Debug)]
pub struct RateLimited(pub &'static str);

/// The limit behind one of deskd's 429 sentences (each limit has its own).
fn limit_of(sentence: &str) -> &'static str {
    const KINDS: &[(&str, &str)] = &[
        ("Number of allowed API requests", "account"),
        ("Number of allowed incremental", "incremental"),
        ("Too many unauthenticated", "anonymous"),
        ("Too many failed login", "login_failures"),
        ("Too many password logins", "password_checks"),
        ("Too many jobs", "jobs"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| sentence.starts_with(prefix))
        .map_or("profile", |(_, kind)| kind)
}
