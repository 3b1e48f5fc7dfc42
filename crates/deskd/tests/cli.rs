//! The command-line contract: `deskd serve` as a user (and tools outside the repo) run it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "../../deskd-store/tests/support/private_pg.rs"]
mod private_pg;

struct Served {
    child: Child,
    addr: String,
    lines: Vec<String>,
}

/// Starts `deskd serve` on port 0 and reads stdout up to the `deskd listening on` line.
fn serve(db: &str, envs: &[(&str, &str)]) -> Served {
    serve_logging(db, envs, Stdio::null())
}

/// [`serve`], with the server's log (stderr) going to `log`.
fn serve_logging(db: &str, envs: &[(&str, &str)], log: impl Into<Stdio>) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskd"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", db])
        .env_remove("DESKD_ADMIN_EMAIL")
        .env_remove("DESKD_ADMIN_TOKEN")
        .env_remove("DESKD_ADMIN_PASSWORD")
        .env("DESKD_RATE_LIMITS", "off")
        .stdout(Stdio::piped())
        .stderr(log);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn deskd");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read stdout") == 0 {
            panic!("deskd exited before listening; printed {lines:?}");
        }
        let line = line.trim_end().to_owned();
        if let Some(addr) = line.strip_prefix("deskd listening on http://") {
            let addr = addr.to_owned();
            lines.push(line);
            return Served { child, addr, lines };
        }
        lines.push(line);
    }
}

/// A minimal HTTP/1.1 exchange, so this test needs no client library.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: Basic {a}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

fn basic(user: &str, secret: &str) -> String {
    // Base64 without a dependency: small and only for the test.
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
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn terminate(mut s: Served) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    s.child.wait().expect("wait")
}

#[test]
fn serve_prints_generated_admin_token_and_answers_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/deskd.db", dir.path().display());
    let s = serve(&db, &[]);
    let created = s
        .lines
        .iter()
        .find(|l| l.contains("API token"))
        .expect("credentials printed");
    let token = created
        .split("API token ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let auth = basic("admin@deskd.local/token", &token);
    let (status, _) = http(&s.addr, "GET", "/healthz", None, None);
    assert_eq!(status, 200);
    let body = r#"{"user": {"name": "Cli User", "email": "cli@example.org"}}"#;
    let (status, resp) = http(
        &s.addr,
        "POST",
        "/api/v2/users/create_or_update",
        Some(&auth),
        Some(body),
    );
    assert_eq!(status, 201, "{resp}");
    assert!(
        resp.to_lowercase()
            .contains(&format!("location: http://{}/api/v2/users/", s.addr))
    );
    let (status, _) = http(
        &s.addr,
        "POST",
        "/api/v2/users/create_or_update.json",
        Some(&auth),
        Some(body),
    );
    assert_eq!(status, 200);
    assert!(terminate(s).success(), "SIGTERM exits 0");

    // A second start on the same database: the admin exists, nothing is printed again.
    let s = serve(&db, &[]);
    assert!(
        !s.lines.iter().any(|l| l.contains("API token")),
        "{:?}",
        s.lines
    );
    let (status, _) = http(&s.addr, "GET", "/api/v2/users/me", Some(&auth), None);
    assert_eq!(status, 200);
    assert!(terminate(s).success());
}

#[test]
fn serve_takes_admin_credentials_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/deskd.db", dir.path().display());
    let s = serve(
        &db,
        &[
            ("DESKD_ADMIN_EMAIL", "boss@example.org"),
            ("DESKD_ADMIN_TOKEN", "env-token-123"),
            ("DESKD_ADMIN_PASSWORD", "env password"),
        ],
    );
    assert!(
        !s.lines.iter().any(|l| l.contains("env-token-123")),
        "a given secret is never printed"
    );
    let (status, resp) = http(
        &s.addr,
        "GET",
        "/api/v2/users/me.json",
        Some(&basic("boss@example.org/token", "env-token-123")),
        None,
    );
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains(r#""role":"admin""#));
    let (status, _) = http(
        &s.addr,
        "GET",
        "/api/v2/users/me.json",
        Some(&basic("boss@example.org", "env password")),
        None,
    );
    assert_eq!(status, 200);
    assert!(terminate(s).success());
}

#[test]
fn bad_database_url_fails_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_deskd"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "mysql://nope",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database url"));
}

