//! Password rules and the bounded argon2id hashing pool.
//!
//! Hashing is the most expensive thing the server does (about 13 ms of one
//! core with the default parameters). It runs on `workers` dedicated OS
//! threads of its own, never on the async workers, and at most `workers`
//! hashes run at once. Callers wait in a queue of at most `queue` entries;
//! past that the pool answers `Busy` at once, which the API turns into 503
//! with Retry-After. So a flood of logins costs a bounded amount of CPU and
//! memory (`workers` argon2 buffers of `m` KiB each, and `queue` waiting
//! futures), and token-authenticated requests keep their async workers.
//!
//! Each hashing thread allocates one argon2 memory block on its first job
//! and hashes every later password into that same block, so the allocator
//! never sees a stream of 19 MiB allocations (which glibc would otherwise
//! keep in one arena per thread long after a flood). A thread that has had
//! no job for [`IDLE_RELEASE`] frees its block, which is mapped straight
//! from the kernel so that it goes back to the system at once; the next
//! job maps it again.
//! The threads run at a lower scheduling priority ([`HASH_NICE`]) than the
//! request path, so a login flood that saturates hashing takes CPU from
//! authenticated requests as little as the scheduler allows. Lowering the
//! priority is best-effort: where it fails (or off Linux), hashing runs at
//! the ordinary priority and nothing else changes.
//!
//! Sign-ins have capacity of their own. Every job belongs to a [`Lane`]:
//! other hashing (a password change's current-password check and new hash,
//! an account created) may hold at most half of the admission slots
//! (`workers + queue`, rounded down, at least one) and half of the workers
//! (rounded down, at least one), so a flood of it can never refuse or
//! starve a sign-in; sign-ins may use the whole pool.
//!
//! Admission is a separate step ([`Hasher::admit`]) so that a caller can
//! reserve its place before it charges any rate limit: an attempt refused
//! as busy costs no one's allowance.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::{Semaphore, oneshot};
use unicode_normalization::UnicodeNormalization;

use super::secrets;

/// How long a hashing thread keeps its argon2 memory block after its last
/// job: long enough that logins a few seconds apart reuse it, short enough
/// that the memory is back well within 10 s of the end of a flood.
pub const IDLE_RELEASE: Duration = Duration::from_secs(5);

/// The nice value hashing threads ask for (the request path runs at 0), so
/// that under a login flood the scheduler prefers authenticated requests.
pub const HASH_NICE: i32 = 10;

/// Fewest characters a new password may have.
pub const MIN_CHARS: usize = 8;
/// Most characters a password may have (after normalisation). Generous, so a
/// passphrase is never truncated, and small enough that hashing stays cheap.
pub const MAX_CHARS: usize = 1024;
/// Input longer than this many bytes is refused before any other work.
pub const MAX_BYTES: usize = 4 * MAX_CHARS;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB (`m`).
    pub memory_kib: u32,
    /// Passes (`t`).
    pub iterations: u32,
    /// Lanes (`p`).
    pub parallelism: u32,
}

impl Default for HashParams {
    /// OWASP's argon2id recommendation: m=19456 KiB, t=2, p=1.
    fn default() -> Self {
        HashParams {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// A password that passed the length rules, NFKC-normalised.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Why a password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRuleError {
    #[error("password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_CHARS} characters")]
    TooLong,
}

impl Password {
    /// Normalises a candidate password and applies the length rules.
    /// Absurdly long input is refused on its byte length before it is even
    /// normalised.
    pub fn new(raw: &str) -> Result<Password, PasswordRuleError> {
        if raw.len() > MAX_BYTES {
            return Err(PasswordRuleError::TooLong);
        }
        let normalised: String = raw.nfkc().collect();
        let chars = normalised.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordRuleError::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordRuleError::TooLong);
        }
        Ok(Password(normalised))
    }

    /// A password offered at login: only the upper bound applies (an old
    /// short password must still be checkable), and `None` means the input
    /// is too long to be anyone's password.
    pub fn for_login(raw: &str) -> Option<Password> {
        if raw.len() > MAX_BYTES {
            return None;
        }
        let normalised: String = raw.nfkc().collect();
        (normalised.chars().count() <= MAX_CHARS).then_some(Password(normalised))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The pool is full: try again shortly.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("password hashing is at capacity")]
pub struct Busy;

/// The result of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The password matched.
    pub ok: bool,
    /// The stored hash used other parameters than the current ones.
    pub stale: bool,
    /// When the password matched a stale hash: a fresh hash of it with the
    /// current parameters, made in the same job so the plaintext never
    /// leaves the pool.
    pub rehashed: Option<String>,
}

/// Which share of the pool a job may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A sign-in's verification: may use the whole pool.
    SignIn,
    /// Any other hashing: only the share sign-ins do not keep.
    Other,
}

