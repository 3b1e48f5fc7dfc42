//! Races: two upserts of one email or external_id never make two users.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    fifty_concurrent_upserts_of_one_new_email_make_one_user,
    concurrent_upserts_of_one_external_id_make_one_user
);

async fn race(app: Arc<TestApp>, bodies: Vec<serde_json::Value>) -> Vec<(StatusCode, i64)> {
    let mut tasks = Vec::new();
    for body in bodies {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let r = app.upsert(body).await;
            assert!(r.status.is_success(), "{}: {}", r.status, r.text);
            (r.status, r.body["user"]["id"].as_i64().unwrap())
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn fifty_concurrent_upserts_of_one_new_email_make_one_user(app: TestApp) {
    let app = Arc::new(app);
    let cases = [
        "race@example.org",
        "RACE@example.org",
        "Race@Example.org",
        " race@EXAMPLE.ORG ",
    ];
    let bodies = (0..50)
        .map(|i| json!({"name": format!("Racer {i}"), "email": cases[i % cases.len()]}))
        .collect();
    let results = race(app.clone(), bodies).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let updated = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((created, updated), (1, 49));
    let first = results[0].1;
    assert!(results.iter().all(|(_, id)| *id == first));
    assert_eq!(app.count_users().await, 2);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM identities WHERE value_norm = 'race@example.org'")
            .await,
        1
    );
    crate::write_races::check_invariants(&app).await;
}

async fn concurrent_upserts_of_one_external_id_make_one_user(app: TestApp) {
    let app = Arc::new(app);
    let bodies = (0..30)
        .map(|i| json!({"name": format!("Ext {i}"), "external_id": if i % 2 == 0 { "EXT-RACE" } else { "ext-race" }}))
        .collect();
    let results = race(app.clone(), bodies).await;
    assert_eq!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(app.count_users().await, 2);
    crate::write_races::check_invariants(&app).await;
}
