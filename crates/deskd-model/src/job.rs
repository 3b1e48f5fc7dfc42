//! Bulk jobs: the `job_status` object and the per-item result entries Zendesk returns.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::Rejection;
use crate::role::{Actor, Role};
use crate::time::job_message;
use crate::user::UserRecord;

/// The bulk operations a job can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    CreateOrUpdateMany,
    CreateMany,
    UpdateMany,
    DestroyMany,
    OrganizationCreateMany,
    OrganizationUpdateMany,
    OrganizationDestroyMany,
    MembershipCreateMany,
    MembershipDestroyMany,
}

/// What a job's items are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobSubject {
    User,
    Organization,
    Membership,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::CreateOrUpdateMany => "create_or_update_many",
            JobKind::CreateMany => "create_many",
            JobKind::UpdateMany => "update_many",
            JobKind::DestroyMany => "destroy_many",
            JobKind::OrganizationCreateMany => "organizations/create_many",
            JobKind::OrganizationUpdateMany => "organizations/update_many",
            JobKind::OrganizationDestroyMany => "organizations/destroy_many",
            JobKind::MembershipCreateMany => "organization_memberships/create_many",
            JobKind::MembershipDestroyMany => "organization_memberships/destroy_many",
        }
    }

    /// What the job works on.
    pub fn subject(self) -> JobSubject {
        match self {
            JobKind::CreateOrUpdateMany
            | JobKind::CreateMany
            | JobKind::UpdateMany
            | JobKind::DestroyMany => JobSubject::User,
            JobKind::OrganizationCreateMany
            | JobKind::OrganizationUpdateMany
            | JobKind::OrganizationDestroyMany => JobSubject::Organization,
            JobKind::MembershipCreateMany | JobKind::MembershipDestroyMany => {
                JobSubject::Membership
            }
        }
    }

    /// The `job_type` of the job_status object. Zendesk's reference shows "Bulk Create
    /// Organization"; the others follow the same pattern.
    pub fn job_type(self) -> &'static str {
        match self {
            JobKind::CreateOrUpdateMany => "Bulk Create Or Update User",
            JobKind::CreateMany => "Bulk Create User",
            JobKind::UpdateMany => "Bulk Update User",
            JobKind::DestroyMany => "Bulk Delete User",
            JobKind::OrganizationCreateMany => "Bulk Create Organization",
            JobKind::OrganizationUpdateMany => "Bulk Update Organization",
            JobKind::OrganizationDestroyMany => "Bulk Delete Organization",
            JobKind::MembershipCreateMany => "Bulk Create Organization Membership",
            JobKind::MembershipDestroyMany => "Bulk Delete Organization Membership",
        }
    }

    /// The noun of progress messages and not-found details.
    fn noun(self) -> &'static str {
        match self.subject() {
            JobSubject::User => "User",
            JobSubject::Organization => "Organization",
            JobSubject::Membership => "Organization Membership",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "create_or_update_many" => Some(JobKind::CreateOrUpdateMany),
            "create_many" => Some(JobKind::CreateMany),
            "update_many" => Some(JobKind::UpdateMany),
            "destroy_many" => Some(JobKind::DestroyMany),
            "organizations/create_many" => Some(JobKind::OrganizationCreateMany),
            "organizations/update_many" => Some(JobKind::OrganizationUpdateMany),
            "organizations/destroy_many" => Some(JobKind::OrganizationDestroyMany),
            "organization_memberships/create_many" => Some(JobKind::MembershipCreateMany),
            "organization_memberships/destroy_many" => Some(JobKind::MembershipDestroyMany),
            _ => None,
        }
    }

    /// The `action` of update_many and destroy_many results, which also carry `success`.
    pub fn action(self) -> Option<&'static str> {
        match self {
            JobKind::UpdateMany | JobKind::OrganizationUpdateMany => Some("update"),
            JobKind::DestroyMany
            | JobKind::OrganizationDestroyMany
            | JobKind::MembershipDestroyMany => Some("delete"),
            _ => None,
        }
    }

    /// `Creating User #n` or `Updating Organization #n`, the message while working.
    pub fn progress_message(self, n: i64) -> String {
        let noun = self.noun();
        match self {
            JobKind::UpdateMany | JobKind::OrganizationUpdateMany => {
                format!("Updating {noun} #{n}")
            }
            JobKind::DestroyMany
            | JobKind::OrganizationDestroyMany
            | JobKind::MembershipDestroyMany => format!("Deleting {noun} #{n}"),
            _ => format!("Creating {noun} #{n}"),
        }
    }

    /// Whether success entries carry `status` ("Created", "Updated", "Deleted"). Zendesk's
    /// generic bulk create (organizations, memberships) answers `id` and `index` only.
    fn success_status(self) -> bool {
        !matches!(
            self,
            JobKind::OrganizationCreateMany | JobKind::MembershipCreateMany
        )
    }
}

