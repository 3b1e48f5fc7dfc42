//! The identities endpoints as plans: from the user, its identities and the owner of a value
//! (facts the store read under the user's lock), decide what changes. The rules live here once:
//! who may touch whose identities, the first identity of a type is primary, a user keeps at
//! least one identity, `user.email` mirrors the primary email and `user.verified` whether any
//! identity is verified, and losing an email takes access away (logins use any email).

use crate::error::{Rejection, ValidationErrors};
use crate::identity::{IdentityChange, IdentityRecord};
use crate::role::{Actor, Role};
use crate::text::normalize;
use crate::upsert::NewIdentity;
use crate::user::UserRecord;

/// What a request asks of a user's identities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityOp {
    Create(IdentityChange),
    Update(i64, IdentityChange),
    MakePrimary(i64),
    Verify(i64),
    Delete(i64),
}

impl IdentityOp {
    /// The identity (type, value) the op would give the user, whose owner the store must
    /// look up.
    pub fn claimed_value(&self, identities: &[IdentityRecord]) -> Option<(String, String)> {
        match self {
            IdentityOp::Create(c) => Some((c.kind.clone()?, c.value.clone()?)),
            IdentityOp::Update(id, c) => {
                let t = identities.iter().find(|i| i.id == *id)?;
                Some((t.kind.clone(), c.value.clone()?))
            }
            _ => None,
        }
    }

    fn target(&self) -> Option<i64> {
        match self {
            IdentityOp::Create(_) => None,
            IdentityOp::Update(id, _)
            | IdentityOp::MakePrimary(id)
            | IdentityOp::Verify(id)
            | IdentityOp::Delete(id) => Some(*id),
        }
    }
}

/// What the store read, under the user's lock.
#[derive(Clone, Debug)]
pub struct IdentityFacts {
    /// The user, if it exists (soft-deleted users are gone for identity writes).
    pub user: Option<UserRecord>,
    /// Its identities, primary first.
    pub identities: Vec<IdentityRecord>,
    /// The owner of the value the op claims (a create's, or an update's new value).
    pub value_owner: Option<i64>,
}

/// What the store must write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdentityPlan {
    pub insert: Option<NewIdentity>,
    /// Existing identities whose value, verified or primary flag changes: their new state.
    pub update: Vec<IdentityRecord>,
    pub delete: Option<i64>,
    /// Whether anything changes (then the user's mirrors below are written, and its updated_at).
    pub changed: bool,
    /// The user's `email` and `verified` after the change, mirrored from its identities.
    pub user_email: Option<String>,
    pub user_verified: bool,
    /// An email left the user: logins by it must stop at once.
    pub reduces_access: bool,
    /// The identity the response shows (`None` for a new one: the inserted row).
    pub shown: Option<i64>,
}

/// Whether `actor` may read (or, with `write`, change) the identities of `user`: staff may read
/// anyone's, agents change end users' only, end users read their own.
pub fn allowed(actor: Actor, user: &UserRecord, write: bool) -> bool {
    match actor.role {
        Role::Admin => true,
        Role::Agent => !write || user.role == Role::EndUser,
        Role::EndUser => !write && actor.user_id == user.id,
    }
}

/// A duplicate identity value, as Zendesk words it.
fn duplicate(value: &str) -> Rejection {
    Rejection::Invalid(ValidationErrors::single(
        "value",
        &format!("{value} is already being used by another user"),
        Some("DuplicateValue"),
    ))
}

/// Decides `op` for `actor`, or says why not; nothing is written on a rejection.
pub fn plan(
    op: &IdentityOp,
    actor: Actor,
    facts: &IdentityFacts,
    now: i64,
) -> Result<IdentityPlan, Rejection> {
    let user = facts
        .user
        .as_ref()
        .filter(|u| u.active)
        .ok_or(Rejection::NotFound)?;
    if !allowed(actor, user, true) {
        return Err(Rejection::Forbidden);
    }
    let target = match op.target() {
        Some(id) => Some(
            facts
                .identities
                .iter()
                .find(|i| i.id == id)
                .ok_or(Rejection::NotFound)?
                .clone(),
        ),
        None => None,
    };
    // The identities as they will be; the plan is the difference.
    let mut after: Vec<IdentityRecord> = facts.identities.clone();
    let mut plan = IdentityPlan {
        shown: target.as_ref().map(|t| t.id),
        ..IdentityPlan::default()
    };
    match (op, target) {
        (IdentityOp::Create(change), _) => {
            let kind = change.kind.clone().unwrap_or_default();
            let value = change.value.clone().unwrap_or_default();
            if facts.value_owner.is_some() {
                return Err(duplicate(&value));
            }
            let first_of_kind = !after.iter().any(|i| i.kind == kind);
            let primary = first_of_kind || change.primary == Some(true);
            if primary {
                demote(&mut after, &kind, None);
            }
            let new = NewIdentity {
                kind: kind.clone(),
                value: value.clone(),
                verified: change.verified.unwrap_or(false),
                primary,
            };
            after.push(IdentityRecord {
                id: 0,
                user_id: user.id,
                kind,
                value,
                verified: new.verified,
                primary,
                created_at: now,
                updated_at: now,
            });
            plan.insert = Some(new);
        }
        (IdentityOp::Update(_, change), Some(t)) => {
            let slot = position(&after, t.id);
            if let Some(value) = &change.value {
                let renamed = normalize(value) != normalize(&t.value);
                if renamed && facts.value_owner.is_some() {
                    return Err(duplicate(value));
                }
                if renamed && t.kind == "email" {
                    plan.reduces_access = true;
                }
                after[slot].value = value.clone();
            }
            if let Some(v) = change.verified {
                after[slot].verified = v;
            }
        }
        (IdentityOp::MakePrimary(_), Some(t)) => {
            demote(&mut after, &t.kind, Some(t.id));
            let slot = position(&after, t.id);
            after[slot].primary = true;
        }
        (IdentityOp::Verify(_), Some(t)) => {
            let slot = position(&after, t.id);
            after[slot].verified = true;
        }
        (IdentityOp::Delete(_), Some(t)) => {
            if after.len() <= 1 {
                return Err(Rejection::Invalid(ValidationErrors::single(
                    "base",
                    "A user must keep at least one identity",
                    Some("InvalidValue"),
                )));
            }
            after.retain(|i| i.id != t.id);
            if t.primary {
                // The oldest other identity of the type takes its place.
                if let Some(next) = after
                    .iter_mut()
                    .filter(|i| i.kind == t.kind)
                    .min_by_key(|i| i.id)
                {
                    next.primary = true;
                }
            }
            plan.delete = Some(t.id);
            plan.reduces_access = t.kind == "email";
        }
        (_, None) => return Err(Rejection::NotFound),
    }
    for new in &after {
        if new.id == 0 {
            continue;
        }
        if let Some(old) = facts.identities.iter().find(|o| o.id == new.id) {
            if old != new {
                let mut changed = new.clone();
                changed.updated_at = now.max(old.updated_at);
                plan.update.push(changed);
            }
        }
    }
    (plan.user_email, plan.user_verified) = mirror(&after);
    plan.changed = plan.insert.is_some() || plan.delete.is_some() || !plan.update.is_empty();
    Ok(plan)
}

