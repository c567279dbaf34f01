//! The one authentication function: a bearer string in, a [`Principal`] out.
//!
//! Every protected route of every API calls [`Core::authenticate`]. Each
//! credential kind is told apart by its shape before anything else is done,
//! so no kind can pass as another:
//!
//! | kind | shape |
//! | --- | --- |
//! | access token | JWT, header `typ: at+jwt`, our `kid` |
//! | API key | `sk_live_` + 16-character id + 43-character secret |
//! | S2S token | `s2s_` + 16-character id + 43-character secret |
//! | opaque token | `lk_ot_` + 43 characters, looked up by digest |
//! | refresh token | `lk_rt_` + 43 characters: never accepted here |

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use super::fastpath::{KeyIndex, VerifiedToken};
use super::secrets::digest;
use super::sessions::{OPAQUE_PREFIX, REFRESH_PREFIX};
use super::tenants::holds;
use super::{Core, Error, keys, s2s};
use crate::store::{Account, WriteTx};

/// Which kind of credential authenticated the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A JWT access token.
    AccessToken,
    /// An API key (`sk_live_...`).
    ApiKey,
    /// A server-to-server token (`s2s_...`).
    S2s,
    /// An opaque session token (`lk_ot_...`).
    OpaqueToken,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AccessToken => "access_token",
            CredentialKind::ApiKey => "api_key",
            CredentialKind::S2s => "s2s_token",
            CredentialKind::OpaqueToken => "opaque_token",
        }
    }

    /// The kind a bearer string is, told by its shape alone: refresh
    /// tokens (`lk_rt_`) and empty strings are no bearer credential; what
    /// carries no known prefix is taken for an access token (a JWT).
    pub fn of(bearer: &str) -> Option<CredentialKind> {
        if bearer.is_empty() || bearer.starts_with(REFRESH_PREFIX) {
            None
        } else if bearer.starts_with(keys::PREFIX) {
            Some(CredentialKind::ApiKey)
        } else if bearer.starts_with(s2s::PREFIX) {
            Some(CredentialKind::S2s)
        } else if bearer.starts_with(OPAQUE_PREFIX) {
            Some(CredentialKind::OpaqueToken)
        } else {
            Some(CredentialKind::AccessToken)
        }
    }
}

/// Who is calling, with the roles and scope the credential grants.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The credential kind presented.
    pub kind: CredentialKind,
    /// The account acted as (none for S2S tokens).
    pub account: Option<Uuid>,
    /// The session the credential belongs to (access tokens).
    pub session: Option<Uuid>,
    /// The API key or S2S token id.
    pub credential_id: Option<String>,
    /// Display name for the audit log: the S2S token's name, the key
    /// owner's username; empty for access tokens (looked up when needed).
    pub name: String,
    /// The role the credential acts as.
    pub role: String,
    /// Every role the credential carries.
    pub roles: Vec<String>,
    /// Reseller scope.
    pub reseller_id: Option<String>,
    /// Merchant scope.
    pub merchant_id: Option<String>,
    /// When the credential itself stops working, if it does.
    pub expires_at: Option<i64>,
    /// Where the request came from, for the audit log.
    pub client_ip: IpAddr,
    /// The credential was taken from the URL's query string, where
    /// proxies and browsers keep it: it may not make lasting credentials.
    /// Set by the adapter that read it; false from the domain.
    pub from_query: bool,
}

impl Principal {
    /// The actor id written to the audit log.
    pub fn actor_id(&self) -> String {
        match (self.kind, &self.account, &self.credential_id) {
            (CredentialKind::S2s, _, Some(id)) => format!("s2s:{id}"),
            (_, Some(account), _) => account.to_string(),
            _ => "unknown".into(),
        }
    }
}

impl Principal {
    /// Refuses a credential that is not a person's own sign-in (an API key,
    /// an S2S token, or any credential read from a URL) the making of a
    /// credential: an API key, an S2S token, an account (made with a
    /// password), a password, or a new email for an account (an email is a
    /// sign-in identifier: a provider vouching for the new mailbox signs in
    /// to the account). A credential with no person behind it must not
    /// outlive itself by minting new ones, and a URL leaks into logs and
    /// browser history.
    pub fn may_mint(&self) -> Result<(), Error> {
        if self.from_query || matches!(self.kind, CredentialKind::ApiKey | CredentialKind::S2s) {
            return Err(Error::Forbidden);
        }
        Ok(())
    }
}

