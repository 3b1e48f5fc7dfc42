//! Fixtures: the account's state as one JSON document (`GET /__deskd/export`, `POST
//! /__deskd/import`, `deskd serve --seed FILE`), in deskd's own shape:
//!
//! ```text
//! {"deskd_fixture": 1,
//!  "settings": {"bulk_user_import": true},
//!  "organizations": [{"id", "name", "external_id", ..., "created_at", "updated_at"}],
//!  "users": [{"id", "owner", "name", "role", ..., "identities": [{"id", "type", "value",
//!             "verified", "primary", "created_at", "updated_at"}]}],
//!  "memberships": [{"id", "user_id", "organization_id", "default", "view_tickets", ...}],
//!  "user_fields": [{"key", "type", "title", ..., "custom_field_options": [...]}],
//!  "organization_fields": [...]}
//! ```
//!
//! Field definitions come first: the users' and organizations' field values are checked
//! against the fields the document defines, as the API checks them against the account's.
//!
//! Reading a document is a pure plan: each user and organization goes through the same input
//! rules as the API (`UserInput`, the upsert plan, `OrganizationInput`), then the fixture's own
//! state (ids, timestamps, `active`, `verified`, primary flags) is laid over it, and what must
//! be unique across the account is checked across the document. The first failure is reported
//! with a JSON pointer to the value at fault. Passwords and tokens are never part of a fixture.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::custom_field::{self, FieldDef, Resource};
use crate::error::ValidationErrors;
use crate::identity::{IdentityKey, IdentityRecord};
use crate::input::UserInput;
use crate::membership::{MembershipRecord, view_tickets};
use crate::organization::OrganizationRecord;
use crate::organization_input::OrganizationInput;
use crate::role::{Actor, Role};
use crate::text::normalize;
use crate::time::iso;
use crate::upsert::{self, Facts};
use crate::user::UserRecord;

/// The version of the document's shape, in `deskd_fixture`.
pub const FORMAT: i64 = 1;
/// The one account setting a fixture carries (see `/api/v2/account/settings`).
pub const BULK_IMPORT: &str = "bulk_user_import";
/// Most records of one kind in one document.
pub const MAX_RECORDS: usize = 1_000_000;

/// Why a document was refused: where (a JSON pointer into it) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureError {
    pub pointer: String,
    pub message: String,
}

impl FixtureError {
    fn at(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        FixtureError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The first validation failure of an object at `base`.
    fn from_validation(base: &str, e: &ValidationErrors) -> Self {
        match e.fields.first() {
            Some((field, err)) => FixtureError::at(format!("{base}/{field}"), &err.description),
            None => FixtureError::at(base, "is invalid"),
        }
    }

    /// One line for an error body or a log.
    pub fn sentence(&self) -> String {
        format!("{}: {}", self.pointer, self.message)
    }
}

/// What the store knows of the account owner, who stays as they are across an import.
#[derive(Clone, Debug, Default)]
pub struct OwnerFacts {
    pub id: i64,
    pub external_id: Option<String>,
    pub identities: Vec<IdentityRecord>,
}

/// Who a membership belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Member {
    /// The account owner (the document's `owner: true` user).
    Owner,
    /// `Fixture::users[i]`.
    User(usize),
}

/// A membership to write: its user and `Fixture::organizations` index, and its state (`id` 0
/// when the store allocates it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureMembership {
    pub member: Member,
    pub organization: usize,
    pub record: MembershipRecord,
}

/// A document, read and checked: what the store writes after emptying the account. Ids of 0
/// are allocated by the store; the rest are written as given. `users[i].0.organization_id`
/// names `organizations[j]` by index + 1 until the store knows the organizations' ids (see
/// [`Fixture::default_organization`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fixture {
    pub bulk_user_import: Option<bool>,
    /// User fields, then organization fields, each in its document order (ids 0 until written).
    pub fields: Vec<crate::custom_field::FieldDef>,
    pub organizations: Vec<OrganizationRecord>,
    pub users: Vec<(UserRecord, Vec<IdentityRecord>)>,
    pub memberships: Vec<FixtureMembership>,
}

