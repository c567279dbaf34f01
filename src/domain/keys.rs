//! API keys: `sk_live_` + a 16-character key id + 43 characters (256 bits)
//! of secret. The key is found by its id and its SHA-256 digest compared in
//! constant time; the secret is shown once, at creation, and never stored.
//!
//! A key acts as its owner, with the owner's roles and tenant, optionally
//! narrowed to one of those roles and given an expiry. Its last use is kept
//! in memory and written to the store at most once a minute (and at
//! shutdown), so authenticating with a key writes nothing per request.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use super::auth::{CredentialKind, Principal, actor_still_valid, split_secret};
use super::fastpath::IndexedKey;
use super::secrets::{b64, constant_time_eq, digest, random_id, random_token};
use super::tenants::{holds, role_matches};
use super::{AuditEntry, Core, Error, Outcome};
/// An API key as it is listed (its secret only as a digest).
pub use crate::store::ApiKey;

/// Prefix of API keys.
pub const PREFIX: &str = "sk_live_";
/// How often at most a key's last use is written to the store.
pub const LAST_USED_WRITE_INTERVAL: i64 = 60;

/// Last-use times held in memory.
#[derive(Default)]
pub struct Usage {
    /// Key id -> usage.
    entries: Mutex<HashMap<String, UsageEntry>>,
}

#[derive(Clone, Copy)]
struct UsageEntry {
    /// The latest use seen.
    last_used: i64,
    /// What the store holds (or will once the pending write lands).
    written: Option<i64>,
}

impl Usage {
    /// Records a use of key `id`, whose stored last use is `stored`;
    /// returns true if this is the key's first use ever.
    fn touch(&self, id: &str, stored: Option<i64>, now: i64) -> bool {
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        match entries.get_mut(id) {
            Some(entry) => {
                entry.last_used = entry.last_used.max(now);
                false
            }
            None => {
                entries.insert(
                    id.to_string(),
                    UsageEntry {
                        last_used: stored.map_or(now, |t| t.max(now)),
                        written: stored,
                    },
                );
                stored.is_none()
            }
        }
    }

    /// The freshest known last use of a key.
    pub fn last_used(&self, key: &ApiKey) -> Option<i64> {
        let memory = self
            .entries
            .lock()
            .ok()
            .and_then(|e| e.get(&key.id).map(|u| u.last_used));
        memory.max(key.last_used)
    }

    /// Key ids whose last use should be written now (all unwritten ones
    /// when `all`), marked as written.
    fn due(&self, now: i64, all: bool) -> Vec<(String, i64)> {
        let Ok(mut entries) = self.entries.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (id, entry) in entries.iter_mut() {
            let stale = entry.written.is_none_or(|w| w < entry.last_used);
            let old_enough = entry
                .written
                .is_none_or(|w| now - w >= LAST_USED_WRITE_INTERVAL);
            if stale && (all || old_enough) {
                entry.written = Some(entry.last_used);
                out.push((id.clone(), entry.last_used));
            }
        }
        out
    }

    fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
    }
}

/// The longest lifetime a key may be given: ten years. Anything longer is
/// refused rather than clamped, so no expiry is ever computed by overflow.
pub const MAX_LIFETIME: i64 = 10 * 365 * 24 * 3600;
/// Most roles one key may carry.
const MAX_ROLES: usize = 16;

/// What a new key is asked to be.
#[derive(Debug, Default)]
pub struct NewKey {
    /// Display name; "API key" when absent.
    pub name: Option<String>,
    /// One role to act with (the older way of narrowing a key).
    pub role: Option<String>,
    /// The roles to act with; each must be one the creating credential
    /// holds. Absent: all of the creating credential's roles.
    pub roles: Option<Vec<String>>,
    /// When the key stops working; `None`: never.
    pub expiry: Option<KeyExpiry>,
}

/// When a new key is to expire, as asked: one way or the other, never
/// both.
#[derive(Debug, Clone, Copy)]
pub enum KeyExpiry {
    /// At this time, Unix seconds.
    At(i64),
    /// This many seconds from now (as sent; bounded here).
    In(u64),
}

