//! The read methods, written once for both transaction kinds.
//!
//! redb's two transaction kinds hand out different table types (a
//! `ReadOnlyTable` from a read, a `Table` from a write) that share the
//! `ReadableTable` trait. [`Source`] names that one difference, so every
//! read below is one generic method on [`Tx`], and [`ReadTx`] and
//! [`WriteTx`] are the two instances the domain uses.

use std::borrow::Borrow;
use std::ops::Bound::{Excluded, Unbounded};
use std::ops::RangeBounds;

use redb::{
    AccessGuard, Key, ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata,
    StorageError, Table, TableDefinition, TableError, Value, WriteTransaction,
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::tables::*;
use super::{
    Account, ApiKey, AuditEvent, CustomRole, Lockout, Merchant, RefreshRecord, Reseller, S2sToken,
    Session, SigningKey, StoreError, db_err, decode,
};

/// What a transaction kind must give to be read from: its tables.
pub trait Source {
    /// The table type this kind of transaction hands out.
    type Table<'a, K: Key + 'static, V: Value + 'static>: ReadableTable<K, V>
    where
        Self: 'a;

    /// Opens a table; `None` where a read transaction finds a table that
    /// was never written, which reads as empty.
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Option<Self::Table<'_, K, V>>, StoreError>;
}

impl Source for ReadTransaction {
    type Table<'a, K: Key + 'static, V: Value + 'static> = ReadOnlyTable<K, V>;

    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Option<ReadOnlyTable<K, V>>, StoreError> {
        match self.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(db_err(e)),
        }
    }
}

impl Source for WriteTransaction {
    type Table<'a, K: Key + 'static, V: Value + 'static> = Table<'a, K, V>;

    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Option<Table<'_, K, V>>, StoreError> {
        self.open_table(def).map(Some).map_err(db_err)
    }
}

/// A transaction: a consistent snapshot to read, or a change in progress.
pub struct Tx<T> {
    /// redb's transaction.
    pub(super) tx: T,
}

/// A read-only snapshot.
pub type ReadTx = Tx<ReadTransaction>;

/// A write transaction; see [`super::Store::write`].
pub type WriteTx = Tx<WriteTransaction>;

/// Entries a table range yields.
type Entry<'a, K, V> = Result<(AccessGuard<'a, K>, AccessGuard<'a, V>), StorageError>;

/// Calls `f` with each entry's key and value until it returns false.
fn walk<'a, K: Key + 'static, V: Value + 'static>(
    entries: impl Iterator<Item = Entry<'a, K, V>>,
    mut f: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    for entry in entries {
        let (k, v) = entry.map_err(db_err)?;
        if !f(k.value(), v.value())? {
            break;
        }
    }
    Ok(())
}

// The building blocks the reads below are made of.
impl<T: Source> Tx<T> {
    /// One value, handed to `f`.
    pub(super) fn get<'k, K: Key + 'static, V: Value + 'static, R>(
        &self,
        def: TableDefinition<K, V>,
        key: impl Borrow<K::SelfType<'k>>,
        f: impl FnOnce(V::SelfType<'_>) -> R,
    ) -> Result<Option<R>, StoreError> {
        let Some(t) = self.tx.table(def)? else {
            return Ok(None);
        };
        Ok(t.get(key).map_err(db_err)?.map(|v| f(v.value())))
    }

