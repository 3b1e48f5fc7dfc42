use std::net::SocketAddr;
use std::time::Duration;

use deskd_server::bootstrap::{AdminSeed, ensure_admin};
use deskd_server::{AppState, Config};
use deskd_store::{Store, StoreOptions};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

/// Runs each named scenario `async fn name(app: TestApp)` on both backends; with
/// `config = f;` first, on servers started with the `Config` that `fn f() -> Config` returns.
#[macro_export]
macro_rules! on_both_backends {
    (config = $config:ident; $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, super::$config()).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::pg_skipped() {
                    return;
                }
                super::$name($crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, super::$config()).await).await
            }
        }
    )*};
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::pg_skipped() {
                    return;
                }
                super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await).await
            }
        }
    )*};
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const ADMIN_EMAIL: &str = "admin@deskd.test";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

#[path = "../../../deskd-store/tests/support/private_pg.rs"]
pub mod private_pg;

/// Where the PostgreSQL tests make their schemas: `DESKD_TEST_PG_URL`, the local server's `test`
/// database, or a throwaway instance (see `private_pg`).
pub fn pg_url() -> String {
    private_pg::pg_url().expect("PostgreSQL tests run only when pg_skipped() is false")
}

/// True when no PostgreSQL can be had: the PostgreSQL half returns at once (said loudly once;
/// a failure under `DESKD_TEST_REQUIRE_PG=1`).
pub fn pg_skipped() -> bool {
    private_pg::pg_url().is_none()
}

pub struct TestApp {
    pub backend: Backend,
    pub addr: SocketAddr,
    pub db_url: String,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<String>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Credentials a request carries.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Token(String, String),
    Password(String, String),
    Bearer(String),
    Raw(String),
}

impl Auth {
    pub fn admin() -> Auth {
        Auth::Token(ADMIN_EMAIL.into(), ADMIN_TOKEN.into())
    }

    /// Account API tokens work with any user's email, as on Zendesk.
    pub fn as_user(email: &str) -> Auth {
        Auth::Token(email.into(), ADMIN_TOKEN.into())
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(
            backend,
            Config {
                rate_limits: false,
                job_lease: std::time::Duration::from_secs(2),
                ..Config::default()
            },
        )
        .await
    }