impl Core {
    pub(crate) fn authenticate_api_key(
        &self,
        token: &str,
        client_ip: std::net::IpAddr,
    ) -> Result<Principal, Error> {
        let id = split_secret(token, PREFIX).ok_or(Error::Unauthenticated)?;
        let key_id = format!("key_{id}");
        if let Some(key) = self.states.keys().get(&key_id) {
            return self.authenticate_indexed_key(token, key_id, key, client_ip);
        }
        self.states.keys().note_store_lookup();
        // Taken before the read: a removal after it keeps this key out
        // of the index (see `KeyIndex::insert_if_unchanged`).
        let removals = self.states.keys().removals();
        let tx = self.store.read()?;
        let key = tx.api_key(&key_id)?.ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        key_answers(token, &key.digest, key.expires_at, now)?;
        let account = tx.account(key.account)?.ok_or(Error::Unauthenticated)?;
        if account.disabled {
            return Err(Error::Unauthenticated);
        }
        let roles = if !key.roles.is_empty() {
            // A key whose owner lost any role it acts with is dead.
            if !key.roles.iter().all(|r| holds(&account.roles, r)) {
                return Err(Error::Unauthenticated);
            }
            self.account_allows(&account, key.roles.clone())?
        } else {
            self.narrowed_roles(&account, key.role.as_ref())?
        };
        if self.key_usage.touch(&key.id, key.last_used, now) {
            self.audit_in_background(
                AuditEntry::new("api_key_first_used", Outcome::Success)
                    .actor_account(&account)
                    .tenant_of(&account)
                    .target(key.id.clone())
                    .client_ip(client_ip),
            );
        }
        self.states.keys().insert_if_unchanged(&key, removals);
        Ok(Principal {
            kind: CredentialKind::ApiKey,
            account: Some(account.id),
            session: None,
            credential_id: Some(key.id.clone()),
            name: account.username.clone(),
            role: roles.first().cloned().unwrap_or_default(),
            roles,
            reseller_id: account.reseller_id.clone(),
            merchant_id: account.merchant_id.clone(),
            expires_at: key.expires_at,
            client_ip,
            from_query: false,
        })
    }

    /// [`Core::authenticate_api_key`] for a key found in the index: the
    /// same checks, with the owner's state taken from `AccountStates`
    /// (enabled, holding every role the key acts with, its tenant) instead
    /// of the store, so nothing is read. The owner's username is left out
    /// of the principal; what writes an audit entry reads it.
    fn authenticate_indexed_key(
        &self,
        token: &str,
        key_id: String,
        key: IndexedKey,
        client_ip: std::net::IpAddr,
    ) -> Result<Principal, Error> {
        let now = self.clock.now();
        key_answers(token, &key.digest, key.expires_at, now)?;
        let (reseller_id, merchant_id) = self
            .states
            .tenant_if_allows(key.account, &key.roles, || {
                self.store.read()?.account(key.account)
            })?
            .ok_or(Error::Unauthenticated)?;
        if self.key_usage.touch(&key_id, key.last_used, now) {
            // Once in a key's life: the audit entry names its owner.
            let account = self
                .store
                .read()?
                .account(key.account)?
                .ok_or(Error::Unauthenticated)?;
            self.audit_in_background(
                AuditEntry::new("api_key_first_used", Outcome::Success)
                    .actor_account(&account)
                    .tenant_of(&account)
                    .target(key_id.clone())
                    .client_ip(client_ip),
            );
        }
        Ok(Principal {
            kind: CredentialKind::ApiKey,
            account: Some(key.account),
            session: None,
            credential_id: Some(key_id),
            name: String::new(),
            role: key.roles.first().cloned().unwrap_or_default(),
            roles: key.roles,
            reseller_id,
            merchant_id,
            expires_at: key.expires_at,
            client_ip,
            from_query: false,
        })
    }