    /// One JSON record; `what` names it in an error.
    fn json<'k, K: Key + 'static, R: DeserializeOwned>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
        key: impl Borrow<K::SelfType<'k>>,
        what: &'static str,
    ) -> Result<Option<R>, StoreError> {
        self.get(def, key, |v| decode(what, v))?.transpose()
    }

    /// The account an index entry points at.
    fn account_at<'k, K: Key + 'static>(
        &self,
        index: TableDefinition<K, u128>,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<Account>, StoreError> {
        match self.get(index, key, |id| id)? {
            Some(id) => self.account(Uuid::from_u128(id)),
            None => Ok(None),
        }
    }

    /// Entries of `range` in key order, until `f` returns false.
    fn scan<'r, K: Key + 'static, V: Value + 'static, KR>(
        &self,
        def: TableDefinition<K, V>,
        range: impl RangeBounds<KR> + 'r,
        f: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>
    where
        KR: Borrow<K::SelfType<'r>> + 'r,
    {
        match self.tx.table(def)? {
            Some(t) => walk(t.range(range).map_err(db_err)?, f),
            None => Ok(()),
        }
    }

    /// Every record of a table of JSON records, in key order.
    pub(super) fn all_json<K: Key + 'static, R: DeserializeOwned>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
        what: &'static str,
    ) -> Result<Vec<R>, StoreError> {
        let mut out = Vec::new();
        if let Some(t) = self.tx.table(def)? {
            walk(t.iter().map_err(db_err)?, |_, v| {
                out.push(decode(what, v)?);
                Ok(true)
            })?;
        }
        Ok(out)
    }

    /// Up to `limit` (at least one) JSON records with ids after `after`.
    fn json_after<R: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &'static [u8]>,
        after: &str,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<R>, StoreError> {
        let mut out = Vec::new();
        self.scan::<_, _, &str>(def, (Excluded(after), Unbounded), |_, v| {
            out.push(decode(what, v)?);
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// The records `ids` name, through `get`, skipping any that are gone.
    fn load<I, R>(
        &self,
        ids: Vec<I>,
        get: impl Fn(&Self, I) -> Result<Option<R>, StoreError>,
    ) -> Result<Vec<R>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(get(self, id)?);
        }
        Ok(out)
    }
}

