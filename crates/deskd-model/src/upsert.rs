//! create_or_update: which user a request means, whether the caller may touch it, and what the
//! user looks like afterwards. The store supplies the facts and writes the plan.

use serde_json::{Map, Value};

use crate::error::{Rejection, ValidationErrors};
use crate::identity::{IdentityKey, IdentityRecord};
use crate::input::UserInput;
use crate::role::{Actor, Role};
use crate::text::normalize;
use crate::user::{UserRecord, default_ticket_restriction};

/// How the target of an upsert was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    Id,
    ExternalId,
    Email,
}

/// The lookups a store must answer before [`plan`] can decide, in the order it asks them:
/// the id (if given), else the external_id's owner, else the owner of the first listed email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `id` was given and names a user.
    Id(i64),
    /// `id` was given and names no user: 404.
    UnknownId,
    ExternalId(i64),
    Email(i64),
    New,
}

/// Picks the target from what the store found. `by_external_id` is the user owning the input's
/// external_id; `email_owner` the owner of the first email of the input that has one.
pub fn resolve(
    input: &UserInput,
    id_exists: Option<bool>,
    by_external_id: Option<i64>,
    email_owner: Option<i64>,
) -> Target {
    if let Some(id) = input.id {
        return if id_exists == Some(true) {
            Target::Id(id)
        } else {
            Target::UnknownId
        };
    }
    if let Some(uid) = by_external_id {
        return Target::ExternalId(uid);
    }
    if let Some(uid) = email_owner {
        return Target::Email(uid);
    }
    Target::New
}

/// Every identity key the input names, `email` first, without repeats.
pub fn identity_keys(input: &UserInput) -> Vec<IdentityKey> {
    let mut keys: Vec<IdentityKey> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let all = input
        .email
        .iter()
        .map(|e| IdentityKey::new("email", e))
        .chain(
            input
                .identities
                .iter()
                .map(|i| IdentityKey::new(&i.kind, &i.value)),
        );
    for k in all {
        if seen.insert(k.clone()) {
            keys.push(k);
        }
    }
    keys
}

/// The facts [`plan`] decides on.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The user being updated, with its identities; `None` when creating.
    pub existing: Option<(UserRecord, Vec<IdentityRecord>)>,
    /// Owners of the identity keys the input names (`identity_keys`).
    pub identity_owners: Vec<(IdentityKey, i64)>,
    /// The user owning the input's external_id, if any.
    pub external_id_owner: Option<i64>,
    /// For an input `organization_id`: whether that organization exists.
    pub organization_exists: Option<bool>,
    /// For an input `organization: {name}`: the id of the organization with that name.
    pub organization_by_name: Option<i64>,
    /// The account owner, whom nobody can demote or suspend.
    pub account_owner: Option<i64>,
    /// The user fields defined, which `user_fields` values are checked against.
    /// Shared: every item of a batch is decided against the same definitions.
    pub user_fields: std::sync::Arc<[crate::custom_field::FieldDef]>,
}

/// An identity to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIdentity {
    pub kind: String,
    pub value: String,
    pub verified: bool,
    pub primary: bool,
}

/// What the store must write.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The user as it must be stored (id 0 when new).
    pub user: UserRecord,
    pub created: bool,
    pub new_identities: Vec<NewIdentity>,
    /// Set the verified flag of the existing primary email identity.
    pub verify_primary: Option<bool>,
    /// Create this organization and attach the user to it.
    pub create_organization: Option<String>,
    /// Whether anything changes; an unchanged update writes nothing.
    pub changed: bool,
    /// The update takes access away (a role, suspension or activity change): every cached
    /// login must be checked again once it commits.
    pub reduces_access: bool,
}

