//! Fuzzing over HTTP with proptest (bounded case counts, part of the suite): random
//! Authorization headers, random user bodies and random search queries against the real server
//! on both backends. Whatever is sent, the answer is a Zendesk-shaped 2xx or 4xx, never a 5xx
//! nor a dropped connection; random credentials never authenticate.

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Auth, Backend, TestApp};

const CASES: u32 = 48;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn header_value() -> impl Strategy<Value = String> {
    let b64 = prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    });
    let creds = (
        "[ -~]{0,20}",
        prop_oneof![Just("/token"), Just("")],
        "[ -~]{0,20}",
    )
        .prop_map(|(u, t, p)| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(format!("{u}{t}:{p}"))
        });
    prop_oneof![
        b64.prop_map(|s| format!("Basic {s}")),
        creds.prop_map(|s| format!("Basic {s}")),
        "[ -~]{0,40}".prop_map(|s| format!("Bearer {s}")),
        "[ -~]{0,60}",
        "[!-~]{0,10}".prop_map(|s| format!("{s} {s}")),
    ]
}

fn run_auth(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(TestApp::spawn(backend));
    let mut runner = TestRunner::new(PtConfig {
        cases: CASES,
        ..PtConfig::default()
    });
    runner
        .run(&header_value(), |h| {
            let r =
                rt.block_on(app.send(Method::GET, "/api/v2/users/me", &Auth::Raw(h.clone()), None));
            let s = r.status.as_u16();
            // An unreadable header is refused; one that reads names no one: anonymous (200 on
            // /me, as Zendesk answers an anonymous caller) only when there is no credential.
            prop_assert!(
                (400..500).contains(&s) || (s == 200 && r.body["user"]["id"].is_null()),
                "{h:?}: {s} {}",
                r.text
            );
            Ok(())
        })
        .expect("no Authorization header gets past the parser or breaks it");
}

fn user_body() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::String),
        Just(json!("a\u{200b}@b.co")),
        Just(json!("x@ｂüｃｈｅｒ.de")),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    let key = prop::sample::select(vec![
        "name",
        "email",
        "external_id",
        "role",
        "organization_id",
        "organization",
        "identities",
        "tags",
        "user_fields",
        "phone",
        "verified",
        "suspended",
        "id",
        "notes",
        "locale",
    ]);
    prop::collection::vec((key, value), 0..8).prop_map(|kv| {
        json!({"user": Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())})
    })
}

fn run_bodies(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(TestApp::spawn(backend));
    let mut runner = TestRunner::new(PtConfig {
        cases: CASES,
        ..PtConfig::default()
    });
    runner
        .run(&user_body(), |body| {
            let r = rt.block_on(app.post("/api/v2/users/create_or_update", body.clone()));
            let s = r.status.as_u16();
            prop_assert!(matches!(s, 200 | 201 | 400..=499), "{body}: {s} {}", r.text);
            prop_assert!(r.body.is_object(), "{body}: a JSON answer, got {}", r.text);
            Ok(())
        })
        .expect("no user body breaks the server");
}

fn run_search(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(TestApp::spawn(backend));
    let word = prop_oneof![
        "\\PC{0,10}",
        prop::sample::select(vec![
            "email:",
            "name:",
            "role:",
            "tags:",
            "organization_id:",
            "external_id:",
            "type:",
            "\"",
            "*",
            "\\",
            "%",
            "_"
        ])
        .prop_map(str::to_owned),
    ];
    let query = prop::collection::vec(word, 0..12).prop_map(|w| w.concat());
    let mut runner = TestRunner::new(PtConfig {
        cases: CASES,
        ..PtConfig::default()
    });
    runner
        .run(&query, |q| {
            let mut url = reqwest::Url::parse(&app.url("/api/v2/users/search")).expect("url");
            url.query_pairs_mut().append_pair("query", &q);
            let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
            let r = rt.block_on(app.get(&path));
            let s = r.status.as_u16();
            prop_assert!(matches!(s, 200 | 400..=499), "{q:?}: {s} {}", r.text);
            Ok(())
        })
        .expect("no query breaks search");
}

#[test]
fn authorization_headers_sqlite() {
    run_auth(Backend::Sqlite)
}
#[test]
fn authorization_headers_postgres() {
    run_auth(Backend::Postgres)
}
#[test]
fn user_bodies_sqlite() {
    run_bodies(Backend::Sqlite)
}
#[test]
fn user_bodies_postgres() {
    run_bodies(Backend::Postgres)
}
#[test]
fn search_queries_sqlite() {
    run_search(Backend::Sqlite)
}
#[test]
fn search_queries_postgres() {
    run_search(Backend::Postgres)
}