/// Job states as Zendesk names them.
pub const QUEUED: &str = "queued";
pub const WORKING: &str = "working";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";

/// A job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub id: String,
    pub kind: JobKind,
    pub status: String,
    pub total: i64,
    pub progress: Option<i64>,
    pub message: Option<String>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

impl JobRecord {
    pub fn to_wire(&self, base: &str, results: Option<Vec<Value>>) -> JobStatus {
        JobStatus {
            id: self.id.clone(),
            url: format!("{base}/job_statuses/{}.json", self.id),
            total: self.total,
            progress: self.progress,
            status: self.status.clone(),
            message: self.message.clone(),
            results,
            job_type: self.kind.job_type(),
        }
    }
}

/// The wire object, in the recorded key order.
#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    pub id: String,
    pub url: String,
    pub total: i64,
    pub progress: Option<i64>,
    pub status: String,
    pub message: Option<String>,
    pub results: Option<Vec<Value>>,
    pub job_type: &'static str,
}

/// `Completed at 2023-09-18 23:26:10 +0000`.
impl JobKind {
    /// The least role that may submit the job (the endpoints' own rule: agents import and update
    /// users and manage memberships; deleting users in bulk and organization jobs are admins').
    pub fn submitter_role(self) -> Role {
        match self {
            JobKind::CreateOrUpdateMany
            | JobKind::CreateMany
            | JobKind::UpdateMany
            | JobKind::MembershipCreateMany
            | JobKind::MembershipDestroyMany => Role::Agent,
            JobKind::DestroyMany
            | JobKind::OrganizationCreateMany
            | JobKind::OrganizationUpdateMany
            | JobKind::OrganizationDestroyMany => Role::Admin,
        }
    }
}

fn rank(role: Role) -> u8 {
    match role {
        Role::EndUser => 0,
        Role::Agent => 1,
        Role::Admin => 2,
    }
}

/// Who a queued job runs as when a worker reaches it: its submitter as the submitter is *now*
/// (`current`, read in the transaction that runs the items). A submitter since deleted,
/// suspended or demoted below what the job needs runs nothing (`None`: every item fails
/// `PermissionDenied`, and the job still completes); otherwise the job runs with the submitter's
/// current role, so a demotion from admin to agent leaves agent's rights item by item.
pub fn actor_at_run(
    kind: JobKind,
    submitted: Actor,
    current: Option<&UserRecord>,
) -> Option<Actor> {
    let user = current.filter(|u| u.id == submitted.user_id && u.active && !u.suspended)?;
    (rank(user.role) >= rank(kind.submitter_role())).then_some(Actor {
        user_id: user.id,
        role: user.role,
    })
}

/// The key an `Idempotency-Key` is stored under: the caller's own (a key replays only its own
/// submitter's response, never another caller's job) and the endpoint's.
pub fn idempotency_scope(actor: Actor, kind: JobKind, key: &str) -> String {
    format!("{}:{}:{key}", actor.user_id, kind.as_str())
}

pub fn completed_message(ts: i64) -> String {
    format!("Completed at {}", job_message(ts))
}

/// What happened to one item of a job.
#[derive(Clone, Debug)]
pub enum ItemOutcome {
    Created(i64),
    Updated(i64),
    Deleted(i64),
    Failed(Rejection),
    /// The item could not be read (not an object, bad field values).
    Invalid(String),
    /// Failed on purpose (test mode's `POST /__deskd/jobs/fail`): this error code and details.
    Injected {
        error: String,
        details: String,
    },
}

/// The result entry for item `index`. `item` is the input object, for the `email` /
/// `external_id` echoes.
pub fn result_entry(kind: JobKind, index: usize, item: &Value, outcome: &ItemOutcome) -> Value {
    let mut entry = Map::new();
    entry.insert("index".into(), json!(index));
    match outcome {
        ItemOutcome::Created(id) | ItemOutcome::Updated(id) | ItemOutcome::Deleted(id) => {
            entry.insert("id".into(), json!(id));
            if let Some(action) = kind.action() {
                entry.insert("action".into(), json!(action));
            }
            let status = match outcome {
                ItemOutcome::Created(_) => "Created",
                ItemOutcome::Deleted(_) => "Deleted",
                _ => "Updated",
            };
            if kind.success_status() {
                entry.insert("status".into(), json!(status));
            }
            if kind.action().is_some() {
                entry.insert("success".into(), json!(true));
            }
        }
        ItemOutcome::Failed(rejection) => {
            let (code, details) = match rejection {
                Rejection::NotFound => ("RecordNotFound", format!("{} not found", kind.noun())),
                Rejection::Forbidden => (
                    "PermissionDenied",
                    format!(
                        "You do not have permission to {} this {}",
                        match kind.action() {
                            Some("delete") => "delete",
                            _ => "create or update",
                        },
                        kind.noun().to_lowercase()
                    ),
                ),
                Rejection::Invalid(v) => (v.code(), v.sentence()),
            };
            fail(kind, &mut entry, code, details, item);
        }
        ItemOutcome::Invalid(details) => {
            fail(kind, &mut entry, "InvalidValue", details.clone(), item)
        }
        ItemOutcome::Injected { error, details } => {
            fail(kind, &mut entry, error, details.clone(), item)
        }
    }
    if let Some(obj) = item.as_object() {
        for key in ["email", "external_id"] {
            if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
                entry.insert(key.into(), v.clone());
            }
        }
    }
    Value::Object(entry)
}

