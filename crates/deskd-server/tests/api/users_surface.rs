//! Reading and changing users: list (both pagination styles), show_many, search, count,
//! POST /users, PUT /users/{id}, deleted users.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(
    list_pages_by_offset_and_by_cursor,
    list_filters_and_bad_paging,
    show_many_by_ids_and_external_ids,
    search_forms,
    post_and_put_users,
    deleted_users_and_permanent_erasure,
);

async fn seed(app: &TestApp, n: usize) -> Vec<i64> {
    let users: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("Person {i:03}"), "email": format!("p{i}@example.org"), "external_id": format!("ext-{i}"),
                        "role": if i % 5 == 0 { "agent" } else { "end-user" }, "tags": if i % 2 == 0 { json!(["even"]) } else { json!(["odd"]) }}))
        .collect();
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({ "users": users }),
        )
        .await;
    let done = crate::bulk::wait_for(app, r.body["job_status"]["id"].as_str().unwrap()).await;
    done["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

fn ids(body: &Value) -> Vec<i64> {
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect()
}

async fn list_pages_by_offset_and_by_cursor(app: TestApp) {
    let created = seed(&app, 25).await;
    let p1 = app.get("/api/v2/users.json?per_page=10").await;
    assert_eq!(p1.status, StatusCode::OK, "{}", p1.text);
    assert_eq!(p1.body["count"], 26);
    assert_eq!(p1.body["previous_page"], Value::Null);
    let next = p1.body["next_page"].as_str().unwrap().to_owned();
    assert!(next.starts_with(&app.url("/api/v2/users.json?")), "{next}");
    let p2 = app.get(next.strip_prefix(&app.url("")).unwrap()).await;
    assert_eq!(ids(&p2.body).len(), 10);
    let p3 = app.get("/api/v2/users?per_page=10&page=3").await;
    assert_eq!(ids(&p3.body).len(), 6);
    assert_eq!(p3.body["next_page"], Value::Null);

    // Cursor: follow links.next until the empty terminal page.
    let mut seen = Vec::new();
    let mut path = "/api/v2/users.json?page[size]=10".to_owned();
    let mut pages = 0;
    loop {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.body.get("count").is_none());
        pages += 1;
        let got = ids(&r.body);
        if got.is_empty() {
            assert_eq!(r.body["links"], json!({"prev": null, "next": null}));
            assert_eq!(r.body["meta"]["has_more"], false);
            break;
        }
        seen.extend(got);
        let next = r.body["links"]["next"]
            .as_str()
            .expect("non-empty pages link on")
            .to_owned();
        path = next.strip_prefix(&app.url("")).unwrap().to_owned();
    }
    assert_eq!(pages, 4, "3 full or partial pages and the empty one");
    assert_eq!(seen.len(), 26);
    assert!(created.iter().all(|id| seen.contains(id)));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    // Backwards from the last page.
    let last = app
        .get(&format!(
            "/api/v2/users?page[size]=10&page[after]={}",
            cursor_after(&app, 20).await
        ))
        .await;
    let before = last.body["meta"]["before_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = app
        .get(&format!(
            "/api/v2/users?page[size]=10&page[before]={before}"
        ))
        .await;
    assert_eq!(ids(&back.body), seen[10..20].to_vec());
}

async fn cursor_after(app: &TestApp, n: usize) -> String {
    let r = app.get(&format!("/api/v2/users?page[size]={n}")).await;
    r.body["meta"]["after_cursor"].as_str().unwrap().to_owned()
}

async fn list_filters_and_bad_paging(app: TestApp) {
    seed(&app, 10).await;
    let agents = app.get("/api/v2/users?role=agent").await;
    assert_eq!(agents.body["count"], 2);
    let staff = app.get("/api/v2/users?role[]=agent&role[]=admin").await;
    assert_eq!(staff.body["count"], 3);
    let ext = app.get("/api/v2/users?external_id=EXT-3").await;
    assert_eq!(ext.body["users"][0]["email"], "p3@example.org");
    for bad in [
        "/api/v2/users?page[size]=101",
        "/api/v2/users?page[after]=nope",
        "/api/v2/users?page=101",
        "/api/v2/users?role=boss",
    ] {
        let r = app.get(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert!(r.body["error"].is_string());
    }
    // Offset parameters are lenient, as Rails reads them: per_page is capped at 100.
    let clamped = app.get("/api/v2/users?per_page=1000&page=x").await;
    assert_eq!(clamped.status, StatusCode::OK);
    assert_eq!(ids(&clamped.body).len(), 11);
    let end = Auth::as_user("p1@example.org");
    assert_eq!(
        app.get_as(&end, "/api/v2/users").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_as(&Auth::None, "/api/v2/users").await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn show_many_by_ids_and_external_ids(app: TestApp) {
    let created = seed(&app, 5).await;
    let r = app
        .get(&format!(
            "/api/v2/users/show_many.json?ids={},{},9223372036854775807",
            created[2], created[0]
        ))
        .await;
    assert_eq!(ids(&r.body), [created[2], created[0]]);
    assert_eq!(r.body["count"], 2);
    assert_eq!(r.body["next_page"], Value::Null);
    let r = app
        .get("/api/v2/users/show_many?external_ids=EXT-1,ext-4,missing")
        .await;
    assert_eq!(ids(&r.body), [created[1], created[4]]);
    app.send(
        Method::DELETE,
        &format!("/api/v2/users/{}", created[1]),
        &Auth::admin(),
        None,
    )
    .await;
    let r = app
        .get(&format!("/api/v2/users/show_many?ids={}", created[1]))
        .await;
    assert_eq!(r.body["count"], 0);
    let r = app
        .get(&format!(
            "/api/v2/users/show_many?ids={}&include_deleted=true",
            created[1]
        ))
        .await;
    assert_eq!(r.body["count"], 1);
    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let r = app
        .get(&format!("/api/v2/users/show_many?ids={}", many.join(",")))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "TooManyValues");
}

async fn search_forms(app: TestApp) {
    let created = seed(&app, 12).await;
    let q = |s: &str| {
        format!(
            "/api/v2/users/search.json?query={}",
            s.replace(' ', "%20")
                .replace(':', "%3A")
                .replace('"', "%22")
        )
    };
    let r = app.get(&q("email:P3@example.org")).await;
    assert_eq!(ids(&r.body), [created[3]], "{}", r.text);
    assert_eq!(r.body["count"], 1);
    assert_eq!(
        ids(&app.get(&q("external_id:ext-7")).await.body),
        [created[7]]
    );
    assert_eq!(
        ids(&app.get("/api/v2/users/search?external_id=EXT-7").await.body),
        [created[7]]
    );
    assert_eq!(app.get(&q("role:agent")).await.body["count"], 3);
    assert_eq!(
        app.get(&q("tags:even role:end-user")).await.body["count"],
        4
    );
    assert_eq!(app.get(&q(r#"name:"person 011""#)).await.body["count"], 1);
    assert_eq!(app.get(&q("type:user person")).await.body["count"], 12);
    assert_eq!(ids(&app.get(&q("p5@example.org")).await.body), [created[5]]);
    let r = app.get(&q("shoe_size:9")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "InvalidQuery");
    assert_eq!(
        app.get("/api/v2/users/search").await.status,
        StatusCode::BAD_REQUEST
    );
    // Writes are visible at once; deleted users drop out.
    app.send(
        Method::DELETE,
        &format!("/api/v2/users/{}", created[7]),
        &Auth::admin(),
        None,
    )
    .await;
    assert_eq!(
        app.get("/api/v2/users/search?external_id=ext-7").await.body["count"],
        0
    );
    let c = app.get("/api/v2/users/count.json").await;
    assert_eq!(c.body["count"]["value"], 12, "11 seeded left and the admin");
}

async fn post_and_put_users(app: TestApp) {
    for k in ["x", "y"] {
        crate::custom_fields::make_field(
            &app,
            "user_fields",
            json!({"key": k, "title": k, "type": "integer"}),
        )
        .await;
    }
    let r = app.post("/api/v2/users.json", json!({"user": {"id": "", "name": "Posted", "email": "posted@example.org", "tags": ["a", "b"], "user_fields": {"x": 1, "y": 2}}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["user"]["id"].as_i64().unwrap();
    assert_eq!(
        r.header("location").unwrap(),
        app.url(&format!("/api/v2/users/{id}.json"))
    );
    let dup = app
        .post(
            "/api/v2/users",
            json!({"user": {"name": "Again", "email": "POSTED@example.org"}}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(dup.body["details"]["email"][0]["error"], "DuplicateValue");
    let path = format!("/api/v2/users/{id}.json");
    let u = app.put(&path, json!({"user": {"tags": ["b", "c"], "user_fields": {"x": null}, "email": "second@example.org", "notes": "n"}})).await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    assert_eq!(u.body["user"]["tags"], json!(["b", "c"]));
    assert_eq!(u.body["user"]["user_fields"], json!({"x": null, "y": 2}));
    assert_eq!(u.body["user"]["email"], "posted@example.org");
    assert_eq!(u.body["user"]["name"], "Posted");
    let missing = app
        .send(
            Method::PUT,
            "/api/v2/users/9223372036854775807",
            &Auth::admin(),
            Some(br#"{"user": {"name": "x"}}"#.to_vec()),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad = app.put(&path, json!({"user": {"name": ""}})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let other = app
        .make_user("Other", "other@example.org", "end-user")
        .await;
    let _ = other;
    let clash = app
        .put(&path, json!({"user": {"email": "other@example.org"}}))
        .await;
    assert_eq!(clash.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get(&format!("/api/v2/users/{id}")).await.body["user"]["notes"],
        "n",
        "the failed PUT wrote nothing"
    );
}

async fn deleted_users_and_permanent_erasure(app: TestApp) {
    crate::custom_fields::make_field(&app, "user_fields", json!({"key": "ssn", "title": "SSN"}))
        .await;
    let r = app.upsert(json!({"name": "Private Person", "email": "private@example.org", "phone": "+15550001", "notes": "secret",
        "user_fields": {"ssn": "123"}, "tags": ["vip"]})).await;
    let id = r.body["user"]["id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/v2/deleted_users/{id}")).await.status,
        StatusCode::NOT_FOUND,
        "not deleted yet"
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v2/deleted_users/{id}"),
            &Auth::admin(),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    app.send(
        Method::DELETE,
        &format!("/api/v2/users/{id}"),
        &Auth::admin(),
        None,
    )
    .await;
    let list = app.get("/api/v2/deleted_users.json").await;
    assert_eq!(list.body["count"], 1);
    assert_eq!(list.body["deleted_users"][0]["id"].as_i64(), Some(id));
    assert_eq!(
        app.get("/api/v2/deleted_users/count").await.body["count"]["value"],
        1
    );
    let show = app.get(&format!("/api/v2/deleted_users/{id}.json")).await;
    assert_eq!(show.body["deleted_user"]["name"], "Private Person");
    let erased = app
        .send(
            Method::DELETE,
            &format!("/api/v2/deleted_users/{id}"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    assert_eq!(
        erased.body["deleted_user"]["name"],
        "Permanently Deleted User"
    );
    assert_eq!(
        erased.body["deleted_user"]["url"],
        app.url(&format!("/api/v2/deleted_users/{id}.json"))
    );
    // Nothing personal is left in the row.
    let leftover = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM users WHERE id = {id} AND (phone IS NOT NULL OR notes IS NOT NULL OR user_fields <> '{{}}' OR tags <> '[]' OR name LIKE '%Private%')"
        ))
        .await;
    assert_eq!(leftover, 0);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM identities WHERE user_id = {id}"
        ))
        .await,
        0
    );
}

on_both_backends!(incremental_export_walks_all_changes);

async fn incremental_export_walks_all_changes(app: TestApp) {
    let created = seed(&app, 7).await;
    let mut path =
        "/api/v2/incremental/users/cursor.json?start_time=0&per_page=3&include=identities"
            .to_owned();
    let mut seen = Vec::new();
    loop {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        seen.extend(ids(&r.body));
        assert!(r.body["identities"].is_array());
        let next = r.body["after_url"].as_str().unwrap().to_owned();
        assert!(
            next.starts_with(&app.url("/api/v2/incremental/users/cursor.json?cursor=")),
            "{next}"
        );
        path = next.strip_prefix(&app.url("")).unwrap().to_owned();
        if r.body["end_of_stream"] == true {
            break;
        }
    }
    assert_eq!(seen.len(), 8, "the admin and seven seeded users");
    assert!(created.iter().all(|id| seen.contains(id)));
    // Nothing new: the saved cursor gives an empty page and stays put.
    let r = app.get(&path).await;
    assert_eq!(ids(&r.body).len(), 0);
    assert_eq!(r.body["end_of_stream"], true);
    // A later change shows up on that cursor.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.upsert(json!({"email": "p2@example.org", "notes": "changed"}))
        .await;
    let r = app.get(&path).await;
    assert_eq!(ids(&r.body), [created[2]]);
    for bad in [
        "/api/v2/incremental/users/cursor",
        "/api/v2/incremental/users/cursor?start_time=x",
        "/api/v2/incremental/users/cursor?cursor=%%",
        "/api/v2/incremental/users/cursor?start_time=99999999999",
    ] {
        assert_eq!(app.get(bad).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        app.get_as(
            &Auth::as_user("p1@example.org"),
            "/api/v2/incremental/users/cursor?start_time=0"
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}
