//! Organization memberships: a user belongs to any number of organizations, one of them the
//! default (mirrored as `user.organization_id`). Every change is a pure plan over the user's
//! current memberships; the store locks the user, reads them, asks here, and writes the plan.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ValidationErrors;
use crate::input::Reader;
use crate::role::{Actor, Role};
use crate::time::iso;

/// A membership as stored, with its organization's name for the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipRecord {
    pub id: i64,
    pub user_id: i64,
    pub organization_id: i64,
    pub default: bool,
    pub view_tickets: bool,
    pub organization_name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The wire object. `default` is `true` or `null` (Zendesk: "If false, returns null").
#[derive(Clone, Debug, Serialize)]
pub struct Membership {
    pub id: i64,
    pub url: String,
    pub user_id: i64,
    pub organization_id: i64,
    pub default: Option<bool>,
    pub organization_name: String,
    pub view_tickets: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl MembershipRecord {
    pub fn to_wire(&self, base: &str) -> Membership {
        Membership {
            id: self.id,
            url: format!("{base}/organization_memberships/{}.json", self.id),
            user_id: self.user_id,
            organization_id: self.organization_id,
            default: self.default.then_some(true),
            organization_name: self.organization_name.clone(),
            view_tickets: self.view_tickets,
            created_at: iso(self.created_at),
            updated_at: iso(self.updated_at),
        }
    }
}

/// Whether a member sees all of the organization's tickets: staff do, and end users whose
/// ticket restriction is `organization`.
pub fn view_tickets(role: Role, ticket_restriction: Option<&str>) -> bool {
    role.is_staff() || ticket_restriction == Some("organization")
}

/// Who may add, remove or re-default a membership of a user with `target_role`: admins for
/// anyone, agents for end users only (Zendesk: "Agents when creating a new organization
/// membership for an end user").
pub fn may_manage(actor: Actor, target_role: Role) -> bool {
    match actor.role {
        Role::Admin => true,
        Role::Agent => target_role == Role::EndUser,
        Role::EndUser => false,
    }
}

/// Who may read a user's memberships: staff anyone's, end users their own.
pub fn may_read(actor: Actor, user_id: i64) -> bool {
    actor.role.is_staff() || actor.user_id == user_id
}

/// An `organization_membership` object of a request: `user_id` and `organization_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipInput {
    pub user_id: i64,
    pub organization_id: i64,
    /// `default: true` makes the new membership the user's default.
    pub default: bool,
}

impl MembershipInput {
    /// Reads the two ids (numbers or numeric strings); a missing one is blank, a bad one invalid.
    pub fn from_json(obj: &Map<String, Value>) -> Result<MembershipInput, ValidationErrors> {
        let mut r = Reader::new(obj);
        let user_id = r.int("user_id");
        let organization_id = r.int("organization_id");
        let default = r.boolean("default").flatten().unwrap_or(false);
        let mut errors = r.errors;
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(Some(user_id)), Some(Some(organization_id))) = (user_id, organization_id) else {
            if !matches!(user_id, Some(Some(_))) {
                errors.add("user", "cannot be blank", Some("BlankValue"));
            }
            if !matches!(organization_id, Some(Some(_))) {
                errors.add("organization", "cannot be blank", Some("BlankValue"));
            }
            return Err(errors);
        };
        Ok(MembershipInput {
            user_id,
            organization_id,
            default,
        })
    }
}

/// What the store found for a membership create.
#[derive(Clone, Debug)]
pub struct AddFacts {
    /// The user's role and ticket restriction, when it is an active user.
    pub user: Option<(Role, Option<String>)>,
    /// The organization's name, when it exists.
    pub organization_name: Option<String>,
    /// The user's memberships now.
    pub existing: Vec<MembershipRecord>,
}

/// A change to one user's memberships.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// New memberships (id 0 until written).
    pub insert: Vec<MembershipRecord>,
    /// Membership ids to delete.
    pub delete: Vec<i64>,
    /// The membership id that becomes the default, and the others that stop being it.
    pub set_default: Option<i64>,
    /// The user's `organization_id` afterwards, when it changes.
    pub user_organization: Option<Option<i64>>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

fn current_default(existing: &[MembershipRecord]) -> Option<i64> {
    existing
        .iter()
        .find(|m| m.default)
        .map(|m| m.organization_id)
}

