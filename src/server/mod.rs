//! Transport only: the listener, TLS, the connection cap, timeouts, the
//! request context, and a bounded graceful drain. Everything above HTTP
//! framing happens in the [`Handler`] (the API router); this module never
//! looks at a path or a body's meaning.
//!
//! Limits enforced here, before a handler runs:
//! - at most `max_connections` connections; past that, new connections wait
//!   in the kernel's backlog instead of costing memory;
//! - at most `max_connections_per_ip` of them from one client address (IPv6
//!   by /64; trusted proxies exempt), so one address cannot take every slot;
//!   past that, a new connection is closed at once;
//! - a connection with no request in progress must deliver a complete
//!   request head within `header_read_timeout`, counted from accept (TLS
//!   handshake included) and again from the end of each response, or it is
//!   closed. hyper's own header timeout starts only once bytes arrive and
//!   HTTP/2 has none, so a silent or idle connection (HTTP/1 keep-alive, or
//!   HTTP/2 with no stream, answering pings) would otherwise hold its slot
//!   for ever. A running handler, and a body read within its own
//!   `BODY_READ_TIMEOUT`, count as a request in progress;
//! - a request head over `max_header_bytes` is refused by hyper (431);
//! - a body over `max_body_bytes` gets 413, one that trickles for longer than
//!   `BODY_READ_TIMEOUT` gets 408; after either (or an unreadable body, 400)
//!   the connection is shut down gracefully (HTTP/1 `Connection: close`,
//!   HTTP/2 GOAWAY), so a client cannot keep it alive with streams that
//!   never finish;
//! - the bodies being read or handled at once hold at most `max_body_bytes`
//!   bytes on one connection, and at most `max_connections` x
//!   `max_body_bytes` on all connections together: what HTTP/1 connections
//!   could hold, so HTTP/2's many streams per connection add nothing, and one
//!   address, held to `max_connections_per_ip` connections, cannot spend the
//!   server's budget alone. A request reserves its share (its declared
//!   length, or `max_body_bytes` when undeclared) of both before any of its
//!   body is read, and one that finds either spent gets 503 with
//!   `Retry-After` at once;
//! - an HTTP/2 connection runs at most `MAX_CONCURRENT_STREAMS` requests at
//!   once, and each stream's flow-control window is `max_body_bytes` (at
//!   most), so the server never accepts more of a body than it may keep;
//! - only an answered request restarts the idle deadline: a request dropped
//!   before its response (an HTTP/2 stream reset) does not, so resetting
//!   streams cannot keep a connection open.

pub mod context;
pub mod outbound;
pub mod probe;
pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use context::RequestContext;

/// How long a request body may take to arrive in full.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Most requests one HTTP/2 connection may have in progress at once. Every
/// request here is a small JSON call answered at once, so a client gains
/// nothing from more; 16 keeps one connection's share of the body budget
/// (16 x `max_body_bytes`, 1 MiB by default) near what 16 HTTP/1
/// connections would hold, where hyper's default of 100 let one connection
/// pin a hundred bodies.
pub const MAX_CONCURRENT_STREAMS: u32 = 16;

/// The largest HTTP/2 flow-control window the protocol allows (2^31 - 1).
const MAX_WINDOW: u32 = (1 << 31) - 1;

/// A future returned by a handler.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>;

/// What serves requests: given the request with its body read in full, and
/// a [`RequestContext`] in its extensions, produce a response.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Request<Bytes>) -> ResponseFuture;

    /// Told of every answered request, the transport's own refusals
    /// included, once its response is ready (for the metrics). `path` has
    /// no query string. It runs on the request path, so it must be cheap.
    fn completed(&self, _method: &Method, _path: &str, _status: StatusCode, _elapsed: Duration) {}
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Certificate and key, for HTTPS.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Connection cap.
    pub max_connections: usize,
    /// Connection cap for one client address (IPv6 by /64); trusted proxies
    /// are exempt, since every client behind them shares their address.
    pub max_connections_per_ip: usize,
    /// How long a connection may go without a complete request head, from
    /// accept (TLS handshake included) and from the end of each response.
    pub header_read_timeout: Duration,
    /// Request head size cap.
    pub max_header_bytes: usize,
    /// Request body size cap.
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Who may set X-Forwarded-For.
    pub trusted_proxies: context::TrustedProxies,
}

