//! Users: the list (search, role and organization filters, cursor paging), a user's page, and
//! create, edit, suspend and delete, each handed to the API.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use deskd_model::Role;
use deskd_model::user::UserRecord;
use deskd_store::user_queries::{self, UserFilter};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Web;
use super::api::{Api, enc};
use super::layout::{
    self, csrf, html as page_response, notice_box, page, see_other, when, when_iso,
};
use super::session::Signed;
use crate::paging::{Paging, encode_cursor};

/// Users on a page of the list.
const PAGE: i64 = 50;

/// A submitted form's fields, in order.
pub type Fields = Vec<(String, String)>;

pub fn field<'a>(f: &'a Fields, key: &str) -> Option<&'a str> {
    f.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    role: Option<String>,
    organization_id: Option<String>,
    after: Option<String>,
    before: Option<String>,
    done: Option<String>,
}

impl ListQuery {
    /// This list's address with a cursor.
    fn link(&self, key: &str, cursor: &str) -> String {
        let mut out = format!("/admin/users?{key}={}", enc(cursor));
        for (k, v) in [
            ("q", &self.q),
            ("role", &self.role),
            ("organization_id", &self.organization_id),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                out.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        out
    }

    /// The store's filter: the API's search syntax, a role, an organization.
    fn filter(&self) -> Result<UserFilter, String> {
        let mut filter = UserFilter::default();
        if let Some(q) = self.q.as_deref().filter(|q| !q.trim().is_empty()) {
            filter.terms = deskd_model::search::parse(q)?;
        }
        if let Some(r) = self.role.as_deref().filter(|r| !r.is_empty()) {
            filter.roles = vec![
                Role::parse(r)
                    .ok_or_else(|| format!("role {r} is not end-user, agent or admin"))?,
            ];
        }
        if let Some(o) = self
            .organization_id
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            filter.organization_id = Some(
                o.parse()
                    .map_err(|_| format!("organization id {o} is not a number"))?,
            );
        }
        Ok(filter)
    }
}

