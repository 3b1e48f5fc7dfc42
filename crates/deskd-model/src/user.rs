//! Users: the stored state and the wire object, in the key order Zendesk's responses use.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::role::Role;
use crate::time::iso;

pub const DEFAULT_TIME_ZONE: &str = "America/New_York";
pub const DEFAULT_LOCALE: &str = "en-US";
pub const DEFAULT_LOCALE_ID: i64 = 1;

/// A user as deskd stores it. `email` mirrors the primary email identity.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub role: Role,
    pub custom_role_id: Option<i64>,
    pub organization_id: Option<i64>,
    pub default_group_id: Option<i64>,
    pub time_zone: String,
    pub locale: String,
    pub locale_id: i64,
    pub phone: Option<String>,
    pub shared_phone_number: Option<bool>,
    pub alias: Option<String>,
    pub details: Option<String>,
    pub notes: Option<String>,
    pub signature: Option<String>,
    pub remote_photo_url: Option<String>,
    pub ticket_restriction: Option<String>,
    pub tags: Vec<String>,
    pub user_fields: Map<String, Value>,
    pub moderator: bool,
    pub only_private_comments: bool,
    pub suspended: bool,
    pub verified: bool,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

impl UserRecord {
    /// A fresh record with Zendesk's defaults for a new user of `role`.
    pub fn new(name: String, role: Role, now: i64) -> Self {
        UserRecord {
            id: 0,
            name,
            email: None,
            external_id: None,
            role,
            custom_role_id: None,
            organization_id: None,
            default_group_id: None,
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
            locale: DEFAULT_LOCALE.to_owned(),
            locale_id: DEFAULT_LOCALE_ID,
            phone: None,
            shared_phone_number: None,
            alias: None,
            details: None,
            notes: None,
            signature: None,
            remote_photo_url: None,
            ticket_restriction: default_ticket_restriction(role),
            tags: Vec::new(),
            user_fields: Map::new(),
            moderator: role == Role::Admin,
            only_private_comments: false,
            suspended: false,
            verified: false,
            active: true,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        }
    }

    /// Zendesk's `role_type`: 4 for admins, 0 for agents in a custom role, else null.
    pub fn role_type(&self) -> Option<i64> {
        match self.role {
            Role::Admin => Some(4),
            Role::Agent if self.custom_role_id.is_some() => Some(0),
            _ => None,
        }
    }

    /// The wire object. `base` is the absolute API root, e.g. `http://127.0.0.1:8080/api/v2`.
    pub fn to_wire(&self, base: &str) -> User {
        User {
            id: self.id,
            url: format!("{base}/users/{}.json", self.id),
            name: self.name.clone(),
            email: self.email.clone(),
            created_at: iso(self.created_at),
            updated_at: iso(self.updated_at),
            time_zone: self.time_zone.clone(),
            iana_time_zone: iana_time_zone(&self.time_zone).to_owned(),
            phone: self.phone.clone(),
            shared_phone_number: self.shared_phone_number,
            photo: None,
            remote_photo_url: self.remote_photo_url.clone(),
            locale_id: self.locale_id,
            locale: self.locale.clone(),
            organization_id: self.organization_id,
            role: self.role,
            verified: self.verified,
            authenticity_token: None,
            external_id: self.external_id.clone(),
            tags: self.tags.clone(),
            alias: self.alias.clone(),
            active: self.active,
            shared: false,
            shared_agent: false,
            last_login_at: self.last_login_at.map(iso),
            two_factor_auth_enabled: false,
            signature: self.signature.clone(),
            details: self.details.clone(),
            notes: self.notes.clone(),
            role_type: self.role_type(),
            custom_role_id: self.custom_role_id,
            moderator: self.moderator,
            ticket_restriction: self.ticket_restriction.clone(),
            only_private_comments: self.only_private_comments,
            restricted_agent: self.role != Role::Admin,
            suspended: self.suspended,
            default_group_id: self.default_group_id,
            report_csv: false,
            chat_only: false,
            user_fields: self.user_fields.clone(),
        }
    }
}

/// The fields an end user sees of a user (Zendesk's `UserForEndUser`), in order.
pub const END_USER_FIELDS: &[&str] = &[
    "id",
    "url",
    "name",
    "email",
    "created_at",
    "updated_at",
    "time_zone",
    "iana_time_zone",
    "phone",
    "shared_phone_number",
    "photo",
    "locale_id",
    "locale",
    "organization_id",
    "role",
    "verified",
    "authenticity_token",
];

