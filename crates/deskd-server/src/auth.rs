//! Who is calling: Basic `email/token:TOKEN`, Basic `email:password`, or `Bearer TOKEN`.
//!
//! Secrets are compared by digest (tokens) or argon2id (passwords) and never logged. A verified
//! password is remembered for a minute, by digest, so argon2 does not run on every request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, MatchedPath, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use deskd_model::Role;
use deskd_model::role::Actor;
use deskd_store::credentials;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::scopes::Scopes;

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: i64,
    pub role: Role,
    /// What the credential may reach: everything for API tokens and passwords, a bearer token's
    /// OAuth scopes otherwise (checked once per request by [`gate`]).
    pub scopes: Scopes,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id,
            role: self.role,
        }
    }
}

/// A caller this process vouches for: the signed-in user of an admin page, whose request the page
/// hands to the API in-process (`web::api`). Only code can put it in a request's extensions; no
/// request from the network carries it. It skips the account's rate budget, so that the people
/// running deskd can still look at it while integrations spend it.
#[derive(Clone, Debug)]
pub struct Vouched(pub Caller);

/// SHA-256 of a secret, hex: how tokens are stored and looked up.
pub fn digest(secret: &str) -> String {
    digest_bytes(secret.as_bytes())
}

fn digest_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A new random secret: 40 URL-safe characters (240 bits).
pub fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // The thread's generator, or a `--test-seed` run's seeded one (test mode only).
    (0..40)
        .map(|_| ALPHABET[crate::testmode::seeded::below(ALPHABET.len())] as char)
        .collect()
}

/// An argon2id hash (deskd's parameters) of a password nobody has, verified in place of a hash
/// that does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$AoY9pHD4UlTsdhs+n9xnnA$ndqpM9VbO+HrA0qmXn9jFncUTYgjbOkatEJpvVQx5VI";

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Recent successful logins, keyed by a digest of the Authorization header. An entry holds only
/// while the store's credentials epoch is unchanged (any role change, suspension or revocation
/// bumps it) and for at most a minute, so argon2 and the credential lookup do not run on every
/// request while a revocation still takes effect at once.
#[derive(Clone, Default)]
pub struct LoginCache {
    inner: Arc<Mutex<HashMap<String, (Caller, u64, Instant)>>>,
}

const LOGIN_CACHE_TTL: Duration = Duration::from_secs(60);
const LOGIN_CACHE_MAX: usize = 100_000;

impl LoginCache {
    fn get(&self, key: &str, epoch: u64) -> Option<Caller> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((caller, e, expires)) if *e == epoch && *expires > Instant::now() => {
                Some(caller.clone())
            }
            _ => None,
        }
    }

    fn put(&self, key: String, caller: Caller, epoch: u64) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= LOGIN_CACHE_MAX {
            let now = Instant::now();
            map.retain(|_, (_, e, exp)| *e == epoch && *exp > now);
            if map.len() >= LOGIN_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(key, (caller, epoch, Instant::now() + LOGIN_CACHE_TTL));
    }
}

enum Credentials {
    Token { email: String, token: String },
    Password { email: String, password: String },
    Bearer(String),
}

/// Reads the Authorization header. `Ok(None)` when there is none; a malformed one is a 401.
fn parse_header(parts: &Parts) -> Result<Option<Credentials>, ApiError> {
    let Some(raw) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let raw = raw.to_str().map_err(|_| ApiError::Unauthorized)?.trim();
    let (scheme, rest) = raw.split_once(' ').ok_or(ApiError::Unauthorized)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(ApiError::InvalidToken);
        }
        return Ok(Some(Credentials::Bearer(rest.to_owned())));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::Unauthorized);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .map_err(|_| ApiError::Unauthorized)?;
    let decoded = String::from_utf8(decoded).map_err(|_| ApiError::Unauthorized)?;
    let (user, secret) = decoded.split_once(':').ok_or(ApiError::Unauthorized)?;
    // No email has control characters (a NUL would not even reach PostgreSQL).
    if secret.is_empty() || user.chars().any(char::is_control) {
        return Err(ApiError::Unauthorized);
    }
    Ok(Some(match user.strip_suffix("/token") {
        Some(email) if !email.is_empty() => Credentials::Token {
            email: email.to_owned(),
            token: secret.to_owned(),
        },
        _ if user.is_empty() => return Err(ApiError::Unauthorized),
        _ => Credentials::Password {
            email: user.to_owned(),
            password: secret.to_owned(),
        },
    }))
}

