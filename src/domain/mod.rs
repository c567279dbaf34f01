//! The domain: accounts, passwords, tokens, sessions, audit. No HTTP here.
//!
//! [`Core`] is the one object every API adapter talks to. It owns the store,
//! the clock, the hashing pool, the signing keys and the in-memory
//! revocation set. Adapters hand it plain values (an identifier, a password,
//! a bearer string, a [`ClientInfo`]) and get back records, issued
//! credentials, or an [`Error`] they map to their document's words.

pub mod accounts;
pub mod admin_ops;
pub(crate) mod audit;
pub mod auth;
mod background;
pub mod clock;
pub mod console;
pub mod external;
pub mod fastpath;
pub mod import;
pub(crate) mod jwt;
pub mod keys;
pub(crate) mod limits;
pub(crate) mod login;
pub mod observe;
pub mod password;
pub(crate) mod rbac;
pub mod recovery;
mod reload;
pub(crate) mod role_choice;
pub mod s2s;
pub(crate) mod secrets;
pub mod sessions;
pub(crate) mod signing;
pub(crate) mod tenants;
pub mod users;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use audit::{AuditEntry, Outcome};
pub use clock::Clock;
pub use reload::ReloadableSettings;

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
    /// External sign-in.
    pub external: external::ExternalConfig,
    /// Login attempts a minute per client address.
    pub rate_login_per_ip: u32,
    /// Login attempts a minute per identifier.
    pub rate_login_per_account: u32,
    /// Consecutive failures that lock an account (or an identifier that
    /// names none).
    pub lockout_threshold: u32,
    /// How long a lock lasts, seconds.
    pub lockout_seconds: u64,
    /// Most API keys one account may hold.
    pub max_api_keys_per_account: usize,
    /// Most live S2S tokens one tenant may hold.
    pub max_s2s_tokens_per_tenant: usize,
    /// Longest lifetime of an S2S token, seconds; also the lifetime of one
    /// issued without a requested lifetime.
    pub s2s_max_ttl: i64,
}

/// Who is calling, as far as the transport can tell.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's address (after trusted-proxy resolution).
    pub ip: IpAddr,
    /// The User-Agent header, truncated.
    pub user_agent: String,
}

/// The API documents a request can come through. The domain names the
/// document in the audit entries of sign-ins and logouts (a lock, by
/// contrast, follows the account whatever the document); each adapter
/// answers in its own document's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// `v1-auth-and-keys.txt`, whose words the admin API shares.
    V1,
    /// `client-login-refresh.txt`.
    ClientLoginRefresh,
    /// `tenant-login-and-s2s.txt`.
    TenantLoginAndS2s,
    /// `token-and-social-login.txt`.
    TokenAndSocialLogin,
    /// `account-roles-token.txt`.
    AccountRolesToken,
}

impl Document {
    /// The name stored in audit entries; these strings are in stored
    /// entries already, so they never change.
    pub fn as_str(self) -> &'static str {
        match self {
            Document::V1 => "v1",
            Document::ClientLoginRefresh => "client-login-refresh",
            Document::TenantLoginAndS2s => "tenant-login-and-s2s",
            Document::TokenAndSocialLogin => "token-and-social-login",
            Document::AccountRolesToken => "account-roles-token",
        }
    }
}

impl Document {
    /// The kind of session a sign-in through this document opens: each
    /// document issues one kind, so its adapter never chooses.
    pub fn session(self) -> sessions::SessionRequest {
        match self {
            Document::V1 | Document::ClientLoginRefresh => {
                sessions::SessionRequest::jwt_with_refresh()
            }
            Document::TenantLoginAndS2s | Document::AccountRolesToken => {
                sessions::SessionRequest::jwt()
            }
            Document::TokenAndSocialLogin => sessions::SessionRequest::opaque(),
        }
    }
}

