//! deskd as a test double, as a user's suite starts it: `deskd serve --test-mode` with
//! `--seed FILE` (a fixture loaded before listening, on SQLite and PostgreSQL) and
//! `--test-seed N` (the same requests get byte-identical responses, headers included).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

struct Served {
    child: Child,
    addr: String,
    /// What stdout printed up to the listening line (and the env line, when asked).
    lines: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const EMAIL: &str = "admin@double.test";
const TOKEN: &str = "double-token-0123456789";

fn command(db: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskd"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        db,
        "--test-mode",
    ])
    .args(extra)
    .env_remove("DESKD_ADMIN_EMAIL")
    .env_remove("DESKD_ADMIN_TOKEN")
    .env_remove("DESKD_ADMIN_PASSWORD")
    .env_remove("DESKD_SEED")
    .env_remove("DESKD_TEST_SEED")
    .env("DESKD_RATE_LIMITS", "off")
    .env("DESKD_LOG", "warn");
    cmd
}

/// Starts deskd and reads stdout up to the line starting with `until`.
fn serve(mut cmd: Command, until: &str) -> Served {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn deskd");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    let mut addr = None;
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read stdout") == 0 {
            panic!("deskd exited early; printed {lines:?}");
        }
        let line = line.trim_end().to_owned();
        if let Some(a) = line.strip_prefix("deskd listening on http://") {
            addr = Some(a.to_owned());
        }
        let done = line.starts_with(until);
        lines.push(line);
        if done {
            let addr = addr.expect("the listening line");
            return Served { child, addr, lines };
        }
    }
}

fn with_admin(db: &str, extra: &[&str]) -> Served {
    let mut cmd = command(db, extra);
    cmd.env("DESKD_ADMIN_EMAIL", EMAIL)
        .env("DESKD_ADMIN_TOKEN", TOKEN);
    serve(cmd, "deskd listening on")
}

/// One HTTP/1.1 exchange; the whole response as sent (status line, headers, body).
fn http(addr: &str, method: &str, path: &str, auth: &str, body: Option<&Value>) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: deskd\r\nConnection: close\r\nAccept: application/json\r\n\
         Authorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn body(resp: &str) -> Value {
    resp.split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}

