//! Time-based incremental exports: `GET /incremental/users?start_time=` and
//! `/incremental/organizations?start_time=`, in Zendesk's shape (`count`, `end_time`,
//! `next_page`, `end_of_stream`), the last minute left out and a too recent start_time refused.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Auth, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    users_stream_in_change_order_with_deleted_users,
    a_full_page_keeps_its_last_second_whole,
    organizations_stream,
    the_last_minute_waits_and_bad_start_times_are_refused,
);

/// Runs a write straight against the database: the tests date rows in the past, as an export
/// sees them a minute after they changed.
async fn exec(app: &TestApp, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.db_url)
        .await
        .expect("connect");
    sqlx::query(sql).execute(&mut conn).await.expect(sql);
    let _ = conn.close().await;
}

fn ids(body: &Value, key: &str) -> Vec<i64> {
    body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect()
}

/// Follows `next_page` from `path` until `end_of_stream`; every page's ids, in order.
async fn walk(app: &TestApp, path: &str, key: &str) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut url = app.url(path);
    for _ in 0..20 {
        let r = app
            .client
            .get(&url)
            .basic_auth(
                format!("{}/token", crate::helpers::ADMIN_EMAIL),
                Some(crate::helpers::ADMIN_TOKEN),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["count"].as_u64().unwrap() as usize,
            body[key].as_array().unwrap().len()
        );
        pages.push(ids(&body, key));
        let next = body["next_page"].as_str().unwrap().to_owned();
        assert_eq!(
            next,
            format!(
                "{}?start_time={}{}",
                app.url(&format!("/api/v2/incremental/{key}.json")),
                body["end_time"],
                next.split_once(&format!("start_time={}", body["end_time"]))
                    .unwrap()
                    .1
            )
        );
        if body["end_of_stream"] == true {
            return pages;
        }
        url = next;
    }
    panic!("no end of stream");
}

async fn users_stream_in_change_order_with_deleted_users(app: TestApp) {
    let a = app.make_user("A", "a@example.org", "end-user").await;
    let b = app.make_user("B", "b@example.org", "agent").await;
    let c = app.make_user("C", "c@example.org", "end-user").await;
    let gone = app.make_user("Gone", "gone@example.org", "end-user").await;
    assert_eq!(
        app.send(
            reqwest::Method::DELETE,
            &format!("/api/v2/users/{gone}"),
            &Auth::admin(),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    exec(&app, "UPDATE users SET updated_at = 500").await;
    exec(
        &app,
        &format!("UPDATE users SET updated_at = 3000 WHERE id = {a}"),
    )
    .await;
    exec(
        &app,
        &format!("UPDATE users SET updated_at = 2000 WHERE id = {gone}"),
    )
    .await;
    let admin = app.get("/api/v2/users/me").await.body["user"]["id"]
        .as_i64()
        .unwrap();
    let r = app.get("/api/v2/incremental/users.json?start_time=0").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(ids(&r.body, "users"), vec![admin, b, c, gone, a]);
    assert_eq!(r.body["count"], 5);
    assert_eq!(r.body["end_of_stream"], true);
    assert_eq!(r.body["end_time"], 3001);
    assert_eq!(
        r.body["next_page"],
        app.url("/api/v2/incremental/users.json?start_time=3001")
    );
    // The deleted user is in the stream as Zendesk shows one: inactive, its email released.
    let shown = &r.body["users"][3];
    assert_eq!(shown["active"], false);
    assert_eq!(shown["email"], Value::Null);
    assert_eq!(shown["url"], app.url(&format!("/api/v2/users/{gone}.json")));
    // start_time is inclusive; the page after the last is empty and says where to poll next.
    let r = app.get("/api/v2/incremental/users?start_time=2000").await;
    assert_eq!(ids(&r.body, "users"), vec![gone, a]);
    let r = app.get("/api/v2/incremental/users?start_time=3001").await;
    assert_eq!(
        r.body,
        json!({"users": [], "count": 0, "end_time": 3001, "next_page": app.url("/api/v2/incremental/users.json?start_time=3001"), "end_of_stream": true})
    );
    // include=identities sideloads them, and next_page keeps it.
    let r = app
        .get("/api/v2/incremental/users?start_time=2500&include=identities")
        .await;
    assert_eq!(r.body["identities"][0]["value"], "a@example.org");
    assert!(
        r.body["next_page"]
            .as_str()
            .unwrap()
            .ends_with("&include=identities")
    );
    // The cursor export still walks the same users.
    let r = app
        .get("/api/v2/incremental/users/cursor?start_time=0")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ids(&r.body, "users").len(), 5);
}

async fn a_full_page_keeps_its_last_second_whole(app: TestApp) {
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            app.make_user(&format!("U{i}"), &format!("u{i}@example.org"), "end-user")
                .await,
        );
    }
    // The admin at 100; u0..u3 share second 200; u4, u5 at 300; u6 at 400.
    exec(&app, "UPDATE users SET updated_at = 100").await;
    for (i, id) in made.iter().enumerate() {
        let at = match i {
            0..=3 => 200,
            4 | 5 => 300,
            _ => 400,
        };
        exec(
            &app,
            &format!("UPDATE users SET updated_at = {at} WHERE id = {id}"),
        )
        .await;
    }
    let admin = app.get("/api/v2/users/me").await.body["user"]["id"]
        .as_i64()
        .unwrap();
    let pages = walk(
        &app,
        "/api/v2/incremental/users.json?start_time=0&per_page=2",
        "users",
    )
    .await;
    // Two a page, but second 200 is not split: its four users come together.
    assert_eq!(
        pages,
        vec![
            vec![admin, made[0], made[1], made[2], made[3]],
            vec![made[4], made[5]],
            vec![made[6]],
        ]
    );
    let r = app
        .get("/api/v2/incremental/users?start_time=0&per_page=2")
        .await;
    assert_eq!(r.body["end_time"], 201);
    assert_eq!(r.body["end_of_stream"], false);
    assert_eq!(r.body["count"], 5);
    // per_page beyond 1,000, or none at all, is refused.
    for bad in ["0", "1001", "x"] {
        let r = app
            .get(&format!(
                "/api/v2/incremental/users?start_time=0&per_page={bad}"
            ))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn organizations_stream(app: TestApp) {
    let mut made = Vec::new();
    for name in ["One", "Two", "Three"] {
        let r = app
            .post(
                "/api/v2/organizations",
                json!({"organization": {"name": name}}),
            )
            .await;
        made.push(r.body["organization"]["id"].as_i64().unwrap());
    }
    exec(&app, "UPDATE organizations SET updated_at = 900").await;
    exec(
        &app,
        &format!(
            "UPDATE organizations SET updated_at = 800 WHERE id = {}",
            made[2]
        ),
    )
    .await;
    let r = app
        .get("/api/v2/incremental/organizations.json?start_time=0")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        ids(&r.body, "organizations"),
        vec![made[2], made[0], made[1]]
    );
    assert_eq!(r.body["count"], 3);
    assert_eq!(r.body["end_time"], 901);
    assert_eq!(r.body["end_of_stream"], true);
    assert_eq!(
        r.body["next_page"],
        app.url("/api/v2/incremental/organizations.json?start_time=901")
    );
    assert_eq!(r.body["organizations"][0]["name"], "Three");
    let pages = walk(
        &app,
        "/api/v2/incremental/organizations?start_time=0&per_page=1",
        "organizations",
    )
    .await;
    // A full page cannot know it was the last; the next one, empty, says so.
    assert_eq!(pages, vec![vec![made[2]], vec![made[0], made[1]], vec![]]);
    let r = app
        .get("/api/v2/incremental/organizations?start_time=901")
        .await;
    assert_eq!(r.body["organizations"], json!([]));
}

