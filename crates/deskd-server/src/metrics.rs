//! `GET /metrics`: Prometheus (OpenMetrics) text.
//!
//! What is counted never names a user: requests are labelled by route template (`/api/v2/users/{id}`),
//! never by path, and nothing else carries a label a client chose. Who may read it is
//! `Config::metrics` (default: admins; `open` for a scraper on a private network; `off`).
//!
//! Most series are this replica's; `deskd_jobs` (by state) is read from the database at scrape
//! time and is the same on every replica of one database.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;

/// Who may read `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Admins (any credential an admin has: password, API token, bearer token with `read`).
    #[default]
    Admin,
    /// Anyone who can reach the port (for a scraper on a private network).
    Open,
    /// Not served (404).
    Off,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// This process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    rate_limited: Family<KindLabel, Counter>,
    login_failures: Family<KindLabel, Counter>,
    job_items: Counter,
    jobs: Family<StateLabel, Gauge>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new(store: deskd_store::Store) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let rate_limited = Family::<KindLabel, Counter>::default();
        let login_failures = Family::<KindLabel, Counter>::default();
        let job_items = Counter::default();
        let jobs = Family::<StateLabel, Gauge>::default();
        registry.register(
            "deskd_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "deskd_http_request_duration_seconds",
            "Time from a request's headers to its response, by method and route template",
            latency.clone(),
        );
        registry.register(
            "deskd_rate_limited",
            "Requests answered 429, by limit (account, profile, anonymous, login_failures, password_checks, incremental, jobs)",
            rate_limited.clone(),
        );
        registry.register(
            "deskd_login_failures",
            "Failed authentications, by credential (password, api_token, bearer)",
            login_failures.clone(),
        );
        registry.register(
            "deskd_job_items",
            "Bulk job items processed by this replica's workers (rate() gives items per second)",
            job_items.clone(),
        );
        registry.register(
            "deskd_jobs",
            "Jobs in the database by state (the same on every replica)",
            jobs.clone(),
        );
        registry.register_collector(Box::new(StoreCollector(store)));
        Metrics {
            registry,
            requests,
            latency,
            rate_limited,
            login_failures,
            job_items,
            jobs,
        }
    }

    fn request(&self, method: &'static str, route: String, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// A failed authentication with `kind` of credential.
    pub fn login_failure(&self, kind: &'static str) {
        self.login_failures.get_or_create(&KindLabel { kind }).inc();
    }

    /// `n` job items processed.
    pub fn job_items(&self, n: u64) {
        self.job_items.inc_by(n);
    }
}

/// The route template axum matched, carried from inside the router to [`track`] outside it.
#[derive(Clone)]
struct Route(String);

/// Inside the router: notes the matched route template on the response.
pub async fn mark_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut resp = next.run(req).await;
    if let Some(r) = route {
        resp.extensions_mut().insert(Route(r));
    }
    resp
}

/// Outside the router (so requests answered before routing count too): counts the request
/// under its route template, or `unmatched`.
pub async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let route = resp
        .extensions()
        .get::<Route>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
    let status = resp.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let kind = resp
            .extensions()
            .get::<crate::respond::RateLimited>()
            .map_or("other", |k| k.0);
        app.metrics
            .rate_limited
            .get_or_create(&KindLabel { kind })
            .inc();
    }
    app.metrics.request(
        method,
        route,
        status.as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(app): State<AppState>, req: Request) -> Result<Response, ApiError> {
    match app.config.metrics {
        Access::Off => return Err(ApiError::InvalidEndpoint),
        Access::Open => {}
        Access::Admin => {
            let (mut parts, _) = req.into_parts();
            <Admin as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                &mut parts, &app,
            )
            .await?;
        }
    }
    // Jobs by state: from the database; left out while it cannot be read.
    app.metrics.jobs.clear();
    if let Ok(mut conn) = app.store.reader().await
        && let Ok(counts) = deskd_store::jobs::count_by_status(&mut conn).await
    {
        for (state, n) in counts {
            app.metrics.jobs.get_or_create(&StateLabel { state }).set(n);
        }
    }
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &app.metrics.registry)
        .map_err(|e| ApiError::internal(format!("encoding metrics: {e}")))?;
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(resp)
}

/// The store's pool and batch counters, read at scrape time.
struct StoreCollector(deskd_store::Store);

impl fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let pool = self.0.pool_stats();
        let gauges: [(&str, &str, i64); 4] = [
            (
                "deskd_db_pool_max",
                "Connections the pool may open",
                i64::from(pool.max),
            ),
            (
                "deskd_db_pool_in_use",
                "Pooled connections in use",
                i64::from(pool.size.saturating_sub(pool.idle)),
            ),
            (
                "deskd_db_pool_idle",
                "Pooled connections idle",
                i64::from(pool.idle),
            ),
            (
                "deskd_db_pool_waiting",
                "Tasks waiting for a pooled connection",
                pool.waiting,
            ),
        ];
        for (name, help, value) in gauges {
            let mut e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            e.encode_gauge(&value)?;
        }
        let stats = self.0.stats();
        for (name, help, h) in [
            (
                "deskd_upsert_batch_size",
                "create_or_update requests decided and written together in one batch",
                &stats.upsert_batches,
            ),
            (
                "deskd_write_group_size",
                "Units of work committed in one SQLite transaction (group commit; 0 on PostgreSQL)",
                &stats.write_groups,
            ),
        ] {
            let s = h.snapshot();
            let mut e = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            e.encode_histogram::<NoLabelSet>(s.sum as f64, s.count, &s.buckets, None)?;
        }
        Ok(())
    }
}

/// Keeps `Metrics` shareable in `AppState`.
pub type Shared = Arc<Metrics>;
