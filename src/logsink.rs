//! Where log lines go: stderr, with the access log buffered.
//!
//! One access line per request, each written to stderr by the request's
//! own thread, cost about a fifth of the server's throughput (a `write`
//! system call per request, and a lock every worker thread contends for),
//! and a log reader that stops reading (a stalled journald, a full pipe)
//! would block every request once the pipe filled. So access lines
//! (target `latchkey::access`) are appended to a bounded buffer that one
//! thread of its own writes out: every [`FLUSH_EVERY`], or sooner once
//! [`FLUSH_AT`] bytes wait. A request never waits on stderr; when the
//! buffer holds [`CAPACITY`] bytes because stderr is not being read, further
//! access lines are dropped and counted, and the count is logged once
//! stderr takes lines again.
//!
//! Every other line (warnings, errors, start and stop) is written at once,
//! after whatever access lines wait, so the log keeps the order in which
//! lines were made. What a crash can lose: the access lines of the last
//! [`FLUSH_EVERY`] at most; [`LogSink::flush`] writes them out on a clean
//! stop.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use std::net::IpAddr;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;

/// The target of the access log's lines.
pub const ACCESS_TARGET: &str = "latchkey::access";

/// How long an access line may wait before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Waiting bytes that wake the writer before [`FLUSH_EVERY`].
pub const FLUSH_AT: usize = 64 * 1024;

/// The most access-line bytes held while stderr is not being read; lines
/// beyond it are dropped and counted.
pub const CAPACITY: usize = 1024 * 1024;

/// Writes bytes out: stderr, or a test's buffer.
type Target = dyn Fn(&[u8]) -> std::io::Result<()> + Send + Sync;

/// The log's destination, shared by the subscriber and the writer thread.
#[derive(Clone)]
pub struct LogSink {
    /// The buffer and its writer's wake-up.
    shared: Arc<Shared>,
}

/// What the subscriber's writers and the writer thread share.
struct Shared {
    /// Access-line bytes not yet written, in the order they were made.
    waiting: Mutex<Vec<u8>>,
    /// Wakes the writer thread early.
    wake: Condvar,
    /// Held while bytes go to stderr: taken before `waiting` is released,
    /// so bytes reach stderr in the order they left `waiting`.
    out: Mutex<()>,
    /// Access lines dropped because the buffer was full, not yet reported.
    dropped: AtomicU64,
    /// Set when the writer thread could not be started: every line is
    /// then written at once.
    direct: AtomicBool,
    /// Where the bytes go: stderr, or a test's buffer.
    target: Box<Target>,
}

impl LogSink {
    /// A sink writing to stderr, with its writer thread started.
    pub fn stderr() -> LogSink {
        LogSink::to(|bytes| std::io::stderr().lock().write_all(bytes))
    }

    /// A sink writing with `target`, with its writer thread started.
    pub fn to(target: impl Fn(&[u8]) -> std::io::Result<()> + Send + Sync + 'static) -> LogSink {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            wake: Condvar::new(),
            out: Mutex::new(()),
            dropped: AtomicU64::new(0),
            direct: AtomicBool::new(false),
            target: Box::new(target),
        });
        let writer = shared.clone();
        // Lives as long as the process: the subscriber holds the sink.
        let spawned = std::thread::Builder::new()
            .name("latchkey-log".into())
            .spawn(move || {
                loop {
                    writer.write_waiting(true);
                }
            });
        if let Err(e) = spawned {
            // Without the thread, lines still go out: every write flushes.
            eprintln!("latchkey: log writer thread not started ({e}); writing each line at once");
            shared.direct.store(true, Ordering::Relaxed);
        }
        LogSink { shared }
    }

    /// Writes out every waiting access line now.
    pub fn flush(&self) {
        self.shared.write_waiting(false);
    }
}

