//! Slow and idle clients cannot hold the server: header, request and idle timeouts, a cap on
//! connections, and a shutdown that returns within its grace whatever clients are doing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use deskd_server::bootstrap::{AdminSeed, ensure_admin};
use deskd_server::{AppState, Config};
use deskd_store::{Store, StoreOptions};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_EMAIL, ADMIN_TOKEN, Auth, Backend, TestApp};

fn timeouts(header: u64, request: u64, idle: u64) -> Config {
    Config {
        rate_limits: false,
        header_timeout: Duration::from_secs(header),
        request_timeout: Duration::from_secs(request),
        idle_timeout: Duration::from_secs(idle),
        ..Config::default()
    }
}

/// Writes `bytes` one a second until the server closes the connection; returns how long after
/// the first byte that was, or None if it never did within `give_up`.
async fn trickle(stream: &mut TcpStream, bytes: &[u8], give_up: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 512];
    for b in bytes.iter().cycle() {
        if start.elapsed() > give_up {
            return None;
        }
        if stream.write_all(&[*b]).await.is_err() {
            return Some(start.elapsed());
        }
        // Wait a second for the server to say something (it only ever closes here).
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => return Some(start.elapsed()),
            Err(_) => {}
        }
    }
    None
}

/// Reads one response (headers and a Content-Length body).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a response");
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

/// Whether the server closes `stream` within `within` (whatever it sends before).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: deskd\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_after_the_header_timeout() {
    let app = TestApp::spawn_with(Backend::Sqlite, timeouts(2, 60, 30)).await;
    // A new connection sending its headers a byte a second.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let probe = {
        let (client, url) = (app.client.clone(), app.url("/healthz"));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            client.get(url).send().await.map(|r| r.status())
        })
    };
    let cut = trickle(&mut slow, HEALTHZ, Duration::from_secs(15))
        .await
        .expect("a slowloris client is never disconnected");
    assert!(
        cut >= Duration::from_millis(1500) && cut < Duration::from_secs(5),
        "disconnected after {cut:?}; the header timeout is 2 s"
    );
    assert_eq!(
        probe.await.unwrap().unwrap(),
        StatusCode::OK,
        "healthz meanwhile"
    );
    // On a kept-alive connection: a quick request, then the next one trickled. Its headers are
    // due 2 s after its first byte, not at the end of the 30 s idle timeout.
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cut = trickle(&mut conn, HEALTHZ, Duration::from_secs(15))
        .await
        .expect("a slowloris request on a kept-alive connection is never cut off");
    assert!(
        cut >= Duration::from_millis(1500) && cut < Duration::from_secs(5),
        "kept-alive: disconnected after {cut:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let app = TestApp::spawn_with(Backend::Sqlite, timeouts(5, 60, 1)).await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    // Within the idle timeout the connection is reused...
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    // ...then, idle for longer, it is closed.
    let start = Instant::now();
    assert!(
        closed_within(&mut conn, Duration::from_secs(4)).await,
        "an idle kept-alive connection stays open"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_after_the_request_timeout() {
    let app = TestApp::spawn_with(Backend::Sqlite, timeouts(10, 1, 30)).await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{ADMIN_EMAIL}/token:{ADMIN_TOKEN}"))
    };
    let head = format!(
        "POST /api/v2/users HTTP/1.1\r\nHost: deskd\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"user\":"
    );
    let mut other = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    // Keep sending a byte every 300 ms from another task while reading the answer here.
    let (mut r, mut w) = conn.into_split();
    let feeder = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if w.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), r.read(&mut buf))
        .await
        .expect("an answer before the test gives up")
        .unwrap();
    feeder.abort();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // Other requests were served meanwhile, and still are.
    other.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut other).await.starts_with("HTTP/1.1 200"));
    assert_eq!(
        app.get_as(&Auth::admin(), "/api/v2/users/me").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_and_healthz_is_reached() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Config {
            max_connections: 8,
            ..timeouts(2, 60, 30)
        },
    )
    .await;
    // Twelve clients that connect and say nothing: eight hold the slots, four wait.
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(HEALTHZ).await.unwrap();
    let resp = read_response(&mut conn).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let waited = start.elapsed();
    // It waited for silent clients' header timeouts to free slots (two rounds at most).
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(7),
        "healthz answered after {waited:?}"
    );
}

/// A server started here, so that the test can stop it and time the stop.
async fn start(
    config: Config,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::new(&format!(
        "sqlite://{}/deskd.db",
        dir.path().display()
    )))
    .await
    .unwrap();
    ensure_admin(
        &store,
        &AdminSeed {
            email: Some(ADMIN_EMAIL.into()),
            token: Some(ADMIN_TOKEN.into()),
            password: None,
        },
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(store, config, addr);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(deskd_server::run(state, listener, async {
        let _ = rx.await;
    }));
    (addr, tx, server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_within_the_grace_despite_a_half_sent_request() {
    let (addr, stop, server, _dir) = start(Config {
        shutdown_grace: Duration::from_secs(1),
        ..timeouts(60, 60, 60)
    })
    .await;
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"POST /api/v2/users HTTP/1.1\r\nHost: deskd\r\nContent-Le")
        .await
        .unwrap();
    let mut slow_body = TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(b"POST /api/v2/users HTTP/1.1\r\nHost: deskd\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server did not stop within 10 s")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "stopping took {took:?}; the grace is 1 s"
    );
    // Both clients were let go.
    assert!(closed_within(&mut half, Duration::from_secs(2)).await);
    assert!(closed_within(&mut slow_body, Duration::from_secs(2)).await);
}