/// What a new user of `role` gets as `ticket_restriction`.
pub fn default_ticket_restriction(role: Role) -> Option<String> {
    match role {
        Role::EndUser => Some("requested".to_owned()),
        _ => None,
    }
}

/// The IANA name for a Rails-style time zone name; IANA names map to themselves.
pub fn iana_time_zone(tz: &str) -> &str {
    match tz {
        "Eastern Time (US & Canada)" => "America/New_York",
        "Central Time (US & Canada)" => "America/Chicago",
        "Mountain Time (US & Canada)" => "America/Denver",
        "Pacific Time (US & Canada)" => "America/Los_Angeles",
        "Arizona" => "America/Phoenix",
        "Alaska" => "America/Juneau",
        "Hawaii" => "Pacific/Honolulu",
        "London" => "Europe/London",
        "Dublin" => "Europe/Dublin",
        "Paris" => "Europe/Paris",
        "Berlin" => "Europe/Berlin",
        "Amsterdam" => "Europe/Amsterdam",
        "Madrid" => "Europe/Madrid",
        "Rome" => "Europe/Rome",
        "Copenhagen" => "Europe/Copenhagen",
        "Tokyo" => "Asia/Tokyo",
        "Sydney" => "Australia/Sydney",
        "UTC" => "Etc/UTC",
        other => other,
    }
}

/// A user on the wire, fields in the order of Zendesk's recorded responses, with the seed's
/// extra keys (`remote_photo_url`, `chat_only`) placed beside their neighbours.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub url: String,
    pub name: String,
    pub email: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub time_zone: String,
    pub iana_time_zone: String,
    pub phone: Option<String>,
    pub shared_phone_number: Option<bool>,
    pub photo: Option<Value>,
    pub remote_photo_url: Option<String>,
    pub locale_id: i64,
    pub locale: String,
    pub organization_id: Option<i64>,
    pub role: Role,
    pub verified: bool,
    /// Only on `GET /users/me`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticity_token: Option<String>,
    pub external_id: Option<String>,
    pub tags: Vec<String>,
    pub alias: Option<String>,
    pub active: bool,
    pub shared: bool,
    pub shared_agent: bool,
    pub last_login_at: Option<String>,
    pub two_factor_auth_enabled: bool,
    pub signature: Option<String>,
    pub details: Option<String>,
    pub notes: Option<String>,
    pub role_type: Option<i64>,
    pub custom_role_id: Option<i64>,
    pub moderator: bool,
    pub ticket_restriction: Option<String>,
    pub only_private_comments: bool,
    pub restricted_agent: bool,
    pub suspended: bool,
    pub default_group_id: Option<i64>,
    pub report_csv: bool,
    pub chat_only: bool,
    pub user_fields: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_object_has_every_seed_field_in_recorded_order() {
        let u = UserRecord::new("Roger".into(), Role::EndUser, 0).to_wire("http://h/api/v2");
        let v = serde_json::to_value(&u).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let seed = [
            "name",
            "active",
            "alias",
            "chat_only",
            "created_at",
            "custom_role_id",
            "default_group_id",
            "details",
            "email",
            "external_id",
            "iana_time_zone",
            "id",
            "last_login_at",
            "locale",
            "locale_id",
            "moderator",
            "notes",
            "only_private_comments",
            "organization_id",
            "phone",
            "photo",
            "remote_photo_url",
            "report_csv",
            "restricted_agent",
            "role",
            "role_type",
            "shared",
            "shared_agent",
            "shared_phone_number",
            "signature",
            "suspended",
            "tags",
            "ticket_restriction",
            "time_zone",
            "two_factor_auth_enabled",
            "updated_at",
            "url",
            "user_fields",
            "verified",
        ];
        for k in seed {
            assert!(keys.contains(&k), "missing {k}");
        }
        assert_eq!(keys.len(), seed.len());
        let json = serde_json::to_string(&u).unwrap();
        assert!(json.starts_with(r#"{"id":0,"url":"http://h/api/v2/users/0.json","name":"Roger","email":null,"created_at""#));
        assert_eq!(v["role"], "end-user");
        assert_eq!(v["ticket_restriction"], "requested");
        assert_eq!(v["restricted_agent"], true);
    }
}
