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