fn fail(kind: JobKind, entry: &mut Map<String, Value>, code: &str, details: String, item: &Value) {
    if let Some(action) = kind.action() {
        if let Some(id) = item
            .get("id")
            .and_then(|v| crate::input::parse_int(v).ok().flatten())
        {
            entry.insert("id".into(), json!(id));
        }
        entry.insert("action".into(), json!(action));
        entry.insert("status".into(), json!("Failed"));
        entry.insert("success".into(), json!(false));
    }
    entry.insert("error".into(), json!(code));
    entry.insert("details".into(), json!(details));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ValidationErrors;

    #[test]
    fn a_job_runs_as_its_submitter_is_now() {
        let admin = Actor {
            user_id: 7,
            role: Role::Admin,
        };
        let mut now = UserRecord::new("A".into(), Role::Admin, 0);
        now.id = 7;
        let org = JobKind::OrganizationCreateMany;
        let users = JobKind::CreateOrUpdateMany;
        assert_eq!(actor_at_run(org, admin, Some(&now)), Some(admin));
        // Demoted to agent: no organization jobs, user jobs with an agent's rights.
        now.role = Role::Agent;
        assert_eq!(actor_at_run(org, admin, Some(&now)), None);
        assert_eq!(
            actor_at_run(users, admin, Some(&now)),
            Some(Actor {
                user_id: 7,
                role: Role::Agent
            })
        );
        now.role = Role::EndUser;
        assert_eq!(actor_at_run(users, admin, Some(&now)), None);
        now.role = Role::Admin;
        now.suspended = true;
        assert_eq!(actor_at_run(users, admin, Some(&now)), None);
        now.suspended = false;
        now.active = false;
        assert_eq!(actor_at_run(users, admin, Some(&now)), None);
        assert_eq!(actor_at_run(users, admin, None), None);
        // Another user's record never stands in for the submitter.
        now.active = true;
        now.id = 8;
        assert_eq!(actor_at_run(users, admin, Some(&now)), None);
    }

    #[test]
    fn idempotency_keys_belong_to_their_caller() {
        let a = Actor {
            user_id: 1,
            role: Role::Admin,
        };
        let b = Actor {
            user_id: 2,
            role: Role::Agent,
        };
        let k = JobKind::CreateMany;
        assert_ne!(idempotency_scope(a, k, "x"), idempotency_scope(b, k, "x"));
        assert_ne!(
            idempotency_scope(a, k, "x"),
            idempotency_scope(a, JobKind::UpdateMany, "x")
        );
        assert_eq!(idempotency_scope(a, k, "x"), idempotency_scope(a, k, "x"));
    }

    #[test]
    fn entries_look_like_zendesk() {
        let item = json!({"name": "A", "email": "a@b.co"});
        assert_eq!(
            result_entry(
                JobKind::CreateOrUpdateMany,
                0,
                &item,
                &ItemOutcome::Created(7)
            ),
            json!({"index": 0, "id": 7, "status": "Created", "email": "a@b.co"})
        );
        assert_eq!(
            result_entry(
                JobKind::UpdateMany,
                2,
                &json!({"id": 9}),
                &ItemOutcome::Updated(9)
            ),
            json!({"index": 2, "id": 9, "action": "update", "status": "Updated", "success": true})
        );
        let dup = ItemOutcome::Failed(Rejection::Invalid(ValidationErrors::duplicate_email(
            "a@b.co",
        )));
        assert_eq!(
            result_entry(JobKind::CreateOrUpdateMany, 1, &item, &dup),
            json!({"index": 1, "error": "DuplicateValue", "details": "Email: a@b.co is already being used by another user", "email": "a@b.co"})
        );
        assert_eq!(
            completed_message(1_695_079_570),
            "Completed at 2023-09-18 23:26:10 +0000"
        );
    }
}