/// Refuses (as [`Error::Unauthenticated`]) a change driven by `principal`
/// unless its credential still stands, as the write transaction sees the
/// store: the S2S token or API key is still there and unexpired, the
/// session of a token is neither revoked nor over, and the account acted as
/// exists, is enabled, still holds every role the credential acts with and
/// sits in the same tenant. Authentication checked all this when the
/// request arrived; a request that then waited (for a password hash, for
/// the writer) must not carry out what its actor lost the right to do
/// meanwhile. Called first in every write transaction a principal drives;
/// it costs one or two point reads.
pub(crate) fn actor_still_valid(
    tx: &WriteTx,
    principal: &Principal,
    now: i64,
) -> Result<(), Error> {
    let stale = || Error::Unauthenticated;
    let credential = principal.credential_id.as_deref();
    match principal.kind {
        CredentialKind::S2s => {
            let token = tx.s2s_token(credential.ok_or_else(stale)?)?;
            // The expiry was worked out from this same record when the
            // token was authenticated; it does not change.
            let live = token.is_some_and(|t| t.revoked_at.is_none())
                && principal.expires_at.is_some_and(|e| e > now);
            // An S2S token acts as no account: nothing more to check.
            return if live { Ok(()) } else { Err(stale()) };
        }
        CredentialKind::ApiKey => {
            let key = tx.api_key(credential.ok_or_else(stale)?)?;
            if !key.is_some_and(|k| {
                Some(k.account) == principal.account && k.expires_at.is_none_or(|e| e > now)
            }) {
                return Err(stale());
            }
        }
        CredentialKind::AccessToken | CredentialKind::OpaqueToken => {
            let session = tx.session(principal.session.ok_or_else(stale)?)?;
            if !session.is_some_and(|s| {
                Some(s.account) == principal.account && s.revoked_at.is_none() && s.expires_at > now
            }) {
                return Err(stale());
            }
        }
    }
    let account = tx
        .account(principal.account.ok_or_else(stale)?)?
        .ok_or_else(stale)?;
    let stands = !account.disabled
        && principal.roles.iter().all(|r| holds(&account.roles, r))
        && account.reseller_id == principal.reseller_id
        && account.merchant_id == principal.merchant_id;
    if stands { Ok(()) } else { Err(stale()) }
}

impl Core {
    /// The account a principal acts for, as stored now: `None` for a
    /// credential of no account (an S2S token), and
    /// [`Error::Unauthenticated`] for an account gone since the credential
    /// was checked.
    pub fn own_account(&self, principal: &Principal) -> Result<Option<Arc<Account>>, Error> {
        let Some(id) = principal.account else {
            return Ok(None);
        };
        match self.store.current_account(id)? {
            Some(account) => Ok(Some(account)),
            None => Err(Error::Unauthenticated),
        }
    }
}

impl Core {
    /// Authenticates a bearer credential. Every failure is
    /// [`Error::Unauthenticated`]; the cause is not told to the client.
    /// Each attempt is reported to the observer (the metrics) here, once.
    pub fn authenticate(&self, bearer: &str, client_ip: IpAddr) -> Result<Principal, Error> {
        let kind = CredentialKind::of(bearer);
        let result = match kind {
            None => Err(Error::Unauthenticated),
            Some(CredentialKind::ApiKey) => self.authenticate_api_key(bearer, client_ip),
            Some(CredentialKind::S2s) => self.authenticate_s2s(bearer, client_ip),
            Some(CredentialKind::OpaqueToken) => self.authenticate_opaque(bearer, client_ip),
            Some(CredentialKind::AccessToken) => self.authenticate_access_token(bearer, client_ip),
        };
        let accepted = match &result {
            Ok(_) => Ok(true),
            Err(Error::Unauthenticated) => Ok(false),
            Err(_) => Err(()),
        };
        self.observe.observer().authenticated(kind, accepted);
        result
    }