impl Fixture {
    /// The organization index of `member`'s default membership.
    pub fn default_organization(&self, member: Member) -> Option<usize> {
        self.memberships
            .iter()
            .find(|m| m.member == member && m.record.default)
            .map(|m| m.organization)
    }
}

const ORGANIZATION_KEYS: &[&str] = &[
    "id",
    "name",
    "external_id",
    "details",
    "notes",
    "group_id",
    "shared_tickets",
    "shared_comments",
    "domain_names",
    "tags",
    "organization_fields",
    "created_at",
    "updated_at",
];
const USER_KEYS: &[&str] = &[
    "id",
    "owner",
    "name",
    "email",
    "external_id",
    "role",
    "custom_role_id",
    "organization_id",
    "organization",
    "default_group_id",
    "time_zone",
    "locale",
    "locale_id",
    "phone",
    "shared_phone_number",
    "alias",
    "details",
    "notes",
    "signature",
    "remote_photo_url",
    "ticket_restriction",
    "tags",
    "user_fields",
    "moderator",
    "only_private_comments",
    "suspended",
    "verified",
    "active",
    "created_at",
    "updated_at",
    "last_login_at",
    "identities",
];
const IDENTITY_KEYS: &[&str] = &[
    "id",
    "type",
    "value",
    "verified",
    "primary",
    "created_at",
    "updated_at",
];
const MEMBERSHIP_KEYS: &[&str] = &[
    "id",
    "user_id",
    "organization_id",
    "default",
    "view_tickets",
    "created_at",
    "updated_at",
];

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, FixtureError> {
    v.as_object()
        .ok_or_else(|| FixtureError::at(at, "must be an object"))
}

fn known_keys(obj: &Map<String, Value>, keys: &[&str], at: &str) -> Result<(), FixtureError> {
    match obj.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(FixtureError::at(
            format!("{at}/{}", escape(k)),
            "is not a key of this object (see the README's fixture format)",
        )),
        None => Ok(()),
    }
}

/// A JSON pointer token for `key`.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn list<'a>(doc: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], FixtureError> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) if items.len() <= MAX_RECORDS => Ok(items),
        Some(Value::Array(_)) => Err(FixtureError::at(
            format!("/{key}"),
            format!("holds more than {MAX_RECORDS} records"),
        )),
        Some(_) => Err(FixtureError::at(format!("/{key}"), "must be an array")),
    }
}

/// Highest id a fixture may give: JavaScript's largest exact integer, far below where the id
/// sequences would run out (ids handed out later follow the highest one given).
pub const MAX_ID: i64 = 9_007_199_254_740_991;

/// A positive integer id, or `None` when absent.
fn id(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<i64>, FixtureError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=MAX_ID).contains(&n) => Ok(Some(n)),
            _ => Err(FixtureError::at(
                format!("{at}/{key}"),
                format!("must be an integer from 1 to {MAX_ID}"),
            )),
        },
    }
}

fn flag(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<bool>, FixtureError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(FixtureError::at(
            format!("{at}/{key}"),
            "must be true or false",
        )),
    }
}

/// A time: RFC 3339 text (as exported) or Unix seconds.
fn time(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<i64>, FixtureError> {
    let bad = || {
        FixtureError::at(
            format!("{at}/{key}"),
            "must be an RFC 3339 time (2024-01-31T12:00:00Z) or Unix seconds",
        )
    };
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp()))
            .map_err(|_| bad()),
        Some(v) => v
            .as_i64()
            .filter(|n| (0..=253_402_300_799).contains(n))
            .map(Some)
            .ok_or_else(bad),
    }
}