impl std::fmt::Display for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// The hashing pool is full, or the store cannot write its file for
    /// now (a full disk: see [`STORE_RETRY_AFTER`]).
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
    /// A sensitive action from a console session whose password was not
    /// entered recently enough: the page asks for it again
    /// (`POST /api/v1/console/reauth`) and retries.
    #[error("password re-entry required")]
    ReauthRequired,
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
    /// An identity provider could not be asked properly.
    #[error("provider: {0}")]
    Provider(external::FetchError),
    /// Sign-in through this identity provider is not configured.
    #[error("{} sign-in is not enabled", .0.name())]
    ProviderDisabled(external::Provider),
    /// A logout with a credential that belongs to no session (an API key,
    /// an S2S token): there is nothing to end.
    #[error("this credential has no session to log out of")]
    NoSession,
    /// A form or query string whose decoded bytes are not UTF-8: refused,
    /// never guessed at. Names what was malformed.
    #[error("the {0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// A list's `limit` or `cursor` is not one this list can use.
    #[error("{0}")]
    Paging(PageError),
    /// The store failed; the detail goes to the log only.
    #[error("store: {0}")]
    Store(StoreError),
    /// Anything else that is our fault; the detail goes to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

/// Seconds a client is told to wait when the store cannot write for now:
/// an operator has to free space, which takes longer than a hashing slot.
pub const STORE_RETRY_AFTER: u64 = 5;

impl From<StoreError> for Error {
    /// A store that cannot read or write its file for now (a full disk)
    /// refuses the request the way a full hashing pool does, 503 with
    /// `Retry-After`, in every document: nothing was stored, and the same
    /// request succeeds once the cause is gone, with no restart (the store
    /// reopens its file). The store has logged the cause. Every other
    /// store failure stays ours, a 500.
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Unavailable(_) => Error::Busy {
                retry_after: STORE_RETRY_AFTER,
            },
            e => Error::Store(e),
        }
    }
}

impl Error {
    /// The seconds a client should wait before trying again, for the
    /// refusals that pass with time (a lock, a rate limit, a full pool).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Locked { retry_after }
            | Error::RateLimited { retry_after }
            | Error::Busy { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// The domain core. Its fields are private to `domain`: adapters ask it
/// for what they need through its operations, never read its store.
pub struct Core {
    /// Every record.
    store: Store,
    /// The only time source.
    clock: Clock,
    /// Lifetimes, issuer, hashing parameters.
    config: CoreConfig,
    /// Bounded argon2id pool.
    hasher: password::Hasher,
    /// Signing key and published verification keys.
    keys: Arc<jwt::KeySet>,
    /// Revoked sessions, checked on every access-token request.
    revoked: Arc<sessions::Revocations>,
    /// Every account's enabled flag, roles and tenant, checked on every
    /// authentication.
    states: Arc<auth::AccountStates>,
    /// Access tokens whose signature was verified, so a token's next
    /// request skips ECDSA (see `fastpath`).
    verified: fastpath::VerifiedTokens,
    /// API keys' last use, held in memory between writes.
    key_usage: keys::Usage,
    /// S2S tokens seen used in this process.
    s2s_usage: s2s::S2sUsage,
    /// Login rate limiters.
    limits: limits::Limits,
    /// The lockout rule in force (reloadable).
    lockout: reload::Lockout,
    /// Writes started in the background, which shutdown waits for.
    background: Arc<Background>,
    /// Recent `/api/account/roles` logins, for choosing a role.
    role_grants: role_choice::RoleGrants,
    /// Outbound HTTPS to identity providers.
    fetch: Arc<dyn external::Fetch>,
    /// External sign-in settings.
    external: external::ExternalConfig,
    /// When ended records were last pruned (Unix seconds).
    last_record_prune: std::sync::Mutex<i64>,
    /// Who is told of sign-ins and authentications (the metrics), and the
    /// readiness probe's state.
    observe: observe::Hooks,
    /// The console sessions' rules and their last activity in memory.
    console: console::ConsoleState,
}

/// Counts background writes so that shutdown can wait for them: the store
/// closes only when the last of them lets go of it.
#[derive(Default)]
struct Background {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Background {
    fn spawn(self: &Arc<Self>, work: impl std::future::Future<Output = ()> + Send + 'static) {
        use std::sync::atomic::Ordering;
        self.running.fetch_add(1, Ordering::AcqRel);
        let me = self.clone();
        tokio::spawn(async move {
            work.await;
            if me.running.fetch_sub(1, Ordering::AcqRel) == 1 {
                me.idle.notify_waiters();
            }
        });
    }

    async fn wait(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let idle = self.idle.notified();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// How often ended sessions and spent tokens are deleted, seconds.
const RECORD_PRUNE_INTERVAL: i64 = 3600;
/// How long after its end a session record is kept (its revocation must
/// outlive the leeway its last access token gets).
const RECORD_GRACE: i64 = 3600;
/// How long a failure count that never locked is kept after its last
/// failure.
const FAILURES_KEPT: i64 = 24 * 3600;

/// One page of a list, and the cursor of the next page if there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items of this page, in the list's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<String>,
}

/// The most items a page may hold.
pub const MAX_PAGE: usize = 1000;
/// The items a page holds when the request does not say.
const DEFAULT_PAGE: usize = 50;

/// Why a page cannot be served as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// The limit is not a whole number from 1 to [`MAX_PAGE`].
    #[error("limit must be a number from 1 to 1000")]
    Limit,
    /// The cursor is not one this list hands out.
    #[error("invalid cursor")]
    Cursor,
}

/// What page of a list a request asks for: parsed once, the same way for
/// every list. Each list reads the cursor in its own form (an id to go on
/// after, a sequence number, or a count of items already shown) and
/// refuses one it cannot read with [`PageError::Cursor`].
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// How many items at most, 1 to [`MAX_PAGE`].
    limit: usize,
    /// The `next` of the previous page; `None` for the first.
    cursor: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_PAGE,
            cursor: None,
        }
    }
}