    /// Creates a key for the calling account. A key cannot reach further
    /// than the credential that made it: it carries at most that
    /// credential's roles. Only a sign-in's token sent in a header may make
    /// one: not an API key or S2S token (credentials would breed), not a
    /// token read from a URL. An account holds at most
    /// `max_api_keys_per_account` keys (expired ones are deleted first).
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        request: NewKey,
    ) -> Result<(ApiKey, String), Error> {
        principal.may_mint()?;
        // A bearer credential is not held to the console's password window:
        // a console session must pass it to make one.
        self.require_recent_password(principal)?;
        let account_id = principal.account.ok_or(Error::Forbidden)?;
        self.store_new_key(principal, account_id, &principal.roles, None, request)
            .await
    }

    /// Creates a key for account `id`, another's or one's own, through the
    /// admin API: a sensitive action (a recently re-entered password). The
    /// caller's scope must cover and manage the account, as for every
    /// admin change to it; the key carries at most the account's roles
    /// (all of them when none are asked for), and the account's cap and
    /// the expiry bound apply as to the account's own keys. The secret is
    /// returned once, to the caller.
    pub async fn admin_create_user_key(
        &self,
        principal: &Principal,
        id: Uuid,
        request: NewKey,
    ) -> Result<(ApiKey, String), Error> {
        principal.may_mint()?;
        let scope = self.scope_seeing(principal, id)?;
        if !scope.manages() {
            return Err(Error::Forbidden);
        }
        self.require_recent_password(principal)?;
        let account = self
            .store
            .read()?
            .account(id)?
            .ok_or(Error::NotFound("user"))?;
        self.store_new_key(principal, id, &account.roles, Some(scope), request)
            .await
    }

    /// The one way a key is made: for `account_id`, carrying at most
    /// `held` (the creating credential's roles for one's own key, the
    /// account's for a key made by a manager, whose scope `manager` is
    /// then checked again in the write).
    async fn store_new_key(
        &self,
        principal: &Principal,
        account_id: Uuid,
        held: &[String],
        manager: Option<super::rbac::Scope>,
        request: NewKey,
    ) -> Result<(ApiKey, String), Error> {
        let now = self.clock.now();
        let name = request.name.unwrap_or_else(|| "API key".to_string());
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid("name", "name must be 1 to 100 characters"));
        }
        let narrowed = request.role.is_some() || request.roles.is_some();
        let whose = if manager.is_some() {
            "the account that holds it"
        } else {
            "the credential that creates it"
        };
        let roles = key_roles(held, whose, request.role, request.roles)?;
        let expires_at = key_expiry(now, request.expiry)?;
        let id_part = random_id(16);
        let secret = format!("{PREFIX}{id_part}{}", random_token());
        let key = ApiKey {
            id: format!("key_{id_part}"),
            account: account_id,
            name,
            digest: b64(&digest(secret.as_bytes())),
            created_at: now,
            last_used: None,
            role: (narrowed && roles.len() == 1).then(|| roles[0].clone()),
            roles,
            narrowed,
            expires_at,
        };
        let stored = key.clone();
        let max = self.config.max_api_keys_per_account;
        let audit = self.actor_entry(principal, "api_key_created", Outcome::Success)?;
        let actor = principal.clone();
        let states = self.states.clone();
        let pruned = self
            .store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let account = match &manager {
                    // One's own account: gone, disabled or demoted means
                    // the credential no longer stands.
                    None => tx
                        .account(account_id)?
                        .filter(|a| !a.disabled)
                        .ok_or(Error::Unauthenticated)?,
                    // Another's: in the manager's scope as it is now.
                    Some(scope) => {
                        let account = tx
                            .account(account_id)?
                            .filter(|a| scope.covers_account(a))
                            .ok_or(Error::NotFound("user"))?;
                        if account.disabled {
                            return Err(Error::Conflict(
                                "the account is disabled; enable it before giving it a key".into(),
                            ));
                        }
                        account
                    }
                };
                if !stored.roles.iter().all(|r| holds(&account.roles, r)) {
                    return Err(match manager {
                        None => Error::Unauthenticated,
                        Some(_) => Error::Conflict(
                            "the account no longer holds every role asked for".into(),
                        ),
                    });
                }
                // Expired keys are deleted here, so the live ones are all
                // that count against the cap and all that a list shows.
                let mut pruned = Vec::new();
                let mut live = 0usize;
                for old in tx.account_keys(account_id)? {
                    if old.expires_at.is_some_and(|e| e <= now) {
                        tx.remove_api_key(&old)?;
                        pruned.push(old.id);
                    } else {
                        live += 1;
                    }
                }
                if live >= max {
                    return Err(Error::Conflict(format!(
                        "this account already has {live} API keys, the most it may hold ({max}); delete one first"
                    )));
                }
                tx.put_api_key(&stored)?;
                // A key is a credential issued to the account: like a
                // session opened, it learns the account as it is now (one
                // made by a manager may be for an account that has not
                // signed in since start, or was enabled since).
                states.learn(&account);
                // Indexed in the writer's turn, so that any later write
                // that restricts the owner takes it out again; until the
                // answer nobody holds the secret, and a failed commit takes
                // it out below.
                states.keys().insert(&stored);
                let audit = audit.tenant_of(&account).target(stored.id.clone());
                let audit = match manager {
                    Some(_) => audit.detail(format!("for {}", account.username)),
                    None => audit,
                };
                audit.append(tx, now)?;
                Ok::<_, Error>(pruned)
            })
            .await
            .inspect_err(|_| self.states.keys().remove(&key.id))?;
        for id in pruned {
            self.states.keys().remove(&id);
            self.key_usage.forget(&id);
        }
        Ok((key, secret))
    }

    /// The keys of an account, with the freshest last-use times.
    pub fn list_api_keys(&self, account: Uuid) -> Result<Vec<ApiKey>, Error> {
        let mut keys = self.store.read()?.account_keys(account)?;
        for key in &mut keys {
            key.last_used = self.key_usage.last_used(key);
        }
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    /// Deletes a key of `account`. A key of another account is "not found".
    /// Deleting another account's key takes a scope that covers and manages
    /// it, checked in the write: an account moved or promoted out of reach
    /// meanwhile is "not found", as it would be to a fresh request.
    pub async fn delete_api_key(
        &self,
        principal: &Principal,
        account: Uuid,
        key_id: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let key_id = key_id.to_string();
        let audit = self.actor_entry(principal, "api_key_revoked", Outcome::Success)?;
        let actor = principal.clone();
        let states = self.states.clone();
        // Pending until the commit is over: see `KeyIndex::removal`.
        let _settles = self.states.keys().removal();
        let removed = self
            .store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                if actor.account != Some(account) {
                    let scope = actor.scope();
                    tx.account(account)?
                        .filter(|a| scope.covers_account(a))
                        .ok_or(Error::NotFound("user"))?;
                    if !scope.manages() {
                        return Err(Error::Forbidden);
                    }
                }
                let key = tx
                    .api_key(&key_id)?
                    .filter(|k| k.account == account)
                    .ok_or(Error::NotFound("API key"))?;
                tx.remove_api_key(&key)?;
                // Before the commit: the key is refused from the moment
                // its deletion can be seen. Should the commit fail, the
                // key is still stored and is found there.
                states.keys().remove(&key.id);
                let owner = tx.account(account)?;
                let audit = match &owner {
                    Some(a) => audit.tenant_of(a),
                    None => audit,
                };
                audit.target(key.id.clone()).append(tx, now)?;
                Ok::<_, Error>(key.id)
            })
            .await?;
        self.key_usage.forget(&removed);
        Ok(())
    }

    /// Writes the last-use times that are due (each key's at most once a
    /// minute).
    pub async fn flush_key_usage(&self) -> Result<(), Error> {
        self.write_key_usage(false).await
    }

    /// Writes every last-use time still held only in memory, at shutdown.
    pub async fn flush_key_usage_at_shutdown(&self) -> Result<(), Error> {
        self.write_key_usage(true).await
    }

    /// Writes due last-use times (all of them when `all`).
    async fn write_key_usage(&self, all: bool) -> Result<(), Error> {
        let due = self.key_usage.due(self.clock.now(), all);
        if due.is_empty() {
            return Ok(());
        }
        self.store
            .write_async(move |tx| {
                for (id, last_used) in due {
                    // A key deleted meanwhile stays deleted.
                    if let Some(mut key) = tx.api_key(&id)? {
                        key.last_used = key.last_used.max(Some(last_used));
                        tx.put_api_key(&key)?;
                    }
                }
                Ok::<_, Error>(())
            })
            .await
    }
}

