//! `/user_fields` and `/organization_fields`, and field values on every user and organization
//! write path.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bulk::wait_for;
use crate::helpers::{Auth, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    field_crud_and_shapes,
    dropdown_options_and_option_endpoints,
    reorder_moves_fields,
    user_values_are_checked_and_listed,
    bulk_and_organization_paths_check_values,
    deleting_a_field_drops_its_values,
    deletes_racing_writes_never_fail,
    hostile_definitions,
);

async fn delete(app: &TestApp, path: &str) -> Resp {
    app.send(Method::DELETE, path, &Auth::admin(), None).await
}

/// Creates a field of `resource` ("user_fields" / "organization_fields") and returns it.
pub async fn make_field(app: &TestApp, resource: &str, field: Value) -> Value {
    let singular = resource.trim_end_matches('s');
    let r = app
        .post(
            &format!("/api/v2/{resource}.json"),
            json!({ singular: field }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body[singular].clone()
}

async fn field_crud_and_shapes(app: TestApp) {
    let f = make_field(
        &app,
        "user_fields",
        json!({"key": "support_note", "title": "Support note", "description": "d"}),
    )
    .await;
    let id = f["id"].as_i64().unwrap();
    let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "url",
            "id",
            "type",
            "key",
            "title",
            "description",
            "raw_title",
            "raw_description",
            "position",
            "active",
            "system",
            "regexp_for_validation",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(f["type"], "text");
    assert_eq!(f["raw_title"], "Support note");
    assert!(
        f["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v2/user_fields/{id}.json"))
    );
    // By id and by key.
    for path in [
        format!("/api/v2/user_fields/{id}.json"),
        "/api/v2/user_fields/support_note".to_owned(),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["user_field"]["id"], id);
    }
    // A taken key, a bad key, no title, an unknown type: 422 on that key, nothing written.
    for (body, key, code) in [
        (
            json!({"key": "support_note", "title": "x"}),
            "key",
            "DuplicateValue",
        ),
        (json!({"key": "12", "title": "x"}), "key", "InvalidValue"),
        (json!({"key": "ok_key"}), "title", "BlankValue"),
        (
            json!({"key": "ok_key", "title": "T", "type": "colour"}),
            "type",
            "InvalidValue",
        ),
    ] {
        let r = app
            .post("/api/v2/user_fields", json!({ "user_field": body }))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.body["error"], "RecordInvalid");
        assert_eq!(r.body["details"][key][0]["error"], code, "{}", r.text);
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM custom_fields").await, 1);
    let r = app.post("/api/v2/user_fields", json!({"nope": 1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Update: title changes (raw_title follows), key and type cannot.
    let r = app
        .put(
            &format!("/api/v2/user_fields/{id}"),
            json!({"user_field": {"title": "Note", "key": "support_note", "type": "text", "active": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user_field"]["title"], "Note");
    assert_eq!(r.body["user_field"]["raw_title"], "Note");
    assert_eq!(r.body["user_field"]["active"], false);
    for body in [json!({"key": "other"}), json!({"type": "integer"})] {
        let r = app
            .put(
                &format!("/api/v2/user_fields/{id}"),
                json!({ "user_field": body }),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    }
    // Lists: offset (count, next_page) and cursor pages.
    for i in 0..3 {
        make_field(
            &app,
            "user_fields",
            json!({"key": format!("k{i}"), "title": format!("K{i}"), "type": "integer"}),
        )
        .await;
    }
    let r = app.get("/api/v2/user_fields.json?per_page=2").await;
    assert_eq!(r.body["count"], 4);
    assert_eq!(r.body["user_fields"].as_array().unwrap().len(), 2);
    assert!(r.body["next_page"].as_str().unwrap().contains("page=2"));
    let mut seen = Vec::new();
    let mut next = "/api/v2/user_fields.json?page[size]=3".to_owned();
    loop {
        let r = app.get(&next).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let page = r.body["user_fields"].as_array().unwrap().clone();
        seen.extend(page.iter().map(|f| f["key"].as_str().unwrap().to_owned()));
        if !r.body["meta"]["has_more"].as_bool().unwrap() {
            break;
        }
        let link = r.body["links"]["next"].as_str().unwrap();
        next = link[link.find("/api/v2").unwrap()..].to_owned();
    }
    assert_eq!(seen, ["support_note", "k0", "k1", "k2"]);
    // Delete: 204, then 404.
    let r = delete(&app, &format!("/api/v2/user_fields/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v2/user_fields/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&app, &format!("/api/v2/user_fields/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Organization fields are their own list.
    make_field(
        &app,
        "organization_fields",
        json!({"key": "support_note", "title": "Org note"}),
    )
    .await;
    let r = app.get("/api/v2/organization_fields").await;
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["organization_fields"][0]["key"], "support_note");
}

async fn dropdown_options_and_option_endpoints(app: TestApp) {
    let f = make_field(
        &app,
        "user_fields",
        json!({"key": "tier", "title": "Tier", "type": "dropdown", "custom_field_options": [
            {"name": "Gold", "value": "gold"}, {"name": "Silver", "value": "silver"}]}),
    )
    .await;
    let id = f["id"].as_i64().unwrap();
    let opts = f["custom_field_options"].as_array().unwrap();
    assert_eq!(opts.len(), 2);
    assert_eq!(opts[0]["raw_name"], "Gold");
    let gold = opts[0]["id"].as_i64().unwrap();
    let silver = opts[1]["id"].as_i64().unwrap();
    // PUT replaces the list: kept by id (renamed), new with a null id, the rest removed.
    let r = app
        .put(
            &format!("/api/v2/user_fields/{id}"),
            json!({"user_field": {"custom_field_options": [
                {"id": silver, "name": "Silver+", "value": "silver"}, {"id": null, "name": "Bronze", "value": "bronze"}]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let opts = r.body["user_field"]["custom_field_options"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(opts[0]["id"], silver);
    assert_eq!(opts[0]["name"], "Silver+");
    assert_eq!(opts[1]["value"], "bronze");
    assert!(opts.iter().all(|o| o["id"] != gold));
    // The options endpoints.
    let list = app.get(&format!("/api/v2/user_fields/{id}/options")).await;
    assert_eq!(list.body["count"], 2);
    let r = app
        .post(
            &format!("/api/v2/user_fields/{id}/options.json"),
            json!({"custom_field_option": {"name": "Platinum", "value": "platinum"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.header("location").unwrap().ends_with("/options.json"));
    let platinum = r.body["custom_field_option"]["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/v2/user_fields/{id}/options"),
            json!({"custom_field_option": {"id": platinum, "name": "Platinum!", "value": "platinum"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["custom_field_option"]["name"], "Platinum!");
    let r = app
        .get(&format!("/api/v2/user_fields/{id}/options/{platinum}"))
        .await;
    assert_eq!(r.body["custom_field_option"]["value"], "platinum");
    let r = app
        .post(
            &format!("/api/v2/user_fields/{id}/options"),
            json!({"custom_field_option": {"name": "Dup", "value": "SILVER"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = delete(
        &app,
        &format!("/api/v2/user_fields/{id}/options/{platinum}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v2/user_fields/{id}/options/{platinum}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Values: an option value (any case) is stored as the option's; anything else is a 422.
    let r = app
        .upsert(json!({"name": "T", "email": "t@example.org", "user_fields": {"tier": "Bronze"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["user"]["user_fields"]["tier"], "bronze");
    let r = app
        .upsert(json!({"email": "t@example.org", "user_fields": {"tier": "gold"}}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["details"]["tier"][0]["description"],
        "Tier: gold is not a valid option"
    );
    // A text field has no options.
    let t = make_field(
        &app,
        "user_fields",
        json!({"key": "plain", "title": "Plain"}),
    )
    .await;
    let r = app
        .post(
            &format!("/api/v2/user_fields/{}/options", t["id"]),
            json!({"custom_field_option": {"name": "A", "value": "a"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn reorder_moves_fields(app: TestApp) {
    let mut ids = Vec::new();
    for k in ["a", "b", "c"] {
        ids.push(
            make_field(&app, "user_fields", json!({"key": k, "title": k})).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let r = app
        .put(
            "/api/v2/user_fields/reorder.json",
            json!({"user_field_ids": [ids[2], ids[0]]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text, "");
    let keys: Vec<String> = app.get("/api/v2/user_fields").await.body["user_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["c", "a", "b"]);
    // A user's fields follow the order.
    let u = app
        .upsert(json!({"name": "O", "email": "o@example.org"}))
        .await;
    let order: Vec<&str> = u.body["user"]["user_fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(order, ["c", "a", "b"]);
    for body in [
        json!({"user_field_ids": [ids[0], ids[0]]}),
        json!({"user_field_ids": [1]}),
    ] {
        let r = app.put("/api/v2/user_fields/reorder", body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    }
    for body in [
        json!({}),
        json!({"user_field_ids": "x"}),
        json!({"user_field_ids": ["a"]}),
    ] {
        let r = app.put("/api/v2/user_fields/reorder", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    let r = app
        .put(
            "/api/v2/organization_fields/reorder",
            json!({"organization_field_ids": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn define_all_types(app: &TestApp, resource: &str) {
    for f in [
        json!({"key": "note", "title": "Note"}),
        json!({"key": "vip", "title": "VIP", "type": "checkbox"}),
        json!({"key": "born", "title": "Born", "type": "date"}),
        json!({"key": "seats", "title": "Seats", "type": "integer"}),
        json!({"key": "ratio", "title": "Ratio", "type": "decimal"}),
        json!({"key": "zip", "title": "Zip", "type": "regexp", "regexp_for_validation": "\\A[0-9]{5}\\z"}),
        json!({"key": "langs", "title": "Languages", "type": "multiselect", "custom_field_options": [{"name": "EN", "value": "en"}, {"name": "FR", "value": "fr"}]}),
        json!({"key": "boss", "title": "Boss", "type": "lookup", "relationship_target_type": "zen:user"}),
    ] {
        make_field(app, resource, f).await;
    }
}

async fn user_values_are_checked_and_listed(app: TestApp) {
    define_all_types(&app, "user_fields").await;
    // Every defined field is listed: null when unset, false for a checkbox.
    let r = app
        .upsert(json!({"name": "V", "email": "v@example.org"}))
        .await;
    assert_eq!(
        r.body["user"]["user_fields"],
        json!({"note": null, "vip": false, "born": null, "seats": null, "ratio": null, "zip": null, "langs": null, "boss": null})
    );
    let id = r.body["user"]["id"].as_i64().unwrap();
    let path = format!("/api/v2/users/{id}.json");
    // Values normalised by type; undefined keys dropped.
    let r = app
        .put(
            &path,
            json!({"user": {"user_fields": {"note": 5, "vip": "true", "born": "2020-08-19T20:50:04.000Z",
                   "seats": "3", "ratio": "0.25", "zip": "01234", "langs": ["fr"], "boss": "7", "nobody": "x"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let fields = json!({"note": "5", "vip": true, "born": "2020-08-19T00:00:00+00:00", "seats": 3,
                        "ratio": 0.25, "zip": "01234", "langs": ["fr"], "boss": 7});
    assert_eq!(r.body["user"]["user_fields"], fields);
    assert_eq!(app.get(&path).await.body["user"]["user_fields"], fields);
    // A bad value: 422 naming the key, nothing changes.
    let before = app.get(&path).await.body["user"].clone();
    for (value, key) in [
        (json!({"seats": "many"}), "seats"),
        (json!({"born": "19/08/2020"}), "born"),
        (json!({"zip": "1234"}), "zip"),
        (json!({"vip": "perhaps"}), "vip"),
        (json!({"langs": ["de"]}), "langs"),
        (json!({"ratio": "1e999"}), "ratio"),
        (json!({"note": {"nested": true}}), "note"),
    ] {
        let r = app
            .put(
                &path,
                json!({"user": {"name": "Changed", "user_fields": value}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(
            r.body["details"][key][0]["error"], "InvalidValue",
            "{}",
            r.text
        );
    }
    assert_eq!(app.get(&path).await.body["user"], before);
    // null clears; a checkbox reads false again.
    let r = app
        .put(
            &path,
            json!({"user": {"user_fields": {"vip": null, "seats": null}}}),
        )
        .await;
    assert_eq!(r.body["user"]["user_fields"]["vip"], false);
    assert_eq!(r.body["user"]["user_fields"]["seats"], Value::Null);
    assert_eq!(r.body["user"]["user_fields"]["zip"], "01234");
    // POST /users checks too, and writes nothing when a value is bad.
    let n = app.count_users().await;
    let r = app
        .post(
            "/api/v2/users",
            json!({"user": {"name": "P", "email": "p@example.org", "user_fields": {"seats": 1.5}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(app.count_users().await, n);
    // Lists and searches show the values too.
    let r = app
        .get("/api/v2/users/search.json?query=v@example.org")
        .await;
    assert_eq!(r.body["users"][0]["user_fields"]["zip"], "01234");
}

async fn bulk_and_organization_paths_check_values(app: TestApp) {
    make_field(
        &app,
        "user_fields",
        json!({"key": "seats", "title": "Seats", "type": "integer"}),
    )
    .await;
    let r = app
        .post(
            "/api/v2/users/create_many",
            json!({"users": [
                {"name": "A", "email": "a@example.org", "user_fields": {"seats": "2", "junk": 1}},
                {"name": "B", "email": "b@example.org", "user_fields": {"seats": "two"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let job = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    let results = job["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "Created", "{job}");
    assert_eq!(results[1]["error"], "InvalidValue", "{job}");
    assert!(
        results[1]["details"]
            .as_str()
            .unwrap()
            .contains("Seats: is not a number")
    );
    let a = app
        .get("/api/v2/users/search?query=a@example.org")
        .await
        .body["users"][0]
        .clone();
    assert_eq!(a["user_fields"], json!({"seats": 2}));
    assert_eq!(
        app.get("/api/v2/users/search?query=b@example.org")
            .await
            .body["count"],
        0
    );
    // update_many with one shared object: a bad value fails each item.
    let id = a["id"].as_i64().unwrap();
    let r = app
        .put(
            &format!("/api/v2/users/update_many?ids={id}"),
            json!({"user": {"user_fields": {"seats": []}}}),
        )
        .await;
    let job = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    assert_eq!(job["results"][0]["error"], "InvalidValue", "{job}");

    // Organizations: create, update, create_or_update and the bulk jobs check values too.
    make_field(
        &app,
        "organization_fields",
        json!({"key": "since", "title": "Since", "type": "date"}),
    )
    .await;
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Acme", "organization_fields": {"since": "2021-01-02", "x": 1}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["organization"]["organization_fields"],
        json!({"since": "2021-01-02T00:00:00+00:00"})
    );
    let org = r.body["organization"]["id"].as_i64().unwrap();
    let r = app
        .put(
            &format!("/api/v2/organizations/{org}"),
            json!({"organization": {"notes": "n", "organization_fields": {"since": "soon"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["details"]["since"][0]["description"],
        "Since: is not a valid date (YYYY-MM-DD)"
    );
    let r = app.get(&format!("/api/v2/organizations/{org}")).await;
    assert_eq!(r.body["organization"]["notes"], Value::Null);
    let r = app
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "Bad", "organization_fields": {"since": 5}}, {"name": "Good"}]}),
        )
        .await;
    let job = wait_for(&app, r.body["job_status"]["id"].as_str().unwrap()).await;
    assert_eq!(job["results"][0]["error"], "InvalidValue", "{job}");
    assert!(job["results"][1]["id"].is_i64(), "{job}");
    let r = app.get("/api/v2/organizations.json").await;
    let good = r.body["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Good")
        .unwrap()
        .clone();
    assert_eq!(good["organization_fields"], json!({"since": null}));
}

async fn deleting_a_field_drops_its_values(app: TestApp) {
    let f = make_field(&app, "user_fields", json!({"key": "plan", "title": "Plan"})).await;
    let r = app
        .upsert(json!({"name": "D", "email": "d@example.org", "user_fields": {"plan": "gold"}}))
        .await;
    let path = format!("/api/v2/users/{}", r.body["user"]["id"]);
    assert_eq!(r.body["user"]["user_fields"], json!({"plan": "gold"}));
    let r = delete(&app, &format!("/api/v2/user_fields/{}", f["id"])).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.body["user"]["user_fields"], json!({}));
    // A new field with the same key starts empty.
    make_field(&app, "user_fields", json!({"key": "plan", "title": "Plan"})).await;
    assert_eq!(
        app.get(&path).await.body["user"]["user_fields"],
        json!({"plan": null})
    );
    // The same for organizations, by key in the path.
    make_field(
        &app,
        "organization_fields",
        json!({"key": "plan", "title": "Plan"}),
    )
    .await;
    let r = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "O", "organization_fields": {"plan": "x"}}}),
        )
        .await;
    let org = format!("/api/v2/organizations/{}", r.body["organization"]["id"]);
    let r = delete(&app, "/api/v2/organization_fields/plan").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&org).await.body["organization"]["organization_fields"],
        json!({})
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM organizations WHERE organization_fields LIKE '%plan%'")
            .await,
        0
    );
}

/// Fields deleted and re-made while users are written with values for them: every request
/// answers 200/201/204/404/422, never a 500, on either backend.
async fn deletes_racing_writes_never_fail(app: TestApp) {
    let app = std::sync::Arc::new(app);
    make_field(
        &app,
        "user_fields",
        json!({"key": "n", "title": "N", "type": "integer"}),
    )
    .await;
    let writers = (0..4).map(|w| {
        let app = app.clone();
        tokio::spawn(async move {
            for i in 0..15 {
                let r = app
                    .upsert(json!({"name": "R", "email": format!("r{w}@example.org"), "user_fields": {"n": i}}))
                    .await;
                assert!(
                    [200, 201].contains(&r.status.as_u16()),
                    "{} {}",
                    r.status,
                    r.text
                );
            }
        })
    });
    let churn = {
        let app = app.clone();
        tokio::spawn(async move {
            for _ in 0..6 {
                let r = delete(&app, "/api/v2/user_fields/n").await;
                assert!([204, 404].contains(&r.status.as_u16()), "{}", r.text);
                let r = app
                    .post(
                        "/api/v2/user_fields",
                        json!({"user_field": {"key": "n", "title": "N", "type": "integer"}}),
                    )
                    .await;
                assert!([201, 422].contains(&r.status.as_u16()), "{}", r.text);
            }
        })
    };
    for h in writers.chain([churn]) {
        h.await.unwrap();
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM custom_fields").await, 1);
}

async fn hostile_definitions(app: TestApp) {
    let long = "a".repeat(300);
    let huge_regex = format!("\\A(a{{1000}}){{1000}}\\z");
    for (body, key) in [
        (json!({"key": "x\u{0}", "title": "T"}), "key"),
        (json!({"key": long, "title": "T"}), "key"),
        (
            json!({"key": "r", "title": "T", "type": "regexp", "regexp_for_validation": huge_regex}),
            "regexp_for_validation",
        ),
        (
            json!({"key": "r", "title": "T", "type": "regexp", "regexp_for_validation": "(?<"}),
            "regexp_for_validation",
        ),
        (
            json!({"key": "l", "title": "T", "type": "lookup", "relationship_target_type": "zen:spaceship"}),
            "relationship_target_type",
        ),
        (
            json!({"key": "d", "title": "T", "type": "dropdown", "custom_field_options": [{"name": "A"}]}),
            "custom_field_options",
        ),
        (
            json!({"key": "d", "title": "T", "type": "dropdown", "custom_field_options": "A"}),
            "custom_field_options",
        ),
        (json!({"key": "d", "title": ["T"]}), "title"),
        (
            json!({"key": "d", "title": "T", "position": "first"}),
            "position",
        ),
    ] {
        let r = app
            .post("/api/v2/user_fields", json!({ "user_field": body }))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert!(r.body["details"][key].is_array(), "{key}: {}", r.text);
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM custom_fields").await, 0);
    // Odd Unicode in titles and option names is kept as given.
    let f = make_field(
        &app,
        "user_fields",
        json!({"key": "uni", "title": "Ünïcødé 🎉", "type": "dropdown", "custom_field_options": [{"name": "Ça va", "value": "ça_va"}]}),
    )
    .await;
    assert_eq!(f["title"], "Ünïcødé 🎉");
    let r = app
        .upsert(json!({"name": "U", "email": "u@example.org", "user_fields": {"uni": "ÇA_VA"}}))
        .await;
    assert_eq!(r.body["user"]["user_fields"]["uni"], "ça_va", "{}", r.text);
    // Paths that name no field.
    for path in [
        "/api/v2/user_fields/0",
        "/api/v2/user_fields/no-such",
        "/api/v2/user_fields/99999",
    ] {
        assert_eq!(app.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
}

/// Two servers on one PostgreSQL database: the same key created at once from both ends with one
/// field (the others 422 `DuplicateValue`, never a 500), and options added to one dropdown from
/// both keep every option (the field's row is locked before the plan decides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_racing_on_fields() {
    use crate::helpers::Backend;
    let one = TestApp::spawn(Backend::Postgres).await;
    let two = TestApp::replica_of(
        &one,
        deskd_server::Config {
            rate_limits: false,
            ..deskd_server::Config::default()
        },
    )
    .await;
    let (one, two) = (std::sync::Arc::new(one), std::sync::Arc::new(two));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let app = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                app.post(
                    "/api/v2/user_fields",
                    json!({"user_field": {"key": "raced", "title": "Raced"}}),
                )
                .await
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            201 => created += 1,
            422 => assert_eq!(r.body["details"]["key"][0]["error"], "DuplicateValue"),
            other => panic!("{other}: {}", r.text),
        }
    }
    assert_eq!(created, 1);
    let f = make_field(
        &one,
        "user_fields",
        json!({"key": "menu", "title": "Menu", "type": "dropdown", "custom_field_options": [{"name": "A", "value": "a"}]}),
    )
    .await;
    let id = f["id"].as_i64().unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let app = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                app.post(
                    &format!("/api/v2/user_fields/{id}/options"),
                    json!({"custom_field_option": {"name": format!("O{i}"), "value": format!("o{i}")}}),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let options = one.get(&format!("/api/v2/user_fields/{id}/options")).await;
    assert_eq!(options.body["count"], 11, "{}", options.text);
}
