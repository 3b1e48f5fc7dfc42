//! The pages' way into the API: a request built here and answered by the API's own router, in
//! process, on behalf of the signed-in user (`auth::Vouched`), from the browser's own address
//! and Host. Whatever the API refuses, the page is refused too, with the API's reason.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tower::ServiceExt;

use super::Web;
use super::session::Signed;
use crate::ApiError;
use crate::auth::{Caller, Vouched};

/// The largest API answer a page reads (a page of 100 users with their fields is far below).
const MAX_ANSWER: usize = 32 * 1024 * 1024;

pub struct Api<'a> {
    web: &'a Web,
    caller: Option<Caller>,
    host: Option<HeaderValue>,
    peer: Option<ConnectInfo<SocketAddr>>,
    authorization: Option<HeaderValue>,
}

/// An API answer: its status and JSON body (`Null` when it had none or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
    pub retry_after: Option<u64>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The API's reason, as a sentence for the page: Zendesk's description and each field's
    /// problem, or the plain text of a 429.
    pub fn problem(&self) -> String {
        if self.body.is_null() {
            return if self.text.trim().is_empty() {
                format!("The request was refused ({}).", self.status)
            } else {
                self.text.trim().to_owned()
            };
        }
        let b = &self.body;
        let mut out = b["description"]
            .as_str()
            .or_else(|| b["error"].as_str())
            .unwrap_or("The request was refused")
            .to_owned();
        if let Some(details) = b["details"].as_object() {
            for (field, problems) in details {
                for p in problems.as_array().into_iter().flatten() {
                    let d = p["description"].as_str().unwrap_or("is invalid");
                    out.push_str(&format!("; {field}: {d}"));
                }
            }
        }
        out
    }
}

impl<'a> Api<'a> {
    pub fn new(web: &'a Web, signed: &Signed) -> Api<'a> {
        Api {
            web,
            caller: Some(signed.caller.clone()),
            host: signed.host.clone(),
            peer: signed.peer,
            authorization: None,
        }
    }

    /// For the sign-in, which brings its own credentials.
    pub fn anonymous(
        web: &'a Web,
        host: Option<HeaderValue>,
        peer: Option<ConnectInfo<SocketAddr>>,
    ) -> Api<'a> {
        Api {
            web,
            caller: None,
            host,
            peer,
            authorization: None,
        }
    }

    pub fn with_authorization(mut self, value: &str) -> Self {
        self.authorization = HeaderValue::from_str(value).ok();
        self
    }

    pub async fn get(&self, uri: &str) -> Result<Answer, ApiError> {
        self.call(Method::GET, uri, None).await
    }

    pub async fn send(&self, method: Method, uri: &str, body: &Value) -> Result<Answer, ApiError> {
        self.call(method, uri, Some(body)).await
    }

    /// The API's response itself, unread (an event stream is passed on as it comes).
    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Value>,
    ) -> Result<Response, ApiError> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(h) = &self.host {
            builder = builder.header(header::HOST, h.clone());
        }
        if let Some(a) = &self.authorization {
            builder = builder.header(header::AUTHORIZATION, a.clone());
        }
        let body = match body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v).map_err(ApiError::internal)?)
            }
            None => Body::empty(),
        };
        let mut req = builder.body(body).map_err(ApiError::internal)?;
        if let Some(c) = &self.caller {
            req.extensions_mut().insert(Vouched(c.clone()));
        }
        if let Some(p) = self.peer {
            req.extensions_mut().insert(p);
        }
        match self.web.api.clone().oneshot(req).await {
            Ok(resp) => Ok(resp),
            Err(never) => match never {},
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ApiError> {
        let resp = self.raw(method, uri, body).await?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER)
            .await
            .map_err(ApiError::internal)?;
        if status.is_server_error() {
            return Err(ApiError::internal(format!(
                "the API answered {status} to a page's request"
            )));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            text,
            retry_after,
        })
    }
}

/// A path segment or query value, percent-encoded.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