/// The bounded hashing pool.
pub struct Hasher {
    /// Parameters for new hashes.
    params: HashParams,
    /// One permit per hash allowed to run at once.
    running: Arc<Semaphore>,
    /// One permit per [`Lane::Other`] hash allowed to run at once, taken
    /// before `running`, so other work never holds every worker.
    other_running: Arc<Semaphore>,
    /// Hashes running or waiting; bounded by `capacity`.
    admitted: AtomicUsize,
    /// [`Lane::Other`] hashes running or waiting; bounded by
    /// `other_capacity`.
    admitted_other: AtomicUsize,
    /// `workers + queue`.
    capacity: usize,
    /// The admission slots [`Lane::Other`] may hold; the rest are kept for
    /// sign-ins.
    other_capacity: usize,
    /// A PHC string with the current parameters, a random salt and a
    /// random output ([`decoy_hash`]), verified when the account does not
    /// exist so that the answer costs the same.
    decoy: String,
    /// argon2 verifications run since start, counted where they run, so
    /// tests can prove that every attempt costs exactly one.
    verifications: Arc<AtomicU64>,
    /// Hashes allowed to run at once (the permits of `running`).
    workers: usize,
    /// Admissions refused as busy since start, for the metrics.
    refused: AtomicU64,
    /// The dedicated hashing threads every job runs on.
    pool: Pool,
}

/// One admission slot in the pool, reserved before any other work; freed
/// on drop, even if the request is cancelled while waiting.
pub struct Slot<'a> {
    /// The pool it belongs to.
    hasher: &'a Hasher,
    /// The share it was admitted to.
    lane: Lane,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.hasher.admitted.fetch_sub(1, Ordering::AcqRel);
        if self.lane == Lane::Other {
            self.hasher.admitted_other.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Takes one unit of `counter` unless it is at `bound`.
fn take(counter: &AtomicUsize, bound: usize) -> bool {
    let mut current = counter.load(Ordering::Acquire);
    loop {
        if current >= bound {
            return false;
        }
        match counter.compare_exchange_weak(
            current,
            current + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
}

impl Hasher {
    /// Builds a pool of `workers` concurrent hashes and `queue` waiters.
    pub fn new(params: HashParams, workers: usize, queue: usize) -> Result<Hasher, String> {
        Hasher::with_idle_release(params, workers, queue, IDLE_RELEASE)
    }

    /// [`Hasher::new`] with the quiet period after which a hashing thread
    /// frees its memory block (tests shorten it to watch the release).
    fn with_idle_release(
        params: HashParams,
        workers: usize,
        queue: usize,
        idle_release: Duration,
    ) -> Result<Hasher, String> {
        let workers = workers.max(1);
        let block_count = argon2(params)?.params().block_count();
        let decoy = decoy_hash(params)?;
        let capacity = workers + queue;
        Ok(Hasher {
            params,
            running: Arc::new(Semaphore::new(workers)),
            other_running: Arc::new(Semaphore::new((workers / 2).max(1))),
            admitted: AtomicUsize::new(0),
            admitted_other: AtomicUsize::new(0),
            capacity,
            other_capacity: (capacity / 2).max(1),
            decoy,
            verifications: Arc::new(AtomicU64::new(0)),
            workers,
            refused: AtomicU64::new(0),
            pool: Pool::start(workers, block_count, idle_release)?,
        })
    }

    /// The parameters new hashes get.
    pub fn params(&self) -> HashParams {
        self.params
    }

    /// Hashes and verifications admitted right now (running or queued).
    pub fn in_flight(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// argon2 verifications run since start.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Acquire)
    }

    /// What the hashing threads have started and allocated since start.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Hashes running on a worker right now (the rest of
    /// [`Hasher::in_flight`] wait).
    pub fn running(&self) -> usize {
        self.workers
            .saturating_sub(self.running.available_permits())
    }

    /// Admissions refused as busy since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Acquire)
    }

    /// Reserves a place in the pool for one job of `lane`, or says the pool
    /// (or the lane's share of it) is full.
    pub fn admit(&self, lane: Lane) -> Result<Slot<'_>, Busy> {
        if lane == Lane::Other && !take(&self.admitted_other, self.other_capacity) {
            self.refused.fetch_add(1, Ordering::AcqRel);
            return Err(Busy);
        }
        if !take(&self.admitted, self.capacity) {
            if lane == Lane::Other {
                self.admitted_other.fetch_sub(1, Ordering::AcqRel);
            }
            self.refused.fetch_add(1, Ordering::AcqRel);
            return Err(Busy);
        }
        Ok(Slot { hasher: self, lane })
    }

    async fn run<T: Send + 'static>(
        &self,
        slot: Slot<'_>,
        job: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let other = match slot.lane {
            Lane::Other => Some(
                self.other_running
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Busy)?,
            ),
            Lane::SignIn => None,
        };
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Busy)?;
        let (tx, rx) = oneshot::channel();
        self.pool.submit(Box::new(move |scratch: &mut Scratch| {
            // The permits travel with the job and are released when it is
            // over on its thread, so even a caller that gave up waiting
            // never lets more than `workers` hashes run at once.
            let _permits = (permit, other);
            // A caller that gave up waiting wants no answer: skip the work
            // rather than spend a hash on it.
            if !tx.is_closed() {
                let _ = tx.send(job(scratch));
            }
        }));
        let result = rx.await.map_err(|_| Busy);
        drop(slot);
        result
    }

    /// Hashes a new password with the current parameters.
    /// It is never a sign-in, so it uses the [`Lane::Other`] share.
    pub async fn hash(&self, password: Password) -> Result<Result<String, String>, Busy> {
        let params = self.params;
        let slot = self.admit(Lane::Other)?;
        self.run(slot, move |scratch| {
            hash_into(scratch, params, &password, secrets::random_bytes())
        })
        .await
    }

    /// Checks `password` against `stored`, or against the decoy when there
    /// is no account, in the place `slot` reserved. Both cases run the same
    /// full argon2 verification (the decoy's result is then ignored), so
    /// they cost the same.
    pub async fn verify(
        &self,
        slot: Slot<'_>,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verified, Busy> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.decoy.clone());
        let params = self.params;
        let count = self.verifications.clone();
        let decoy = self.decoy.clone();
        self.run(slot, move |scratch| {
            // Always run: `known && verify(..)` would skip the decoy's
            // hash and answer an unknown account early.
            let matched = verify_counted(scratch, &count, &password, &hash, &decoy);
            let ok = known && matched;
            let stale = !has_params(&hash, params);
            let rehashed = if ok && stale {
                hash_into(scratch, params, &password, secrets::random_bytes()).ok()
            } else {
                None
            };
            Verified {
                ok,
                stale,
                rehashed,
            }
        })
        .await
    }
}

