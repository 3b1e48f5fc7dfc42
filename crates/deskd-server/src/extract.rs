//! Extractors: the JSON body with Zendesk-shaped rejections, and the absolute API root.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::ApiError;

/// Query parameters, the one way handlers read them: the pairs in order, so repeated keys
/// (`role[]=a&role[]=b`) are all there. Reading pairs never fails, so no query string earns a
/// non-Zendesk rejection.
pub type Params = axum::extract::Query<Vec<(String, String)>>;

/// The value of `key`. When a key repeats, the last one wins, as in Rails (Zendesk) and as in
/// [`param_map`].
pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The pairs by key; the last of a repeated key wins, as in [`param`].
pub fn param_map(pairs: Vec<(String, String)>) -> std::collections::BTreeMap<String, String> {
    pairs.into_iter().collect()
}

/// Largest request body deskd reads. A full create_or_update_many batch of 100 users is far below it.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A JSON object body. Malformed JSON, invalid UTF-8, too-deep nesting and non-objects are 400s;
/// an oversized body is a 413.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        read_limited(req.into_body())
            .await
            .and_then(|bytes| parse_object(&bytes))
            .map(JsonObject)
    }
}

/// A JSON object body that may be absent (a DELETE carrying its parameters in the query): an
/// empty body is `None`; anything else reads as [`JsonObject`] does.
pub struct OptionalJsonObject(pub Option<Map<String, Value>>);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_limited(req.into_body()).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonObject(None));
        }
        parse_object(&bytes).map(|m| OptionalJsonObject(Some(m)))
    }
}

/// How much of an oversized body deskd reads and discards so that the client, still sending,
/// receives the 413 instead of a broken connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

pub(crate) async fn read_limited(mut body: axum::body::Body) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(
                "InvalidBody",
                format!("The request body could not be read: {e}"),
            )
        })?;
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                buf.extend_from_slice(data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(buf)
}

/// Parses a request body that must be a JSON object (serde_json caps nesting at 128 levels).
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "InvalidJSON",
            "The request body is empty; a JSON object was expected",
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "InvalidJSON",
            format!("The request body is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            "InvalidJSON",
            "The request body must be a JSON object",
        )),
    }
}

/// Takes the object under `key` (e.g. `user`), as Rails' `params.require(key)` would.
pub fn require_object<'a>(
    body: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a Map<String, Value>, ApiError> {
    match body.get(key) {
        Some(Value::Object(obj)) => Ok(obj),
        Some(Value::Null) | None => Err(ApiError::bad_request(
            "ParameterMissing",
            format!("param is missing or the value is empty: {key}"),
        )),
        Some(_) => Err(ApiError::bad_request(
            "InvalidParameter",
            format!("{key} must be a JSON object"),
        )),
    }
}

/// The absolute API root for URLs in responses: the configured public URL, or the request's
/// scheme and Host, so a client that called `http://127.0.0.1:PORT` gets URLs it accepts.
#[derive(Clone, Debug)]
pub struct BaseUrl(pub String);

impl<S> FromRequestParts<S> for BaseUrl
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        if let Some(public) = &app.config.public_url {
            return Ok(BaseUrl(format!("{}/api/v2", public.trim_end_matches('/'))));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| app.local_addr.to_string());
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .filter(|s| *s == "https" || *s == "http")
            .unwrap_or("http");
        Ok(BaseUrl(format!("{scheme}://{host}/api/v2")))
    }
}

/// A path id: digits only, else 404 as Zendesk answers unknown records. The one parser of ids
/// in paths.
pub fn path_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound)
}

/// The values of a comma-separated parameter (`ids=1,2`), trimmed, blanks dropped: the one
/// parser of comma lists.
pub fn comma_values(raw: &str) -> Vec<&str> {
    raw.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// The values of a `show_many` parameter `key`: at most 100, else Zendesk's 400 TooManyValues.
pub fn show_many_values(key: &str, raw: &str) -> Result<Vec<String>, ApiError> {
    const MAX: usize = 100;
    let values = comma_values(raw);
    if values.len() > MAX {
        return Err(ApiError::Raw(
            axum::http::StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "TooManyValues", "description": format!("Parameter {key} cannot specify more than {MAX} values"), "max_count": MAX}),
        ));
    }
    Ok(values.into_iter().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_query_key_reads_its_last_value_everywhere() {
        let pairs = vec![
            ("ids".to_owned(), "1".to_owned()),
            ("x".to_owned(), "y".to_owned()),
            ("ids".to_owned(), "2".to_owned()),
        ];
        assert_eq!(param(&pairs, "ids"), Some("2"));
        assert_eq!(param(&pairs, "nope"), None);
        assert_eq!(param_map(pairs)["ids"], "2");
    }
}
