//! Opening the database named by a URL.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};

use crate::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: String,
    /// Connections in the pool (readers on SQLite; everything on PostgreSQL).
    pub max_connections: u32,
    /// Pool connections that ordinary reads (lists, searches, exports) may never take, kept for
    /// authentication, rate limits and writes; `None` for a quarter of the pool, at least 2.
    pub reserved_connections: Option<u32>,
    /// create_or_update batches written at once on PostgreSQL (SQLite: always one).
    pub write_batches: usize,
}

impl StoreOptions {
    /// The pool size and how many of its connections ordinary reads may hold at once.
    pub(crate) fn read_slots(&self) -> (u32, u32) {
        let max = self.max_connections.max(2);
        let reserve = self
            .reserved_connections
            .unwrap_or((max / 4).max(2))
            .min(max - 1);
        (max, max - reserve)
    }
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            max_connections: 16,
            reserved_connections: None,
            write_batches: 4,
        }
    }
}

/// Per-connection SQLite settings: WAL lets readers run beside the one writer; NORMAL sync is
/// durable across process crashes (not power loss), which is what WAL + NORMAL promises.
/// Statements slower than this are logged as warnings (`DESKD_SLOW_STATEMENT_MS` is not a knob; edit to profile).
const SLOW_STATEMENT_MS: u64 = 20;

const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA temp_store = MEMORY;";

/// Per-connection PostgreSQL settings. sqlx keeps prepared statements for a connection's life,
/// and PostgreSQL switches a prepared statement to a generic plan after five runs: planned while a
/// fresh database's tables were empty, that plan scans whole tables forever after (a bulk import
/// fell from 12,000 to 1,200 users/s). Planning every execution costs well under a millisecond.
const POSTGRES_SETTINGS: &str = "SET plan_cache_mode = force_custom_plan";

const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn connect(
    opts: &StoreOptions,
) -> Result<(Backend, AnyPool, Option<AnyConnection>), StoreError> {
    sqlx::any::install_default_drivers();
    let (backend, url) = normalize_url(&opts.url)?;
    // Statements are not logged (they carry user data); slow ones are, as warnings.
    let connect_opts = AnyConnectOptions::from_str(&url)?
        .log_statements(tracing::log::LevelFilter::Off)
        .log_slow_statements(
            tracing::log::LevelFilter::Warn,
            Duration::from_millis(SLOW_STATEMENT_MS),
        );
    match backend {
        Backend::Sqlite => {
            create_private(&url)?;
            // The writer connection first: it opens the file and switches it to WAL.
            let mut writer = AnyConnection::connect_with(&connect_opts).await?;
            writer.execute(SQLITE_PRAGMAS).await?;
            let pool = AnyPoolOptions::new()
                .max_connections(opts.read_slots().0)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(|_| ()) })
                })
                .connect_with(connect_opts)
                .await?;
            Ok((backend, pool, Some(writer)))
        }
        Backend::Postgres => {
            let pool = AnyPoolOptions::new()
                .max_connections(opts.read_slots().0)
                // A request waits this long at most for a connection (the pool retries a refused
                // connection until then); an outage the probe has seen fails at once instead.
                .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                .after_connect(|conn, _| {
                    Box::pin(async move { conn.execute(POSTGRES_SETTINGS).await.map(|_| ()) })
                })
                .connect_with(connect_opts)
                .await?;
            Ok((backend, pool, None))
        }
    }
}

/// Creates a SQLite database file that does not exist yet readable and writable by its owner
/// only (0600): it holds password hashes and everyone's personal data. SQLite creates the `-wal`
/// and `-shm` files beside it with the database file's permissions, so they are 0600 too. An
/// existing file keeps the permissions its owner gave it.
fn create_private(url: &str) -> Result<(), StoreError> {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Ok(()); // in memory
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::BadUrl(format!("{path}: {e}"))),
    }
}

/// Names the backend and makes a SQLite URL create its file when missing.
fn normalize_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    if matches!(
        url.trim(),
        "memory" | ":memory:" | "sqlite::memory:" | "sqlite://:memory:"
    ) {
        return Ok((Backend::Sqlite, memory_url()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.trim_start_matches("//");
        let shared_memory = rest.contains("mode=memory") && rest.contains("cache=shared");
        if (rest.is_empty() || rest.starts_with(":memory:") || rest.contains("mode=memory"))
            && !shared_memory
        {
            // Each connection would see its own empty database.
            return Err(StoreError::BadUrl(format!(
                "{url} (for an in-memory database give `memory`, or a named one with mode=memory&cache=shared)"
            )));
        }
        if shared_memory {
            // `sqlite:file:NAME?mode=memory&cache=shared`, as given (a `//` would make NAME a host).
            return Ok((Backend::Sqlite, format!("sqlite:{rest}")));
        }
        let mut out = format!("sqlite://{rest}");
        if !rest.contains("mode=") {
            out.push_str(if rest.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        return Ok((Backend::Sqlite, out));
    }
    Err(StoreError::BadUrl(url.to_owned()))
}

/// A SQLite database in this process's memory, gone when the store closes: named (so that the
/// writer and every reader open the same one, through SQLite's shared cache) and unique (so that
/// two stores in one process never share it).
fn memory_url() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sqlite:file:deskd-{}-{nanos:x}-{}?mode=memory&cache=shared",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            normalize_url("sqlite://deskd.db").unwrap(),
            (Backend::Sqlite, "sqlite://deskd.db?mode=rwc".into())
        );
        assert_eq!(
            normalize_url("sqlite:///tmp/x.db").unwrap().1,
            "sqlite:///tmp/x.db?mode=rwc"
        );
        assert_eq!(
            normalize_url("postgres://u@h/db").unwrap().0,
            Backend::Postgres
        );
        assert!(normalize_url("mysql://x").is_err());
        assert!(normalize_url("sqlite://x.db?mode=memory").is_err());
        assert_eq!(
            normalize_url("sqlite:file:t1?mode=memory&cache=shared")
                .unwrap()
                .1,
            "sqlite:file:t1?mode=memory&cache=shared"
        );
        for memory in ["memory", "sqlite::memory:", "sqlite://:memory:"] {
            let (backend, url) = normalize_url(memory).unwrap();
            assert_eq!(backend, Backend::Sqlite);
            assert!(url.starts_with("sqlite:file:deskd-"), "{url}");
            assert!(url.ends_with("?mode=memory&cache=shared"), "{url}");
            assert_ne!(url, normalize_url(memory).unwrap().1, "each is its own");
        }
    }
}