/// A listening server.
pub struct Listening {
    /// The bound address (useful when the port was 0).
    pub addr: SocketAddr,
    /// Flips to true to stop accepting and drain.
    stop: watch::Sender<bool>,
    /// Flips to true to start accepting (see [`bind`]).
    gate: watch::Sender<bool>,
    /// The accept loop; finishes once drained.
    task: JoinHandle<()>,
    /// Swappable certificate, when serving TLS.
    pub certificate: Option<Arc<tls::ReloadableCert>>,
    /// Who may set X-Forwarded-For; swapped whole on reload, read once per
    /// accepted connection and once per request.
    trusted_proxies: Arc<ArcSwap<context::TrustedProxies>>,
}

impl Listening {
    /// Starts accepting connections on a listener made by [`bind`].
    /// Connections that arrived before wait in the kernel's backlog and
    /// are served now.
    pub fn open(&self) {
        let _ = self.gate.send(true);
    }

    /// Stops accepting, lets in-flight requests finish (up to the shutdown
    /// timeout), then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Trusts these proxies from the next connection and request on.
    pub fn set_trusted_proxies(&self, proxies: context::TrustedProxies) {
        self.trusted_proxies.store(Arc::new(proxies));
    }
}

/// Why the server could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
}

/// Binds the listener and starts serving.
pub async fn listen(
    config: ServerConfig,
    handler: Arc<dyn Handler>,
) -> Result<Listening, ListenError> {
    let listening = bind(config, handler).await?;
    listening.open();
    Ok(listening)
}

