//! Reading a `user` object from a request body into typed input.
//!
//! Zendesk is lenient about types (the Chilkat samples send every field as a string) and strict
//! about values: integers may come as numeric strings, booleans as `"true"`, and a bad value of a
//! known key is a 422 on that key. Unknown and read-only keys are ignored.

use serde_json::{Map, Value};

use crate::error::ValidationErrors;
use crate::identity::is_known_type;
use crate::role::Role;
use crate::text::is_valid_email;

/// A key that may be absent (`None`), cleared with `null` (`Some(None)`) or set.
pub type Patch<T> = Option<Option<T>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityInput {
    pub kind: String,
    pub value: String,
    pub verified: bool,
}

/// The fields of a `user` object deskd understands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserInput {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub external_id: Patch<String>,
    pub role: Option<Role>,
    pub custom_role_id: Patch<i64>,
    pub organization_id: Patch<i64>,
    pub organization_name: Option<String>,
    pub default_group_id: Patch<i64>,
    pub identities: Vec<IdentityInput>,
    pub verified: Option<bool>,
    pub skip_verify_email: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub user_fields: Option<Map<String, Value>>,
    pub phone: Patch<String>,
    pub shared_phone_number: Patch<bool>,
    pub alias: Patch<String>,
    pub details: Patch<String>,
    pub notes: Patch<String>,
    pub signature: Patch<String>,
    pub remote_photo_url: Patch<String>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    pub locale_id: Option<i64>,
    pub ticket_restriction: Patch<String>,
    pub moderator: Option<bool>,
    pub only_private_comments: Option<bool>,
    pub suspended: Option<bool>,
}

/// Longest text deskd stores in one field; longer is a 422, not a silent cut.
pub const MAX_TEXT: usize = 65_536;
const MAX_SHORT: usize = 255;
/// Most values in one list field (`tags`, `domain_names`) and most identities in one request:
/// deskd's bounds (Zendesk states none), so one request cannot hold the writer for long.
pub const MAX_LIST: usize = 1_000;
pub const MAX_IDENTITIES: usize = 100;
/// Most keys in one `user_fields` / `organization_fields` object.
pub const MAX_FIELDS: usize = 1_000;

const TICKET_RESTRICTIONS: &[&str] = &["organization", "groups", "assigned", "requested"];

impl UserInput {
    /// Reads a `user` object. `id_is_lookup` is true for create_or_update, where a present `id`
    /// names the user to update; on `POST /users` a blank id is ignored.
    pub fn from_json(obj: &Map<String, Value>) -> Result<UserInput, ValidationErrors> {
        let mut r = Reader::new(obj);
        let mut input = UserInput {
            id: r.id(),
            name: r.text("name", MAX_SHORT).flatten(),
            email: None,
            external_id: r.text("external_id", MAX_SHORT),
            role: r.role(),
            custom_role_id: r.int("custom_role_id"),
            organization_id: r.int("organization_id"),
            organization_name: r.organization_name(),
            default_group_id: r.int("default_group_id"),
            identities: r.identities(),
            verified: r.boolean("verified").flatten(),
            skip_verify_email: r.boolean("skip_verify_email").flatten(),
            tags: r.list("tags"),
            user_fields: r.object("user_fields"),
            phone: r.text("phone", MAX_SHORT),
            shared_phone_number: r.boolean("shared_phone_number"),
            alias: r.text("alias", MAX_SHORT),
            details: r.text("details", MAX_TEXT),
            notes: r.text("notes", MAX_TEXT),
            signature: r.text("signature", MAX_TEXT),
            remote_photo_url: r.text("remote_photo_url", 2048),
            time_zone: r.text("time_zone", MAX_SHORT).flatten(),
            locale: r.text("locale", 16).flatten(),
            locale_id: r.int("locale_id").flatten(),
            ticket_restriction: r.ticket_restriction(),
            moderator: r.boolean("moderator").flatten(),
            only_private_comments: r.boolean("only_private_comments").flatten(),
            suspended: r.boolean("suspended").flatten(),
        };
        input.email = r.email();
        // A blank external_id is no external_id.
        if let Some(Some(ext)) = &input.external_id {
            if ext.trim().is_empty() {
                input.external_id = Some(None);
            }
        }
        if r.errors.is_empty() {
            Ok(input)
        } else {
            Err(r.errors)
        }
    }

    /// Every email this input would attach to the user: `email` first, then email identities.
    pub fn emails(&self) -> impl Iterator<Item = &str> {
        self.email.as_deref().into_iter().chain(
            self.identities
                .iter()
                .filter(|i| i.kind == "email")
                .map(|i| i.value.as_str()),
        )
    }
}