impl PageRequest {
    /// The page a request's `limit` and `cursor` name (absent: the first
    /// page of 50; an empty cursor is the first page too).
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, Error> {
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or(Error::Paging(PageError::Limit))?,
        };
        Ok(PageRequest {
            limit,
            cursor: cursor.filter(|c| !c.is_empty()).map(str::to_string),
        })
    }

    /// How many items at most.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A cursor that is the id to go on after ("" for the first page).
    pub(crate) fn after_id(&self) -> &str {
        self.cursor.as_deref().unwrap_or("")
    }

    /// A cursor that is a number (`first` for the first page).
    pub(crate) fn number(&self, first: u64) -> Result<u64, Error> {
        match &self.cursor {
            None => Ok(first),
            Some(c) => c.parse().map_err(|_| Error::Paging(PageError::Cursor)),
        }
    }

    /// Pages a short list held whole in memory (roles, an account's
    /// sessions or keys); the cursor is how many items came before.
    pub(crate) fn in_memory<T>(&self, items: Vec<T>) -> Result<Page<T>, Error> {
        let skip =
            usize::try_from(self.number(0)?).map_err(|_| Error::Paging(PageError::Cursor))?;
        let total = items.len();
        let items: Vec<T> = items.into_iter().skip(skip).take(self.limit).collect();
        let end = skip.saturating_add(items.len());
        let next = (end < total).then(|| end.to_string());
        Ok(Page { items, next })
    }
}

impl Core {
    /// Opens the store and loads keys and revocations.
    pub fn open(
        config: CoreConfig,
        clock: Clock,
        fetch: Arc<dyn external::Fetch>,
    ) -> Result<Core, StartError> {
        password::validate_params(config.hash_params).map_err(StartError::Config)?;
        let store = Store::open(&config.data_dir)?;
        let keys = signing::load_or_create(&store, &config, clock.now())?;
        let hasher =
            password::Hasher::new(config.hash_params, config.hash_workers, config.hash_queue)
                .map_err(StartError::Config)?;
        let revoked = sessions::Revocations::from_stored(store.read()?.revocations()?);
        // Filled as accounts and keys are used, not read here: start-up
        // does not grow with the store (see `AccountStates`, `KeyIndex`).
        let states = auth::AccountStates::default();
        let limits = limits::Limits::new(
            config.rate_login_per_ip,
            config.rate_login_per_account,
            &clock,
        );
        Ok(Core {
            store,
            clock,
            hasher,
            keys: Arc::new(keys),
            revoked: Arc::new(revoked),
            states: Arc::new(states),
            verified: fastpath::VerifiedTokens::default(),
            key_usage: keys::Usage::default(),
            s2s_usage: s2s::S2sUsage::default(),
            limits,
            lockout: reload::Lockout::new(config.lockout_threshold, config.lockout_seconds),
            background: Arc::default(),
            role_grants: role_choice::RoleGrants::default(),
            fetch,
            external: config.external.clone(),
            config,
            last_record_prune: std::sync::Mutex::new(0),
            observe: observe::Hooks::default(),
            console: console::ConsoleState::default(),
        })
    }

