//! The `deskd` command.

use std::net::SocketAddr;
use std::process::ExitCode;

mod import;

use clap::{Parser, Subcommand, ValueEnum};
use deskd_server::bootstrap::{AdminSeed, ensure_admin};
use deskd_server::{AppState, Config};
use deskd_store::{Store, StoreOptions};
use tokio::net::TcpListener;

// glibc's allocator spends a sixth of a loaded server's time in malloc/free across threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "deskd",
    version,
    about = "A self-hostable server for the Zendesk Support Users API"
)]
struct Cli {
    /// Log lines as text for people, or as JSON lines (one object per event, with the request's
    /// span and id) for a log pipeline.
    #[arg(
        long,
        env = "DESKD_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MetricsAccess {
    Admin,
    Open,
    Off,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve(ServeArgs),
    /// Bulk-sync users from CSV or JSON Lines into any Zendesk-compatible endpoint.
    Import(import::ImportArgs),
    /// Manage account API tokens (usable as `EMAIL/token:TOKEN` with any agent's email).
    Token {
        /// `sqlite://PATH` or `postgres://...`, as for `serve`.
        #[arg(
            long,
            env = "DESKD_DATABASE_URL",
            default_value = "sqlite://deskd.db",
            global = true
        )]
        database: String,
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print it (shown this once; only a digest is stored).
    Create {
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List active tokens (ids and descriptions; never the secrets).
    List,
    /// Revoke a token by id; it stops working at once, on every running server.
    Revoke { id: i64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Parser)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "DESKD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "DESKD_DATABASE_URL", default_value = "sqlite://deskd.db")]
    database: String,
    /// Base of absolute URLs in responses, e.g. `https://help.example.com`; default: the request's Host.
    #[arg(long, env = "DESKD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Database connections (readers on SQLite, all on PostgreSQL).
    #[arg(long, env = "DESKD_DB_CONNECTIONS", default_value_t = 16)]
    db_connections: u32,
    /// Of those, connections that lists, searches and exports may never take: kept for
    /// authentication, rate limits and writes (default: a quarter, at least 2).
    #[arg(long, env = "DESKD_DB_RESERVED_CONNECTIONS")]
    db_reserved_connections: Option<u32>,
    /// Milliseconds one statement of a list or search page may run on PostgreSQL before it is
    /// cancelled (answered 503).
    #[arg(long, env = "DESKD_READ_TIMEOUT_MS", default_value_t = 10_000)]
    read_timeout_ms: u64,
    /// MiB of JSON request bodies read and parsed at once across the server; further bodies
    /// wait (a body larger than this still runs, alone).
    #[arg(long, env = "DESKD_BODY_BUDGET_MIB", default_value_t = 8)]
    body_budget_mib: usize,
    /// On PostgreSQL, create_or_update batches written at once (one decides while another waits
    /// for its commit); SQLite has one writer and writes one batch at a time.
    #[arg(long, env = "DESKD_WRITE_BATCHES", default_value_t = 4)]
    write_batches: usize,
    /// Switch every rate limit on or off (`off` for benchmarks and load tests).
    #[arg(long, env = "DESKD_RATE_LIMITS", value_enum, default_value = "on")]
    rate_limits: OnOff,
    /// Account budget in requests a minute, or `off` (Zendesk Enterprise: 700).
    #[arg(long, env = "DESKD_ACCOUNT_RATE_LIMIT", default_value = "700", value_parser = limit)]
    account_rate_limit: Limit,
    /// create_or_update and PUT /users/{id} requests a minute per user profile, or `off`.
    #[arg(long, env = "DESKD_PROFILE_RATE_LIMIT", default_value = "5", value_parser = limit)]
    profile_rate_limit: Limit,
    /// Failed password logins for one email from one client address in 5 minutes before further
    /// password tries from there get 429, or `off`.
    #[arg(long, env = "DESKD_AUTH_FAILURE_LIMIT", default_value = "10", value_parser = limit)]
    auth_failure_limit: Limit,
    /// Incremental export requests a minute for the account, or `off` (Zendesk: 10).
    #[arg(long, env = "DESKD_INCREMENTAL_RATE_LIMIT", default_value = "10", value_parser = limit)]
    incremental_rate_limit: Limit,
    /// Unauthenticated and failed-auth API requests a minute per client address, or `off`; they
    /// never spend the account budget.
    #[arg(long, env = "DESKD_ANONYMOUS_RATE_LIMIT", default_value = "100", value_parser = limit)]
    anonymous_rate_limit: Limit,
    /// Password verifications (argon2id, 19 MiB each) computed at once; a password login that
    /// finds them all busy for 500 ms is answered 429.
    #[arg(long, env = "DESKD_PASSWORD_VERIFICATIONS", default_value_t = 4)]
    password_verifications: usize,
    /// Whether bulk user imports (create_many, create_or_update_many) are on until an admin sets
    /// `settings.deskd.bulk_user_import` through `PUT /api/v2/account/settings`.
    #[arg(long, env = "DESKD_BULK_IMPORT", value_enum, default_value = "on")]
    bulk_import: OnOff,
    /// Job workers in this process.
    #[arg(long, env = "DESKD_JOB_WORKERS", default_value_t = 4)]
    job_workers: usize,
    /// Seconds a claimed job stays with a worker that makes no progress (a crashed one) before
    /// another worker resumes it.
    #[arg(long, env = "DESKD_JOB_LEASE_SECS", default_value_t = 30)]
    job_lease_secs: u64,
    /// Hours job statuses are kept.
    #[arg(long, env = "DESKD_JOB_RETENTION_HOURS", default_value_t = 24)]
    job_retention_hours: u64,
    /// Seconds a client has to send a request's headers (from connecting, or on a kept-alive
    /// connection from the request's first byte); slower clients are disconnected.
    #[arg(long, env = "DESKD_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds from a request's headers to its response, the body upload included; then 408.
    #[arg(long, env = "DESKD_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    request_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit idle between requests before it is closed.
    #[arg(long, env = "DESKD_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Open client connections at most (fewer when `ulimit -n` leaves no room for them beside
    /// deskd's own descriptors); further clients wait in the listen backlog.
    #[arg(long, env = "DESKD_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// On SIGTERM or SIGINT, seconds requests in flight get to finish; then deskd closes the
    /// connections still open and exits 0.
    #[arg(long, env = "DESKD_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// On SIGTERM or SIGINT, seconds deskd keeps serving while `/readyz` answers 503, so that a
    /// load balancer checking it stops sending requests before the listener closes (set it
    /// above the balancer's check interval times its fall count).
    #[arg(long, env = "DESKD_DRAIN_DELAY_SECS", default_value_t = 0)]
    drain_delay_secs: u64,
    /// Who may read `GET /metrics`: `admin` (admin credentials), `open` (anyone who reaches the
    /// port: only for a private scrape network), or `off`.
    #[arg(long, env = "DESKD_METRICS", value_enum, default_value = "admin")]
    metrics: MetricsAccess,
    /// Email of the first admin, created when the database has no admin.
    #[arg(long, env = "DESKD_ADMIN_EMAIL", hide_env_values = true)]
    admin_email: Option<String>,
    /// API token of the first admin (usable as `EMAIL/token:TOKEN`).
    #[arg(long, env = "DESKD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Password of the first admin.
    #[arg(long, env = "DESKD_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Test mode: serve the `/__deskd/` controls (reset, request journal, fault injection) for
    /// running deskd inside a test suite. Never on a server holding real data.
    /// (`DESKD_TEST_MODE=1`, or true/on/yes.)
    #[arg(long, env = "DESKD_TEST_MODE", value_parser = clap::builder::BoolishValueParser::new())]
    test_mode: bool,
    /// Once listening, print `ZENDESK_URL=... ZENDESK_EMAIL=... ZENDESK_TOKEN=...` on one line
    /// of stdout, ready for `eval` or `export`, for the client under test.
    #[arg(long, env = "DESKD_PRINT_ENV", value_parser = clap::builder::BoolishValueParser::new())]
    print_env: bool,
    /// Test mode: at start, replace the account's state with this fixture (the document of
    /// `GET /__deskd/export`; see the README), before the server listens.
    #[arg(long, env = "DESKD_SEED", value_name = "FILE")]
    seed: Option<std::path::PathBuf>,
    /// Test mode: deterministic runs. Generated ids and tokens come from a generator seeded
    /// with N, and the clock starts frozen at 2024-01-01T00:00:00Z and moves one second per
    /// API request, so the same requests get byte-identical responses (on a fresh database,
    /// e.g. `--database memory`).
    #[arg(long, env = "DESKD_TEST_SEED", value_name = "N")]
    test_seed: Option<u64>,
}

