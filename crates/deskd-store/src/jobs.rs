//! The job queue behind `job_status`: jobs, their per-item results, leases, idempotency keys.

use deskd_model::Role;
use deskd_model::job::{COMPLETED, JobKind, JobRecord, QUEUED, WORKING};
use deskd_model::role::Actor;
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{all, first, int, opt_int, opt_text, text};
use crate::{Backend, StoreError};

const JOB_COLUMNS: &str = "id, kind, status, total, progress, message, created_at, completed_at";

fn job(r: &AnyRow) -> Result<JobRecord, StoreError> {
    let kind = text(r, "kind")?;
    Ok(JobRecord {
        id: text(r, "id")?,
        kind: JobKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("job kind {kind:?}")))?,
        status: text(r, "status")?,
        total: int(r, "total")?,
        progress: opt_int(r, "progress")?,
        message: opt_text(r, "message")?,
        created_at: int(r, "created_at")?,
        completed_at: opt_int(r, "completed_at")?,
    })
}

/// Jobs queued or working: the account may have at most 30.
pub async fn active_count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let row = first(
        conn,
        sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'working')"),
    )
    .await?;
    row.map(|r| int(&r, "n"))
        .transpose()
        .map(|n| n.unwrap_or(0))
}

/// Stores a new queued job with its items (a JSON array).
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    kind: JobKind,
    total: i64,
    actor: Actor,
    payload: &str,
    now: i64,
) -> Result<JobRecord, StoreError> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, status, total, progress, message, actor_id, actor_role, payload, created_at, updated_at) \
         VALUES ($1, $2, 'queued', $3, NULL, NULL, $4, $5, $6, $7, $7)",
    )
    .bind(id.to_owned())
    .bind(kind.as_str())
    .bind(total)
    .bind(actor.user_id)
    .bind(actor.role.as_str())
    .bind(payload.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    crate::listen::notify(conn, crate::listen::JOBS).await?;
    Ok(JobRecord {
        id: id.to_owned(),
        kind,
        status: QUEUED.to_owned(),
        total,
        progress: None,
        message: None,
        created_at: now,
        completed_at: None,
    })
}

/// A job created at or after `not_before` (older ones have expired).
pub async fn load(
    conn: &mut AnyConnection,
    id: &str,
    not_before: i64,
) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND created_at >= $2");
    first(conn, sqlx::query(&sql).bind(id.to_owned()).bind(not_before))
        .await?
        .map(|r| job(&r))
        .transpose()
}

/// Jobs by id, in the order asked; unknown and expired ids are left out.
pub async fn load_many(
    conn: &mut AnyConnection,
    ids: &[String],
    not_before: i64,
) -> Result<Vec<JobRecord>, StoreError> {
    let mut out = Vec::new();
    for id in ids.iter().take(100) {
        if let Some(j) = load(conn, id, not_before).await? {
            out.push(j);
        }
    }
    Ok(out)
}

/// A page of jobs, newest first, strictly after the (created_at, id) cursor when given.
pub async fn list(
    conn: &mut AnyConnection,
    after: Option<(i64, String)>,
    limit: i64,
    not_before: i64,
) -> Result<Vec<JobRecord>, StoreError> {
    let rows = match after {
        None => {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE created_at >= $1 ORDER BY created_at DESC, id DESC LIMIT $2"
            );
            all(conn, sqlx::query(&sql).bind(not_before).bind(limit)).await?
        }
        Some((created, id)) => {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE created_at >= $1 AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            );
            all(
                conn,
                sqlx::query(&sql)
                    .bind(not_before)
                    .bind(created)
                    .bind(id)
                    .bind(limit),
            )
            .await?
        }
    };
    rows.iter().map(job).collect()
}

/// The result entries of a job, in input order.
pub async fn results(conn: &mut AnyConnection, id: &str) -> Result<Vec<Value>, StoreError> {
    let rows = all(
        conn,
        sqlx::query("SELECT result FROM job_results WHERE job_id = $1 ORDER BY idx")
            .bind(id.to_owned()),
    )
    .await?;
    rows.iter()
        .map(|r| {
            serde_json::from_str(&text(r, "result")?)
                .map_err(|e| StoreError::Corrupt(format!("job result: {e}")))
        })
        .collect()
}

/// A job a worker has claimed.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub job: JobRecord,
    pub actor: Actor,
    pub payload: String,
    /// Claims since the job last made progress, this one included.
    pub attempts: i64,
}