/// Reads and checks a document. `now` stamps records that carry no times.
pub fn plan(doc: &Value, owner: &OwnerFacts, now: i64) -> Result<Fixture, FixtureError> {
    let doc = object(doc, "")?;
    known_keys(
        doc,
        &[
            "deskd_fixture",
            "settings",
            "organizations",
            "users",
            "memberships",
            "user_fields",
            "organization_fields",
        ],
        "",
    )?;
    match doc.get("deskd_fixture") {
        None => {}
        Some(v) if v.as_i64() == Some(FORMAT) => {}
        Some(_) => {
            return Err(FixtureError::at(
                "/deskd_fixture",
                format!("must be {FORMAT}, the only format this deskd reads"),
            ));
        }
    }
    let mut fixture = Fixture::default();
    if let Some(settings) = doc.get("settings").filter(|v| !v.is_null()) {
        let settings = object(settings, "/settings")?;
        known_keys(settings, &[BULK_IMPORT], "/settings")?;
        fixture.bulk_user_import = flag(settings, BULK_IMPORT, "/settings")?;
    }

    // Field definitions, through the API's field rules.
    for resource in [Resource::User, Resource::Organization] {
        let key = resource.plural();
        let mut defined: Vec<FieldDef> = Vec::new();
        for (i, v) in list(doc, key)?.iter().enumerate() {
            let at = format!("/{key}/{i}");
            let input = custom_field::read_input(object(v, &at)?)
                .map_err(|e| FixtureError::from_validation(&at, &e))?;
            let mut def = custom_field::plan_create(resource, &input, &defined, now)
                .map_err(|e| FixtureError::from_validation(&at, &e))?;
            // Distinct provisional ids: the plan keys options and positions by id.
            def.id = -(defined.len() as i64) - 1;
            defined.push(def);
        }
        fixture.fields.extend(defined);
    }
    let defs_of = |r: Resource| -> Vec<FieldDef> {
        fixture
            .fields
            .iter()
            .filter(|d| d.resource == r)
            .cloned()
            .collect()
    };
    let (user_defs, org_defs) = (defs_of(Resource::User), defs_of(Resource::Organization));
    let user_defs: std::sync::Arc<[FieldDef]> = user_defs.into();

    // Organizations, by document id and by normalized name.
    let mut org_ids: HashMap<i64, usize> = HashMap::new();
    let mut org_names: HashMap<String, usize> = HashMap::new();
    let mut org_external: HashSet<String> = HashSet::new();
    for (i, v) in list(doc, "organizations")?.iter().enumerate() {
        let at = format!("/organizations/{i}");
        let obj = object(v, &at)?;
        known_keys(obj, ORGANIZATION_KEYS, &at)?;
        let input = OrganizationInput::from_json(obj, false)
            .map_err(|e| FixtureError::from_validation(&at, &e))?;
        let mut org = input
            .create(&org_defs, now)
            .map_err(|e| FixtureError::from_validation(&at, &e))?;
        if let Some(n) = id(obj, "id", &at)? {
            if org_ids.insert(n, i).is_some() {
                return Err(FixtureError::at(
                    format!("{at}/id"),
                    format!("{n} is the id of an earlier organization"),
                ));
            }
            org.id = n;
        }
        if org_names.insert(normalize(&org.name), i).is_some() {
            return Err(FixtureError::at(
                format!("{at}/name"),
                format!("{} is the name of an earlier organization", org.name),
            ));
        }
        if let Some(ext) = &org.external_id
            && !org_external.insert(normalize(ext))
        {
            return Err(FixtureError::at(
                format!("{at}/external_id"),
                format!("{ext} is the external_id of an earlier organization"),
            ));
        }
        org.created_at = time(obj, "created_at", &at)?.unwrap_or(now);
        org.updated_at = time(obj, "updated_at", &at)?.unwrap_or(org.created_at);
        fixture.organizations.push(org);
    }

    // Users: the owner's entry only lends its id to memberships.
    let mut user_ids: HashMap<i64, Member> = HashMap::new();
    let mut identity_keys: HashMap<IdentityKey, String> = owner
        .identities
        .iter()
        .map(|i| (i.key(), "the account owner".to_owned()))
        .collect();
    let mut identity_ids: HashSet<i64> = owner.identities.iter().map(|i| i.id).collect();
    let mut external_ids: HashMap<String, String> = owner
        .external_id
        .iter()
        .map(|e| (normalize(e), "the account owner".to_owned()))
        .collect();
    let mut owner_seen = false;
    // Default memberships named by a user's `organization_id` or `organization: {name}`.
    let mut shorthand: Vec<(Member, usize, String)> = Vec::new();
    let admin = Actor {
        user_id: owner.id,
        role: Role::Admin,
    };
    for (i, v) in list(doc, "users")?.iter().enumerate() {
        let at = format!("/users/{i}");
        let obj = object(v, &at)?;
        known_keys(obj, USER_KEYS, &at)?;
        let input =
            UserInput::from_json(obj).map_err(|e| FixtureError::from_validation(&at, &e))?;
        let is_owner = flag(obj, "owner", &at)?.unwrap_or(false);
        let doc_id = id(obj, "id", &at)?;
        let member = if is_owner {
            if owner_seen {
                return Err(FixtureError::at(
                    format!("{at}/owner"),
                    "only one user is the account owner",
                ));
            }
            owner_seen = true;
            if input.role.is_some_and(|r| r != Role::Admin) {
                return Err(FixtureError::at(
                    format!("{at}/role"),
                    "the account owner is an admin",
                ));
            }
            Member::Owner
        } else {
            Member::User(fixture.users.len())
        };
        if let Some(n) = doc_id {
            if n == owner.id && !is_owner {
                return Err(FixtureError::at(
                    format!("{at}/id"),
                    format!("{n} is the account owner's id; mark that user \"owner\": true"),
                ));
            }
            if user_ids.insert(n, member).is_some() {
                return Err(FixtureError::at(
                    format!("{at}/id"),
                    format!("{n} is the id of an earlier user"),
                ));
            }
        }
        match (input.organization_id, &input.organization_name) {
            (Some(Some(org)), _) => match org_ids.get(&org) {
                Some(&j) => shorthand.push((member, j, format!("{at}/organization_id"))),
                None => {
                    return Err(FixtureError::at(
                        format!("{at}/organization_id"),
                        format!("{org} is not the id of an organization in this document"),
                    ));
                }
            },
            (None, Some(name)) => match org_names.get(&normalize(name)) {
                Some(&j) => shorthand.push((member, j, format!("{at}/organization"))),
                None => {
                    return Err(FixtureError::at(
                        format!("{at}/organization"),
                        format!("{name} is not the name of an organization in this document"),
                    ));
                }
            },
            _ => {}
        }
        if is_owner {
            continue;
        }
        let mut input = input;
        // Memberships are the fixture's own; the upsert plan needs no organization facts.
        input.organization_id = None;
        input.organization_name = None;
        let facts = Facts {
            user_fields: user_defs.clone(),
            ..Facts::default()
        };
        let planned = upsert::plan(&input, admin, &facts, now).map_err(|r| match r {
            crate::Rejection::Invalid(e) => FixtureError::from_validation(&at, &e),
            _ => FixtureError::at(at.clone(), "is not a user deskd can create"),
        })?;
        let mut user = planned.user;
        user.id = doc_id.unwrap_or(0);
        user.organization_id = None;
        user.created_at = time(obj, "created_at", &at)?.unwrap_or(now);
        user.updated_at = time(obj, "updated_at", &at)?.unwrap_or(user.created_at);
        user.last_login_at = time(obj, "last_login_at", &at)?;
        user.active = flag(obj, "active", &at)?.unwrap_or(true);
        // A locale deskd does not map keeps the id the document gives it.
        if let Some(n) = obj.get("locale_id").and_then(Value::as_i64) {
            user.locale_id = n;
        }
        if let Some(ext) = &user.external_id
            && let Some(other) = external_ids.insert(normalize(ext), format!("{at}/external_id"))
        {
            return Err(FixtureError::at(
                format!("{at}/external_id"),
                format!("{ext} has already been taken by {other}"),
            ));
        }
        let identities = read_identities(
            obj,
            &at,
            &planned.new_identities,
            &user,
            &mut identity_keys,
            &mut identity_ids,
        )?;
        user.email = identities
            .iter()
            .find(|i| i.kind == "email" && i.primary)
            .map(|i| i.value.clone());
        if let Some(v) = flag(obj, "verified", &at)? {
            user.verified = v;
        }
        fixture.users.push((user, identities));
    }

    // Memberships: the listed ones, then the users' shorthand defaults.
    let mut pairs: HashSet<(Member, usize)> = HashSet::new();
    let mut defaults: HashSet<Member> = HashSet::new();
    let mut membership_ids: HashSet<i64> = HashSet::new();
    let role_of = |fixture: &Fixture, m: Member| match m {
        Member::Owner => (Role::Admin, None),
        Member::User(i) => (
            fixture.users[i].0.role,
            fixture.users[i].0.ticket_restriction.clone(),
        ),
    };
    for (i, v) in list(doc, "memberships")?.iter().enumerate() {
        let at = format!("/memberships/{i}");
        let obj = object(v, &at)?;
        known_keys(obj, MEMBERSHIP_KEYS, &at)?;
        let Some(user_id) = id(obj, "user_id", &at)? else {
            return Err(FixtureError::at(format!("{at}/user_id"), "is required"));
        };
        let Some(org_id) = id(obj, "organization_id", &at)? else {
            return Err(FixtureError::at(
                format!("{at}/organization_id"),
                "is required",
            ));
        };
        let member = match user_ids.get(&user_id) {
            Some(&m) => m,
            None if user_id == owner.id => Member::Owner,
            None => {
                return Err(FixtureError::at(
                    format!("{at}/user_id"),
                    format!("{user_id} is not the id of a user in this document"),
                ));
            }
        };
        let Some(&organization) = org_ids.get(&org_id) else {
            return Err(FixtureError::at(
                format!("{at}/organization_id"),
                format!("{org_id} is not the id of an organization in this document"),
            ));
        };
        if !pairs.insert((member, organization)) {
            return Err(FixtureError::at(
                at,
                "an earlier membership joins the same user and organization",
            ));
        }
        let default = flag(obj, "default", &at)?.unwrap_or(false);
        if default && !defaults.insert(member) {
            return Err(FixtureError::at(
                format!("{at}/default"),
                "the user has an earlier default membership",
            ));
        }
        let membership_id = id(obj, "id", &at)?;
        if let Some(n) = membership_id
            && !membership_ids.insert(n)
        {
            return Err(FixtureError::at(
                format!("{at}/id"),
                format!("{n} is the id of an earlier membership"),
            ));
        }
        let (role, restriction) = role_of(&fixture, member);
        let created_at = time(obj, "created_at", &at)?.unwrap_or(now);
        fixture.memberships.push(FixtureMembership {
            member,
            organization,
            record: MembershipRecord {
                id: membership_id.unwrap_or(0),
                user_id: 0,
                organization_id: 0,
                default,
                view_tickets: flag(obj, "view_tickets", &at)?
                    .unwrap_or_else(|| view_tickets(role, restriction.as_deref())),
                organization_name: fixture.organizations[organization].name.clone(),
                created_at,
                updated_at: time(obj, "updated_at", &at)?.unwrap_or(created_at),
            },
        });
    }
    for (member, organization, at) in shorthand {
        let listed = pairs.contains(&(member, organization));
        if defaults.contains(&member) && !listed {
            return Err(FixtureError::at(
                at,
                "the user's default membership in /memberships is another organization",
            ));
        }
        if listed {
            // The listed membership must then be the default one.
            let m = fixture
                .memberships
                .iter_mut()
                .find(|m| m.member == member && m.organization == organization);
            if let Some(m) = m {
                if !m.record.default && defaults.contains(&member) {
                    return Err(FixtureError::at(
                        at,
                        "the user's default membership in /memberships is another organization",
                    ));
                }
                m.record.default = true;
                defaults.insert(member);
            }
            continue;
        }
        pairs.insert((member, organization));
        defaults.insert(member);
        let (role, restriction) = role_of(&fixture, member);
        fixture.memberships.push(FixtureMembership {
            member,
            organization,
            record: MembershipRecord {
                id: 0,
                user_id: 0,
                organization_id: 0,
                default: true,
                view_tickets: view_tickets(role, restriction.as_deref()),
                organization_name: fixture.organizations[organization].name.clone(),
                created_at: now,
                updated_at: now,
            },
        });
    }
    // A user with memberships but no default: the first one is the default, as when the API
    // adds a user's first membership.
    let mut firsts: HashMap<Member, usize> = HashMap::new();
    for (k, m) in fixture.memberships.iter().enumerate() {
        firsts.entry(m.member).or_insert(k);
    }
    for (member, k) in firsts {
        if !defaults.contains(&member) {
            fixture.memberships[k].record.default = true;
        }
    }
    Ok(fixture)
}