/// The roles a new key carries: those asked for (`role` or `roles`, not
/// both), each one among `held` (the roles of `whose`), or else all of
/// `held`.
fn key_roles(
    held: &[String],
    whose: &str,
    role: Option<String>,
    roles: Option<Vec<String>>,
) -> Result<Vec<String>, Error> {
    let (field, wanted) = match (role, roles) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("roles", "give role or roles, not both"));
        }
        (Some(role), None) => ("role", vec![role]),
        (None, Some(roles)) => ("roles", roles),
        (None, None) => ("roles", held.to_vec()),
    };
    if wanted.is_empty() || wanted.len() > MAX_ROLES {
        return Err(Error::invalid(
            field,
            format!("a key carries 1 to {MAX_ROLES} roles"),
        ));
    }
    // Each role is kept as the credential spells it, so a key made with
    // `support-team` carries `Support-Team`, as its owner holds it.
    let mut chosen: Vec<String> = Vec::with_capacity(wanted.len());
    for role in &wanted {
        let Some(found) = held.iter().find(|r| role_matches(r, role)) else {
            return Err(Error::invalid(
                field,
                format!("a key's roles must be among the roles of {whose}"),
            ));
        };
        if chosen.contains(found) {
            return Err(Error::invalid(field, format!("{role} is listed twice")));
        }
        chosen.push(found.clone());
    }
    Ok(chosen)
}