/// Claims the oldest queued job, or a working one whose lease has run out, for `owner` until
/// `lease_until`.
pub async fn claim(
    conn: &mut AnyConnection,
    backend: Backend,
    owner: &str,
    now: i64,
    lease_until: i64,
) -> Result<Option<Claimed>, StoreError> {
    // Another worker may hold the row on PostgreSQL; SQLite has a single writer.
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE jobs SET status = 'working', progress = COALESCE(progress, 0), lease_owner = $1, lease_until = $2, updated_at = $3, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM jobs WHERE status = 'queued' OR (status = 'working' AND lease_until < $3) \
                     ORDER BY created_at, id LIMIT 1 {lock}) \
         RETURNING {JOB_COLUMNS}, actor_id, actor_role, payload, attempts"
    );
    let row = first(
        conn,
        sqlx::query(&sql)
            .bind(owner.to_owned())
            .bind(lease_until)
            .bind(now),
    )
    .await?;
    let Some(r) = row else { return Ok(None) };
    let role = text(&r, "actor_role")?;
    Ok(Some(Claimed {
        job: job(&r)?,
        actor: Actor {
            user_id: int(&r, "actor_id")?,
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        },
        payload: text(&r, "payload")?,
        attempts: int(&r, "attempts")?,
    }))
}