    /// The store, for the process's own tools (start-up, backup, tests
    /// that hold its writer): an adapter that needs a record asks the
    /// domain instead, and `api/` names nothing from `store` (a test in
    /// `api` holds it to that).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether the store answers reads (the health check).
    pub fn store_answers(&self) -> bool {
        self.store.read().is_ok()
    }

    /// The JWKS document: the keys that verify now.
    pub fn jwks(&self) -> String {
        self.keys.jwks(self.clock.now())
    }

    /// Password hashes running or waiting right now.
    pub fn hashes_in_flight(&self) -> usize {
        self.hasher.in_flight()
    }

    /// argon2 verifications run since start (one per password check that
    /// reached the hashing pool).
    pub fn hash_verifications(&self) -> u64 {
        self.hasher.verifications()
    }

    /// What the dedicated hashing threads have started and allocated.
    pub fn hash_pool_stats(&self) -> password::PoolStats {
        self.hasher.pool_stats()
    }

    /// ECDSA verifications of access tokens run since start (a token found
    /// in the verified-token cache runs none).
    pub fn token_verifications(&self) -> u64 {
        self.keys.verifications()
    }

    /// API keys held in the key index, and keys looked up in the store
    /// since start because the index did not hold them.
    pub fn key_index(&self) -> (usize, u64) {
        let keys = self.states.keys();
        (keys.len(), keys.store_lookups())
    }

    /// Access tokens held in the verified-token cache, and the most it
    /// holds.
    pub fn verified_tokens(&self) -> (usize, usize) {
        (self.verified.len(), self.verified.capacity())
    }

    /// Keys held by the login rate limiters: (addresses, identifiers).
    pub fn limiter_sizes(&self) -> (usize, usize) {
        self.limits.sizes()
    }

    /// Admits an attempt at a route that exchanges a credential without a
    /// password (refresh, external sign-in) against the address limiter,
    /// and the identifier limiter when there is an identifier.
    /// An identifier longer than [`accounts::MAX_IDENTIFIER_BYTES`] is
    /// refused first, as at login.
    pub fn check_rate(&self, client: &ClientInfo, identifier: Option<&str>) -> Result<(), Error> {
        let id = identifier
            .map(|raw| accounts::LoginId::parse(raw, "email"))
            .transpose()?;
        self.limits.check(client.ip, id.as_ref().map(|id| id.key()))
    }

