//! Issue 9, item 2 (third review): HTTP/2 must not let one client make the
//! server hold many bodies, keep a connection after a body timeout, or keep
//! it by resetting streams. Each test counts what the server accepted or
//! answered over a real HTTP/2 connection.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Empty, Full};
use hyper::body::{Body, Frame};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use latchkey::config::Layer;
use serde_json::json;
use tokio::sync::Notify;

use crate::harness::*;

/// A liveness guard only: how long a test waits for the server to do more.
const PATIENCE: Duration = Duration::from_secs(15);

/// A request body that sends one chunk, counts itself once the server's
/// flow control has room for more (hyper polls a body again only when the
/// stream has send capacity beyond what it buffered), then never ends.
struct HeldBody {
    /// The first chunk, until sent.
    chunk: Option<Bytes>,
    /// Whether this body has counted itself.
    counted: bool,
    /// Bodies the server has made room for after their chunk.
    taken: Arc<AtomicUsize>,
    /// Wakes the test when a body counts itself.
    progress: Arc<Notify>,
}

impl HeldBody {
    fn new(size: usize, taken: &Arc<AtomicUsize>, progress: &Arc<Notify>) -> HeldBody {
        HeldBody {
            chunk: (size > 0).then(|| Bytes::from(vec![b' '; size])),
            counted: false,
            taken: taken.clone(),
            progress: progress.clone(),
        }
    }
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(chunk) = self.chunk.take() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if !self.counted {
            self.counted = true;
            self.taken.fetch_add(1, Ordering::SeqCst);
            self.progress.notify_one();
        }
        Poll::Pending
    }
}