async fn the_last_minute_waits_and_bad_start_times_are_refused(app: TestApp) {
    exec(&app, "UPDATE users SET updated_at = 100").await;
    // Changed just now: not in the stream for a minute.
    let fresh = app
        .make_user("Fresh", "fresh@example.org", "end-user")
        .await;
    let r = app.get("/api/v2/incremental/users?start_time=0").await;
    assert_eq!(r.body["count"], 1, "{}", r.text);
    assert!(!ids(&r.body, "users").contains(&fresh));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for path in ["users", "organizations"] {
        for t in [now, now - 30, now + 3600] {
            let r = app
                .get(&format!("/api/v2/incremental/{path}?start_time={t}"))
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {t}");
            assert_eq!(r.body["error"], "InvalidValue");
            assert!(
                r.body["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("Too recent start_time.")
            );
        }
        let r = app
            .get(&format!(
                "/api/v2/incremental/{path}?start_time={}",
                now - 120
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        for bad in ["", "abc", "-5", "1.5"] {
            let r = app
                .get(&format!("/api/v2/incremental/{path}?start_time={bad}"))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {bad:?}");
        }
        let r = app.get(&format!("/api/v2/incremental/{path}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["error"], "ParameterMissing");
        let r = app
            .get(&format!("/api/v2/incremental/{path}?start_time=1%00"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        // Admins only.
        app.make_user("Ag", &format!("ag-{path}@example.org"), "agent")
            .await;
        let r = app
            .get_as(
                &Auth::as_user(&format!("ag-{path}@example.org")),
                &format!("/api/v2/incremental/{path}?start_time=0"),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = app
            .get_as(
                &Auth::None,
                &format!("/api/v2/incremental/{path}?start_time=0"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

/// The incremental exports share their own budget, 10 a minute as Zendesk's (here 3): beyond
/// it a 429 with `Retry-After`, whichever export is asked.
async fn exports_share_their_rate_limit(backend: Backend) {
    let config = deskd_server::Config {
        rate_limits: true,
        account_rate_limit: Some(1000),
        incremental_rate_limit: Some(3),
        ..deskd_server::Config::default()
    };
    let app = TestApp::spawn_with(backend, config).await;
    for path in [
        "/api/v2/incremental/users?start_time=0",
        "/api/v2/incremental/organizations?start_time=0",
        "/api/v2/incremental/users/cursor?start_time=0",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert!(r.header("retry-after").is_none());
    }
    let r = app.get("/api/v2/incremental/users?start_time=0").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(
        r.text,
        "Number of allowed incremental export API requests per minute exceeded"
    );
    // Other endpoints keep answering.
    assert_eq!(app.get("/api/v2/users/me").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_share_their_rate_limit_sqlite() {
    exports_share_their_rate_limit(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_share_their_rate_limit_postgres() {
    if crate::helpers::pg_skipped() {
        return;
    }
    exports_share_their_rate_limit(Backend::Postgres).await
}
