//! The write methods of [`WriteTx`]: each keeps a record and its index
//! entries in step, inside the caller's one transaction.

use std::borrow::Borrow;
use std::collections::HashSet;

use redb::{Key, ReadableTable, ReadableTableMetadata, Table, TableDefinition, Value};
use serde::Serialize;
use uuid::Uuid;

use super::reads::be_u64;
use super::tables::*;
use super::{
    Account, ApiKey, AuditEvent, CustomRole, IndexKeys, Lockout, Merchant, RefreshRecord, Reseller,
    S2sToken, Session, SigningKey, StoreError, WriteTx, db_err, encode,
};

// The building blocks the writes below are made of.
impl WriteTx {
    /// Opens a table to change, creating it if it was never written.
    pub(super) fn open<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Table<'_, K, V>, StoreError> {
        self.tx.open_table(def).map_err(db_err)
    }

    /// Writes one entry.
    pub(super) fn insert<'k, 'v, K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<(), StoreError> {
        self.open(def)?.insert(key, value).map_err(db_err)?;
        Ok(())
    }

    /// Encodes and writes one JSON record.
    pub(super) fn insert_json<'k, K: Key + 'static, T: Serialize>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
        key: impl Borrow<K::SelfType<'k>>,
        value: &T,
    ) -> Result<(), StoreError> {
        self.insert(def, key, encode(value)?.as_slice())
    }

    /// Deletes one entry, if it is there.
    pub(super) fn remove<'k, K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<(), StoreError> {
        self.open(def)?.remove(key).map_err(db_err)?;
        Ok(())
    }

    /// Keeps the entries `keep` accepts; returns how many went.
    fn retain<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
        mut keep: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> bool,
    ) -> Result<u64, StoreError> {
        let mut t = self.open(def)?;
        let before = t.len().map_err(db_err)?;
        t.retain(|k, v| keep(k, v)).map_err(db_err)?;
        Ok(before - t.len().map_err(db_err)?)
    }
}