/// A user's identities: the upsert plan's (which checked and de-duplicated them), with the
/// document's ids, times, verified and primary flags laid over them.
fn read_identities(
    obj: &Map<String, Value>,
    at: &str,
    planned: &[upsert::NewIdentity],
    user: &UserRecord,
    keys: &mut HashMap<IdentityKey, String>,
    ids: &mut HashSet<i64>,
) -> Result<Vec<IdentityRecord>, FixtureError> {
    let listed: &[Value] = match obj.get("identities") {
        Some(Value::Array(items)) => items,
        _ => &[],
    };
    // The document's entry for each key, by position.
    let mut given: HashMap<IdentityKey, (usize, &Map<String, Value>)> = HashMap::new();
    for (k, v) in listed.iter().enumerate() {
        let iat = format!("{at}/identities/{k}");
        let o = object(v, &iat)?;
        known_keys(o, IDENTITY_KEYS, &iat)?;
        if let (Some(Value::String(t)), Some(Value::String(val))) = (o.get("type"), o.get("value"))
        {
            let key = IdentityKey::new(t.trim(), val.trim());
            if given.insert(key, (k, o)).is_some() {
                return Err(FixtureError::at(
                    format!("{iat}/value"),
                    format!("{} is listed twice for this user", val.trim()),
                ));
            }
        }
    }
    let mut out = Vec::with_capacity(planned.len());
    let mut primaries: HashSet<String> = HashSet::new();
    for n in planned {
        let key = IdentityKey::new(&n.kind, &n.value);
        let (iat, vat, entry) = match given.get(&key) {
            Some((k, o)) => {
                let iat = format!("{at}/identities/{k}");
                (iat.clone(), format!("{iat}/value"), Some(*o))
            }
            None => (format!("{at}/email"), format!("{at}/email"), None),
        };
        if let Some(other) = keys.insert(key, vat.clone()) {
            return Err(FixtureError::at(
                vat,
                format!("{} is already being used by {other}", n.value),
            ));
        }
        let mut record = IdentityRecord {
            id: 0,
            user_id: user.id,
            kind: n.kind.clone(),
            value: n.value.clone(),
            verified: n.verified,
            primary: n.primary,
            created_at: user.created_at,
            updated_at: user.created_at,
        };
        if let Some(o) = entry {
            if let Some(n) = id(o, "id", &iat)? {
                if !ids.insert(n) {
                    return Err(FixtureError::at(
                        format!("{iat}/id"),
                        format!("{n} is the id of another identity"),
                    ));
                }
                record.id = n;
            }
            record.verified = flag(o, "verified", &iat)?.unwrap_or(record.verified);
            record.primary = flag(o, "primary", &iat)?.unwrap_or(record.primary);
            record.created_at = time(o, "created_at", &iat)?.unwrap_or(record.created_at);
            record.updated_at = time(o, "updated_at", &iat)?.unwrap_or(record.created_at);
        }
        if record.primary && !primaries.insert(record.kind.clone()) {
            return Err(FixtureError::at(
                format!("{iat}/primary"),
                format!("the user has another primary {} identity", record.kind),
            ));
        }
        out.push(record);
    }
    // Every kind keeps a primary identity.
    for kind in out.iter().map(|i| i.kind.clone()).collect::<Vec<_>>() {
        if !primaries.contains(&kind)
            && let Some(first) = out.iter_mut().find(|i| i.kind == kind)
        {
            first.primary = true;
            primaries.insert(kind);
        }
    }
    // Primary first, then in the order given, as the API lists them.
    out.sort_by_key(|i| !i.primary);
    Ok(out)
}

