//! Attack: an organization deleted on one server while the other writes users into it
//! (`PUT /users/{id}`, create_or_update, a create_or_update_many job, a membership), on one
//! PostgreSQL database.
//!
//! A user write checked that the organization exists without locking it, so a delete that
//! committed in between failed the write's foreign key (`users_organization_id_fkey`). On main
//! (52967c0) that happened in 11 of 30 exploratory rounds; the batcher's and the job's
//! "re-run the items alone" fallbacks hid it (the re-run found the organization gone and
//! answered 422), at the cost of a failed transaction and every item of its batch or chunk
//! run again one by one, and a 500 whenever the re-run lost a race too. The user write now
//! takes the organization `FOR SHARE` before it decides, so it waits for the delete instead.
//! This test holds the outcome: no 5xx, every job completes with sound results, and the
//! membership invariants hold after each round.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::attack_support::{end_user, job, join, membership_violations_of, org, replica, send};
use crate::helpers::{Backend, TestApp};

const ROUNDS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_writes_racing_an_organization_delete_never_fail_and_leave_no_member_behind() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = replica(&a).await;
    let mut problems: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let doomed = org(&a, &format!("Doomed {round}")).await;
        let other = org(&a, &format!("Other {round}")).await;
        let moving = end_user(&a, &format!("mv{round}@example.org"), Some(other)).await;
        let joining = end_user(&a, &format!("jn{round}@example.org"), None).await;
        let member = end_user(&a, &format!("mb{round}@example.org"), Some(doomed)).await;
        join(&a, member, other).await;
        let (moving_path, doomed_path) = (
            format!("/api/v2/users/{moving}"),
            format!("/api/v2/organizations/{doomed}"),
        );
        let many: Vec<Value> = (0..5)
            .map(|n| {
                json!({"name": "New", "email": format!("new{round}-{n}@example.org"),
                       "organization_id": doomed})
            })
            .collect();
        let (put, created, submitted, joined, deleted) =
            tokio::join!(
            send(
                &a,
                Method::PUT,
                &moving_path,
                Some(json!({"user": {"organization_id": doomed}}))
            ),
            a.upsert(json!({"name": "Fresh", "email": format!("fresh{round}@example.org"),
                            "organization_id": doomed})),
            a.post(
                "/api/v2/users/create_or_update_many",
                json!({ "users": many })
            ),
            a.post(
                "/api/v2/organization_memberships",
                json!({"organization_membership": {"user_id": joining, "organization_id": doomed}})
            ),
            send(&b, Method::DELETE, &doomed_path, None),
        );
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
        for (what, r, ok) in [
            ("PUT", &put, StatusCode::OK),
            ("create", &created, StatusCode::CREATED),
            ("membership", &joined, StatusCode::CREATED),
        ] {
            // Before the delete: written (and then removed by it); after: the organization is
            // unknown, a 422.
            if r.status != ok && r.status != StatusCode::UNPROCESSABLE_ENTITY {
                problems.push(format!(
                    "round {round}: {what} answered {}: {}",
                    r.status, r.text
                ));
            }
        }
        let status = job(&a, submitted).await;
        if status["status"] != "completed" {
            problems.push(format!("round {round}: job {status}"));
        }
        for item in status["results"].as_array().cloned().unwrap_or_default() {
            // Created before the delete, or refused for the organization after it; never
            // "could not be saved" (an item that failed even alone).
            let sound = item["status"] == "Created"
                || item["details"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("Organization"));
            if !sound {
                problems.push(format!("round {round}: job item {item}"));
            }
        }
        let mut users = vec![moving, joining, member];
        for r in [&put, &created] {
            if let Some(id) = r.body["user"]["id"].as_i64() {
                users.push(id);
            }
        }
        for item in status["results"].as_array().cloned().unwrap_or_default() {
            users.extend(item["id"].as_i64());
        }
        for v in membership_violations_of(&a, &users).await {
            problems.push(format!("round {round}: {v}"));
        }
        // The member of both keeps the other organization, now as its default.
        let m = a.get(&format!("/api/v2/users/{member}")).await;
        if m.body["user"]["organization_id"] != json!(other) {
            problems.push(format!(
                "round {round}: member left with {}",
                m.body["user"]["organization_id"]
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Bulk jobs against each other on two servers: one job adds users to organizations while the
/// other deletes those organizations, and single membership writes run beside them. Every job
/// completes with a sound result per item and the membership invariants hold. No finding: this
/// held on main (52967c0) too (their deadlocks are re-run); it guards the lock order
/// (organization, then users) that the fixes here rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_jobs_racing_organization_destroy_many_complete_and_keep_the_invariants() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = replica(&a).await;
    let mut problems: Vec<String> = Vec::new();
    for round in 0..6 {
        let mut orgs = Vec::new();
        for n in 0..4 {
            orgs.push(org(&a, &format!("Bulk {round}-{n}")).await);
        }
        let keep = org(&a, &format!("Keep {round}")).await;
        let mut users = Vec::new();
        for (n, o) in orgs.iter().enumerate() {
            let u = end_user(&a, &format!("bk{round}-{n}@example.org"), Some(*o)).await;
            join(&a, u, keep).await;
            users.push(u);
        }
        let items: Vec<Value> = users
            .iter()
            .flat_map(|u| {
                orgs.iter()
                    .map(move |o| json!({"user_id": u, "organization_id": o}))
            })
            .collect();
        let ids: Vec<String> = orgs.iter().map(|o| o.to_string()).collect();
        let destroy = format!("/api/v2/organizations/destroy_many?ids={}", ids.join(","));
        let default_path = format!(
            "/api/v2/users/{}/organizations/{keep}/make_default",
            users[0]
        );
        let (created, destroyed, made) = tokio::join!(
            a.post(
                "/api/v2/organization_memberships/create_many",
                json!({ "organization_memberships": items })
            ),
            send(&b, Method::DELETE, &destroy, None),
            send(&b, Method::PUT, &default_path, None),
        );
        if made.status != StatusCode::OK {
            problems.push(format!(
                "round {round}: make_default {}: {}",
                made.status, made.text
            ));
        }
        for (what, r) in [("create_many", created), ("destroy_many", destroyed)] {
            let status = job(&a, r).await;
            if status["status"] != "completed" {
                problems.push(format!("round {round}: {what} {status}"));
            }
            for item in status["results"].as_array().cloned().unwrap_or_default() {
                // Done, or refused for what the race left (already a member, organization
                // gone); never an item that failed even alone ("could not be saved").
                let ok = item["error"].is_null()
                    || ["DuplicateValue", "BlankValue", "RecordNotFound"]
                        .iter()
                        .any(|e| item["error"] == *e);
                if !ok {
                    problems.push(format!("round {round}: {what} item {item}"));
                }
            }
        }
        for v in membership_violations_of(&a, &users).await {
            problems.push(format!("round {round}: {v}"));
        }
        for u in &users {
            let r = a.get(&format!("/api/v2/users/{u}")).await;
            if r.body["user"]["organization_id"] != json!(keep) {
                problems.push(format!(
                    "round {round}: user {u} in {}",
                    r.body["user"]["organization_id"]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
