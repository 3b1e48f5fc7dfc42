//! Job workers: claim a job with a lease, run its items in chunks, finish it.
//!
//! Each chunk's upserts, its result entries and the job's progress commit in one transaction,
//! guarded by the lease (a worker that lost its lease writes nothing). A job whose worker died is
//! claimed again once its lease runs out and resumes after its last committed chunk.

use std::sync::Arc;
use std::time::Duration;

use deskd_model::input::UserInput;
use deskd_model::job::{ItemOutcome, JobKind, JobSubject, completed_message, result_entry};
use deskd_model::time;
use deskd_store::jobs::{self, Claimed};
use deskd_store::upsert::{Mode, UpsertItem, Upserted, create_or_update_batch};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppState;

/// Items committed together.
const CHUNK: usize = 50;
/// How often an idle worker looks for jobs nobody woke it for: a lease that ran out (its worker
/// died), or a job queued while the LISTEN connection was down. Queued and released jobs wake a
/// worker at once (in-process, and through `NOTIFY` from other replicas).
const POLL: Duration = Duration::from_secs(1);

/// Starts the workers and the retention sweeper; they stop when `stop` turns true.
pub fn spawn(app: AppState, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let tag: u32 = rand::random();
    for n in 0..app.config.job_workers {
        let owner = format!(
            "{}-{}-{tag:08x}-{n}",
            std::process::id(),
            app.local_addr.port()
        );
        handles.push(tokio::spawn(work(app.clone(), owner, n == 0, stop.clone())));
    }
    handles.push(tokio::spawn(sweep(app, stop)));
    handles
}

/// Whether jobs are held for this worker: test mode's hold, unless this is the stepping worker
/// (the first) and a test has granted it items to run (`POST /__deskd/jobs/step`).
fn held(app: &AppState, stepper: bool) -> bool {
    app.test
        .as_ref()
        .is_some_and(|t| t.jobs_held() && !(stepper && t.pacing.has_permits()))
}

