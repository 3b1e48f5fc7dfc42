//! A client for the Zendesk Support Users API, as deskd serves it and Zendesk does.
//!
//! Typed calls for users, bulk jobs, job statuses, identities and organizations; `Retry-After`
//! honoured on 429 within a bounded number of retries and a time budget; 503s and connection
//! errors retried with backoff for calls that are safe to repeat (reads, and bulk submissions
//! carrying an `Idempotency-Key`); `wait_for_job` polls a job to its end.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

pub mod testmode;

/// How a client proves who it is.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `email/token:TOKEN`.
    Token {
        email: String,
        token: String,
    },
    Password {
        email: String,
        password: String,
    },
    Bearer(String),
}

/// When and how long to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// Total time a call may spend waiting before it gives up.
    pub budget: Duration,
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            budget: Duration::from_secs(300),
            first_backoff: Duration::from_millis(200),
        }
    }
}

/// A Zendesk error body: `{"error": ..., "description": ..., "details": ...}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: Value,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 422: the record did not validate; `details` names the fields.
    #[error("record invalid: {}", .0.details.clone().unwrap_or_default())]
    RecordInvalid(ErrorBody),
    #[error("record not found")]
    RecordNotFound(ErrorBody),
    #[error("could not authenticate")]
    Unauthorized(ErrorBody),
    #[error("forbidden: {}", .0.description.clone().unwrap_or_default())]
    Forbidden(ErrorBody),
    /// 429 still refused after the retries and the time budget.
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    #[error("{status}: {body:?}")]
    Api { status: u16, body: ErrorBody },
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("unexpected response: {0}")]
    Decode(String),
    #[error("timed out waiting for job {0}")]
    JobTimeout(String),
}

impl Error {
    fn from_status(status: StatusCode, body: ErrorBody) -> Error {
        match status.as_u16() {
            422 | 413 => Error::RecordInvalid(body),
            404 => Error::RecordNotFound(body),
            401 => Error::Unauthorized(body),
            403 => Error::Forbidden(body),
            s => Error::Api { status: s, body },
        }
    }
}

/// A bulk job's status.
#[derive(Clone, Debug, Deserialize)]
pub struct JobStatus {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub total: Option<i64>,
    #[serde(default)]
    pub progress: Option<i64>,
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub results: Option<Vec<JobResult>>,
}

impl JobStatus {
    /// `completed`, `failed` or `killed`: the job will not change again.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "killed")
    }
}

/// One entry of a job's `results`.
#[derive(Clone, Debug, Deserialize)]
pub struct JobResult {
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// A user as the API returns it; fields beyond these stay in `other`.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One page of users, from either pagination style.
#[derive(Clone, Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    /// The absolute URL of the next page (`next_page`, or `links.next` while `has_more`).
    pub next: Option<String>,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    pub retry: RetryPolicy,
}

