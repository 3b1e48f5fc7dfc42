//! `deskd import`: bulk-sync users from CSV or JSON Lines into any Zendesk-compatible endpoint,
//! 100 a request through create_or_update_many, several jobs in flight, resumable.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskd_client::{Auth, Client, JobStatus};
use deskd_model::import::{
    BATCH, FailureWriter, ItemResult, Outcome, Row, Source, csv_header, is_csv, outcome, read_rows,
    validate,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Jobs an account may have queued or working at once (Zendesk's cap).
const MAX_IN_FLIGHT: usize = 30;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// CSV (header row) or JSON Lines (one user object a line); `-` reads stdin.
    file: String,
    /// deskd's address (`http://127.0.0.1:8080`) or Zendesk's (`https://SUB.zendesk.com`).
    #[arg(long, env = "DESKD_URL")]
    url: String,
    #[arg(long, env = "DESKD_EMAIL")]
    email: Option<String>,
    #[arg(long, env = "DESKD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, env = "DESKD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[arg(long, env = "DESKD_BEARER", hide_env_values = true)]
    bearer: Option<String>,
    /// `csv` or `jsonl`; guessed from the file name, else from the first character.
    #[arg(long)]
    format: Option<String>,
    /// Jobs in flight at once (at most 30, the account's cap).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Validate every row locally and report; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where finished batches are recorded (default: FILE.import-state).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Where failed rows are written, with their error (default: FILE.failures.csv|jsonl).
    #[arg(long)]
    failures: Option<PathBuf>,
}

pub async fn run(args: ImportArgs) -> Result<(), String> {
    // The file is read twice, streaming (validation, then import), so stdin is kept in a
    // temporary file; memory holds only the batches in flight.
    let (path, _stdin_copy) = input_path(&args.file)?;
    let source = FileSource(path.clone());
    let is_csv =
        is_csv(args.format.as_deref(), &args.file, &source).map_err(|e| format!("--{e}"))?;
    let header = if is_csv {
        Some(csv_header(&source)?)
    } else {
        None
    };
    let (row_count, problems) = validate(&source, header.as_deref())?;
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        return Err(format!(
            "{} invalid row(s); nothing was sent",
            problems.len()
        ));
    }
    let total_batches = row_count.div_ceil(BATCH);
    if args.dry_run {
        println!(
            "{row_count} rows are valid ({total_batches} batches); nothing was sent (--dry-run)"
        );
        return Ok(());
    }
    let client = Client::new(&args.url, auth(&args)?).map_err(|e| e.to_string())?;
    let fingerprint = fingerprint(&path)?;
    let base = if args.file == "-" {
        PathBuf::from("deskd-import")
    } else {
        PathBuf::from(&args.file)
    };
    let state_path = args
        .state
        .clone()
        .unwrap_or_else(|| with_suffix(&base, ".import-state"));
    let ext = if is_csv {
        ".failures.csv"
    } else {
        ".failures.jsonl"
    };
    let failures_path = args
        .failures
        .clone()
        .unwrap_or_else(|| with_suffix(&base, ext));
    let done = load_state(&state_path, &fingerprint)?;
    if !done.is_empty() {
        println!(
            "resuming: {} of {total_batches} batches were finished before",
            done.len()
        );
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(open_append(&state_path)?),
        failures: Mutex::new(failures_writer(
            &failures_path,
            header.as_deref(),
            done.is_empty(),
        )?),
        tally: Mutex::new(Tally::default()),
    });
    let pending_rows = (0..total_batches)
        .filter(|i| !done.contains(i))
        .map(|i| ((i + 1) * BATCH).min(row_count) - i * BATCH)
        .sum::<usize>();
    let progress = Progress::new(pending_rows as u64);
    let started = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(
        args.concurrency.clamp(1, MAX_IN_FLIGHT),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    let mut errors = Vec::new();
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut index = 0usize;
    let mut rows = read_rows(&source, header.as_deref())?;
    loop {
        let next = rows.next().transpose()?;
        if let Some(row) = next {
            batch.push(row);
            if batch.len() < BATCH {
                continue;
            }
        }
        if batch.is_empty() {
            break;
        }
        let this = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
        let i = index;
        index += 1;
        if done.contains(&i) {
            continue;
        }
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (client, shared, progress, fingerprint) = (
            client.clone(),
            shared.clone(),
            progress.clone(),
            fingerprint.clone(),
        );
        tasks.spawn(async move {
            let result = import_batch(&client, i, &this, &fingerprint, &shared).await;
            progress.advance(this.len() as u64);
            drop(permit);
            result
        });
        // Reap finished batches as we go: memory holds only the ones in flight.
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done.map_err(|e| e.to_string()).and_then(|r| r) {
                errors.push(e);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.map_err(|e| e.to_string()).and_then(|r| r) {
            errors.push(e);
        }
    }
    progress.finish();
    let t = shared.tally.lock().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "imported in {elapsed:.1} s: {} created, {} updated, {} failed{}",
        t.created,
        t.updated,
        t.failed,
        if t.failed > 0 {
            format!(" (rows in {})", failures_path.display())
        } else {
            String::new()
        }
    );
    if !errors.is_empty() {
        return Err(format!(
            "{} batch(es) did not finish: {}; run the same command again to resume",
            errors.len(),
            errors[0]
        ));
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    created: u64,
    updated: u64,
    failed: u64,
}

struct Shared {
    state: Mutex<std::fs::File>,
    failures: Mutex<FailureWriter<std::fs::File>>,
    tally: Mutex<Tally>,
}

async fn import_batch(
    client: &Client,
    index: usize,
    batch: &[Row],
    fingerprint: &str,
    shared: &Shared,
) -> Result<(), String> {
    let users: Vec<Value> = batch
        .iter()
        .map(|r| Value::Object(r.user.clone()))
        .collect();
    // The same batch of the same file always carries the same key: a resubmission after a crash
    // or a lost answer finds the first job instead of making a second.
    let key = format!("deskd-import-{fingerprint}-{index}");
    let job = client
        .create_or_update_many(&users, Some(&key))
        .await
        .map_err(|e| format!("batch {index}: {e}"))?;
    let job = client
        .wait_for_job(
            &job.id,
            Duration::from_millis(250),
            Duration::from_secs(3600),
        )
        .await
        .map_err(|e| format!("batch {index}: {e}"))?;
    record(index, batch, &job, fingerprint, shared)
}

fn record(
    index: usize,
    batch: &[Row],
    job: &JobStatus,
    fingerprint: &str,
    shared: &Shared,
) -> Result<(), String> {
    let results = job.results.clone().unwrap_or_default();
    let (mut created, mut updated, mut failed) = (0u64, 0u64, 0u64);
    {
        let mut failures = shared.failures.lock().map_err(|e| e.to_string())?;
        let results: Vec<ItemResult> = results
            .iter()
            .map(|r| ItemResult {
                index: r.index,
                status: r.status.clone(),
                error: r.error.clone(),
                details: r.details.clone(),
            })
            .collect();
        for (i, row) in batch.iter().enumerate() {
            match outcome(&results, i) {
                Outcome::Created => created += 1,
                Outcome::Updated => updated += 1,
                Outcome::Failed(error) => {
                    failed += 1;
                    failures.write(row, &error)?;
                }
            }
        }
        failures.flush()?;
    }
    let mut state = shared.state.lock().map_err(|e| e.to_string())?;
    let line = json!({"fingerprint": fingerprint, "batch": index, "created": created, "updated": updated, "failed": failed});
    writeln!(state, "{line}")
        .and_then(|_| state.flush())
        .map_err(|e| e.to_string())?;
    let mut t = shared.tally.lock().map_err(|e| e.to_string())?;
    t.created += created;
    t.updated += updated;
    t.failed += failed;
    Ok(())
}

fn auth(args: &ImportArgs) -> Result<Auth, String> {
    match (&args.email, &args.token, &args.password, &args.bearer) {
        (_, _, _, Some(b)) => Ok(Auth::Bearer(b.clone())),
        (Some(e), Some(t), _, _) => Ok(Auth::Token {
            email: e.clone(),
            token: t.clone(),
        }),
        (Some(e), None, Some(p), _) => Ok(Auth::Password {
            email: e.clone(),
            password: p.clone(),
        }),
        _ => Err("give --email with --token or --password, or --bearer".into()),
    }
}

/// The file to read; stdin is first copied to a temporary file (kept alive by the second value).
fn input_path(file: &str) -> Result<(PathBuf, Option<TempCopy>), String> {
    if file != "-" {
        return Ok((PathBuf::from(file), None));
    }
    let path = std::env::temp_dir().join(format!("deskd-import-stdin-{}", std::process::id()));
    let mut out = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::copy(&mut std::io::stdin().lock(), &mut out).map_err(|e| format!("stdin: {e}"))?;
    Ok((path.clone(), Some(TempCopy(path))))
}

struct TempCopy(PathBuf);

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn open(path: &PathBuf) -> Result<std::fs::File, String> {
    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The import file, opened afresh for each pass over it.
struct FileSource(PathBuf);

impl Source for FileSource {
    fn open(&self) -> Result<Box<dyn std::io::Read>, String> {
        Ok(Box::new(open(&self.0)?))
    }
}

/// The failures file: created for a fresh import, appended to when resuming.
fn failures_writer(
    path: &PathBuf,
    header: Option<&[String]>,
    fresh: bool,
) -> Result<FailureWriter<std::fs::File>, String> {
    let exists = path.exists() && !fresh;
    let file = if fresh {
        std::fs::File::create(path)
    } else {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    FailureWriter::new(file, header, !exists)
}

/// A hex SHA-256 prefix of the file: the same file resumes the same import.
fn fingerprint(path: &PathBuf) -> Result<String, String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut open(path)?, &mut hasher).map_err(|e| e.to_string())?;
    Ok(hex(&hasher.finalize())[..24].to_owned())
}

fn load_state(path: &PathBuf, fingerprint: &str) -> Result<HashSet<usize>, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(HashSet::new());
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fingerprint"] == fingerprint)
        .filter_map(|v| v["batch"].as_u64().map(|b| b as usize))
        .collect())
}

fn open_append(path: &PathBuf) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn with_suffix(base: &PathBuf, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A progress bar with users/s and ETA on a terminal; plain lines otherwise.
#[derive(Clone)]
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: Arc<Mutex<(u64, Instant)>>,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} users  {per_sec}  eta {eta}",
            ) {
                b.set_style(style);
            }
            b
        });
        Progress {
            bar,
            total,
            done: Arc::new(Mutex::new((0, Instant::now()))),
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
            return;
        }
        if let Ok(mut d) = self.done.lock() {
            d.0 += n;
            let rate = d.0 as f64 / d.1.elapsed().as_secs_f64().max(0.001);
            eprintln!("{}/{} users, {rate:.0} users/s", d.0, self.total);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