/// A new key's expiry: the time asked for, or now plus the lifetime, in
/// the future and at most [`MAX_LIFETIME`] away. The sum is checked, so an
/// enormous lifetime is refused instead of wrapping into the past.
fn key_expiry(now: i64, expiry: Option<KeyExpiry>) -> Result<Option<i64>, Error> {
    let latest = now.checked_add(MAX_LIFETIME);
    match expiry {
        None => Ok(None),
        Some(KeyExpiry::In(secs)) => i64::try_from(secs)
            .ok()
            .filter(|s| (1..=MAX_LIFETIME).contains(s))
            .and_then(|s| now.checked_add(s))
            .map(Some)
            .ok_or_else(|| {
                Error::invalid(
                    "expiresIn",
                    format!("expiresIn must be between 1 and {MAX_LIFETIME} seconds"),
                )
            }),
        Some(KeyExpiry::At(at)) => {
            if at <= now {
                Err(Error::invalid(
                    "expiresAt",
                    "expiresAt must be in the future",
                ))
            } else if latest.is_none_or(|l| at > l) {
                Err(Error::invalid(
                    "expiresAt",
                    format!("expiresAt must be at most {MAX_LIFETIME} seconds from now"),
                ))
            } else {
                Ok(Some(at))
            }
        }
    }
}

/// Whether `token` is the key whose stored digest is `digest` and that has
/// not expired at `now`: the two checks every use of a key makes, from the
/// index or from the store alike. The digest is compared in constant time.
fn key_answers(
    token: &str,
    digest_b64: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<(), Error> {
    if !constant_time_eq(
        b64(&digest(token.as_bytes())).as_bytes(),
        digest_b64.as_bytes(),
    ) {
        return Err(Error::Unauthenticated);
    }
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Error::Unauthenticated);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_bounded_and_never_wraps() {
        let now = 1_700_000_000;
        assert_eq!(key_expiry(now, None).ok(), Some(None));
        assert_eq!(
            key_expiry(now, Some(KeyExpiry::In(60))).ok(),
            Some(Some(now + 60))
        );
        let max = u64::try_from(MAX_LIFETIME).unwrap_or(0);
        assert_eq!(
            key_expiry(now, Some(KeyExpiry::In(max))).ok(),
            Some(Some(now + MAX_LIFETIME))
        );
        for secs in [0, max + 1, u64::MAX, i64::MAX as u64] {
            assert!(
                key_expiry(now, Some(KeyExpiry::In(secs))).is_err(),
                "{secs}"
            );
        }
        assert!(key_expiry(i64::MAX - 5, Some(KeyExpiry::In(60))).is_err());
        assert!(key_expiry(now, Some(KeyExpiry::At(now))).is_err());
        assert!(key_expiry(now, Some(KeyExpiry::At(now + MAX_LIFETIME + 1))).is_err());
        assert!(key_expiry(now, Some(KeyExpiry::At(i64::MAX))).is_err());
    }
}
