//! Fault injection: rules that answer matching requests before routing with a 429, a 503, a
//! 500, a Zendesk error body of choice, a delay or a dropped connection, so that a client's retry
//! and back-off logic is tested deterministically.

use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::pattern::Pattern;

/// Most rules at once.
const MAX_RULES: usize = 100;
/// Longest delay a rule may add.
const MAX_DELAY_MS: u64 = 60_000;

/// What a rule answers.
#[derive(Clone, Debug)]
pub struct FaultResponse {
    pub status: Option<StatusCode>,
    pub retry_after: Option<u64>,
    pub body: Option<Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub delay_ms: u64,
    pub drop: bool,
}

/// One rule as posted, with how often it matched and fired.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: u64,
    pub method: Option<Method>,
    pub path: Pattern,
    pub times: Option<u64>,
    pub fraction: Option<f64>,
    pub seed: u64,
    pub response: FaultResponse,
    /// The rule as posted, echoed back in listings.
    pub spec: Value,
    pub matched: u64,
    pub fired: u64,
    rng: u64,
}

/// What a matching request gets.
#[derive(Clone, Debug)]
pub struct Fire {
    pub rule: u64,
    pub response: FaultResponse,
}

#[derive(Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    rules: Vec<Rule>,
}

fn bad(msg: impl Into<String>) -> String {
    msg.into()
}

impl Rule {
    /// Reads a rule: `{"method", "path", "times", "fraction", "seed", "response": {"status",
    /// "retry_after", "body", "headers", "delay_ms", "drop"}}` (or the same under `"fault"`).
    pub fn parse(body: &Map<String, Value>) -> Result<Rule, String> {
        let spec = match body.get("fault") {
            Some(Value::Object(inner)) => inner,
            Some(_) => return Err(bad("fault must be an object")),
            None => body,
        };
        let method = match spec.get("method") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) if m == "*" || m.eq_ignore_ascii_case("any") => None,
            Some(Value::String(m)) => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| bad(format!("method {m:?} is not an HTTP method")))?,
            ),
            Some(_) => return Err(bad("method must be a string")),
        };
        let path = match spec.get("path") {
            Some(Value::String(p)) if p.starts_with('/') || p.starts_with('*') => Pattern::new(p),
            Some(Value::String(_)) => {
                return Err(bad(
                    "path must start with / (or be a pattern starting with *)",
                ));
            }
            None | Some(Value::Null) => Pattern::new("*"),
            Some(_) => return Err(bad("path must be a string")),
        };
        let times = match spec.get("times") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("times must be a positive integer"))?,
            ),
        };
        let fraction = match spec.get("fraction") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_f64()
                    .filter(|f| *f > 0.0 && *f <= 1.0)
                    .ok_or_else(|| bad("fraction must be a number in (0, 1]"))?,
            ),
        };
        let seed = match spec.get("seed") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| bad("seed must be a non-negative integer"))?,
        };
        let Some(Value::Object(r)) = spec.get("response") else {
            return Err(bad(
                "response must be an object: {\"status\": 429, \"retry_after\": 2}, {\"status\": 503}, {\"delay_ms\": 500}, {\"drop\": true}, ...",
            ));
        };
        let status = match r.get("status") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| (200..=599).contains(n))
                    .and_then(|n| StatusCode::from_u16(n).ok())
                    .ok_or_else(|| bad("status must be an HTTP status from 200 to 599"))?,
            ),
        };
        let retry_after = match r.get("retry_after") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| bad("retry_after must be a whole number of seconds"))?,
            ),
        };
        let delay_ms = match r.get("delay_ms") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .filter(|d| *d <= MAX_DELAY_MS)
                .ok_or_else(|| bad(format!("delay_ms must be 0 to {MAX_DELAY_MS}")))?,
        };
        let drop = match r.get("drop") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("drop must be true or false")),
        };
        let body = match r.get("body") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
        };
        let mut headers = Vec::new();
        match r.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| bad(format!("{k:?} is not a header name")))?;
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let value = HeaderValue::from_str(&text)
                        .map_err(|_| bad(format!("the value of header {k} is not valid")))?;
                    headers.push((name, value));
                }
            }
            Some(_) => return Err(bad("headers must be an object")),
        }
        if status.is_none() && !drop && delay_ms == 0 {
            return Err(bad("response needs a status, a delay_ms or drop: true"));
        }
        if drop && (status.is_some() || body.is_some()) {
            return Err(bad("a dropped connection has no status or body"));
        }
        if status.is_none() && (body.is_some() || retry_after.is_some() || !headers.is_empty()) {
            return Err(bad("body, headers and retry_after need a status"));
        }
        Ok(Rule {
            id: 0,
            method,
            path,
            times,
            fraction,
            seed,
            response: FaultResponse {
                status,
                retry_after,
                body,
                headers,
                delay_ms,
                drop,
            },
            spec: Value::Object(spec.clone()),
            matched: 0,
            fired: 0,
            rng: seed,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "method": self.method.as_ref().map(Method::as_str),
            "path": self.path.as_str(),
            "times": self.times,
            "fraction": self.fraction,
            "seed": self.seed,
            "response": self.spec.get("response"),
            "matched": self.matched,
            "fired": self.fired,
            "remaining": self.times.map(|t| t.saturating_sub(self.fired)),
        })
    }

    /// splitmix64: the rule's own deterministic sequence, in [0, 1).
    fn next_unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Faults {
    pub fn add(&self, mut rule: Rule) -> Result<Value, String> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.rules.len() >= MAX_RULES {
            return Err(format!(
                "at most {MAX_RULES} rules; DELETE /__deskd/faults first"
            ));
        }
        inner.next_id += 1;
        rule.id = inner.next_id;
        let shown = rule.to_json();
        inner.rules.push(rule);
        Ok(shown)
    }

    pub fn list(&self) -> Vec<Value> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.rules.iter().map(Rule::to_json).collect()
    }

    pub fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rules
            .clear();
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let before = inner.rules.len();
        inner.rules.retain(|r| r.id != id);
        inner.rules.len() != before
    }

    /// The first rule, in the order posted, that matches the request and fires for it.
    /// Every matching rule counts the match; an exhausted rule (`times` reached) lets it pass.
    pub fn decide(&self, method: &Method, path: &str) -> Option<Fire> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.rules.is_empty() {
            return None;
        }
        for rule in inner.rules.iter_mut() {
            if rule.method.as_ref().is_some_and(|m| m != method) || !rule.path.matches_exact(path) {
                continue;
            }
            rule.matched += 1;
            if rule.times.is_some_and(|t| rule.fired >= t) {
                continue;
            }
            if let Some(f) = rule.fraction
                && rule.next_unit() >= f
            {
                continue;
            }
            rule.fired += 1;
            return Some(Fire {
                rule: rule.id,
                response: rule.response.clone(),
            });
        }
        None
    }
}

