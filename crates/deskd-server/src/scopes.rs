//! OAuth scopes of bearer tokens, as Zendesk defines them, and the one table that says which
//! scope reaches which route.
//!
//! Zendesk's scopes are `read` (GET endpoints), `write` (POST, PUT, DELETE endpoints), and
//! resource scopes `RESOURCE:read` / `RESOURCE:write`; a bare `RESOURCE` means both levels. deskd
//! serves two of Zendesk's resources, `users` and `organizations`. A resource scope reaches only
//! that resource's endpoints:
//!
//! - `users` — `/users…` (reads, writes, bulk jobs, `/users/me`), `/deleted_users…`,
//!   `/organizations/{id}/users` (documented among Zendesk's Users endpoints), users' tags,
//!   autocomplete, related and merge, organization memberships (`/organization_memberships…`,
//!   `/users/{id}/organization_memberships…`, `/users/{id}/organizations…`,
//!   `/organizations/{id}/organization_memberships`), and
//!   `/job_statuses…` (the bulk user jobs a `users:write` token submits), and `/user_fields…`;
//! - `organizations` — `/organizations…` (its tags, bulk jobs, autocomplete, count, related too)
//!   except its users and memberships, and `/organization_fields…`.
//!
//! User identities are not reached by the `users` scopes: Zendesk answers a `users:write` token on
//! an identity endpoint with "You are missing the following required scopes: write", and has no
//! identities scope. Neither are the unified search (`/search…`, which spans resources), the
//! incremental export and account settings: only the broad
//! `read` / `write` scopes reach them. Credentials (API tokens, OAuth tokens, passwords) need
//! both `read` and `write`, so no token can mint, read or revoke a credential broader than itself.
//!
//! The check runs once per request, in [`crate::auth::gate`], on the route axum matched. A route
//! missing from [`ROUTES`] is reached by the broad scopes only (fail closed).

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::error::ApiError;

/// Who may reach a route with a bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// No scope needed (the OpenAPI document).
    Open,
    /// The `users` resource: `users:read` / `users:write`, or the broad scopes.
    Users,
    /// The `organizations` resource: `organizations:read` / `organizations:write`, or the broad
    /// scopes.
    Organizations,
    /// The broad `read` / `write` scopes only: no resource scope reaches it.
    Broad,
    /// Credentials: `read` and `write` both, whatever the method.
    Credentials,
}