/// Decides an upsert. Returns a rejection (nothing to write) or the plan.
pub fn plan(input: &UserInput, actor: Actor, facts: &Facts, now: i64) -> Result<Plan, Rejection> {
    let target_id = facts.existing.as_ref().map(|(u, _)| u.id);
    authorize(input, actor, facts.existing.as_ref().map(|(u, _)| u))?;

    let mut errors = ValidationErrors::default();
    for (key, owner) in &facts.identity_owners {
        if Some(*owner) != target_id {
            let shown = shown_value(input, key);
            if key.kind == "email" {
                errors
                    .fields
                    .extend(ValidationErrors::duplicate_email(&shown).fields);
            } else {
                errors.add(
                    &key.kind,
                    &format!("{shown} is already being used by another user"),
                    Some("DuplicateValue"),
                );
            }
        }
    }
    if let (Some(Some(ext)), Some(owner)) = (&input.external_id, facts.external_id_owner) {
        if Some(owner) != target_id {
            errors.add(
                "external_id",
                &format!("{} has already been taken", ext.trim()),
                Some("DuplicateValue"),
            );
        }
    }
    if let (Some(Some(_)), Some(false)) = (input.organization_id, facts.organization_exists) {
        errors.add("organization_id", "is invalid", Some("InvalidValue"));
    }
    let name_given = input.name.as_deref().map(str::trim);
    let name_missing = match (&facts.existing, name_given) {
        (None, None) | (_, Some("")) => true,
        _ => false,
    };
    if name_missing {
        errors.add("name", "is too short (minimum is 1 characters)", None);
    }
    let fields = match &input.user_fields {
        Some(supplied) => match crate::field_values::accept(&facts.user_fields, supplied) {
            Ok(accepted) => Some(accepted),
            Err(e) => {
                errors.fields.extend(e.fields);
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(Rejection::Invalid(errors));
    }

    let mut plan = match &facts.existing {
        None => plan_create(input, fields, now),
        Some((user, identities)) => plan_update(input, fields, user, identities, now),
    };
    if let Some((old, _)) = &facts.existing {
        if Some(old.id) == facts.account_owner
            && (plan.user.role != old.role || plan.user.suspended)
        {
            return Err(Rejection::Forbidden);
        }
        // Only the owner gives the owner new identities (a login email for someone else).
        if !plan.new_identities.is_empty()
            && !crate::role::may_manage_credentials_of(actor, old.id, facts.account_owner)
        {
            return Err(Rejection::Forbidden);
        }
        plan.reduces_access = old.role != plan.user.role
            || old.suspended != plan.user.suspended
            || old.active != plan.user.active;
    }
    apply_organization(input, actor, facts, &mut plan)?;
    Ok(plan)
}

/// Agents may create and change end users only, and may not hand out roles.
fn authorize(
    input: &UserInput,
    actor: Actor,
    existing: Option<&UserRecord>,
) -> Result<(), Rejection> {
    match actor.role {
        Role::Admin => Ok(()),
        Role::EndUser => Err(Rejection::Forbidden),
        Role::Agent => {
            let target_role = existing.map(|u| u.role).unwrap_or(Role::EndUser);
            let target_custom = existing.and_then(|u| u.custom_role_id);
            let role_change = input.role.is_some_and(|r| r != target_role);
            let custom_change = matches!(input.custom_role_id, Some(c) if c != target_custom);
            if target_role != Role::EndUser || role_change || custom_change {
                Err(Rejection::Forbidden)
            } else {
                Ok(())
            }
        }
    }
}

/// The value to quote in a duplicate message: as the request wrote it.
fn shown_value(input: &UserInput, key: &IdentityKey) -> String {
    input
        .email
        .iter()
        .filter(|_| key.kind == "email")
        .cloned()
        .chain(
            input
                .identities
                .iter()
                .filter(|i| i.kind == key.kind)
                .map(|i| i.value.clone()),
        )
        .find(|v| normalize(v) == key.value_norm)
        .unwrap_or_else(|| key.value_norm.clone())
}

fn effective_role(role: Option<Role>, custom_role_id: Option<i64>) -> Option<Role> {
    match (role, custom_role_id) {
        (Some(Role::EndUser), Some(_)) => Some(Role::Agent),
        (r, _) => r,
    }
}

fn plan_create(input: &UserInput, fields: Option<Map<String, Value>>, now: i64) -> Plan {
    let custom_role_id = input.custom_role_id.flatten();
    let role = effective_role(Some(input.role.unwrap_or(Role::EndUser)), custom_role_id)
        .unwrap_or(Role::EndUser);
    let mut user = UserRecord::new(
        input.name.clone().unwrap_or_default().trim().to_owned(),
        role,
        now,
    );
    user.custom_role_id = custom_role_id;
    apply_fields(input, &mut user, true);
    if let Some(fields) = fields {
        crate::field_values::merge(&mut user.user_fields, fields);
    }
    let verified = input.verified.unwrap_or(false);
    user.verified = verified;

    let wanted = input
        .email
        .iter()
        .map(|e| ("email".to_owned(), e.clone(), verified))
        .chain(
            input
                .identities
                .iter()
                .map(|i| (i.kind.clone(), i.value.clone(), i.verified || verified)),
        );
    let mut queue = IdentityQueue::new(&[]);
    for (kind, value, verified) in wanted {
        queue.add(kind, value, verified);
    }
    let new_identities = queue.list;
    user.email = new_identities
        .iter()
        .find(|i| i.kind == "email" && i.primary)
        .map(|i| i.value.clone());
    if new_identities.iter().any(|i| i.verified) {
        user.verified = true;
    }
    Plan {
        user,
        created: true,
        new_identities,
        verify_primary: None,
        create_organization: None,
        changed: true,
        reduces_access: false,
    }
}

fn plan_update(
    input: &UserInput,
    fields: Option<Map<String, Value>>,
    existing: &UserRecord,
    identities: &[IdentityRecord],
    now: i64,
) -> Plan {
    let mut user = existing.clone();
    if let Some(name) = &input.name {
        user.name = name.trim().to_owned();
    }
    if input.role.is_some() || matches!(input.custom_role_id, Some(Some(_))) {
        let custom = match input.custom_role_id {
            Some(c) => c,
            None => user.custom_role_id,
        };
        if let Some(role) = effective_role(Some(input.role.unwrap_or(user.role)), custom) {
            if role != user.role && input.ticket_restriction.is_none() {
                user.ticket_restriction = default_ticket_restriction(role);
            }
            user.role = role;
        }
    }
    if let Some(c) = input.custom_role_id {
        user.custom_role_id = c;
    }
    apply_fields(input, &mut user, false);
    if let Some(fields) = fields {
        crate::field_values::merge(&mut user.user_fields, fields);
    }

    let verified = input.verified;
    let wanted = input
        .email
        .iter()
        .map(|e| ("email".to_owned(), e.clone(), verified.unwrap_or(false)))
        .chain(
            input
                .identities
                .iter()
                .map(|i| (i.kind.clone(), i.value.clone(), i.verified)),
        );
    let mut queue = IdentityQueue::new(identities);
    for (kind, value, verified) in wanted {
        queue.add(kind, value, verified);
    }
    let new_identities = queue.list;
    if user.email.is_none() {
        user.email = new_identities
            .iter()
            .find(|i| i.kind == "email" && i.primary)
            .map(|i| i.value.clone());
    }
    // `verified` alone speaks of the primary identity; with a new email, of that email.
    let verify_primary = match verified {
        Some(v)
            if input
                .email
                .as_ref()
                .is_none_or(|e| existing_has(identities, "email", e)) =>
        {
            user.verified = v || identities.iter().any(|i| i.verified && !i.primary);
            Some(v)
        }
        _ => None,
    };
    if new_identities.iter().any(|i| i.verified) {
        user.verified = true;
    }
    let changed = user != *existing || !new_identities.is_empty() || verify_primary.is_some();
    if changed {
        user.updated_at = now.max(existing.updated_at);
    }
    Plan {
        user,
        created: false,
        new_identities,
        verify_primary,
        create_organization: None,
        changed,
        reduces_access: false,
    }
}

fn existing_has(identities: &[IdentityRecord], kind: &str, value: &str) -> bool {
    let norm = normalize(value);
    identities
        .iter()
        .any(|i| i.kind == kind && normalize(&i.value) == norm)
}

/// The identities a plan adds: each unless the user or the queue has it already; the first of
/// a type is primary. Sets keep it linear in the number of identities.
struct IdentityQueue {
    list: Vec<NewIdentity>,
    have: std::collections::HashSet<IdentityKey>,
    primary_kinds: std::collections::HashSet<String>,
}

impl IdentityQueue {
    fn new(existing: &[IdentityRecord]) -> Self {
        IdentityQueue {
            list: Vec::new(),
            have: existing.iter().map(IdentityRecord::key).collect(),
            primary_kinds: existing
                .iter()
                .filter(|i| i.primary)
                .map(|i| i.kind.clone())
                .collect(),
        }
    }

    fn add(&mut self, kind: String, value: String, verified: bool) {
        if !self.have.insert(IdentityKey::new(&kind, &value)) {
            return;
        }
        let primary = self.primary_kinds.insert(kind.clone());
        self.list.push(NewIdentity {
            kind,
            value,
            verified,
            primary,
        });
    }
}

/// Copies the plain writable fields; `creating` decides how `null` reads.
fn apply_fields(input: &UserInput, user: &mut UserRecord, creating: bool) {
    fn set<T: Clone>(slot: &mut Option<T>, patch: &Option<Option<T>>) {
        if let Some(v) = patch {
            *slot = v.clone();
        }
    }
    if let Some(ext) = &input.external_id {
        user.external_id = ext.as_ref().map(|e| e.trim().to_owned());
    }
    set(&mut user.organization_id, &input.organization_id);
    set(&mut user.default_group_id, &input.default_group_id);
    set(&mut user.phone, &input.phone);
    set(&mut user.shared_phone_number, &input.shared_phone_number);
    set(&mut user.details, &input.details);
    set(&mut user.notes, &input.notes);
    set(&mut user.signature, &input.signature);
    set(&mut user.remote_photo_url, &input.remote_photo_url);
    set(&mut user.ticket_restriction, &input.ticket_restriction);
    if user.role == Role::EndUser && user.ticket_restriction.is_none() {
        // Zendesk coerces an end user's restriction to "requested".
        user.ticket_restriction = Some("requested".to_owned());
    }
    match &input.alias {
        // Recorded: clearing an alias reads back as "".
        Some(None) if !creating => user.alias = Some(String::new()),
        Some(a) => user.alias = a.clone(),
        None => {}
    }
    if let Some(tz) = &input.time_zone {
        if !tz.trim().is_empty() {
            user.time_zone = tz.trim().to_owned();
        }
    }
    match (&input.locale, input.locale_id) {
        (Some(locale), _) if !locale.trim().is_empty() => {
            user.locale = locale.trim().to_owned();
            if let Some(id) = locale_id_of(&user.locale) {
                user.locale_id = id;
            }
        }
        (_, Some(id)) => {
            user.locale_id = id;
            if let Some(l) = locale_of(id) {
                user.locale = l.to_owned();
            }
        }
        _ => {}
    }
    if let Some(v) = input.moderator {
        user.moderator = v;
    }
    if let Some(v) = input.only_private_comments {
        user.only_private_comments = v;
    }
    if let Some(v) = input.suspended {
        user.suspended = v;
    }
    if let Some(tags) = &input.tags {
        user.tags = merge_tags(&user.tags, tags);
    }
}

/// Tags are replaced by the supplied list; tags kept keep their place, new ones are appended.
pub fn merge_tags(existing: &[String], supplied: &[String]) -> Vec<String> {
    use std::collections::HashSet;
    let wanted: HashSet<&String> = supplied.iter().collect();
    let had: HashSet<&String> = existing.iter().collect();
    existing
        .iter()
        .filter(|t| wanted.contains(t))
        .chain(supplied.iter().filter(|t| !had.contains(t)))
        .cloned()
        .collect()
}

fn apply_organization(
    input: &UserInput,
    actor: Actor,
    facts: &Facts,
    plan: &mut Plan,
) -> Result<(), Rejection> {
    // organization_id decides when both are given.
    if input.organization_id.is_some() {
        return Ok(());
    }
    if let Some(name) = &input.organization_name {
        match facts.organization_by_name {
            Some(id) => {
                if plan.user.organization_id != Some(id) {
                    plan.user.organization_id = Some(id);
                    plan.changed = true;
                }
            }
            // A new organization is created only by whoever may create organizations.
            None if !crate::role::may_create_organizations(actor) => {
                return Err(Rejection::Forbidden);
            }
            None => {
                plan.create_organization = Some(name.clone());
                plan.changed = true;
            }
        }
    }
    Ok(())
}

const LOCALES: &[(&str, i64)] = &[("en-US", 1)];

fn locale_id_of(locale: &str) -> Option<i64> {
    LOCALES
        .iter()
        .find(|(l, _)| l.eq_ignore_ascii_case(locale))
        .map(|(_, id)| *id)
}

fn locale_of(id: i64) -> Option<&'static str> {
    LOCALES.iter().find(|(_, i)| *i == id).map(|(l, _)| *l)
}

#[cfg(test)]
mod tests;