/// Opens a cleartext HTTP/2 connection to the server; the task ends when
/// the connection does.
async fn h2<B>(srv: &Server) -> (SendRequest<B>, tokio::task::JoinHandle<()>)
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    let (sender, conn) =
        hyper::client::conn::http2::handshake::<_, _, B>(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

/// Opens an HTTP/2 connection for held bodies and makes one request on it
/// first, so the client has the server's settings (stream cap, windows)
/// before it counts anything.
async fn h2_settled(srv: &Server) -> SendRequest<Either<HeldBody, Empty<Bytes>>> {
    let (mut sender, _) = h2::<Either<HeldBody, Empty<Bytes>>>(srv).await;
    let request = http::Request::get(format!("http://{}/healthz", srv.addr))
        .body(Either::Right(Empty::new()))
        .expect("request");
    let response = sender.send_request(request).await.expect("healthz");
    assert_eq!(response.status(), http::StatusCode::OK);
    sender
}

/// Waits until `taken` reaches `want` or the server makes no more room
/// within `quiet`; returns the count.
async fn taken_after(
    taken: &AtomicUsize,
    progress: &Notify,
    want: usize,
    quiet: Duration,
) -> usize {
    while taken.load(Ordering::SeqCst) < want {
        if tokio::time::timeout(quiet, progress.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    taken.load(Ordering::SeqCst)
}

/// One HTTP/2 connection opens 100 streams, each declaring a 64 KiB + 1
/// body, sending 64 KiB of it and never ending. `max_body_bytes` is 2 MiB
/// here, so the connection's body budget would admit 31 of them: what
/// bounds them is the stream cap. The server runs at most 16 at once
/// (`MAX_CONCURRENT_STREAMS`), so only 16 streams open and flow control
/// lets at most 16 bodies send (and count themselves).
#[tokio::test]
async fn one_http2_connection_runs_at_most_sixteen_bodies_at_once() {
    const STREAMS: usize = 100;
    let srv = Server::start_with(Layer {
        max_body_bytes: Some(2 * 1024 * 1024),
        ..Layer::default()
    })
    .await;
    let sender = h2_settled(&srv).await;
    let taken = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..STREAMS {
        let mut sender = sender.clone();
        let request = http::Request::post(format!("http://{}/api/v1/auth/login", srv.addr))
            .header("content-type", "application/json")
            .header("content-length", (64 * 1024 + 1).to_string())
            .body(Either::Left(HeldBody::new(64 * 1024, &taken, &progress)))
            .expect("request");
        streams.spawn(async move {
            let _ = sender.ready().await;
            let _ = sender.send_request(request).await;
        });
    }
    // Without the stream cap all 100 count themselves at once; the quiet
    // period only bounds how long the test waits for a 17th.
    let held = taken_after(&taken, &progress, STREAMS, Duration::from_secs(3)).await;
    streams.abort_all();
    assert!(held > 0, "no stream was served at all");
    assert!(
        held <= 16,
        "one HTTP/2 connection had {held} bodies in progress at once"
    );
}

/// Opens `connections` HTTP/2 connections to `srv`, each with `streams`
/// requests whose bodies (no declared length) never end, and returns how
/// many were refused at once with 503 and `Retry-After`, and how many were
/// answered at all, once the refusals have come (or `PATIENCE` ran out).
/// A held body can only be answered by the 408 after `BODY_READ_TIMEOUT`,
/// so every answer seen is a refusal unless the budget is missing.
async fn never_ending_bodies(
    srv: &Server,
    connections: usize,
    streams: usize,
    held: usize,
) -> (usize, usize) {
    let unused = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let answered = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let sender = h2_settled(srv).await;
        for _ in 0..streams {
            let mut sender = sender.clone();
            let answered = answered.clone();
            let busy = busy.clone();
            let progress = progress.clone();
            let request = http::Request::post(format!("http://{}/api/v1/auth/login", srv.addr))
                .header("content-type", "application/json")
                .body(Either::Left(HeldBody::new(1024, &unused, &progress)))
                .expect("request");
            tasks.spawn(async move {
                let _ = sender.ready().await;
                if let Ok(response) = sender.send_request(request).await {
                    if response.status() == http::StatusCode::SERVICE_UNAVAILABLE
                        && response.headers().contains_key(http::header::RETRY_AFTER)
                    {
                        busy.fetch_add(1, Ordering::SeqCst);
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                    progress.notify_one();
                }
            });
        }
    }
    let all = connections * streams;
    // A liveness guard: without the budget no answer comes before the body
    // timeout, and the counts show it.
    let settled = async {
        while answered.load(Ordering::SeqCst) < all - held {
            progress.notified().await;
        }
    };
    let _ = tokio::time::timeout(PATIENCE, settled).await;
    let refused = busy.load(Ordering::SeqCst);
    let answers = answered.load(Ordering::SeqCst);
    tasks.abort_all();
    (refused, answers)
}

/// With `max_connections` = 2 the server may hold 2 x `max_body_bytes` of
/// bodies at once. Two HTTP/2 connections each open 8 streams with bodies
/// that never end: the server holds exactly two and refuses the other 14 at
/// once with 503 and `Retry-After`, before reading any of their bytes.
/// Without the budget it would hold all 16 and answer none.
#[tokio::test]
async fn http2_connections_cannot_make_the_server_hold_more_than_the_body_budget() {
    let srv = Server::start_with(Layer {
        max_connections: Some(2),
        max_body_bytes: Some(64 * 1024),
        ..Layer::default()
    })
    .await;
    let (refused, answers) = never_ending_bodies(&srv, 2, 8, 2).await;
    assert_eq!(
        refused, 14,
        "of 16 never-ending bodies with a budget of two, {refused} were refused with 503 + Retry-After"
    );
    assert_eq!(
        answers, refused,
        "the two bodies within the budget are still held, the rest refused"
    );
}

/// One HTTP/2 connection holds no more body bytes than one HTTP/1
/// connection could (`max_body_bytes`), whatever the server's budget: of 8
/// never-ending bodies on one connection, one is held and 7 are refused at
/// once. Otherwise the 64 connections one address may open could spend the
/// whole server's budget and refuse everyone else's logins.
#[tokio::test]
async fn one_http2_connection_holds_no_more_body_than_an_http1_connection() {
    let srv = Server::start().await;
    let (refused, answers) = never_ending_bodies(&srv, 1, 8, 1).await;
    assert_eq!(
        refused, 7,
        "of 8 never-ending bodies on one connection, {refused} were refused with 503 + Retry-After"
    );
    assert_eq!(answers, refused, "one body is held, the rest refused");
}

/// A body that never finishes gets 408 after `BODY_READ_TIMEOUT`, and the
/// HTTP/2 connection it came on is then shut down (GOAWAY), as an HTTP/1
/// one is closed, so no request can follow on it. A second never-ending
/// stream, opened before the first one's 408, is what would keep the
/// connection open otherwise (the idle deadline waits while it is in
/// progress). This waits out the real 30 s body timeout once.
#[tokio::test]
async fn an_http2_connection_is_closed_after_a_body_timeout() {
    let srv = Server::start_with(Layer {
        header_read_timeout: Some(1),
        ..Layer::default()
    })
    .await;
    let (sender, _connection) = h2::<Either<HeldBody, Empty<Bytes>>>(&srv).await;
    let unused = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let held = || {
        http::Request::post(format!("http://{}/api/v1/auth/login", srv.addr))
            .header("content-type", "application/json")
            .body(Either::Left(HeldBody::new(0, &unused, &progress)))
            .expect("request")
    };
    let first = tokio::spawn(sender.clone().send_request(held()));
    // Real time is what is under test here: the second stream opens after
    // the header timeout (1 s) has passed with the first in progress, and
    // long before the first's 408.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = tokio::spawn(sender.clone().send_request(held()));
    let response = first.await.expect("task").expect("a 408");
    assert_eq!(response.status(), http::StatusCode::REQUEST_TIMEOUT);
    // Waits for the GOAWAY exchange (GOAWAY, PING, PONG, final GOAWAY) to
    // close the connection on the client's side before the next request,
    // so it is not a race; a connection that is never closed fails here.
    until("the client to see the connection closed", || {
        sender.is_closed()
    })
    .await;
    let mut sender = sender;
    let request = http::Request::get(format!("http://{}/healthz", srv.addr))
        .body(Either::Right(Empty::new()))
        .expect("request");
    let again = match sender.ready().await {
        Ok(()) => sender.send_request(request).await.ok().map(|r| r.status()),
        Err(_) => None,
    };
    second.abort();
    assert_eq!(
        again, None,
        "the HTTP/2 connection still serves requests after its body timed out"
    );
}

/// Opening a stream and resetting it before its answer (here, while its
/// login's password is being hashed), again and again within the header
/// timeout, does not keep an HTTP/2 connection open: only answered
/// requests restart the idle deadline, so the connection closes about
/// `header_read_timeout` after its last answer (here, its accept), and a
/// request after the resets finds it gone.
#[tokio::test]
async fn resetting_http2_streams_does_not_keep_a_connection_open() {
    let srv = Server::start_with(Layer {
        header_read_timeout: Some(1),
        rate_login_per_ip: Some(1000),
        argon2_memory_kib: Some(32 * 1024),
        argon2_iterations: Some(4),
        ..Layer::default()
    })
    .await;
    let (mut sender, _connection) = h2::<Full<Bytes>>(&srv).await;
    let login = json!({ "username": "nobody", "password": "not a password" }).to_string();
    let mut resets = 0;
    // Eight resets with 300 ms between them span over two header timeouts.
    for _ in 0..8 {
        if sender.ready().await.is_err() {
            break;
        }
        srv.until_pool_idle().await;
        let request = http::Request::post(format!("http://{}/api/v1/auth/login", srv.addr))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(login.clone())))
            .expect("request");
        let answer = tokio::spawn(sender.send_request(request));
        let hashing = async {
            while srv.running().hashes_in_flight() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        if tokio::time::timeout(PATIENCE, hashing).await.is_err() {
            break;
        }
        // Dropping the response resets the stream (RST_STREAM, CANCEL).
        answer.abort();
        let _ = answer.await;
        resets += 1;
        // Real time is what is under test: the resets must span more
        // than two header timeouts.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(resets > 0, "no login reached its hash");
    let request = http::Request::get(format!("http://{}/healthz", srv.addr))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let again = match sender.ready().await {
        Ok(()) => sender.send_request(request).await.ok().map(|r| r.status()),
        Err(_) => None,
    };
    assert_eq!(
        again, None,
        "after {resets} reset streams and no answer for over two header timeouts, the connection still serves"
    );
}
