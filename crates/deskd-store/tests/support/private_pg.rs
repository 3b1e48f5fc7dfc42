//! PostgreSQL for the test suites, wherever they run (shared by the store's, the server's and the
//! CLI's tests through `#[path]`; std only).
//!
//! [`pg_url`] is the database the PostgreSQL half of the suite uses: `DESKD_TEST_PG_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`, when something answers there; else a throwaway
//! instance started with this machine's `initdb`/`pg_ctl` (stopped and deleted when the test
//! process ends); else `None`, and the PostgreSQL half is skipped, said loudly once. With
//! `DESKD_TEST_REQUIRE_PG=1` (as `.ci/run` sets) the skip is a failure instead.
//!
//! [`PgInstance`] is a private server a test may stop and start (fault tests): its own data
//! directory and port, never the shared server.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL the suite's PostgreSQL half runs on, or `None` when it is skipped.
pub fn pg_url() -> Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        let wanted = std::env::var("DESKD_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        if answers(&wanted) {
            return Some(wanted);
        }
        let started = PgInstance::start_new().map(|pg| {
            let url = pg.url("test");
            pg.stop_when_process_exits();
            eprintln!(
                "note: nothing answered at {wanted}; the PostgreSQL tests run on a throwaway instance at {url}"
            );
            url
        });
        match started {
            Ok(url) => Some(url),
            Err(why) => {
                let msg = format!(
                    "\n\n*** The PostgreSQL half of the tests is SKIPPED: nothing answers at {wanted} \
                     and no private instance could be started ({why}).\n*** To run it: start \
                     PostgreSQL there (trust auth, database `test`), or set DESKD_TEST_PG_URL, or \
                     install PostgreSQL's server binaries (Debian: apt-get install postgresql).\n"
                );
                if std::env::var("DESKD_TEST_REQUIRE_PG").is_ok_and(|v| v == "1") {
                    panic!("{msg}*** DESKD_TEST_REQUIRE_PG=1: failing instead of skipping.\n");
                }
                eprintln!("{msg}");
                None
            }
        }
    })
    .clone()
}

/// Whether a TCP connection to the URL's host and port opens.
fn answers(url: &str) -> bool {
    let Some(addr) = host_port(url) else {
        return false;
    };
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

fn host_port(url: &str) -> Option<SocketAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    with_port.to_socket_addrs().ok()?.next()
}

/// A PostgreSQL server of the test's own: data directory, port, process.
pub struct PgInstance {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// initdb and postgres refuse to run as root: run them as the `postgres` user then.
    as_postgres: bool,
    stop_on_drop: bool,
}

impl PgInstance {
    /// initdb's a new cluster (trust auth, a database `test`) and starts it on a free port.
    pub fn start_new() -> Result<PgInstance, String> {
        let bin = find_bin().ok_or("no initdb/pg_ctl on PATH or under /usr/lib/postgresql")?;
        let as_postgres = is_root();
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("deskd-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let pg = PgInstance {
            port,
            dir,
            bin,
            as_postgres,
            stop_on_drop: true,
        };
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir))?;
        }
        run(pg
            .tool("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(pg.data()))?;
        pg.start()?;
        run(pg.tool("createdb").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "test",
        ]))?;
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=300 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .tool("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(self.data())
            .args(["-l"])
            .arg(self.dir.join("log"))
            .args(["-o", &opts, "start"]))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            if Instant::now() > deadline {
                return Err("PostgreSQL did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// `pg_ctl stop -m immediate`: every backend killed at once, as a crash would; the next start
    /// runs crash recovery.
    pub fn stop_immediate(&self) -> Result<(), String> {
        run(self
            .tool("pg_ctl")
            .args(["-w", "-D"])
            .arg(self.data())
            .args(["-m", "immediate", "stop"]))
    }

    /// Leaves the server running until this test process exits, then stops it and deletes its
    /// files (a watcher process waits for the exit; tests have no global teardown).
    pub fn stop_when_process_exits(mut self) {
        self.stop_on_drop = false;
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {run_as} {pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            run_as = if self.as_postgres {
                "runuser -u postgres --"
            } else {
                ""
            },
            pg_ctl = pg_ctl.display(),
            data = data.display(),
            dir = self.dir.display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        if self.stop_on_drop {
            let _ = self.stop_immediate();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, else the newest under
/// /usr/lib/postgresql (Debian puts them there, off PATH).
fn find_bin() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    // A PATH entry may hold links to the real directory (which also has createdb, postgres).
    if let Some(path) = std::env::var_os("PATH")
        && let Some(d) = std::env::split_paths(&path).find(|d| has(d))
    {
        return std::fs::canonicalize(d.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .or(Some(d));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| has(d))
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}