impl Shared {
    fn lock_waiting(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while the lock was held leaves at worst a partial line.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_out(&self) -> MutexGuard<'_, ()> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes out what waits, and the count of dropped lines once there is
    /// room again. When `wait`, first sleeps until a line waits (an idle
    /// server's writer does not wake) and then lets lines gather for up to
    /// [`FLUSH_EVERY`] or [`FLUSH_AT`] bytes.
    fn write_waiting(&self, wait: bool) {
        let mut waiting = self.lock_waiting();
        if wait {
            while waiting.is_empty() && self.dropped.load(Ordering::Relaxed) == 0 {
                waiting = self.wake.wait(waiting).unwrap_or_else(|e| e.into_inner());
            }
            if waiting.len() < FLUSH_AT {
                waiting = match self.wake.wait_timeout(waiting, FLUSH_EVERY) {
                    Ok((guard, _)) => guard,
                    Err(e) => e.into_inner().0,
                };
            }
        }
        // Never wait for `out` while holding `waiting`: a stalled stderr
        // holds `out`, and every request appends under `waiting`. `out`
        // first, then the batch, so batches reach stderr in their order.
        drop(waiting);
        let out = self.lock_out();
        let batch = std::mem::take(&mut *self.lock_waiting());
        if !batch.is_empty() {
            // Nothing better to do with a failed write than go on: the
            // next batch may succeed.
            let _ = (self.target)(&batch);
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let line =
                format!("latchkey: {dropped} log lines dropped: stderr was not being read\n");
            let _ = (self.target)(line.as_bytes());
        }
        drop(out);
        // Keep a buffer of a useful size for the next batch, not the
        // largest one a burst ever needed.
        let mut reuse = batch;
        reuse.clear();
        reuse.shrink_to(FLUSH_AT);
        let mut waiting = self.lock_waiting();
        if waiting.is_empty() && waiting.capacity() < reuse.capacity() {
            *waiting = reuse;
        }
    }

    /// Appends one access line, or drops it when the buffer is full.
    fn append(&self, line: &[u8]) {
        if self.direct.load(Ordering::Relaxed) {
            // No writer thread: write at once, taking `out` before
            // `waiting` as the writer does, so the two never deadlock.
            let _out = self.lock_out();
            let mut batch = std::mem::take(&mut *self.lock_waiting());
            batch.extend_from_slice(line);
            let _ = (self.target)(&batch);
            return;
        }
        let mut waiting = self.lock_waiting();
        if waiting.len() + line.len() > CAPACITY {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.wake.notify_one();
            return;
        }
        let was_empty = waiting.is_empty();
        waiting.extend_from_slice(line);
        // The writer sleeps until a first line waits, then until enough
        // have gathered or FLUSH_EVERY has passed.
        if was_empty || waiting.len() >= FLUSH_AT {
            self.wake.notify_one();
        }
    }

    /// Writes one line at once, after every access line that waits; or,
    /// when stderr is busy (being written, or stalled), queues it behind
    /// them for the writer thread, so that no thread ever waits for stderr
    /// while holding the buffer every request appends to.
    fn write_now(&self, line: &[u8]) {
        let mut waiting = self.lock_waiting();
        let _out = match self.out.try_lock() {
            Ok(out) => out,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                // Past the access lines' bound, these lines get a bound of
                // their own, and are counted when dropped.
                if waiting.len() + line.len() <= 2 * CAPACITY {
                    waiting.extend_from_slice(line);
                } else {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                self.wake.notify_one();
                return;
            }
        };
        let mut batch = std::mem::take(&mut *waiting);
        drop(waiting);
        batch.extend_from_slice(line);
        let _ = (self.target)(&batch);
    }
}

/// One line on its way: the formatter writes each event whole, through
/// one writer made for it.
pub struct LineWriter {
    /// Where it goes.
    shared: Arc<Shared>,
    /// Whether it is an access line (buffered) or another (written at once).
    access: bool,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.access {
            self.shared.append(buf);
        } else {
            self.shared.write_now(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            shared: self.shared.clone(),
            access: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter {
            shared: self.shared.clone(),
            access: meta.target() == ACCESS_TARGET,
        }
    }
}

/// How lines look: tracing-subscriber's default text, or its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// `2026-11-30T03:43:28.950228Z  INFO request{request_id=..}: ...`.
    Text,
    /// One JSON object a line, the event's fields at the top level.
    Json,
}

/// Where [`access`] writes, once `main` has set up logging without colour.
static DIRECT: OnceLock<(LogSink, LineFormat)> = OnceLock::new();

/// Lets [`access`] write access lines itself, to `sink` in `format`.
/// Called once, by the binary's logging set-up, and only when lines carry
/// no terminal colours.
pub fn write_access_lines_directly(sink: LogSink, format: LineFormat) {
    let _ = DIRECT.set((sink, format));
}

/// One request's access line.
pub struct AccessLine<'a> {
    /// The request's id.
    pub request_id: &'a str,
    /// Its method.
    pub method: &'a str,
    /// Its path, without the query string (which may carry a token).
    pub path: &'a str,
    /// The answer's status.
    pub status: u16,
    /// Microseconds from its head to its answer.
    pub latency_us: u64,
    /// The client's address.
    pub client: IpAddr,
}

