//! User identities: the email addresses, phone numbers and handles that belong to a user.

use serde::Serialize;

use crate::text::normalize;
use crate::time::iso;

/// The identity types Zendesk knows.
pub const TYPES: &[&str] = &[
    "email",
    "twitter",
    "facebook",
    "google",
    "phone_number",
    "agent_forwarding",
    "any_channel",
    "foreign",
    "sdk",
    "messaging",
];

pub fn is_known_type(t: &str) -> bool {
    TYPES.contains(&t)
}

/// The key under which an identity value is unique across the account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey {
    pub kind: String,
    pub value_norm: String,
}

impl IdentityKey {
    pub fn new(kind: &str, value: &str) -> Self {
        IdentityKey {
            kind: kind.to_owned(),
            value_norm: normalize(value),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRecord {
    pub id: i64,
    pub user_id: i64,
    pub kind: String,
    pub value: String,
    pub verified: bool,
    pub primary: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl IdentityRecord {
    pub fn key(&self) -> IdentityKey {
        IdentityKey::new(&self.kind, &self.value)
    }

    pub fn to_wire(&self, base: &str) -> Identity {
        Identity {
            url: format!("{base}/users/{}/identities/{}.json", self.user_id, self.id),
            id: self.id,
            user_id: self.user_id,
            kind: self.kind.clone(),
            value: self.value.clone(),
            verified: self.verified,
            primary: self.primary,
            created_at: iso(self.created_at),
            updated_at: iso(self.updated_at),
            undeliverable_count: 0,
            deliverable_state: deliverable_state(&self.kind, &self.value),
        }
    }
}

/// Zendesk marks the reserved example domains as `reserved_example`.
fn deliverable_state(kind: &str, value: &str) -> &'static str {
    if kind == "email" {
        let domain = value.rsplit('@').next().unwrap_or("").trim().to_lowercase();
        if ["example.com", "example.net", "example.org", "example.edu"].contains(&domain.as_str()) {
            return "reserved_example";
        }
    }
    "deliverable"
}

/// An identity on the wire, in the recorded key order.
#[derive(Clone, Debug, Serialize)]
pub struct Identity {
    pub url: String,
    pub id: i64,
    pub user_id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub verified: bool,
    pub primary: bool,
    pub created_at: String,
    pub updated_at: String,
    pub undeliverable_count: i64,
    pub deliverable_state: &'static str,
}

/// An identity in a request body (`{"identity": {...}}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityChange {
    pub kind: Option<String>,
    pub value: Option<String>,
    pub verified: Option<bool>,
    pub primary: Option<bool>,
}

impl IdentityChange {
    /// Reads and validates an identity object; `creating` requires `type` and `value`.
    pub fn from_json(
        obj: &serde_json::Map<String, serde_json::Value>,
        creating: bool,
        existing_kind: Option<&str>,
    ) -> Result<IdentityChange, crate::ValidationErrors> {
        use serde_json::Value;
        let mut errors = crate::ValidationErrors::default();
        let text = |errors: &mut crate::ValidationErrors, key: &str| match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(v) if crate::input::has_nul(v) => {
                errors.add(
                    key,
                    "contains a character that is not allowed (U+0000)",
                    Some("InvalidValue"),
                );
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => {
                errors.add(key, "is invalid", Some("InvalidValue"));
                None
            }
        };
        let flag = |errors: &mut crate::ValidationErrors, key: &str| match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" || s == "false" => Some(s == "true"),
            Some(_) => {
                errors.add(key, "is invalid", Some("InvalidValue"));
                None
            }
        };
        let change = IdentityChange {
            kind: text(&mut errors, "type"),
            value: text(&mut errors, "value"),
            verified: flag(&mut errors, "verified"),
            primary: flag(&mut errors, "primary"),
        };
        if creating {
            match change.kind.as_deref() {
                None | Some("") => errors.add("type", "cannot be blank", Some("InvalidValue")),
                Some(k) if !is_known_type(k) => errors.add(
                    "type",
                    &format!("{k} is not a valid identity type"),
                    Some("InvalidValue"),
                ),
                _ => {}
            }
        } else if change
            .kind
            .as_deref()
            .is_some_and(|k| Some(k) != existing_kind)
        {
            errors.add("type", "cannot be changed", Some("InvalidValue"));
        }
        match change.value.as_deref() {
            None if creating => errors.add("value", "cannot be blank", Some("InvalidValue")),
            Some("") => errors.add("value", "cannot be blank", Some("InvalidValue")),
            Some(v) if v.chars().count() > 255 => errors.add(
                "value",
                "is too long (maximum is 255 characters)",
                Some("InvalidValue"),
            ),
            Some(v)
                if change.kind.as_deref().or(existing_kind) == Some("email")
                    && !crate::text::is_valid_email(v) =>
            {
                errors.add("value", &format!("{v} is not properly formatted"), None)
            }
            _ => {}
        }
        if errors.is_empty() {
            Ok(change)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(
        v: serde_json::Value,
        creating: bool,
    ) -> Result<IdentityChange, crate::ValidationErrors> {
        IdentityChange::from_json(v.as_object().unwrap(), creating, Some("email"))
    }

    #[test]
    fn identity_bodies() {
        assert!(read(json!({"type": "email", "value": "a@b.co"}), true).is_ok());
        assert!(read(json!({"type": "email", "value": "nope"}), true).is_err());
        assert!(read(json!({"type": "pigeon", "value": "x"}), true).is_err());
        assert!(read(json!({"value": "x@y.co"}), true).is_err());
        assert!(read(json!({"verified": true}), false).is_ok());
        assert!(read(json!({"type": "twitter"}), false).is_err());
        assert!(read(json!({"value": ""}), false).is_err());
    }
}
