//! Organizations, as far as users need them.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::time::iso;

#[derive(Clone, Debug, PartialEq)]
pub struct OrganizationRecord {
    pub id: i64,
    pub name: String,
    pub external_id: Option<String>,
    pub details: Option<String>,
    pub notes: Option<String>,
    pub group_id: Option<i64>,
    pub shared_tickets: bool,
    pub shared_comments: bool,
    pub domain_names: Vec<String>,
    pub tags: Vec<String>,
    pub organization_fields: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OrganizationRecord {
    pub fn new(name: String, now: i64) -> Self {
        OrganizationRecord {
            id: 0,
            name,
            external_id: None,
            details: None,
            notes: None,
            group_id: None,
            shared_tickets: false,
            shared_comments: false,
            domain_names: Vec::new(),
            tags: Vec::new(),
            organization_fields: Map::new(),
            created_at: now,
            updated_at: now,
        }
    }

    pub fn to_wire(&self, base: &str) -> Organization {
        Organization {
            url: format!("{base}/organizations/{}.json", self.id),
            id: self.id,
            name: self.name.clone(),
            shared_tickets: self.shared_tickets,
            shared_comments: self.shared_comments,
            external_id: self.external_id.clone(),
            created_at: iso(self.created_at),
            updated_at: iso(self.updated_at),
            domain_names: self.domain_names.clone(),
            details: self.details.clone(),
            notes: self.notes.clone(),
            group_id: self.group_id,
            tags: self.tags.clone(),
            organization_fields: self.organization_fields.clone(),
        }
    }
}

/// An organization on the wire, in the recorded key order.
#[derive(Clone, Debug, Serialize)]
pub struct Organization {
    pub url: String,
    pub id: i64,
    pub name: String,
    pub shared_tickets: bool,
    pub shared_comments: bool,
    pub external_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub domain_names: Vec<String>,
    pub details: Option<String>,
    pub notes: Option<String>,
    pub group_id: Option<i64>,
    pub tags: Vec<String>,
    pub organization_fields: Map<String, Value>,
}