async fn work(app: AppState, owner: String, stepper: bool, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        // Test mode may hold jobs `queued` until a test releases them.
        if held(&app, stepper) {
            tokio::select! {
                () = app.jobs_notify.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let now = time::now();
        let lease_until = now + app.config.job_lease.as_secs() as i64;
        let backend = app.store.backend();
        let owner_c = owner.clone();
        let app_c = app.clone();
        let claimed = app
            .store
            .write(move |conn| {
                let owner = owner_c.clone();
                // Looked at again right before the claim, inside its transaction: a hold set
                // while this worker waited for a connection still keeps the job queued.
                let held = held(&app_c, stepper);
                Box::pin(async move {
                    if held {
                        return Ok(None);
                    }
                    jobs::claim(conn, backend, &owner, now, lease_until).await
                })
            })
            .await;
        match claimed {
            Ok(Some(job)) => {
                let id = job.job.id.clone();
                let (a, o, st) = (app.clone(), owner.clone(), stop.clone());
                match contained(async move { run(&a, &o, job, &st).await }).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(job = %id, error = %e, "job interrupted; it will be resumed when its lease runs out");
                    }
                    // The worker lives on; the job keeps its lease until it runs out, and each
                    // claim counts an attempt, so a job that always panics ends `failed`.
                    Err(panic) => {
                        tracing::error!(job = %id, error = %panic, "job step panicked; it will be retried when its lease runs out");
                    }
                }
            }
            Ok(None) => {
                // The stepping worker found nothing to spend a test's steps on.
                if let Some(t) = app.test.as_ref().filter(|t| t.jobs_held())
                    && stepper
                    && t.pacing.has_permits()
                {
                    t.pacing.idle();
                }
                tokio::select! {
                    () = app.jobs_notify.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(e) => {
                // An outage is logged once by the store, not by every worker every second.
                if e.is_unavailable() {
                    tracing::debug!(error = %e, "claiming a job failed");
                } else {
                    tracing::warn!(error = %e, "claiming a job failed");
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Runs `work` on a task of its own, so that a panic in it (a bug) ends that task, not the
/// worker's loop: a worker that died with its job would leave every later job to the others,
/// and with all of them gone, jobs would stay queued forever.
async fn contained<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::spawn(work).await
}

/// Reads one item: the upsert to run, or why it cannot run.
fn read_item(
    kind: JobKind,
    actor: deskd_model::role::Actor,
    item: &Value,
) -> Result<UpsertItem, ItemOutcome> {
    let Value::Object(obj) = item else {
        return Err(ItemOutcome::Invalid(
            "Each user must be a JSON object".to_owned(),
        ));
    };
    let input = UserInput::from_json(obj)
        .map_err(|v| ItemOutcome::Failed(deskd_model::Rejection::Invalid(v)))?;
    let mode = match kind {
        JobKind::CreateOrUpdateMany => Mode::CreateOrUpdate,
        JobKind::CreateMany => Mode::CreateOnly,
        // destroy_many items are resolved the way update_many's are; see `destroy`.
        // Organization and membership jobs never come here (see `run_item`).
        _ => Mode::UpdateOnly,
    };
    Ok(UpsertItem {
        input: Arc::new(input),
        actor,
        mode,
    })
}

/// Claims a job may take without progress before it ends `failed`.
const MAX_ATTEMPTS: i64 = 5;

/// What a step writes for its range of items.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Run the items.
    Run,
    /// Record the (single) item as failed: it could not be written even alone.
    Fail,
}

/// One job being run by this worker.
struct Running {
    id: String,
    owner: String,
    kind: JobKind,
    actor: deskd_model::role::Actor,
    items: Arc<Vec<Value>>,
}

async fn run(
    app: &AppState,
    owner: &str,
    claimed: Claimed,
    stop: &watch::Receiver<bool>,
) -> Result<(), crate::ApiError> {
    let Claimed {
        job,
        actor,
        payload,
        attempts,
    } = claimed;
    if attempts > MAX_ATTEMPTS {
        let (id, owner, now) = (job.id.clone(), owner.to_owned(), time::now());
        let message = format!("Failed: no progress after {MAX_ATTEMPTS} attempts");
        tracing::warn!(job = %job.id, attempts, "job ends failed");
        app.store
            .write(move |conn| {
                let (id, owner, message) = (id.clone(), owner.clone(), message.clone());
                Box::pin(async move { jobs::fail(conn, &id, &owner, &message, now).await })
            })
            .await?;
        return Ok(());
    }
    let items: Vec<Value> =
        serde_json::from_str(&payload).map_err(|e| crate::ApiError::internal(e))?;
    let job_run = Running {
        id: job.id.clone(),
        owner: owner.to_owned(),
        kind: job.kind,
        actor,
        items: Arc::new(items),
    };
    let total = job_run.items.len();
    let mut start = usize::try_from(job.progress.unwrap_or(0))
        .unwrap_or(0)
        .min(total);
    loop {
        let (size, stepped) = pace(app).await;
        let end = (start + size).min(total);
        let ran: Result<bool, deskd_store::StoreError> = async {
            Ok(match step(app, &job_run, start, end, Write::Run).await {
            Ok(held) => held,
            // A chunk that cannot commit falls back to its items one by one, and an item that
            // cannot commit alone becomes a failed result entry: one bad item never sinks the
            // chunk, and never keeps the job from finishing.
            Err(e) if e.is_refusal() => {
                tracing::warn!(job = %job_run.id, error = %e, "chunk failed; running its items one by one");
                let mut held = true;
                for i in start..end {
                    held = match step(app, &job_run, i, i + 1, Write::Run).await {
                        Ok(h) => h,
                        Err(e) if e.is_refusal() => {
                            tracing::warn!(job = %job_run.id, index = i, error = %e, "item failed");
                            step(app, &job_run, i, i + 1, Write::Fail).await?
                        }
                        Err(e) => return Err(e),
                    };
                    if !held {
                        break;
                    }
                }
                held
            }
            Err(e) => return Err(e),
        })
        }
        .await;
        // A step's permit is spent whatever became of its item (see `Pacing::step`).
        if stepped && let Some(t) = &app.test {
            t.pacing.item_done();
        }
        let held = ran?;
        if !held {
            tracing::info!(job = %job_run.id, "lease lost; another worker has the job");
            return Ok(());
        }
        app.metrics.job_items((end - start) as u64);
        if end == total {
            return Ok(());
        }
        start = end;
        if *stop.borrow() {
            // Shutting down: hand the rest to another replica now rather than at lease end.
            release(app, owner).await;
            return Ok(());
        }
    }
}

/// Ends `owner`'s leases at once (see `jobs::release`).
async fn release(app: &AppState, owner: &str) {
    let (owner_c, now) = (owner.to_owned(), time::now());
    let released = app
        .store
        .write(move |conn| {
            let owner = owner_c.clone();
            Box::pin(async move { jobs::release(conn, &owner, now).await })
        })
        .await;
    match released {
        Ok(n) => tracing::info!(owner, jobs = n, "shutting down: released unfinished jobs"),
        Err(e) => {
            tracing::warn!(owner, error = %e, "releasing jobs failed; they resume when their lease runs out")
        }
    }
}

/// How many items the next step runs, and whether it runs under a test's step permit: a whole
/// chunk, or, while test mode holds jobs, one item once a test grants it.
async fn pace(app: &AppState) -> (usize, bool) {
    let Some(test) = &app.test else {
        return (CHUNK, false);
    };
    loop {
        if !test.jobs_held() {
            return (CHUNK, false);
        }
        if test.pacing.take_permit() {
            return (1, true);
        }
        tokio::select! {
            () = app.jobs_notify.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Runs items `start..end` of a job and commits their users, their result entries and the
/// job's progress together. False when the lease was lost (nothing was written).
async fn step(
    app: &AppState,
    job: &Running,
    start: usize,
    end: usize,
    write: Write,
) -> Result<bool, deskd_store::StoreError> {
    let total = job.items.len();
    let done = end == total;
    let now = time::now();
    let lease_until = now + app.config.job_lease.as_secs() as i64;
    let message = if done {
        completed_message(now)
    } else {
        job.kind.progress_message(end as i64)
    };
    // Reading the items is CPU work that need not hold the (single, on SQLite) writer.
    let mut slots: Vec<Option<ItemOutcome>> = Vec::with_capacity(end - start);
    let mut ready = Vec::new();
    let users = job.kind.subject() == JobSubject::User;
    for (offset, item) in job.items[start..end].iter().enumerate() {
        // A failure a test planned for this item (`POST /__deskd/jobs/fail`).
        if let Some(o) = app
            .test
            .as_ref()
            .and_then(|t| t.pacing.failure(&job.id, start + offset))
        {
            slots.push(Some(o));
            continue;
        }
        if write == Write::Fail {
            slots.push(Some(ItemOutcome::Invalid(
                "The item could not be saved".to_owned(),
            )));
            continue;
        }
        if !users {
            // Organization and membership items are read and run inside the transaction.
            slots.push(None);
            continue;
        }
        match read_item(job.kind, job.actor, item) {
            Ok(u) => {
                slots.push(None);
                ready.push(u);
            }
            Err(o) => slots.push(Some(o)),
        }
    }
    let (slots, ready) = (Arc::new(slots), Arc::new(ready));
    let (items, id, owner, kind, actor) = (
        job.items.clone(),
        job.id.clone(),
        job.owner.clone(),
        job.kind,
        job.actor,
    );
    let backend = app.store.backend();
    app.store
        .write(move |conn| {
            let (items, id, owner, message) =
                (items.clone(), id.clone(), owner.clone(), message.clone());
            let (slots, ready) = (slots.clone(), ready.clone());
            Box::pin(async move {
                // The submitter as it is now, read in this transaction: a job outlives the
                // rights it was submitted with only as far as the submitter still has them.
                let submitter = deskd_store::users::load(conn, actor.user_id).await?;
                let run_as = deskd_model::job::actor_at_run(kind, actor, submitter.as_ref());
                if !jobs::advance(
                    conn,
                    &id,
                    &owner,
                    end as i64,
                    &message,
                    done,
                    now,
                    lease_until,
                )
                .await?
                {
                    return Ok(false);
                }
                let ran = match run_as {
                    _ if write == Write::Fail => Vec::new(),
                    None => vec![
                        ItemOutcome::Failed(deskd_model::Rejection::Forbidden);
                        slots.iter().filter(|s| s.is_none()).count()
                    ],
                    Some(actor) if !users => {
                        let mut out = Vec::with_capacity(end - start);
                        for (offset, item) in items[start..end].iter().enumerate() {
                            if slots[offset].is_none() {
                                out.push(run_item(conn, kind, actor, item, now).await?);
                            }
                        }
                        out
                    }
                    Some(actor) => {
                        let ready: Vec<UpsertItem> = ready
                            .iter()
                            .map(|u| UpsertItem { actor, ..u.clone() })
                            .collect();
                        run_users(conn, backend, kind, &ready, now).await?
                    }
                };
                let mut ran = ran.into_iter();
                let mut entries = Vec::with_capacity(slots.len());
                for (offset, slot) in slots.iter().enumerate() {
                    let outcome = match slot {
                        Some(o) => o.clone(),
                        None => ran
                            .next()
                            .unwrap_or_else(|| ItemOutcome::Invalid("not processed".to_owned())),
                    };
                    let index = start + offset;
                    entries.push((
                        index as i64,
                        result_entry(kind, index, &items[index], &outcome),
                    ));
                }
                jobs::insert_results(conn, &id, &entries).await?;
                Ok(true)
            })
        })
        .await
}

/// A chunk of a user job's items, run as `items`' actor.
async fn run_users(
    conn: &mut deskd_store::Conn,
    backend: deskd_store::Backend,
    kind: JobKind,
    items: &[UpsertItem],
    now: i64,
) -> Result<Vec<ItemOutcome>, deskd_store::StoreError> {
    if kind == JobKind::DestroyMany {
        return destroy(conn, items, now).await;
    }
    let result = create_or_update_batch(conn, backend, items, now).await?;
    Ok(result
        .outcomes
        .into_iter()
        .map(|o| match o {
            Ok(Upserted::Created(u)) => ItemOutcome::Created(u.id),
            Ok(Upserted::Updated(u)) => ItemOutcome::Updated(u.id),
            Err(r) => ItemOutcome::Failed(r),
        })
        .collect())
}

/// One organization or membership item, decided and written inside the chunk's transaction.
async fn run_item(
    conn: &mut deskd_store::Conn,
    kind: JobKind,
    actor: deskd_model::role::Actor,
    item: &Value,
    now: i64,
) -> Result<ItemOutcome, deskd_store::StoreError> {
    use deskd_model::Rejection;
    use deskd_model::membership::MembershipInput;
    use deskd_model::organization_input::OrganizationInput;
    use deskd_store::{memberships, organizations};
    let Value::Object(obj) = item else {
        return Ok(ItemOutcome::Invalid(
            "Each item must be a JSON object".to_owned(),
        ));
    };
    let failed = |r: Rejection| ItemOutcome::Failed(r);
    // The organization an update or delete item names: by `id`, else by `external_id`.
    let target =
        |input: &OrganizationInput| (input.id, input.lookup_external_id().map(str::to_owned));
    Ok(match kind {
        JobKind::OrganizationCreateMany => match OrganizationInput::from_json(obj, false) {
            Err(v) => failed(Rejection::Invalid(v)),
            Ok(input) => match organizations::create(conn, &input, now).await? {
                Ok(org) => ItemOutcome::Created(org.id),
                Err(r) => failed(r),
            },
        },
        JobKind::OrganizationUpdateMany | JobKind::OrganizationDestroyMany => {
            match OrganizationInput::from_json(obj, true) {
                Err(v) => failed(Rejection::Invalid(v)),
                Ok(mut input) => {
                    let named_by_external_id = input.id.is_none();
                    let id = match target(&input) {
                        (Some(id), _) => Some(id),
                        (None, Some(ext)) => organizations::id_by_external_id(conn, &ext).await?,
                        (None, None) => None,
                    };
                    match (id, kind) {
                        (None, _) => failed(Rejection::NotFound),
                        (Some(id), JobKind::OrganizationDestroyMany) => {
                            if organizations::delete(conn, id, now).await? {
                                ItemOutcome::Deleted(id)
                            } else {
                                failed(Rejection::NotFound)
                            }
                        }
                        (Some(id), _) => {
                            // An external id that names the organization is no change to it.
                            if named_by_external_id {
                                input.external_id = None;
                            }
                            match organizations::update_by_id(conn, id, &input, now).await? {
                                Ok(org) => ItemOutcome::Updated(org.id),
                                Err(r) => failed(r),
                            }
                        }
                    }
                }
            }
        }
        JobKind::MembershipCreateMany => match MembershipInput::from_json(obj) {
            Err(v) => failed(Rejection::Invalid(v)),
            Ok(input) => match memberships::create(conn, actor, input, now).await? {
                Ok(m) => ItemOutcome::Created(m.id),
                Err(r) => failed(r),
            },
        },
        JobKind::MembershipDestroyMany => {
            match obj
                .get("id")
                .and_then(|v| deskd_model::input::parse_int(v).ok().flatten())
            {
                None => failed(Rejection::NotFound),
                Some(id) => match memberships::delete(conn, actor, id, now).await? {
                    Ok(m) => ItemOutcome::Deleted(m.id),
                    Err(r) => failed(r),
                },
            }
        }
        // User jobs run through the batch path in `step`.
        _ => ItemOutcome::Invalid("not processed".to_owned()),
    })
}

/// destroy_many: soft-deletes each item's user, in order.
async fn destroy(
    conn: &mut deskd_store::Conn,
    items: &[UpsertItem],
    now: i64,
) -> Result<Vec<ItemOutcome>, deskd_store::StoreError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let ext = item.input.external_id.clone().flatten();
        let outcome = match deskd_store::users::delete_for(
            conn,
            item.actor,
            item.input.id,
            ext.as_deref(),
            now,
        )
        .await?
        {
            Ok(u) => ItemOutcome::Deleted(u.id),
            Err(r) => ItemOutcome::Failed(r),
        };
        out.push(outcome);
    }
    Ok(out)
}

/// Deletes expired jobs and idempotency keys, at start and every minute.
async fn sweep(app: AppState, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let now = time::now();
        let jobs_before = now - app.config.job_retention.as_secs() as i64;
        let keys_before = now - crate::bulk::IDEMPOTENCY_WINDOW_SECS;
        let purged = app
            .store
            .write(move |conn| {
                Box::pin(async move { jobs::purge(conn, jobs_before, keys_before).await })
            })
            .await;
        match purged {
            Ok(n) if n > 0 => tracing::info!(jobs = n, "purged expired jobs"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging expired jobs failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::contained;

    #[tokio::test]
    async fn a_panicking_step_is_contained_and_the_loop_goes_on() {
        let panicked = contained(async {
            if std::hint::black_box(true) {
                panic!("a bug in a job step");
            }
            1
        })
        .await;
        let e = panicked.expect_err("the panic comes back as an error");
        assert!(e.is_panic());
        // The caller is still running and can run the next job.
        assert_eq!(contained(async { 2 }).await.expect("next job"), 2);
    }
}
