//! The SQLite database and its WAL and shared-memory files are created readable by their owner
//! only: they hold password hashes and everyone's personal data.

use std::os::unix::fs::PermissionsExt;

use deskd_store::{Store, StoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_created_0600() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("deskd.db");
    let store = Store::open(&StoreOptions::new(format!("sqlite://{}", db.display())))
        .await
        .expect("open");
    // A write, so that the WAL and its index exist.
    store
        .write(|conn| Box::pin(async move { deskd_store::settings::set(conn, "probe", "1").await }))
        .await
        .expect("write");
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        let mode = std::fs::metadata(&path).expect(&path).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path} is {mode:o}");
    }
    store.close().await;
}
