//! Test mode's fixture and snapshot controls in the OpenAPI document (served only with
//! `deskd serve --test-mode`; 404 `InvalidEndpoint` otherwise, so compat's schemathesis run,
//! on a server not in test mode, leaves them out).

use serde_json::{Map, Value, json};

const NOTE: &str =
    "deskd test mode only (`deskd serve --test-mode`); 404 InvalidEndpoint otherwise. Admins only.";

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn op(summary: &str, body: Option<&str>, status: &str, response: Option<&str>) -> Value {
    let mut responses = Map::new();
    let content = |schema: Value| json!({"application/json": {"schema": schema}});
    responses.insert(
        status.into(),
        match response {
            Some(s) => json!({"description": "OK", "content": content(r(s))}),
            None => json!({"description": "No content"}),
        },
    );
    for (code, what) in [
        (
            "400",
            "Invalid input (for a fixture: `details.pointer` is a JSON pointer to the value at fault)",
        ),
        ("401", "Not authenticated"),
        ("403", "Not an admin"),
        ("404", "Not in test mode, or no such snapshot"),
    ] {
        responses.insert(
            code.into(),
            json!({"description": what, "content": content(r("Error"))}),
        );
    }
    let mut o = json!({"summary": summary, "description": NOTE, "tags": ["deskd test mode"], "responses": responses});
    if let Some(b) = body {
        o["requestBody"] = json!({"required": true, "content": content(r(b))});
    }
    o
}

/// The test-mode paths.
pub fn paths() -> Map<String, Value> {
    let name = json!([{"name": "name", "in": "path", "required": true,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}}]);
    let mut p = Map::new();
    p.insert("/__deskd/export".into(), json!({"get": op("The account's state as a fixture document", None, "200", Some("Fixture"))}));
    p.insert("/__deskd/import".into(), json!({"post": op("Replace the account's state with a fixture (the account owner and its credentials stay)", Some("Fixture"), "200", Some("ImportResult"))}));
    p.insert(
        "/__deskd/snapshots".into(),
        json!({"get": op("List snapshots", None, "200", Some("SnapshotList"))}),
    );
    let mut save = op(
        "Save the account's state as a snapshot (replacing one of that name)",
        None,
        "201",
        Some("SnapshotSaved"),
    );
    save["parameters"] = name.clone();
    let mut delete = op("Delete a snapshot", None, "204", None);
    delete["parameters"] = name.clone();
    p.insert(
        "/__deskd/snapshots/{name}".into(),
        json!({"post": save, "delete": delete}),
    );
    let mut restore = op(
        "Return the account to a snapshot (as a reset, then the snapshot's rows)",
        None,
        "200",
        Some("ImportResult"),
    );
    restore["parameters"] = name;
    p.insert(
        "/__deskd/snapshots/{name}/restore".into(),
        json!({"post": restore}),
    );
    p
}

/// The schemas those paths name.
pub fn schemas() -> Map<String, Value> {
    let time = json!({"type": ["string", "integer", "null"], "description": "RFC 3339 (as exported) or Unix seconds"});
    let id = json!({"type": ["integer", "null"], "minimum": 1, "maximum": deskd_model::fixture::MAX_ID, "description": "kept as given; absent: a new id"});
    let text = json!({"type": ["string", "null"]});
    let flag = json!({"type": ["boolean", "null"]});
    let identity = json!({"type": "object", "additionalProperties": false, "required": ["type", "value"], "properties": {
        "id": id, "type": {"type": "string"}, "value": {"type": "string"}, "verified": flag, "primary": flag,
        "created_at": time, "updated_at": time}});
    let user = json!({"type": "object", "additionalProperties": false, "required": ["name"],
        "description": "The writable fields of a Zendesk user (read with the API's rules), and the state a fixture keeps. `email`, `organization_id` and `organization: {name}` are shorthands for an identity and a default membership. The user marked `owner` stands for the account owner, who is kept as it is (only its memberships are taken).",
        "properties": {
        "id": id, "owner": flag, "name": {"type": "string"}, "email": text, "external_id": text, "role": text,
        "custom_role_id": {"type": ["integer", "null"]}, "organization_id": {"type": ["integer", "null"]},
        "organization": {"type": ["object", "null"]}, "default_group_id": {"type": ["integer", "null"]},
        "time_zone": text, "locale": text, "locale_id": {"type": ["integer", "null"]}, "phone": text,
        "shared_phone_number": flag, "alias": text, "details": text, "notes": text, "signature": text,
        "remote_photo_url": text, "ticket_restriction": text, "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "user_fields": {"type": ["object", "null"]}, "moderator": flag, "only_private_comments": flag,
        "suspended": flag, "verified": flag, "active": flag, "created_at": time, "updated_at": time,
        "last_login_at": time, "identities": {"type": ["array", "null"], "items": identity}}});
    let organization = json!({"type": "object", "additionalProperties": false, "required": ["name"], "properties": {
        "id": id, "name": {"type": "string"}, "external_id": text, "details": text, "notes": text,
        "group_id": {"type": ["integer", "null"]}, "shared_tickets": flag, "shared_comments": flag,
        "domain_names": {"type": ["array", "null"], "items": {"type": "string"}},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "organization_fields": {"type": ["object", "null"]}, "created_at": time, "updated_at": time}});
    let membership = json!({"type": "object", "additionalProperties": false, "required": ["user_id", "organization_id"], "properties": {
        "id": id, "user_id": {"type": "integer"}, "organization_id": {"type": "integer"}, "default": flag,
        "view_tickets": flag, "created_at": time, "updated_at": time}});
    let snapshot = json!({"type": "object", "properties": {"name": {"type": "string"}, "created_at": {"type": "string"},
        "users": {"type": "integer"}, "organizations": {"type": "integer"}}});
    let mut s = Map::new();
    s.insert("Fixture".into(), json!({"type": "object", "additionalProperties": false,
        "description": "deskd's fixture document (README: deskd as a test double). Every list is optional; ids refer within the document. Passwords and tokens are never part of it.",
        "properties": {
            "deskd_fixture": {"type": "integer", "const": 1},
            "settings": {"type": ["object", "null"], "additionalProperties": false, "properties": {"bulk_user_import": flag}},
            "organizations": {"type": ["array", "null"], "items": organization},
            "users": {"type": ["array", "null"], "items": user},
            "memberships": {"type": ["array", "null"], "items": membership}}}));
    s.insert("ImportResult".into(), json!({"type": "object"}));
    s.insert(
        "SnapshotSaved".into(),
        json!({"type": "object", "properties": {"snapshot": snapshot}}),
    );
    s.insert("SnapshotList".into(), json!({"type": "object", "properties": {"snapshots": {"type": "array", "items": snapshot}, "count": {"type": "integer"}}}));
    s
}