    pub async fn spawn_with(backend: Backend, config: Config) -> TestApp {
        let (db_url, dir, pg_schema) = match backend {
            // `DESKD_TEST_SQLITE=memory`: every SQLite test on a named in-memory database, as
            // `deskd serve --database memory` runs.
            Backend::Sqlite if std::env::var("DESKD_TEST_SQLITE").as_deref() == Ok("memory") => (
                format!(
                    "sqlite:file:deskd-test-{}?mode=memory&cache=shared",
                    random_suffix()
                ),
                None,
                None,
            ),
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                (
                    format!("sqlite://{}/deskd.db", dir.path().display()),
                    Some(dir),
                    None,
                )
            }
            Backend::Postgres => {
                let schema = format!("deskd_t_{}", random_suffix());
                let mut conn = sqlx::PgConnection::connect(&pg_url())
                    .await
                    .expect("PostgreSQL at DESKD_TEST_PG_URL");
                conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await
                    .expect("create schema");
                let sep = if pg_url().contains('?') { '&' } else { '?' };
                (
                    format!("{}{sep}options=-c%20search_path%3D{schema}", pg_url()),
                    None,
                    Some(schema),
                )
            }
        };
        Self::start(backend, db_url, dir, pg_schema, config).await
    }

    /// A server on the database at `url` (which the caller owns: no schema is made or dropped).
    pub async fn on_database(url: &str, config: Config) -> TestApp {
        Self::start(Backend::Postgres, url.to_owned(), None, None, config).await
    }

    /// Starts this server's shutdown (as SIGTERM does) without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits until the server has stopped (after `begin_shutdown`).
    pub async fn stopped(&mut self) {
        if let Some(h) = self.server.take() {
            h.await.expect("server task");
        }
    }

    /// A second server on the same database as `other` (a replica); it owns no schema.
    pub async fn replica_of(other: &TestApp, config: Config) -> TestApp {
        Self::start(other.backend, other.db_url.clone(), None, None, config).await
    }

    async fn start(
        backend: Backend,
        db_url: String,
        dir: Option<tempfile::TempDir>,
        pg_schema: Option<String>,
        config: Config,
    ) -> TestApp {
        let mut opts = StoreOptions::new(&db_url);
        opts.max_connections = 8;
        let store = Store::open(&opts).await.expect("open store");
        let seed = AdminSeed {
            email: Some(ADMIN_EMAIL.into()),
            token: Some(ADMIN_TOKEN.into()),
            password: Some(ADMIN_PASSWORD.into()),
        };
        ensure_admin(&store, &seed).await.expect("first admin");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = AppState::new(store, config, addr);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            deskd_server::run(state, listener, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        TestApp {
            backend,
            addr,
            db_url,
            client,
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
            pg_schema,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("Accept", "application/json");
        req = match auth {
            Auth::None => req,
            Auth::Token(email, token) => req.basic_auth(format!("{email}/token"), Some(token)),
            Auth::Password(email, password) => req.basic_auth(email, Some(password)),
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Raw(h) => req.header("Authorization", h),
        };
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.post_as(&Auth::admin(), path, body).await
    }

    pub async fn post_as(&self, auth: &Auth, path: &str, body: Value) -> Resp {
        self.send(
            Method::POST,
            path,
            auth,
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::PUT,
            path,
            &Auth::admin(),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &Auth::admin(), None).await
    }

    pub async fn get_as(&self, auth: &Auth, path: &str) -> Resp {
        self.send(Method::GET, path, auth, None).await
    }

    /// create_or_update as the admin.
    pub async fn upsert(&self, user: Value) -> Resp {
        self.post("/api/v2/users/create_or_update", json!({ "user": user }))
            .await
    }

    /// Creates a user with `role` and returns its id.
    pub async fn make_user(&self, name: &str, email: &str, role: &str) -> i64 {
        let r = self
            .upsert(json!({"name": name, "email": email, "role": role, "verified": true}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["user"]["id"].as_i64().unwrap()
    }

    /// Runs one read-only SQL query straight against the database and returns the first column
    /// of the first row: the independent check that a failed request wrote nothing.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::any::install_default_drivers();
        let url = if self.backend == Backend::Sqlite && !self.db_url.contains("mode=memory") {
            format!("{}?mode=ro", self.db_url)
        } else {
            self.db_url.clone()
        };
        let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
        let row: (i64,) = sqlx::query_as(sql)
            .fetch_one(&mut conn)
            .await
            .expect("query");
        let _ = conn.close().await;
        row.0
    }

    pub async fn count_users(&self) -> i64 {
        self.scalar("SELECT COUNT(*) FROM users").await
    }

    /// A fingerprint of every row that a write could touch.
    pub async fn table_counts(&self) -> (i64, i64, i64) {
        (
            self.scalar("SELECT COUNT(*) FROM users").await,
            self.scalar("SELECT COUNT(*) FROM identities").await,
            self.scalar("SELECT COUNT(*) FROM organizations").await,
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.abort();
        }
        if let Some(schema) = self.pg_schema.take() {
            // Drop runs outside async context; a short-lived thread with its own runtime cleans up.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("rt");
                // Retried: while the suite runs, the shared server can be out of connection
                // slots for a moment, and a schema left behind stays on it for good.
                rt.block_on(async {
                    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    for attempt in 1..=40 {
                        let dropped = match sqlx::PgConnection::connect(&pg_url()).await {
                            Ok(mut conn) => conn.execute(sql.as_str()).await.map(|_| ()),
                            Err(e) => Err(e),
                        };
                        match dropped {
                            Ok(()) => return,
                            Err(e) if attempt == 40 => {
                                eprintln!("test schema {schema} was not dropped: {e}");
                            }
                            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                        }
                    }
                });
            })
            .join();
        }
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| (b'a' + rng.gen_range(0..26)) as char)
        .collect()
}