/// Loads the certificate and binds the address, but accepts no connection
/// until [`Listening::open`]: start-up can prove it is able to serve before
/// it makes anything (the first admin) that must exist before the first
/// request is answered.
pub async fn bind(
    config: ServerConfig,
    handler: Arc<dyn Handler>,
) -> Result<Listening, ListenError> {
    let (tls, certificate) = match &config.tls {
        Some((cert, key)) => {
            let (server_config, resolver) =
                tls::server_config(cert, key).map_err(ListenError::Tls)?;
            (
                Some(tokio_rustls::TlsAcceptor::from(server_config)),
                Some(resolver),
            )
        }
        None => (None, None),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ListenError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ListenError::Bind {
        addr: config.listen,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let (gate, opened) = watch::channel(false);
    let trusted_proxies = Arc::new(ArcSwap::from_pointee(config.trusted_proxies.clone()));
    let task = tokio::spawn(accept_loop(
        listener,
        tls,
        config,
        trusted_proxies.clone(),
        handler,
        opened,
        stopped,
    ));
    Ok(Listening {
        addr,
        stop,
        gate,
        task,
        certificate,
        trusted_proxies,
    })
}

fn builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection's idle deadline (`idle_deadline`) enforces the
        // header timeout from accept and between requests; hyper's own
        // starts later and would be a second, partial copy of that rule.
        .header_read_timeout(None)
        .max_buf_size(config.max_header_bytes.max(8192))
        .max_headers(100);
    // A stream may send no more than one whole body before the server reads
    // it, and a connection no more than its streams' bodies together, so
    // what flow control lets a client push matches what the body budget
    // lets the server keep.
    let stream_window = u32::try_from(config.max_body_bytes)
        .unwrap_or(MAX_WINDOW)
        .min(MAX_WINDOW);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_stream_window_size(stream_window)
        .initial_connection_window_size(
            stream_window
                .saturating_mul(MAX_CONCURRENT_STREAMS)
                .min(MAX_WINDOW),
        )
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    config: ServerConfig,
    trusted_proxies: Arc<ArcSwap<context::TrustedProxies>>,
    handler: Arc<dyn Handler>,
    mut opened: watch::Receiver<bool>,
    mut stopped: watch::Receiver<bool>,
) {
    // Nothing is accepted before the gate opens; a stop meanwhile ends the
    // loop with nothing to drain.
    tokio::select! {
        r = opened.wait_for(|open| *open) => if r.is_err() { return },
        _ = stopped.changed() => return,
    }
    let builder = Arc::new(builder(&config));
    // Every connection task holds a clone; once all are gone, the drain is
    // over.
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<Infallible>(1);
    // See the module comment: HTTP/2 may hold no more body bytes at once
    // than HTTP/1 connections alone could.
    let budget = Arc::new(Semaphore::new(
        config
            .max_connections
            .saturating_mul(config.max_body_bytes)
            .min(Semaphore::MAX_PERMITS),
    ));
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let per_address = Arc::new(PerAddress {
        cap: config.max_connections_per_ip,
        open: std::sync::Mutex::new(HashMap::new()),
    });
    let config = Arc::new(config);
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stopped.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => { backoff = Duration::from_millis(5); pair }
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let accepted_at = tokio::time::Instant::now();
        let address_slot = if trusted_proxies.load().trusts(peer.ip()) {
            None
        } else {
            match per_address.admit(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    // Dropping the stream closes it; the global slot goes back.
                    tracing::debug!(peer = %peer, "connection refused: too many from this address");
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            builder: builder.clone(),
            handler: handler.clone(),
            config: config.clone(),
            trusted_proxies: trusted_proxies.clone(),
            peer,
            activity: Arc::new(Activity::new(accepted_at)),
            budget: BodyBudget {
                server: budget.clone(),
                connection: Arc::new(Semaphore::new(config.max_body_bytes)),
            },
        };
        let stop = stopped.clone();
        let open = open.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _address_slot = address_slot;
            let _open = open;
            conn.serve(stream, tls, stop).await;
        });
    }
    drop(listener);
    drop(open);
    tokio::select! {
        _ = all_closed.recv() => {}
        _ = tokio::time::sleep(config.shutdown_timeout) => {
            tracing::warn!("shutdown timeout reached with connections still open");
        }
    }
}

/// Open connections per client address, for the per-address cap. It holds
/// one entry per address with a connection open, so it is bounded by
/// `max_connections`.
struct PerAddress {
    /// Most connections one address may hold.
    cap: usize,
    /// Open connections by address key (IPv6 by /64).
    open: std::sync::Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    /// Counts a new connection from `ip`, or refuses it at the cap.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = crate::domain::limits::address_key(ip);
        // A poisoned lock still holds consistent counts: every change is a
        // single insert or decrement.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

/// One connection counted against its address; uncounted when dropped.
struct AddressSlot {
    /// The table it is counted in.
    table: Arc<PerAddress>,
    /// The address key it is counted under.
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Whether a connection has a request in progress, and since when it has
/// had none; read by the connection's idle deadline. Kept in atomics that
/// a request updates without waking anyone: the deadline re-reads them
/// when its timer fires, so a request costs no wake-up of the connection's
/// task and no timer reset.
#[derive(Debug)]
struct Activity {
    /// When the connection was accepted: `idle_since` counts from here.
    accepted: tokio::time::Instant,
    /// Requests whose head has been read and whose response is not yet
    /// produced (HTTP/2 may have several).
    in_flight: AtomicUsize,
    /// Nanoseconds from `accepted` to when the last response was produced
    /// (0: none yet).
    idle_since: AtomicU64,
    /// Set once a body was refused for its size, its pace or its framing:
    /// the connection then shuts down gracefully (HTTP/2 has no
    /// `Connection: close`).
    closing: AtomicBool,
    /// Wakes the connection when `closing` is set.
    close: Notify,
    /// Wakes the idle deadline when a request ends without an answer and
    /// none is left in progress, so that it checks at once.
    unanswered: Notify,
}

impl Activity {
    fn new(accepted: tokio::time::Instant) -> Activity {
        Activity {
            accepted,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            unanswered: Notify::new(),
        }
    }

