//! The HTTP/1.1 server loop, with the limits that keep slow or idle clients from holding the
//! server: a time to send a request's headers, a time for the whole request, an idle time for a
//! kept-alive connection, a cap on open connections, and a bounded drain on shutdown.
//!
//! `axum::serve` offers none of these knobs, so this drives hyper's connection builder directly.
//! Timeouts, as a client sees them:
//!
//! - a new connection must deliver its first request's headers within `header_timeout`;
//! - on a kept-alive connection the next request may start within `idle_timeout` of the last
//!   response; once its first byte arrives its headers must be complete within `header_timeout`;
//! - from complete headers to response (the body read included) at most `request_timeout`,
//!   then 408 and the connection is closed;
//! - at most `max_connections` are open; beyond them new connections wait in the listen backlog
//!   until one closes (so the process always keeps descriptors for its database and listener);
//! - on shutdown, idle connections close at once, requests in flight get `shutdown_grace` to
//!   finish, then whatever is left is dropped and the server returns.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// The server's limits (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// Open descriptors deskd keeps for itself beyond client connections: the listener, database
/// connections and files, the runtime.
const DESCRIPTOR_HEADROOM: u64 = 128;

/// `wanted`, or fewer when the process's descriptor limit would not leave the headroom.
pub fn connection_cap(wanted: usize) -> usize {
    let Some(limit) = descriptor_limit() else {
        return wanted.max(1);
    };
    let fits = limit.saturating_sub(DESCRIPTOR_HEADROOM).max(16);
    let cap = wanted
        .min(usize::try_from(fits).unwrap_or(usize::MAX))
        .max(1);
    if cap < wanted {
        tracing::info!(
            wanted,
            cap,
            descriptor_limit = limit,
            "client connections capped by the descriptor limit (ulimit -n)"
        );
    }
    cap
}

#[cfg(unix)]
fn descriptor_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct it is given and nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    (rc == 0 && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur as u64)
}

#[cfg(not(unix))]
fn descriptor_limit() -> Option<u64> {
    None
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module docs).
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, mut stop) = (app.clone(), stop_rx.clone());
        connections.spawn(async move {
            let _permit = permit;
            let clock = Arc::new(Mutex::new(Clock::default()));
            let io = TokioIo::new(Watched {
                stream,
                clock: clock.clone(),
            });
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    async move {
                        let mut req = req.map(Body::new);
                        req.extensions_mut().insert(ConnectInfo(peer));
                        Ok::<_, Infallible>(
                            match tokio::time::timeout(limits.request_timeout, app.oneshot(req))
                                .await
                            {
                                Ok(Ok(resp)) => resp,
                                Ok(Err(never)) => match never {},
                                Err(_) => request_timeout(),
                            },
                        )
                    }
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(HeadTimer {
                    clock,
                    header: limits.header_timeout,
                    idle: limits.idle_timeout,
                })
                .header_read_timeout(limits.header_timeout)
                // A `--test-seed` run dates responses by its own clock (testmode::observe).
                .auto_date_header(!crate::testmode::seeded::active());
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_secs = limits.shutdown_grace.as_secs_f64(),
            "shutdown grace elapsed; closing the connections still open"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// 408, and the connection closes: the request took longer than `request_timeout`.
fn request_timeout() -> Response {
    let mut resp = crate::respond::json_response(
        StatusCode::REQUEST_TIMEOUT,
        &serde_json::json!({"error": "RequestTimeout", "description": "The request took too long to arrive or to answer"}),
    );
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// What a connection's reads tell its header timer.
#[derive(Default)]
struct Clock {
    /// A header timer is waiting for the next request.
    armed: bool,
    /// When that request's first byte arrived.
    first_byte: Option<Instant>,
    /// Whether a request's headers have been read on this connection before.
    served: bool,
}

/// The client socket, noting when a request's first byte arrives.
struct Watched {
    stream: TcpStream,
    clock: Arc<Mutex<Clock>>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
            if clock.armed && clock.first_byte.is_none() {
                clock.first_byte = Some(Instant::now());
            }
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// hyper's timer, which hyper uses (on an HTTP/1 server) for its header read timeout only: the
/// timeout it starts whenever it waits for a request's headers, idle keep-alive time included.
/// This one gives the idle wait on a kept-alive connection `idle` instead, and the headers
/// `header` from their first byte.
#[derive(Clone)]
struct HeadTimer {
    clock: Arc<Mutex<Clock>>,
    header: Duration,
    idle: Duration,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // Not used by hyper's HTTP/1 server; a plain sleep.
        Box::pin(PlainSleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let start = Instant::now();
        let served = {
            let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
            clock.armed = true;
            clock.first_byte = None;
            clock.served
        };
        let wait = if served { self.idle } else { self.header };
        Box::pin(HeadSleep {
            // A new connection's first request is due `header` after the connection opened,
            // however its bytes trickle in; a later one `header` after its first byte.
            clock: served.then(|| self.clock.clone()),
            owner: self.clock.clone(),
            header: self.header,
            deadline: start + wait,
            sleep: Box::pin(tokio::time::sleep_until((start + wait).into())),
        })
    }
}

struct HeadSleep {
    /// The connection's clock, consulted for the first byte (None: a fixed deadline).
    clock: Option<Arc<Mutex<Clock>>>,
    owner: Arc<Mutex<Clock>>,
    header: Duration,
    deadline: Instant,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let first_byte = self
            .clock
            .as_ref()
            .and_then(|c| c.lock().unwrap_or_else(|e| e.into_inner()).first_byte);
        if let Some(t) = first_byte {
            // The request has begun: its headers are due `header` after its first byte.
            let due = t + self.header;
            if due != self.deadline {
                self.deadline = due;
                let d = due.into();
                self.sleep.as_mut().reset(d);
            }
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

/// A tokio sleep as hyper's `Sleep`.
struct PlainSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for PlainSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for PlainSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        // hyper drops the timer once a request's headers are in.
        let mut clock = self.owner.lock().unwrap_or_else(|e| e.into_inner());
        clock.armed = false;
        clock.served = true;
    }
}
