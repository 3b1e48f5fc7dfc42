//! What the attack tests share: a replica on the same database, small request helpers, and the
//! organization-membership invariants read straight from the database.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::helpers::{Auth, Backend, Resp, TestApp};

/// A second server on the same database as `a`.
pub async fn replica(a: &TestApp) -> TestApp {
    TestApp::replica_of(
        a,
        deskd_server::Config {
            rate_limits: false,
            job_lease: Duration::from_secs(2),
            ..deskd_server::Config::default()
        },
    )
    .await
}

pub async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.send(
        method,
        path,
        &Auth::admin(),
        body.map(|b| serde_json::to_vec(&b).unwrap()),
    )
    .await
}

/// A new organization named `name`; its id.
pub async fn org(app: &TestApp, name: &str) -> i64 {
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": name}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["organization"]["id"].as_i64().unwrap()
}

/// A new end user (in `organization`, when given); its id.
pub async fn end_user(app: &TestApp, email: &str, organization: Option<i64>) -> i64 {
    let r = app
        .upsert(json!({"name": "Member", "email": email, "organization_id": organization}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["user"]["id"].as_i64().unwrap()
}

/// `user` joins `organization`; the membership's id.
pub async fn join(app: &TestApp, user: i64, organization: i64) -> i64 {
    let r = app
        .post(
            "/api/v2/organization_memberships",
            json!({"organization_membership": {"user_id": user, "organization_id": organization}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["organization_membership"]["id"].as_i64().unwrap()
}

/// Polls a job until it is completed or failed (at most 30 s); the job status.
pub async fn job(app: &TestApp, r: Resp) -> Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    crate::bulk::wait_for(app, &id).await
}

async fn rows(app: &TestApp, sql: &str) -> Vec<sqlx::any::AnyRow> {
    sqlx::any::install_default_drivers();
    let url = if app.backend == Backend::Sqlite && !app.db_url.contains("mode=memory") {
        format!("{}?mode=ro", app.db_url)
    } else {
        app.db_url.clone()
    };
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
    let out = sqlx::query(sql).fetch_all(&mut conn).await.expect("query");
    let _ = conn.close().await;
    out
}

/// What is wrong with the organization memberships as stored, one line per problem:
/// - an active user with memberships has exactly one default;
/// - `users.organization_id` is the default membership's organization (NULL without one);
/// - no membership names an organization that does not exist.
///
/// Each problem comes with the user it is about.
pub async fn membership_violations(app: &TestApp) -> Vec<(i64, String)> {
    let users = rows(
        app,
        "SELECT id, organization_id FROM users WHERE active = 1",
    )
    .await;
    let members = rows(
        app,
        "SELECT m.user_id, m.organization_id, m.is_default, \
         (SELECT COUNT(*) FROM organizations o WHERE o.id = m.organization_id) AS org_exists \
         FROM organization_memberships m ORDER BY m.id",
    )
    .await;
    let mut by_user: HashMap<i64, Vec<(i64, bool)>> = HashMap::new();
    let mut out = Vec::new();
    for m in &members {
        let user: i64 = m.try_get("user_id").unwrap();
        let org: i64 = m.try_get("organization_id").unwrap();
        if m.try_get::<i64, _>("org_exists").unwrap() == 0 {
            out.push((
                user,
                format!("user {user} is a member of organization {org}, which does not exist"),
            ));
        }
        let default = m.try_get::<i64, _>("is_default").unwrap() != 0;
        by_user.entry(user).or_default().push((org, default));
    }
    for u in &users {
        let id: i64 = u.try_get("id").unwrap();
        let org: Option<i64> = u.try_get("organization_id").unwrap();
        let mine = by_user.get(&id).cloned().unwrap_or_default();
        let defaults: Vec<i64> = mine.iter().filter(|m| m.1).map(|m| m.0).collect();
        if !mine.is_empty() && defaults.len() != 1 {
            out.push((
                id,
                format!(
                    "user {id} has {} default memberships among {mine:?}",
                    defaults.len()
                ),
            ));
        }
        if org != defaults.first().copied() {
            out.push((
                id,
                format!(
                    "user {id}: organization_id {org:?} but default memberships {defaults:?} (all {mine:?})"
                ),
            ));
        }
    }
    out
}

/// The problems of [`membership_violations`] about `users`.
pub async fn membership_violations_of(app: &TestApp, users: &[i64]) -> Vec<String> {
    membership_violations(app)
        .await
        .into_iter()
        .filter(|(u, _)| users.contains(u))
        .map(|(_, v)| v)
        .collect()
}
