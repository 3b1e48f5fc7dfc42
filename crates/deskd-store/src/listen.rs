//! What replicas on one PostgreSQL tell each other, and how each watches the database.
//!
//! - `LISTEN deskd_jobs`: a job was queued or released; an idle worker claims it at once instead
//!   of at its next poll.
//! - `LISTEN deskd_credentials`: a write took access away; cached logins are dropped.
//!
//! Notifications are sent inside the writing transaction (`pg_notify`), so they arrive only if it
//! commits. They are lost while a replica is not listening, so on every (re)connection the
//! replica assumes it missed some (drops its login cache, wakes its workers); the polls stay as a
//! fallback. A lost LISTEN connection is also the quickest sign that the database went away, so it
//! marks the store down at once; the probe marks it up again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{Notify, watch};

use crate::StoreError;
use crate::health::Health;

pub(crate) const JOBS: &str = "deskd_jobs";
pub(crate) const CREDENTIALS: &str = "deskd_credentials";

/// How long a connection attempt or a probe may take before the database counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Between probes while the database is up, and while it is down.
const PROBE_UP: Duration = Duration::from_secs(2);
const PROBE_DOWN: Duration = Duration::from_millis(250);

/// Sends `channel` to every replica when the caller's transaction commits (PostgreSQL only).
/// Channels are database-wide; the payload names the schema, so deployments in other schemas of
/// one database ignore each other.
pub(crate) async fn notify(conn: &mut AnyConnection, channel: &str) -> Result<(), StoreError> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_notify($1, current_schema())")
            .bind(channel.to_owned())
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// What the listener wakes or bumps.
#[derive(Clone)]
pub(crate) struct Targets {
    pub(crate) health: Arc<Health>,
    pub(crate) jobs: Arc<Notify>,
    pub(crate) epoch: Arc<AtomicU64>,
}

/// Follows the notifications until `closed` turns true, reconnecting whenever the connection is
/// lost.
pub(crate) async fn listen(url: String, t: Targets, mut closed: watch::Receiver<bool>) {
    loop {
        let connected = tokio::select! {
            c = tokio::time::timeout(PROBE_TIMEOUT, connect(&url)) => c,
            _ = closed.wait_for(|c| *c) => return,
        };
        let (mut listener, schema) = match connected {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                t.health.fail(&format!("cannot reach PostgreSQL: {e}"));
                if pause(&mut closed, PROBE_DOWN).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                t.health
                    .fail("PostgreSQL did not accept a connection within 5 s");
                continue;
            }
        };
        t.health.listening.store(true, Ordering::Release);
        // Whatever was sent while this replica was not listening is lost: assume the worst.
        t.epoch.fetch_add(1, Ordering::SeqCst);
        t.jobs.notify_waiters();
        t.jobs.notify_one();
        let lost = loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = closed.wait_for(|c| *c) => return,
            };
            match next {
                Ok(Some(n)) if n.payload() != schema => {}
                Ok(Some(n)) if n.channel() == JOBS => t.jobs.notify_one(),
                Ok(Some(n)) if n.channel() == CREDENTIALS => {
                    t.epoch.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Some(_)) => {}
                Ok(None) => break "the connection to PostgreSQL was lost".to_owned(),
                Err(e) => break format!("PostgreSQL: {e}"),
            }
        };
        t.health.listening.store(false, Ordering::Release);
        t.health.fail(&lost);
        t.health.report();
        if pause(&mut closed, PROBE_DOWN).await {
            return;
        }
    }
}

/// A LISTEN connection, and the schema whose notifications are this store's.
async fn connect(url: &str) -> Result<(PgListener, String), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    // Reconnect here, with a timeout, rather than inside `try_recv`.
    listener.eager_reconnect(false);
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut listener)
        .await?;
    listener.listen_all([JOBS, CREDENTIALS]).await?;
    Ok((listener, schema))
}

/// Checks the database through the pool: often while it is down, every few seconds while up, and
/// at once when a unit of work reports that it went away.
pub(crate) async fn probe(
    url: String,
    pool: AnyPool,
    health: Arc<Health>,
    mut closed: watch::Receiver<bool>,
) {
    loop {
        let every = if health.is_down() {
            PROBE_DOWN
        } else {
            PROBE_UP
        };
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = health.reported.notified() => {}
            _ = closed.wait_for(|c| *c) => return,
        }
        // While down, a fresh connection: the pool would retry a refused connection until its
        // acquire timeout, and the database's return would be noticed that much later.
        let down = health.is_down();
        let checked = tokio::time::timeout(PROBE_TIMEOUT, async {
            if down {
                let mut conn = AnyConnection::connect(&url).await?;
                sqlx::query("SELECT 1").execute(&mut conn).await?;
                let _ = conn.close().await;
            } else {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
            }
            Ok::<_, sqlx::Error>(())
        })
        .await;
        match checked {
            Ok(Ok(_)) => health.recover(),
            Ok(Err(e)) => health.fail(&format!("PostgreSQL: {e}")),
            Err(_) => health.fail("PostgreSQL did not answer within 5 s"),
        }
    }
}

/// Sleeps `d`; true when the store closed meanwhile.
async fn pause(closed: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = closed.wait_for(|c| *c) => true,
    }
}
