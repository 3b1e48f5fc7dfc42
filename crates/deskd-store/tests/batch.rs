//! A batch of upserts decides and writes exactly as the same upserts run one after another: same
//! outcomes, same ids, same rows, on SQLite and on PostgreSQL. This is what lets deskd write
//! concurrent requests together. Items name users by id, move external ids and emails between
//! users, and soft deletes run between batches, so a batch must also write in an order that
//! cannot collide with itself.

use std::sync::Arc;

use deskd_model::Role;
use deskd_model::input::UserInput;
use deskd_model::role::Actor;
use deskd_store::upsert::{UpsertItem, UpsertOutcome, Upserted, create_or_update_batch};
use deskd_store::{Backend, Store, StoreOptions};
use proptest::prelude::*;
use serde_json::{Value, json};
use sqlx::Row;

const NOW: i64 = 1_700_000_000;
/// Users get ids from here on (Zendesk-sized), so item and delete ids are `BASE + n`.
const BASE: i64 = 360_000_000_000;

fn item_strategy() -> impl Strategy<Value = (Value, bool)> {
    let email = prop_oneof![
        Just("a@x.co"),
        Just("A@X.co"),
        Just("b@x.co"),
        Just("c@x.co")
    ];
    let ext = prop_oneof![Just("e1"), Just("E1"), Just("e2"), Just("e3"), Just("")];
    (
        proptest::option::of(1i64..5),
        proptest::option::of(prop_oneof![Just("Ann"), Just("Bob"), Just("")]),
        proptest::option::of(email.clone()),
        proptest::option::of(ext),
        proptest::collection::vec(email, 0..2),
        proptest::option::of(proptest::collection::vec(
            prop_oneof![Just("t1"), Just("t2"), Just("t3")],
            0..3,
        )),
        proptest::option::of(prop_oneof![Just("Org A"), Just("org a "), Just("Org B")]),
        proptest::option::of(prop_oneof![Just("end-user"), Just("agent")]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(id, name, email, ext, idents, tags, org, role, verified, as_agent)| {
                let mut u = serde_json::Map::new();
                if let Some(id) = id {
                    u.insert("id".into(), json!(BASE + id));
                }
                if let Some(n) = name {
                    u.insert("name".into(), json!(n));
                }
                if let Some(e) = email {
                    u.insert("email".into(), json!(e));
                }
                if let Some(e) = ext {
                    u.insert("external_id".into(), json!(e));
                }
                if !idents.is_empty() {
                    u.insert(
                        "identities".into(),
                        json!(
                            idents
                                .iter()
                                .map(|v| json!({"type": "email", "value": v}))
                                .collect::<Vec<_>>()
                        ),
                    );
                }
                if let Some(t) = tags {
                    u.insert("tags".into(), json!(t));
                }
                if let Some(o) = org {
                    u.insert("organization".into(), json!({"name": o}));
                }
                if let Some(r) = role {
                    u.insert("role".into(), json!(r));
                }
                if verified {
                    u.insert("verified".into(), json!(true));
                }
                (Value::Object(u), as_agent)
            },
        )
}

fn items(raw: &[(Value, bool)]) -> Vec<UpsertItem> {
    raw.iter()
        .filter_map(|(v, as_agent)| {
            let input = UserInput::from_json(v.as_object()?).ok()?;
            let role = if *as_agent { Role::Agent } else { Role::Admin };
            Some(UpsertItem {
                input: Arc::new(input),
                actor: Actor { user_id: 1, role },
                mode: Default::default(),
            })
        })
        .collect()
}

fn summary(o: &UpsertOutcome) -> String {
    match o {
        Ok(Upserted::Created(u)) => format!("created {u:?}"),
        Ok(Upserted::Updated(u)) => format!("updated {u:?}"),
        Err(r) => format!("rejected {r:?}"),
    }
}

/// A fresh store: a SQLite file in `dir`, or a schema of its own in the local PostgreSQL
/// (`DESKD_TEST_PG_URL`, else the `test` database), dropped by [`close`].
async fn open(backend: Backend, dir: &tempfile::TempDir, name: &str) -> (Store, Option<String>) {
    match backend {
        Backend::Sqlite => (
            Store::open(&StoreOptions::new(format!(
                "sqlite://{}/{name}.db",
                dir.path().display()
            )))
            .await
            .unwrap(),
            None,
        ),
        Backend::Postgres => {
            use sqlx::{Connection, Executor};
            let schema = format!("deskd_prop_{name}_{}", rand_suffix());
            let mut conn = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
            conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                .await
                .unwrap();
            let url = format!("{}?options=-c%20search_path%3D{schema}", pg_url());
            (
                Store::open(&StoreOptions::new(url)).await.unwrap(),
                Some(schema),
            )
        }
    }
}

async fn close(store: Store, schema: Option<String>) {
    store.close().await;
    if let Some(schema) = schema {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
        conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
            .await
            .unwrap();
    }
}

#[path = "support/private_pg.rs"]
mod private_pg;

/// `DESKD_TEST_PG_URL`, the local server, or a throwaway instance (see `private_pg`).
fn pg_url() -> String {
    private_pg::pg_url().expect("PostgreSQL tests run only when PostgreSQL is there")
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

async fn run(store: &Store, batch: Vec<UpsertItem>) -> Vec<String> {
    let batch = Arc::new(batch);
    let backend = store.backend();
    let out = store
        .write(move |conn| {
            let batch = batch.clone();
            Box::pin(async move { create_or_update_batch(conn, backend, &batch, NOW).await })
        })
        .await
        .unwrap();
    out.outcomes.iter().map(summary).collect()
}

async fn delete(store: &Store, id: i64) -> String {
    let actor = Actor {
        user_id: 0,
        role: Role::Admin,
    };
    let out = store
        .write(move |conn| {
            Box::pin(async move {
                deskd_store::users::delete_for(conn, actor, Some(id), None, NOW).await
            })
        })
        .await
        .unwrap();
    format!("{:?}", out.map(|u| u.id))
}

async fn users_so_far(store: &Store) -> i64 {
    let mut conn = store.reader().await.unwrap();
    sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

async fn dump(store: &Store) -> Vec<String> {
    let mut conn = store.reader().await.unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT id || '|' || name || '|' || COALESCE(email, '-') || '|' || COALESCE(external_id, '-') || '|' || role || '|' || \
         COALESCE(organization_id, 0) || '|' || tags || '|' || verified FROM users ORDER BY id",
        "SELECT id || '|' || user_id || '|' || value || '|' || is_primary || '|' || verified FROM identities ORDER BY user_id, value",
        "SELECT id || '|' || name FROM organizations ORDER BY id",
    ] {
        for row in sqlx::query(sql).fetch_all(&mut *conn).await.unwrap() {
            out.push(row.get::<String, _>(0));
        }
    }
    out
}

/// One step of a scenario: a batch of upserts, or a soft delete of a user by id.
#[derive(Clone, Debug)]
enum Step {
    Batch(Vec<(Value, bool)>),
    Delete(i64),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => proptest::collection::vec(item_strategy(), 1..8).prop_map(Step::Batch),
        1 => (1i64..5).prop_map(|n| Step::Delete(BASE + n)),
    ]
}

/// Runs `steps` on two fresh stores of `backend`: each batch whole on one, item by item on the
/// other; outcomes and rows must agree after every step.
fn check(backend: Backend, steps: Vec<Step>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (together, s1) = open(backend, &dir, "together").await;
        let (alone, s2) = open(backend, &dir, "alone").await;
        for step in steps {
            match step {
                Step::Batch(mut raw) => {
                    // An item can name by id only users that existed before its batch: the id
                    // of a user created earlier in the same batch is not known to any client.
                    let last = BASE + users_so_far(&alone).await;
                    for (v, _) in raw.iter_mut() {
                        if let Some(obj) = v.as_object_mut() {
                            if obj
                                .get("id")
                                .and_then(Value::as_i64)
                                .is_some_and(|id| id > last)
                            {
                                obj.remove("id");
                            }
                        }
                    }
                    let list = items(&raw);
                    let a = run(&together, list.clone()).await;
                    let mut b = Vec::new();
                    for item in list {
                        b.extend(run(&alone, vec![item]).await);
                    }
                    assert_eq!(a, b);
                }
                Step::Delete(id) => {
                    assert_eq!(delete(&together, id).await, delete(&alone, id).await);
                }
            }
            assert_eq!(dump(&together).await, dump(&alone).await);
        }
        close(together, s1).await;
        close(alone, s2).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_batch_equals_its_items_one_by_one_sqlite(steps in proptest::collection::vec(step_strategy(), 1..5)) {
        check(Backend::Sqlite, steps);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_batch_equals_its_items_one_by_one_postgres(steps in proptest::collection::vec(step_strategy(), 1..5)) {
        // Without PostgreSQL the half is skipped (said once; a failure under DESKD_TEST_REQUIRE_PG=1).
        if private_pg::pg_url().is_some() {
            check(Backend::Postgres, steps);
        }
    }
}

/// External ids that move along a chain inside one batch (A: x→y, B: z→x, A: y→z) and one that
/// a new user takes after its owner let it go: every item succeeds, in one transaction.
fn moving_external_ids(backend: Backend) {
    let admin = |v: Value| (v, false);
    check(
        backend,
        vec![
            Step::Batch(vec![
                admin(json!({"name": "A", "external_id": "x"})),
                admin(json!({"name": "B", "external_id": "z"})),
            ]),
            Step::Batch(vec![
                admin(json!({"id": BASE + 1, "external_id": "y"})),
                admin(json!({"id": BASE + 2, "external_id": "x"})),
                admin(json!({"id": BASE + 1, "external_id": "z"})),
                admin(json!({"id": BASE + 2, "external_id": "w"})),
                admin(json!({"name": "C", "external_id": "x"})),
            ]),
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (store, schema) = open(backend, &dir, "chain").await;
        let first = items(&[
            admin(json!({"name": "A", "external_id": "x"})),
            admin(json!({"name": "B", "external_id": "z"})),
        ]);
        run(&store, first).await;
        let out = run(
            &store,
            items(&[
                admin(json!({"id": BASE + 1, "external_id": "y"})),
                admin(json!({"id": BASE + 2, "external_id": "x"})),
                admin(json!({"id": BASE + 1, "external_id": "z"})),
                admin(json!({"name": "C", "external_id": "y"})),
            ]),
        )
        .await;
        assert!(out[..3].iter().all(|o| o.starts_with("updated")), "{out:?}");
        assert!(out[3].starts_with("created"), "{out:?}");
        close(store, schema).await;
    });
}

#[test]
fn external_ids_move_along_a_chain_in_one_batch_sqlite() {
    moving_external_ids(Backend::Sqlite);
}

#[test]
fn external_ids_move_along_a_chain_in_one_batch_postgres() {
    if private_pg::pg_url().is_some() {
        moving_external_ids(Backend::Postgres);
    }
}
