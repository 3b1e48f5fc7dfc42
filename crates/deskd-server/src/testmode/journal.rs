//! The request journal: what every request asked and what it was answered, with credentials
//! redacted, kept in memory (the last [`CAPACITY`] requests of this process).

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

use super::pattern::Pattern;

/// Requests kept; older ones are forgotten first.
pub const CAPACITY: usize = 1000;
/// Bytes of a body kept (of its redacted form); the rest is cut and `*_truncated` set.
pub const BODY_LIMIT: usize = 64 * 1024;

const REDACTED: &str = "[redacted]";

/// Headers that carry credentials: their values are never kept.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

/// Keys whose string values are secrets, in JSON bodies and query strings.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k == "token"
        || k.ends_with("_token")
        || k == "api_key"
        || k == "code"
}

/// One request and its answer.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: u64,
    /// Milliseconds since the Unix epoch (wall clock) when the request arrived.
    pub at_ms: i64,
    pub method: Method,
    /// The path as sent (with `.json` when the client added it).
    pub path: String,
    pub query: Option<String>,
    pub request_headers: Value,
    pub request_body: Body,
    /// `None` when the connection was dropped (an injected fault).
    pub status: Option<StatusCode>,
    pub response_headers: Value,
    pub response_body: Body,
    pub duration_ms: f64,
    /// Answered 404 / 405 `InvalidEndpoint`: an endpoint deskd does not serve.
    pub unmatched: bool,
    /// The fault rule that answered, when one did.
    pub fault: Option<u64>,
}

/// A body as kept: parsed JSON (redacted), text, or nothing.
#[derive(Clone, Debug, Default)]
pub struct Body {
    pub value: Value,
    pub truncated: bool,
    pub bytes: usize,
}

impl Body {
    /// Keeps `raw` for the journal: JSON is parsed and its secrets replaced; other text is kept
    /// unless it may hold a secret; anything longer than [`BODY_LIMIT`] is cut.
    pub fn capture(raw: &[u8], content_type: Option<&str>) -> Body {
        let bytes = raw.len();
        if raw.is_empty() {
            return Body::default();
        }
        if let Ok(mut v) = serde_json::from_slice::<Value>(raw) {
            redact_json(&mut v);
            let text = v.to_string();
            if text.len() <= BODY_LIMIT {
                return Body {
                    value: v,
                    truncated: false,
                    bytes,
                };
            }
            return Body {
                value: Value::String(cut(&text)),
                truncated: true,
                bytes,
            };
        }
        let text = String::from_utf8_lossy(raw);
        if content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
            let redacted = redact_query(&text);
            return Body {
                truncated: redacted.len() > BODY_LIMIT,
                value: Value::String(cut(&redacted)),
                bytes,
            };
        }
        let lower = text.to_ascii_lowercase();
        if ["password", "secret", "token"]
            .iter()
            .any(|w| lower.contains(w))
        {
            // Not JSON, so its secrets cannot be told apart from the rest.
            return Body {
                value: Value::String(format!("{REDACTED} (not JSON; may hold a credential)")),
                truncated: false,
                bytes,
            };
        }
        Body {
            truncated: text.len() > BODY_LIMIT,
            value: Value::String(cut(&text)),
            bytes,
        }
    }
}