    fn authenticate_access_token(
        &self,
        token: &str,
        client_ip: IpAddr,
    ) -> Result<Principal, Error> {
        let now = self.clock.now();
        // Only the signature check and the claim parsing are skipped for a
        // token seen before; everything below runs on every request.
        let token_digest = digest(token.as_bytes());
        let claims = match self.verified.get(&token_digest, now) {
            Some(claims) => claims,
            None => {
                let (claims, key_until) = self.keys.verify_keyed(token, now).map_err(|e| {
                    tracing::debug!(reason = %e, "access token refused");
                    Error::Unauthenticated
                })?;
                let verified = VerifiedToken {
                    session: Uuid::parse_str(&claims.sid).map_err(|_| Error::Unauthenticated)?,
                    account: Uuid::parse_str(&claims.sub).map_err(|_| Error::Unauthenticated)?,
                    role: claims.role,
                    roles: claims.roles,
                    reseller_id: claims.reseller_id,
                    merchant_id: claims.merchant_id,
                    exp: claims.exp,
                    key_until,
                };
                self.verified.insert(token_digest, verified.clone(), now);
                verified
            }
        };
        let (session, account) = (claims.session, claims.account);
        if self.is_revoked(session) {
            return Err(Error::Unauthenticated);
        }
        // The account as it is now, not as it was when the token was
        // signed: disabled, deleted, demoted or moved refuses it at once.
        if !self.states.allows(
            account,
            &claims.roles,
            claims.reseller_id.as_deref(),
            claims.merchant_id.as_deref(),
            || self.store.read()?.account(account),
        )? {
            return Err(Error::Unauthenticated);
        }
        Ok(Principal {
            kind: CredentialKind::AccessToken,
            account: Some(account),
            session: Some(session),
            credential_id: None,
            name: String::new(),
            role: claims.role,
            roles: claims.roles,
            reseller_id: claims.reseller_id,
            merchant_id: claims.merchant_id,
            expires_at: Some(claims.exp),
            client_ip,
            from_query: false,
        })
    }
}

impl Core {
    /// An opaque token is looked up by its digest; its session must be
    /// live and its account enabled. A console session's token is no
    /// bearer credential: it is taken from the console's cookie only
    /// (`Core::authenticate_console`), where its idle time is kept.
    fn authenticate_opaque(&self, token: &str, client_ip: IpAddr) -> Result<Principal, Error> {
        let (principal, session) = self.opaque_session(token, client_ip)?;
        if session.console {
            return Err(Error::Unauthenticated);
        }
        Ok(principal)
    }

    /// The principal of an opaque token whose session is live and whose
    /// account may act, with the session as stored.
    pub(crate) fn opaque_session(
        &self,
        token: &str,
        client_ip: IpAddr,
    ) -> Result<(Principal, crate::store::Session), Error> {
        if token.len() != OPAQUE_PREFIX.len() + 43 {
            return Err(Error::Unauthenticated);
        }
        let tx = self.store.read()?;
        let sid = tx
            .opaque_token(&digest(token.as_bytes()))?
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        let session = tx
            .session(sid)?
            .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
            .ok_or(Error::Unauthenticated)?;
        let account = tx
            .account(session.account)?
            .filter(|a| !a.disabled)
            .ok_or(Error::Unauthenticated)?;
        let roles = self.narrowed_roles(&account, session.role.as_ref())?;
        let principal = Principal {
            kind: CredentialKind::OpaqueToken,
            account: Some(account.id),
            session: Some(sid),
            credential_id: None,
            name: account.username.clone(),
            role: roles.first().cloned().unwrap_or_default(),
            roles,
            reseller_id: account.reseller_id.clone(),
            merchant_id: account.merchant_id.clone(),
            expires_at: Some(session.expires_at),
            client_ip,
            from_query: false,
        };
        Ok((principal, session))
    }
}

impl Core {
    /// The roles a credential of `account` narrowed to `role` (or to none)
    /// acts with, refused as [`Error::Unauthenticated`] unless the account
    /// still holds that role and, as it is now (enabled, holding the
    /// roles, in the same tenant), may act with them.
    pub(crate) fn narrowed_roles(
        &self,
        account: &Account,
        role: Option<&String>,
    ) -> Result<Vec<String>, Error> {
        let roles = match role {
            // A credential narrowed to a role its account no longer holds
            // is dead.
            Some(role) if holds(&account.roles, role) => vec![role.clone()],
            Some(_) => return Err(Error::Unauthenticated),
            None => account.roles.clone(),
        };
        self.account_allows(account, roles)
    }

