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

use super::auth::{CredentialKind, Principal, split_secret};
use super::secrets::{b64, constant_time_eq, digest, random_id, random_token};
use super::{AuditEntry, Core, Error, Outcome};
use crate::store::ApiKey;

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
    /// Records a use; returns true if this is the key's first use ever.
    fn touch(&self, key: &ApiKey, now: i64) -> bool {
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        match entries.get_mut(&key.id) {
            Some(entry) => {
                entry.last_used = entry.last_used.max(now);
                false
            }
            None => {
                entries.insert(
                    key.id.clone(),
                    UsageEntry {
                        last_used: key.last_used.map_or(now, |t| t.max(now)),
                        written: key.last_used,
                    },
                );
                key.last_used.is_none()
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

/// What a new key is asked to be.
#[derive(Debug, Default)]
pub struct NewKey {
    pub name: Option<String>,
    pub role: Option<String>,
    pub expires_at: Option<i64>,
}

impl Core {
    pub(crate) fn authenticate_api_key(
        &self,
        token: &str,
        client_ip: std::net::IpAddr,
    ) -> Result<Principal, Error> {
        let id = split_secret(token, PREFIX).ok_or(Error::Unauthenticated)?;
        let tx = self.store.read()?;
        let key = tx
            .api_key(&format!("key_{id}"))?
            .ok_or(Error::Unauthenticated)?;
        if !constant_time_eq(
            b64(&digest(token.as_bytes())).as_bytes(),
            key.digest.as_bytes(),
        ) {
            return Err(Error::Unauthenticated);
        }
        let now = self.clock.now();
        if key.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::Unauthenticated);
        }
        let account = tx.account(key.account)?.ok_or(Error::Unauthenticated)?;
        if account.disabled {
            return Err(Error::Unauthenticated);
        }
        let roles = match &key.role {
            // A key narrowed to a role its owner no longer holds is dead.
            Some(role) if account.roles.contains(role) => vec![role.clone()],
            Some(_) => return Err(Error::Unauthenticated),
            None => account.roles.clone(),
        };
        if self.key_usage.touch(&key, now) {
            self.audit_in_background(
                AuditEntry::new("api_key_first_used", Outcome::Success)
                    .actor_account(&account)
                    .tenant_of(&account)
                    .target(key.id.clone())
                    .client_ip(client_ip),
            );
        }
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
        })
    }

    /// Creates a key for the calling account. A key cannot reach further
    /// than the credential that made it: its role must be one the caller
    /// holds, and it cannot outlive a calling key.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        request: NewKey,
    ) -> Result<(ApiKey, String), Error> {
        let account_id = principal.account.ok_or(Error::Forbidden)?;
        let now = self.clock.now();
        let name = request.name.unwrap_or_else(|| "API key".to_string());
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid("name", "name must be 1 to 100 characters"));
        }
        if let Some(role) = &request.role
            && !principal.roles.contains(role)
        {
            return Err(Error::invalid(
                "role",
                "role must be one of the roles this credential holds",
            ));
        }
        let role = match (&request.role, principal.kind) {
            (Some(r), _) => Some(r.clone()),
            // A key made by a narrowed key stays narrowed.
            (None, CredentialKind::ApiKey) if principal.roles.len() == 1 => {
                principal.roles.first().cloned()
            }
            (None, _) => None,
        };
        if let Some(at) = request.expires_at
            && at <= now
        {
            return Err(Error::invalid(
                "expires_at",
                "expires_at must be in the future",
            ));
        }
        let expires_at = match (request.expires_at, principal.kind, principal.expires_at) {
            (Some(at), CredentialKind::ApiKey, Some(limit)) => Some(at.min(limit)),
            (None, CredentialKind::ApiKey, Some(limit)) => Some(limit),
            (at, _, _) => at,
        };
        let id_part = random_id(16);
        let secret = format!("{PREFIX}{id_part}{}", random_token());
        let key = ApiKey {
            id: format!("key_{id_part}"),
            account: account_id,
            name,
            digest: b64(&digest(secret.as_bytes())),
            created_at: now,
            last_used: None,
            role,
            expires_at,
        };
        let stored = key.clone();
        let audit = self.actor_entry(principal, "api_key_created", Outcome::Success)?;
        self.store
            .write_async(move |tx| {
                let account = tx.account(account_id)?.ok_or(Error::Unauthenticated)?;
                tx.put_api_key(&stored)?;
                audit
                    .tenant_of(&account)
                    .target(stored.id.clone())
                    .append(tx, now)?;
                Ok::<_, Error>(())
            })
            .await?;
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
    pub async fn delete_api_key(
        &self,
        principal: &Principal,
        account: Uuid,
        key_id: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let key_id = key_id.to_string();
        let audit = self.actor_entry(principal, "api_key_revoked", Outcome::Success)?;
        let removed = self
            .store
            .write_async(move |tx| {
                let key = tx
                    .api_key(&key_id)?
                    .filter(|k| k.account == account)
                    .ok_or(Error::NotFound("API key"))?;
                tx.remove_api_key(&key)?;
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

    /// Writes due last-use times (all of them when `all`, at shutdown).
    pub async fn flush_key_usage(&self, all: bool) -> Result<(), Error> {
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
