//! Search: `/users/search` with Zendesk's syntax (bare terms, phrases, `-`, `*`, sorting) and the
//! unified `/search`, `/search/count`, `/search/export`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    users_search_syntax,
    unified_search_and_count,
    export_pages_by_cursor,
    bad_searches
);

async fn seed(app: &TestApp) {
    for u in [
        json!({"name": "Roger Wilco", "email": "roger@example.org", "notes": "likes cake", "phone": "+15550101", "tags": ["vip"]}),
        json!({"name": "Ann Wilcox", "email": "ann@corp.example", "tags": ["x"]}),
        json!({"name": "Bob", "email": "bob@example.org", "details": "quiet"}),
    ] {
        let r = app.upsert(u).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    for o in [
        json!({"name": "Acme Corp", "details": "big wilco customer", "tags": ["vip"]}),
        json!({"name": "Globex", "notes": "n"}),
    ] {
        let r = app
            .post("/api/v2/organizations", json!({ "organization": o }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

fn names(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn users(app: &TestApp, query: &str) -> Vec<String> {
    let r = app
        .get(&format!(
            "/api/v2/users/search.json?query={}",
            urlencode(query)
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
    names(&r.body, "users")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn users_search_syntax(app: TestApp) {
    seed(&app).await;
    // A bare term: part of a name, an email address, the notes or the phone.
    assert_eq!(users(&app, "wilco").await, ["Roger Wilco", "Ann Wilcox"]);
    assert_eq!(users(&app, "roger@example.org").await, ["Roger Wilco"]);
    assert_eq!(users(&app, "cake").await, ["Roger Wilco"]);
    assert_eq!(users(&app, "5550101").await, ["Roger Wilco"]);
    // Words all hold; a quoted phrase holds as written.
    assert_eq!(users(&app, "wilco ann").await, ["Ann Wilcox"]);
    assert_eq!(users(&app, "\"roger wilco\"").await, ["Roger Wilco"]);
    assert!(users(&app, "\"wilco roger\"").await.is_empty());
    // `-` excludes; `*` is a wildcard.
    assert_eq!(users(&app, "wilco -tags:vip").await, ["Ann Wilcox"]);
    assert_eq!(users(&app, "wilco -roger").await, ["Ann Wilcox"]);
    assert_eq!(users(&app, "email:*@corp.example").await, ["Ann Wilcox"]);
    assert_eq!(users(&app, "name:r*r").await, ["Roger Wilco"]);
    assert_eq!(users(&app, "details:quiet").await, ["Bob"]);
    assert_eq!(users(&app, "type:user phone:+1555").await, ["Roger Wilco"]);
    // Dates.
    assert_eq!(users(&app, "created>2000-01-01 wilco").await.len(), 2);
    assert!(users(&app, "created<2000-01-01").await.is_empty());
    // Sorting.
    let r = app
        .get("/api/v2/users/search.json?query=example&sort_by=created_at&sort_order=desc")
        .await;
    let n = names(&r.body, "users");
    assert_eq!(n.first().map(String::as_str), Some("Bob"), "{n:?}");
    let r = app
        .get("/api/v2/users/search.json?query=example&sort_by=created_at&sort_order=asc")
        .await;
    assert_eq!(
        names(&r.body, "users").first().map(String::as_str),
        Some("Roger Wilco")
    );
    let r = app
        .get("/api/v2/users/search?query=type:organization acme")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

async fn unified_search_and_count(app: TestApp) {
    seed(&app).await;
    let r = app.get("/api/v2/search.json?query=type:user%20roger").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["results"][0]["result_type"], "user");
    assert_eq!(r.body["results"][0]["email"], "roger@example.org");
    assert!(r.body.get("facets").is_some());
    assert_eq!(r.body["next_page"], Value::Null);
    // No type: users and organizations together.
    let r = app.get("/api/v2/search?query=tags:vip").await;
    assert_eq!(r.body["count"], 2, "{}", r.text);
    let kinds: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["result_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["user", "organization"]);
    let r = app.get("/api/v2/search?query=wilco").await;
    assert_eq!(r.body["count"], 3, "{}", r.text);
    let r = app
        .get("/api/v2/search?query=type:organization%20acme")
        .await;
    assert_eq!(names(&r.body, "results"), ["Acme Corp"]);
    assert_eq!(r.body["results"][0]["result_type"], "organization");
    let r = app
        .get("/api/v2/search?query=type:organization%20-vip%20-tags:vip")
        .await;
    assert_eq!(names(&r.body, "results"), ["Globex"]);
    // Nothing of a kind deskd does not keep.
    let r = app
        .get("/api/v2/search?query=type:ticket%20status:open")
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "status is a ticket field: {}",
        r.text
    );
    let r = app.get("/api/v2/search?query=type:ticket").await;
    assert_eq!(
        (r.status, r.body["count"].clone()),
        (StatusCode::OK, json!(0))
    );
    // Paging and sorting across both kinds.
    let r = app
        .get("/api/v2/search?query=e&per_page=2&sort_by=created_at&sort_order=asc")
        .await;
    assert_eq!(r.body["count"], 6, "{}", r.text);
    assert_eq!(names(&r.body, "results"), ["Admin", "Roger Wilco"]);
    let next = r.body["next_page"].as_str().unwrap().to_owned();
    assert!(
        next.contains("page=2") && next.contains("sort_by=created_at"),
        "{next}"
    );
    let r = app.get(&next[next.find("/api/v2").unwrap()..]).await;
    assert_eq!(names(&r.body, "results"), ["Ann Wilcox", "Bob"]);
    let r = app.get("/api/v2/search?query=e&sort_by=updated_at").await;
    assert_eq!(
        names(&r.body, "results").first().map(String::as_str),
        Some("Globex")
    );
    // Count.
    let r = app.get("/api/v2/search/count.json?query=tags:vip").await;
    assert_eq!(r.body, json!({"count": 2}));
    let r = app
        .get("/api/v2/search/count?query=type:user%20-tags:vip")
        .await;
    assert_eq!(r.body, json!({"count": 3}), "Ann, Bob and the admin");
    // Deleted users are not found.
    let id = app.get("/api/v2/users/search?query=bob").await.body["users"][0]["id"]
        .as_i64()
        .unwrap();
    app.send(
        reqwest::Method::DELETE,
        &format!("/api/v2/users/{id}"),
        &crate::helpers::Auth::admin(),
        None,
    )
    .await;
    assert_eq!(
        app.get("/api/v2/search/count?query=bob").await.body["count"],
        0
    );
}

async fn export_pages_by_cursor(app: TestApp) {
    seed(&app).await;
    let mut next =
        "/api/v2/search/export.json?query=example&filter[type]=user&page[size]=1".to_owned();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let r = app.get(&next).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.body.get("count").is_none());
        assert_eq!(r.body["links"]["prev"], Value::Null);
        assert_eq!(r.body["meta"]["before_cursor"], Value::Null);
        for v in r.body["results"].as_array().unwrap() {
            assert_eq!(v["result_type"], "user");
            seen.push(v["name"].as_str().unwrap().to_owned());
        }
        // The empty page after the last one ends the walk.
        let Some(link) = r.body["links"]["next"].as_str() else {
            assert_eq!(r.body["results"], json!([]));
            assert_eq!(r.body["meta"]["has_more"], false);
            break;
        };
        assert!(link.contains("filter%5Btype%5D=user"), "{link}");
        next = link[link.find("/api/v2").unwrap()..].to_owned();
    }
    assert_eq!(seen, ["Roger Wilco", "Ann Wilcox", "Bob"]);
    let r = app
        .get("/api/v2/search/export?query=type:user%20example&filter[type]=user")
        .await;
    assert_eq!(r.body["meta"]["has_more"], false);
    assert_eq!(names(&r.body, "results").len(), 3);
    let r = app
        .get("/api/v2/search/export?query=wilco&filter[type]=organization")
        .await;
    assert_eq!(names(&r.body, "results"), ["Acme Corp"]);
    let r = app
        .get("/api/v2/search/export?query=x&filter[type]=ticket")
        .await;
    assert_eq!(r.body["results"], json!([]));
}

async fn bad_searches(app: TestApp) {
    for (path, status) in [
        ("/api/v2/search", 400),
        ("/api/v2/search?query=", 400),
        ("/api/v2/search?query=shoe:9", 400),
        ("/api/v2/search?query=type:spaceship", 400),
        ("/api/v2/search?query=created>tomorrow", 400),
        ("/api/v2/search?query=x&page=11&per_page=100", 422),
        ("/api/v2/search?query=x&page=9223372036854775807", 422),
        ("/api/v2/search/count", 400),
        ("/api/v2/search/export?query=x", 400),
        (
            "/api/v2/search/export?query=type:user&filter[type]=organization",
            400,
        ),
        ("/api/v2/search/export?query=x&filter[type]=spaceship", 400),
        (
            "/api/v2/search/export?query=x&filter[type]=user&page[size]=1001",
            400,
        ),
        (
            "/api/v2/search/export?query=x&filter[type]=user&page[after]=garbage",
            400,
        ),
        ("/api/v2/users/search?query=-type:user", 400),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.text);
        assert!(r.body["error"].is_string(), "{path}: {}", r.text);
    }
    // Hostile input is a clean answer: LIKE metacharacters are literal, odd Unicode is fine.
    for q in [
        "%25",
        "_",
        "\\",
        "%F0%9F%8E%89",
        "%22unterminated",
        "a%2Ab%2A%2A",
    ] {
        let r = app.get(&format!("/api/v2/search?query={q}")).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
    }
    let r = app.get("/api/v2/search?query=%25").await;
    assert_eq!(r.body["count"], 0, "% is literal");
}
