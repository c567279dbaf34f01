//! The domain: accounts, passwords, tokens, sessions, audit. No HTTP here.
//!
//! [`Core`] is the one object every API adapter talks to. It owns the store,
//! the clock, the hashing pool, the signing keys and the in-memory
//! revocation set. Adapters hand it plain values (an identifier, a password,
//! a bearer string, a [`ClientInfo`]) and get back records, issued
//! credentials, or an [`Error`] they map to their document's words.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod jwt;
pub mod login;
pub mod password;
pub mod secrets;
pub mod sessions;
pub mod signing;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::RwLock;

use uuid::Uuid;

pub use audit::{AuditEntry, Outcome};
pub use clock::Clock;

use crate::store::{Store, StoreError};

/// What the domain needs from the settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The data directory (store file and master key).
    pub data_dir: PathBuf,
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Access token lifetime, seconds.
    pub access_ttl: i64,
    /// Refresh token lifetime, seconds.
    pub refresh_ttl: i64,
    /// Absolute session lifetime, seconds.
    pub session_ttl: i64,
    /// argon2id parameters for new hashes.
    pub hash_params: password::HashParams,
    /// Hashes allowed to run at once.
    pub hash_workers: usize,
    /// Hashes allowed to wait.
    pub hash_queue: usize,
}

/// Who is calling, as far as the transport can tell.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's address (after trusted-proxy resolution).
    pub ip: IpAddr,
    /// The User-Agent header, truncated.
    pub user_agent: String,
}

/// Domain failures. Each adapter chooses its document's status and body for
/// each variant; the text here is for logs and canonical-API messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown account or wrong password: never told apart.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failures for this identifier; refused for `retry_after`
    /// more seconds.
    #[error("account locked")]
    Locked { retry_after: u64 },
    /// The password was right but the account is disabled.
    #[error("account disabled")]
    Disabled,
    /// Over a rate limit.
    #[error("too many requests")]
    RateLimited { retry_after: u64 },
    /// The hashing pool is full.
    #[error("server busy")]
    Busy { retry_after: u64 },
    /// Missing, malformed, expired or revoked credential.
    #[error("authentication required")]
    Unauthenticated,
    /// Refresh token unknown, expired, revoked or reused.
    #[error("invalid or expired refresh token")]
    InvalidRefresh,
    /// Authenticated, but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// No such thing (in the caller's scope).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A request value broke a rule.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The change conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The store failed; the detail goes to the log only.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Anything else that is our fault; the detail goes to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// The domain core.
pub struct Core {
    /// Every record.
    pub store: Store,
    /// The only time source.
    pub clock: Clock,
    /// Lifetimes, issuer, hashing parameters.
    pub config: CoreConfig,
    /// Bounded argon2id pool.
    hasher: password::Hasher,
    /// Signing key and published verification keys.
    keys: jwt::KeySet,
    /// Revoked session ids and until when to remember each (Unix seconds).
    /// Checked on every access-token request, so it lives in memory; the
    /// store holds the same set for restarts.
    revoked: RwLock<HashMap<Uuid, i64>>,
}

impl Core {
    /// Opens the store and loads keys and revocations.
    pub fn open(config: CoreConfig, clock: Clock) -> Result<Core, StartError> {
        password::validate_params(config.hash_params).map_err(StartError::Config)?;
        let store = Store::open(&config.data_dir)?;
        let keys = signing::load_or_create(&store, &config, clock.now())?;
        let hasher =
            password::Hasher::new(config.hash_params, config.hash_workers, config.hash_queue)
                .map_err(StartError::Config)?;
        let revoked = store.read()?.revocations()?.into_iter().collect();
        Ok(Core {
            store,
            clock,
            config,
            hasher,
            keys,
            revoked: RwLock::new(revoked),
        })
    }

    /// The JWKS document.
    pub fn jwks(&self) -> &str {
        self.keys.jwks()
    }

    /// Password hashes running or waiting right now.
    pub fn hashes_in_flight(&self) -> usize {
        self.hasher.in_flight()
    }

    /// Periodic upkeep: forgets revocations no token can outlive.
    pub async fn housekeeping(&self) -> Result<(), Error> {
        let now = self.clock.now();
        if let Ok(mut set) = self.revoked.write() {
            set.retain(|_, until| *until >= now);
        }
        self.store
            .write_async(move |tx| tx.prune_revocations(now).map(|_| ()))
            .await?;
        Ok(())
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Domain(#[from] Error),
}