    /// `roles` if `account`, as it is now (enabled, holding every one of
    /// them, in the same tenant), may act with them; otherwise
    /// [`Error::Unauthenticated`].
    pub(crate) fn account_allows(
        &self,
        account: &Account,
        roles: Vec<String>,
    ) -> Result<Vec<String>, Error> {
        if !self.states.allows(
            account.id,
            &roles,
            account.reseller_id.as_deref(),
            account.merchant_id.as_deref(),
            || Ok::<_, Error>(Some(account.clone())),
        )? {
            return Err(Error::Unauthenticated);
        }
        Ok(roles)
    }
}

/// Splits `<prefix><16-char id><43-char secret>`; `None` for any other shape.
pub(crate) fn split_secret<'a>(token: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = token.strip_prefix(prefix)?;
    if rest.len() != 16 + 43 || !rest.is_ascii() {
        return None;
    }
    let (id, secret) = rest.split_at(16);
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}

/// What authentication needs to know of an account, held in memory so
/// that an access token is checked against it without a store read.
#[derive(Debug, Clone, PartialEq)]
struct AccountState {
    /// A disabled account's credentials are all refused.
    disabled: bool,
    /// A credential acting with a role outside these is refused.
    roles: Vec<String>,
    /// A token naming another reseller is refused.
    reseller_id: Option<String>,
    /// A token naming another merchant is refused.
    merchant_id: Option<String>,
}

/// Every account's state, checked on every authentication.
///
/// Filled as accounts authenticate rather than loaded at start (a store of
/// 100,000 accounts starts as fast as an empty one): an account with no
/// entry is read from the store once, by the request that first needs it,
/// and remembered with `or_insert`, so an entry something else wrote in the
/// meantime wins. Changes that take something away (disable, delete, fewer
/// roles, another tenant) are applied inside the write transaction that
/// commits them, before the commit, and always leave an entry (a deleted
/// account's is a tombstone): so a fill that read the store before such a
/// commit can never overwrite it, a credential is refused from the moment
/// the change can be seen, and it stays refused if the commit fails. What
/// gives something back (enable, more roles) is learnt only by the write
/// transaction that next issues a token for the account (a session
/// opened, refreshed or narrowed), from the record as it is then; until
/// then the account's old state stands. An account the store does not
/// hold is refused, and nothing is remembered for it.
#[derive(Default)]
pub struct AccountStates {
    /// Account id -> state; `None` is a deleted account (its tombstone,
    /// kept for the process's life: one entry per deletion).
    map: std::sync::RwLock<std::collections::HashMap<Uuid, Option<AccountState>>>,
    /// API keys authenticated from memory: an account's go whenever the
    /// account is restricted or forgotten, so that nothing given back
    /// later revives a key the change deleted.
    keys: KeyIndex,
}

impl AccountStates {
    /// States of these accounts, known from the start (tests).
    pub fn from_accounts(accounts: impl IntoIterator<Item = Account>) -> AccountStates {
        let states = AccountStates::default();
        for account in accounts {
            states.learn(&account);
        }
        states
    }

    /// Records `account` as it is in the store (read inside the write
    /// transaction that is issuing it a credential).
    pub fn learn(&self, account: &Account) {
        if let Ok(mut map) = self.map.write() {
            map.insert(account.id, Some(state_of(account)));
        }
    }

    /// Records a change from `current` to `next` that is about to be
    /// committed, keeping only what both allow: disabled if either is,
    /// the roles both hold, the new tenant.
    pub fn restrict(&self, current: &Account, next: &Account) {
        self.keys.forget_account(next.id);
        if let Ok(mut map) = self.map.write() {
            let mut state = state_of(next);
            state.disabled |= current.disabled;
            state.roles.retain(|r| holds(&current.roles, r));
            map.insert(next.id, Some(state));
        }
    }

    /// Forgets a deleted account: its credentials are refused.
    pub fn forget(&self, account: Uuid) {
        self.keys.forget_account(account);
        if let Ok(mut map) = self.map.write() {
            map.insert(account, None);
        }
    }