/// Every `/api/v2` route (axum's pattern, before the `.json` suffix) with the scope that reaches
/// it. A GET needs the read level, anything else the write level.
pub const ROUTES: &[(&str, &str, Reach)] = &[
    // Users
    ("GET", "/api/v2/users", Reach::Users),
    ("POST", "/api/v2/users", Reach::Users),
    ("GET", "/api/v2/users/me", Reach::Users),
    ("GET", "/api/v2/users/show_many", Reach::Users),
    ("GET", "/api/v2/users/search", Reach::Users),
    ("GET", "/api/v2/users/count", Reach::Users),
    ("POST", "/api/v2/users/create_or_update", Reach::Users),
    ("POST", "/api/v2/users/create_or_update_many", Reach::Users),
    ("POST", "/api/v2/users/create_many", Reach::Users),
    ("PUT", "/api/v2/users/update_many", Reach::Users),
    ("DELETE", "/api/v2/users/destroy_many", Reach::Users),
    ("GET", "/api/v2/users/{id}", Reach::Users),
    ("PUT", "/api/v2/users/{id}", Reach::Users),
    ("DELETE", "/api/v2/users/{id}", Reach::Users),
    ("GET", "/api/v2/deleted_users", Reach::Users),
    ("GET", "/api/v2/deleted_users/count", Reach::Users),
    ("GET", "/api/v2/deleted_users/{id}", Reach::Users),
    ("DELETE", "/api/v2/deleted_users/{id}", Reach::Users),
    ("GET", "/api/v2/organizations/{id}/users", Reach::Users),
    ("GET", "/api/v2/users/autocomplete", Reach::Users),
    ("GET", "/api/v2/users/{id}/related", Reach::Users),
    ("PUT", "/api/v2/users/{id}/merge", Reach::Users),
    ("GET", "/api/v2/users/{id}/tags", Reach::Users),
    ("PUT", "/api/v2/users/{id}/tags", Reach::Users),
    ("POST", "/api/v2/users/{id}/tags", Reach::Users),
    ("DELETE", "/api/v2/users/{id}/tags", Reach::Users),
    ("GET", "/api/v2/job_statuses", Reach::Users),
    ("GET", "/api/v2/job_statuses/show_many", Reach::Users),
    ("GET", "/api/v2/job_statuses/{id}", Reach::Users),
    ("GET", "/api/v2/job_statuses/{id}/events", Reach::Users),
    // Organizations
    ("GET", "/api/v2/organizations", Reach::Organizations),
    ("POST", "/api/v2/organizations", Reach::Organizations),
    (
        "POST",
        "/api/v2/organizations/create_or_update",
        Reach::Organizations,
    ),
    (
        "GET",
        "/api/v2/organizations/show_many",
        Reach::Organizations,
    ),
    ("GET", "/api/v2/organizations/search", Reach::Organizations),
    ("GET", "/api/v2/organizations/{id}", Reach::Organizations),
    ("PUT", "/api/v2/organizations/{id}", Reach::Organizations),
    ("DELETE", "/api/v2/organizations/{id}", Reach::Organizations),
    (
        "GET",
        "/api/v2/organizations/{id}/tags",
        Reach::Organizations,
    ),
    (
        "PUT",
        "/api/v2/organizations/{id}/tags",
        Reach::Organizations,
    ),
    (
        "POST",
        "/api/v2/organizations/{id}/tags",
        Reach::Organizations,
    ),
    (
        "DELETE",
        "/api/v2/organizations/{id}/tags",
        Reach::Organizations,
    ),
    // Organizations in bulk (the organizations resource) and memberships: a membership is
    // part of its user (`user.organization_id` is the default one), so the users resource.
    (
        "POST",
        "/api/v2/organizations/create_many",
        Reach::Organizations,
    ),
    (
        "PUT",
        "/api/v2/organizations/update_many",
        Reach::Organizations,
    ),
    (
        "DELETE",
        "/api/v2/organizations/destroy_many",
        Reach::Organizations,
    ),
    (
        "GET",
        "/api/v2/organizations/autocomplete",
        Reach::Organizations,
    ),
    ("GET", "/api/v2/organizations/count", Reach::Organizations),
    (
        "GET",
        "/api/v2/organizations/{id}/related",
        Reach::Organizations,
    ),
    (
        "GET",
        "/api/v2/organizations/{id}/organization_memberships",
        Reach::Users,
    ),
    ("GET", "/api/v2/organization_memberships", Reach::Users),
    ("POST", "/api/v2/organization_memberships", Reach::Users),
    (
        "POST",
        "/api/v2/organization_memberships/create_many",
        Reach::Users,
    ),
    (
        "DELETE",
        "/api/v2/organization_memberships/destroy_many",
        Reach::Users,
    ),
    ("GET", "/api/v2/organization_memberships/{id}", Reach::Users),
    (
        "DELETE",
        "/api/v2/organization_memberships/{id}",
        Reach::Users,
    ),
    (
        "GET",
        "/api/v2/users/{user_id}/organization_memberships",
        Reach::Users,
    ),
    (
        "POST",
        "/api/v2/users/{user_id}/organization_memberships",
        Reach::Users,
    ),
    (
        "GET",
        "/api/v2/users/{user_id}/organization_memberships/{id}",
        Reach::Users,
    ),
    (
        "DELETE",
        "/api/v2/users/{user_id}/organization_memberships/{id}",
        Reach::Users,
    ),
    (
        "PUT",
        "/api/v2/users/{user_id}/organization_memberships/{id}/make_default",
        Reach::Users,
    ),
    ("GET", "/api/v2/users/{user_id}/organizations", Reach::Users),
    (
        "PUT",
        "/api/v2/users/{user_id}/organizations/{id}/make_default",
        Reach::Users,
    ),
    (
        "DELETE",
        "/api/v2/users/{user_id}/organizations/{id}",
        Reach::Users,
    ),
    // Custom fields: user fields are the users resource, organization fields organizations'.
    ("GET", "/api/v2/user_fields", Reach::Users),
    ("POST", "/api/v2/user_fields", Reach::Users),
    ("PUT", "/api/v2/user_fields/reorder", Reach::Users),
    ("GET", "/api/v2/user_fields/{id}", Reach::Users),
    ("PUT", "/api/v2/user_fields/{id}", Reach::Users),
    ("DELETE", "/api/v2/user_fields/{id}", Reach::Users),
    ("GET", "/api/v2/user_fields/{id}/options", Reach::Users),
    ("POST", "/api/v2/user_fields/{id}/options", Reach::Users),
    (
        "GET",
        "/api/v2/user_fields/{id}/options/{option_id}",
        Reach::Users,
    ),
    (
        "DELETE",
        "/api/v2/user_fields/{id}/options/{option_id}",
        Reach::Users,
    ),
    ("GET", "/api/v2/organization_fields", Reach::Organizations),
    ("POST", "/api/v2/organization_fields", Reach::Organizations),
    (
        "PUT",
        "/api/v2/organization_fields/reorder",
        Reach::Organizations,
    ),
    (
        "GET",
        "/api/v2/organization_fields/{id}",
        Reach::Organizations,
    ),
    (
        "PUT",
        "/api/v2/organization_fields/{id}",
        Reach::Organizations,
    ),
    (
        "DELETE",
        "/api/v2/organization_fields/{id}",
        Reach::Organizations,
    ),
    // The unified search spans resources: the broad scopes only.
    ("GET", "/api/v2/search", Reach::Broad),
    ("GET", "/api/v2/search/count", Reach::Broad),
    ("GET", "/api/v2/search/export", Reach::Broad),
    // Identities: no resource scope (see above).
    ("GET", "/api/v2/users/{user_id}/identities", Reach::Broad),
    ("POST", "/api/v2/users/{user_id}/identities", Reach::Broad),
    (
        "GET",
        "/api/v2/users/{user_id}/identities/{id}",
        Reach::Broad,
    ),
    (
        "PUT",
        "/api/v2/users/{user_id}/identities/{id}",
        Reach::Broad,
    ),
    (
        "DELETE",
        "/api/v2/users/{user_id}/identities/{id}",
        Reach::Broad,
    ),
    (
        "PUT",
        "/api/v2/users/{user_id}/identities/{id}/make_primary",
        Reach::Broad,
    ),
    (
        "PUT",
        "/api/v2/users/{user_id}/identities/{id}/verify",
        Reach::Broad,
    ),
    (
        "PUT",
        "/api/v2/users/{user_id}/identities/{id}/request_verification",
        Reach::Broad,
    ),
    // The whole account's data, credentials and settings.
    ("GET", "/api/v2/incremental/users/cursor", Reach::Broad),
    ("GET", "/api/v2/incremental/users", Reach::Broad),
    ("GET", "/api/v2/incremental/organizations", Reach::Broad),
    ("GET", "/api/v2/api_tokens", Reach::Credentials),
    ("POST", "/api/v2/api_tokens", Reach::Credentials),
    ("GET", "/api/v2/api_tokens/{id}", Reach::Credentials),
    ("DELETE", "/api/v2/api_tokens/{id}", Reach::Credentials),
    ("POST", "/api/v2/oauth/tokens", Reach::Credentials),
    ("DELETE", "/api/v2/oauth/tokens/{id}", Reach::Credentials),
    ("PUT", "/api/v2/users/{id}/password", Reach::Credentials),
    ("POST", "/api/v2/users/{id}/password", Reach::Credentials),
    (
        "GET",
        "/api/v2/users/{id}/password/requirements",
        Reach::Credentials,
    ),
    ("GET", "/api/v2/account/settings", Reach::Broad),
    ("PUT", "/api/v2/account/settings", Reach::Broad),
    ("GET", "/api/v2/openapi", Reach::Open),
];