/// Reads the fields of a request object leniently, collecting every bad value's error. Shared by
/// every resource's input.
pub(crate) struct Reader<'a> {
    obj: &'a Map<String, Value>,
    pub(crate) errors: ValidationErrors,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(obj: &'a Map<String, Value>) -> Self {
        Reader {
            obj,
            errors: ValidationErrors::default(),
        }
    }

    fn invalid(&mut self, field: &str) {
        self.errors.add(field, "is invalid", Some("InvalidValue"));
    }

    /// The value of `field`, unless it holds a U+0000 anywhere (PostgreSQL cannot store it in
    /// text, and no Zendesk field means it): then the field is a 422 and reads as absent.
    fn get(&mut self, field: &str) -> Option<&'a Value> {
        let v = self.obj.get(field)?;
        if has_nul(v) {
            self.errors.add(
                field,
                "contains a character that is not allowed (U+0000)",
                Some("InvalidValue"),
            );
            return None;
        }
        Some(v)
    }

    /// A string field: strings as given, numbers and booleans as their text.
    pub(crate) fn text(&mut self, field: &str, max: usize) -> Patch<String> {
        let v = self.get(field)?;
        let s = match v {
            Value::Null => return Some(None),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                self.invalid(field);
                return None;
            }
        };
        if s.chars().count() > max {
            self.errors.add(
                field,
                &format!("is too long (maximum is {max} characters)"),
                Some("InvalidValue"),
            );
            return None;
        }
        Some(Some(s))
    }

    /// An integer field: JSON integers and numeric strings; `null` and `""` clear it.
    pub(crate) fn int(&mut self, field: &str) -> Patch<i64> {
        let v = self.get(field)?;
        match parse_int(v) {
            Ok(v) => Some(v),
            Err(()) => {
                self.errors
                    .add(field, "is not a number", Some("InvalidValue"));
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, field: &str) -> Patch<bool> {
        let v = self.get(field)?;
        let b = match v {
            Value::Null => return Some(None),
            Value::Bool(b) => *b,
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                _ => {
                    self.invalid(field);
                    return None;
                }
            },
            Value::Number(n) if n.as_i64() == Some(0) => false,
            Value::Number(n) if n.as_i64() == Some(1) => true,
            _ => {
                self.invalid(field);
                return None;
            }
        };
        Some(Some(b))
    }

    pub(crate) fn id(&mut self) -> Option<i64> {
        match self.int("id") {
            Some(Some(id)) if id > 0 => Some(id),
            Some(Some(_)) => {
                self.errors
                    .add("id", "is not a number", Some("InvalidValue"));
                None
            }
            _ => None,
        }
    }

    fn role(&mut self) -> Option<Role> {
        let s = self.text("role", MAX_SHORT).flatten()?;
        if s.trim().is_empty() {
            return None;
        }
        match Role::parse(&s) {
            Some(r) => Some(r),
            None => {
                self.errors
                    .add("role", "is not included in the list", Some("InvalidValue"));
                None
            }
        }
    }

    fn email(&mut self) -> Option<String> {
        let s = self.text("email", MAX_SHORT).flatten()?;
        if s.trim().is_empty() {
            return None;
        }
        if !is_valid_email(&s) {
            self.errors.add(
                "email",
                &format!("{} is not properly formatted", s.trim()),
                None,
            );
            return None;
        }
        Some(s.trim().to_owned())
    }

    fn organization_name(&mut self) -> Option<String> {
        match self.get("organization")? {
            Value::Null => None,
            Value::Object(org) => match org.get("name") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) if s.trim().chars().count() <= MAX_SHORT => {
                    Some(s.trim().to_owned())
                }
                _ => {
                    self.invalid("organization");
                    None
                }
            },
            _ => {
                self.invalid("organization");
                None
            }
        }
    }

    fn identities(&mut self) -> Vec<IdentityInput> {
        let mut out = Vec::new();
        let Some(v) = self.get("identities") else {
            return out;
        };
        let list = match v {
            Value::Null => return out,
            Value::Array(list) => list,
            _ => {
                self.invalid("identities");
                return out;
            }
        };
        if list.len() > MAX_IDENTITIES {
            self.errors.add(
                "identities",
                &format!("is too long (maximum is {MAX_IDENTITIES} identities)"),
                Some("InvalidValue"),
            );
            return out;
        }
        for item in list {
            let Value::Object(o) = item else {
                self.invalid("identities");
                continue;
            };
            let kind = match o.get("type") {
                Some(Value::String(t)) => t.trim().to_owned(),
                _ => {
                    self.errors
                        .add("identities", "type is invalid", Some("InvalidValue"));
                    continue;
                }
            };
            if !is_known_type(&kind) {
                self.errors.add(
                    "identities",
                    &format!("type {kind} is invalid"),
                    Some("InvalidValue"),
                );
                continue;
            }
            let value = match o.get("value") {
                Some(Value::String(s))
                    if !s.trim().is_empty() && s.chars().count() <= MAX_SHORT =>
                {
                    s.trim().to_owned()
                }
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    self.errors
                        .add("identities", "value is invalid", Some("InvalidValue"));
                    continue;
                }
            };
            if kind == "email" && !is_valid_email(&value) {
                self.errors
                    .add("email", &format!("{value} is not properly formatted"), None);
                continue;
            }
            let verified = matches!(o.get("verified"), Some(Value::Bool(true)))
                || matches!(o.get("verified"), Some(Value::String(s)) if s == "true");
            out.push(IdentityInput {
                kind,
                value,
                verified,
            });
        }
        out
    }

    /// Tags: an array of strings, or one string of space- or comma-separated tags.
    pub(crate) fn list(&mut self, field: &str) -> Option<Vec<String>> {
        let v = self.get(field)?;
        let raw: Vec<String> = match v {
            Value::Null => Vec::new(),
            Value::String(s) => s.split([' ', ',']).map(str::to_owned).collect(),
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        Value::Number(n) => out.push(n.to_string()),
                        _ => {
                            self.invalid(field);
                            return None;
                        }
                    }
                }
                out
            }
            _ => {
                self.invalid(field);
                return None;
            }
        };
        if raw.len() > MAX_LIST {
            self.errors.add(
                field,
                &format!("is too long (maximum is {MAX_LIST} values)"),
                Some("InvalidValue"),
            );
            return None;
        }
        let mut tags: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for t in raw {
            let t = t.trim();
            if t.is_empty() {
                continue;
            }
            if t.chars().count() > MAX_SHORT {
                self.errors.add(field, "is too long", Some("InvalidValue"));
                return None;
            }
            if seen.insert(t.to_owned()) {
                tags.push(t.to_owned());
            }
        }
        Some(tags)
    }

    pub(crate) fn object(&mut self, field: &str) -> Option<Map<String, Value>> {
        match self.get(field)? {
            Value::Null => Some(Map::new()),
            Value::Object(m) if m.len() > MAX_FIELDS => {
                self.errors.add(
                    field,
                    &format!("is too long (maximum is {MAX_FIELDS} keys)"),
                    Some("InvalidValue"),
                );
                None
            }
            Value::Object(m) => Some(m.clone()),
            _ => {
                self.invalid(field);
                None
            }
        }
    }

    fn ticket_restriction(&mut self) -> Patch<String> {
        let v = self.text("ticket_restriction", MAX_SHORT)?;
        match v {
            None => Some(None),
            Some(s) if TICKET_RESTRICTIONS.contains(&s.as_str()) => Some(Some(s)),
            Some(_) => {
                self.invalid("ticket_restriction");
                None
            }
        }
    }
}

