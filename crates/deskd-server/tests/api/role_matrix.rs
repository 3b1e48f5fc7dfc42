//! Every route × {anonymous, end user, agent, admin} against the committed table
//! `role_matrix.tsv`; every route × the OAuth scopes of an admin's bearer token, from the server's
//! own scope table (`deskd_server::scopes::ROUTES`); and no agent can raise anyone to agent or
//! admin, single or bulk.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use deskd_server::scopes::{ROUTES, Reach, Scopes};

use crate::bulk::wait_for;
use crate::helpers::{Auth, Backend, TestApp};

struct Fixture {
    end: i64,
    victim: i64,
    agent2: i64,
    org: i64,
    job: String,
    /// A dropdown user field, its first option, and an organization field.
    ufield: i64,
    opt: i64,
    ofield: i64,
}

async fn fixture(app: &TestApp) -> Fixture {
    let end = app.make_user("End", "end@example.org", "end-user").await;
    let victim = app
        .make_user("Victim", "victim@example.org", "end-user")
        .await;
    app.make_user("Agent", "agent@example.org", "agent").await;
    let agent2 = app
        .make_user("Agent two", "agent2@example.org", "agent")
        .await;
    let org = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Matrix Org"}}),
        )
        .await
        .body["organization"]["id"]
        .as_i64()
        .unwrap();
    let job = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({"users": [{"name": "J", "email": "j@example.org"}]}),
        )
        .await;
    let job = job.body["job_status"]["id"].as_str().unwrap().to_owned();
    wait_for(app, &job).await;
    let uf = app
        .post(
            "/api/v2/user_fields",
            json!({"user_field": {"key": "matrix_field", "title": "M", "type": "dropdown",
                   "custom_field_options": [{"name": "A", "value": "a"}, {"name": "B", "value": "b"}]}}),
        )
        .await;
    let of = app
        .post(
            "/api/v2/organization_fields",
            json!({"organization_field": {"key": "matrix_field", "title": "M"}}),
        )
        .await;
    Fixture {
        end,
        victim,
        agent2,
        org,
        job,
        ufield: uf.body["user_field"]["id"].as_i64().unwrap(),
        opt: uf.body["user_field"]["custom_field_options"][0]["id"]
            .as_i64()
            .unwrap(),
        ofield: of.body["organization_field"]["id"].as_i64().unwrap(),
    }
}

fn fill(text: &str, f: &Fixture, n: usize) -> String {
    text.replace("{end}", &f.end.to_string())
        .replace("{victim}", &f.victim.to_string())
        .replace("{agent2}", &f.agent2.to_string())
        .replace("{org}", &f.org.to_string())
        .replace("{job}", &f.job)
        .replace("{ufield}", &f.ufield.to_string())
        .replace("{opt}", &f.opt.to_string())
        .replace("{ofield}", &f.ofield.to_string())
        .replace("{n}", &n.to_string())
}