    /// The state of `account`: the one remembered, or else the one `load`
    /// reads from the store, remembered unless an entry appeared in the
    /// meantime (which then wins). `Ok(None)` for an account that is
    /// deleted or not in the store, or when a lock is poisoned.
    fn state<E>(
        &self,
        account: Uuid,
        load: impl FnOnce() -> Result<Option<Account>, E>,
    ) -> Result<Option<AccountState>, E> {
        {
            let Ok(map) = self.map.read() else {
                return Ok(None);
            };
            if let Some(known) = map.get(&account) {
                return Ok(known.clone());
            }
        }
        let Some(loaded) = load()? else {
            return Ok(None);
        };
        let Ok(mut map) = self.map.write() else {
            return Ok(None);
        };
        Ok(map
            .entry(account)
            .or_insert_with(|| Some(state_of(&loaded)))
            .clone())
    }

    /// Whether a credential of `account` acting with `roles` in the given
    /// tenant may be used now (`load` reads the account when it is not
    /// yet known). A poisoned lock refuses.
    pub fn allows<E>(
        &self,
        account: Uuid,
        roles: &[String],
        reseller_id: Option<&str>,
        merchant_id: Option<&str>,
        load: impl FnOnce() -> Result<Option<Account>, E>,
    ) -> Result<bool, E> {
        Ok(self.state(account, load)?.is_some_and(|s| {
            !s.disabled
                && roles.iter().all(|r| holds(&s.roles, r))
                && s.reseller_id.as_deref() == reseller_id
                && s.merchant_id.as_deref() == merchant_id
        }))
    }

    /// How many accounts are known (remembered states and tombstones).
    pub fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }

    /// Whether no account is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An account's reseller and merchant.
pub type Tenant = (Option<String>, Option<String>);

impl AccountStates {
    /// The API keys authenticated from memory.
    pub fn keys(&self) -> &KeyIndex {
        &self.keys
    }

    /// The tenant (reseller, merchant) of `account` if a credential of it
    /// acting with `roles` may be used now: the account is known (or
    /// `load` finds it), enabled and holds every one of them. A poisoned
    /// lock refuses.
    pub fn tenant_if_allows<E>(
        &self,
        account: Uuid,
        roles: &[String],
        load: impl FnOnce() -> Result<Option<Account>, E>,
    ) -> Result<Option<Tenant>, E> {
        Ok(self
            .state(account, load)?
            .filter(|s| !s.disabled && roles.iter().all(|r| holds(&s.roles, r)))
            .map(|s| (s.reseller_id, s.merchant_id)))
    }
}