/// One full verification, counted as it runs: argon2, or bcrypt for an
/// imported hash. A bcrypt hash may be far cheaper than the decoy (cost 4
/// takes about a millisecond), so a bcrypt check that fails also runs the
/// decoy's argon2 verification (its result ignored): a wrong password then
/// costs at least what it costs for an unknown account, and a right one
/// pays the same again for its re-hash to argon2id. It still counts as one
/// verification: one attempt, one check of the stored hash.
fn verify_counted(
    scratch: &mut Scratch,
    count: &AtomicU64,
    password: &Password,
    hash: &str,
    decoy: &str,
) -> bool {
    let matched = if is_bcrypt(hash) {
        let matched = verify_bcrypt(password, hash);
        if !matched {
            let _ = verify_phc(scratch, password, decoy);
        }
        matched
    } else {
        verify_phc(scratch, password, hash)
    };
    count.fetch_add(1, Ordering::AcqRel);
    matched
}

/// Longest password a bcrypt hash can check. bcrypt reads only the first
/// 72 bytes of its input, so a longer password would match on its prefix
/// alone: such a password never matches a bcrypt hash (the account's owner
/// resets it), whatever its first 72 bytes are.
pub const BCRYPT_MAX_BYTES: usize = 72;

/// Highest bcrypt cost an imported hash may carry (2^cost rounds; 14 takes
/// about a second of one core), so a planted hash cannot make one sign-in
/// attempt occupy a hashing thread for minutes.
pub const BCRYPT_MAX_COST: u32 = 14;

/// Most memory (KiB) an imported argon2 hash may ask for at sign-in:
/// 256 MiB, over ten times the default, and a bound on what one planted
/// hash can make a hashing thread allocate.
pub const IMPORT_MAX_MEMORY_KIB: u32 = 256 * 1024;
/// Most passes an imported argon2 hash may ask for.
pub const IMPORT_MAX_ITERATIONS: u32 = 16;
/// Most lanes an imported argon2 hash may ask for.
pub const IMPORT_MAX_PARALLELISM: u32 = 16;

/// Whether a stored hash is a bcrypt one (`$2a$`, `$2b$` or `$2y$`), as
/// imported from another system and replaced by argon2id at the first
/// successful sign-in.
pub fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

/// Checks a password against a bcrypt hash. bcrypt runs even for a
/// password over [`BCRYPT_MAX_BYTES`], so that refusing it costs the same;
/// the comparison of the digests is the crate's, in constant time.
fn verify_bcrypt(password: &Password, hash: &str) -> bool {
    let bytes = password.bytes();
    let matched = bcrypt::verify(bytes, hash).unwrap_or(false);
    matched && bytes.len() <= BCRYPT_MAX_BYTES
}

/// Checks a hash an operator imports (see `latchkey import`): an argon2id
/// PHC string, version 19, with parameters within the `IMPORT_MAX_*`
/// bounds (or exactly the server's own), or a bcrypt string of cost at
/// most [`BCRYPT_MAX_COST`]. The answer says what is wrong, never the hash.
pub fn check_imported_hash(hash: &str, own: HashParams) -> Result<(), String> {
    if is_bcrypt(hash) {
        let parts: bcrypt::HashParts = hash
            .parse()
            .map_err(|_| "password_hash is not a valid bcrypt hash".to_string())?;
        let cost = parts.get_cost();
        if !(4..=BCRYPT_MAX_COST).contains(&cost) {
            return Err(format!(
                "password_hash: bcrypt cost {cost} is outside 4..={BCRYPT_MAX_COST}"
            ));
        }
        return Ok(());
    }
    let parsed = PasswordHash::new(hash).map_err(|_| {
        "password_hash is neither an argon2id PHC string nor a bcrypt ($2a$/$2b$/$2y$) hash"
            .to_string()
    })?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "password_hash: algorithm {} is not argon2id",
            parsed.algorithm.as_str()
        ));
    }
    if parsed.version != Some(19) {
        return Err("password_hash: argon2id must be version 19 (v=19)".into());
    }
    let (Some(salt), Some(output)) = (&parsed.salt, &parsed.hash) else {
        return Err("password_hash: the PHC string has no salt or no hash".into());
    };
    if salt.len() < 8 || output.len() < 16 {
        return Err("password_hash: salt or hash is too short".into());
    }
    let params = Params::try_from(&parsed)
        .map_err(|e| format!("password_hash: invalid argon2 parameters: {e}"))?;
    let theirs = HashParams {
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
    };
    let within = theirs.memory_kib <= IMPORT_MAX_MEMORY_KIB
        && theirs.iterations <= IMPORT_MAX_ITERATIONS
        && theirs.parallelism <= IMPORT_MAX_PARALLELISM;
    if !within && theirs != own {
        return Err(format!(
            "password_hash: argon2 parameters m={} t={} p={} exceed the import bounds (m<={IMPORT_MAX_MEMORY_KIB} KiB, t<={IMPORT_MAX_ITERATIONS}, p<={IMPORT_MAX_PARALLELISM})",
            theirs.memory_kib, theirs.iterations, theirs.parallelism
        ));
    }
    Ok(())
}

