//! The admin pages' sign-in sessions: who may have one, and when one ends.
//!
//! A session is the credential it was opened with (an email and password) kept for a while. It
//! holds only as long as what that credential was checked against: the user still active and not
//! suspended, with the same role and the same password. Any change there ends it, so taking access
//! away through the API ends the pages' access too.

use crate::role::Role;

/// How long a session lasts from sign-in, whatever its use (seconds).
pub const LIFETIME_SECS: i64 = 12 * 60 * 60;

/// Whether a user of `role` may sign in to the admin pages: agents and admins (end users have
/// Zendesk's help center, not its agent interface).
pub fn may_sign_in(role: Role) -> bool {
    role.is_staff()
}

/// What the session recorded when it was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    pub role: Role,
    /// A digest of the user's password hash at sign-in.
    pub password_digest: String,
    pub expires_at: i64,
}

/// The session's user as the store has it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserNow {
    pub role: Role,
    pub active: bool,
    pub suspended: bool,
    /// A digest of the current password hash; `None` when the user has no password any more.
    pub password_digest: Option<String>,
}

/// Whether a session still holds at `now`; `user` is `None` once the user is gone.
pub fn holds(opened: &Opened, user: Option<&UserNow>, now: i64) -> bool {
    let Some(user) = user else {
        return false;
    };
    now < opened.expires_at
        && user.active
        && !user.suspended
        && user.role == opened.role
        && may_sign_in(user.role)
        && user.password_digest.as_deref() == Some(opened.password_digest.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened() -> Opened {
        Opened {
            role: Role::Agent,
            password_digest: "p1".into(),
            expires_at: 1_000,
        }
    }

    fn now_user() -> UserNow {
        UserNow {
            role: Role::Agent,
            active: true,
            suspended: false,
            password_digest: Some("p1".into()),
        }
    }

    #[test]
    fn an_unchanged_user_keeps_the_session_until_it_expires() {
        assert!(holds(&opened(), Some(&now_user()), 999));
        assert!(!holds(&opened(), Some(&now_user()), 1_000));
    }

    #[test]
    fn any_change_to_what_sign_in_checked_ends_it() {
        let o = opened();
        let changes: Vec<fn(&mut UserNow)> = vec![
            |u| u.role = Role::Admin,
            |u| u.role = Role::EndUser,
            |u| u.active = false,
            |u| u.suspended = true,
            |u| u.password_digest = Some("p2".into()),
            |u| u.password_digest = None,
        ];
        for change in changes {
            let mut u = now_user();
            change(&mut u);
            assert!(!holds(&o, Some(&u), 1), "{u:?}");
        }
        assert!(!holds(&o, None, 1));
    }

    #[test]
    fn only_staff_sign_in() {
        assert!(may_sign_in(Role::Admin));
        assert!(may_sign_in(Role::Agent));
        assert!(!may_sign_in(Role::EndUser));
    }
}
