//! Bulk jobs: the `job_status` object and the per-item result entries Zendesk returns.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::Rejection;
use crate::time::job_message;

/// The bulk operations a job can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    CreateOrUpdateMany,
    CreateMany,
    UpdateMany,
    DestroyMany,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::CreateOrUpdateMany => "create_or_update_many",
            JobKind::CreateMany => "create_many",
            JobKind::UpdateMany => "update_many",
            JobKind::DestroyMany => "destroy_many",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "create_or_update_many" => Some(JobKind::CreateOrUpdateMany),
            "create_many" => Some(JobKind::CreateMany),
            "update_many" => Some(JobKind::UpdateMany),
            "destroy_many" => Some(JobKind::DestroyMany),
            _ => None,
        }
    }

    /// The `action` of update_many and destroy_many results, which also carry `success`.
    pub fn action(self) -> Option<&'static str> {
        match self {
            JobKind::UpdateMany => Some("update"),
            JobKind::DestroyMany => Some("delete"),
            _ => None,
        }
    }

    /// `Creating User #n` or `Updating User #n`, the message while working.
    pub fn progress_message(self, n: i64) -> String {
        match self {
            JobKind::UpdateMany => format!("Updating User #{n}"),
            JobKind::DestroyMany => format!("Deleting User #{n}"),
            _ => format!("Creating User #{n}"),
        }
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
}

/// `Completed at 2023-09-18 23:26:10 +0000`.
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
            entry.insert("status".into(), json!(status));
            if kind.action().is_some() {
                entry.insert("success".into(), json!(true));
            }
        }
        ItemOutcome::Failed(rejection) => {
            let (code, details) = match rejection {
                Rejection::NotFound => ("RecordNotFound", "User not found".to_owned()),
                Rejection::Forbidden => (
                    "PermissionDenied",
                    "You do not have permission to create or update this user".to_owned(),
                ),
                Rejection::Invalid(v) => (v.code(), v.sentence()),
            };
            fail(kind, &mut entry, code, details, item);
        }
        ItemOutcome::Invalid(details) => {
            fail(kind, &mut entry, "InvalidValue", details.clone(), item)
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
