//! deskd's HTTP server: the Zendesk Support Users API on axum.
//!
//! `router(state)` builds the application; `run(config, listener, shutdown)` serves it until
//! `shutdown` resolves, finishing in-flight requests.

pub mod auth;
pub mod bootstrap;
mod error;
mod extract;
mod health;
mod oauth;
mod paths;
mod respond;
mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use deskd_store::Store;
use tokio::net::TcpListener;
use tower::Layer;

pub use error::ApiError;
pub use extract::MAX_BODY_BYTES;

/// Settings of a running server.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Base for absolute URLs in responses (`https://help.example.com`); else the request's Host.
    pub public_url: Option<String>,
    /// Rate limits on or off (`DESKD_RATE_LIMITS=off` for benchmarks).
    pub rate_limits: bool,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub logins: auth::LoginCache,
    pub local_addr: SocketAddr,
}

impl AppState {
    pub fn new(store: Store, config: Config, local_addr: SocketAddr) -> Self {
        AppState { store, config: Arc::new(config), logins: auth::LoginCache::default(), local_addr }
    }
}

/// Every route deskd serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(users::routes())
        .merge(oauth::routes())
        .fallback(paths::invalid_endpoint)
        .method_not_allowed_fallback(paths::invalid_endpoint)
        .layer(axum::middleware::from_fn(paths::common_headers))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains in-flight requests and
/// closes the store.
pub async fn run(state: AppState, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let store = state.store.clone();
    // `.json` is stripped before routing, so every route answers with and without it.
    let app = axum::middleware::from_fn(paths::strip_json_suffix).layer(router(state));
    let service = axum::ServiceExt::<Request>::into_make_service(app);
    let served = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
    store.close().await;
    served
}
