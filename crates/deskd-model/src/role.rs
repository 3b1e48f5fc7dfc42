//! Roles and what each may do to whom.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    EndUser,
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::EndUser => "end-user",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "end-user" | "end_user" => Some(Role::EndUser),
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Agents and admins are staff; they may use the agent endpoints.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }
}

/// Who is making a request, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: i64,
    pub role: Role,
}

/// Who may create organizations: admins (agents' custom roles with organization rights are not
/// modelled). The same rule holds for `POST /organizations` and for an organization a user write
/// names by `organization: {name}` that does not exist yet.
pub fn may_create_organizations(actor: Actor) -> bool {
    actor.role == Role::Admin
}

/// Who may delete whom: admins anyone but the account owner; agents end users only.
pub fn may_delete(actor: Actor, target_role: Role, target_id: i64, owner_id: Option<i64>) -> bool {
    match actor.role {
        Role::Admin => owner_id != Some(target_id),
        Role::Agent => target_role == Role::EndUser,
        Role::EndUser => false,
    }
}

/// Only the account owner manages the owner's credentials and identities: no other admin may
/// set its password or change its emails (which would take the account over).
pub fn may_manage_credentials_of(actor: Actor, target_id: i64, owner_id: Option<i64>) -> bool {
    owner_id != Some(target_id) || actor.user_id == target_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_rules() {
        let admin = Actor {
            user_id: 1,
            role: Role::Admin,
        };
        let agent = Actor {
            user_id: 2,
            role: Role::Agent,
        };
        assert!(may_delete(admin, Role::Agent, 5, Some(1)));
        assert!(!may_delete(admin, Role::Admin, 1, Some(1)));
        assert!(may_delete(agent, Role::EndUser, 5, Some(1)));
        assert!(!may_delete(agent, Role::Agent, 5, Some(1)));
    }

    #[test]
    fn only_the_owner_manages_the_owner() {
        let owner = Actor {
            user_id: 1,
            role: Role::Admin,
        };
        let other = Actor {
            user_id: 3,
            role: Role::Admin,
        };
        assert!(may_manage_credentials_of(owner, 1, Some(1)));
        assert!(!may_manage_credentials_of(other, 1, Some(1)));
        assert!(may_manage_credentials_of(other, 5, Some(1)));
    }
}