/// The answer of a rule that has a status.
pub fn respond(fire: &Fire, status: StatusCode) -> Response {
    let r = &fire.response;
    let (content_type, bytes) = match &r.body {
        Some(Value::String(text)) => ("text/plain; charset=utf-8", text.clone().into_bytes()),
        Some(v) => (crate::respond::JSON_UTF8, v.to_string().into_bytes()),
        None => match status {
            StatusCode::TOO_MANY_REQUESTS => (
                "text/plain; charset=utf-8",
                b"Number of allowed API requests per minute exceeded".to_vec(),
            ),
            StatusCode::INTERNAL_SERVER_ERROR => (
                crate::respond::JSON_UTF8,
                json!({"error": "InternalError", "description": "Something went wrong on our side; the request may be retried"}).to_string().into_bytes(),
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                crate::respond::JSON_UTF8,
                json!({"error": "ServiceUnavailable", "description": "Service temporarily unavailable; retry later"}).to_string().into_bytes(),
            ),
            s => (
                crate::respond::JSON_UTF8,
                json!({"error": s.canonical_reason().unwrap_or("Error")})
                    .to_string()
                    .into_bytes(),
            ),
        },
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let retry_after = r
        .retry_after
        .or((status == StatusCode::TOO_MANY_REQUESTS).then_some(1));
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    h.insert("x-zendesk-api-version", HeaderValue::from_static("v2"));
    if let Ok(v) = HeaderValue::from_str(&fire.rule.to_string()) {
        h.insert("x-deskd-fault", v);
    }
    for (name, value) in &r.headers {
        h.insert(name.clone(), value.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Rule {
        Rule::parse(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn times_then_pass() {
        let f = Faults::default();
        f.add(rule(
            json!({"method": "post", "path": "/a", "times": 2, "response": {"status": 429}}),
        ))
        .unwrap();
        let post = Method::POST;
        assert!(f.decide(&Method::GET, "/a").is_none());
        assert!(f.decide(&post, "/a.json").is_some());
        assert!(f.decide(&post, "/a").is_some());
        assert!(f.decide(&post, "/a").is_none());
        let listed = f.list();
        assert_eq!(listed[0]["fired"], 2);
        assert_eq!(listed[0]["matched"], 3);
        assert_eq!(listed[0]["remaining"], 0);
    }

    #[test]
    fn fractions_are_deterministic_for_a_seed() {
        let run = |seed: u64| {
            let f = Faults::default();
            f.add(rule(
                json!({"path": "*", "fraction": 0.3, "seed": seed, "response": {"status": 503}}),
            ))
            .unwrap();
            (0..1000)
                .map(|_| f.decide(&Method::GET, "/x").is_some())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let fired = a.iter().filter(|x| **x).count();
        assert!((230..370).contains(&fired), "{fired}");
    }

    #[test]
    fn bad_rules_are_refused() {
        for v in [
            json!({"path": "/a"}),
            json!({"path": "/a", "response": {}}),
            json!({"path": "a", "response": {"status": 500}}),
            json!({"path": "/a", "times": 0, "response": {"status": 500}}),
            json!({"path": "/a", "fraction": 1.5, "response": {"status": 500}}),
            json!({"path": "/a", "response": {"status": 99}}),
            json!({"path": "/a", "response": {"drop": true, "status": 500}}),
            json!({"path": "/a", "response": {"delay_ms": 10, "body": "x"}}),
        ] {
            assert!(Rule::parse(v.as_object().unwrap()).is_err(), "{v}");
        }
    }
}