impl WriteTx {
    pub(super) fn set_schema_version(&mut self, version: u64) -> Result<(), StoreError> {
        self.set_meta(META_SCHEMA, &version.to_be_bytes())
    }

    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.insert(META, key, value)
    }

    /// The next account number (1, 2, ...), reserved in this transaction.
    /// Numbers are never reused, even after an account is deleted.
    pub fn next_account_number(&mut self) -> Result<u64, StoreError> {
        let next = match self.meta(META_NEXT_ACCOUNT)? {
            Some(bytes) => be_u64(&bytes, "account counter")?,
            None => 1,
        };
        self.set_meta(META_NEXT_ACCOUNT, &(next + 1).to_be_bytes())?;
        Ok(next)
    }

    /// Writes an account and keeps its indexes (number, username, email,
    /// tenants) in step. `previous` is the stored version being replaced.
    /// Uniqueness is the domain's to check before calling.
    pub fn put_account(
        &mut self,
        account: &Account,
        keys: &IndexKeys,
        previous: Option<(&Account, &IndexKeys)>,
    ) -> Result<(), StoreError> {
        if let Some((old, old_keys)) = previous {
            self.remove_account_indexes(old, old_keys)?;
        }
        let id = account.id.as_u128();
        self.insert_json(ACCOUNTS, id, account)?;
        self.insert(ACCOUNT_NUMBERS, account.number, id)?;
        self.insert(USERNAMES, keys.username.as_str(), id)?;
        self.insert(EMAILS, keys.email.as_str(), id)?;
        for key in tenant_keys(account) {
            self.insert(TENANT_ACCOUNTS, (key.as_str(), account.number), id)?;
        }
        Ok(())
    }

    fn remove_account_indexes(
        &mut self,
        account: &Account,
        keys: &IndexKeys,
    ) -> Result<(), StoreError> {
        self.remove(USERNAMES, keys.username.as_str())?;
        self.remove(EMAILS, keys.email.as_str())?;
        for key in tenant_keys(account) {
            self.remove(TENANT_ACCOUNTS, (key.as_str(), account.number))?;
        }
        Ok(())
    }

    /// Deletes an account, its indexes, API keys and provider links. Its
    /// sessions stay, revoked by the caller, so their revocations keep
    /// being honoured.
    pub fn remove_account(
        &mut self,
        account: &Account,
        keys: &IndexKeys,
    ) -> Result<(), StoreError> {
        self.remove_account_indexes(account, keys)?;
        self.remove(ACCOUNTS, account.id.as_u128())?;
        self.remove(ACCOUNT_NUMBERS, account.number)?;
        for key in self.account_keys(account.id)? {
            self.remove_api_key(&key)?;
        }
        self.remove_external_links(account.id)?;
        Ok(())
    }

    /// Links a provider's immutable id to an account, both ways.
    pub fn put_external_link(
        &mut self,
        provider: &str,
        subject: &str,
        account: Uuid,
    ) -> Result<(), StoreError> {
        self.insert(EXTERNAL_IDENTITIES, (provider, subject), account.as_u128())?;
        self.insert(ACCOUNT_LINKS, (account.as_u128(), provider), subject)
    }

    /// Removes every provider link of an account, both ways, and returns
    /// what was removed as (provider, immutable id) pairs.
    pub fn remove_external_links(
        &mut self,
        account: Uuid,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let a = account.as_u128();
        let mut links = Vec::new();
        for entry in self
            .open(ACCOUNT_LINKS)?
            .range::<(u128, &str)>((a, "")..)
            .map_err(db_err)?
        {
            let (k, v) = entry.map_err(db_err)?;
            if k.value().0 != a {
                break;
            }
            links.push((k.value().1.to_string(), v.value().to_string()));
        }
        for (provider, subject) in &links {
            self.remove(ACCOUNT_LINKS, (a, provider.as_str()))?;
            self.remove(EXTERNAL_IDENTITIES, (provider.as_str(), subject.as_str()))?;
        }
        Ok(links)
    }

    pub fn put_opaque_token(&mut self, digest: &[u8; 32], session: Uuid) -> Result<(), StoreError> {
        self.insert(OPAQUE_TOKENS, digest, session.as_u128())
    }

    pub fn put_lockout(&mut self, key: &str, lockout: &Lockout) -> Result<(), StoreError> {
        self.insert_json(LOCKOUTS, key, lockout)
    }

    pub fn remove_lockout(&mut self, key: &str) -> Result<(), StoreError> {
        self.remove(LOCKOUTS, key)
    }

    pub fn put_reseller(&mut self, reseller: &Reseller) -> Result<(), StoreError> {
        self.insert_json(RESELLERS, reseller.id.as_str(), reseller)
    }

    /// Removes a reseller and retires its id for good (see
    /// [`super::ReadTx::tenant_retired`]).
    pub fn remove_reseller(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        self.remove(RESELLERS, id)?;
        self.insert(RETIRED_TENANTS, reseller_key(id).as_str(), at)
    }

    pub fn put_merchant(&mut self, merchant: &Merchant) -> Result<(), StoreError> {
        self.insert_json(MERCHANTS, merchant.id.as_str(), merchant)?;
        let link = (merchant.reseller_id.as_str(), merchant.id.as_str());
        self.insert(RESELLER_MERCHANTS, link, ())
    }

    /// Removes a merchant and retires its id for good (see
    /// [`super::ReadTx::tenant_retired`]).
    pub fn remove_merchant(&mut self, merchant: &Merchant, at: i64) -> Result<(), StoreError> {
        self.remove(MERCHANTS, merchant.id.as_str())?;
        self.insert(RETIRED_TENANTS, merchant_key(&merchant.id).as_str(), at)?;
        let link = (merchant.reseller_id.as_str(), merchant.id.as_str());
        self.remove(RESELLER_MERCHANTS, link)
    }

    pub fn put_custom_role(&mut self, role: &CustomRole) -> Result<(), StoreError> {
        self.insert_json(ROLES, role.name.as_str(), role)
    }

    pub fn remove_custom_role(&mut self, name: &str) -> Result<(), StoreError> {
        self.remove(ROLES, name)
    }

    pub fn put_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError> {
        self.insert_json(API_KEYS, key.id.as_str(), key)?;
        self.insert(ACCOUNT_KEYS, (key.account.as_u128(), key.id.as_str()), ())
    }

    pub fn remove_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError> {
        self.remove(API_KEYS, key.id.as_str())?;
        self.remove(ACCOUNT_KEYS, (key.account.as_u128(), key.id.as_str()))
    }

    pub fn put_s2s_token(&mut self, token: &S2sToken) -> Result<(), StoreError> {
        self.insert_json(S2S_TOKENS, token.id.as_str(), token)
    }

    /// Deletes an S2S token record (one ended long enough ago).
    pub fn remove_s2s_token(&mut self, id: &str) -> Result<(), StoreError> {
        self.remove(S2S_TOKENS, id)
    }

    pub fn put_session(&mut self, session: &Session) -> Result<(), StoreError> {
        let id = session.id.as_u128();
        self.insert_json(SESSIONS, id, session)?;
        self.insert(ACCOUNT_SESSIONS, (session.account.as_u128(), id), ())
    }

    pub fn put_refresh_token(
        &mut self,
        digest: &[u8; 32],
        record: &RefreshRecord,
    ) -> Result<(), StoreError> {
        self.insert_json(REFRESH_TOKENS, digest, record)
    }

    /// Remembers that `session` is revoked until `until` (Unix seconds).
    pub fn put_revocation(&mut self, session: Uuid, until: i64) -> Result<(), StoreError> {
        self.insert(REVOCATIONS, session.as_u128(), until)
    }

    /// Forgets revocations that no token can outlive any more.
    pub fn prune_revocations(&mut self, now: i64) -> Result<usize, StoreError> {
        let removed = self.retain(REVOCATIONS, |_, until| until >= now)?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// Deletes S2S token records revoked, or expired, more than `grace`
    /// seconds before `now` (`max_ttl` dates a token stored without an
    /// expiry). A deleted token authenticates as nothing, exactly like a
    /// revoked one, and cannot come back. Returns how many went.
    pub fn prune_s2s_tokens(
        &mut self,
        now: i64,
        grace: i64,
        max_ttl: i64,
    ) -> Result<u64, StoreError> {
        self.retain(S2S_TOKENS, |_, v| {
            // An unreadable record is left for an operator to see.
            serde_json::from_slice::<S2sToken>(v).map_or(true, |token| {
                let ended = token.revoked_at.unwrap_or(i64::MAX).min(
                    token
                        .expires_at
                        .unwrap_or_else(|| token.created_at.saturating_add(max_ttl)),
                );
                ended.saturating_add(grace) >= now
            })
        })
    }

    /// Deletes what can no longer be used, so the store does not grow with
    /// every sign-in forever: sessions ended more than `grace` seconds ago
    /// (with their account index entries and opaque tokens), refresh
    /// tokens past their expiry, and failure counts untouched for
    /// `failures_kept` seconds that hold no live lock. Revoked sessions are
    /// deleted on the same rule: once a session has ended, its revocation
    /// has nothing left to refuse. Returns how many records went.
    pub fn prune_expired(
        &mut self,
        now: i64,
        grace: i64,
        failures_kept: i64,
    ) -> Result<u64, StoreError> {
        let mut ended = Vec::new();
        for entry in self.open(SESSIONS)?.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            // An unreadable record is left for an operator to see.
            if let Ok(s) = serde_json::from_slice::<Session>(v.value())
                && s.expires_at + grace < now
            {
                ended.push((k.value(), s.account.as_u128()));
            }
        }
        for (id, account) in &ended {
            self.remove(SESSIONS, *id)?;
            self.remove(ACCOUNT_SESSIONS, (*account, *id))?;
        }
        let mut removed = ended.len() as u64;
        let ended: HashSet<u128> = ended.into_iter().map(|(id, _)| id).collect();
        removed += self.retain(OPAQUE_TOKENS, |_, session| !ended.contains(&session))?;
        removed += self.retain(REFRESH_TOKENS, |_, v| {
            serde_json::from_slice::<RefreshRecord>(v).map_or(true, |r| r.expires_at + grace >= now)
        })?;
        removed += self.retain(LOCKOUTS, |_, v| {
            serde_json::from_slice::<Lockout>(v).map_or(true, |l| {
                l.locked_until.is_some_and(|u| u > now) || l.updated_at + failures_kept >= now
            })
        })?;
        Ok(removed)
    }

    pub fn put_signing_key(&mut self, key: &SigningKey) -> Result<(), StoreError> {
        self.insert_json(SIGNING_KEYS, key.kid.as_str(), key)
    }

    /// Deletes a signing key (a retired one no token can still need).
    pub fn remove_signing_key(&mut self, kid: &str) -> Result<(), StoreError> {
        self.remove(SIGNING_KEYS, kid)
    }

    /// Appends an event, numbering it after the last one.
    pub fn append_audit(&mut self, mut event: AuditEvent) -> Result<u64, StoreError> {
        let mut t = self.open(AUDIT)?;
        let last = t.last().map_err(db_err)?.map(|(k, _)| k.value());
        event.seq = last.unwrap_or(0) + 1;
        t.insert(event.seq, encode(&event)?.as_slice())
            .map_err(db_err)?;
        Ok(event.seq)
    }
}
