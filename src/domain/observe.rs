//! What the domain tells an observer (the metrics) as it works, and the
//! readiness check.
//!
//! The domain knows nothing of Prometheus: it reports a few events through
//! the narrow [`Observer`] trait (a password check finished, a credential
//! was authenticated), and answers questions about its state (the hashing
//! pool, live sessions, whether the store takes writes) when asked. Each
//! event is reported from exactly one place: [`Core::check_password`] for
//! password checks and [`Core::authenticate`] for credentials.
//!
//! [`Core::check_password`]: super::login
//! [`Core::authenticate`]: super::auth

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{Core, Error, auth::CredentialKind};
use crate::store::StoreError;

/// How a password check ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckOutcome {
    /// The password was right and the account may sign in.
    Success,
    /// Unknown account or wrong password.
    InvalidCredentials,
    /// Refused because the account (or identifier) is locked.
    Locked,
    /// The password was right but the account is disabled.
    Disabled,
    /// Refused by a rate limit before any hash.
    RateLimited,
    /// Refused because the hashing pool was full.
    Busy,
    /// The store or something else failed.
    Error,
}

impl CheckOutcome {
    /// The outcome of a check's result.
    pub fn of<T>(result: &Result<T, Error>) -> CheckOutcome {
        match result {
            Ok(_) => CheckOutcome::Success,
            Err(Error::InvalidCredentials) => CheckOutcome::InvalidCredentials,
            Err(Error::Locked { .. }) => CheckOutcome::Locked,
            Err(Error::Disabled) => CheckOutcome::Disabled,
            Err(Error::RateLimited { .. }) => CheckOutcome::RateLimited,
            Err(Error::Busy { .. }) => CheckOutcome::Busy,
            Err(_) => CheckOutcome::Error,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Success => "success",
            CheckOutcome::InvalidCredentials => "invalid_credentials",
            CheckOutcome::Locked => "locked",
            CheckOutcome::Disabled => "disabled",
            CheckOutcome::RateLimited => "rate_limited",
            CheckOutcome::Busy => "busy",
            CheckOutcome::Error => "error",
        }
    }
}

/// Receives the domain's events. Every method must be cheap and must not
/// block: it runs on the request path.
pub trait Observer: Send + Sync {
    /// A password check finished. `event` is `login` for a sign-in and
    /// `password_check` for a current-password check; `via` names the
    /// document (or operation) that asked.
    fn password_checked(&self, event: &'static str, via: &str, outcome: CheckOutcome);

    /// A bearer credential was presented: its kind as told by its shape
    /// (`None` for one no kind accepts, a refresh token say), and whether
    /// it was accepted (`Ok(true)`), refused (`Ok(false)`), or could not be
    /// checked (`Err`, a store failure).
    fn authenticated(&self, kind: Option<CredentialKind>, accepted: Result<bool, ()>);
}

/// The observer of a core nobody watches (tests that build a core alone).
struct Unobserved;

impl Observer for Unobserved {
    fn password_checked(&self, _: &'static str, _: &str, _: CheckOutcome) {}
    fn authenticated(&self, _: Option<CredentialKind>, _: Result<bool, ()>) {}
}

/// The core's observation state: who listens, and whether a readiness
/// probe is waiting on the store.
pub struct Hooks {
    /// Receives the events.
    observer: Arc<dyn Observer>,
    /// The readiness probe's write in progress, if one is: probes that
    /// arrive meanwhile share its outcome rather than pile up blocking
    /// threads behind a stuck writer, or answer "not ready" for a store
    /// that is only busy with another probe.
    probing: Arc<Mutex<Probing>>,
}

/// Which readiness probe is writing now.
#[derive(Default)]
struct Probing {
    /// The number of the last probe started, to tell one from the next.
    started: u64,
    /// The probe whose write is in progress.
    flight: Option<Flight>,
}

/// One readiness probe's write, which later probes join while it lasts.
struct Flight {
    /// Its number (see [`Probing::started`]).
    id: u64,
    /// Its outcome, once the write has ended.
    outcome: watch::Receiver<Option<Result<(), String>>>,
    /// Set once a caller waited [`STORE_PROBE_TIMEOUT`] for it in vain:
    /// the store is stuck, so later probes answer at once instead of each
    /// waiting as long again.
    overdue: bool,
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            observer: Arc::new(Unobserved),
            probing: Arc::default(),
        }
    }
}

impl Hooks {
    /// The observer events go to.
    pub(crate) fn observer(&self) -> &dyn Observer {
        self.observer.as_ref()
    }
}

/// The hashing pool right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Hashes running on a worker.
    pub running: usize,
    /// Hashes admitted and waiting for a worker.
    pub queued: usize,
    /// Hashes refused as busy since start.
    pub refused: u64,
}

/// What `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Why the store does not take writes, if it does not.
    pub store: Result<(), String>,
    /// Why the signing key cannot sign, if it cannot.
    pub signing_key: Result<(), String>,
}