    /// When the connection last became idle.
    fn idle_since(&self) -> tokio::time::Instant {
        self.accepted + Duration::from_nanos(self.idle_since.load(Ordering::Acquire))
    }

    /// Records that a response was produced now.
    fn answered(&self) {
        let since = tokio::time::Instant::now().saturating_duration_since(self.accepted);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        self.idle_since.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Resolves once `close` was called.
    async fn closing(self: Arc<Self>) {
        while !self.closing.load(Ordering::Acquire) {
            self.close.notified().await;
        }
    }

    /// Asks the connection to shut down gracefully.
    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        // A permit is kept when no one waits yet.
        self.close.notify_one();
    }
}

/// Marks one request in progress on its connection, from the moment hyper
/// hands over its head until its response is produced or it is dropped (an
/// HTTP/2 stream reset). Only a produced response restarts the idle
/// deadline: a cancelled request leaves it as it was, so a client cannot
/// keep a connection open by opening and resetting streams.
struct InFlight {
    /// The connection's activity.
    activity: Arc<Activity>,
    /// Whether the response was produced.
    answered: bool,
    /// The peer, for the log line of a dropped request.
    peer: SocketAddr,
}

impl InFlight {
    fn start(activity: &Arc<Activity>, peer: SocketAddr) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            activity: activity.clone(),
            answered: false,
            peer,
        }
    }

    /// Records that the response was produced.
    fn answer(&mut self) {
        self.answered = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.answered {
            // Before the count drops, so a deadline that sees no request in
            // flight also sees this answer's time.
            self.activity.answered();
        } else {
            tracing::debug!(peer = %self.peer, "request dropped before its response");
        }
        let before = self.activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        if before == 1 && !self.answered {
            // A reset stream restarts nothing: the deadline, which may
            // have passed while it was in progress, is checked now.
            self.activity.unanswered.notify_one();
        }
    }
}

/// Resolves once the connection has had no request in progress for
/// `timeout`: no complete request head since accept or since the last
/// response. Never resolves while a request is in progress. It sleeps to
/// the deadline the last answer set and checks again when it fires, so it
/// never closes early; while a request is in progress it checks once per
/// `timeout`, and at once when the last request in progress ends without
/// an answer (an HTTP/2 stream reset).
async fn idle_deadline(activity: Arc<Activity>, timeout: Duration) {
    loop {
        let busy = activity.in_flight.load(Ordering::Acquire) > 0;
        let deadline = if busy {
            tokio::time::Instant::now() + timeout
        } else {
            activity.idle_since() + timeout
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = activity.unanswered.notified() => {}
        }
        // A head that arrived on the very tick still counts.
        if activity.in_flight.load(Ordering::Acquire) == 0
            && tokio::time::Instant::now() >= activity.idle_since() + timeout
        {
            return;
        }
    }
}

/// One accepted connection.
struct Connection {
    /// Shared hyper builder (HTTP/1.1 and HTTP/2 settings).
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// What answers requests.
    handler: Arc<dyn Handler>,
    /// Transport settings.
    config: Arc<ServerConfig>,
    /// Who may set X-Forwarded-For, as of each request.
    trusted_proxies: Arc<ArcSwap<context::TrustedProxies>>,
    /// The TCP peer.
    peer: SocketAddr,
    /// Requests in progress, for the idle deadline, and whether to close.
    activity: Arc<Activity>,
    /// Body bytes the whole server, and this connection, may hold at once.
    budget: BodyBudget,
}

/// The body bytes a request may hold while it is read and handled: its
/// connection's share (`max_body_bytes`, what one HTTP/1 connection could
/// hold) and the server's (`max_connections` x `max_body_bytes`).
#[derive(Clone)]
struct BodyBudget {
    /// Shared by every connection.
    server: Arc<Semaphore>,
    /// This connection's own.
    connection: Arc<Semaphore>,
}

