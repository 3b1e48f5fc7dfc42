//! deskd's HTTP server: the Zendesk Support Users API on axum.
//!
//! `router(state)` builds the application; `run(config, listener, shutdown)` serves it until
//! `shutdown` resolves, finishing in-flight requests.

mod account;
mod api_tokens;
pub mod auth;
mod bodies;
pub mod bootstrap;
mod bulk;
mod custom_fields;
mod drain;
mod error;
mod extract;
mod health;
mod identities;
mod incremental;
mod job_events;
mod job_statuses;
pub mod limits;
mod memberships;
pub mod metrics;
mod oauth;
pub mod openapi;
mod organizations;
mod paging;
mod paths;
pub mod request_id;
mod respond;
pub mod scopes;
mod search;
pub mod serve;
mod tags;
pub mod testmode;
mod user_reads;
mod users;
mod web;
mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use deskd_store::Store;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use extract::MAX_BODY_BYTES;

/// Settings of a running server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Base for absolute URLs in responses (`https://help.example.com`); else the request's Host.
    pub public_url: Option<String>,
    /// Rate limits on or off (`DESKD_RATE_LIMITS=off` for benchmarks); when on, the four below.
    pub rate_limits: bool,
    /// Account budget, requests a minute (Zendesk Enterprise: 700); `None` for no limit.
    pub account_rate_limit: Option<u32>,
    /// create_or_update / PUT /users/{id} requests a minute per user profile (Zendesk: 5).
    pub profile_rate_limit: Option<u32>,
    /// Failed password logins for one email from one client address within 5 minutes before
    /// further password tries from there get 429.
    pub auth_failure_limit: Option<u32>,
    /// Incremental export requests a minute for the account (Zendesk: 10).
    pub incremental_rate_limit: Option<u32>,
    /// Unauthenticated and failed-auth API requests a minute per client address; they never
    /// spend the account budget.
    pub anonymous_rate_limit: Option<u32>,
    /// Password hashes (argon2id, 19 MiB each) computed at once; further logins wait.
    pub password_verifications: usize,
    /// How long a password login waits for a verification slot before it is answered 429.
    pub password_wait: Duration,
    /// Whether bulk user imports are on while the account setting has not been set.
    pub bulk_import_default: bool,
    /// Job workers in this process.
    pub job_workers: usize,
    /// How long a claimed job stays with its worker without progress before another takes it.
    pub job_lease: Duration,
    /// How long job statuses are kept.
    pub job_retention: Duration,
    /// A client's time to send a request's headers (from the connection's opening, or on a
    /// kept-alive connection from the request's first byte).
    pub header_timeout: Duration,
    /// From a request's headers to its response, the body read included; then 408.
    pub request_timeout: Duration,
    /// How long a kept-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Open client connections at most (fewer if the descriptor limit leaves no room for them).
    pub max_connections: usize,
    /// On shutdown, how long requests in flight get to finish before their connections are
    /// dropped.
    pub shutdown_grace: Duration,
    /// How long one statement of a list or search page may run on PostgreSQL before it is
    /// cancelled and the request answered 503.
    pub read_timeout: Duration,
    /// Bytes of JSON request bodies read and parsed at once across the server (parsing costs
    /// many times a body's size); further bodies wait their turn.
    pub body_budget: usize,
    /// Test mode (`deskd serve --test-mode`): the `/__deskd/` controls (reset, request journal,
    /// fault injection) for running deskd as a test double. Off, those paths are 404.
    pub test_mode: bool,
    /// Who may read `GET /metrics`.
    pub metrics: metrics::Access,
    /// On shutdown, how long `/readyz` answers 503 while requests are still served, so that a
    /// load balancer stops sending new ones before the listener closes.
    pub drain_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            public_url: None,
            rate_limits: true,
            account_rate_limit: Some(700),
            profile_rate_limit: Some(5),
            auth_failure_limit: Some(10),
            incremental_rate_limit: Some(10),
            anonymous_rate_limit: Some(100),
            password_verifications: 4,
            password_wait: Duration::from_millis(500),
            bulk_import_default: true,
            job_workers: 4,
            job_lease: Duration::from_secs(30),
            job_retention: Duration::from_secs(24 * 60 * 60),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(30),
            read_timeout: Duration::from_secs(10),
            body_budget: 8 * 1024 * 1024,
            test_mode: false,
            metrics: metrics::Access::Admin,
            drain_delay: Duration::ZERO,
        }
    }
}

/// What every handler can reach: one `Arc`, so that the clone each layer and handler takes of
/// it per request is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<State>);

