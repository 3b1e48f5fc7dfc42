//! A keep-alive connection survives every early answer to a request with a body: the 401, 403,
//! 404, 405 and 400 that come before a handler reads the body, with the body still arriving.
//! (Issue 12, "Also found": the next request on the connection was sometimes dropped.)

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_TOKEN, Backend, TestApp};

/// Reads one HTTP/1.1 response (headers and a Content-Length body); its status, headers
/// (lowercased) and body. Panics on EOF, which is the bug.
async fn read_response(
    conn: &mut (impl AsyncReadExt + Unpin),
    buf: &mut Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut chunk))
            .await
            .expect("response within 20 s")
            .expect("read");
        assert!(
            n > 0,
            "connection closed before a response: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status: u16 = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("length"))
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    (status, head, body)
}

fn basic(user: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_answers_keep_the_connection_usable() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let end = app.make_user("End", "end@example.org", "end-user").await;
    let end_auth = basic("end@example.org/token", ADMIN_TOKEN);
    let admin_auth = basic("admin@deskd.test/token", ADMIN_TOKEN);
    // (method, path, extra headers, expected early status)
    let cases: Vec<(&str, String, String, u16)> = vec![
        ("POST", "/api/v2/users/me".into(), admin_auth.clone(), 405),
        ("POST", "/api/v2/nowhere".into(), admin_auth.clone(), 404),
        (
            "POST",
            "/api/v2/users/create_or_update".into(),
            String::new(),
            401,
        ),
        ("PUT", format!("/api/v2/users/{end}"), end_auth.clone(), 403),
        (
            "POST",
            "/api/v2/users/%00/tags".into(),
            admin_auth.clone(),
            400,
        ),
    ];
    let mut conn = TcpStream::connect(app.addr).await.expect("connect");
    conn.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let body = format!("{{\"user\": {{\"notes\": \"{}\"}}}}", "x".repeat(48 * 1024));
    let (first, rest) = body.as_bytes().split_at(1024);
    for round in 0..10 {
        for (method, path, auth, expected) in &cases {
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                app.addr,
                body.len()
            );
            conn.write_all(head.as_bytes()).await.unwrap();
            conn.write_all(first).await.unwrap();
            // The server has the headers and can answer now; the rest of the body comes later,
            // followed at once by the next request, as a client with a slow upload sends them.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let next = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr);
            let mut tail = rest.to_vec();
            tail.extend_from_slice(next.as_bytes());
            // A server that closed the connection may refuse the write; the read below says so.
            let _ = conn.write_all(&tail).await;
            let (status, head, _) = read_response(&mut conn, &mut buf).await;
            assert_eq!(status, *expected, "round {round}: {method} {path}");
            assert!(
                !head.contains("connection: close"),
                "{method} {path}: {head}"
            );
            let (status, _, body) = read_response(&mut conn, &mut buf).await;
            assert_eq!(
                status,
                200,
                "round {round}: the request after {method} {path}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

/// A body beyond what deskd discards ends the connection cleanly: the early answer says
/// `Connection: close`, so no client reuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_body_too_long_to_discard_closes_with_notice() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut conn = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/v2/users/me HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        100u64 * 1024 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = conn.into_split();
    // Send more than deskd discards (64 MiB) while the answer waits.
    let writer = tokio::spawn(async move {
        let filler = vec![b'x'; 1024 * 1024];
        for _ in 0..80 {
            if write.write_all(&filler).await.is_err() {
                break;
            }
        }
    });
    let mut buf = Vec::new();
    let (status, head, _) = read_response(&mut read, &mut buf).await;
    assert_eq!(status, 405);
    assert!(head.contains("connection: close"), "{head}");
    writer.abort();
}

/// A client waiting on `Expect: 100-continue` is not asked for a body nobody reads: the early
/// answer comes at once, with `Connection: close`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_to_expect_continue_asks_for_no_body() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut conn = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/v2/users/create_or_update HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n",
        app.addr
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let (status, head, _) = read_response(&mut conn, &mut buf).await;
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("connection: close"), "{head}");
}