/// Checks a password against a PHC string of any argon2 variant, version
/// and parameters (what `argon2`'s own `verify_password` accepts), hashing
/// into the thread's memory block. The outputs are compared in constant
/// time.
fn verify_phc(scratch: &mut Scratch, password: &Password, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(out) = buffer.get_mut(..expected.len()) else {
        return false;
    };
    let hashed = scratch.with_memory(argon.params().block_count(), |memory| {
        argon.hash_password_into_with_memory(password.bytes(), salt, &mut *out, memory)
    });
    hashed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

/// Hashes a password with `params` and `salt` into the thread's memory
/// block, and encodes it exactly as `argon2`'s `hash_password_with_salt`
/// does (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`).
fn hash_into(
    scratch: &mut Scratch,
    params: HashParams,
    password: &Password,
    salt: [u8; 16],
) -> Result<String, String> {
    let argon = argon2(params)?;
    let failed = |e: &dyn std::fmt::Display| format!("hashing failed: {e}");
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    scratch
        .with_memory(argon.params().block_count(), |memory| {
            argon.hash_password_into_with_memory(password.bytes(), &salt, &mut out, memory)
        })
        .map_err(|e| failed(&e))?;
    phc_string(&argon, &salt, &out)
}

/// The decoy an unknown account's sign-in is verified against: argon2id
/// with `params`, a random salt and a random output, encoded as a real hash
/// is. Verifying a password against it costs exactly what verifying one
/// against a real hash does (the same parameters, salt and output length),
/// and never matches. No password is hashed to make it: a real hash's
/// output is indistinguishable from random bytes, and that hash took a full
/// argon2 run (and its 19 MiB) on every start.
fn decoy_hash(params: HashParams) -> Result<String, String> {
    let argon = argon2(params)?;
    let salt = secrets::random_bytes::<16>();
    let out = secrets::random_bytes::<{ Params::DEFAULT_OUTPUT_LEN }>();
    phc_string(&argon, &salt, &out)
}

/// `$argon2id$v=19$m=..,t=..,p=..$salt$hash`, exactly as `argon2`'s
/// `hash_password_with_salt` encodes it.
fn phc_string(argon: &Argon2<'_>, salt: &[u8], out: &[u8]) -> Result<String, String> {
    let failed = |e: &dyn std::fmt::Display| format!("hashing failed: {e}");
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// What the hashing threads have done since start, for tests and
/// diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Hashing threads ever started (stays at `workers`: they are reused).
    pub threads_started: u64,
    /// argon2 memory blocks ever allocated.
    pub blocks_allocated: u64,
    /// Blocks freed after a quiet period.
    pub blocks_released: u64,
    /// Blocks held right now (at most `workers`).
    pub blocks_held: u64,
}

/// The counters behind [`PoolStats`].
#[derive(Default)]
struct Counters {
    /// See [`PoolStats::threads_started`].
    threads_started: AtomicU64,
    /// See [`PoolStats::blocks_allocated`].
    blocks_allocated: AtomicU64,
    /// See [`PoolStats::blocks_released`].
    blocks_released: AtomicU64,
    /// See [`PoolStats::blocks_held`].
    blocks_held: AtomicU64,
}

/// A job for a hashing thread; it is given the thread's memory.
type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

/// Jobs waiting for a hashing thread. Never longer than `workers` (plus
/// jobs of callers that gave up), because a job is only submitted by a
/// caller holding one of the `running` permits.
struct Queue {
    /// Jobs in arrival order.
    jobs: VecDeque<Job>,
    /// The pool was dropped: threads finish the queue and exit.
    closed: bool,
}

/// What the pool's threads share.
struct Shared {
    /// The jobs to run.
    queue: Mutex<Queue>,
    /// Signalled when a job arrives or the pool closes.
    ready: Condvar,
    /// How long a thread keeps its block with nothing to do.
    idle_release: Duration,
    /// Counts of threads and allocations.
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock, so a poisoned lock only means a
        // thread panicked between two plain field updates: the queue is
        // still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fixed set of dedicated hashing threads.
struct Pool {
    /// The queue and counters the threads share.
    shared: Arc<Shared>,
}

impl Pool {
    /// Starts `workers` threads, each of which will hash into a block of
    /// `block_count` argon2 blocks.
    fn start(workers: usize, block_count: usize, idle_release: Duration) -> Result<Pool, String> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            idle_release,
            counters: Counters::default(),
        });
        for i in 0..workers {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{i}"))
                .spawn(move || work(&shared, block_count))
                .map_err(|e| format!("could not start a hashing thread: {e}"))?;
        }
        Ok(Pool { shared })
    }

    /// Queues a job for the next free thread.
    fn submit(&self, job: Job) {
        self.shared.lock().jobs.push_back(job);
        self.shared.ready.notify_one();
    }

    fn stats(&self) -> PoolStats {
        let c = &self.shared.counters;
        PoolStats {
            threads_started: c.threads_started.load(Ordering::Acquire),
            blocks_allocated: c.blocks_allocated.load(Ordering::Acquire),
            blocks_released: c.blocks_released.load(Ordering::Acquire),
            blocks_held: c.blocks_held.load(Ordering::Acquire),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The threads are not joined: one may be finishing a hash, and the
        // caller (often an async task) should not wait for it.
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

/// One hashing thread's reusable argon2 memory.
pub(crate) struct Scratch {
    /// The block, absent until the first job and after a quiet period.
    blocks: Option<Memory>,
    /// Its size with the current parameters.
    block_count: usize,
    /// Where allocations are counted.
    shared: Arc<Shared>,
}

impl Scratch {
    /// Runs `f` on at least `count` blocks of memory: the thread's own
    /// block when it is large enough (always, for the current parameters),
    /// or a block allocated for this one call (a stored hash with a larger
    /// `m` than the current one, verified once and then re-hashed).
    fn with_memory<R>(&mut self, count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        let counters = &self.shared.counters;
        if count > self.block_count {
            counters.blocks_allocated.fetch_add(1, Ordering::AcqRel);
            let mut once = vec![Block::new(); count];
            return f(&mut once);
        }
        if self.blocks.is_none() {
            self.blocks = Some(Memory::new(self.block_count));
            counters.blocks_allocated.fetch_add(1, Ordering::AcqRel);
            counters.blocks_held.fetch_add(1, Ordering::AcqRel);
        }
        match &mut self.blocks {
            Some(memory) => f(&mut memory.blocks()[..count]),
            // Unreachable (set just above); a fresh block keeps it total.
            None => f(&mut vec![Block::new(); count]),
        }
    }

    /// Frees the block, which hands the memory back to the system.
    fn release(&mut self) {
        if self.blocks.take().is_none() {
            return;
        }
        let counters = &self.shared.counters;
        counters.blocks_released.fetch_add(1, Ordering::AcqRel);
        counters.blocks_held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hashing thread's argon2 memory, mapped straight from the kernel on
/// Unix so that freeing it returns it to the system at once. Through
/// malloc it would not: once glibc has seen a block this size freed, it
/// raises its mmap threshold and serves the next one from the thread's
/// arena, whose top `malloc_trim` never gives back (measured: 19 MiB per
/// hashing thread still resident long after a flood).
struct Memory {
    /// The blocks; on Unix an anonymous private mapping of exactly them.
    #[cfg(unix)]
    map: std::ptr::NonNull<Block>,
    /// How many blocks.
    #[cfg(unix)]
    len: usize,
    /// The blocks, where there is no mmap.
    #[cfg(not(unix))]
    vec: Vec<Block>,
}

#[cfg(unix)]
// SAFETY: the mapping is owned by this value alone (no other pointer to it
// exists), so moving it to another thread is moving plain memory.
unsafe impl Send for Memory {}

#[cfg(unix)]
impl Memory {
    /// Maps `len` zeroed blocks; if the kernel refuses, aborts the way an
    /// allocation failure does (argon2 cannot run without its memory).
    fn new(len: usize) -> Memory {
        use std::alloc::{Layout, handle_alloc_error};
        let len = len.max(1);
        let Ok(layout) = Layout::array::<Block>(len) else {
            handle_alloc_error(Layout::new::<Block>());
        };
        // SAFETY: an anonymous private mapping of a non-zero size with no
        // fixed address touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        match std::ptr::NonNull::new(ptr.cast::<Block>()) {
            Some(map) if ptr != libc::MAP_FAILED => Memory { map, len },
            _ => handle_alloc_error(layout),
        }
    }

    fn blocks(&mut self) -> &mut [Block] {
        // SAFETY: `map` points to `len` blocks mapped readable and writable
        // for as long as `self` lives; mmap returns page-aligned memory
        // (more than a Block's 64-byte alignment), zero-filled, and all
        // zeroes is a valid Block (plain u64 words). `&mut self` makes
        // the slice the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr(), self.len) }
    }
}

#[cfg(unix)]
impl Drop for Memory {
    fn drop(&mut self) {
        let size = self.len * std::mem::size_of::<Block>();
        // SAFETY: exactly the mapping `new` made, unmapped once, with no
        // reference to it left (`blocks` borrows `self`).
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), size);
        }
    }
}

