//! deskd's HTTP server: the Zendesk Support Users API on axum.
//!
//! `router(state)` builds the application; `run(config, listener, shutdown)` serves it until
//! `shutdown` resolves, finishing in-flight requests.

mod account;
mod api_tokens;
pub mod auth;
pub mod bootstrap;
mod bulk;
mod error;
mod extract;
mod health;
mod identities;
mod incremental;
mod job_statuses;
pub mod limits;
mod memberships;
mod oauth;
pub mod openapi;
mod organizations;
mod paging;
mod paths;
mod respond;
mod user_reads;
mod users;
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
    /// Rate limits on or off (`DESKD_RATE_LIMITS=off` for benchmarks); when on, the three below.
    pub rate_limits: bool,
    /// Account budget, requests a minute (Zendesk Enterprise: 700); `None` for no limit.
    pub account_rate_limit: Option<u32>,
    /// create_or_update / PUT /users/{id} requests a minute per user profile (Zendesk: 5).
    pub profile_rate_limit: Option<u32>,
    /// Failed logins for one email within 5 minutes before further tries get 429.
    pub auth_failure_limit: Option<u32>,
    /// Whether bulk user imports are on while the account setting has not been set.
    pub bulk_import_default: bool,
    /// Job workers in this process.
    pub job_workers: usize,
    /// How long a claimed job stays with its worker without progress before another takes it.
    pub job_lease: Duration,
    /// How long job statuses are kept.
    pub job_retention: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            public_url: None,
            rate_limits: true,
            account_rate_limit: Some(700),
            profile_rate_limit: Some(5),
            auth_failure_limit: Some(10),
            bulk_import_default: true,
            job_workers: 4,
            job_lease: Duration::from_secs(30),
            job_retention: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub logins: auth::LoginCache,
    pub local_addr: SocketAddr,
    /// Wakes an idle job worker when a job is submitted here.
    pub jobs_notify: Arc<tokio::sync::Notify>,
    pub limiter: limits::Limiter,
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
        );
        AppState {
            limiter,
            store,
            config: Arc::new(config),
            logins: auth::LoginCache::default(),
            local_addr,
            jobs_notify: Arc::default(),
        }
    }
}

/// Every route deskd serves, with the layers that must run before routing (`.json` stripped,
/// U+0000 refused), so an embedded router behaves as the served one.
pub fn router(state: AppState) -> Router {
    let routes = routes(state);
    let before_routing = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(paths::refuse_nul))
        .layer(axum::middleware::from_fn(paths::strip_json_suffix))
        .service(routes);
    Router::new().fallback_service(before_routing)
}

fn routes(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(users::routes())
        .merge(organizations::routes())
        .merge(memberships::routes())
        .merge(user_reads::routes())
        .merge(identities::routes())
        .merge(incremental::routes())
        .merge(oauth::routes())
        .merge(api_tokens::routes())
        .merge(bulk::routes())
        .merge(job_statuses::routes())
        .merge(account::routes())
        .merge(openapi::routes())
        .fallback(paths::invalid_endpoint)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::account_limit,
        ))
        .layer(axum::middleware::from_fn(paths::common_headers))
        .layer(axum::middleware::from_fn(paths::log_requests))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains in-flight requests and
/// closes the store.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = worker::spawn(state.clone(), stopped);
    let service = router(state).into_make_service();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await;
    // A worker mid-chunk finishes it; an unfinished job is resumed by the next process.
    let _ = stop.send(true);
    for w in workers {
        let _ = w.await;
    }
    store.close().await;
    served
}