/// Who reaches `pattern` (a route as axum matched it) with `method`; `Broad` for anything not in
/// the table.
pub fn reach(method: &Method, pattern: Option<&str>) -> Reach {
    let method = if *method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    pattern
        .and_then(|p| {
            ROUTES
                .iter()
                .find(|(m, path, _)| *m == method && *path == p)
        })
        .map_or(Reach::Broad, |(_, _, reach)| *reach)
}

/// The scopes a credential carries, as a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    const READ: u8 = 1;
    const WRITE: u8 = 2;
    const USERS_READ: u8 = 4;
    const USERS_WRITE: u8 = 8;
    const ORGS_READ: u8 = 16;
    const ORGS_WRITE: u8 = 32;

    /// API tokens and passwords: everything the role allows.
    pub const FULL: Scopes = Scopes(Self::READ | Self::WRITE);

    fn bits(scope: &str) -> Option<u8> {
        Some(match scope {
            "read" => Self::READ,
            "write" => Self::WRITE,
            "users:read" => Self::USERS_READ,
            "users:write" => Self::USERS_WRITE,
            "users" => Self::USERS_READ | Self::USERS_WRITE,
            "organizations:read" => Self::ORGS_READ,
            "organizations:write" => Self::ORGS_WRITE,
            "organizations" => Self::ORGS_READ | Self::ORGS_WRITE,
            _ => return None,
        })
    }

    /// Whether deskd knows `scope` (what `POST /oauth/tokens` accepts).
    pub fn known(scope: &str) -> bool {
        Self::bits(scope).is_some()
    }

    /// The set a stored token's scope list grants; unknown entries grant nothing.
    pub fn from_list<S: AsRef<str>>(scopes: &[S]) -> Scopes {
        Scopes(
            scopes
                .iter()
                .filter_map(|s| Self::bits(s.as_ref()))
                .fold(0, |a, b| a | b),
        )
    }

    /// Whether these scopes reach a route of `reach` at the read or the write level.
    pub fn allow(self, reach: Reach, write: bool) -> bool {
        let (broad, users, orgs) = if write {
            (Self::WRITE, Self::USERS_WRITE, Self::ORGS_WRITE)
        } else {
            (Self::READ, Self::USERS_READ, Self::ORGS_READ)
        };
        let has = |bit: u8| self.0 & bit != 0;
        match reach {
            Reach::Open => true,
            Reach::Broad => has(broad),
            Reach::Credentials => has(Self::READ) && has(Self::WRITE),
            Reach::Users => has(broad) || has(users),
            Reach::Organizations => has(broad) || has(orgs),
        }
    }

    /// 403 unless these scopes reach `pattern` with `method`, naming the missing scopes as
    /// Zendesk does.
    pub fn check(self, method: &Method, pattern: Option<&str>) -> Result<(), ApiError> {
        let write = !(*method == Method::GET || *method == Method::HEAD);
        let reach = reach(method, pattern);
        if self.allow(reach, write) {
            return Ok(());
        }
        let missing: Vec<&str> = match reach {
            Reach::Credentials => [("read", Self::READ), ("write", Self::WRITE)]
                .into_iter()
                .filter(|(_, bit)| self.0 & bit == 0)
                .map(|(name, _)| name)
                .collect(),
            _ if write => vec!["write"],
            _ => vec!["read"],
        };
        Err(ApiError::Raw(
            StatusCode::FORBIDDEN,
            json!({
                "error": "Forbidden",
                "description": format!(
                    "You are missing the following required scopes: {}",
                    missing.join(" ")
                ),
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_scopes_reach_their_resource_only() {
        let users_write = Scopes::from_list(&["users:write"]);
        assert!(users_write.allow(Reach::Users, true));
        assert!(!users_write.allow(Reach::Users, false), "write is not read");
        assert!(!users_write.allow(Reach::Organizations, true));
        assert!(!users_write.allow(Reach::Broad, true));
        let users = Scopes::from_list(&["users"]);
        assert!(users.allow(Reach::Users, true) && users.allow(Reach::Users, false));
        let read = Scopes::from_list(&["read"]);
        assert!(read.allow(Reach::Broad, false) && read.allow(Reach::Users, false));
        assert!(!read.allow(Reach::Users, true));
        assert!(Scopes::FULL.allow(Reach::Broad, true));
        assert!(Scopes::FULL.allow(Reach::Credentials, false));
        assert!(!Scopes::from_list(&["write"]).allow(Reach::Credentials, true));
        assert!(!Scopes::from_list(&["read"]).allow(Reach::Credentials, false));
        assert!(Scopes::from_list(&["bogus"]).allow(Reach::Open, false));
        assert!(!Scopes::from_list(&["bogus"]).allow(Reach::Users, false));
    }

    #[test]
    fn unknown_routes_need_the_broad_scopes() {
        assert_eq!(reach(&Method::GET, None), Reach::Broad);
        assert_eq!(reach(&Method::PATCH, Some("/api/v2/users")), Reach::Broad);
        assert_eq!(reach(&Method::HEAD, Some("/api/v2/users")), Reach::Users);
    }

    /// Every operation of the OpenAPI table has a row here (parameter names aside).
    #[test]
    fn every_documented_operation_is_in_the_table() {
        let shape = |p: &str| {
            p.split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect::<Vec<_>>()
                .join("/")
        };
        for op in crate::openapi::OPERATIONS {
            let path = shape(&format!("/api/v2{}", op.path));
            let method = op.method.to_ascii_uppercase();
            assert!(
                ROUTES
                    .iter()
                    .any(|(m, p, _)| *m == method && shape(p) == path),
                "{method} {path} has no scope in scopes::ROUTES"
            );
        }
    }
}