/// The account's state as a document. Lists in id order; identities primary first, then by
/// id; memberships carry the ids of their users and organizations.
pub fn document(
    owner_id: i64,
    bulk_user_import: Option<bool>,
    organizations: &[OrganizationRecord],
    users: &[(UserRecord, Vec<IdentityRecord>)],
    memberships: &[MembershipRecord],
    fields: &[FieldDef],
) -> Value {
    let mut settings = Map::new();
    if let Some(on) = bulk_user_import {
        settings.insert(BULK_IMPORT.into(), json!(on));
    }
    json!({
        "deskd_fixture": FORMAT,
        "settings": settings,
        "organizations": organizations.iter().map(organization_json).collect::<Vec<_>>(),
        "users": users
            .iter()
            .map(|(u, ids)| user_json(u, ids, u.id == owner_id))
            .collect::<Vec<_>>(),
        "memberships": memberships.iter().map(|m| json!({
            "id": m.id,
            "user_id": m.user_id,
            "organization_id": m.organization_id,
            "default": m.default,
            "view_tickets": m.view_tickets,
            "created_at": iso(m.created_at),
            "updated_at": iso(m.updated_at),
        })).collect::<Vec<_>>(),
        "user_fields": fields_json(fields, Resource::User),
        "organization_fields": fields_json(fields, Resource::Organization),
    })
}