fn position(list: &[IdentityRecord], id: i64) -> usize {
    list.iter().position(|i| i.id == id).unwrap_or(0)
}

/// Clears the primary flag of every identity of `kind` but `keep`.
fn demote(list: &mut [IdentityRecord], kind: &str, keep: Option<i64>) {
    for i in list
        .iter_mut()
        .filter(|i| i.kind == kind && Some(i.id) != keep)
    {
        i.primary = false;
    }
}

/// The user's `email` (its primary email identity) and `verified` (any identity verified).
pub fn mirror(identities: &[IdentityRecord]) -> (Option<String>, bool) {
    (
        identities
            .iter()
            .find(|i| i.kind == "email" && i.primary)
            .map(|i| i.value.clone()),
        identities.iter().any(|i| i.verified),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(id: i64, value: &str, primary: bool) -> IdentityRecord {
        IdentityRecord {
            id,
            user_id: 7,
            kind: "email".into(),
            value: value.into(),
            verified: false,
            primary,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn facts(list: Vec<IdentityRecord>) -> IdentityFacts {
        let mut user = UserRecord::new("U".into(), Role::EndUser, 1);
        user.id = 7;
        user.email = mirror(&list).0;
        IdentityFacts {
            user: Some(user),
            identities: list,
            value_owner: None,
        }
    }

    const ADMIN: Actor = Actor {
        user_id: 1,
        role: Role::Admin,
    };

    #[test]
    fn make_primary_demotes_the_rest_and_moves_the_email() {
        let f = facts(vec![ident(1, "a@x.co", true), ident(2, "b@x.co", false)]);
        let p = plan(&IdentityOp::MakePrimary(2), ADMIN, &f, 5).unwrap();
        assert_eq!(p.update.len(), 2);
        assert_eq!(p.user_email, Some("b@x.co".into()));
        assert!(!p.reduces_access);
    }

    #[test]
    fn deleting_the_primary_promotes_the_oldest_and_reduces_access() {
        let f = facts(vec![
            ident(1, "a@x.co", true),
            ident(3, "c@x.co", false),
            ident(2, "b@x.co", false),
        ]);
        let p = plan(&IdentityOp::Delete(1), ADMIN, &f, 5).unwrap();
        assert_eq!(p.delete, Some(1));
        assert_eq!(p.user_email, Some("b@x.co".into()));
        assert!(p.reduces_access);
    }

    #[test]
    fn the_last_identity_stays_and_deleted_users_are_gone() {
        let f = facts(vec![ident(1, "a@x.co", true)]);
        assert!(matches!(
            plan(&IdentityOp::Delete(1), ADMIN, &f, 5),
            Err(Rejection::Invalid(_))
        ));
        let mut gone = f.clone();
        if let Some(u) = gone.user.as_mut() {
            u.active = false;
        }
        assert_eq!(
            plan(&IdentityOp::Verify(1), ADMIN, &gone, 5),
            Err(Rejection::NotFound)
        );
    }

    #[test]
    fn agents_change_end_users_only() {
        let mut f = facts(vec![ident(1, "a@x.co", true)]);
        let agent = Actor {
            user_id: 2,
            role: Role::Agent,
        };
        assert!(plan(&IdentityOp::Verify(1), agent, &f, 5).is_ok());
        if let Some(u) = f.user.as_mut() {
            u.role = Role::Admin;
        }
        assert_eq!(
            plan(&IdentityOp::Verify(1), agent, &f, 5),
            Err(Rejection::Forbidden)
        );
    }
}
