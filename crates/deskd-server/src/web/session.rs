//! Signing in and out of the admin pages, the session cookie, and CSRF tokens.
//!
//! Sign-in hands the email and password to the API itself (`GET /api/v2/users/me` with Basic
//! credentials, from the client's own address), so the credential check, the failed-login throttle
//! and the argon2 budget are the API's. The session then stands for that credential: it holds
//! while `deskd_model::session::holds` says so, checked against the store whenever the credentials
//! epoch moves (any write that takes access away bumps it, sign-out included) and at least once
//! a minute. The cookie carries a random secret; the store keeps only its digest. Each session's
//! CSRF token is derived from that secret, so nothing more is stored; the sign-in form, before
//! there is a session, uses a double-submit cookie.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use deskd_model::Role;
use deskd_model::session::{self as rules, Opened};
use deskd_store::{credentials, sessions};
use maud::html;
use serde::Deserialize;

use super::Web;
use super::layout::{self, see_other};
use crate::auth::{Caller, digest, new_secret};
use crate::scopes::Scopes;

pub const COOKIE: &str = "deskd_session";
const LOGIN_COOKIE: &str = "deskd_login";
/// How long a checked session is trusted without asking the store again, epoch unchanged.
const RECHECK: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 10_000;

/// The signed-in user of a page request.
#[derive(Clone, Debug)]
pub struct Signed {
    pub caller: Caller,
    pub name: String,
    /// The token every form of this session carries.
    pub csrf: String,
    digest: String,
    /// The request's Host and client address, for the API requests made on its behalf.
    pub host: Option<HeaderValue>,
    pub peer: Option<ConnectInfo<SocketAddr>>,
}

impl Signed {
    pub fn is_admin(&self) -> bool {
        self.caller.role == Role::Admin
    }

    /// The refusal (403, nothing done) of a form whose token is not this session's; `None` when
    /// the token is right.
    pub fn refuse_csrf(&self, web: &Web, given: Option<&str>) -> Option<Response> {
        if given.is_some_and(|g| same(g, &self.csrf)) {
            None
        } else {
            Some(layout::problem(
                web,
                Some(self),
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form's security token did not match your session. Reload the page and try again.",
            ))
        }
    }
}

/// Sessions checked recently, by digest, valid for the epoch they were checked in.
#[derive(Clone, Default)]
pub struct Cache {
    inner: Arc<Mutex<HashMap<String, Checked>>>,
}

/// A session as checked: in which epoch, and when.
type Checked = (Signed, u64, Instant);

impl Cache {
    fn get(&self, digest: &str, epoch: u64) -> Option<Signed> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(digest) {
            Some((s, e, at)) if *e == epoch && at.elapsed() < RECHECK => Some(s.clone()),
            _ => None,
        }
    }

    fn put(&self, s: &Signed, epoch: u64) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_MAX {
            map.retain(|_, (_, e, at)| *e == epoch && at.elapsed() < RECHECK);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(s.digest.clone(), (s.clone(), epoch, Instant::now()));
    }

    fn remove(&self, digest: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest);
    }
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn csrf_for(secret: &str) -> String {
    digest(&format!("csrf:{secret}"))[..32].to_owned()
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `Secure` when the pages are reached over TLS: a public URL in https, or a proxy in front
/// saying so.
fn secure(web: &Web, headers: &HeaderMap) -> bool {
    web.app
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("deskd_invalid=1"))
}

/// Where to go after signing in: a path of the admin pages only (never another site).
fn next_path(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if (p == "/admin" || p.starts_with("/admin/"))
                && !p.contains("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/admin/users".to_owned(),
    }
}

/// The sign-in page for a request without a (valid) session, coming back to it afterwards.
fn to_sign_in(parts: &Parts, clear: bool) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|_| parts.method == Method::GET)
        .unwrap_or("/admin/users");
    let next: String =
        url::form_urlencoded::byte_serialize(next_path(Some(here)).as_bytes()).collect();
    let mut resp = see_other(&format!("/admin/login?next={next}"));
    if clear {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie(COOKIE, "", "/admin", 0, false),
        );
    }
    resp
}