/// `resource`'s field definitions as the API shows them, less what belongs to one account (ids,
/// URLs, timestamps), in position order.
fn fields_json(fields: &[FieldDef], resource: Resource) -> Vec<Value> {
    let mut list: Vec<&FieldDef> = fields.iter().filter(|d| d.resource == resource).collect();
    list.sort_by_key(|d| (d.position, d.id));
    list.iter()
        .map(|d| {
            let mut v = d.to_wire("");
            if let Some(obj) = v.as_object_mut() {
                for k in ["id", "url", "created_at", "updated_at"] {
                    obj.remove(k);
                }
                if let Some(Value::Array(options)) = obj.get_mut("custom_field_options") {
                    for o in options.iter_mut().filter_map(Value::as_object_mut) {
                        o.remove("id");
                        o.remove("url");
                    }
                }
            }
            v
        })
        .collect()
}

fn organization_json(o: &OrganizationRecord) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "external_id": o.external_id,
        "details": o.details,
        "notes": o.notes,
        "group_id": o.group_id,
        "shared_tickets": o.shared_tickets,
        "shared_comments": o.shared_comments,
        "domain_names": o.domain_names,
        "tags": o.tags,
        "organization_fields": o.organization_fields,
        "created_at": iso(o.created_at),
        "updated_at": iso(o.updated_at),
    })
}