/// A rate limit: a positive number, or `off`.
#[derive(Clone, Copy, Debug)]
struct Limit(Option<u32>);

fn limit(s: &str) -> Result<Limit, String> {
    match s.trim() {
        "off" | "none" | "0" => Ok(Limit(None)),
        // Buckets count in milliseconds: at most one request a millisecond per bucket.
        n => match n.parse::<u32>() {
            Ok(n) if n <= 60_000 => Ok(Limit(Some(n))),
            Ok(_) => Err(format!(
                "{s:?}: at most 60000 a minute; use `off` for no limit"
            )),
            Err(_) => Err(format!("{s:?}: a positive number (at most 60000) or `off`")),
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("DESKD_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        // Each line carries the spans it was logged in (the request's id among them).
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        LogFormat::Text => logs.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deskd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Import(args) => import::run(args).await,
            Command::Token { database, action } => token(&database, action).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deskd: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    if !args.test_mode && (args.seed.is_some() || args.test_seed.is_some()) {
        return Err("--seed and --test-seed are test mode's; add --test-mode".to_owned());
    }
    if let Some(n) = args.test_seed {
        // Before anything random is drawn (the first admin's generated token included).
        deskd_server::testmode::seeded::install(n);
    }
    let mut opts = StoreOptions::new(&args.database);
    opts.max_connections = args.db_connections;
    opts.reserved_connections = args.db_reserved_connections;
    opts.write_batches = args.write_batches.max(1);
    let store = Store::open(&opts)
        .await
        .map_err(|e| format!("cannot open {}: {e}", redact(&args.database)))?;
    let seed = AdminSeed {
        email: args.admin_email.clone(),
        token: args.admin_token.clone(),
        password: args.admin_password,
    };
    let mut env_email = args
        .admin_email
        .unwrap_or_else(|| deskd_server::bootstrap::DEFAULT_ADMIN_EMAIL.to_owned());
    let mut env_token = args.admin_token;
    if let Some(created) = ensure_admin(&store, &seed)
        .await
        .map_err(|e| format!("cannot create the first admin: {e}"))?
    {
        env_email = created.email.clone();
        if let Some(t) = &created.generated_token {
            env_token = Some(t.clone());
        }
        match created.generated_token {
            // Printed once, to stdout, for the person starting deskd; never logged.
            Some(token) => println!(
                "deskd created the first admin: {} with API token {token}\n  (use it as -u '{}/token:{token}'; it is not shown again)",
                created.email, created.email
            ),
            None => println!("deskd created the first admin: {}", created.email),
        }
    }
    if let Some(path) = &args.seed {
        seed_fixture(&store, path).await?;
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let config = Config {
        public_url: args.public_url,
        rate_limits: args.rate_limits == OnOff::On,
        account_rate_limit: args.account_rate_limit.0,
        profile_rate_limit: args.profile_rate_limit.0,
        auth_failure_limit: args.auth_failure_limit.0,
        incremental_rate_limit: args.incremental_rate_limit.0,
        anonymous_rate_limit: args.anonymous_rate_limit.0,
        password_verifications: args.password_verifications.max(1),
        password_wait: std::time::Duration::from_millis(500),
        bulk_import_default: args.bulk_import == OnOff::On,
        job_workers: args.job_workers.max(1),
        job_lease: std::time::Duration::from_secs(args.job_lease_secs.max(1)),
        job_retention: std::time::Duration::from_secs(args.job_retention_hours * 3600),
        header_timeout: std::time::Duration::from_secs(args.header_timeout_secs.max(1)),
        request_timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout_secs.max(1)),
        max_connections: args.max_connections.max(1),
        shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace_secs),
        read_timeout: std::time::Duration::from_millis(args.read_timeout_ms.max(1)),
        body_budget: args.body_budget_mib.max(1) * 1024 * 1024,
        test_mode: args.test_mode,
        metrics: match args.metrics {
            MetricsAccess::Admin => deskd_server::metrics::Access::Admin,
            MetricsAccess::Open => deskd_server::metrics::Access::Open,
            MetricsAccess::Off => deskd_server::metrics::Access::Off,
        },
        drain_delay: std::time::Duration::from_secs(args.drain_delay_secs),
    };
    let grace = args.shutdown_grace_secs;
    let test_mode = config.test_mode;
    let public_url = config.public_url.clone();
    let state = AppState::new(store, config, local);
    println!("deskd listening on http://{local}");
    if args.print_env {
        println!(
            "{}",
            env_line(
                local,
                public_url.as_deref(),
                &env_email,
                env_token.as_deref()
            )
        );
    }
    if test_mode {
        tracing::warn!(
            "test mode is on: /__deskd/ can erase every user; never use it on real data"
        );
    }
    deskd_server::run(state, listener, shutdown_signal(grace))
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("deskd stopped");
    Ok(())
}

/// `--seed FILE`: the fixture loaded as `POST /__deskd/import` would, or why not.
async fn seed_fixture(store: &Store, path: &std::path::Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--seed {}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("--seed {}: not JSON: {e}", path.display()))?;
    let done = deskd_server::testmode::load_fixture(store, std::sync::Arc::new(doc))
        .await
        .map_err(|e| format!("--seed {}: {e}", path.display()))?
        .map_err(|e| format!("--seed {}: {}", path.display(), e.sentence()))?;
    tracing::info!(
        users = done.users,
        organizations = done.organizations,
        memberships = done.memberships,
        "seeded the account from {}",
        path.display()
    );
    Ok(())
}

async fn token(database: &str, action: TokenAction) -> Result<(), String> {
    use deskd_store::credentials;
    let store = Store::open(&StoreOptions::new(database))
        .await
        .map_err(|e| format!("cannot open {}: {e}", redact(database)))?;
    let result = match action {
        TokenAction::Create { description } => {
            let secret = deskd_server::auth::new_secret();
            let digest = deskd_server::auth::digest(&secret);
            let now = deskd_model::time::now();
            let id = store
                .write(move |conn| {
                    let (digest, description) = (digest.clone(), description.clone());
                    Box::pin(async move {
                        credentials::insert_api_token(conn, &digest, &description, now).await
                    })
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("{id}\t{secret}");
            Ok(())
        }
        TokenAction::List => {
            let mut conn = store.reader().await.map_err(|e| e.to_string())?;
            for t in credentials::list_api_tokens(&mut conn)
                .await
                .map_err(|e| e.to_string())?
            {
                println!(
                    "{}\t{}\t{}",
                    t.id,
                    deskd_model::time::iso(t.created_at),
                    t.description.unwrap_or_default()
                );
            }
            Ok(())
        }
        TokenAction::Revoke { id } => {
            let gone = store
                .write(move |conn| {
                    Box::pin(async move { credentials::revoke_api_token(conn, id).await })
                })
                .await
                .map_err(|e| e.to_string())?;
            if gone {
                Ok(())
            } else {
                Err(format!("no token with id {id}"))
            }
        }
    };
    store.close().await;
    result
}

/// `ZENDESK_URL=http://127.0.0.1:PORT ZENDESK_EMAIL=... ZENDESK_TOKEN=...`, quoted for a POSIX
/// shell. The token is known when it was given or generated now; an admin made by an earlier run
/// keeps its token secret, and the line then has no `ZENDESK_TOKEN`.
fn env_line(
    local: SocketAddr,
    public_url: Option<&str>,
    email: &str,
    token: Option<&str>,
) -> String {
    let url = match public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let mut addr = local;
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}")
        }
    };
    let mut line = format!("ZENDESK_URL={} ZENDESK_EMAIL={}", quote(&url), quote(email));
    match token {
        Some(t) => {
            line.push_str(" ZENDESK_TOKEN=");
            line.push_str(&quote(t));
        }
        None => eprintln!(
            "deskd: --print-env: the admin existed before this run, so its API token is unknown; give --admin-token"
        ),
    }
    line
}

/// `s` as one word of a POSIX shell.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal(grace_secs: u64) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!(
        grace_secs,
        "shutting down: finishing in-flight requests (connections still open after the grace are closed)"
    );
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