/// The JSON body of an HTTP response.
fn json_body(resp: &str) -> String {
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn field<'a>(body: &'a str, key: &str) -> Vec<&'a str> {
    // Values of `"key":"..."` (strings) in a compact JSON text; enough for ids and statuses.
    body.match_indices(&format!("\"{key}\":\""))
        .map(|(i, m)| {
            let rest = &body[i + m.len()..];
            &rest[..rest.find('"').unwrap_or(0)]
        })
        .collect()
}

/// A job accepted with 200 reaches `completed` across a SIGKILL and a restart, and every user
/// exists exactly once.
fn jobs_survive_sigkill(db: &str) {
    let token = "kill-test-token";
    let env = [
        ("DESKD_ADMIN_EMAIL", "admin@example.org"),
        ("DESKD_ADMIN_TOKEN", token),
        ("DESKD_JOB_WORKERS", "1"),
        ("DESKD_JOB_LEASE_SECS", "2"),
    ];
    let auth = basic("admin@example.org/token", token);
    let s = serve(db, &env);
    let mut job_ids = Vec::new();
    for j in 0..30 {
        let users: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"name":"K {j}-{i}","email":"k{j}-{i}@example.org","external_id":"k-{j}-{i}"}}"#))
            .collect();
        let body = format!(r#"{{"users":[{}]}}"#, users.join(","));
        let (status, resp) = http(
            &s.addr,
            "POST",
            "/api/v2/users/create_or_update_many.json",
            Some(&auth),
            Some(&body),
        );
        assert_eq!(status, 200, "{resp}");
        job_ids.push(field(&json_body(&resp), "id")[0].to_owned());
    }
    // Kill as soon as the worker has committed something: the rest is mid-way or queued.
    loop {
        let (_, resp) = http(
            &s.addr,
            "GET",
            &format!("/api/v2/job_statuses/{}.json", job_ids[0]),
            Some(&auth),
            None,
        );
        if !resp.contains(r#""progress":null"#) && !resp.contains(r#""progress":0,"#) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut s = s;
    s.child.kill().expect("SIGKILL");
    s.child.wait().unwrap();
    let last = http_once_down(&s.addr);
    assert!(last, "the server is gone");

    let s = serve(db, &env);
    let ids = job_ids.join(",");
    let (_, first) = http(
        &s.addr,
        "GET",
        &format!("/api/v2/job_statuses/show_many.json?ids={ids}"),
        Some(&auth),
        None,
    );
    let finished_before_kill = field(&json_body(&first), "status")
        .iter()
        .filter(|st| **st == "completed")
        .count();
    assert!(
        finished_before_kill < 30,
        "the kill came while jobs were still running"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let body = loop {
        let (status, resp) = http(
            &s.addr,
            "GET",
            &format!("/api/v2/job_statuses/show_many.json?ids={ids}"),
            Some(&auth),
            None,
        );
        assert_eq!(status, 200);
        let body = json_body(&resp);
        if field(&body, "status")
            .iter()
            .filter(|st| **st == "completed")
            .count()
            == 30
        {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jobs did not complete after restart: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let created = field(&body, "status")
        .iter()
        .filter(|st| **st == "Created")
        .count();
    assert_eq!(created, 3000, "every item created exactly once");
    assert!(!body.contains(r#""error""#), "no failed items");
    // Each external id names one user: a second import of one job updates, never creates.
    let users: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"external_id":"k-7-{i}","notes":"again"}}"#))
        .collect();
    let (_, resp) = http(
        &s.addr,
        "POST",
        "/api/v2/users/create_or_update_many",
        Some(&auth),
        Some(&format!(r#"{{"users":[{}]}}"#, users.join(","))),
    );
    let again = field(&json_body(&resp), "id")[0].to_owned();
    loop {
        let (_, resp) = http(
            &s.addr,
            "GET",
            &format!("/api/v2/job_statuses/{again}"),
            Some(&auth),
            None,
        );
        let body = json_body(&resp);
        if body.contains(r#""status":"completed""#) {
            assert_eq!(
                field(&body, "status")
                    .iter()
                    .filter(|st| **st == "Updated")
                    .count(),
                100,
                "{body}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(terminate(s).success());
}

fn http_once_down(addr: &str) -> bool {
    TcpStream::connect(addr).is_err()
}

#[test]
fn jobs_survive_sigkill_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    jobs_survive_sigkill(&format!("sqlite://{}/deskd.db", dir.path().display()));
}

#[test]
fn jobs_survive_sigkill_on_postgres() {
    with_pg_schema("deskd_kill", |pg| jobs_survive_sigkill(&pg.url));
}

/// A schema of its own on the test PostgreSQL, for one test: `url` points the server at it.
struct PgSchema {
    base: String,
    schema: String,
    url: String,
}

impl PgSchema {
    /// Runs `sql` (on the schema when `on_schema`, else on the base database) and returns what it
    /// printed, unaligned.
    fn psql_at(&self, on_schema: bool, sql: &str) -> String {
        let url = if on_schema { &self.url } else { &self.base };
        let out = Command::new("psql")
            .args([url.as_str(), "-tAqc", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn psql(&self, sql: &str) -> String {
        self.psql_at(true, sql)
    }
}

/// Runs `test` on a fresh schema named `prefix` + this process's id, dropped afterwards whether
/// the test passed or not; skipped (as the suite skips its PostgreSQL half) without PostgreSQL.
fn with_pg_schema(prefix: &str, test: impl FnOnce(&PgSchema) + std::panic::UnwindSafe) {
    let Some(base) = private_pg::pg_url() else {
        return;
    };
    let schema = format!("{prefix}_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let pg = PgSchema { base, schema, url };
    pg.psql_at(false, &format!("CREATE SCHEMA {}", pg.schema));
    let result = std::panic::catch_unwind(|| test(&pg));
    pg.psql_at(false, &format!("DROP SCHEMA {} CASCADE", pg.schema));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// A 500 logs its whole cause chain, as one JSON line inside the request's span (its id, method
/// and path), and the client gets only the opaque body. The fault is real: a column the server
/// reads is renamed under it, so PostgreSQL's own error is the innermost cause.
#[test]
fn an_internal_error_logs_its_cause_chain_in_the_request_span() {
    with_pg_schema("deskd_cause", |pg| {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("deskd.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let s = serve_logging(
            &pg.url,
            &[
                ("DESKD_ADMIN_EMAIL", "boss@example.org"),
                ("DESKD_ADMIN_TOKEN", "cause-token-1"),
                ("DESKD_LOG_FORMAT", "json"),
                ("DESKD_LOG", "info"),
            ],
            log,
        );
        let auth = basic("boss@example.org/token", "cause-token-1");
        let me = |id: &str| {
            let mut s = TcpStream::connect(&s.addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let req = format!(
                "GET /api/v2/users/me.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {auth}\r\nX-Request-Id: {id}\r\n\r\n"
            );
            s.write_all(req.as_bytes()).unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).unwrap();
            resp
        };
        assert!(me("before-the-fault").starts_with("HTTP/1.1 200"));
        pg.psql("ALTER TABLE custom_fields RENAME COLUMN type TO type_renamed");
        let resp = me("cause-chain-42");
        assert!(resp.starts_with("HTTP/1.1 500"), "{resp}");
        assert!(resp.contains(r#""error":"InternalError""#), "{resp}");
        assert!(
            !resp.contains("type_renamed") && !resp.contains("column"),
            "{resp}"
        );
        assert!(terminate(s).success());
        let log = std::fs::read_to_string(&log_path).unwrap();
        let line = log
            .lines()
            .find(|l| l.contains("internal error"))
            .unwrap_or_else(|| panic!("no internal error logged:\n{log}"));
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(line.contains(r#""request_id":"cause-chain-42""#), "{line}");
        assert!(line.contains(r#""path":"/api/v2/users/me.json""#), "{line}");
        assert!(line.contains(r#""level":"ERROR""#), "{line}");
        // The chain down to PostgreSQL's own words, not a flattened summary.
        assert!(
            line.contains(r#"column \"type\" does not exist"#)
                || line.contains("column type does not exist"),
            "{line}"
        );
        assert!(line.matches(": ").count() >= 1, "{line}");
    });
}

/// `deskd token create|list|revoke` on the database a server is running on: the new token works
/// there, and a revocation stops it within a moment.
#[test]
fn token_commands_work_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/deskd.db", dir.path().display());
    let s = serve(
        &db,
        &[
            ("DESKD_ADMIN_EMAIL", "admin@example.org"),
            ("DESKD_ADMIN_TOKEN", "first-token"),
        ],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_deskd"))
        .args(["token", "create", "--description", "ci", "--database", &db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let (id, secret) = line.trim().split_once('\t').unwrap();
    let auth = basic("admin@example.org/token", secret);
    assert_eq!(
        http(&s.addr, "GET", "/api/v2/users/me", Some(&auth), None).0,
        200
    );
    let list = Command::new(env!("CARGO_BIN_EXE_deskd"))
        .args(["token", "list", "--database", &db])
        .output()
        .unwrap();
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(
        listed.contains("\tci") && !listed.contains(secret),
        "{listed}"
    );
    let revoke = Command::new(env!("CARGO_BIN_EXE_deskd"))
        .args(["token", "revoke", id, "--database", &db])
        .status()
        .unwrap();
    assert!(revoke.success());
    let start = std::time::Instant::now();
    while http(&s.addr, "GET", "/api/v2/users/me", Some(&auth), None).0 != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the server still accepts the revoked token"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = Command::new(env!("CARGO_BIN_EXE_deskd"))
        .args(["token", "revoke", id, "--database", &db])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(terminate(s).success());
}

/// No secret appears in what deskd logs, at the most verbose level, across logins with every
/// kind of credential, failed logins, token creation and password changes.
#[test]
fn no_secret_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/deskd.db", dir.path().display());
    let log = dir.path().join("stderr.log");
    let token = "env-admin-token-s3cr3t";
    let password = "env admin password s3cr3t";
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskd"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .env("DESKD_LOG", "trace")
        .env("DESKD_ADMIN_EMAIL", "admin@example.org")
        .env("DESKD_ADMIN_TOKEN", token)
        .env("DESKD_ADMIN_PASSWORD", password)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stdout = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "deskd exited");
        stdout.push_str(&line);
        if let Some(a) = line.trim().strip_prefix("deskd listening on http://") {
            break a.to_owned();
        }
    };
    let admin = basic("admin@example.org/token", token);
    let (_, resp) = http(
        &addr,
        "POST",
        "/api/v2/api_tokens",
        Some(&admin),
        Some(r#"{"api_token": {"description": "x"}}"#),
    );
    let created = field(&json_body(&resp), "token")[0].to_owned();
    let new_password = "a brand new s3cr3t password";
    let (_, resp) = http(
        &addr,
        "POST",
        "/api/v2/users/create_or_update",
        Some(&admin),
        Some(r#"{"user": {"name": "A", "email": "a@example.org", "role": "agent"}}"#),
    );
    let uid = json_body(&resp)
        .split("\"id\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    http(
        &addr,
        "PUT",
        &format!("/api/v2/users/{uid}/password"),
        Some(&admin),
        Some(&format!(r#"{{"password": "{new_password}"}}"#)),
    );
    http(
        &addr,
        "GET",
        "/api/v2/users/me",
        Some(&basic("a@example.org", new_password)),
        None,
    );
    http(
        &addr,
        "GET",
        "/api/v2/users/me",
        Some(&basic("admin@example.org", password)),
        None,
    );
    http(
        &addr,
        "GET",
        "/api/v2/users/me",
        Some(&basic("admin@example.org/token", &created)),
        None,
    );
    http(
        &addr,
        "GET",
        "/api/v2/users/me",
        Some(&basic("admin@example.org/token", "wrong-s3cr3t-guess")),
        None,
    );
    http(
        &addr,
        "GET",
        "/api/v2/users/me",
        Some(&format!("x\r\nAuthorization: Bearer {created}")),
        None,
    );
    let (_, resp) = http(
        &addr,
        "POST",
        "/api/v2/oauth/tokens",
        Some(&admin),
        Some(r#"{"token": {"scopes": ["read"]}}"#),
    );
    let bearer = field(&json_body(&resp), "full_token")[0].to_owned();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let logged = std::fs::read_to_string(&log).unwrap() + &stdout;
    assert!(logged.len() > 1000, "trace logging produced output");
    for secret in [
        token,
        password,
        created.as_str(),
        new_password,
        "wrong-s3cr3t-guess",
        bearer.as_str(),
        &admin,
        &basic("admin@example.org", password),
    ] {
        assert!(!logged.contains(secret), "a secret was logged: {secret}");
    }
}

// ---- deskd import -------------------------------------------------------------------------

fn import_cmd(dir: &std::path::Path, addr: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskd"));
    cmd.current_dir(dir).arg("import").args(args).args([
        "--url",
        &format!("http://{addr}"),
        "--email",
        "admin@example.org",
        "--token",
        "imp-token",
    ]);
    cmd
}

fn user_count(addr: &str) -> i64 {
    let (_, resp) = http(
        addr,
        "GET",
        "/api/v2/users/count.json",
        Some(&basic("admin@example.org/token", "imp-token")),
        None,
    );
    let body = json_body(&resp);
    body.split("\"value\":")
        .nth(1)
        .unwrap()
        .trim_end_matches(['}', ' '])
        .parse()
        .unwrap()
}

fn import_server(dir: &std::path::Path, extra: &[(&str, &str)]) -> Served {
    let db = format!("sqlite://{}/deskd.db", dir.display());
    let mut env = vec![
        ("DESKD_ADMIN_EMAIL", "admin@example.org"),
        ("DESKD_ADMIN_TOKEN", "imp-token"),
    ];
    env.extend_from_slice(extra);
    serve(&db, &env)
}

fn write_csv(path: &std::path::Path, rows: usize, tag: &str) {
    let mut text = String::from("name,email,external_id,role,organization,tags,user_fields.plan\n");
    for i in 0..rows {
        text.push_str(&format!(
            "User {i},{tag}{i}@example.org,{tag}-{i},end-user,Org {},vip;new,gold\n",
            i % 3
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn import_csv_and_jsonl_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let s = import_server(dir.path(), &[]);
    write_csv(&dir.path().join("users.csv"), 250, "csv");
    let out = import_cmd(dir.path(), &s.addr, &["users.csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250 created, 0 updated, 0 failed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(user_count(&s.addr), 251);
    // JSON Lines on stdin, updating ten of them and adding five.
    let mut lines = String::new();
    for i in 0..10 {
        lines.push_str(&format!(
            "{{\"name\": \"Renamed {i}\", \"external_id\": \"csv-{i}\"}}\n"
        ));
    }
    for i in 0..5 {
        lines.push_str(&format!(
            "{{\"name\": \"J {i}\", \"email\": \"json{i}@example.org\", \"tags\": [\"x\"]}}\n"
        ));
    }
    let mut child = import_cmd(dir.path(), &s.addr, &["-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5 created, 10 updated, 0 failed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(user_count(&s.addr), 256);
    assert!(terminate(s).success());
}

#[test]
fn import_reports_bad_rows_with_line_numbers_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = import_server(dir.path(), &[]);
    let csv = "name,email,external_id\nGood,good@example.org,g1\n,noname@example.org,g2\nBad,not-an-email,g3\nDup,good@example.org,g4\nNothing,,\n";
    std::fs::write(dir.path().join("bad.csv"), csv).unwrap();
    for args in [vec!["bad.csv"], vec!["bad.csv", "--dry-run"]] {
        let out = import_cmd(dir.path(), &s.addr, &args).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        for expected in [
            "line 3: name is missing",
            "line 4: email not-an-email is not properly formatted",
            "line 5: email good@example.org is also on line 2",
            "line 6: give an email or an external_id",
        ] {
            assert!(err.contains(expected), "{expected:?} in {err}");
        }
    }
    assert_eq!(user_count(&s.addr), 1, "nothing was sent");
    std::fs::write(dir.path().join("ok.csv"), "name,email\nA,a@example.org\n").unwrap();
    let out = import_cmd(dir.path(), &s.addr, &["ok.csv", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(user_count(&s.addr), 1, "a dry run sends nothing");
    assert!(terminate(s).success());
}

#[test]
fn import_writes_server_side_failures_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = import_server(dir.path(), &[]);
    let auth = basic("admin@example.org/token", "imp-token");
    http(
        &s.addr,
        "POST",
        "/api/v2/users/create_or_update",
        Some(&auth),
        Some(r#"{"user": {"name": "Owner", "email": "owner@example.org"}}"#),
    );
    http(
        &s.addr,
        "POST",
        "/api/v2/users/create_or_update",
        Some(&auth),
        Some(r#"{"user": {"name": "Ext", "external_id": "taken"}}"#),
    );
    std::fs::write(
        dir.path().join("f.csv"),
        "name,email,external_id\nFine,fine@example.org,f1\nClash,owner@example.org,taken\n",
    )
    .unwrap();
    let out = import_cmd(dir.path(), &s.addr, &["f.csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 created, 0 updated, 1 failed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let failures = std::fs::read_to_string(dir.path().join("f.csv.failures.csv")).unwrap();
    assert!(
        failures.starts_with("name,email,external_id,error\n"),
        "{failures}"
    );
    assert!(failures.contains("Clash,owner@example.org,taken,DuplicateValue: Email: owner@example.org is already being used by another user"), "{failures}");
    assert!(terminate(s).success());
}

#[test]
fn an_interrupted_import_resumes_without_resubmitting() {
    let dir = tempfile::tempdir().unwrap();
    let s = import_server(dir.path(), &[("DESKD_JOB_WORKERS", "1")]);
    write_csv(&dir.path().join("big.csv"), 3000, "big");
    let mut child = import_cmd(dir.path(), &s.addr, &["big.csv", "--concurrency", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = dir.path().join("big.csv.import-state");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&state)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 3
    {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished_before = std::fs::read_to_string(&state).unwrap().lines().count();
    assert!(finished_before < 30, "killed mid-way");
    let out = import_cmd(dir.path(), &s.addr, &["big.csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming"));
    let lines: Vec<String> = std::fs::read_to_string(&state)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut batches: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.split("\"batch\":")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    batches.sort();
    batches.dedup();
    assert_eq!(batches.len(), 30, "every batch finished");
    assert_eq!(lines.len(), 30, "no finished batch ran twice");
    assert_eq!(user_count(&s.addr), 3001, "every user exactly once");
    assert!(terminate(s).success());
}

#[test]
fn import_honours_429() {
    let dir = tempfile::tempdir().unwrap();
    let s = import_server(
        dir.path(),
        &[
            ("DESKD_RATE_LIMITS", "on"),
            ("DESKD_ACCOUNT_RATE_LIMIT", "10"),
        ],
    );
    let auth = basic("admin@example.org/token", "imp-token");
    // Spend the account's budget first.
    while http(&s.addr, "GET", "/api/v2/users/me", Some(&auth), None).0 != 429 {}
    write_csv(&dir.path().join("r.csv"), 150, "rl");
    let started = std::time::Instant::now();
    let out = import_cmd(dir.path(), &s.addr, &["r.csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "it waited as Retry-After asked"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("150 created"));
    assert!(terminate(s).success());
}

/// Starts `deskd serve --test-mode --database memory --print-env` and reads stdout up to the
/// environment line; returns the server and the variables it printed.
fn serve_in_memory() -> (Served, std::collections::HashMap<String, String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskd"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        "memory",
        "--test-mode",
        "--print-env",
    ])
    .env_remove("DESKD_ADMIN_EMAIL")
    .env_remove("DESKD_ADMIN_TOKEN")
    .env_remove("DESKD_ADMIN_PASSWORD")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn deskd");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    let mut addr = None;
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read stdout") == 0 {
            panic!("deskd exited before printing the environment; printed {lines:?}");
        }
        let line = line.trim_end().to_owned();
        if let Some(a) = line.strip_prefix("deskd listening on http://") {
            addr = Some(a.to_owned());
        }
        if line.starts_with("ZENDESK_URL=") {
            let vars = line
                .split(' ')
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            lines.push(line);
            let addr = addr.expect("listening line first");
            return (Served { child, addr, lines }, vars);
        }
        lines.push(line);
    }
}

#[test]
fn memory_database_with_print_env_is_a_throwaway_server() {
    let (served, vars) = serve_in_memory();
    assert_eq!(vars["ZENDESK_URL"], format!("http://{}", served.addr));
    assert_eq!(vars["ZENDESK_EMAIL"], "admin@deskd.local");
    let token = vars["ZENDESK_TOKEN"].clone();
    assert_eq!(token.len(), 40, "{:?}", served.lines);
    let auth = basic("admin@deskd.local/token", &token);
    // Writes (through the one writer) are seen by reads (through the pool): one database.
    for i in 0..20 {
        let body = format!(r#"{{"user": {{"name": "M{i}", "email": "m{i}@example.org"}}}}"#);
        let (status, resp) = http(
            &served.addr,
            "POST",
            "/api/v2/users/create_or_update",
            Some(&auth),
            Some(&body),
        );
        assert_eq!(status, 201, "{resp}");
        let b = json_body(&resp);
        let at = b.find("\"id\":").expect("an id") + 5;
        let id: String = b[at..].chars().take_while(char::is_ascii_digit).collect();
        let (status, _) = http(
            &served.addr,
            "GET",
            &format!("/api/v2/users/{id}"),
            Some(&auth),
            None,
        );
        assert_eq!(status, 200);
    }
    let (status, resp) = http(
        &served.addr,
        "GET",
        "/api/v2/users/count",
        Some(&auth),
        None,
    );
    assert_eq!(status, 200);
    assert!(json_body(&resp).contains(r#""value":21"#), "{resp}");
    // Test mode is on.
    let (status, _) = http(&served.addr, "GET", "/__deskd/requests", Some(&auth), None);
    assert_eq!(status, 200);
    assert!(terminate(served).success());
    // Another server starts empty.
    let (again, vars) = serve_in_memory();
    let auth = basic("admin@deskd.local/token", &vars["ZENDESK_TOKEN"]);
    let (status, resp) = http(&again.addr, "GET", "/api/v2/users/count", Some(&auth), None);
    assert_eq!(status, 200);
    assert!(json_body(&resp).contains(r#""value":1"#), "{resp}");
    assert!(terminate(again).success());
}

/// Issue 14, test 2: two replicas (`deskd serve` processes) on one PostgreSQL, 100 bulk jobs of
/// 100 users sent to both; one replica is SIGKILLed mid-way. The other finishes every job (the
/// dead one's once their leases run out) and every user exists exactly once.
#[test]
fn two_replicas_finish_every_job_when_one_is_killed() {
    with_pg_schema("deskd_replicas", |pg| {
        let url = &pg.url;
        let token = "replica-test-token";
        let env = [
            ("DESKD_ADMIN_EMAIL", "admin@example.org"),
            ("DESKD_ADMIN_TOKEN", token),
            ("DESKD_JOB_WORKERS", "2"),
            ("DESKD_JOB_LEASE_SECS", "3"),
        ];
        let auth = basic("admin@example.org/token", token);
        let mut one = Some(serve(url, &env));
        let two = serve(url, &env);
        let mut ids = Vec::new();
        for j in 0..100 {
            let users: Vec<String> = (0..100)
                .map(|i| format!(r#"{{"name":"R {j}-{i}","email":"R{j}-{i}@Example.org"}}"#))
                .collect();
            let body = format!(r#"{{"users":[{}]}}"#, users.join(","));
            loop {
                // Alternate while both live; after the kill, the survivor takes the rest.
                let addr = match &one {
                    Some(s) if j % 2 == 0 => s.addr.clone(),
                    _ => two.addr.clone(),
                };
                let (status, resp) = http(
                    &addr,
                    "POST",
                    "/api/v2/users/create_or_update_many.json",
                    Some(&auth),
                    Some(&body),
                );
                if status == 429 {
                    // At most 30 jobs queued or working per account: wait for a slot.
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                assert_eq!(status, 200, "{resp}");
                ids.push(field(&json_body(&resp), "id")[0].to_owned());
                break;
            }
            if j == 40 {
                // Mid-way: jobs queued, working (some on the replica killed) and completed.
                let mut s = one.take().expect("first replica");
                s.child.kill().expect("SIGKILL");
                s.child.wait().unwrap();
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let mut created = 0;
        for chunk in ids.chunks(100) {
            let q = chunk.join(",");
            loop {
                let (status, resp) = http(
                    &two.addr,
                    "GET",
                    &format!("/api/v2/job_statuses/show_many.json?ids={q}"),
                    Some(&auth),
                    None,
                );
                assert_eq!(status, 200);
                let body = json_body(&resp);
                let statuses = field(&body, "status");
                let done = statuses.iter().filter(|s| **s == "completed").count();
                if done == chunk.len() {
                    assert!(!body.contains(r#""error""#), "no failed items");
                    created += statuses.iter().filter(|s| **s == "Created").count();
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "jobs did not complete: {done}/{}",
                    chunk.len()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        assert_eq!(created, 10_000, "every item created once");
        assert_eq!(pg.psql("SELECT COUNT(*) FROM users"), "10001");
        assert_eq!(
            pg.psql("SELECT COUNT(DISTINCT value_norm) FROM identities WHERE type = 'email'"),
            "10001"
        );
        assert_eq!(
            pg.psql("SELECT COUNT(*) FROM job_results"),
            "10000",
            "each item ran once"
        );
        assert!(terminate(two).success());
    });
}
