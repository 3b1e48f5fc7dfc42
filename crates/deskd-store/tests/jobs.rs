//! Job leases handed back on shutdown: another worker claims the job at once, and the handed-back
//! claim does not count as an attempt.

use deskd_model::Role;
use deskd_model::job::JobKind;
use deskd_model::role::Actor;
use deskd_store::{Store, StoreOptions, jobs};

async fn released_jobs_are_claimed_at_once(store: &Store) {
    let backend = store.backend();
    let actor = Actor {
        user_id: 1,
        role: Role::Admin,
    };
    let now = 1_000_000;
    store
        .write(move |conn| {
            Box::pin(async move {
                jobs::insert(conn, "j1", JobKind::CreateOrUpdateMany, 1, actor, "[]", now).await
            })
        })
        .await
        .unwrap();
    let claim = |owner: &'static str, at: i64| {
        store.write(move |conn| {
            Box::pin(async move { jobs::claim(conn, backend, owner, at, at + 600).await })
        })
    };
    let first = claim("a", now).await.unwrap().expect("queued job claimed");
    assert_eq!(first.attempts, 1);
    assert!(claim("b", now + 1).await.unwrap().is_none(), "leased to a");
    let released = store
        .write(move |conn| Box::pin(async move { jobs::release(conn, "a", now + 2).await }))
        .await
        .unwrap();
    assert_eq!(released, 1);
    let again = claim("b", now + 3)
        .await
        .unwrap()
        .expect("released job claimed at once");
    assert_eq!(again.job.id, "j1");
    assert_eq!(again.attempts, 1, "the handed-back claim is not an attempt");
    // Releasing what one does not hold changes nothing.
    let none = store
        .write(move |conn| Box::pin(async move { jobs::release(conn, "a", now + 4).await }))
        .await
        .unwrap();
    assert_eq!(none, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_jobs_are_claimed_at_once_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(format!(
        "sqlite://{}/jobs.db",
        dir.path().display()
    )))
    .await
    .unwrap();
    released_jobs_are_claimed_at_once(&store).await;
    store.close().await;
}