impl FromRequestParts<Web> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        let Some(secret) = cookie(&parts.headers, COOKIE) else {
            return Err(to_sign_in(parts, false));
        };
        match resolve(web, &secret, parts).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(to_sign_in(parts, true)),
            Err(e) => Err(layout::internal(e)),
        }
    }
}

/// The session named by `secret`, if it still holds; one that no longer does is deleted.
async fn resolve(
    web: &Web,
    secret: &str,
    parts: &Parts,
) -> Result<Option<Signed>, crate::ApiError> {
    let d = digest(secret);
    let host = parts.headers.get(header::HOST).cloned();
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned();
    let epoch = web.app.store.credentials_epoch();
    if let Some(mut s) = web.sessions.get(&d, epoch) {
        s.host = host;
        s.peer = peer;
        return Ok(Some(s));
    }
    let mut conn = web.app.store.reader().await?;
    let Some((mut found, hash)) = sessions::load(&mut conn, &d).await? else {
        return Ok(None);
    };
    drop(conn);
    if let Some(u) = found.user.as_mut() {
        u.password_digest = hash.as_deref().map(digest);
    }
    if !rules::holds(&found.opened, found.user.as_ref(), deskd_model::time::now()) {
        end(web, &d).await?;
        return Ok(None);
    }
    let mut s = Signed {
        caller: Caller {
            user_id: found.user_id,
            role: found.opened.role,
            scopes: Scopes::FULL,
        },
        name: String::new(),
        csrf: csrf_for(secret),
        digest: d,
        host,
        peer,
    };
    let me = super::api::Api::new(web, &s)
        .get(&format!("/api/v2/users/{}", found.user_id))
        .await?;
    s.name = me.body["user"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    web.sessions.put(&s, epoch);
    Ok(Some(s))
}

/// Deletes the session (bumping the credentials epoch, so every process forgets it).
async fn end(web: &Web, d: &str) -> Result<(), crate::ApiError> {
    web.sessions.remove(d);
    let owned = d.to_owned();
    web.app
        .store
        .write(move |conn| {
            let d = owned.clone();
            Box::pin(async move { sessions::delete(conn, &d).await })
        })
        .await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    done: Option<String>,
}

pub async fn login_form(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let notice = (q.done.as_deref() == Some("signed_out")).then_some("You are signed out.");
    sign_in_page(
        &web,
        &headers,
        StatusCode::OK,
        q.next.as_deref(),
        notice,
        None,
        "",
    )
}

/// The sign-in form, with a fresh double-submit token in a cookie of the form's own path.
fn sign_in_page(
    web: &Web,
    headers: &HeaderMap,
    status: StatusCode,
    next: Option<&str>,
    notice: Option<&str>,
    error: Option<&str>,
    email: &str,
) -> Response {
    let nonce = new_secret();
    let body = html! {
        section.signin {
            h1 { "Sign in to deskd" }
            @if let Some(n) = notice { p.notice { (n) } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/admin/login" {
                input type="hidden" name="_csrf" value=(nonce);
                input type="hidden" name="next" value=(next_path(next));
                label { "Email" input type="email" name="email" value=(email) autocomplete="username" required autofocus[email.is_empty()]; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required autofocus[!email.is_empty()]; }
                button type="submit" { "Sign in" }
            }
            p.hint { "Agents and admins sign in with their deskd email and password." }
        }
    };
    let mut resp = layout::html(status, layout::page(web, None, "Sign in", body));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &nonce,
            "/admin/login",
            3600,
            secure(web, headers),
        ),
    );
    resp
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: Option<String>,
    password: Option<String>,
    _csrf: Option<String>,
    next: Option<String>,
}

