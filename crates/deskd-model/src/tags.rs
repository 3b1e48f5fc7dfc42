//! The Tags endpoints of users and organizations (`/users/{id}/tags`, `/organizations/{id}/tags`):
//! list, add (`PUT`), set (`POST`), remove (`DELETE`). The request reads like any tags field
//! (an array, or one string of space- or comma-separated tags; at most 1,000); the result is
//! bounded the same way, so no write can grow a list past it.

use serde_json::{Map, Value};

use crate::error::{Rejection, ValidationErrors};
use crate::input::{MAX_LIST, Reader};
use crate::role::{Actor, Role};
use crate::user::UserRecord;

/// What a tags request asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagOp {
    /// `PUT`: append the tags the list lacks.
    Add,
    /// `POST`: the list becomes the given tags (kept ones keep their place).
    Set,
    /// `DELETE`: drop the given tags.
    Remove,
}

/// Reads `{"tags": ...}`: `None` when the key is absent (the caller's 400), else the tags.
pub fn read(body: &Map<String, Value>) -> Result<Option<Vec<String>>, ValidationErrors> {
    if !body.contains_key("tags") {
        return Ok(None);
    }
    let mut r = Reader::new(body);
    let tags = r.list("tags");
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    Ok(Some(tags.unwrap_or_default()))
}

/// The `?tags=a,b` form of a remove: the same reading as a string body.
pub fn read_query(raw: &str) -> Result<Vec<String>, ValidationErrors> {
    let mut body = Map::new();
    body.insert("tags".to_owned(), Value::String(raw.to_owned()));
    Ok(read(&body)?.unwrap_or_default())
}

/// The list after `op` with `given`; a 422 when it would hold more than 1,000 tags.
pub fn apply(
    op: TagOp,
    existing: &[String],
    given: &[String],
) -> Result<Vec<String>, ValidationErrors> {
    let out = match op {
        TagOp::Add => {
            let mut out = existing.to_vec();
            let mut have: std::collections::HashSet<String> = existing.iter().cloned().collect();
            for t in given {
                if have.insert(t.clone()) {
                    out.push(t.clone());
                }
            }
            out
        }
        TagOp::Set => crate::upsert::merge_tags(existing, given),
        TagOp::Remove => {
            let gone: std::collections::HashSet<&String> = given.iter().collect();
            existing
                .iter()
                .filter(|t| !gone.contains(t))
                .cloned()
                .collect()
        }
    };
    if out.len() > MAX_LIST {
        return Err(ValidationErrors::single(
            "tags",
            &format!("is too long (maximum is {MAX_LIST} values)"),
            Some("InvalidValue"),
        ));
    }
    Ok(out)
}

/// A tags write of one user, decided on the user as read under its lock. Soft-deleted users are
/// gone for writes (404); agents change end users' tags only, end users nobody's (403).
pub fn plan_user(
    op: TagOp,
    given: &[String],
    actor: Actor,
    user: Option<&UserRecord>,
    now: i64,
) -> Result<Option<UserRecord>, Rejection> {
    let user = user.filter(|u| u.active).ok_or(Rejection::NotFound)?;
    let allowed = match actor.role {
        Role::Admin => true,
        Role::Agent => user.role == Role::EndUser,
        Role::EndUser => false,
    };
    if !allowed {
        return Err(Rejection::Forbidden);
    }
    let tags = apply(op, &user.tags, given)?;
    if tags == user.tags {
        return Ok(None);
    }
    let mut after = user.clone();
    after.tags = tags;
    after.updated_at = now.max(user.updated_at);
    Ok(Some(after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn add_set_remove() {
        let had = v(&["a", "b"]);
        assert_eq!(
            apply(TagOp::Add, &had, &v(&["b", "c"])).unwrap(),
            v(&["a", "b", "c"])
        );
        assert_eq!(
            apply(TagOp::Set, &had, &v(&["c", "b"])).unwrap(),
            v(&["b", "c"])
        );
        assert_eq!(
            apply(TagOp::Remove, &had, &v(&["a", "z"])).unwrap(),
            v(&["b"])
        );
        let many: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        assert!(apply(TagOp::Add, &many, &v(&["more"])).is_err());
        assert!(apply(TagOp::Set, &many, &many).is_ok());
    }

    #[test]
    fn reading() {
        let body = json!({"tags": "x y,x"});
        assert_eq!(
            read(body.as_object().unwrap()).unwrap(),
            Some(v(&["x", "y"]))
        );
        assert_eq!(read(json!({}).as_object().unwrap()).unwrap(), None);
        assert!(read(json!({"tags": ["a\u{0}"]}).as_object().unwrap()).is_err());
        assert!(read(json!({"tags": [{"x": 1}]}).as_object().unwrap()).is_err());
        assert_eq!(read_query("a,b").unwrap(), v(&["a", "b"]));
    }

    #[test]
    fn agents_tag_end_users_only_and_deleted_users_are_gone() {
        let mut u = UserRecord::new("U".into(), Role::EndUser, 1);
        u.id = 5;
        let agent = Actor {
            user_id: 2,
            role: Role::Agent,
        };
        assert!(
            plan_user(TagOp::Add, &v(&["t"]), agent, Some(&u), 2)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            plan_user(TagOp::Remove, &v(&["t"]), agent, Some(&u), 2),
            Ok(None)
        );
        u.role = Role::Admin;
        assert_eq!(
            plan_user(TagOp::Add, &v(&["t"]), agent, Some(&u), 2),
            Err(Rejection::Forbidden)
        );
        u.active = false;
        assert_eq!(
            plan_user(TagOp::Add, &v(&["t"]), agent, Some(&u), 2),
            Err(Rejection::NotFound)
        );
        assert_eq!(
            plan_user(TagOp::Add, &[], agent, None, 2),
            Err(Rejection::NotFound)
        );
    }
}