/// Whether a U+0000 appears in any string or key of `v`.
pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A JSON integer or a numeric string; `null` and `""` mean "none".
pub fn parse_int(v: &Value) -> Result<Option<i64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or(()),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s.trim().parse::<i64>().map(Some).map_err(|_| ()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<UserInput, ValidationErrors> {
        UserInput::from_json(v.as_object().unwrap())
    }

    #[test]
    fn chilkat_strings_are_accepted() {
        let u = read(
            json!({"name": "A", "organization_id": "12", "custom_role_id": "", "verified": "true"}),
        )
        .unwrap();
        assert_eq!(u.organization_id, Some(Some(12)));
        assert_eq!(u.custom_role_id, Some(None));
        assert_eq!(u.verified, Some(true));
    }

    #[test]
    fn bad_values_name_their_field() {
        let e =
            read(json!({"name": "A", "organization_id": "abc", "role": "boss", "email": "nope"}))
                .unwrap_err();
        let fields: Vec<&str> = e.fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["role", "organization_id", "email"]);
        assert_eq!(
            e.fields[2].1.description,
            "Email: nope is not properly formatted"
        );
    }

    #[test]
    fn unknown_and_read_only_keys_are_ignored() {
        let u =
            read(json!({"name": "A", "url": 5, "active": "x", "role_type": {}, "whatever": []}))
                .unwrap();
        assert_eq!(u.name.as_deref(), Some("A"));
    }

    #[test]
    fn blank_id_is_absent() {
        assert_eq!(read(json!({"id": ""})).unwrap().id, None);
        assert_eq!(read(json!({"id": null})).unwrap().id, None);
        assert_eq!(read(json!({"id": "42"})).unwrap().id, Some(42));
        assert!(read(json!({"id": "x"})).is_err());
    }

    #[test]
    fn tags_dedupe_and_split() {
        assert_eq!(
            read(json!({"tags": "a b,a"})).unwrap().tags.unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            read(json!({"tags": ["x", " y ", "x", ""]}))
                .unwrap()
                .tags
                .unwrap(),
            ["x", "y"]
        );
    }
}