fn cut(s: &str) -> String {
    if s.len() <= BODY_LIMIT {
        return s.to_owned();
    }
    let mut end = BODY_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Replaces every string (or number) value under a secret key, at any depth.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if secret_key(k) && (child.is_string() || child.is_number()) {
                    *child = Value::String(REDACTED.to_owned());
                } else {
                    redact_json(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// A query string (or form body) with the values of secret keys replaced.
pub fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret_key(&percent_decode(k)) => format!("{k}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Headers as a JSON object (lower-case names; repeated ones as arrays), secrets replaced.
pub fn headers(h: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in h {
        let name = name.as_str();
        let shown = if SECRET_HEADERS.contains(&name) {
            // The scheme says how the caller authenticated; the rest is the secret.
            match value.to_str().ok().and_then(|v| v.split_once(' ')) {
                Some((scheme, _)) if name.ends_with("authorization") => {
                    format!("{scheme} {REDACTED}")
                }
                _ => REDACTED.to_owned(),
            }
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        match out.get_mut(name) {
            Some(Value::Array(list)) => list.push(Value::String(shown)),
            Some(prev) => {
                let first = prev.take();
                *prev = Value::Array(vec![first, Value::String(shown)]);
            }
            None => {
                out.insert(name.to_owned(), Value::String(shown));
            }
        }
    }
    Value::Object(out)
}

/// The journal itself.
#[derive(Default)]
pub struct Journal {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    entries: VecDeque<Entry>,
    /// Entries forgotten because the journal was full, since the last clear.
    evicted: u64,
}

/// What `GET /__deskd/requests` filters by.
#[derive(Default)]
pub struct Filter {
    pub method: Option<Method>,
    pub path: Option<Pattern>,
    pub status: Option<StatusFilter>,
    pub since_ms: Option<i64>,
    pub after_id: Option<u64>,
    pub unmatched_only: bool,
}

/// `404`, or a class such as `4xx`.
#[derive(Clone, Copy, Debug)]
pub enum StatusFilter {
    Exact(u16),
    Class(u16),
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<StatusFilter> {
        let s = s.trim().to_ascii_lowercase();
        if let Some(class) = s.strip_suffix("xx") {
            return class
                .parse::<u16>()
                .ok()
                .filter(|c| (1..=5).contains(c))
                .map(StatusFilter::Class);
        }
        s.parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
            .map(StatusFilter::Exact)
    }

    fn matches(self, status: Option<StatusCode>) -> bool {
        let Some(s) = status.map(|s| s.as_u16()) else {
            return false;
        };
        match self {
            StatusFilter::Exact(n) => s == n,
            StatusFilter::Class(c) => s / 100 == c,
        }
    }
}

impl Journal {
    /// Numbers an entry and keeps it, forgetting the oldest beyond [`CAPACITY`].
    pub fn push(&self, mut entry: Entry) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.next_id += 1;
        entry.id = inner.next_id;
        if inner.entries.len() >= CAPACITY {
            inner.entries.pop_front();
            inner.evicted += 1;
        }
        inner.entries.push_back(entry);
        inner.next_id
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entries.clear();
        inner.evicted = 0;
    }

    /// Matching entries, oldest first, and how many were forgotten since the last clear.
    pub fn find(&self, f: &Filter) -> (Vec<Entry>, u64) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let found = inner
            .entries
            .iter()
            .filter(|e| f.method.as_ref().is_none_or(|m| *m == e.method))
            .filter(|e| f.path.as_ref().is_none_or(|p| p.matches_path(&e.path)))
            .filter(|e| f.status.is_none_or(|s| s.matches(e.status)))
            .filter(|e| f.since_ms.is_none_or(|t| e.at_ms >= t))
            .filter(|e| f.after_id.is_none_or(|id| e.id > id))
            .filter(|e| !f.unmatched_only || e.unmatched)
            .cloned()
            .collect();
        (found, inner.evicted)
    }
}

impl Entry {
    pub fn to_json(&self) -> Value {
        let body = |b: &Body| json!({"body": b.value, "body_bytes": b.bytes, "body_truncated": b.truncated});
        let mut request = json!({"headers": self.request_headers});
        merge(&mut request, body(&self.request_body));
        let mut response = json!({
            "status": self.status.map(|s| s.as_u16()),
            "headers": self.response_headers,
        });
        merge(&mut response, body(&self.response_body));
        json!({
            "id": self.id,
            "time": iso_ms(self.at_ms),
            "method": self.method.as_str(),
            "path": self.path,
            "query": self.query,
            "status": self.status.map(|s| s.as_u16()),
            "duration_ms": (self.duration_ms * 1000.0).round() / 1000.0,
            "unmatched": self.unmatched,
            "fault": self.fault,
            "dropped": self.status.is_none(),
            "request": request,
            "response": response,
        })
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// `2026-12-01T22:10:58.123Z`.
pub fn iso_ms(ms: i64) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// A `since` value: RFC 3339 (`2026-12-01T22:10:58Z`) or Unix seconds (fractions allowed).
pub fn parse_since(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| (f * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut v = json!({"user": {"password": "p1", "name": "n"},
            "token": {"user_id": 1, "scopes": ["read"]},
            "api_token": {"token": "t1", "id": 3},
            "x": [{"full_token": "t2", "access_token": "t3", "client_secret": "s"}]});
        redact_json(&mut v);
        let text = v.to_string();
        for secret in ["p1", "t1", "t2", "t3", "\"s\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(v["token"]["user_id"], 1);
        assert_eq!(v["user"]["name"], "n");
        assert_eq!(v["api_token"]["id"], 3);
    }

    #[test]
    fn queries_and_forms_are_redacted() {
        assert_eq!(
            redact_query("a=1&access_token=abc&pass%77ord=x&b"),
            "a=1&access_token=[redacted]&pass%77ord=[redacted]&b"
        );
    }

    #[test]
    fn non_json_bodies_that_may_hold_a_secret_are_dropped() {
        let b = Body::capture(b"{\"password\": oops", None);
        assert!(!b.value.to_string().contains("oops"));
        let b = Body::capture(b"plain words", Some("text/plain"));
        assert_eq!(b.value, json!("plain words"));
    }

    #[test]
    fn long_bodies_are_cut() {
        let raw = format!("{{\"notes\": \"{}\"}}", "é".repeat(BODY_LIMIT));
        let b = Body::capture(raw.as_bytes(), None);
        assert!(b.truncated);
        assert!(b.value.as_str().unwrap().len() <= BODY_LIMIT);
    }

    #[test]
    fn status_filters() {
        let s = |x: &str| StatusFilter::parse(x).unwrap();
        assert!(s("4xx").matches(Some(StatusCode::NOT_FOUND)));
        assert!(!s("4xx").matches(Some(StatusCode::OK)));
        assert!(s("201").matches(Some(StatusCode::CREATED)));
        assert!(StatusFilter::parse("7xx").is_none());
    }
}