fn user_json(u: &UserRecord, identities: &[IdentityRecord], owner: bool) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "external_id": u.external_id,
        "role": u.role.as_str(),
        "custom_role_id": u.custom_role_id,
        "default_group_id": u.default_group_id,
        "time_zone": u.time_zone,
        "locale": u.locale,
        "locale_id": u.locale_id,
        "phone": u.phone,
        "shared_phone_number": u.shared_phone_number,
        "alias": u.alias,
        "details": u.details,
        "notes": u.notes,
        "signature": u.signature,
        "remote_photo_url": u.remote_photo_url,
        "ticket_restriction": u.ticket_restriction,
        "tags": u.tags,
        "user_fields": u.user_fields,
        "moderator": u.moderator,
        "only_private_comments": u.only_private_comments,
        "suspended": u.suspended,
        "verified": u.verified,
        "active": u.active,
        "created_at": iso(u.created_at),
        "updated_at": iso(u.updated_at),
        "last_login_at": u.last_login_at.map(iso),
        "identities": identities.iter().map(|i| json!({
            "id": i.id,
            "type": i.kind,
            "value": i.value,
            "verified": i.verified,
            "primary": i.primary,
            "created_at": iso(i.created_at),
            "updated_at": iso(i.updated_at),
        })).collect::<Vec<_>>(),
    });
    if owner {
        v["owner"] = json!(true);
    }
    v
}

#[cfg(test)]
mod tests;