#[cfg(not(unix))]
impl Memory {
    fn new(len: usize) -> Memory {
        Memory {
            vec: vec![Block::new(); len],
        }
    }

    fn blocks(&mut self) -> &mut [Block] {
        &mut self.vec
    }
}

/// What a hashing thread does next.
enum Next {
    /// Run this job.
    Run(Job),
    /// Nothing happened for the quiet period: free the block.
    Release,
    /// The pool is gone.
    Exit,
}

/// The body of one hashing thread.
fn work(shared: &Arc<Shared>, block_count: usize) {
    shared
        .counters
        .threads_started
        .fetch_add(1, Ordering::AcqRel);
    lower_priority();
    let mut scratch = Scratch {
        blocks: None,
        block_count,
        shared: shared.clone(),
    };
    loop {
        let next = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break Next::Run(job);
                }
                if queue.closed {
                    break Next::Exit;
                }
                if scratch.blocks.is_none() {
                    queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                let (guard, waited) = shared
                    .ready
                    .wait_timeout(queue, shared.idle_release)
                    .unwrap_or_else(|e| e.into_inner());
                queue = guard;
                if waited.timed_out() && queue.jobs.is_empty() && !queue.closed {
                    break Next::Release;
                }
            }
        };
        match next {
            // A panic inside argon2 must not take the thread (and a share
            // of the pool's capacity) with it; the job's caller sees its
            // answer channel closed and answers busy.
            Next::Run(job) => {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut scratch)));
            }
            Next::Release => scratch.release(),
            Next::Exit => return,
        }
    }
}

