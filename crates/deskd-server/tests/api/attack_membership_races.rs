//! Attack: organization memberships under concurrent writers on two servers sharing PostgreSQL,
//! checked against the membership invariants (`attack_support::membership_violations`) after
//! every round.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::attack_support::{end_user, join, membership_violations_of, org, replica, send};
use crate::helpers::{Backend, TestApp};

const ROUNDS: usize = 16;

/// A user in A (default) and B. Server 1 answers `PUT /users/{id} {"organization_id": A}` (the
/// organization it already has, so the user row does not change), server 2 makes B the default
/// at the same moment. Whatever order they take, the user ends with one default membership and
/// `organization_id` naming it.
///
/// The user write decided without locking the user (its row did not change), then replaced the
/// memberships it read before the make_default committed: B was deleted after it had become
/// the default, leaving A not default and `organization_id` = B (a membership that no longer
/// exists). Before the fix (main at 52967c0, 2 cores) 12 to 15 of 16 rounds broke the
/// invariants; SQLite never (one writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_organization_write_racing_make_default_keeps_one_default() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = replica(&a).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let (o1, o2) = (
            org(&a, &format!("First {round}")).await,
            org(&a, &format!("Second {round}")).await,
        );
        let user = end_user(&a, &format!("md{round}@example.org"), Some(o1)).await;
        join(&a, user, o2).await;
        let (user_path, default_path) = (
            format!("/api/v2/users/{user}"),
            format!("/api/v2/users/{user}/organizations/{o2}/make_default"),
        );
        let (put, made) = tokio::join!(
            send(
                &a,
                Method::PUT,
                &user_path,
                Some(json!({"user": {"organization_id": o1}}))
            ),
            send(&b, Method::PUT, &default_path, None),
        );
        assert_eq!(put.status, StatusCode::OK, "{}", put.text);
        // After the PUT the user is only in A, so a make_default that comes second is a 404.
        assert!(
            made.status == StatusCode::OK || made.status == StatusCode::NOT_FOUND,
            "{}",
            made.text
        );
        let v = membership_violations_of(&a, &[user]).await;
        if !v.is_empty() {
            broken.push((round, v));
        }
    }
    assert!(
        broken.is_empty(),
        "of {ROUNDS} rounds, {} broke the membership invariants: {broken:#?}",
        broken.len()
    );
}