fn matrix_rows() -> Vec<Vec<&'static str>> {
    include_str!("role_matrix.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_role() {
    let rows = matrix_rows();
    let roles = [
        ("anonymous", Auth::None),
        ("end-user", Auth::as_user("end@example.org")),
        ("agent", Auth::as_user("agent@example.org")),
        ("admin", Auth::admin()),
    ];
    let mut mismatches = Vec::new();
    for (col, (role, auth)) in roles.iter().enumerate() {
        // A fresh account per role, so one role's writes cannot change another's answers.
        let app = TestApp::spawn(Backend::Sqlite).await;
        let f = fixture(&app).await;
        for (n, row) in rows.iter().enumerate() {
            let [method, path, body, ..] = row[..] else {
                panic!("bad row {row:?}")
            };
            let expected: u16 = row[3 + col].parse().unwrap();
            let body = (body != "-").then(|| fill(body, &f, n).into_bytes());
            let r = app
                .send(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &fill(path, &f, n),
                    auth,
                    body,
                )
                .await;
            if r.status.as_u16() != expected {
                mismatches.push(format!(
                    "{role:9} {method} {path}: expected {expected}, got {} {}",
                    r.status.as_u16(),
                    &r.text[..r.text.len().min(120)]
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

/// The scope table's row for a concrete path: the pattern whose segments match, static segments
/// before parameters (as the router prefers them).
fn reach_of(method: &str, path: &str) -> Reach {
    let path = path.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, Reach)> = None;
    for (m, pattern, reach) in ROUTES {
        let pat: Vec<&str> = pattern.split('/').collect();
        if *m != method || pat.len() != segs.len() {
            continue;
        }
        let mut statics = 0;
        let fits = pat.iter().zip(&segs).all(|(p, s)| {
            if p.starts_with('{') {
                true
            } else {
                statics += 1;
                p == s
            }
        });
        if fits && best.is_none_or(|(n, _)| statics > n) {
            best = Some((statics, *reach));
        }
    }
    best.map_or(Reach::Broad, |(_, r)| r)
}

/// Every row of `role_matrix.tsv`, sent by the admin with bearer tokens of each scope set: a
/// scope that reaches the route (by `scopes::ROUTES`) answers what the admin column says, any
/// other answers 403 naming the missing scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_scope() {
    let rows = matrix_rows();
    let scope_sets: [&[&str]; 9] = [
        &["read"],
        &["write"],
        &["read", "write"],
        &["users:read"],
        &["users:write"],
        &["users"],
        &["organizations:read"],
        &["organizations:write"],
        &["users:read", "organizations:write"],
    ];
    let mut mismatches = Vec::new();
    for scopes in scope_sets {
        let app = TestApp::spawn(Backend::Sqlite).await;
        let f = fixture(&app).await;
        let t = app
            .post("/api/v2/oauth/tokens", json!({"token": {"scopes": scopes}}))
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{scopes:?}: {}", t.text);
        let auth = Auth::Bearer(t.body["token"]["full_token"].as_str().unwrap().to_owned());
        let granted = Scopes::from_list(scopes);
        for (n, row) in rows.iter().enumerate() {
            let [method, path, body, ..] = row[..] else {
                panic!("bad row {row:?}")
            };
            let write = method != "GET";
            let allowed = granted.allow(reach_of(method, path), write);
            let expected: u16 = if allowed {
                row[6].parse().unwrap()
            } else {
                403
            };
            let body = (body != "-").then(|| fill(body, &f, n).into_bytes());
            let r = app
                .send(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &fill(path, &f, n),
                    &auth,
                    body,
                )
                .await;
            let refused_for_scope = r.body["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("You are missing the following required scopes"));
            if r.status.as_u16() != expected || (!allowed && !refused_for_scope) {
                mismatches.push(format!(
                    "{scopes:?} {method} {path}: expected {expected}, got {} {}",
                    r.status.as_u16(),
                    &r.text[..r.text.len().min(120)]
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

/// Agents cannot raise anyone, themselves included, to agent or admin, nor set custom_role_id:
/// not with create_or_update, PUT, POST /users, nor any bulk job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_cannot_escalate_anywhere() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let f = fixture(&app).await;
    let me = app
        .get_as(&Auth::as_user("agent@example.org"), "/api/v2/users/me")
        .await
        .body["user"]["id"]
        .as_i64()
        .unwrap();
    let agent = Auth::as_user("agent@example.org");
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v2/users/create_or_update".to_owned(),
            json!({"user": {"email": "agent@example.org", "role": "admin"}}),
        ),
        (
            Method::POST,
            "/api/v2/users/create_or_update".to_owned(),
            json!({"user": {"email": "end@example.org", "custom_role_id": 9}}),
        ),
        (
            Method::PUT,
            format!("/api/v2/users/{me}"),
            json!({"user": {"role": "admin"}}),
        ),
        (
            Method::PUT,
            format!("/api/v2/users/{}", f.end),
            json!({"user": {"role": "agent"}}),
        ),
        (
            Method::POST,
            "/api/v2/users".to_owned(),
            json!({"user": {"name": "Boss", "email": "boss@example.org", "role": "admin"}}),
        ),
    ] {
        let r = app
            .send(
                method,
                &path,
                &agent,
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} {body}");
    }
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v2/users/create_or_update_many".to_owned(),
            json!({"users": [{"email": "agent@example.org", "role": "admin"}, {"name": "B", "email": "b@example.org", "role": "agent"}]}),
        ),
        (
            Method::POST,
            "/api/v2/users/create_many".to_owned(),
            json!({"users": [{"name": "C", "email": "c@example.org", "custom_role_id": 3}]}),
        ),
        (
            Method::PUT,
            format!("/api/v2/users/update_many?ids={},{me}", f.end),
            json!({"user": {"role": "admin"}}),
        ),
        (
            Method::PUT,
            "/api/v2/users/update_many".to_owned(),
            json!({"users": [{"id": f.end, "role": "agent"}]}),
        ),
    ] {
        let r = app
            .send(
                method,
                &path,
                &agent,
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let done = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
        for res in done["results"].as_array().unwrap() {
            assert_eq!(res["error"], "PermissionDenied", "{path}: {res}");
        }
    }
    let roles: Value = app
        .get("/api/v2/users?role[]=agent&role[]=admin")
        .await
        .body["count"]
        .clone();
    assert_eq!(roles, 3, "the admin and the two agents, nobody else");
    assert_eq!(
        app.get(&format!("/api/v2/users/{me}")).await.body["user"]["role"],
        "agent"
    );
}