/// Ends a job that cannot make progress: `failed`, with `message`, its slot freed.
pub async fn fail(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    message: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let res = sqlx::query(
        "UPDATE jobs SET status = 'failed', message = $1, completed_at = $2, updated_at = $2, lease_until = NULL \
         WHERE id = $3 AND lease_owner = $4 AND status = 'working'",
    )
    .bind(message.to_owned())
    .bind(now)
    .bind(id.to_owned())
    .bind(owner.to_owned())
    .execute(conn)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Hands `owner`'s unfinished jobs back at once (a replica shutting down): their leases end now,
/// so any worker claims them at its next look (woken, on PostgreSQL), and they resume after their
/// last committed chunk. The claim that is handed back does not count as an attempt.
pub async fn release(conn: &mut AnyConnection, owner: &str, now: i64) -> Result<u64, StoreError> {
    let n = sqlx::query(
        "UPDATE jobs SET lease_until = 0, updated_at = $1, \
         attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
         WHERE lease_owner = $2 AND status = 'working'",
    )
    .bind(now)
    .bind(owner.to_owned())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n > 0 {
        crate::listen::notify(conn, crate::listen::JOBS).await?;
    }
    Ok(n)
}

/// Jobs by status (`queued`, `working`, `completed`, `failed`), for metrics.
pub async fn count_by_status(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, StoreError> {
    all(
        conn,
        sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status ORDER BY status"),
    )
    .await?
    .iter()
    .map(|r| Ok((text(r, "status")?, int(r, "n")?)))
    .collect()
}

/// Records progress (and, at the end, completion) if `owner` still holds the lease. Returns
/// false when the lease was lost: the caller must roll back.
pub async fn advance(
    conn: &mut AnyConnection,
    id: &str,
    owner: &str,
    progress: i64,
    message: &str,
    done: bool,
    now: i64,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let status = if done { COMPLETED } else { WORKING };
    let completed_at = done.then_some(now);
    let res = sqlx::query(
        "UPDATE jobs SET progress = $1, message = $2, status = $3, completed_at = $4, lease_until = $5, updated_at = $6, attempts = 0 \
         WHERE id = $7 AND lease_owner = $8 AND status = 'working'",
    )
    .bind(progress)
    .bind(message.to_owned())
    .bind(status)
    .bind(completed_at)
    .bind(lease_until)
    .bind(now)
    .bind(id.to_owned())
    .bind(owner.to_owned())
    .execute(conn)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Stores result entries `(index, entry)` of a job.
pub async fn insert_results(
    conn: &mut AnyConnection,
    id: &str,
    entries: &[(i64, Value)],
) -> Result<(), StoreError> {
    for chunk in entries.chunks(crate::rows::MAX_BOUND / 3) {
        let values = crate::rows::Params::new(conn).rows(chunk.len(), 3);
        let sql = format!("INSERT INTO job_results (job_id, idx, result) VALUES {values}");
        let mut q = sqlx::query(&sql);
        for (idx, entry) in chunk {
            q = q.bind(id.to_owned()).bind(*idx).bind(entry.to_string());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Deletes jobs created before `before`, with their results, and old idempotency keys.
pub async fn purge(
    conn: &mut AnyConnection,
    jobs_before: i64,
    keys_before: i64,
) -> Result<u64, StoreError> {
    sqlx::query(
        "DELETE FROM job_results WHERE job_id IN (SELECT id FROM jobs WHERE created_at < $1)",
    )
    .bind(jobs_before)
    .execute(&mut *conn)
    .await?;
    let n = sqlx::query("DELETE FROM jobs WHERE created_at < $1")
        .bind(jobs_before)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(keys_before)
        .execute(&mut *conn)
        .await?;
    Ok(n)
}

/// An idempotency key seen at or after `not_before`: the request digest and the stored response.
pub async fn idempotency_get(
    conn: &mut AnyConnection,
    key: &str,
    not_before: i64,
) -> Result<Option<(String, String)>, StoreError> {
    let row = first(
        conn,
        sqlx::query("SELECT request_digest, response FROM idempotency_keys WHERE key = $1 AND created_at >= $2")
            .bind(key.to_owned())
            .bind(not_before),
    )
    .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((text(&r, "request_digest")?, text(&r, "response")?))),
    }
}

/// Records a key's first response, replacing an expired one. Two first uses racing on one key
/// collide on the primary key, and the loser re-runs and finds the winner's response.
pub async fn idempotency_put(
    conn: &mut AnyConnection,
    key: &str,
    digest: &str,
    response: &str,
    now: i64,
    not_before: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND created_at < $2")
        .bind(key.to_owned())
        .bind(not_before)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO idempotency_keys (key, request_digest, response, created_at) VALUES ($1, $2, $3, $4)")
    .bind(key.to_owned())
    .bind(digest.to_owned())
    .bind(response.to_owned())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Scrubs an erased user's data from every stored job. The user's items are found by its id:
/// named by it, or answered with it (the result entry of a create or update carries the id);
/// the emails and external ids those items used then find the user's other items (a failed
/// one carries no id). Those items become empty, and their result entries (and any other entry
/// about the user) keep only their outcome. Jobs live for the retention period only, so this
/// reads them all.
pub async fn scrub_user(
    conn: &mut AnyConnection,
    mut erased: deskd_model::erasure::Erased,
) -> Result<(), StoreError> {
    use deskd_model::erasure::{scrubbed_item, scrubbed_result};
    use std::collections::{HashMap, HashSet};
    // Result entries answered with the user's id (compact JSON: `"id":N,` or `"id":N}`).
    let id = erased.user_id;
    let answered = all(
        conn,
        sqlx::query("SELECT job_id, idx FROM job_results WHERE result LIKE $1 OR result LIKE $2")
            .bind(format!("%\"id\":{id},%"))
            .bind(format!("%\"id\":{id}}}%")),
    )
    .await?;
    let mut linked: HashMap<String, HashSet<i64>> = HashMap::new();
    for r in &answered {
        linked
            .entry(text(r, "job_id")?)
            .or_default()
            .insert(int(r, "idx")?);
    }
    let mut jobs = Vec::new();
    for row in all(conn, sqlx::query("SELECT id, payload FROM jobs")).await? {
        let job = text(&row, "id")?;
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text(&row, "payload")?) else {
            continue;
        };
        let mine = linked.get(&job);
        for (i, item) in items.iter().enumerate() {
            if mine.is_some_and(|m| m.contains(&(i as i64))) || erased.named_by(item) {
                erased.learn_from(item);
            }
        }
        jobs.push((job, items));
    }
    for (job, mut items) in jobs {
        let mine = linked.get(&job);
        let mut scrubbed = HashSet::new();
        for (i, item) in items.iter_mut().enumerate() {
            if mine.is_some_and(|m| m.contains(&(i as i64))) || erased.named_by(item) {
                *item = scrubbed_item();
                scrubbed.insert(i as i64);
            }
        }
        if scrubbed.is_empty() {
            continue;
        }
        sqlx::query("UPDATE jobs SET payload = $1 WHERE id = $2")
            .bind(Value::Array(items).to_string())
            .bind(job.clone())
            .execute(&mut *conn)
            .await?;
        let results = all(
            conn,
            sqlx::query("SELECT idx, result FROM job_results WHERE job_id = $1").bind(job.clone()),
        )
        .await?;
        for r in results {
            let idx = int(&r, "idx")?;
            let Ok(entry) = serde_json::from_str::<Value>(&text(&r, "result")?) else {
                continue;
            };
            if erased.in_result(&entry, scrubbed.contains(&idx)) {
                sqlx::query("UPDATE job_results SET result = $1 WHERE job_id = $2 AND idx = $3")
                    .bind(scrubbed_result(&entry).to_string())
                    .bind(job.clone())
                    .bind(idx)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}