pub async fn list(State(web): State<Web>, signed: Signed, Query(q): Query<ListQuery>) -> Response {
    let mut problem = None;
    let mut users: Vec<UserRecord> = Vec::new();
    let mut has_more = false;
    let paging = {
        let mut params = BTreeMap::new();
        params.insert("page[size]".to_owned(), PAGE.to_string());
        for (k, v) in [("page[after]", &q.after), ("page[before]", &q.before)] {
            if let Some(v) = v.clone() {
                params.insert(k.to_owned(), v);
            }
        }
        Paging::from_query(&params)
    };
    match (q.filter(), paging) {
        (Err(e), _) => problem = Some(e),
        (_, Err(_)) => problem = Some("That page link is no longer valid.".to_owned()),
        (
            Ok(filter),
            Ok(Paging::Cursor {
                size,
                after,
                before,
            }),
        ) => {
            let found = async {
                let mut conn = web.app.store.reader().await?;
                Ok::<_, crate::ApiError>(
                    user_queries::page_by_id(&mut conn, &filter, after, before, size).await?,
                )
            }
            .await;
            match found {
                Ok(mut page) => {
                    has_more = page.len() as i64 > size;
                    if has_more {
                        if before.is_some() {
                            page.remove(0);
                        } else {
                            page.truncate(size as usize);
                        }
                    }
                    users = page;
                }
                Err(e) => return layout::internal(e),
            }
        }
        (Ok(_), Ok(Paging::Offset { .. })) => {}
    }
    let backwards = q.before.is_some();
    let next = match (users.last(), has_more || backwards) {
        (Some(last), true) => Some(q.link("after", &encode_cursor(last.id))),
        _ => None,
    };
    let prev = match (users.first(), q.after.is_some() || (backwards && has_more)) {
        (Some(first), true) => Some(q.link("before", &encode_cursor(first.id))),
        _ => None,
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let role = q.role.clone().unwrap_or_default();
    let body = html! {
        div.bar {
            h1 { "Users" }
            a.button href="/admin/users/new" { "New user" }
        }
        (notice_box(q.done.as_deref()))
        form.filters method="get" action="/admin/users" role="search" {
            input type="search" name="q" value=(q.q.clone().unwrap_or_default())
                placeholder="name, email, role:agent, tags:vip, email:*@example.com" aria-label="Search";
            select name="role" aria-label="Role" {
                option value="" selected[role.is_empty()] { "Any role" }
                @for r in ["end-user", "agent", "admin"] {
                    option value=(r) selected[role == r] { (r) }
                }
            }
            input type="text" name="organization_id" inputmode="numeric" placeholder="Organization id"
                value=(q.organization_id.clone().unwrap_or_default()) aria-label="Organization id";
            button type="submit" { "Search" }
        }
        @if let Some(p) = &problem { p.error role="alert" { (p) } }
        @if users.is_empty() && problem.is_none() { p.empty { "No users match." } }
        @else if !users.is_empty() {
            table.list {
                thead { tr { th { "Name" } th { "Email" } th { "Role" } th.hide-sm { "Organization" } th.hide-sm { "Created" } } }
                tbody {
                    @for u in &users {
                        tr {
                            td {
                                a href=(format!("/admin/users/{}", u.id)) { (u.name) }
                                @if u.suspended { " " span.tag.warn { "suspended" } }
                            }
                            td { (u.email.clone().unwrap_or_default()) }
                            td.nowrap { (u.role.as_str()) }
                            td.hide-sm {
                                @if let Some(o) = u.organization_id {
                                    a href=(format!("/admin/organizations/{o}")) { (o) }
                                }
                            }
                            td.hide-sm { (when(u.created_at)) }
                        }
                    }
                }
            }
        }
        nav.pager {
            @if let Some(p) = &prev { a rel="prev" href=(p) { "← Previous" } }
            @if let Some(n) = &next { a rel="next" href=(n) { "Next →" } }
        }
    };
    page_response(status, page(&web, Some(&signed), "Users", body))
}

/// A user id from the path; anything else is the not-found page.
fn user_id(raw: &str) -> Option<i64> {
    crate::extract::path_id(raw).ok()
}

pub async fn show(
    State(web): State<Web>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(id) = user_id(&raw) else {
        return layout::not_found().await;
    };
    render_user(&web, &signed, id, q.done.as_deref(), None).await
}

/// The user's page; `problem` is the API's reason a form was refused, shown above it.
async fn render_user(
    web: &Web,
    signed: &Signed,
    id: i64,
    done: Option<&str>,
    problem: Option<(StatusCode, String)>,
) -> Response {
    let api = Api::new(web, signed);
    let user = match api.get(&format!("/api/v2/users/{id}")).await {
        Ok(a) if a.ok() => a.body["user"].clone(),
        Ok(a) => return layout::refused(web, signed, &a),
        Err(e) => return layout::internal(e),
    };
    let mut sections = Vec::new();
    for path in ["identities", "organization_memberships", "organizations"] {
        match api.get(&format!("/api/v2/users/{id}/{path}")).await {
            Ok(a) if a.ok() => sections.push(a.body[path].as_array().cloned().unwrap_or_default()),
            Ok(_) => sections.push(Vec::new()),
            Err(e) => return layout::internal(e),
        }
    }
    let [identities, memberships, organizations] =
        <[Vec<Value>; 3]>::try_from(sections).unwrap_or_default();
    let org_name = |oid: &Value| {
        organizations
            .iter()
            .find(|o| o["id"] == *oid)
            .and_then(|o| o["name"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| oid.to_string())
    };
    let s = |k: &str| user[k].as_str().unwrap_or_default().to_owned();
    let name = s("name");
    let suspended = user["suspended"].as_bool().unwrap_or(false);
    let tags: Vec<String> = user["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    let fields = serde_json::to_string_pretty(&user["user_fields"]).unwrap_or_else(|_| "{}".into());
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.0);
    let body = html! {
        p.crumbs { a href="/admin/users" { "Users" } " / " }
        div.bar {
            h1 { (name) @if suspended { " " span.tag.warn { "suspended" } } }
        }
        (notice_box(done))
        @if let Some((_, p)) = &problem { p.error role="alert" { (p) } }
        dl.facts {
            dt { "Id" } dd { (id) }
            dt { "Email" } dd { (s("email")) }
            dt { "Role" } dd { (s("role")) }
            dt { "External id" } dd { (s("external_id")) }
            dt { "Tags" } dd { @for t in &tags { span.tag { (t) } " " } }
            dt { "Created" } dd { (when_iso(&user["created_at"])) }
            dt { "Updated" } dd { (when_iso(&user["updated_at"])) }
            dt { "Last sign-in" } dd { (when_iso(&user["last_login_at"])) }
            dt { "Verified" } dd { (user["verified"].as_bool().unwrap_or(false)) }
        }
        section {
            h2 { "Identities" }
            @if identities.is_empty() { p.empty { "None." } }
            ul.plain {
                @for i in &identities {
                    li {
                        span.tag { (i["type"].as_str().unwrap_or_default()) }
                        " " (i["value"].as_str().unwrap_or_default())
                        @if i["primary"].as_bool() == Some(true) { " " span.tag.ok { "primary" } }
                        @if i["verified"].as_bool() == Some(true) { " " span.tag { "verified" } }
                    }
                }
            }
        }
        section {
            h2 { "Organizations" }
            @if memberships.is_empty() { p.empty { "None." } }
            ul.plain {
                @for m in &memberships {
                    li {
                        a href=(format!("/admin/organizations/{}", m["organization_id"])) { (org_name(&m["organization_id"])) }
                        @if m["default"].as_bool() == Some(true) { " " span.tag.ok { "default" } }
                    }
                }
            }
        }
        section {
            h2 { "Edit" }
            form.edit method="post" action=(format!("/admin/users/{id}")) {
                (csrf(signed))
                label { "Name" input type="text" name="name" value=(name) required; }
                label { "Role"
                    select name="role" {
                        @for r in ["end-user", "agent", "admin"] { option value=(r) selected[s("role") == r] { (r) } }
                    }
                }
                label { "External id" input type="text" name="external_id" value=(s("external_id")); }
                label { "Phone" input type="text" name="phone" value=(s("phone")); }
                label { "Time zone" input type="text" name="time_zone" value=(s("time_zone")); }
                label { "Tags " small { "(separated by spaces)" } input type="text" name="tags" value=(tags.join(" ")); }
                label { "Details" textarea name="details" rows="2" { (s("details")) } }
                label { "Notes" textarea name="notes" rows="2" { (s("notes")) } }
                label { "User fields " small { "(a JSON object)" } textarea.mono name="user_fields" rows="4" { (fields) } }
                button type="submit" { "Save" }
            }
        }
        section.danger {
            h2 { "Access" }
            form.inline method="post" action=(format!("/admin/users/{id}/suspend")) {
                (csrf(signed))
                input type="hidden" name="suspended" value=(if suspended { "false" } else { "true" });
                button type="submit" { @if suspended { "Unsuspend" } @else { "Suspend" } }
            }
            form.inline method="post" action=(format!("/admin/users/{id}/delete")) data-confirm="Delete this user?" {
                (csrf(signed))
                button.danger type="submit" { "Delete user" }
            }
        }
    };
    page_response(status, page(web, Some(signed), &name, body))
}

/// A text field's new value: trimmed, empty meaning none.
fn text_value(v: &str) -> Value {
    match v.trim() {
        "" => Value::Null,
        t => json!(t),
    }
}

/// The changes a form makes to `current`: only what differs, so that a form never re-sends what
/// its user did not touch (and so never trips a rule about a field left as it was).
fn changes(current: &Value, form: &Fields) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for key in [
        "name",
        "role",
        "external_id",
        "phone",
        "time_zone",
        "details",
        "notes",
    ] {
        let Some(v) = field(form, key) else { continue };
        let new = text_value(v);
        let old = match &current[key] {
            Value::String(s) if s.is_empty() => Value::Null,
            other => other.clone(),
        };
        if new != old {
            out.insert(key.to_owned(), new);
        }
    }
    if let Some(raw) = field(form, "tags") {
        let mut new: Vec<String> = raw
            .split([' ', ',', '\n', '\t'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        new.sort();
        new.dedup();
        let mut old: Vec<String> = current["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        old.sort();
        if new != old {
            out.insert("tags".into(), json!(new));
        }
    }
    if let Some(raw) = field(form, "user_fields") {
        let new: Map<String, Value> = match raw.trim() {
            "" => Map::new(),
            t => match serde_json::from_str(t) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(
                        "User fields must be a JSON object, like {\"plan\": \"gold\"}.".into(),
                    );
                }
            },
        };
        let old = current["user_fields"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut diff = Map::new();
        for (k, v) in &new {
            if old.get(k) != Some(v) {
                diff.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &old {
            if !new.contains_key(k) && !v.is_null() {
                diff.insert(k.clone(), Value::Null);
            }
        }
        if !diff.is_empty() {
            out.insert("user_fields".into(), Value::Object(diff));
        }
    }
    Ok(out)
}

pub async fn update(
    State(web): State<Web>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    if let Some(r) = signed.refuse_csrf(&web, field(&form, "_csrf")) {
        return r;
    }
    let Some(id) = user_id(&raw) else {
        return layout::not_found().await;
    };
    let api = Api::new(&web, &signed);
    let current = match api.get(&format!("/api/v2/users/{id}")).await {
        Ok(a) if a.ok() => a.body["user"].clone(),
        Ok(a) => return layout::refused(&web, &signed, &a),
        Err(e) => return layout::internal(e),
    };
    let diff = match changes(&current, &form) {
        Ok(d) => d,
        Err(e) => {
            return render_user(
                &web,
                &signed,
                id,
                None,
                Some((StatusCode::UNPROCESSABLE_ENTITY, e)),
            )
            .await;
        }
    };
    if diff.is_empty() {
        return see_other(&format!("/admin/users/{id}?done=unchanged"));
    }
    write(
        &web,
        &signed,
        id,
        Method::PUT,
        json!({ "user": diff }),
        "saved",
    )
    .await
}

/// Hands a write to the API; on success back to the user's page with `done`, else the page with
/// the API's reason.
async fn write(
    web: &Web,
    signed: &Signed,
    id: i64,
    method: Method,
    body: Value,
    done: &str,
) -> Response {
    match Api::new(web, signed)
        .send(method, &format!("/api/v2/users/{id}"), &body)
        .await
    {
        Ok(a) if a.ok() => see_other(&format!("/admin/users/{id}?done={done}")),
        Ok(a) => render_user(web, signed, id, None, Some((a.status, a.problem()))).await,
        Err(e) => layout::internal(e),
    }
}

pub async fn suspend(
    State(web): State<Web>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    if let Some(r) = signed.refuse_csrf(&web, field(&form, "_csrf")) {
        return r;
    }
    let Some(id) = user_id(&raw) else {
        return layout::not_found().await;
    };
    let on = field(&form, "suspended") == Some("true");
    let done = if on { "suspended" } else { "unsuspended" };
    write(
        &web,
        &signed,
        id,
        Method::PUT,
        json!({"user": {"suspended": on}}),
        done,
    )
    .await
}

pub async fn delete(
    State(web): State<Web>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    if let Some(r) = signed.refuse_csrf(&web, field(&form, "_csrf")) {
        return r;
    }
    let Some(id) = user_id(&raw) else {
        return layout::not_found().await;
    };
    match Api::new(&web, &signed)
        .call(Method::DELETE, &format!("/api/v2/users/{id}"), None)
        .await
    {
        Ok(a) if a.ok() => see_other("/admin/users?done=deleted"),
        Ok(a) => render_user(&web, &signed, id, None, Some((a.status, a.problem()))).await,
        Err(e) => layout::internal(e),
    }
}

fn new_page(
    web: &Web,
    signed: &Signed,
    form: &Fields,
    problem: Option<(StatusCode, String)>,
) -> Response {
    let v = |k: &str| field(form, k).unwrap_or_default().to_owned();
    let role = field(form, "role").unwrap_or("end-user").to_owned();
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.0);
    let body: Markup = html! {
        p.crumbs { a href="/admin/users" { "Users" } " / " }
        h1 { "New user" }
        @if let Some((_, p)) = &problem { p.error role="alert" { (p) } }
        form.edit method="post" action="/admin/users/new" {
            (csrf(signed))
            label { "Name" input type="text" name="name" value=(v("name")) required; }
            label { "Email" input type="email" name="email" value=(v("email")); }
            label { "Role"
                select name="role" {
                    @for r in ["end-user", "agent", "admin"] { option value=(r) selected[role == r] { (r) } }
                }
            }
            label { "External id" input type="text" name="external_id" value=(v("external_id")); }
            label { "Phone" input type="text" name="phone" value=(v("phone")); }
            label { "Tags " small { "(separated by spaces)" } input type="text" name="tags" value=(v("tags")); }
            button type="submit" { "Create" }
        }
    };
    page_response(status, page(web, Some(signed), "New user", body))
}

pub async fn new_form(State(web): State<Web>, signed: Signed) -> Response {
    new_page(&web, &signed, &Vec::new(), None)
}

pub async fn create(State(web): State<Web>, signed: Signed, Form(form): Form<Fields>) -> Response {
    if let Some(r) = signed.refuse_csrf(&web, field(&form, "_csrf")) {
        return r;
    }
    let mut user = Map::new();
    for key in ["name", "email", "role", "external_id", "phone"] {
        if let Some(v) = field(&form, key).map(str::trim).filter(|v| !v.is_empty()) {
            user.insert(key.to_owned(), json!(v));
        }
    }
    if let Some(tags) = field(&form, "tags") {
        let tags: Vec<&str> = tags.split([' ', ',']).filter(|t| !t.is_empty()).collect();
        if !tags.is_empty() {
            user.insert("tags".into(), json!(tags));
        }
    }
    match Api::new(&web, &signed)
        .send(Method::POST, "/api/v2/users", &json!({ "user": user }))
        .await
    {
        Ok(a) if a.ok() => match a.body["user"]["id"].as_i64() {
            Some(id) => see_other(&format!("/admin/users/{id}?done=created")),
            None => see_other("/admin/users"),
        },
        Ok(a) => new_page(&web, &signed, &form, Some((a.status, a.problem()))),
        Err(e) => layout::internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_what_changed_is_sent() {
        let current = json!({"name": "Ann", "role": "agent", "phone": null, "details": "",
            "tags": ["b", "a"], "user_fields": {"plan": "gold", "seats": 3}});
        let f = form(&[
            ("name", "Ann"),
            ("role", "agent"),
            ("phone", " "),
            ("details", ""),
            ("tags", "a b"),
            ("user_fields", r#"{"plan": "gold", "seats": 3}"#),
        ]);
        assert!(changes(&current, &f).unwrap().is_empty());
        let f = form(&[
            ("name", " Anne "),
            ("tags", "a c"),
            ("user_fields", r#"{"plan": "silver"}"#),
        ]);
        let d = changes(&current, &f).unwrap();
        assert_eq!(
            Value::Object(d),
            json!({"name": "Anne", "tags": ["a", "c"],
            "user_fields": {"plan": "silver", "seats": null}})
        );
    }

    #[test]
    fn user_fields_must_be_an_object() {
        let current = json!({"user_fields": {}});
        for bad in ["[1]", "\"x\"", "{", "3"] {
            assert!(
                changes(&current, &form(&[("user_fields", bad)])).is_err(),
                "{bad}"
            );
        }
    }
}
