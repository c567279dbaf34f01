//! Password rules and the bounded argon2id hashing pool.
//!
//! Hashing is the most expensive thing the server does (about 13 ms of one
//! core with the default parameters). It runs on tokio's blocking pool, never
//! on the async workers, and at most `workers` hashes run at once. Callers
//! wait in a queue of at most `queue` entries; past that the pool answers
//! `Busy` at once, which the API turns into 503 with Retry-After. So a flood
//! of logins costs a bounded amount of CPU and memory (`workers` argon2
//! buffers of `m` KiB each, and `queue` waiting futures), and token-
//! authenticated requests keep their async workers.
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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

use super::secrets;

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
    /// A hash of a random password with the current parameters, verified
    /// when the account does not exist so that the answer costs the same.
    decoy: String,
    /// argon2 verifications run since start, counted where they run, so
    /// tests can prove that every attempt costs exactly one.
    verifications: Arc<AtomicU64>,
    /// Hashes allowed to run at once (the permits of `running`).
    workers: usize,
    /// Admissions refused as busy since start, for the metrics.
    refused: AtomicU64,
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
        let workers = workers.max(1);
        let decoy_password = Password(secrets::random_token());
        let decoy = hash_blocking(params, &decoy_password)?;
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
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let _other = match slot.lane {
            Lane::Other => Some(self.other_running.acquire().await.map_err(|_| Busy)?),
            Lane::SignIn => None,
        };
        let _permit = self.running.acquire().await.map_err(|_| Busy)?;
        let result = tokio::task::spawn_blocking(job).await.map_err(|_| Busy);
        drop(slot);
        result
    }

    /// Hashes a new password with the current parameters.
    /// It is never a sign-in, so it uses the [`Lane::Other`] share.
    pub async fn hash(&self, password: Password) -> Result<Result<String, String>, Busy> {
        let params = self.params;
        let slot = self.admit(Lane::Other)?;
        self.run(slot, move || hash_blocking(params, &password))
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
        self.run(slot, move || {
            // Always run: `known && verify(..)` would skip the decoy's
            // hash and answer an unknown account early.
            let matched = verify_counted(&count, &password, &hash);
            let ok = known && matched;
            let stale = !has_params(&hash, params);
            let rehashed = if ok && stale {
                hash_blocking(params, &password).ok()
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

/// One full argon2 verification, counted as it runs.
fn verify_counted(count: &AtomicU64, password: &Password, hash: &str) -> bool {
    let matched = Argon2::default()
        .verify_password(password.bytes(), hash)
        .is_ok();
    count.fetch_add(1, Ordering::AcqRel);
    matched
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

fn hash_blocking(params: HashParams, password: &Password) -> Result<String, String> {
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
}