/// A big-endian `u64` kept in `meta`.
pub(super) fn be_u64(bytes: &[u8], what: &'static str) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| StoreError::BadRecord {
        what,
        detail: "not 8 bytes".into(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

impl<T: Source> Tx<T> {
    pub fn schema_version(&self) -> Result<Option<u64>, StoreError> {
        self.get(META, META_SCHEMA, |v| be_u64(v, "schema version"))?
            .transpose()
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(META, key, <[u8]>::to_vec)
    }

    pub fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        self.json(ACCOUNTS, id.as_u128(), "account")
    }

    pub fn account_by_number(&self, number: u64) -> Result<Option<Account>, StoreError> {
        self.account_at(ACCOUNT_NUMBERS, number)
    }

    /// `key` is the lookup form (see `domain::accounts::username_key`).
    pub fn account_by_username(&self, key: &str) -> Result<Option<Account>, StoreError> {
        self.account_at(USERNAMES, key)
    }

    /// `key` is the lookup form (see `domain::accounts::email_key`).
    pub fn account_by_email(&self, key: &str) -> Result<Option<Account>, StoreError> {
        self.account_at(EMAILS, key)
    }

    pub fn account_count(&self) -> Result<u64, StoreError> {
        match self.tx.table(ACCOUNTS)? {
            Some(t) => t.len().map_err(db_err),
            None => Ok(0),
        }
    }

    /// Accounts in number order, starting after `after`.
    pub fn accounts_after(&self, after: u64, limit: usize) -> Result<Vec<Account>, StoreError> {
        let mut ids = Vec::new();
        self.scan(ACCOUNT_NUMBERS, after.saturating_add(1).., |_, id| {
            ids.push(Uuid::from_u128(id));
            Ok(ids.len() < limit)
        })?;
        self.load(ids, Self::account)
    }

    pub fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        self.json(SESSIONS, id.as_u128(), "session")
    }

    pub fn account_sessions(&self, account: Uuid) -> Result<Vec<Session>, StoreError> {
        let a = account.as_u128();
        let mut ids = Vec::new();
        self.scan(ACCOUNT_SESSIONS, (a, 0)..=(a, u128::MAX), |(_, id), _| {
            ids.push(Uuid::from_u128(id));
            Ok(true)
        })?;
        self.load(ids, Self::session)
    }

    pub fn refresh_token(&self, digest: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError> {
        self.json(REFRESH_TOKENS, digest, "refresh token")
    }

    /// Every remembered revocation: session id and the time after which no
    /// access token of that session can still be valid.
    pub fn revocations(&self) -> Result<Vec<(Uuid, i64)>, StoreError> {
        let mut out = Vec::new();
        self.scan(REVOCATIONS, 0u128.., |id, until| {
            out.push((Uuid::from_u128(id), until));
            Ok(true)
        })?;
        Ok(out)
    }

    pub fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        self.all_json(SIGNING_KEYS, "signing key")
    }

    /// Calls `f` with accounts in number order after `after`, from one
    /// tenant's index or from all, until it returns false.
    pub fn scan_accounts(
        &self,
        tenant_key: Option<&str>,
        after: u64,
        mut f: impl FnMut(Account) -> bool,
    ) -> Result<(), StoreError> {
        // Ids are collected in batches so that `f` may read the store
        // while the scan goes on.
        let mut from = after;
        loop {
            let mut batch = Vec::new();
            let mut take = |number: u64, id: u128| {
                batch.push((number, Uuid::from_u128(id)));
                Ok::<_, StoreError>(batch.len() < 256)
            };
            let start = from.saturating_add(1);
            match tenant_key {
                Some(key) => {
                    self.scan(TENANT_ACCOUNTS, (key, start)..=(key, u64::MAX), |k, v| {
                        take(k.1, v)
                    })?
                }
                None => self.scan(ACCOUNT_NUMBERS, start.., take)?,
            }
            if batch.is_empty() {
                return Ok(());
            }
            for (number, id) in batch {
                from = number;
                if let Some(account) = self.account(id)?
                    && !f(account)
                {
                    return Ok(());
                }
            }
        }
    }

    /// Whether any account belongs to this tenant index key.
    pub fn tenant_has_accounts(&self, tenant_key: &str) -> Result<bool, StoreError> {
        let mut found = false;
        self.scan(
            TENANT_ACCOUNTS,
            (tenant_key, 0)..=(tenant_key, u64::MAX),
            |_, _| {
                found = true;
                Ok(false)
            },
        )?;
        Ok(found)
    }

    /// Whether a tenant index key (`r:<id>`, `m:<id>`) names a tenant that
    /// was removed: its id is never used again.
    pub fn tenant_retired(&self, tenant_key: &str) -> Result<bool, StoreError> {
        Ok(self.get(RETIRED_TENANTS, tenant_key, |_| ())?.is_some())
    }

    /// The account a provider's immutable id is linked to.
    pub fn external_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        self.get(EXTERNAL_IDENTITIES, (provider, subject), Uuid::from_u128)
    }

    /// The provider id an account is linked to, if any.
    pub fn account_link(
        &self,
        account: Uuid,
        provider: &str,
    ) -> Result<Option<String>, StoreError> {
        self.get(ACCOUNT_LINKS, (account.as_u128(), provider), str::to_string)
    }

    /// The session an opaque token (by digest) belongs to.
    pub fn opaque_token(&self, digest: &[u8; 32]) -> Result<Option<Uuid>, StoreError> {
        self.get(OPAQUE_TOKENS, digest, Uuid::from_u128)
    }

    /// `key` is an identifier in lookup form.
    pub fn lockout(&self, key: &str) -> Result<Option<Lockout>, StoreError> {
        self.json(LOCKOUTS, key, "lockout")
    }

    pub fn reseller(&self, id: &str) -> Result<Option<Reseller>, StoreError> {
        self.json(RESELLERS, id, "reseller")
    }

    /// Resellers in id order after `after`.
    pub fn resellers_after(&self, after: &str, limit: usize) -> Result<Vec<Reseller>, StoreError> {
        self.json_after(RESELLERS, after, limit, "reseller")
    }

    pub fn merchant(&self, id: &str) -> Result<Option<Merchant>, StoreError> {
        self.json(MERCHANTS, id, "merchant")
    }

    /// Merchants in id order after `after`, of one reseller or all.
    pub fn merchants_after(
        &self,
        reseller: Option<&str>,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Merchant>, StoreError> {
        let Some(r) = reseller else {
            return self.json_after(MERCHANTS, after, limit, "merchant");
        };
        let mut ids = Vec::new();
        self.scan(
            RESELLER_MERCHANTS,
            (Excluded((r, after)), Unbounded),
            |(owner, id), _| {
                let more = owner == r && ids.len() < limit;
                if more {
                    ids.push(id.to_string());
                }
                Ok(more)
            },
        )?;
        self.load(ids, |tx, id| tx.merchant(&id))
    }

    /// Whether a reseller has any merchant.
    pub fn reseller_has_merchants(&self, reseller: &str) -> Result<bool, StoreError> {
        Ok(self.reseller_merchant_count(reseller, 1)? > 0)
    }

    /// How many merchants a reseller has, counting no further than `limit`,
    /// so a check against a bound reads at most that many index entries.
    pub fn reseller_merchant_count(
        &self,
        reseller: &str,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut count = 0usize;
        self.scan(RESELLER_MERCHANTS, (reseller, "").., |(owner, _), _| {
            let more = count < limit && owner == reseller;
            count += usize::from(more);
            Ok(more)
        })?;
        Ok(count)
    }

    pub fn custom_roles(&self) -> Result<Vec<CustomRole>, StoreError> {
        self.all_json(ROLES, "role")
    }

    pub fn custom_role(&self, name: &str) -> Result<Option<CustomRole>, StoreError> {
        self.json(ROLES, name, "role")
    }

    pub fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.json(API_KEYS, id, "api key")
    }

    /// An account's API keys, in id order.
    pub fn account_keys(&self, account: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        let a = account.as_u128();
        let mut ids = Vec::new();
        self.scan(ACCOUNT_KEYS, (a, "").., |(owner, id), _| {
            if owner == a {
                ids.push(id.to_string());
            }
            Ok(owner == a)
        })?;
        self.load(ids, |tx, id| tx.api_key(&id))
    }

    pub fn s2s_token(&self, id: &str) -> Result<Option<S2sToken>, StoreError> {
        self.json(S2S_TOKENS, id, "s2s token")
    }

    /// S2S tokens in id order after `after` that `keep` accepts, at most
    /// `limit` of them. At most `scan` records are looked at, so a
    /// selective `keep` cannot make one call read the whole table. Returns
    /// the tokens and the id of the last record looked at when the scan
    /// stopped before the table's end (where a next call starts), else
    /// `None`.
    pub fn s2s_tokens_after(
        &self,
        after: &str,
        mut keep: impl FnMut(&S2sToken) -> bool,
        limit: usize,
        scan: usize,
    ) -> Result<(Vec<S2sToken>, Option<String>), StoreError> {
        let (mut out, mut last, mut looked, mut stopped) = (Vec::new(), None, 0usize, false);
        self.scan::<_, _, &str>(S2S_TOKENS, (Excluded(after), Unbounded), |id, v| {
            if looked >= scan || out.len() >= limit {
                stopped = true;
                return Ok(false);
            }
            looked += 1;
            last = Some(id.to_string());
            let token: S2sToken = decode("s2s token", v)?;
            if keep(&token) {
                out.push(token);
            }
            Ok(true)
        })?;
        Ok((out, last.filter(|_| stopped)))
    }

    /// Audit events, newest first, with `seq` below `before`, that `keep`
    /// accepts. At most `scan` events are looked at, so a selective filter
    /// cannot make one page read the whole log. Returns the events and the
    /// last `seq` looked at (where the next page starts), if any was.
    pub fn audit_before(
        &self,
        before: u64,
        limit: usize,
        scan: usize,
        mut keep: impl FnMut(&AuditEvent) -> bool,
    ) -> Result<(Vec<AuditEvent>, Option<u64>), StoreError> {
        let (mut out, mut last, mut looked) = (Vec::new(), None, 0usize);
        let Some(t) = self.tx.table(AUDIT)? else {
            return Ok((out, last));
        };
        walk(t.range(..before).map_err(db_err)?.rev(), |seq, v| {
            if looked >= scan {
                return Ok(false);
            }
            looked += 1;
            last = Some(seq);
            let event: AuditEvent = decode("audit event", v)?;
            if keep(&event) {
                out.push(event);
                if out.len() >= limit {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        Ok((out, last))
    }
}

/// The lookups the domain's placement rules need, from either kind of
/// transaction.
pub trait Lookup {
    fn reseller(&self, id: &str) -> Result<Option<Reseller>, StoreError>;
    fn merchant(&self, id: &str) -> Result<Option<Merchant>, StoreError>;
    fn custom_role(&self, name: &str) -> Result<Option<CustomRole>, StoreError>;
    fn custom_roles(&self) -> Result<Vec<CustomRole>, StoreError>;
}

impl<T: Source> Lookup for Tx<T> {
    fn reseller(&self, id: &str) -> Result<Option<Reseller>, StoreError> {
        Tx::reseller(self, id)
    }
    fn merchant(&self, id: &str) -> Result<Option<Merchant>, StoreError> {
        Tx::merchant(self, id)
    }
    fn custom_role(&self, name: &str) -> Result<Option<CustomRole>, StoreError> {
        Tx::custom_role(self, name)
    }
    fn custom_roles(&self) -> Result<Vec<CustomRole>, StoreError> {
        Tx::custom_roles(self)
    }
}