/// `POST /organization_memberships`: the user joins the organization; the first membership is
/// the default. Unknown user or organization, or a membership that exists, is a 422.
pub fn add(
    actor: Actor,
    input: MembershipInput,
    facts: &AddFacts,
    now: i64,
) -> Result<Plan, crate::Rejection> {
    let mut errors = ValidationErrors::default();
    let Some((role, restriction)) = &facts.user else {
        errors.add("user", "cannot be blank", Some("BlankValue"));
        if facts.organization_name.is_none() {
            errors.add("organization", "cannot be blank", Some("BlankValue"));
        }
        return Err(errors.into());
    };
    if !may_manage(actor, *role) {
        return Err(crate::Rejection::Forbidden);
    }
    let Some(name) = &facts.organization_name else {
        errors.add("organization", "cannot be blank", Some("BlankValue"));
        return Err(errors.into());
    };
    if facts
        .existing
        .iter()
        .any(|m| m.organization_id == input.organization_id)
    {
        errors.add("user_id", "has already been taken", Some("DuplicateValue"));
        return Err(errors.into());
    }
    let default = input.default || current_default(&facts.existing).is_none();
    Ok(Plan {
        insert: vec![MembershipRecord {
            id: 0,
            user_id: input.user_id,
            organization_id: input.organization_id,
            default,
            view_tickets: view_tickets(*role, restriction.as_deref()),
            organization_name: name.clone(),
            created_at: now,
            updated_at: now,
        }],
        user_organization: default.then_some(Some(input.organization_id)),
        ..Plan::default()
    })
}

/// Removing memberships `removed` from a user who has `existing`: when the default goes, the
/// oldest remaining membership becomes the default (or the user has no organization).
pub fn remove(existing: &[MembershipRecord], removed: &[i64]) -> Plan {
    let delete: Vec<i64> = existing
        .iter()
        .filter(|m| removed.contains(&m.id))
        .map(|m| m.id)
        .collect();
    if delete.is_empty() {
        return Plan::default();
    }
    let default_removed = existing.iter().any(|m| m.default && delete.contains(&m.id));
    let mut plan = Plan {
        delete,
        ..Plan::default()
    };
    if default_removed || current_default(existing).is_none() {
        let next = existing
            .iter()
            .filter(|m| !plan.delete.contains(&m.id))
            .min_by_key(|m| m.id);
        plan.set_default = next.map(|m| m.id);
        plan.user_organization = Some(next.map(|m| m.organization_id));
    }
    plan
}

/// `make_default`: the membership becomes the user's default.
pub fn make_default(existing: &[MembershipRecord], membership_id: i64) -> Option<Plan> {
    let target = existing.iter().find(|m| m.id == membership_id)?;
    if target.default {
        return Some(Plan::default());
    }
    Some(Plan {
        set_default: Some(target.id),
        user_organization: Some(Some(target.organization_id)),
        ..Plan::default()
    })
}

/// Setting `organization_id` on a user replaces all of its memberships with that one
/// organization (the existing membership is kept when there is one); `None` removes them all.
pub fn replace(
    user_id: i64,
    existing: &[MembershipRecord],
    organization: Option<(i64, &str)>,
    view: bool,
    now: i64,
) -> Plan {
    let keep = organization.and_then(|(org, _)| {
        existing
            .iter()
            .find(|m| m.organization_id == org)
            .map(|m| m.id)
    });
    let mut plan = Plan {
        delete: existing
            .iter()
            .filter(|m| Some(m.id) != keep)
            .map(|m| m.id)
            .collect(),
        ..Plan::default()
    };
    match (organization, keep) {
        (Some(_), Some(id)) => {
            if !existing.iter().any(|m| m.id == id && m.default) {
                plan.set_default = Some(id);
            }
        }
        (Some((org, name)), None) => plan.insert.push(MembershipRecord {
            id: 0,
            user_id,
            organization_id: org,
            default: true,
            view_tickets: view,
            organization_name: name.to_owned(),
            created_at: now,
            updated_at: now,
        }),
        (None, _) => {}
    }
    plan
}

/// Merging a user into `target_id`: the target joins each of the source's organizations it is
/// not in; the target's default is `target_default` afterwards (the merge plan keeps the
/// target's organization, or takes the source's when the target had none). The source's
/// memberships are removed separately.
pub fn absorb(
    target_id: i64,
    target: &[MembershipRecord],
    source: &[MembershipRecord],
    target_default: Option<i64>,
    now: i64,
) -> Plan {
    let has_default = current_default(target).is_some();
    let mut plan = Plan::default();
    for m in source {
        if target
            .iter()
            .any(|t| t.organization_id == m.organization_id)
        {
            continue;
        }
        plan.insert.push(MembershipRecord {
            id: 0,
            user_id: target_id,
            default: !has_default && target_default == Some(m.organization_id),
            created_at: now,
            updated_at: now,
            ..m.clone()
        });
    }
    plan
}