impl Readiness {
    /// Ready to serve: both checks passed.
    pub fn ready(&self) -> bool {
        self.store.is_ok() && self.signing_key.is_ok()
    }
}

/// How long the readiness probe waits for its write transaction. A store
/// that cannot commit an empty transaction within this is not ready: every
/// sign-in would wait as long.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Core {
    /// Sets who receives the domain's events; done once, before the core
    /// is shared.
    pub fn set_observer(&mut self, observer: Arc<dyn Observer>) {
        self.observe.observer = observer;
    }

    /// The hashing pool's state.
    pub fn pool_state(&self) -> PoolState {
        let running = self.hasher.running();
        PoolState {
            running,
            queued: self.hasher.in_flight().saturating_sub(running),
            refused: self.hasher.refused(),
        }
    }

    /// Sessions neither revoked nor past their absolute end. Reads every
    /// session record (a scan, on the blocking pool), so it is for a
    /// metrics scrape, not for a request path.
    pub async fn live_sessions(&self) -> Result<u64, Error> {
        let store = self.store.clone();
        let now = self.clock.now();
        tokio::task::spawn_blocking(move || store.read()?.live_session_count(now))
            .await
            .map_err(|e| Error::Internal(format!("session count task failed: {e}")))?
            .map_err(Error::from)
    }

    /// Whether the server can do its work: the store commits a write
    /// transaction within [`STORE_PROBE_TIMEOUT`], and the signing key signs
    /// a token that then verifies.
    pub async fn readiness(&self) -> Readiness {
        Readiness {
            store: self.probe_store().await,
            signing_key: self.probe_signing_key(),
        }
    }

    /// Commits an empty write transaction (durably, as every change is):
    /// it fails when the store cannot write, and does not finish while
    /// another writer holds the store.
    async fn probe_store(&self) -> Result<(), String> {
        let unusable = || "the readiness probe's state is unusable".to_string();
        let (id, mut outcome) = {
            let mut probing = self.observe.probing.lock().map_err(|_| unusable())?;
            match &probing.flight {
                Some(f) if f.overdue => {
                    return Err("an earlier readiness probe is still waiting to write".into());
                }
                // A write is under way: its outcome answers this probe too,
                // so a client sending many probes at once neither adds
                // writes nor makes a healthy store look unready.
                Some(f) => (f.id, f.outcome.clone()),
                None => {
                    probing.started += 1;
                    let id = probing.started;
                    let (done, outcome) = watch::channel(None);
                    probing.flight = Some(Flight {
                        id,
                        outcome: outcome.clone(),
                        overdue: false,
                    });
                    let slot = self.observe.probing.clone();
                    let store = self.store.clone();
                    tokio::task::spawn_blocking(move || {
                        let written = store.write(|_| Ok::<_, StoreError>(())).map_err(|e| {
                            tracing::warn!(error = %e, "readiness: the store refused a write");
                            "the store refused a write".to_string()
                        });
                        // Cleared only once the write is over, however long
                        // it took, and before its outcome is told: a probe
                        // arriving later writes for itself.
                        if let Ok(mut probing) = slot.lock() {
                            probing.flight = None;
                        }
                        let _ = done.send(Some(written));
                    });
                    (id, outcome)
                }
            }
        };
        // Only this probe's flight: a later one may have begun since.
        let forget = |overdue: bool| {
            let Ok(mut probing) = self.observe.probing.lock() else {
                return;
            };
            match probing.flight.as_mut() {
                Some(f) if f.id == id && overdue => f.overdue = true,
                Some(f) if f.id == id => probing.flight = None,
                _ => {}
            }
        };
        match tokio::time::timeout(STORE_PROBE_TIMEOUT, outcome.wait_for(Option::is_some)).await {
            Ok(Ok(written)) => (*written)
                .clone()
                .unwrap_or_else(|| Err("the store probe failed".into())),
            Ok(Err(_)) => {
                // The write's task ended without an outcome (it panicked).
                forget(false);
                Err("the store probe failed".into())
            }
            Err(_) => {
                forget(true);
                Err(format!(
                    "a write did not complete within {} s",
                    STORE_PROBE_TIMEOUT.as_secs()
                ))
            }
        }
    }

    /// Signs a short-lived token nobody receives and verifies it.
    fn probe_signing_key(&self) -> Result<(), String> {
        let now = self.clock.now();
        let nil = uuid::Uuid::nil().to_string();
        let claims = super::jwt::AccessClaims {
            iss: self.keys.issuer().to_string(),
            sub: nil.clone(),
            aud: self.keys.audience().to_string(),
            iat: now,
            nbf: now,
            exp: now + 1,
            jti: nil.clone(),
            sid: nil,
            role: String::new(),
            roles: Vec::new(),
            reseller_id: None,
            merchant_id: None,
        };
        let token = self.keys.sign(&claims)?;
        self.keys
            .verify(&token, now)
            .map(|_| ())
            .map_err(|e| format!("a token it signed did not verify: {e}"))
    }
}
