//! Several replicas on one PostgreSQL: readiness, graceful shutdown, database faults, metrics,
//! request ids, notifications between replicas.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deskd_server::Config;
use deskd_store::{Store, StoreOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, Backend, TestApp, pg_skipped, private_pg};
use crate::on_both_backends;

on_both_backends!(
    readyz_answers_ready,
    metrics_parse_as_prometheus_text_and_move,
    metrics_are_for_admins,
    request_ids_are_echoed_or_made
);

on_both_backends!(config = no_workers; shutdown_turns_unready_first_and_releases_jobs);

/// A server that runs no jobs itself: the replicas a test starts beside it do.
fn no_workers() -> Config {
    Config {
        job_workers: 0,
        ..quiet()
    }
}

fn quiet() -> Config {
    Config {
        rate_limits: false,
        job_lease: Duration::from_secs(2),
        ..Config::default()
    }
}

async fn readyz_answers_ready(app: TestApp) {
    let r = app.get_as(&Auth::None, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"status": "ready"}));
    assert_eq!(
        app.get_as(&Auth::None, "/healthz").await.status,
        StatusCode::OK
    );
}

/// One sample line: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus / OpenMetrics text format strictly enough to catch a malformed line:
/// comments are `# HELP|TYPE|UNIT|EOF`, every other line is a sample of a declared family.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut families = HashSet::new();
    let mut out = Vec::new();
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            assert!(matches!(kind, "HELP" | "TYPE" | "UNIT" | "EOF"), "{line}");
            if kind == "TYPE" {
                let name = parts.next().unwrap();
                let t = parts.next().unwrap();
                assert!(
                    matches!(t, "counter" | "gauge" | "histogram" | "unknown" | "info"),
                    "{line}"
                );
                families.insert(name.to_owned());
            }
            continue;
        }
        let (head, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line}")),
        };
        let (name, labels) = match head.split_once('{') {
            None => (head.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                    labels.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
                }
                (name.to_owned(), labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_total", "_bucket", "_sum", "_count", "_created"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(*f)))
            .unwrap_or(&name);
        assert!(families.contains(family), "undeclared family in {line}");
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(app: &TestApp) -> Vec<Sample> {
    let r = app.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        r.header("content-type")
    );
    parse_metrics(&r.text)
}

async fn metrics_parse_as_prometheus_text_and_move(app: TestApp) {
    let before = scrape(&app).await;
    let route = "/api/v2/users/create_or_update";
    let ok = |s: &[Sample], status: &str| {
        value(
            s,
            "deskd_http_requests_total",
            &[("route", route), ("method", "POST"), ("status", status)],
        )
    };
    for i in 0..3 {
        let r = app
            .upsert(json!({"name": format!("M{i}"), "email": format!("m{i}@example.org")}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // A failed login and an unknown path.
    let bad = Auth::Token("admin@deskd.test".into(), "wrong".into());
    assert_eq!(
        app.get_as(&bad, "/api/v2/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    app.get("/api/v2/nope/42").await;
    // A bulk job's items.
    let users: Vec<Value> = (0..7)
        .map(|i| json!({"name": format!("J{i}"), "email": format!("j{i}@example.org")}))
        .collect();
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({ "users": users }),
        )
        .await;
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    crate::bulk::wait_for(&app, &id).await;
    let after = scrape(&app).await;
    assert_eq!(ok(&after, "201") - ok(&before, "201"), 3.0);
    // Requests are labelled by route template, never by the path asked for.
    assert!(
        value(
            &after,
            "deskd_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0
    );
    assert!(
        after
            .iter()
            .all(|s| !s.labels.get("route").is_some_and(|r| r.contains("42")))
    );
    assert_eq!(
        value(
            &after,
            "deskd_http_request_duration_seconds_count",
            &[("route", route)]
        ) - value(
            &before,
            "deskd_http_request_duration_seconds_count",
            &[("route", route)]
        ),
        3.0
    );
    assert_eq!(
        value(
            &after,
            "deskd_login_failures_total",
            &[("kind", "api_token")]
        ) - value(
            &before,
            "deskd_login_failures_total",
            &[("kind", "api_token")]
        ),
        1.0
    );
    assert_eq!(
        value(&after, "deskd_job_items_total", &[]) - value(&before, "deskd_job_items_total", &[]),
        7.0
    );
    assert!(value(&after, "deskd_jobs", &[("state", "completed")]) >= 1.0);
    assert!(value(&after, "deskd_upsert_batch_size_count", &[]) >= 3.0);
    assert!(value(&after, "deskd_db_pool_max", &[]) >= 2.0);
    assert!(
        value(&after, "deskd_db_pool_in_use", &[]) + value(&after, "deskd_db_pool_idle", &[])
            >= 1.0
    );
}

fn limited_profiles() -> Config {
    Config {
        profile_rate_limit: Some(1),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_rejections_are_counted_by_kind() {
    let app = TestApp::spawn_with(Backend::Sqlite, limited_profiles()).await;
    let before = scrape(&app).await;
    let user = json!({"name": "Once", "email": "once@example.org"});
    assert_eq!(app.upsert(user.clone()).await.status, StatusCode::CREATED);
    assert_eq!(app.upsert(user).await.status, StatusCode::TOO_MANY_REQUESTS);
    let after = scrape(&app).await;
    let n = |s: &[Sample]| value(s, "deskd_rate_limited_total", &[("kind", "profile")]);
    assert_eq!(n(&after) - n(&before), 1.0);
}

async fn metrics_are_for_admins(app: TestApp) {
    assert_eq!(
        app.get_as(&Auth::None, "/metrics").await.status,
        StatusCode::UNAUTHORIZED
    );
    app.make_user("Agent", "agent@example.org", "agent").await;
    let r = app
        .get_as(&Auth::as_user("agent@example.org"), "/metrics")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text.contains("deskd_http_requests"));
    // `open` serves anyone (a private scrape network); `off` serves no one.
    let b = app.backend;
    for (access, anonymous) in [
        (deskd_server::metrics::Access::Open, StatusCode::OK),
        (deskd_server::metrics::Access::Off, StatusCode::NOT_FOUND),
    ] {
        let other = TestApp::replica_of(
            &app,
            Config {
                metrics: access,
                ..quiet()
            },
        )
        .await;
        assert_eq!(
            other.get_as(&Auth::None, "/metrics").await.status,
            anonymous,
            "{access:?} on {b:?}"
        );
    }
}

async fn request_ids_are_echoed_or_made(app: TestApp) {
    let given = app
        .client
        .get(app.url("/api/v2/users/me"))
        .header("x-request-id", "lb-1234-abcd")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "lb-1234-abcd");
    let mut made = HashSet::new();
    for bad in [None, Some("has space"), Some(&*"x".repeat(500))] {
        let mut req = app.client.get(app.url("/healthz"));
        if let Some(b) = bad {
            req = req.header("x-request-id", b);
        }
        let r = req.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        made.insert(id);
    }
    assert_eq!(made.len(), 3, "each request its own id");
    // Errors carry it too.
    let r = app
        .send(Method::GET, "/api/v2/nope", &Auth::admin(), None)
        .await;
    assert!(r.header("x-request-id").is_some());
}

/// SIGTERM's order: `/readyz` 503 at once while requests are still served (the drain delay), no
/// new claims, the job mid-way released at its next chunk (not held until its lease ends), and
/// another replica finishes it with every item once.
async fn shutdown_turns_unready_first_and_releases_jobs(app: TestApp) {
    let long_lease = Config {
        rate_limits: false,
        job_workers: 1,
        // Far beyond the test: only a release lets another replica take the job.
        job_lease: Duration::from_secs(600),
        drain_delay: Duration::from_secs(3),
        ..Config::default()
    };
    let mut a = TestApp::replica_of(&app, long_lease.clone()).await;
    let mut ids = Vec::new();
    for j in 0..4 {
        let users: Vec<Value> = (0..100)
            .map(|i| json!({"name": format!("S{j}-{i}"), "email": format!("s{j}-{i}@example.org")}))
            .collect();
        let r = a
            .post(
                "/api/v2/users/create_or_update_many",
                json!({ "users": users }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        ids.push(r.body["job_status"]["id"].as_str().unwrap().to_owned());
    }
    a.begin_shutdown();
    // Not ready within moments of the signal (the shutdown runs on the server's own task, as a
    // SIGTERM's does, so a request sent at the same instant may still be answered ready), and
    // still serving during the 3 s drain delay.
    let mut r = a.get_as(&Auth::None, "/readyz").await;
    for _ in 0..40 {
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        r = a.get_as(&Auth::None, "/readyz").await;
    }
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["reason"], "shutting down");
    assert_eq!(a.get("/api/v2/users/me").await.status, StatusCode::OK);
    a.stopped().await;
    // Nothing is left leased to the stopped replica (its lease would last ten minutes).
    let held = app
        .scalar("SELECT COUNT(*) FROM jobs WHERE status = 'working' AND lease_until > 1000")
        .await;
    assert_eq!(held, 0, "a stopped replica holds no lease");
    let c = TestApp::replica_of(&app, long_lease).await;
    for id in &ids {
        let done = crate::bulk::wait_for(&app, id).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["results"].as_array().unwrap().len(), 100);
    }
    assert_eq!(app.count_users().await, 1 + 400);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM job_results").await,
        400,
        "each item ran once"
    );
    drop(c);
}

/// Issue 14, test 1: two replicas, 64 clients, 2,000 emails sent in varied case to both: one user
/// per normalised email, and no 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sixty_four_clients_make_one_user_per_email() {
    if pg_skipped() {
        return;
    }
    let a = Arc::new(TestApp::spawn_with(Backend::Postgres, quiet()).await);
    let b = Arc::new(TestApp::replica_of(&a, quiet()).await);
    const EMAILS: usize = 2000;
    const CLIENTS: usize = 64;
    let variants = |e: &str, k: usize| match k % 3 {
        0 => e.to_owned(),
        1 => e.to_uppercase(),
        _ => format!("  {}", e.replacen("user", "User", 1)),
    };
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            // Each email is sent twice, by two clients, in two spellings, to both replicas.
            for n in (c..EMAILS * 2).step_by(CLIENTS) {
                let e = format!("user{}@example.org", n % EMAILS);
                let app = if n % 2 == 0 { &a } else { &b };
                let r = app
                    .upsert(json!({"name": format!("U{n}"), "email": variants(&e, n / EMAILS + n)}))
                    .await;
                statuses.push(r.status.as_u16());
            }
            statuses
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), EMAILS * 2);
    let fives = all.iter().filter(|s| **s >= 500).count();
    assert_eq!(fives, 0, "5xx answers");
    assert!(
        all.iter().all(|s| *s == 200 || *s == 201),
        "{:?}",
        all.iter()
            .filter(|s| **s != 200 && **s != 201)
            .collect::<Vec<_>>()
    );
    assert_eq!(all.iter().filter(|s| **s == 201).count(), EMAILS);
    assert_eq!(a.count_users().await, 1 + EMAILS as i64);
    assert_eq!(
        a.scalar("SELECT COUNT(DISTINCT value_norm) FROM identities WHERE type = 'email'")
            .await,
        1 + EMAILS as i64
    );
    crate::write_races::check_invariants(&a).await;
}

/// Issue 14, test 3: a PostgreSQL of the test's own, stopped in immediate mode under load and
/// started again. Meanwhile both replicas answer 503 (Zendesk's shape, `Retry-After`) and
/// `/readyz` says why; afterwards they serve again without a restart, and every write that was
/// acknowledged (and every job accepted) is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_ride_out_a_postgres_crash_and_lose_no_acknowledged_write() {
    let pg = match private_pg::PgInstance::start_new() {
        Ok(pg) => pg,
        Err(why) => {
            assert!(
                std::env::var("DESKD_TEST_REQUIRE_PG").as_deref() != Ok("1"),
                "a private PostgreSQL is needed: {why}"
            );
            eprintln!("SKIPPED: no private PostgreSQL ({why})");
            return;
        }
    };
    let url = pg.url("test");
    let a = Arc::new(TestApp::on_database(&url, quiet()).await);
    let b = Arc::new(TestApp::on_database(&url, quiet()).await);
    // A job accepted before the crash must complete after it.
    let users: Vec<Value> = (0..100)
        .map(|i| json!({"name": format!("B{i}"), "email": format!("bulk{i}@example.org")}))
        .collect();
    let r = a
        .post(
            "/api/v2/users/create_or_update_many",
            json!({ "users": users }),
        )
        .await;
    let job = r.body["job_status"]["id"]
        .as_str()
        .expect(&r.text)
        .to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut unavailable = 0;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let email = format!("w{w}-{n}@example.org");
                let app = if n % 2 == 0 { &a } else { &b };
                let r = app.upsert(json!({"name": "W", "email": email})).await;
                match r.status.as_u16() {
                    201 => acked.push(email),
                    503 => {
                        assert_eq!(r.header("retry-after"), Some("2"));
                        assert_eq!(r.body["error"], "ServiceUnavailable", "{}", r.text);
                        unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    s => panic!("{s}: {}", r.text),
                }
            }
            (acked, unavailable)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.stop_immediate().expect("pg_ctl stop -m immediate");
    // Down: both replicas say why, and answer 503 rather than hang.
    for app in [&a, &b] {
        let mut seen = None;
        for _ in 0..200 {
            let r = app.get_as(&Auth::None, "/readyz").await;
            if r.status == StatusCode::SERVICE_UNAVAILABLE {
                seen = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = seen.expect("readyz turns 503 while PostgreSQL is down");
        assert!(
            r.body["reason"].as_str().unwrap().contains("database"),
            "{}",
            r.text
        );
        let r = app
            .upsert(json!({"name": "X", "email": "while-down@example.org"}))
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    pg.start().expect("pg_ctl start");
    // Back: each replica recovers by itself.
    for app in [&a, &b] {
        let mut ready = false;
        for _ in 0..600 {
            if app.get_as(&Auth::None, "/readyz").await.status == StatusCode::OK {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "a replica recovers without a restart");
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut unavailable = 0;
    for w in writers {
        let (mut mine, u) = w.await.unwrap();
        acked.append(&mut mine);
        unavailable += u;
    }
    assert!(unavailable > 0, "the outage was seen");
    assert!(!acked.is_empty());
    let done = crate::bulk::wait_for(&a, &job).await;
    assert_eq!(done["status"], "completed", "{done}");
    // Every acknowledged write is there.
    let present: HashSet<String> = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar::<_, String>("SELECT value_norm FROM identities WHERE type = 'email'")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .collect()
    };
    let lost: Vec<_> = acked.iter().filter(|e| !present.contains(*e)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert_eq!(
        a.scalar("SELECT COUNT(*) FROM identities WHERE value_norm LIKE 'bulk%'")
            .await,
        100
    );
    drop((a, b));
}

/// A job queued through one store wakes an idle worker of another store on the same database
/// through NOTIFY (nothing else wakes it: no poll touches this signal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_queued_on_one_replica_wakes_another() {
    if pg_skipped() {
        return;
    }
    let app = TestApp::spawn_with(Backend::Postgres, quiet()).await;
    let other = Store::open(&StoreOptions::new(&app.db_url)).await.unwrap();
    for _ in 0..600 {
        if other.listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(other.listening());
    let wake = other.jobs_wake();
    // The wake-up every (re)connection gives, in case something was missed meanwhile.
    let _ = tokio::time::timeout(Duration::from_millis(200), wake.notified()).await;
    let notified = wake.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({"users": [{"name": "N", "email": "n@example.org"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(30), notified)
        .await
        .expect("NOTIFY reached the other store");
    other.close().await;
}