fn state_of(account: &Account) -> AccountState {
    AccountState {
        disabled: account.disabled,
        roles: account.roles.clone(),
        reseller_id: account.reseller_id.clone(),
        merchant_id: account.merchant_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `AccountStates::allows` for an account with no tenant, where an
    /// account not yet known is not in the store either.
    fn allows(states: &AccountStates, account: Uuid, roles: &[String]) -> bool {
        states
            .allows(account, roles, None, None, || Ok::<_, ()>(None))
            .unwrap_or(false)
    }

    fn account(roles: &[&str], disabled: bool) -> Account {
        Account {
            id: Uuid::from_u128(7),
            number: 1,
            username: "a".into(),
            email: "a@example.com".into(),
            password_hash: String::new(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            reseller_id: None,
            merchant_id: None,
            attributes: Default::default(),
            disabled,
            sessions_epoch: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn restrictions_apply_at_once_and_grants_wait_for_the_next_issue() {
        let admin = account(&["admin", "user"], false);
        let states = AccountStates::from_accounts([admin.clone()]);
        let as_admin = ["admin".to_string()];
        assert!(allows(&states, admin.id, &as_admin));

        let demoted = account(&["user"], false);
        states.restrict(&admin, &demoted);
        assert!(!allows(&states, admin.id, &as_admin));
        assert!(allows(&states, admin.id, &["user".to_string()]));

        // Promoting again gives nothing back until a token is issued from
        // the stored record.
        states.restrict(&demoted, &admin);
        assert!(!allows(&states, admin.id, &as_admin));
        states.learn(&admin);
        assert!(allows(&states, admin.id, &as_admin));

        let disabled = account(&["admin", "user"], true);
        states.restrict(&admin, &disabled);
        assert!(!allows(&states, admin.id, &[]));
        states.restrict(&disabled, &admin);
        assert!(!allows(&states, admin.id, &[]));

        states.learn(&admin);
        states.forget(admin.id);
        assert!(!allows(&states, admin.id, &[]));
        assert!(!allows(&states, Uuid::from_u128(8), &[]));
    }

    /// The check at authentication and the re-check inside a write agree on
    /// what holding a role means (`tenants::holds`): a credential whose
    /// custom role is spelt in another case than the account's is let in by
    /// both, and a credential naming a role the account lacks by neither.
    /// An account first needed after start is read from the store once
    /// and remembered; a read that raced a deletion or a restriction (the
    /// change applied to the states while the read was under way, as a
    /// commit would) never overwrites what the change left.
    #[test]
    fn a_fill_from_the_store_never_undoes_a_change_made_during_it() {
        let admin = account(&["admin", "user"], false);
        let as_admin = vec!["admin".to_string()];
        let states = AccountStates::default();
        let mut reads = 0;
        let mut load = || {
            reads += 1;
            Ok::<_, ()>(Some(admin.clone()))
        };
        assert_eq!(
            states.allows(admin.id, &as_admin, None, None, &mut load),
            Ok(true)
        );
        assert_eq!(
            states.allows(admin.id, &as_admin, None, None, &mut load),
            Ok(true)
        );
        assert_eq!(reads, 1, "the second check is answered from memory");

        let racing = AccountStates::default();
        let deleted = racing.allows(admin.id, &[], None, None, || {
            racing.forget(admin.id);
            Ok::<_, ()>(Some(admin.clone()))
        });
        assert_eq!(deleted, Ok(false));
        assert!(!allows(&racing, admin.id, &[]), "the tombstone stays");

        let racing = AccountStates::default();
        let demoted = account(&["user"], false);
        let check = racing.allows(admin.id, &as_admin, None, None, || {
            racing.restrict(&admin, &demoted);
            Ok::<_, ()>(Some(admin.clone()))
        });
        assert_eq!(check, Ok(false));
        assert!(!allows(&racing, admin.id, &as_admin));
        assert!(allows(&racing, admin.id, &["user".to_string()]));

        // An account the store does not hold is refused and not kept.
        let empty = AccountStates::default();
        assert_eq!(
            empty.allows(admin.id, &[], None, None, || Ok::<_, ()>(None)),
            Ok(false)
        );
        assert!(empty.is_empty());
    }

    #[test]
    fn the_re_check_in_a_write_holds_roles_as_authentication_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let holder = account(&["Support-Desk"], false);
        let session = crate::store::Session {
            id: Uuid::from_u128(9),
            account: holder.id,
            kind: crate::store::SessionKind::Jwt,
            role: None,
            created_at: 0,
            last_used_at: 0,
            expires_at: 1000,
            refresh_generation: 0,
            refresh_expires_at: None,
            access_until: 1000,
            revoked_at: None,
            revoked_reason: None,
            client_ip: String::new(),
            user_agent: String::new(),
            console: false,
            password_at: None,
        };
        store
            .write(|tx| -> Result<(), Error> {
                let keys = super::super::accounts::index_keys(&holder);
                tx.put_account(&holder, &keys, None)?;
                tx.put_session(&session)?;
                Ok(())
            })
            .unwrap();
        let states = AccountStates::from_accounts([holder.clone()]);
        let principal = |role: &str| Principal {
            kind: CredentialKind::AccessToken,
            account: Some(holder.id),
            session: Some(session.id),
            credential_id: None,
            name: String::new(),
            role: role.to_string(),
            roles: vec![role.to_string()],
            reseller_id: None,
            merchant_id: None,
            expires_at: None,
            from_query: false,
            client_ip: IpAddr::from([127, 0, 0, 1]),
        };
        for (role, held) in [
            ("support-desk", true),
            ("Support-Desk", true),
            ("billing", false),
        ] {
            let p = principal(role);
            assert_eq!(allows(&states, holder.id, &p.roles), held, "{role}");
            let rechecked = store.write(|tx| actor_still_valid(tx, &p, 10));
            assert_eq!(rechecked.is_ok(), held, "{role}: {rechecked:?}");
        }
    }
}
