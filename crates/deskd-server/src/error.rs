//! The one error type of the HTTP layer, answered in Zendesk's shapes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use deskd_model::{Rejection, ValidationErrors};
use deskd_store::StoreError;
use serde_json::{Value, json};

use crate::respond::json_response;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {error}: {description}")]
    BadRequest {
        error: &'static str,
        description: String,
    },
    #[error("couldn't authenticate")]
    Unauthorized,
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("forbidden")]
    Forbidden,
    #[error("record not found")]
    NotFound,
    #[error("no such endpoint")]
    InvalidEndpoint,
    #[error("request body too large")]
    TooLarge { limit: usize },
    #[error("request body is not JSON")]
    UnsupportedMediaType,
    #[error("validation failed")]
    Invalid(ValidationErrors),
    /// Something failed on deskd's side; the cause is kept for the log, never sent.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 429 with a plain-text sentence and `Retry-After`.
    #[error("too many requests: {text}")]
    TooManyRequests {
        retry_after_secs: u64,
        text: &'static str,
    },
    /// A status and body Zendesk answers verbatim (e.g. `TooManyValues`).
    #[error("{0}: {1}")]
    Raw(StatusCode, Value),
    /// The database is down or unreachable (or this replica is closing): 503 with `Retry-After`;
    /// the same request can succeed in a moment. The reason is logged, never sent.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

/// Seconds a client is asked to wait before retrying a 503.
pub const UNAVAILABLE_RETRY_SECS: u32 = 2;

impl ApiError {
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let cause = cause.into();
        match cause.downcast::<StoreError>() {
            Ok(e) => ApiError::from(*e),
            Err(cause) => ApiError::Internal(cause),
        }
    }

    pub fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        ApiError::BadRequest {
            error,
            description: description.into(),
        }
    }

    fn status_and_body(&self) -> (StatusCode, Value) {
        match self {
            ApiError::BadRequest { error, description } => (
                StatusCode::BAD_REQUEST,
                json!({"error": error, "description": description}),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "Couldn't authenticate you"}),
            ),
            ApiError::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_token", "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons."}),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                json!({"error": "Forbidden", "description": "You do not have access to this page. Please contact the account owner of this help desk for further help."}),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "RecordNotFound", "description": "Not found"}),
            ),
            ApiError::InvalidEndpoint => (
                StatusCode::NOT_FOUND,
                json!({"error": "InvalidEndpoint", "description": "Not found"}),
            ),
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "RequestTooLarge", "description": format!("The request body may be at most {limit} bytes")}),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"error": "UnsupportedMediaType", "description": "Request bodies must be JSON, sent with Content-Type: application/json"}),
            ),
            ApiError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "RecordInvalid", "description": "Record validation errors", "details": errors.details()}),
            ),
            ApiError::Raw(status, body) => (*status, body.clone()),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, Value::Null),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "ServiceUnavailable", "description": "Service temporarily unavailable; retry later"}),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "InternalError", "description": "Something went wrong on our side; the request may be retried"}),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::TooManyRequests {
            retry_after_secs,
            text,
        } = &self
        {
            return crate::respond::too_many_requests(*retry_after_secs, text);
        }
        if let ApiError::Internal(cause) = &self {
            // Logged in full here, with the chain of causes; the client gets an opaque body.
            let mut chain = cause.to_string();
            let mut next = cause.source();
            while let Some(e) = next {
                chain.push_str(": ");
                chain.push_str(&e.to_string());
                next = e.source();
            }
            tracing::error!(error = %chain, "internal error");
        }
        if let ApiError::Unavailable(reason) = &self {
            tracing::debug!(reason = %reason, "answered 503");
        }
        let (status, body) = self.status_and_body();
        let mut resp = json_response(status, &body);
        if matches!(self, ApiError::Unavailable(_)) {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_SECS),
            );
        }
        if matches!(self, ApiError::Unauthorized | ApiError::InvalidToken) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Web Password\""),
            );
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_statement_timeout() {
            // A read that ran past its bound: the server's limit, not a fault, and not the
            // client's mistake either; logged, answered as Zendesk answers a search it gave up on.
            tracing::warn!(error = %e, "a read ran past its statement timeout");
            return ApiError::Raw(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "unavailable", "description": "Sorry, we could not complete your search query. Please try again in a moment."}),
            );
        }
        if e.is_unavailable() {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(Box::new(e))
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::NotFound => ApiError::NotFound,
            Rejection::Forbidden => ApiError::Forbidden,
            Rejection::Invalid(v) => ApiError::Invalid(v),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(v: ValidationErrors) -> Self {
        ApiError::Invalid(v)
    }
}
