//! `PUT /users/{id}/merge`: an end user merged into another. The source's identities, tags and
//! organization move to the target (identities as secondary ones, unless the target has none of
//! that type; tags appended; the organization only when the target has none), and the source is
//! soft-deleted. Only end users merge, a user never into itself, and callers need the right to
//! change end users (admins, agents). deskd keeps no tickets, so Zendesk's 10,000 requested
//! tickets bound never refuses a merge.

use crate::error::{Rejection, ValidationErrors};
use crate::identity::IdentityRecord;
use crate::identity_plan::mirror;
use crate::role::{Actor, Role};
use crate::user::UserRecord;

/// What the store read, under the locks of both users.
#[derive(Clone, Debug)]
pub struct MergeFacts {
    pub source: Option<(UserRecord, Vec<IdentityRecord>)>,
    pub target: Option<(UserRecord, Vec<IdentityRecord>)>,
}

/// What the store must write.
#[derive(Clone, Debug, PartialEq)]
pub struct MergePlan {
    /// The target as it must be stored.
    pub target: UserRecord,
    /// The source's identities that move, with the primary flag each takes on the target.
    pub moved: Vec<(i64, bool)>,
    /// The source, soft-deleted after the move.
    pub source_id: i64,
}

fn invalid(message: &str) -> Rejection {
    Rejection::Invalid(ValidationErrors::single(
        "base",
        message,
        Some("InvalidValue"),
    ))
}

pub fn plan(actor: Actor, facts: &MergeFacts, now: i64) -> Result<MergePlan, Rejection> {
    if !actor.role.is_staff() {
        return Err(Rejection::Forbidden);
    }
    let active = |u: &Option<(UserRecord, Vec<IdentityRecord>)>| {
        u.as_ref().filter(|(u, _)| u.active).cloned()
    };
    let (source, source_ids) = active(&facts.source).ok_or(Rejection::NotFound)?;
    let (target, target_ids) = active(&facts.target).ok_or(Rejection::NotFound)?;
    if source.id == target.id {
        return Err(invalid("A user cannot be merged into itself"));
    }
    if source.role != Role::EndUser || target.role != Role::EndUser {
        return Err(if actor.role == Role::Admin {
            invalid("Only end users can be merged")
        } else {
            Rejection::Forbidden
        });
    }
    let mut after = target.clone();
    let mut identities = target_ids.clone();
    let mut moved = Vec::new();
    for i in &source_ids {
        let primary = !identities.iter().any(|t| t.kind == i.kind && t.primary) && i.primary;
        let mut m = i.clone();
        m.user_id = target.id;
        m.primary = primary;
        identities.push(m);
        moved.push((i.id, primary));
    }
    let (email, verified) = mirror(&identities);
    after.email = email;
    after.verified = verified || target.verified;
    after.tags = crate::tags::apply(crate::tags::TagOp::Add, &target.tags, &source.tags)
        .map_err(Rejection::Invalid)?;
    if after.organization_id.is_none() {
        after.organization_id = source.organization_id;
    }
    after.updated_at = now.max(target.updated_at);
    Ok(MergePlan {
        target: after,
        moved,
        source_id: source.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, role: Role, tags: &[&str], org: Option<i64>) -> UserRecord {
        let mut u = UserRecord::new(format!("U{id}"), role, 1);
        u.id = id;
        u.tags = tags.iter().map(|t| t.to_string()).collect();
        u.organization_id = org;
        u
    }

    fn ident(id: i64, user_id: i64, value: &str, primary: bool) -> IdentityRecord {
        IdentityRecord {
            id,
            user_id,
            kind: "email".into(),
            value: value.into(),
            verified: true,
            primary,
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

    #[test]
    fn identities_tags_and_organization_move() {
        let facts = MergeFacts {
            source: Some((
                user(10, Role::EndUser, &["a", "b"], Some(7)),
                vec![ident(100, 10, "s@x.co", true)],
            )),
            target: Some((
                user(20, Role::EndUser, &["b", "c"], None),
                vec![ident(200, 20, "t@x.co", true)],
            )),
        };
        let p = plan(AGENT, &facts, 5).unwrap();
        assert_eq!(p.moved, vec![(100, false)]);
        assert_eq!(p.target.tags, ["b", "c", "a"]);
        assert_eq!(p.target.organization_id, Some(7));
        assert_eq!(p.target.email.as_deref(), Some("t@x.co"));
        assert_eq!(p.source_id, 10);
        // A target without an email takes the source's primary as its own.
        let facts = MergeFacts {
            target: Some((user(20, Role::EndUser, &[], Some(3)), vec![])),
            ..facts
        };
        let p = plan(ADMIN, &facts, 5).unwrap();
        assert_eq!(p.moved, vec![(100, true)]);
        assert_eq!(p.target.email.as_deref(), Some("s@x.co"));
        assert_eq!(p.target.organization_id, Some(3));
    }

    #[test]
    fn refusals() {
        let end = |id| Some((user(id, Role::EndUser, &[], None), vec![]));
        let agent = |id| Some((user(id, Role::Agent, &[], None), vec![]));
        let f = |s, t| MergeFacts {
            source: s,
            target: t,
        };
        let end_user = Actor {
            user_id: 10,
            role: Role::EndUser,
        };
        assert_eq!(
            plan(end_user, &f(end(10), end(20)), 5),
            Err(Rejection::Forbidden)
        );
        assert!(matches!(
            plan(ADMIN, &f(end(10), end(10)), 5),
            Err(Rejection::Invalid(_))
        ));
        assert!(matches!(
            plan(ADMIN, &f(agent(10), end(20)), 5),
            Err(Rejection::Invalid(_))
        ));
        assert_eq!(
            plan(AGENT, &f(end(10), agent(20)), 5),
            Err(Rejection::Forbidden)
        );
        assert_eq!(plan(ADMIN, &f(None, end(20)), 5), Err(Rejection::NotFound));
        assert_eq!(plan(ADMIN, &f(end(10), None), 5), Err(Rejection::NotFound));
        let mut gone = user(20, Role::EndUser, &[], None);
        gone.active = false;
        assert_eq!(
            plan(ADMIN, &f(end(10), Some((gone, vec![]))), 5),
            Err(Rejection::NotFound)
        );
    }
}
