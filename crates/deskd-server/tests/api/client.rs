//! The project's own client (deskd-client) against the server: typed calls, typed errors,
//! job polling, both pagination styles.

use deskd_client::{Auth, Client, Error};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, ADMIN_TOKEN, TestApp};
use crate::on_both_backends;

on_both_backends!(client_round_trip);

async fn client_round_trip(app: TestApp) {
    let client = Client::new(
        &app.url(""),
        Auth::Token {
            email: ADMIN_EMAIL.into(),
            token: ADMIN_TOKEN.into(),
        },
    )
    .unwrap();
    assert_eq!(
        client.me().await.unwrap().email.as_deref(),
        Some(ADMIN_EMAIL)
    );
    let (user, created) = client
        .create_or_update(&json!({"name": "Client", "email": "client@example.org"}))
        .await
        .unwrap();
    assert!(created);
    let (again, created) = client
        .create_or_update(&json!({"email": "client@example.org", "notes": "n"}))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, user.id);
    assert_eq!(again.other["notes"], "n");

    match client
        .create_or_update(&json!({"name": "X", "email": "bad"}))
        .await
    {
        Err(Error::RecordInvalid(body)) => assert!(body.details.unwrap()["email"].is_array()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.user(9_223_372_036_854_775_807).await,
        Err(Error::RecordNotFound(_))
    ));
    let stranger = Client::new(
        &app.url(""),
        Auth::Token {
            email: ADMIN_EMAIL.into(),
            token: "wrong".into(),
        },
    )
    .unwrap();
    assert!(matches!(stranger.me().await, Err(Error::Unauthorized(_))));

    let users: Vec<_> = (0..150)
        .map(|i| json!({"name": format!("C{i}"), "email": format!("c{i}@example.org")}))
        .collect();
    let first = client
        .create_or_update_many(&users[..100], Some("client-test-1"))
        .await
        .unwrap();
    let replay = client
        .create_or_update_many(&users[..100], Some("client-test-1"))
        .await
        .unwrap();
    assert_eq!(
        first.id, replay.id,
        "an idempotent resubmission finds the first job"
    );
    let second = client
        .create_or_update_many(&users[100..], None)
        .await
        .unwrap();
    for job in [first, second] {
        let done = client
            .wait_for_job(
                &job.id,
                std::time::Duration::from_millis(50),
                std::time::Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(done.status, "completed");
        assert!(
            done.results
                .unwrap()
                .iter()
                .all(|r| r.status.as_deref() == Some("Created"))
        );
    }

    for page_size in [None, Some(40)] {
        let mut page = client.users(page_size).await.unwrap();
        let mut ids: Vec<i64> = page.users.iter().map(|u| u.id).collect();
        while let Some(next) = page.next.clone() {
            page = client.users_page(&next).await.unwrap();
            ids.extend(page.users.iter().map(|u| u.id));
        }
        assert_eq!(ids.len(), 152, "{page_size:?}");
    }
    let found = client.search("email:c7@example.org").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(client.show_many(&[user.id]).await.unwrap()[0].id, user.id);
}