impl std::ops::Deref for AppState {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct State {
    pub store: Store,
    pub config: Arc<Config>,
    pub logins: auth::LoginCache,
    pub local_addr: SocketAddr,
    /// Wakes an idle job worker when a job is submitted here.
    pub jobs_notify: Arc<tokio::sync::Notify>,
    pub limiter: limits::Limiter,
    /// Bounds the argon2 computations in flight (see `auth::with_argon2`).
    pub argon2_permits: Arc<tokio::sync::Semaphore>,
    /// The bytes of request bodies being read and parsed at once (see `bodies`).
    pub body_permits: Arc<tokio::sync::Semaphore>,
    /// Test mode's state (journal, fault rules); present only when `config.test_mode`.
    pub test: Option<Arc<testmode::TestState>>,
    /// True once shutdown began: `/readyz` answers 503 and workers claim no more jobs.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    pub metrics: metrics::Shared,
    /// Set once the server starts shutting down: long-lived responses (event streams) end then.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    pub fn new(store: Store, config: Config, local_addr: SocketAddr) -> Self {
        let on = |n: Option<u32>, period_secs| {
            n.filter(|_| config.rate_limits)
                .map(|limit| limits::Rate { limit, period_secs })
        };
        let limiter = limits::Limiter::new(
            on(config.account_rate_limit, 60),
            on(config.profile_rate_limit, 60),
            on(config.auth_failure_limit, 300),
            on(config.anonymous_rate_limit, 60),
        )
        .with_incremental(on(config.incremental_rate_limit, 60));
        let test = config.test_mode.then(|| {
            deskd_model::time::test_clock::enable();
            Arc::new(testmode::TestState::default())
        });
        AppState(Arc::new(State {
            limiter,
            test,
            draining: Arc::default(),
            metrics: Arc::new(metrics::Metrics::new(store.clone())),
            jobs_notify: store.jobs_wake(),
            argon2_permits: Arc::new(tokio::sync::Semaphore::new(
                config.password_verifications.max(1),
            )),
            body_permits: bodies::semaphore(config.body_budget),
            store,
            config: Arc::new(config),
            logins: auth::LoginCache::default(),
            local_addr,
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
        }))
    }
}

/// Every route deskd serves, with the layers that must run before routing (unread bodies
/// drained, `.json` stripped, U+0000 refused), so an embedded router behaves as the served one.
pub fn router(state: AppState) -> Router {
    let api = routes(state.clone());
    // The admin pages hand their requests to the API in-process, through the same routes.
    let routes = api.clone().merge(web::routes(state.clone(), api));
    let before_routing = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(request_id::request_id))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(drain::drain_unread_body))
        // Test mode's journal and faults see each request as sent; outside test mode, absent.
        .option_layer(
            state
                .config
                .test_mode
                .then(|| axum::middleware::from_fn_with_state(state.clone(), testmode::observe)),
        )
        .layer(axum::middleware::from_fn(paths::normalize))
        .service(routes);
    Router::new().fallback_service(before_routing)
}

fn routes(state: AppState) -> Router {
    let test_routes = if state.config.test_mode {
        testmode::routes()
    } else {
        Router::new()
    };
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(users::routes())
        .merge(organizations::routes())
        .merge(memberships::routes())
        .merge(user_reads::routes())
        .merge(identities::routes())
        .merge(tags::routes())
        .merge(custom_fields::routes())
        .merge(search::routes())
        .merge(incremental::routes())
        .merge(oauth::routes())
        .merge(api_tokens::routes())
        .merge(bulk::routes())
        .merge(job_statuses::routes())
        .merge(job_events::routes())
        .merge(account::routes())
        .merge(openapi::routes())
        .merge(test_routes)
        .fallback(paths::invalid_endpoint)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bodies::layer,
        ))
        .layer(axum::middleware::from_fn(paths::around))
        .layer(axum::middleware::from_fn(metrics::mark_route))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains in-flight requests (for at
/// most `Config::shutdown_grace`) and closes the store.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store.clone();
    let config = state.config.clone();
    let limits = serve::Limits {
        header_timeout: config.header_timeout,
        request_timeout: config.request_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: serve::connection_cap(config.max_connections),
        shutdown_grace: config.shutdown_grace,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    let workers = worker::spawn(state.clone(), stopped);
    let purge = limits::spawn_purge(store.clone());
    let draining = state.draining.clone();
    let stopping = state.stopping.clone();
    let app = router(state);
    let started = std::sync::Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    let mark = started.clone();
    let stop_workers = stop.clone();
    let drain_delay = config.drain_delay;
    // The order a load balancer needs: not ready first, no new jobs claimed, requests still served
    // for `drain_delay` (while the balancer notices), then the listener closes and requests in
    // flight finish within the grace.
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(true);
        *mark.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        draining.store(true, std::sync::atomic::Ordering::Release);
        // A worker mid-job finishes its chunk and releases the rest to other replicas.
        let _ = stop_workers.send(true);
        tokio::time::sleep(drain_delay).await;
    };
    let served = serve::serve(listener, app, limits, shutdown).await;
    purge.abort();
    let _ = stop.send(true);
    let since = started
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map_or(Duration::ZERO, |t| t.elapsed());
    let left = config
        .shutdown_grace
        .saturating_sub(since)
        .max(Duration::from_secs(1));
    let finished = tokio::time::timeout(left, async {
        for w in workers {
            let _ = w.await;
        }
        store.close().await;
    })
    .await;
    if finished.is_err() {
        tracing::warn!("shutdown grace elapsed; job workers and the store were not closed");
    }
    served
}