/// Asks the scheduler to run the calling thread as batch work
/// (`SCHED_BATCH`: a hashing thread that wakes never preempts a request
/// thread that is running, and is treated as CPU-bound) at [`HASH_NICE`].
/// Not `SCHED_IDLE`, which would let a flood of cheap requests starve
/// logins altogether. On Linux both calls apply to the calling thread
/// only. Best-effort: a refusal (a seccomp filter, a container without the
/// right) leaves the thread at the ordinary priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads the one sched_param passed by
        // reference; gettid and setpriority take plain integers. Each
        // touches no other memory of ours and affects the calling thread.
        let (batch, nice) = unsafe {
            let batch = libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
            let tid = libc::gettid();
            let nice = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, HASH_NICE);
            (batch, nice)
        };
        if batch != 0 || nice != 0 {
            tracing::debug!("could not lower the hashing threads' priority");
        }
    }
}

fn argon2(params: HashParams) -> Result<Argon2<'static>, String> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// Checks argon2 parameters without hashing anything.
pub fn validate_params(params: HashParams) -> Result<(), String> {
    argon2(params).map(|_| ())
}

#[cfg(test)]
fn hash_blocking(params: HashParams, password: &Password) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher as _;
    let salt = secrets::random_bytes::<16>();
    argon2(params)?
        .hash_password_with_salt(password.bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Whether a PHC string is argon2id with exactly these parameters.
fn has_params(hash: &str, params: HashParams) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return false;
    }
    match Params::try_from(&parsed) {
        Ok(p) => {
            p.m_cost() == params.memory_kib
                && p.t_cost() == params.iterations
                && p.p_cost() == params.parallelism
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher as _;

    const LIGHT: HashParams = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn length_rules() {
        assert_eq!(
            Password::new("short").err(),
            Some(PasswordRuleError::TooShort)
        );
        assert!(Password::new("eight ch").is_ok());
        assert!(Password::new(&"x".repeat(MAX_CHARS)).is_ok());
        assert_eq!(
            Password::new(&"x".repeat(MAX_CHARS + 1)).err(),
            Some(PasswordRuleError::TooLong)
        );
        assert!(Password::for_login(&"x".repeat(MAX_BYTES + 1)).is_none());
        assert!(Password::for_login("short").is_some());
    }

    #[test]
    fn normalisation_makes_equivalent_forms_equal() {
        // U+212B ANGSTROM SIGN and U+00C5 normalise to the same character.
        let a = Password::new("\u{212B}ngstrom!").map(|p| p.0);
        let b = Password::new("\u{00C5}ngstrom!").map(|p| p.0);
        assert_eq!(a, b);
    }

    #[tokio::test]
    async fn verify_and_staleness() {
        let hasher = Hasher::new(LIGHT, 1, 1).map_err(|e| e.to_string()).unwrap();
        let hash = hasher
            .hash(Password::new("correct horse").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let good = hasher
            .verify(
                hasher.admit(Lane::SignIn).unwrap(),
                Password::new("correct horse").unwrap(),
                Some(hash.clone()),
            )
            .await
            .unwrap();
        assert_eq!(
            good,
            Verified {
                ok: true,
                stale: false,
                rehashed: None
            }
        );
        let bad = hasher
            .verify(
                hasher.admit(Lane::SignIn).unwrap(),
                Password::new("wrong horse").unwrap(),
                Some(hash.clone()),
            )
            .await
            .unwrap();
        assert!(!bad.ok);
        let unknown = hasher
            .verify(
                hasher.admit(Lane::SignIn).unwrap(),
                Password::new("correct horse").unwrap(),
                None,
            )
            .await
            .unwrap();
        assert!(!unknown.ok);

        let stronger = HashParams {
            iterations: 2,
            ..LIGHT
        };
        let upgraded = Hasher::new(stronger, 1, 1).unwrap();
        let v = upgraded
            .verify(
                upgraded.admit(Lane::SignIn).unwrap(),
                Password::new("correct horse").unwrap(),
                Some(hash),
            )
            .await
            .unwrap();
        assert!(v.ok && v.stale);
        assert!(
            v.rehashed
                .unwrap()
                .starts_with("$argon2id$v=19$m=64,t=2,p=1$")
        );
    }

    #[test]
    fn imported_hashes_are_bounded() {
        let phc = |alg: &str, v: u32, m: u32, t: u32| {
            format!(
                "${alg}$v={v}$m={m},t={t},p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
            )
        };
        assert_eq!(
            check_imported_hash(&phc("argon2id", 19, 19456, 2), LIGHT),
            Ok(())
        );
        assert!(check_imported_hash(&phc("argon2i", 19, 19456, 2), LIGHT).is_err());
        assert!(check_imported_hash(&phc("argon2id", 16, 19456, 2), LIGHT).is_err());
        let huge = phc("argon2id", 19, IMPORT_MAX_MEMORY_KIB + 1, 1);
        assert!(check_imported_hash(&huge, LIGHT).is_err());
        let own = HashParams {
            memory_kib: IMPORT_MAX_MEMORY_KIB + 1,
            iterations: 1,
            parallelism: 1,
        };
        assert_eq!(check_imported_hash(&huge, own), Ok(()));
        assert!(
            check_imported_hash(&phc("argon2id", 19, 64, IMPORT_MAX_ITERATIONS + 1), LIGHT)
                .is_err()
        );
        let salt = "abcdefghijklmnopqrstuu";
        let digest = "Os7zmOeDtpN3BcgZfQDwvPKb5cF8/rS";
        let bcrypt = |cost: u32| format!("$2b${cost:02}${salt}{digest}");
        assert_eq!(check_imported_hash(&bcrypt(4), LIGHT), Ok(()));
        assert_eq!(check_imported_hash(&bcrypt(BCRYPT_MAX_COST), LIGHT), Ok(()));
        assert!(check_imported_hash(&bcrypt(BCRYPT_MAX_COST + 1), LIGHT).is_err());
        assert!(check_imported_hash("$2b$04$short", LIGHT).is_err());
    }

    #[tokio::test]
    async fn pool_refuses_past_capacity() {
        let hasher = Hasher::new(LIGHT, 1, 0).unwrap();
        let held = hasher.admit(Lane::SignIn).unwrap();
        assert!(hasher.admit(Lane::SignIn).is_err());
        drop(held);
        assert!(hasher.admit(Lane::SignIn).is_ok());
    }

    #[tokio::test]
    async fn other_work_never_takes_the_sign_ins_share() {
        // Two workers and two queue places: other work may hold two of the
        // four slots; sign-ins the rest, and only other work is refused.
        let hasher = Hasher::new(LIGHT, 2, 2).unwrap();
        let a = hasher.admit(Lane::Other).unwrap();
        let b = hasher.admit(Lane::Other).unwrap();
        assert!(hasher.admit(Lane::Other).is_err());
        let c = hasher.admit(Lane::SignIn).unwrap();
        let d = hasher.admit(Lane::SignIn).unwrap();
        assert!(hasher.admit(Lane::SignIn).is_err());
        assert_eq!(hasher.in_flight(), 4);
        drop((a, c));
        assert!(hasher.admit(Lane::Other).is_ok());
        drop((b, d));
        assert_eq!(hasher.in_flight(), 0);
    }

    #[tokio::test]
    async fn an_unknown_account_runs_the_decoy_verification() {
        let hasher = Hasher::new(LIGHT, 1, 1).unwrap();
        let before = hasher.verifications();
        let v = hasher
            .verify(
                hasher.admit(Lane::SignIn).unwrap(),
                Password::new("correct horse").unwrap(),
                None,
            )
            .await
            .unwrap();
        assert!(!v.ok);
        assert_eq!(hasher.verifications(), before + 1);
    }

    /// The decoy has what makes its verification cost what a real one
    /// costs: argon2id with the hasher's own parameters, a 16-byte salt and
    /// an output as long as a real hash's; it is random (two hashers differ)
    /// and no password matches it.
    #[test]
    fn the_decoy_costs_a_full_verification_with_the_current_parameters() {
        let hasher = Hasher::new(LIGHT, 1, 1).unwrap();
        let other = Hasher::new(LIGHT, 1, 1).unwrap();
        assert_ne!(hasher.decoy, other.decoy);
        assert!(has_params(&hasher.decoy, LIGHT), "{}", hasher.decoy);
        let mut real_scratch = scratch(LIGHT);
        let password = Password::new("correct horse").unwrap();
        let real = hash_into(&mut real_scratch, LIGHT, &password, [7u8; 16]).unwrap();
        let decoy = PasswordHash::new(&hasher.decoy).unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(decoy.params, real.params);
        assert_eq!(
            decoy.salt.map(|s| s.as_ref().len()),
            real.salt.map(|s| s.as_ref().len())
        );
        assert_eq!(decoy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        let mut checked = scratch(LIGHT);
        assert!(!verify_phc(&mut checked, &password, &hasher.decoy));
        assert!(checked.blocks.is_some(), "the decoy ran argon2");
    }

    /// A thread's memory outside any pool, for the encoding tests.
    fn scratch(params: HashParams) -> Scratch {
        let pool = Pool::start(0, 0, IDLE_RELEASE).unwrap();
        Scratch {
            blocks: None,
            block_count: argon2(params).unwrap().params().block_count(),
            shared: pool.shared.clone(),
        }
    }

    #[test]
    fn a_failed_bcrypt_check_also_runs_the_decoy_and_counts_once() {
        let decoy = hash_blocking(LIGHT, &Password::new("decoy password").unwrap()).unwrap();
        let stored = bcrypt::hash("the right password", 4).unwrap();
        let count = AtomicU64::new(0);
        let right = Password::for_login("the right password").unwrap();
        let wrong = Password::for_login("a wrong password").unwrap();

        let mut matched = scratch(LIGHT);
        assert!(verify_counted(
            &mut matched,
            &count,
            &right,
            &stored,
            &decoy
        ));
        assert!(matched.blocks.is_none(), "a match runs no argon2 here");
        assert_eq!(count.load(Ordering::Acquire), 1);

        let mut failed = scratch(LIGHT);
        assert!(!verify_counted(
            &mut failed,
            &count,
            &wrong,
            &stored,
            &decoy
        ));
        assert!(failed.blocks.is_some(), "a failure runs the decoy's argon2");
        assert_eq!(count.load(Ordering::Acquire), 2);
    }

    #[test]
    fn pooled_hashes_are_the_crates_phc_strings() {
        let password = Password::new("correct horse").unwrap();
        let salt = [7u8; 16];
        let mut scratch = scratch(LIGHT);
        let ours = hash_into(&mut scratch, LIGHT, &password, salt).unwrap();
        let theirs = argon2(LIGHT)
            .unwrap()
            .hash_password_with_salt(password.bytes(), &salt)
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs);
        // The same memory, reused for the next hash, gives the same answer.
        assert_eq!(
            hash_into(&mut scratch, LIGHT, &password, salt).unwrap(),
            theirs
        );
    }

    #[test]
    fn hashes_of_other_variants_and_parameters_still_verify() {
        let password = Password::new("correct horse").unwrap();
        let wrong = Password::new("wrong horse!").unwrap();
        let salt = b"sixteen byte slt";
        let mut scratch = scratch(LIGHT);
        let cases = [
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(64, 1, 1, None),
            ),
            (
                Algorithm::Argon2i,
                Version::V0x13,
                Params::new(64, 2, 1, None),
            ),
            (
                Algorithm::Argon2d,
                Version::V0x10,
                Params::new(32, 1, 1, None),
            ),
            // More memory than the current parameters, and more lanes.
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(256, 1, 2, None),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(64, 1, 1, Some(16)),
            ),
        ];
        for (algorithm, version, params) in cases {
            let hash = Argon2::new(algorithm, version, params.unwrap())
                .hash_password_with_salt(password.bytes(), salt)
                .unwrap()
                .to_string();
            assert!(verify_phc(&mut scratch, &password, &hash), "{hash}");
            assert!(!verify_phc(&mut scratch, &wrong, &hash), "{hash}");
        }
        assert!(!verify_phc(
            &mut scratch,
            &password,
            "$argon2id$v=19$garbage"
        ));
        assert!(!verify_phc(&mut scratch, &password, "not a hash"));
    }

    #[tokio::test]
    async fn an_idle_thread_gives_its_memory_back_and_takes_it_again() {
        let hasher = Hasher::with_idle_release(LIGHT, 1, 1, Duration::from_millis(1)).unwrap();
        async fn check(hasher: &Hasher) -> Result<Verified, Busy> {
            hasher
                .verify(
                    hasher.admit(Lane::SignIn).unwrap(),
                    Password::new("correct horse").unwrap(),
                    None,
                )
                .await
        }
        check(&hasher).await.unwrap();
        assert_eq!(hasher.pool_stats().blocks_allocated, 1);
        // Poll (bounded) for the release, which follows the quiet period.
        for _ in 0..2000 {
            if hasher.pool_stats().blocks_held == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let idle = hasher.pool_stats();
        assert_eq!((idle.blocks_held, idle.blocks_released), (0, 1));
        check(&hasher).await.unwrap();
        let again = hasher.pool_stats();
        assert_eq!((again.blocks_allocated, again.threads_started), (2, 1));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_below_the_request_path() {
        let hasher = Hasher::new(LIGHT, 1, 1).unwrap();
        // SAFETY: getpriority reads one integer about the calling thread.
        let nice =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let ours = nice();
        let theirs = hasher
            .run(hasher.admit(Lane::SignIn).unwrap(), move |_| nice())
            .await
            .unwrap();
        // An already lowered test process cannot be raised back to 10.
        assert_eq!(theirs, ours.max(HASH_NICE));
        // SAFETY: sched_getscheduler reads one integer about the calling
        // thread.
        let policy = hasher
            .run(hasher.admit(Lane::SignIn).unwrap(), |_| unsafe {
                libc::sched_getscheduler(0)
            })
            .await
            .unwrap();
        assert_eq!(policy, libc::SCHED_BATCH);
    }
}