/// What a connection is served over: TCP, or TLS over TCP.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl Connection {
    async fn serve(
        self,
        stream: TcpStream,
        tls: Option<tokio_rustls::TlsAcceptor>,
        stop: watch::Receiver<bool>,
    ) {
        let deadline = idle_deadline(self.activity.clone(), self.config.header_read_timeout);
        let peer = self.peer;
        tokio::select! {
            () = self.serve_until_closed(stream, tls, stop) => {}
            () = deadline => {
                // Dropping the connection closes the socket.
                tracing::debug!(peer = %peer, "closed: no request head within the header timeout");
            }
        }
    }

    async fn serve_until_closed(
        self,
        stream: TcpStream,
        tls: Option<tokio_rustls::TlsAcceptor>,
        mut stop: watch::Receiver<bool>,
    ) {
        let service = {
            let handler = self.handler.clone();
            let config = self.config.clone();
            let trusted_proxies = self.trusted_proxies.clone();
            let peer = self.peer;
            let tls_on = tls.is_some();
            let activity = self.activity.clone();
            let budget = self.budget.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                // Called once the head is read: from here until the response
                // is produced, the idle deadline waits.
                let mut in_flight = InFlight::start(&activity, peer);
                let handler = handler.clone();
                let config = config.clone();
                let trusted = trusted_proxies.load_full();
                let budget = budget.clone();
                async move {
                    let (response, close) = handle(
                        req,
                        peer,
                        tls_on,
                        &config,
                        &trusted,
                        &budget,
                        handler.as_ref(),
                    )
                    .await;
                    if close {
                        in_flight.activity.close();
                    }
                    in_flight.answer();
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let io: Box<dyn Io> = match tls {
            Some(acceptor) => {
                let accepted =
                    tokio::time::timeout(self.config.header_read_timeout, acceptor.accept(stream))
                        .await;
                let io = match accepted {
                    Ok(Ok(io)) => io,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                        return;
                    }
                };
                Box::new(io)
            }
            None => Box::new(stream),
        };
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let closing = self.activity.clone().closing();
        tokio::pin!(closing);
        let mut shutting_down = false;
        let result = loop {
            tokio::select! {
                result = conn.as_mut() => break result,
                // A closed channel means the server is gone: drain too.
                _ = stop.wait_for(|stop| *stop), if !shutting_down => {
                    conn.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
                () = &mut closing, if !shutting_down => {
                    tracing::debug!(peer = %self.peer, "closing after a refused body");
                    conn.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
        }
    }
}

/// Answers one request; the flag says the connection must close after it
/// (its body was refused part-read).
async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    tls: bool,
    config: &ServerConfig,
    trusted_proxies_now: &context::TrustedProxies,
    budget: &BodyBudget,
    handler: &dyn Handler,
) -> (Response<Full<Bytes>>, bool) {
    let mut close = false;
    let started = Instant::now();
    let method = req.method().clone();
    // The path only: a query string may carry a token and is never logged.
    let path: String = req.uri().path().chars().take(256).collect();
    let (context, response, span) =
        match RequestContext::new(peer, tls, req.headers(), trusted_proxies_now) {
            Ok(context) => {
                // Every line logged while this request is handled, and its
                // access line, carry its id.
                let span = tracing::info_span!("request", request_id = %context.request_id);
                let (parts, body) = req.into_parts();
                let answer = async {
                    match read_body(&parts, body, config.max_body_bytes, budget).await {
                        Ok((bytes, held)) => {
                            let mut request = Request::from_parts(parts, bytes);
                            request.extensions_mut().insert(context.clone());
                            let response = handler.handle(request).await;
                            // The body's share of the budget goes back only
                            // once the handler, which holds the body, is done.
                            drop(held);
                            response
                        }
                        Err(BodyRefused::Busy(refusal)) => refusal,
                        Err(BodyRefused::Bad(refusal)) => {
                            close = true;
                            refusal
                        }
                    }
                };
                let response = answer.instrument(span.clone()).await;
                (context, response, span)
            }
            // Keying this request by the proxy's own address would share one
            // rate-limit bucket among everyone behind it; see
            // `TrustedProxies::client_ip`.
            Err(context::Unforwarded) => {
                let context = RequestContext::of_peer(peer, tls);
                let span = tracing::info_span!("request", request_id = %context.request_id);
                let refusal = refuse(
                    StatusCode::BAD_REQUEST,
                    "a trusted proxy sent this request without a client address in X-Forwarded-For",
                );
                (context, refusal, span)
            }
        };
    let (mut parts, mut body) = response.into_parts();
    // An answer to HEAD carries no content. HTTP/1 leaves the body out by
    // itself; HTTP/2 would send it as DATA, which a client must treat as a
    // protocol error and reset the stream (RFC 9113, 8.1.1). So it is left
    // out here for both, and the length said is the one GET would send.
    if method == Method::HEAD && !body.is_empty() {
        if !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
            parts
                .headers
                .insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        body = Bytes::new();
    }
    if let Ok(id) = HeaderValue::from_str(context.request_id.as_str()) {
        parts.headers.insert("x-request-id", id);
    }
    parts.headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let elapsed = started.elapsed();
    handler.completed(&method, &path, parts.status, elapsed);
    if tracing::enabled!(target: crate::logsink::ACCESS_TARGET, tracing::Level::INFO) {
        let line = crate::logsink::AccessLine {
            request_id: context.request_id.as_str(),
            method: method.as_str(),
            path: &path,
            status: parts.status.as_u16(),
            latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            client: context.client_ip,
        };
        if !crate::logsink::access(&line) {
            span.in_scope(|| crate::logsink::access_event(&line));
        }
    }
    (Response::from_parts(parts, Full::new(body)), close)
}

/// A request's share of the body budgets, given back when dropped; none
/// for a request without a body.
struct HeldShare {
    /// Of its connection's.
    _connection: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Of the server's.
    _server: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Why a body was not read.
enum BodyRefused {
    /// The server-wide body budget is spent; nothing of the body was read.
    Busy(Response<Bytes>),
    /// The body was too large, too slow or malformed; the connection closes.
    Bad(Response<Bytes>),
}

/// Reads a body in full, holding its share of the connection's and the
/// server's `budget` (its declared length, or `limit` when undeclared) from
/// before its first byte is read; the shares are returned with the body.
async fn read_body(
    parts: &http::request::Parts,
    body: Incoming,
    limit: usize,
    budget: &BodyBudget,
) -> Result<(Bytes, HeldShare), BodyRefused> {
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyRefused::Bad(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        )));
    }
    // A request without a body (most GETs) holds no budget and needs no
    // read deadline: there is nothing to read.
    if body.is_end_stream() {
        let none = HeldShare {
            _connection: None,
            _server: None,
        };
        return Ok((Bytes::new(), none));
    }
    // hyper knows the exact length when one was declared (and holds the
    // client to it), and zero for a request without a body.
    let share = body
        .size_hint()
        .upper()
        .map_or(limit, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let share = u32::try_from(share).unwrap_or(u32::MAX);
    // The connection's share first: a connection that has spent its own
    // never touches the server's.
    let held = budget
        .connection
        .clone()
        .try_acquire_many_owned(share)
        .and_then(|connection| {
            let server = budget.server.clone().try_acquire_many_owned(share)?;
            Ok(HeldShare {
                _connection: Some(connection),
                _server: Some(server),
            })
        })
        .map_err(|_| {
            let mut busy = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is reading too many request bodies; retry shortly",
            );
            busy.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            BodyRefused::Busy(busy)
        })?;
    match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok((collected.to_bytes(), held)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyRefused::Bad(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ))),
        Ok(Err(_)) => Err(BodyRefused::Bad(refuse(
            StatusCode::BAD_REQUEST,
            "request body could not be read",
        ))),
        Err(_) => Err(BodyRefused::Bad(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "request body took too long",
        ))),
    }
}

/// A JSON error produced by the transport itself.
fn refuse(status: StatusCode, message: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}