fn basic(user: &str, secret: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{secret}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn admin() -> String {
    basic(&format!("{EMAIL}/token"), TOKEN)
}

fn fixture() -> Value {
    json!({
        "deskd_fixture": 1,
        "user_fields": [{"type": "text", "key": "plan", "title": "Plan"}],
        "organizations": [{"id": 900, "name": "Seeded Org", "tags": ["seed"]}],
        "users": [
            {"id": 1000, "name": "Seeded Agent", "role": "agent", "organization_id": 900,
             "identities": [{"type": "email", "value": "agent@seeded.test", "verified": true}]},
            {"name": "Seeded End", "email": "end@seeded.test", "user_fields": {"plan": "gold"}},
        ],
    })
}

/// `--seed FILE` on `db`: the fixture is there before the first request, and the admin's
/// credentials work.
fn seed_loads_at_start(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fixture.json");
    std::fs::write(&file, fixture().to_string()).unwrap();
    let served = with_admin(db, &["--seed", file.to_str().unwrap()]);
    let r = http(&served.addr, "GET", "/api/v2/users/1000", &admin(), None);
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(body(&r)["user"]["email"], "agent@seeded.test");
    assert_eq!(body(&r)["user"]["organization_id"], 900);
    let r = http(&served.addr, "GET", "/api/v2/users/count", &admin(), None);
    assert_eq!(body(&r)["count"]["value"], 3, "{r}");
    let r = http(
        &served.addr,
        "GET",
        "/api/v2/users/search?query=end@seeded.test",
        &admin(),
        None,
    );
    assert_eq!(body(&r)["users"][0]["user_fields"]["plan"], "gold", "{r}");
    // The export is the fixture, filled in.
    let r = http(&served.addr, "GET", "/__deskd/export", &admin(), None);
    assert_eq!(body(&r)["organizations"][0]["tags"], json!(["seed"]), "{r}");
}

#[test]
fn seed_loads_a_fixture_at_start_on_sqlite() {
    seed_loads_at_start("memory");
}

#[test]
fn seed_loads_a_fixture_at_start_on_postgres() {
    let base = std::env::var("DESKD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("deskd_seed_{}", std::process::id());
    let psql = |sql: &str| {
        let ok = Command::new("psql")
            .args([base.as_str(), "-qc", sql])
            .status()
            .expect("psql");
        assert!(ok.success(), "{sql}");
    };
    psql(&format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let result = std::panic::catch_unwind(|| seed_loads_at_start(&url));
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// A refused fixture stops deskd before it listens, naming the value at fault; so do the
/// test-mode flags without `--test-mode`.
#[test]
fn a_bad_seed_or_a_seed_without_test_mode_stops_deskd() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, r#"{"users": [{"name": "X", "email": "nope"}]}"#).unwrap();
    let out = command("memory", &["--seed", file.to_str().unwrap()])
        .output()
        .expect("run deskd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/users/0/email"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    std::fs::write(&file, "{not json").unwrap();
    let out = command("memory", &["--seed", file.to_str().unwrap()])
        .output()
        .expect("run deskd");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not JSON"));
    for flags in [["--seed", "x.json"], ["--test-seed", "1"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_deskd"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database", "memory"])
            .args(flags)
            .env_remove("DESKD_TEST_MODE")
            .output()
            .expect("run deskd");
        assert!(!out.status.success(), "{flags:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--test-mode"),
            "{flags:?}"
        );
    }
}

/// A session against a `--test-seed` server with a generated admin token: every response as
/// sent, the token line included.
fn seeded_session(seed: &str) -> Vec<String> {
    let served = serve(
        command("memory", &["--test-seed", seed, "--print-env"]),
        "ZENDESK_URL=",
    );
    let env = served.lines.last().unwrap().clone();
    let token = env
        .split(' ')
        .find_map(|w| w.strip_prefix("ZENDESK_TOKEN="))
        .expect("a token")
        .to_owned();
    let auth = basic("admin@deskd.local/token", &token);
    let a = served.addr.clone();
    let mut out = vec![env.replace(&a, "ADDR")];
    let mut call = |method: &str, path: &str, b: Option<Value>| {
        let r = http(&a, method, path, &auth, b.as_ref());
        // The address is the one thing a run cannot choose (port 0).
        out.push(r.replace(&a, "ADDR"));
        r
    };
    call(
        "POST",
        "/api/v2/users",
        Some(json!({"user": {"name": "Ann", "email": "ann@example.org"}})),
    );
    call(
        "POST",
        "/api/v2/organizations",
        Some(json!({"organization": {"name": "Acme"}})),
    );
    call(
        "PUT",
        "/api/v2/users/360000000002",
        Some(json!({"user": {"notes": "hello", "tags": ["a"]}})),
    );
    call("GET", "/api/v2/users?page[size]=10", None);
    call("POST", "/__deskd/jobs/hold", None);
    let job = call(
        "POST",
        "/api/v2/users/create_many",
        Some(json!({"users": [{"name": "B", "email": "b@example.org"}, {"name": "C"}]})),
    );
    let id = body(&job)["job_status"]["id"].as_str().unwrap().to_owned();
    call("POST", "/__deskd/jobs/step", Some(json!({"items": 2})));
    call("GET", &format!("/api/v2/job_statuses/{id}"), None);
    call(
        "POST",
        "/api/v2/api_tokens",
        Some(json!({"api_token": {"description": "ci"}})),
    );
    call("GET", "/api/v2/incremental/users?start_time=0", None);
    call("GET", "/api/v2/nope", None);
    call("GET", "/__deskd/requests?path=/api/v2/nope", None);
    out
}

#[test]
fn the_same_test_seed_gives_byte_identical_responses() {
    let first = seeded_session("7");
    let second = seeded_session("7");
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a, b, "a response differed between two runs");
    }
    // Timestamps follow the seeded clock, and the Date header with them.
    assert!(first[1].contains("2024-01-01T00:00:01Z"), "{}", first[1]);
    assert!(
        first[1].contains("date: Mon, 01 Jan 2024 00:00:01 GMT"),
        "{}",
        first[1]
    );
    // Another seed draws other tokens and job ids.
    let other = seeded_session("8");
    assert_ne!(first[0], other[0]);
    assert_ne!(first[6], other[6]);
}