/// A user's memberships as Zendesk lists them: the default first, then by organization name.
pub fn sort_for_user(list: &mut [MembershipRecord]) {
    list.sort_by(|a, b| {
        b.default
            .cmp(&a.default)
            .then_with(|| {
                a.organization_name
                    .to_lowercase()
                    .cmp(&b.organization_name.to_lowercase())
            })
            .then(a.id.cmp(&b.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: i64, org: i64, default: bool) -> MembershipRecord {
        MembershipRecord {
            id,
            user_id: 7,
            organization_id: org,
            default,
            view_tickets: false,
            organization_name: format!("Org {org}"),
            created_at: 1,
            updated_at: 1,
        }
    }

    const ADMIN: Actor = Actor {
        user_id: 1,
        role: Role::Admin,
    };
    const AGENT: Actor = Actor {
        user_id: 2,
        role: Role::Agent,
    };

    fn facts(role: Role, existing: Vec<MembershipRecord>) -> AddFacts {
        AddFacts {
            user: Some((role, None)),
            organization_name: Some("Org 5".into()),
            existing,
        }
    }

    #[test]
    fn first_membership_is_the_default() {
        let input = MembershipInput {
            user_id: 7,
            organization_id: 5,
            default: false,
        };
        let p = add(ADMIN, input, &facts(Role::EndUser, vec![]), 9).unwrap();
        assert!(p.insert[0].default);
        assert_eq!(p.user_organization, Some(Some(5)));
        let p = add(ADMIN, input, &facts(Role::EndUser, vec![m(1, 4, true)]), 9).unwrap();
        assert!(!p.insert[0].default);
        assert_eq!(p.user_organization, None);
        let asked = MembershipInput {
            default: true,
            ..input
        };
        let p = add(ADMIN, asked, &facts(Role::EndUser, vec![m(1, 4, true)]), 9).unwrap();
        assert!(p.insert[0].default);
        assert_eq!(p.user_organization, Some(Some(5)));
    }

    #[test]
    fn duplicates_unknowns_and_roles_are_refused() {
        let input = MembershipInput {
            user_id: 7,
            organization_id: 5,
            default: false,
        };
        let dup = add(ADMIN, input, &facts(Role::EndUser, vec![m(1, 5, true)]), 9).unwrap_err();
        assert!(matches!(dup, crate::Rejection::Invalid(e) if e.code() == "DuplicateValue"));
        assert_eq!(
            add(AGENT, input, &facts(Role::Agent, vec![]), 9).unwrap_err(),
            crate::Rejection::Forbidden
        );
        assert!(add(AGENT, input, &facts(Role::EndUser, vec![]), 9).is_ok());
        let mut f = facts(Role::EndUser, vec![]);
        f.organization_name = None;
        assert!(matches!(
            add(ADMIN, input, &f, 9).unwrap_err(),
            crate::Rejection::Invalid(_)
        ));
    }

    #[test]
    fn removing_the_default_promotes_the_oldest_other() {
        let existing = vec![m(3, 30, false), m(1, 10, true), m(2, 20, false)];
        let p = remove(&existing, &[1]);
        assert_eq!(p.delete, [1]);
        assert_eq!(p.set_default, Some(2));
        assert_eq!(p.user_organization, Some(Some(20)));
        let p = remove(&existing, &[3]);
        assert_eq!(p.set_default, None);
        assert_eq!(p.user_organization, None);
        let p = remove(&[m(1, 10, true)], &[1]);
        assert_eq!(p.user_organization, Some(None));
        assert!(remove(&existing, &[99]).is_empty());
    }

    #[test]
    fn replace_keeps_only_the_named_organization() {
        let existing = vec![m(1, 10, true), m(2, 20, false)];
        let p = replace(7, &existing, Some((20, "Org 20")), false, 5);
        assert_eq!(p.delete, [1]);
        assert_eq!(p.set_default, Some(2));
        assert!(p.insert.is_empty());
        let p = replace(7, &existing, Some((30, "Org 30")), false, 5);
        assert_eq!(p.delete, [1, 2]);
        assert!(p.insert[0].default);
        let p = replace(7, &existing, None, false, 5);
        assert_eq!(p.delete, [1, 2]);
        assert!(p.insert.is_empty());
    }

    #[test]
    fn merging_brings_the_sources_organizations() {
        let target = vec![m(5, 50, true)];
        let source = vec![m(1, 10, true), m(2, 50, false), m(3, 30, false)];
        let p = absorb(9, &target, &source, Some(50), 4);
        let orgs: Vec<i64> = p.insert.iter().map(|m| m.organization_id).collect();
        assert_eq!(orgs, [10, 30]);
        assert!(p.insert.iter().all(|m| !m.default && m.user_id == 9));
        let p = absorb(9, &[], &source, Some(10), 4);
        assert!(p.insert[0].default);
        assert_eq!(p.insert.len(), 3);
    }

    #[test]
    fn make_default_and_sorting() {
        let mut existing = vec![m(1, 10, false), m(2, 20, true)];
        let p = make_default(&existing, 1).unwrap();
        assert_eq!(p.user_organization, Some(Some(10)));
        assert!(make_default(&existing, 2).unwrap().is_empty());
        assert!(make_default(&existing, 3).is_none());
        sort_for_user(&mut existing);
        assert_eq!(existing[0].id, 2);
        let w = existing[1].to_wire("http://x/api/v2");
        assert_eq!(w.default, None);
        assert_eq!(w.url, "http://x/api/v2/organization_memberships/1.json");
    }
}