/// Authenticates the request; `Ok(None)` for an anonymous one.
pub async fn authenticate(app: &AppState, parts: &Parts) -> Result<Option<Caller>, ApiError> {
    if let Some(Vouched(caller)) = parts.extensions.get::<Vouched>() {
        return Ok(Some(caller.clone()));
    }
    let Some(creds) = parse_header(parts)? else {
        return Ok(None);
    };
    let epoch = app.store.credentials_epoch();
    let key = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|h| digest_bytes(h.as_bytes()))
        .unwrap_or_default();
    if let Some(caller) = app.logins.get(&key, epoch) {
        return Ok(Some(caller));
    }
    // A password costs an argon2 computation: an address that has spent its budget of failed
    // requests is refused before it gets one more (tokens are cheap to check and still work).
    if let (Credentials::Password { .. }, Some(rate)) = (&creds, app.limiter.anonymous) {
        let bucket = anonymous_bucket(client_ip(parts));
        if let Some(d) = app.limiter.would_refuse(&app.store, &bucket, rate).await? {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: d.retry_after_secs,
                text: "Too many unauthenticated requests from this address. Retry later.",
            });
        }
    }
    // Failed password logins are counted per email and client address: a stranger guessing from
    // elsewhere slows down himself, not the owner, and API tokens and bearer tokens (240 random
    // bits, looked up by digest) are never throttled by password failures. The attempt is taken
    // from the bucket before the password is checked, in one atomic step, so that a burst of
    // concurrent guesses cannot all pass a check made before any of them is counted; a login that
    // succeeds (or is never evaluated) gives its attempt back. Past the limit every password try
    // from that address answers 429 until the bucket drains.
    let throttle = match (&creds, app.limiter.auth_failures) {
        (Credentials::Password { email, .. }, Some(rate)) => Some((
            // A digest: the key stays short and plain whatever the client put in the email.
            format!(
                "authfail:{}:{}",
                client_ip(parts),
                &digest(&deskd_model::text::normalize(email))[..32]
            ),
            rate,
        )),
        _ => None,
    };
    if let Some((bucket, rate)) = &throttle {
        let d = app.limiter.take(&app.store, bucket, *rate).await?;
        if !d.allowed {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: d.retry_after_secs,
                text: "Too many failed login attempts for this user. Retry later.",
            });
        }
    }
    let kind = match &creds {
        Credentials::Token { .. } => "api_token",
        Credentials::Password { .. } => "password",
        Credentials::Bearer(_) => "bearer",
    };
    let outcome = verify(app, creds).await;
    if matches!(
        outcome,
        Err(ApiError::Unauthorized | ApiError::InvalidToken)
    ) {
        app.metrics.login_failure(kind);
    }
    if let (Some((bucket, rate)), false) = (
        &throttle,
        matches!(
            outcome,
            Err(ApiError::Unauthorized | ApiError::InvalidToken)
        ),
    ) {
        if let Err(e) = app.limiter.refund(&app.store, bucket, *rate).await {
            tracing::warn!(error = %e, "failed-login bucket refund failed");
        }
    }
    let caller = outcome?;
    app.logins.put(key, caller.clone(), epoch);
    Ok(Some(caller))
}

/// Runs an argon2 computation (19 MiB each) on the blocking pool, at most
/// `Config::password_verifications` at once. A caller that finds every permit taken waits up to
/// `Config::password_wait`, then gets a 429: a flood of logins queues neither without end nor
/// past a bounded amount of memory.
pub async fn with_argon2<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let permit = match tokio::time::timeout(
        app.config.password_wait,
        app.argon2_permits.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        _ => {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: 1,
                text: "Too many password logins in progress. Retry later.",
            });
        }
    };
    tokio::task::spawn_blocking(move || {
        let out = f();
        drop(permit);
        out
    })
    .await
    .map_err(|e| ApiError::internal(e))
}

async fn verify(app: &AppState, creds: Credentials) -> Result<Caller, ApiError> {
    let mut conn = app.store.priority_reader().await?;
    let caller = match creds {
        Credentials::Token { email, token } => {
            let p = credentials::principal_by_email(&mut conn, &email, &digest(&token)).await?;
            match p {
                Some(p) if p.token_ok && p.active && !p.suspended => Caller {
                    user_id: p.user_id,
                    role: p.role,
                    scopes: Scopes::FULL,
                },
                _ => return Err(ApiError::Unauthorized),
            }
        }
        Credentials::Password { email, password } => {
            let p = credentials::principal_by_email(&mut conn, &email, "").await?;
            drop(conn);
            // Unknown emails, users without a password and suspended users cost one argon2
            // verification too (against a hash of nobody's password), so that the time of a
            // failed login does not tell who exists or has a password.
            let hash = p
                .as_ref()
                .and_then(|p| p.password_hash.clone())
                .unwrap_or_else(|| DUMMY_HASH.to_owned());
            let verified = with_argon2(app, move || verify_password(&password, &hash)).await?;
            match p {
                Some(p) if verified && p.password_hash.is_some() && p.active && !p.suspended => {
                    Caller {
                        user_id: p.user_id,
                        role: p.role,
                        scopes: Scopes::FULL,
                    }
                }
                _ => return Err(ApiError::Unauthorized),
            }
        }
        Credentials::Bearer(token) => {
            match credentials::principal_by_bearer(&mut conn, &digest(&token)).await? {
                Some((p, scopes)) if p.active && !p.suspended => Caller {
                    user_id: p.user_id,
                    role: p.role,
                    scopes: Scopes::from_list(&scopes),
                },
                _ => return Err(ApiError::InvalidToken),
            }
        }
    };
    Ok(caller)
}

