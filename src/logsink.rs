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
        let batch = std::mem::take(&mut *waiting);
        let out = self.lock_out();
        drop(waiting);
        if !batch.is_empty() {
            // Nothing better to do with a failed write than go on: the
            // next batch may succeed.
            let _ = (self.target)(&batch);
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let line = format!(
                "latchkey: {dropped} access log lines dropped: stderr was not being read\n"
            );
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
        let mut waiting = self.lock_waiting();
        if self.direct.load(Ordering::Relaxed) {
            // No writer thread: write at once.
            waiting.extend_from_slice(line);
            let batch = std::mem::take(&mut *waiting);
            let _out = self.lock_out();
            drop(waiting);
            let _ = (self.target)(&batch);
            return;
        }
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

    /// Writes one line at once, after every access line that waits.
    fn write_now(&self, line: &[u8]) {
        let mut waiting = self.lock_waiting();
        let mut batch = std::mem::take(&mut *waiting);
        let _out = self.lock_out();
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

    fn text(out: &Arc<Mutex<Vec<u8>>>) -> String {
        String::from_utf8(out.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn other_lines_come_after_the_access_lines_made_before_them() {
        let (sink, out, _) = captured();
        sink.shared.append(b"access 1\n");
        sink.shared.append(b"access 2\n");
        sink.shared.write_now(b"warning\n");
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