/// Writes an access line, byte for byte as tracing-subscriber's formatter
/// writes the event `info!(target: "latchkey::access", method, path,
/// status, latency_us, client, "request")` in the span `request{request_id}`,
/// but without its machinery: building and dispatching the event, visiting
/// its fields through `fmt::Debug`, and formatting its time through the
/// `time` crate cost about a tenth of the CPU of an authenticated request.
/// False when the binary has not set a sink up (the caller then logs the
/// event through tracing); the caller checks that the line is enabled.
pub fn access(line: &AccessLine<'_>) -> bool {
    let Some((sink, format)) = DIRECT.get() else {
        return false;
    };
    let mut out = Vec::with_capacity(256);
    format_access(&mut out, *format, std::time::SystemTime::now(), line);
    sink.shared.append(&out);
    true
}

/// The access line as a tracing event, logged in the request's span where
/// [`access`] cannot write it itself (colours on, or no sink set up); the
/// event [`access`] writes byte for byte.
pub fn access_event(line: &AccessLine<'_>) {
    tracing::info!(
        target: ACCESS_TARGET,
        method = %line.method,
        path = %line.path,
        status = line.status,
        latency_us = line.latency_us,
        client = %line.client,
        "request"
    )
}

fn format_access(
    out: &mut Vec<u8>,
    format: LineFormat,
    now: std::time::SystemTime,
    line: &AccessLine<'_>,
) {
    use std::io::Write as _;
    let micros = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    match format {
        LineFormat::Text => {
            write_timestamp(out, micros);
            let _ = writeln!(
                out,
                "  INFO request{{request_id={}}}: {ACCESS_TARGET}: request method={} path={} status={} latency_us={} client={}",
                line.request_id, line.method, line.path, line.status, line.latency_us, line.client
            );
        }
        LineFormat::Json => {
            out.extend_from_slice(b"{\"timestamp\":\"");
            write_timestamp(out, micros);
            out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"method\":");
            json_string(out, line.method);
            out.extend_from_slice(b",\"path\":");
            json_string(out, line.path);
            let _ = write!(
                out,
                ",\"status\":{},\"latency_us\":{},\"client\":\"{}\",\"target\":\"{ACCESS_TARGET}\",\"span\":{{\"request_id\":",
                line.status, line.latency_us, line.client
            );
            json_string(out, line.request_id);
            out.extend_from_slice(b",\"name\":\"request\"}}\n");
        }
    }
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as tracing-subscriber's default timer
/// writes it, for `micros` since the Unix epoch (UTC).
fn write_timestamp(out: &mut Vec<u8>, micros: u128) {
    use crate::domain::clock::{digits, rfc3339_bytes};
    let secs = i64::try_from(micros / 1_000_000).unwrap_or(i64::MAX);
    let frac = i64::try_from(micros % 1_000_000).unwrap_or(0);
    // The clock is between 1970 and 9999; past that, the epoch.
    let whole = rfc3339_bytes(secs).unwrap_or(*b"1970-01-01T00:00:00Z");
    let mut sub = *b".000000Z";
    digits(&mut sub[1..7], frac);
    out.extend_from_slice(&whole[..19]);
    out.extend_from_slice(&sub);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink writing into a shared buffer, which can be made to block.
    fn captured() -> (LogSink, Arc<Mutex<Vec<u8>>>, Arc<AtomicBool>) {
        let out = Arc::new(Mutex::new(Vec::new()));
        let stalled = Arc::new(AtomicBool::new(false));
        let (o, s) = (out.clone(), stalled.clone());
        let sink = LogSink::to(move |bytes| {
            while s.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            o.lock().unwrap().extend_from_slice(bytes);
            Ok(())
        });
        (sink, out, stalled)
    }

    #[test]
    fn timestamps_match_the_time_crate_over_centuries() {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        // Every day of leap and century years, and a spread of instants.
        let mut at: i64 = -2_208_988_800; // 1900-01-01
        while at < 7_258_118_400 {
            // 2200-01-01
            let micros = at.max(0) as u128 * 1_000_000 + 123_456;
            let mut ours = Vec::new();
            write_timestamp(&mut ours, micros);
            let theirs = time::OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000)
                .unwrap()
                .format(&format)
                .unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), theirs);
            at += 86_400 * 7 + 3_601;
        }
    }

    /// The line tracing-subscriber's own formatter writes for the same
    /// event in the same span, in `format`, with its timestamp cut off.
    fn tracing_line(format: LineFormat, line: &AccessLine<'_>) -> String {
        use tracing_subscriber::prelude::*;
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        let writer = move || Capture(o.clone());
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer);
        let subscriber: Box<dyn tracing::Subscriber + Send + Sync> = match format {
            LineFormat::Text => Box::new(tracing_subscriber::registry().with(layer)),
            LineFormat::Json => Box::new(
                tracing_subscriber::registry().with(
                    layer
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(false),
                ),
            ),
        };
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = %line.request_id);
            span.in_scope(|| access_event(line));
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        without_timestamp(&text)
    }

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn without_timestamp(line: &str) -> String {
        // Both formats put the 27-character timestamp first (JSON after
        // `{"timestamp":"`).
        let at = line.find("20").unwrap();
        format!("{}{}", &line[..at], &line[at + 27..])
    }

    #[test]
    fn access_lines_are_the_lines_tracing_would_write() {
        let lines = [
            AccessLine {
                request_id: "abcdefghij012345",
                method: "GET",
                path: "/api/v1/auth/me",
                status: 200,
                latency_us: 12,
                client: "127.0.0.1".parse().unwrap(),
            },
            AccessLine {
                request_id: "zz",
                method: "PATCH",
                path: "/a\"b\\c/%22",
                status: 404,
                latency_us: u64::MAX,
                client: "2001:db8::1".parse().unwrap(),
            },
        ];
        for format in [LineFormat::Text, LineFormat::Json] {
            for line in &lines {
                let mut ours = Vec::new();
                format_access(&mut ours, format, std::time::SystemTime::now(), line);
                let ours = without_timestamp(&String::from_utf8(ours).unwrap());
                assert_eq!(ours, tracing_line(format, line), "{format:?}");
            }
        }
    }

    /// A warning logged while stderr is stalled (housekeeping, a reload, a
    /// failing request) holds up no request's access line.
    #[test]
    fn a_warning_while_stderr_is_stalled_blocks_no_access_line() {
        let (sink, out, stalled) = captured();
        stalled.store(true, Ordering::SeqCst);
        // The writer thread takes this line and blocks in the stalled write.
        sink.shared.append(b"first\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !sink.shared.lock_waiting().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let warner = sink.clone();
        let warned = std::thread::spawn(move || warner.shared.write_now(b"WARN something\n"));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let appender = sink.clone();
        std::thread::spawn(move || {
            appender.shared.append(b"GET /api/v1/auth/me 200\n");
            let _ = done_tx.send(());
        });
        let appended = done_rx.recv_timeout(Duration::from_secs(2)).is_ok();
        stalled.store(false, Ordering::SeqCst);
        assert!(appended, "an access line waited on a stalled stderr");
        warned.join().unwrap();
        sink.flush();
        // Nothing lost, and in the order made.
        let written = text(&out);
        let first = written.find("first").unwrap();
        let warn = written.find("WARN something").unwrap();
        assert!(first < warn, "{written}");
        assert!(written.contains("GET /api/v1/auth/me 200"), "{written}");
    }

    fn text(out: &Arc<Mutex<Vec<u8>>>) -> String {
        String::from_utf8(out.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn other_lines_come_after_the_access_lines_made_before_them() {
        let (sink, out, _) = captured();
        sink.shared.append(b"access 1\n");
        sink.shared.append(b"access 2\n");
        sink.shared.write_now(b"warning\n");
        // Written at once, or queued in order when the writer thread was
        // writing at that moment: a flush settles both.
        sink.flush();
        assert_eq!(text(&out), "access 1\naccess 2\nwarning\n");
        sink.shared.append(b"access 3\n");
        sink.flush();
        assert_eq!(text(&out), "access 1\naccess 2\nwarning\naccess 3\n");
    }

    #[test]
    fn access_lines_reach_the_log_without_a_flush() {
        let (sink, out, _) = captured();
        sink.shared.append(b"access 1\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while text(&out).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(text(&out), "access 1\n");
    }

    #[test]
    fn a_stalled_reader_drops_and_counts_access_lines_and_blocks_no_one() {
        let (sink, out, stalled) = captured();
        stalled.store(true, Ordering::SeqCst);
        // The writer thread picks up a first batch and blocks in the
        // stalled write; appends go on without waiting for it.
        let line = [b'x'; 99];
        let mut line = line.to_vec();
        line.push(b'\n');
        let lines = 2 * CAPACITY / line.len() + 1000;
        for _ in 0..lines {
            sink.shared.append(&line);
        }
        let held = sink.shared.lock_waiting().len();
        assert!(held <= CAPACITY, "{held} bytes held");
        stalled.store(false, Ordering::SeqCst);
        sink.flush();
        let written = text(&out);
        let kept = written.lines().filter(|l| l.starts_with('x')).count();
        let reported: usize = written
            .lines()
            .filter_map(|l| l.strip_prefix("latchkey: "))
            .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
            .sum();
        assert!(reported > 0, "no drop reported");
        assert_eq!(kept + reported, lines, "every line kept or counted");
    }
}