/// What [`gate`] learnt of a request's credentials; the extractors below read it.
#[derive(Clone)]
enum Outcome {
    Anonymous,
    Caller(Caller),
    Unauthorized,
    InvalidToken,
}

impl Outcome {
    fn result(&self) -> Result<Option<Caller>, ApiError> {
        match self {
            Outcome::Anonymous => Ok(None),
            Outcome::Caller(c) => Ok(Some(c.clone())),
            Outcome::Unauthorized => Err(ApiError::Unauthorized),
            Outcome::InvalidToken => Err(ApiError::InvalidToken),
        }
    }
}

/// The address a request came from (its TCP peer), with IPv6 addresses reduced to their /64, the
/// block one host is usually given; unspecified when the server was not started with it.
pub fn client_ip(parts: &Parts) -> IpAddr {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The bucket of unauthenticated and failed-auth requests from one client address.
fn anonymous_bucket(ip: IpAddr) -> String {
    format!("anon:{ip}")
}

/// Authenticates every `/api/` request once, before its handler, and spends the right budget:
/// an authenticated request takes from the account's (and carries its headers), anything else
/// (no credentials, wrong ones, throttled ones) from its client address's, so that strangers can
/// never exhaust what the account's integrations may spend. Then it checks the credential's
/// scopes against the route axum matched (`scopes::ROUTES`). Bad credentials are answered by the
/// extractors of the routes that need a caller (so an unknown path stays a 404); throttled
/// logins, a busy password check and missing scopes are answered here.
pub async fn gate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let result = authenticate(&app, &parts).await;
    let caller = match result {
        Ok(Some(caller)) => caller,
        other => {
            if let Some(rate) = app.limiter.anonymous {
                let bucket = anonymous_bucket(client_ip(&parts));
                match app.limiter.take(&app.store, &bucket, rate).await {
                    Ok(d) if !d.allowed => {
                        return crate::respond::too_many_requests(
                            d.retry_after_secs,
                            "Too many unauthenticated requests from this address. Retry later.",
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "anonymous rate limit unavailable"),
                }
            }
            let outcome = match other {
                Ok(_) => Outcome::Anonymous,
                Err(ApiError::Unauthorized) => Outcome::Unauthorized,
                Err(ApiError::InvalidToken) => Outcome::InvalidToken,
                Err(e) => return e.into_response(),
            };
            parts.extensions.insert(outcome);
            return next.run(Request::from_parts(parts, body)).await;
        }
    };
    let vouched = parts.extensions.get::<Vouched>().is_some();
    let decision = match app.limiter.account.filter(|_| !vouched) {
        Some(rate) => match app.limiter.take(&app.store, "account", rate).await {
            Ok(d) => Some(d),
            Err(e) => {
                // A limiter that cannot reach its store lets the request through rather than fail it.
                tracing::warn!(error = %e, "account rate limit unavailable");
                None
            }
        },
        None => None,
    };
    let pattern = parts.extensions.get::<MatchedPath>().cloned();
    let mut resp = if decision.is_some_and(|d| !d.allowed) {
        crate::respond::too_many_requests(
            decision.map_or(1, |d| d.retry_after_secs),
            "Number of allowed API requests per minute exceeded",
        )
    } else if let Err(e) = pattern
        // Unmatched paths (the 404 fallback) have nothing to protect.
        .map_or(Ok(()), |p| {
            caller.scopes.check(&parts.method, Some(p.as_str()))
        })
    {
        e.into_response()
    } else {
        parts.extensions.insert(Outcome::Caller(caller));
        next.run(Request::from_parts(parts, body)).await
    };
    if let Some(d) = &decision {
        crate::limits::account_headers(resp.headers_mut(), d);
    }
    resp
}

/// The caller of this request, as [`gate`] found it (or, outside the gate, authenticated and
/// scope-checked here).
async fn caller_of(app: &AppState, parts: &Parts) -> Result<Option<Caller>, ApiError> {
    if let Some(outcome) = parts.extensions.get::<Outcome>() {
        return outcome.result();
    }
    let caller = authenticate(app, parts).await?;
    if let Some(c) = &caller {
        let pattern = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        c.scopes.check(&parts.method, pattern)?;
    }
    Ok(caller)
}

/// Any authenticated user; anonymous requests are 401.
impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        caller_of(&app, parts).await?.ok_or(ApiError::Unauthorized)
    }
}

/// An authenticated caller or nobody (for endpoints anonymous users may call).
pub struct MaybeCaller(pub Option<Caller>);

impl<S> FromRequestParts<S> for MaybeCaller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        Ok(MaybeCaller(caller_of(&app, parts).await?))
    }
}

/// An agent or admin; end users get 403.
pub struct Staff(pub Caller);

impl<S> FromRequestParts<S> for Staff
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role.is_staff() {
            Ok(Staff(caller))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// An admin; everyone else gets 403.
pub struct Admin(pub Caller);

impl<S> FromRequestParts<S> for Admin
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role == Role::Admin {
            Ok(Admin(caller))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("s3cret!").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("s3cret!", &h));
        assert!(!verify_password("wrong", &h));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        assert!(DUMMY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password("", DUMMY_HASH));
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
    }
}
