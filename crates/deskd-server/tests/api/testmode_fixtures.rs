//! Test mode's fixtures and snapshots over HTTP, on both backends: export, import (a refused
//! document changes nothing), the round trip export → reset → import → export, snapshots.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, TestApp};

macro_rules! in_test_mode {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::spawn($crate::helpers::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::spawn($crate::helpers::Backend::Postgres).await).await
            }
        }
    )*};
}

async fn spawn(backend: crate::helpers::Backend) -> TestApp {
    TestApp::spawn_with(backend, crate::testmode::test_config()).await
}

/// An account with a bit of everything: organizations, users of each role with several
/// identities, tags and fields, memberships (the owner's too), a soft-deleted user, a setting.
async fn populate(app: &TestApp) -> (i64, i64) {
    // Values of undefined fields are dropped, as Zendesk drops them: define these first.
    for (path, key, kind, name) in [
        ("/api/v2/user_fields", "user_field", "text", "plan"),
        ("/api/v2/user_fields", "user_field", "integer", "seats"),
        (
            "/api/v2/organization_fields",
            "organization_field",
            "text",
            "tier",
        ),
    ] {
        let r = app
            .post(
                path,
                json!({key: {"type": kind, "key": name, "title": name}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Acme", "external_id": "acme-1", "tags": ["gold", "eu"],
                   "domain_names": ["acme.test"], "organization_fields": {"tier": "gold"},
                   "details": "Ünïcode ☃", "shared_tickets": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let acme = r.body["organization"]["id"].as_i64().unwrap();
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Globex"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let globex = r.body["organization"]["id"].as_i64().unwrap();
    let r = app
        .upsert(json!({"name": "Ann Agent", "email": "ann@example.org", "role": "agent",
                       "external_id": "ext-ann", "tags": ["vip", "beta"], "user_fields": {"plan": "pro", "seats": 3},
                       "organization_id": acme, "phone": "+15550001", "alias": "annie",
                       "identities": [{"type": "email", "value": "ann2@example.org"},
                                      {"type": "twitter", "value": "annagent"}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ann = r.body["user"]["id"].as_i64().unwrap();
    let r = app
        .post(
            "/api/v2/organization_memberships",
            json!({"organization_membership": {"user_id": ann, "organization_id": globex}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let end = app.make_user("Ed End", "ed@example.org", "end-user").await;
    let gone = app.make_user("Gone", "gone@example.org", "end-user").await;
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v2/users/{gone}"),
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The owner in an organization too.
    let me = app.get("/api/v2/users/me").await.body["user"]["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            "/api/v2/organization_memberships",
            json!({"organization_membership": {"user_id": me, "organization_id": globex}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .put(
            "/api/v2/account/settings",
            json!({"settings": {"deskd": {"bulk_user_import": false}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (ann, end)
}

async fn export(app: &TestApp) -> Value {
    let r = app.get("/__deskd/export").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

in_test_mode!(
    export_reset_import_export_is_the_same_document,
    a_refused_fixture_changes_nothing,
    a_hand_written_fixture_gets_ids_and_defaults,
    snapshots_save_and_restore_a_state,
    fixtures_and_snapshots_need_an_admin,
);

async fn export_reset_import_export_is_the_same_document(app: TestApp) {
    let (ann, end) = populate(&app).await;
    let before = export(&app).await;
    assert_eq!(before["deskd_fixture"], 1);
    assert_eq!(before["settings"], json!({"bulk_user_import": false}));
    assert_eq!(before["organizations"].as_array().unwrap().len(), 2);
    assert_eq!(before["users"].as_array().unwrap().len(), 4, "{before}");
    assert_eq!(before["memberships"].as_array().unwrap().len(), 3);
    let owner: Vec<&Value> = before["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["owner"] == true)
        .collect();
    assert_eq!(owner.len(), 1);
    // No secret in the document.
    let text = before.to_string();
    assert!(
        !text.contains("password") && !text.contains("$argon2"),
        "{text}"
    );

    let r = app.post("/__deskd/reset", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_ne!(export(&app).await, before);
    let r = app.post("/__deskd/import", before.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["import"]["users"], 3, "{}", r.text);
    assert_eq!(export(&app).await, before);
    // Importing over a populated account replaces it: the same document again.
    let r = app.post("/__deskd/import", before.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(export(&app).await, before);

    // The API sees the imported users as they were.
    let r = app.get(&format!("/api/v2/users/{ann}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["email"], "ann@example.org");
    assert_eq!(r.body["user"]["tags"], json!(["vip", "beta"]));
    assert_eq!(r.body["user"]["user_fields"]["seats"], 3);
    let r = app.get(&format!("/api/v2/users/{ann}/identities")).await;
    assert_eq!(
        r.body["identities"].as_array().unwrap().len(),
        3,
        "{}",
        r.text
    );
    let r = app.get("/api/v2/users/search?query=ed@example.org").await;
    assert_eq!(r.body["users"][0]["id"], end, "{}", r.text);
    // Emails stay unique after an import, and new records get new ids.
    let r = app
        .upsert(json!({"name": "Other", "email": "ANN2@example.org"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "an existing identity: {}", r.text);
    assert_eq!(r.body["user"]["id"], ann);
    let fresh = app
        .make_user("Fresh", "fresh@example.org", "end-user")
        .await;
    let max_before = before["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(fresh > max_before, "{fresh} <= {max_before}");
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "acme"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // The owner still logs in with its token, and is still in Globex.
    let r = app.get("/api/v2/users/me").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["user"]["organization_id"].is_i64(), "{}", r.text);
}

async fn a_refused_fixture_changes_nothing(app: TestApp) {
    populate(&app).await;
    let before = export(&app).await;
    let ok_user = json!({"id": 1001, "name": "A", "identities": [{"type": "email", "value": "a@example.org"}]});
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), ""),
        (json!({"deskd_fixture": 2}), "/deskd_fixture"),
        (json!({"users": {}}), "/users"),
        (json!({"colour": 1}), "/colour"),
        (
            json!({"users": [ok_user, {"name": "B", "email": "A@Example.org"}]}),
            "/users/1/email",
        ),
        (
            json!({"users": [{"name": "B", "email": "not an email"}]}),
            "/users/0/email",
        ),
        (
            json!({"users": [{"name": "B", "favourite": 1}]}),
            "/users/0/favourite",
        ),
        (
            json!({"users": [{"email": "b@example.org"}]}),
            "/users/0/name",
        ),
        (
            json!({"users": [{"name": "B", "role": "root"}]}),
            "/users/0/role",
        ),
        (json!({"users": [{"name": "B\u{0}"}]}), "/users/0/name"),
        (
            json!({"users": [{"name": "B", "created_at": "yesterday"}]}),
            "/users/0/created_at",
        ),
        (json!({"users": [{"id": -4, "name": "B"}]}), "/users/0/id"),
        (
            json!({"users": [{"id": i64::MAX, "name": "B"}]}),
            "/users/0/id",
        ),
        (
            json!({"organizations": [{"id": 1.5, "name": "O"}]}),
            "/organizations/0/id",
        ),
        (
            json!({"users": [{"id": 7, "name": "B"}, {"id": 7, "name": "C"}]}),
            "/users/1/id",
        ),
        (
            json!({"users": [{"name": "B", "owner": true, "role": "end-user"}]}),
            "/users/0/role",
        ),
        (
            json!({"users": [{"name": "B", "email": "admin@deskd.test"}]}),
            "/users/0/email",
        ),
        (
            json!({"users": [{"name": "B", "organization_id": 99}]}),
            "/users/0/organization_id",
        ),
        (
            json!({"users": [{"name": "B", "external_id": "x"}, {"name": "C", "external_id": " X "}]}),
            "/users/1/external_id",
        ),
        (
            json!({"organizations": [{"name": "O"}, {"name": " o "}]}),
            "/organizations/1/name",
        ),
        (
            json!({"organizations": [{"details": "no name"}]}),
            "/organizations/0/name",
        ),
        (
            json!({"memberships": [{"user_id": 5, "organization_id": 6}]}),
            "/memberships/0/user_id",
        ),
        (
            json!({"organizations": [{"id": 6, "name": "O"}], "users": [{"id": 5, "name": "U"}],
                "memberships": [{"user_id": 5, "organization_id": 6, "default": true},
                                {"user_id": 5, "organization_id": 6}]}),
            "/memberships/1",
        ),
        (
            json!({"settings": {"bulk_user_import": "yes"}}),
            "/settings/bulk_user_import",
        ),
        (
            json!({"users": [{"name": "B", "identities": [{"type": "email", "value": "b@example.org", "primary": true},
                                                       {"type": "email", "value": "c@example.org", "primary": true}]}]}),
            "/users/0/identities/1/primary",
        ),
    ];
    for (doc, pointer) in cases {
        let r = app.post("/__deskd/import", doc.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{doc}: {}", r.text);
        if r.body.is_object() && pointer.is_empty() {
            // A body that is not an object is refused before the fixture is read.
            continue;
        }
        assert_eq!(r.body["error"], "InvalidFixture", "{doc}: {}", r.text);
        assert_eq!(r.body["details"]["pointer"], pointer, "{doc}: {}", r.text);
        assert!(
            r.body["description"].as_str().unwrap().starts_with(pointer),
            "{}",
            r.text
        );
        assert_eq!(export(&app).await, before, "{doc} changed the account");
    }
    // The owner's id on another user is refused; marked as the owner it is fine.
    let me = app.get("/api/v2/users/me").await.body["user"]["id"].clone();
    let r = app
        .post(
            "/__deskd/import",
            json!({"users": [{"id": me, "name": "Not me"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["details"]["pointer"], "/users/0/id");
    let r = app
        .post(
            "/__deskd/import",
            json!({"users": [{"id": me, "owner": true, "name": "Me"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The owner is kept as it was, name included.
    let r = app.get("/api/v2/users/me").await;
    assert_eq!(
        r.body["user"]["name"],
        before["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["owner"] == true)
            .unwrap()["name"]
    );
}

async fn a_hand_written_fixture_gets_ids_and_defaults(app: TestApp) {
    let doc = json!({
        "organizations": [{"id": 7, "name": "Acme"}, {"name": "No id"}],
        "users": [
            {"name": "Ann", "email": "ann@example.org", "role": "agent", "organization_id": 7},
            {"name": "Bob", "email": "bob@example.org", "organization": {"name": "no ID"}},
            {"id": 42, "name": "Cy", "identities": [{"type": "phone_number", "value": "+15550002"}]},
        ],
    });
    let r = app.post("/__deskd/import", doc).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get("/api/v2/users/search?query=ann@example.org").await;
    let ann = &r.body["users"][0];
    assert_eq!(ann["role"], "agent", "{}", r.text);
    assert_eq!(ann["organization_id"], 7);
    assert_eq!(ann["time_zone"], "America/New_York");
    let r = app.get("/api/v2/users/search?query=bob@example.org").await;
    let bob_org = r.body["users"][0]["organization_id"].as_i64().unwrap();
    let r = app.get(&format!("/api/v2/organizations/{bob_org}")).await;
    assert_eq!(r.body["organization"]["name"], "No id", "{}", r.text);
    let r = app.get("/api/v2/users/42").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["phone"], Value::Null);
    let r = app.get("/api/v2/users/42/identities").await;
    assert_eq!(r.body["identities"][0]["value"], "+15550002", "{}", r.text);
    // Records created afterwards get ids of their own on both backends.
    let id = app.make_user("Dee", "dee@example.org", "end-user").await;
    assert!(id != 42 && id > 0);
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "New"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_ne!(r.body["organization"]["id"], 7);
}

async fn snapshots_save_and_restore_a_state(app: TestApp) {
    let (ann, _) = populate(&app).await;
    let saved = export(&app).await;
    let r = app.post("/__deskd/snapshots/base", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["snapshot"]["name"], "base");
    assert_eq!(r.body["snapshot"]["users"], 4);
    // Change everything a test might.
    app.make_user("Later", "later@example.org", "end-user")
        .await;
    let r = app
        .put(
            &format!("/api/v2/users/{ann}"),
            json!({"user": {"name": "Renamed", "tags": []}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.post("/__deskd/reset", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    app.make_user("After reset", "after@example.org", "agent")
        .await;
    let r = app.post("/__deskd/snapshots/base/restore", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(export(&app).await, saved);
    let r = app.get(&format!("/api/v2/users/{ann}")).await;
    assert_eq!(r.body["user"]["name"], "Ann Agent");
    // Twice, and after changes again.
    app.make_user("Again", "again@example.org", "end-user")
        .await;
    let r = app.post("/__deskd/snapshots/base/restore", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(export(&app).await, saved);
    // Restored emails are still unique; a new user gets a new id.
    let r = app
        .upsert(json!({"name": "x", "email": "ann@example.org"}))
        .await;
    assert_eq!(r.body["user"]["id"], ann, "{}", r.text);
    // Listing, replacing, deleting.
    let r = app.post("/__deskd/snapshots/empty.1", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.post("/__deskd/snapshots/base", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.get("/__deskd/snapshots").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let names: Vec<&str> = r.body["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "empty.1"]);
    let r = app
        .send(
            Method::DELETE,
            "/__deskd/snapshots/base",
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.post("/__deskd/snapshots/base/restore", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = app
        .send(
            Method::DELETE,
            "/__deskd/snapshots/base",
            &Auth::admin(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // (A U+0000 anywhere in a path is refused before routing.)
    for bad in ["a%20b", &"n".repeat(65), "..%2F", "%C3%A9"] {
        let r = app
            .post(&format!("/__deskd/snapshots/{bad}"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert_eq!(r.body["error"], "InvalidSnapshot", "{bad}: {}", r.text);
    }
}

async fn fixtures_and_snapshots_need_an_admin(app: TestApp) {
    app.make_user("Agent", "agent@example.org", "agent").await;
    app.make_user("End", "end@example.org", "end-user").await;
    let before = export(&app).await;
    let calls: &[(Method, &str)] = &[
        (Method::GET, "/__deskd/export"),
        (Method::POST, "/__deskd/import"),
        (Method::GET, "/__deskd/snapshots"),
        (Method::POST, "/__deskd/snapshots/s"),
        (Method::POST, "/__deskd/snapshots/s/restore"),
        (Method::DELETE, "/__deskd/snapshots/s"),
    ];
    for (method, path) in calls {
        let r = app
            .send(method.clone(), path, &Auth::None, Some(b"{}".to_vec()))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        for who in ["agent@example.org", "end@example.org"] {
            let r = app
                .send(
                    method.clone(),
                    path,
                    &Auth::as_user(who),
                    Some(b"{}".to_vec()),
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {method} {path}");
        }
    }
    // The admin's own bearer tokens: a read-only one changes nothing here.
    for (scopes, allowed) in [
        (json!(["read"]), false),
        (json!(["users:read"]), false),
        (json!(["read", "write"]), true),
    ] {
        let t = app
            .post("/api/v2/oauth/tokens", json!({"token": {"scopes": scopes}}))
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{}", t.text);
        let auth = Auth::Bearer(t.body["token"]["full_token"].as_str().unwrap().to_owned());
        for (method, path) in calls.iter().filter(|(m, _)| *m != Method::GET) {
            let r = app
                .send(method.clone(), path, &auth, Some(b"{}".to_vec()))
                .await;
            if allowed {
                assert_ne!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{scopes}: {method} {path}: {}",
                    r.text
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{scopes}: {method} {path}: {}",
                    r.text
                );
            }
        }
        if !allowed {
            assert_eq!(export(&app).await, before);
        }
    }
}

in_test_mode!(imports_and_restores_under_concurrent_writes_fail_nothing);

/// Imports and snapshot restores while writers (on this server and, on PostgreSQL, on a second
/// server of the same database) upsert users whose emails and organizations the fixture also
/// has: every write, import and restore answers 2xx, and the account stays consistent.
async fn imports_and_restores_under_concurrent_writes_fail_nothing(app: TestApp) {
    let fixture = json!({
        "organizations": [{"id": 700, "name": "Shared Org"}],
        "users": (0..20).map(|i| json!({"id": 5000 + i, "name": format!("F{i}"),
            "email": format!("f{}@fixture.test", i), "organization_id": 700})).collect::<Vec<_>>(),
    });
    let r = app.post("/__deskd/import", fixture.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let expected = export(&app).await;
    assert_eq!(
        app.post("/__deskd/snapshots/f", json!({})).await.status,
        StatusCode::CREATED
    );
    let replica = match app.backend {
        crate::helpers::Backend::Postgres => Some(std::sync::Arc::new(
            TestApp::replica_of(&app, crate::testmode::test_config()).await,
        )),
        crate::helpers::Backend::Sqlite => None,
    };
    let app = std::sync::Arc::new(app);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let target = match (&replica, w % 2) {
            (Some(r), 1) => r.clone(),
            _ => app.clone(),
        };
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = target
                    .upsert(json!({"name": format!("W{w} {i}"), "email": format!("f{}@fixture.test", i % 25),
                                   "organization": {"name": if i % 2 == 0 { "Shared Org" } else { "Other" }}}))
                    .await;
                assert!(r.status.is_success(), "{}: {}", r.status, r.text);
                i += 1;
            }
        }));
    }
    for round in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = app.post("/__deskd/import", fixture.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "import {round}: {}", r.text);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = app.post("/__deskd/snapshots/f/restore", json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "restore {round}: {}", r.text);
        // An export taken mid-write is whole: importing it is never refused.
        let doc = export(&app).await;
        let r = app.post("/__deskd/import", doc).await;
        assert_eq!(r.status, StatusCode::OK, "re-import {round}: {}", r.text);
        let r = app
            .post(&format!("/__deskd/snapshots/mid{round}"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "save {round}: {}", r.text);
        let r = app
            .post(&format!("/__deskd/snapshots/mid{round}/restore"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "restore mid {round}: {}", r.text);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    for sql in [
        "SELECT COUNT(*) FROM identities WHERE user_id NOT IN (SELECT id FROM users)",
        "SELECT COUNT(*) FROM organization_memberships WHERE user_id NOT IN (SELECT id FROM users)",
        "SELECT COUNT(*) FROM users u WHERE u.organization_id IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM organization_memberships m WHERE m.user_id = u.id AND m.organization_id = u.organization_id AND m.is_default = 1)",
        "SELECT COUNT(*) FROM (SELECT user_id FROM organization_memberships WHERE is_default = 1 GROUP BY user_id HAVING COUNT(*) > 1) x",
    ] {
        assert_eq!(app.scalar(sql).await, 0, "{sql}");
    }
    let r = app.post("/__deskd/snapshots/f/restore", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(export(&app).await, expected);
}