pub async fn login(State(web): State<Web>, parts: Parts, Form(f): Form<LoginForm>) -> Response {
    let headers = &parts.headers;
    let fail = |status, msg: &str| {
        sign_in_page(
            &web,
            headers,
            status,
            f.next.as_deref(),
            None,
            Some(msg),
            f.email.as_deref().unwrap_or(""),
        )
    };
    let nonce_ok = matches!(
        (cookie(headers, LOGIN_COOKIE), f._csrf.as_deref()),
        (Some(c), Some(g)) if same(&c, g)
    );
    if !nonce_ok {
        return fail(
            StatusCode::FORBIDDEN,
            "The sign-in form expired. Please try again.",
        );
    }
    let (email, password) = (
        f.email.as_deref().unwrap_or("").trim(),
        f.password.as_deref().unwrap_or(""),
    );
    // The API reads `EMAIL/token` as an API token login and `:` ends the email; neither is an
    // email, and a session opens with a password only.
    if email.is_empty() || password.is_empty() || email.contains(':') || email.ends_with("/token") {
        return fail(StatusCode::UNAUTHORIZED, "Invalid email or password.");
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{email}:{password}"));
    let answer = super::api::Api::anonymous(
        &web,
        parts.headers.get(header::HOST).cloned(),
        parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
    )
    .with_authorization(&format!("Basic {basic}"))
    .get("/api/v2/users/me")
    .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return layout::internal(e),
    };
    match answer.status {
        StatusCode::OK => {}
        StatusCode::TOO_MANY_REQUESTS => {
            let secs = answer.retry_after.unwrap_or(60);
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed sign-ins. Try again in {secs} seconds."),
            );
        }
        StatusCode::UNAUTHORIZED => {
            return fail(StatusCode::UNAUTHORIZED, "Invalid email or password.");
        }
        s => return fail(s, &answer.problem()),
    }
    let user = &answer.body["user"];
    let (Some(user_id), Some(role)) = (
        user["id"].as_i64(),
        user["role"].as_str().and_then(Role::parse),
    ) else {
        return fail(StatusCode::UNAUTHORIZED, "Invalid email or password.");
    };
    if !rules::may_sign_in(role) {
        return fail(
            StatusCode::FORBIDDEN,
            "These pages are for agents and admins.",
        );
    }
    match open(&web, user_id, role).await {
        Ok(secret) => {
            let mut resp = see_other(&next_path(f.next.as_deref()));
            let tls = secure(&web, headers);
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(COOKIE, &secret, "/admin", rules::LIFETIME_SECS, tls),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_COOKIE, "", "/admin/login", 0, tls),
            );
            resp
        }
        Err(e) => layout::internal(e),
    }
}

/// Opens a session for a user who just proved their password; returns the cookie's secret.
async fn open(web: &Web, user_id: i64, role: Role) -> Result<String, crate::ApiError> {
    let mut conn = web.app.store.reader().await?;
    let hash = credentials::principal_by_id(&mut conn, user_id)
        .await?
        .and_then(|p| p.password_hash)
        .ok_or(crate::ApiError::Unauthorized)?;
    drop(conn);
    let secret = new_secret();
    let now = deskd_model::time::now();
    let opened = Opened {
        role,
        password_digest: digest(&hash),
        expires_at: now + rules::LIFETIME_SECS,
    };
    let d = digest(&secret);
    web.app
        .store
        .write(move |conn| {
            let (d, opened) = (d.clone(), opened.clone());
            Box::pin(async move { sessions::insert(conn, &d, user_id, &opened, now).await })
        })
        .await?;
    Ok(secret)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    _csrf: Option<String>,
}

pub async fn logout(
    State(web): State<Web>,
    signed: Signed,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Some(resp) = signed.refuse_csrf(&web, f._csrf.as_deref()) {
        return resp;
    }
    if let Err(e) = end(&web, &signed.digest).await {
        return layout::internal(e);
    }
    let mut resp = see_other("/admin/login?done=signed_out");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", "/admin", 0, secure(&web, &headers)),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_admin_pages() {
        assert_eq!(next_path(Some("/admin/users?q=a")), "/admin/users?q=a");
        for bad in [
            "https://evil.example/",
            "//evil.example/admin",
            "/admin//evil",
            "/admin\\..",
            "/administrator",
            "/api/v2/users",
        ] {
            assert_eq!(next_path(Some(bad)), "/admin/users", "{bad}");
        }
        assert_eq!(next_path(None), "/admin/users");
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xdeskd_session=no; deskd_session=yes; other=1"),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("yes"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_eq!(csrf_for("s").len(), 32);
        assert_ne!(csrf_for("s"), csrf_for("t"));
    }
}
