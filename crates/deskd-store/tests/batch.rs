//! A batch of upserts decides exactly as the same upserts run one after another: same outcomes,
//! same ids, same rows. This is what lets deskd write concurrent requests together.

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

fn item_strategy() -> impl Strategy<Value = (Value, bool)> {
    let email = prop_oneof![
        Just("a@x.co"),
        Just("A@X.co"),
        Just("b@x.co"),
        Just("c@x.co")
    ];
    let ext = prop_oneof![Just("e1"), Just("E1"), Just("e2")];
    (
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
            |(name, email, ext, idents, tags, org, role, verified, as_agent)| {
                let mut u = serde_json::Map::new();
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

async fn open(dir: &tempfile::TempDir, name: &str) -> Store {
    Store::open(&StoreOptions::new(format!(
        "sqlite://{}/{name}.db",
        dir.path().display()
    )))
    .await
    .unwrap()
}

async fn run(store: &Store, batch: Vec<UpsertItem>) -> Vec<String> {
    let batch = Arc::new(batch);
    let out = store
        .write(move |conn| {
            let batch = batch.clone();
            Box::pin(
                async move { create_or_update_batch(conn, Backend::Sqlite, &batch, NOW).await },
            )
        })
        .await
        .unwrap();
    out.outcomes.iter().map(summary).collect()
}

async fn dump(store: &Store) -> Vec<String> {
    let mut conn = store.reader().await.unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT id || '|' || name || '|' || COALESCE(email, '-') || '|' || COALESCE(external_id, '-') || '|' || role || '|' || \
         COALESCE(organization_id, 0) || '|' || tags || '|' || verified FROM users ORDER BY id",
        "SELECT id || '|' || user_id || '|' || value || '|' || is_primary || '|' || verified FROM identities ORDER BY id",
        "SELECT id || '|' || name FROM organizations ORDER BY id",
    ] {
        for row in sqlx::query(sql).fetch_all(&mut *conn).await.unwrap() {
            out.push(row.get::<String, _>(0));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_batch_equals_its_items_one_by_one(raw in proptest::collection::vec(item_strategy(), 1..12)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let together = open(&dir, "together").await;
            let alone = open(&dir, "alone").await;
            let list = items(&raw);
            let a = run(&together, list.clone()).await;
            let mut b = Vec::new();
            for item in list {
                b.extend(run(&alone, vec![item]).await);
            }
            assert_eq!(a, b);
            assert_eq!(dump(&together).await, dump(&alone).await);
            together.close().await;
            alone.close().await;
        });
    }
}