    /// Periodic upkeep: writes API keys' last use (at most once a minute
    /// per key), forgets revocations no token can outlive, and deletes
    /// retired signing keys no token can still need.
    pub async fn housekeeping(&self) -> Result<(), Error> {
        self.limits.prune();
        self.flush_key_usage().await?;
        let now = self.clock.now();
        self.role_grants.prune(now);
        self.revoked.prune(now);
        self.console.prune(now);
        let prune_records = {
            let mut last = self
                .last_record_prune
                .lock()
                .map_err(|_| Error::Internal("prune clock poisoned".into()))?;
            let due = *last + RECORD_PRUNE_INTERVAL <= now;
            if due {
                *last = now;
            }
            due
        };
        let access_ttl = self.config.access_ttl;
        let s2s_max_ttl = self.config.s2s_max_ttl;
        self.store
            .write_async(move |tx| {
                tx.prune_revocations(now)?;
                let retired = signing::prune_retired(tx, now, access_ttl)?;
                if retired > 0 {
                    tracing::info!(retired, "deleted retired signing keys");
                }
                if prune_records {
                    let removed = tx.prune_expired(now, RECORD_GRACE, FAILURES_KEPT)?;
                    if removed > 0 {
                        tracing::info!(
                            removed,
                            "pruned ended sessions, spent tokens and stale failure counts"
                        );
                    }
                    let removed = tx.prune_s2s_tokens(now, RECORD_GRACE, s2s_max_ttl)?;
                    if removed > 0 {
                        tracing::info!(removed, "pruned revoked and expired S2S tokens");
                    }
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(())
    }

    /// Work to finish before the process exits: background writes, then
    /// the last-use times still held in memory.
    pub async fn flush(&self) -> Result<(), Error> {
        self.background.wait().await;
        self.flush_key_usage_at_shutdown().await
    }

    /// Runs a store write without making the caller wait for it; shutdown
    /// waits for it instead.
    pub(crate) fn in_background(
        &self,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.background.spawn(work);
    }

    /// An audit entry with the principal as actor. For an access token the
    /// account's username is read, so the log shows a name.
    pub fn actor_entry(
        &self,
        principal: &auth::Principal,
        event: &str,
        outcome: Outcome,
    ) -> Result<AuditEntry, Error> {
        let name = match (principal.kind, principal.account) {
            // An API key's principal may come from the key index, which
            // holds no username: it is read here, where a write needs it.
            (auth::CredentialKind::AccessToken | auth::CredentialKind::ApiKey, Some(id)) => self
                .store
                .read()?
                .account(id)?
                .map(|a| a.username)
                .unwrap_or_default(),
            _ => principal.name.clone(),
        };
        Ok(AuditEntry::new(event, outcome)
            .actor(principal.actor_id(), name)
            .client_ip(principal.client_ip))
    }

    /// Appends an audit entry without waiting for it (first-use events on
    /// the authentication path, which must not wait on a disk write).
    pub fn audit_in_background(&self, entry: AuditEntry) {
        let store = self.store.clone();
        let now = self.clock.now();
        self.in_background(async move {
            let result = store
                .write_grouped(move |tx| entry.append(tx, now).map(|_| ()))
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not append an audit entry");
            }
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `limit` and `cursor` as every list reads them.
    #[test]
    fn pages_are_asked_for_one_way() {
        let limit = |raw: Option<&str>| PageRequest::parse(raw, None).map(|p| p.limit());
        assert_eq!(limit(None).ok(), Some(50));
        for (raw, want) in [("1", Some(1)), ("1000", Some(1000)), ("0", None)] {
            assert_eq!(limit(Some(raw)).ok(), want, "{raw}");
        }
        for raw in ["1001", "-1", "ten", "", " 5", "99999999999999999999999"] {
            assert!(
                matches!(limit(Some(raw)), Err(Error::Paging(PageError::Limit))),
                "{raw}"
            );
        }
        // An empty cursor is the first page; a number cursor must be one.
        let first = PageRequest::parse(None, Some("")).unwrap_or_default();
        assert_eq!(first.number(9).ok(), Some(9));
        assert_eq!(first.after_id(), "");
        let bad = PageRequest::parse(None, Some("x")).unwrap_or_default();
        assert!(matches!(
            bad.number(0),
            Err(Error::Paging(PageError::Cursor))
        ));
        assert_eq!(bad.after_id(), "x");

        // In memory the cursor counts what came before.
        let page = |limit: &str, cursor: Option<&str>| {
            PageRequest::parse(Some(limit), cursor)
                .and_then(|p| p.in_memory((1..=5).collect::<Vec<u32>>()))
                .map(|p| (p.items, p.next))
                .ok()
        };
        assert_eq!(page("2", None), Some((vec![1, 2], Some("2".into()))));
        assert_eq!(page("2", Some("4")), Some((vec![5], None)));
        assert_eq!(page("5", None), Some(((1..=5).collect(), None)));
        assert_eq!(page("2", Some("9")), Some((vec![], None)));
        assert_eq!(page("2", Some("-1")), None);
    }
}
