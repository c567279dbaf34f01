//! What the allocator keeps after a burst of work, and when it gives it
//! back.
//!
//! glibc's malloc keeps memory that was freed in the arena that served it
//! (one per thread that allocated, up to eight per core), to serve the next
//! allocation without asking the kernel. After a flood of requests the
//! arenas of the tokio workers and of the blocking threads that wrote to
//! the store hold megabytes that nothing uses, and they count as the
//! process's resident memory for as long as it runs (measured: 4.7 MiB 10 s
//! after three login floods, about 1.6 MiB of which `malloc_trim` hands
//! back). So once the server has been quiet for a few seconds after some
//! work, one `malloc_trim(0)` gives the free pages of every arena back to
//! the kernel. It runs only then: trimming while requests arrive would give
//! back pages that the next request faults in again, and would hold each
//! arena's lock while the next request waits for it.
//!
//! "Quiet" is read from the process's own CPU time, sampled once a second
//! by a thread of its own (not counting that thread's own time): it needs
//! no hook in the request path, and it sees every kind of work (requests,
//! hashing, the store, start-up itself, which is why the first trim follows
//! the start). The argon2 blocks of the hashing threads are not the
//! allocator's: each thread maps its own and unmaps it after its quiet
//! period (`domain::password`).

use std::time::Duration;

/// How often the process's CPU time is sampled.
const PERIOD: Duration = Duration::from_secs(1);

/// CPU time used in one period (by the threads other than the sampling
/// one) under which the period counts as quiet: 1% of one core. An idle
/// server's housekeeping, or a few requests a second, stay under it; a
/// single password hash (about 13 ms) does not.
const QUIET_CPU: Duration = Duration::from_millis(10);

/// Quiet periods in a row, after work, before the allocator is trimmed.
const QUIET_PERIODS: u32 = 3;

/// Stack of the sampling thread: it calls `clock_gettime`, `sleep` and
/// `malloc_trim` and nothing else.
const STACK_BYTES: usize = 64 * 1024;

/// Starts the thread that trims the allocator once the process has gone
/// quiet after work. Where it cannot start, or off glibc, nothing is
/// trimmed and nothing else changes.
pub fn give_back_when_quiet() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::thread::Builder::new()
            .name("memory".into())
            .stack_size(STACK_BYTES)
            .spawn(|| {
                let mut quiet = Quiet::new(others_cpu());
                loop {
                    std::thread::sleep(PERIOD);
                    if quiet.tick(others_cpu()) {
                        trim();
                    }
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot start the memory thread; freed memory stays with the allocator");
        }
    }
}

/// When to trim, from the CPU time the process's other threads have used,
/// sampled once a period.
#[derive(Debug)]
struct Quiet {
    /// The CPU time at the last sample.
    last: Duration,
    /// Quiet periods in a row since the last busy one.
    quiet: u32,
    /// Whether work happened since the last trim (true at start: starting
    /// is work).
    owed: bool,
}

impl Quiet {
    fn new(cpu: Duration) -> Quiet {
        Quiet {
            last: cpu,
            quiet: 0,
            owed: true,
        }
    }

    /// Records one period that ended with `cpu` used in all; true when the
    /// allocator is to be trimmed now: the last [`QUIET_PERIODS`] periods
    /// were quiet and there was work since the last trim.
    fn tick(&mut self, cpu: Duration) -> bool {
        let used = cpu.saturating_sub(self.last);
        self.last = cpu;
        if used >= QUIET_CPU {
            self.owed = true;
            self.quiet = 0;
            return false;
        }
        self.quiet = self.quiet.saturating_add(1);
        if self.owed && self.quiet >= QUIET_PERIODS {
            self.owed = false;
            return true;
        }
        false
    }
}

/// CPU time of the whole process less the calling thread's: what the
/// server's own work used, without the sampling (and trimming) itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn others_cpu() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(clock(libc::CLOCK_THREAD_CPUTIME_ID))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this
    // stack for the call. A failure leaves it zero, which reads as no work.
    let _ = unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Hands every arena's free pages back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases memory the allocator holds free;
    // it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUSY: Duration = QUIET_CPU;
    const IDLE: Duration = Duration::from_millis(1);

    /// Feeds periods that each used the given CPU time; returns which
    /// ticks (1-based) asked for a trim.
    fn trims(quiet: &mut Quiet, periods: &[Duration]) -> Vec<usize> {
        let mut cpu = quiet.last;
        let mut out = Vec::new();
        for (n, used) in periods.iter().enumerate() {
            cpu += *used;
            if quiet.tick(cpu) {
                out.push(n + 1);
            }
        }
        out
    }

    /// Start-up is work: the first trim comes after the first quiet
    /// periods, once, and a server that stays idle is not trimmed again.
    #[test]
    fn trims_once_after_start_then_waits_for_work() {
        let mut quiet = Quiet::new(Duration::from_millis(80));
        assert_eq!(trims(&mut quiet, &[IDLE; 20]), [3]);
    }

    /// Work re-arms the trim, which follows only once the work has
    /// stopped for the quiet periods: never while it goes on, and a busy
    /// period in between starts the count again.
    #[test]
    fn trims_after_work_stops_and_never_during_it() {
        let mut quiet = Quiet::new(Duration::ZERO);
        assert_eq!(trims(&mut quiet, &[IDLE; 3]), [3]);
        assert_eq!(trims(&mut quiet, &[BUSY; 30]), Vec::<usize>::new());
        assert_eq!(
            trims(&mut quiet, &[IDLE, IDLE, BUSY, IDLE, IDLE, IDLE, IDLE]),
            [6]
        );
        assert_eq!(trims(&mut quiet, &[IDLE; 10]), Vec::<usize>::new());
    }

    /// The sampled time grows with work done on another thread (the
    /// server's work is never on the sampling thread).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn others_cpu_counts_work_on_other_threads() {
        let before = others_cpu();
        std::thread::spawn(|| {
            let start = clock(libc::CLOCK_THREAD_CPUTIME_ID);
            while clock(libc::CLOCK_THREAD_CPUTIME_ID) - start < Duration::from_millis(50) {
                std::hint::black_box(0u64);
            }
        })
        .join()
        .expect("spinner");
        assert!(others_cpu() - before >= Duration::from_millis(50));
    }
}