impl Client {
    /// `url` is deskd's address (`http://127.0.0.1:8080`) or Zendesk's (`https://SUB.zendesk.com`);
    /// `/api/v2` is added when missing.
    pub fn new(url: &str, auth: Auth) -> Result<Client, Error> {
        let trimmed = url.trim_end_matches('/');
        let base = if trimmed.ends_with("/api/v2") {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/api/v2")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Client {
            http,
            base,
            auth,
            retry: RetryPolicy::default(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends a request, retrying as the policy allows; `repeatable` says whether the call may be
    /// sent again after an error that leaves its fate unknown.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
        repeatable: bool,
    ) -> Result<(StatusCode, Value), Error> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), self.url(path))
                .header("Accept", "application/json");
            req = match &self.auth {
                Auth::Token { email, token } => {
                    req.basic_auth(format!("{email}/token"), Some(token))
                }
                Auth::Password { email, password } => req.basic_auth(email, Some(password)),
                Auth::Bearer(t) => req.bearer_auth(t),
            };
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let wait = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp.text().await?;
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        // A 429 was refused before any work: always safe to send again.
                        let wait = retry_after.unwrap_or(Duration::from_secs(10));
                        if attempt > self.retry.max_retries
                            || started.elapsed() + wait > self.retry.budget
                        {
                            return Err(Error::RateLimited(wait));
                        }
                        tracing::info!(?wait, "rate limited; waiting as Retry-After asks");
                        wait
                    } else if status == StatusCode::SERVICE_UNAVAILABLE
                        && repeatable
                        && attempt <= self.retry.max_retries
                    {
                        retry_after.unwrap_or(self.backoff(attempt))
                    } else if status.is_success() {
                        let value = if text.trim().is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_str(&text).map_err(|e| Error::Decode(e.to_string()))?
                        };
                        return Ok((status, value));
                    } else {
                        let body: ErrorBody = serde_json::from_str(&text).unwrap_or(ErrorBody {
                            error: Value::String(text),
                            ..ErrorBody::default()
                        });
                        return Err(Error::from_status(status, body));
                    }
                }
                Err(e)
                    if repeatable
                        && attempt <= self.retry.max_retries
                        && (e.is_connect() || e.is_timeout()) =>
                {
                    self.backoff(attempt)
                }
                Err(e) => return Err(e.into()),
            };
            if started.elapsed() + wait > self.retry.budget {
                return Err(Error::RateLimited(wait));
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.retry.first_backoff * 2u32.saturating_pow(attempt.saturating_sub(1).min(6));
        exp + Duration::from_millis(rand::random::<u64>() % 100)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, key: &str) -> Result<T, Error> {
        let (_, v) = self.send(Method::GET, path, None, &[], true).await?;
        take(v, key)
    }

    /// `POST /users/create_or_update`: the user, and whether it was created (201).
    pub async fn create_or_update(&self, user: &Value) -> Result<(User, bool), Error> {
        let (status, v) = self
            .send(
                Method::POST,
                "/users/create_or_update.json",
                Some(&json!({ "user": user })),
                &[],
                false,
            )
            .await?;
        Ok((take(v, "user")?, status == StatusCode::CREATED))
    }

    /// `POST /users/create_or_update_many` with up to 100 users. With an idempotency key a
    /// retried submission cannot make a second job, so it is retried on transport errors.
    pub async fn create_or_update_many(
        &self,
        users: &[Value],
        idempotency_key: Option<&str>,
    ) -> Result<JobStatus, Error> {
        self.bulk(
            Method::POST,
            "/users/create_or_update_many.json",
            &json!({ "users": users }),
            idempotency_key,
        )
        .await
    }

    pub async fn create_many(
        &self,
        users: &[Value],
        idempotency_key: Option<&str>,
    ) -> Result<JobStatus, Error> {
        self.bulk(
            Method::POST,
            "/users/create_many.json",
            &json!({ "users": users }),
            idempotency_key,
        )
        .await
    }

    /// `PUT /users/update_many` with `users`, each naming its user by `id` or `external_id`.
    pub async fn update_many(
        &self,
        users: &[Value],
        idempotency_key: Option<&str>,
    ) -> Result<JobStatus, Error> {
        self.bulk(
            Method::PUT,
            "/users/update_many.json",
            &json!({ "users": users }),
            idempotency_key,
        )
        .await
    }

    pub async fn destroy_many(&self, ids: &[i64]) -> Result<JobStatus, Error> {
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let (_, v) = self
            .send(
                Method::DELETE,
                &format!("/users/destroy_many.json?ids={}", list.join(",")),
                None,
                &[],
                true,
            )
            .await?;
        take(v, "job_status")
    }

    async fn bulk(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Result<JobStatus, Error> {
        let headers: Vec<(&str, String)> = key
            .map(|k| ("Idempotency-Key", k.to_owned()))
            .into_iter()
            .collect();
        let (_, v) = self
            .send(method, path, Some(body), &headers, key.is_some())
            .await?;
        take(v, "job_status")
    }

    pub async fn job_status(&self, id: &str) -> Result<JobStatus, Error> {
        self.get(&format!("/job_statuses/{id}.json"), "job_status")
            .await
    }

    pub async fn job_statuses(&self, ids: &[String]) -> Result<Vec<JobStatus>, Error> {
        self.get(
            &format!("/job_statuses/show_many.json?ids={}", ids.join(",")),
            "job_statuses",
        )
        .await
    }

    /// Polls a job (soon at first, then every `interval`) until it finishes or `timeout` passes. A few 404s right after
    /// submission are tolerated (a job may take a moment to be visible everywhere).
    pub async fn wait_for_job(
        &self,
        id: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<JobStatus, Error> {
        let started = Instant::now();
        let mut not_found = 0;
        // Most jobs finish in tens of milliseconds: look soon, then back off to `interval`.
        let mut wait = interval.min(Duration::from_millis(25));
        loop {
            match self.job_status(id).await {
                Ok(job) if job.is_finished() => return Ok(job),
                Ok(_) => {}
                Err(Error::RecordNotFound(_)) if not_found < 5 => not_found += 1,
                Err(e) => return Err(e),
            }
            if started.elapsed() >= timeout {
                return Err(Error::JobTimeout(id.to_owned()));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(interval);
        }
    }

    pub async fn user(&self, id: i64) -> Result<User, Error> {
        self.get(&format!("/users/{id}.json"), "user").await
    }

    pub async fn me(&self) -> Result<User, Error> {
        self.get("/users/me.json", "user").await
    }

    pub async fn show_many(&self, ids: &[i64]) -> Result<Vec<User>, Error> {
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        self.get(
            &format!("/users/show_many.json?ids={}", list.join(",")),
            "users",
        )
        .await
    }

    /// `GET /users/search?query=`.
    pub async fn search(&self, query: &str) -> Result<Vec<User>, Error> {
        self.get(
            &format!("/users/search.json?query={}", encode(query)),
            "users",
        )
        .await
    }

    pub async fn search_external_id(&self, external_id: &str) -> Result<Vec<User>, Error> {
        self.get(
            &format!("/users/search.json?external_id={}", encode(external_id)),
            "users",
        )
        .await
    }

    /// The first page of `GET /users`: cursor pagination with `page_size`, or offset when `None`.
    /// Follow `UserPage::next` with [`Client::users_page`].
    pub async fn users(&self, page_size: Option<u32>) -> Result<UserPage, Error> {
        match page_size {
            Some(n) => {
                self.users_page(&format!("/users.json?page[size]={n}"))
                    .await
            }
            None => self.users_page("/users.json").await,
        }
    }

    /// A page of users at `url` (a `next` link or a path), in either pagination style.
    pub async fn users_page(&self, url: &str) -> Result<UserPage, Error> {
        let (_, v) = self.send(Method::GET, url, None, &[], true).await?;
        let next = match v.get("meta") {
            Some(meta) if meta.get("has_more").and_then(Value::as_bool) == Some(true) => {
                v["links"]["next"].as_str().map(str::to_owned)
            }
            Some(_) => None,
            None => v
                .get("next_page")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        Ok(UserPage {
            users: take(v, "users")?,
            next,
        })
    }

    pub async fn identities(&self, user_id: i64) -> Result<Vec<Value>, Error> {
        self.get(&format!("/users/{user_id}/identities.json"), "identities")
            .await
    }

    pub async fn organization(&self, id: i64) -> Result<Value, Error> {
        self.get(&format!("/organizations/{id}.json"), "organization")
            .await
    }

    pub async fn create_organization(&self, organization: &Value) -> Result<Value, Error> {
        let (_, v) = self
            .send(
                Method::POST,
                "/organizations.json",
                Some(&json!({ "organization": organization })),
                &[],
                false,
            )
            .await?;
        take(v, "organization")
    }
}

fn take<T: DeserializeOwned>(mut v: Value, key: &str) -> Result<T, Error> {
    let inner = v
        .get_mut(key)
        .map(Value::take)
        .ok_or_else(|| Error::Decode(format!("no `{key}` in the response")))?;
    serde_json::from_value(inner).map_err(|e| Error::Decode(format!("{key}: {e}")))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
