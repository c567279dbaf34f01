//! The schema version check at open, and the migrations from older
//! schemas. Each step moves a store up one version inside the one write
//! transaction that opening runs, so either every step lands or none does.

use std::collections::BTreeMap;

use redb::ReadableTable;

use super::tables::*;
use super::{Account, AuditEvent, Store, StoreError, WriteTx, decode};

/// One migration step: the schema it starts from, and what it does.
type Step = (u64, fn(&mut WriteTx) -> Result<(), StoreError>);

/// Every step, oldest first. There is no schema 0: schema 1 is the first
/// this project wrote.
const MIGRATIONS: [Step; 2] = [(1, schema_1_to_2), (2, schema_2_to_3)];

impl Store {
    /// Stamps a new store with [`SCHEMA_VERSION`], migrates an older one,
    /// and refuses one written by a newer build.
    pub(super) fn check_schema(&self) -> Result<(), StoreError> {
        self.write(|tx| match tx.schema_version()? {
            None => {
                tx.set_meta(META_NEXT_ACCOUNT, &1u64.to_be_bytes())?;
                tx.set_schema_version(SCHEMA_VERSION)
            }
            Some(v) if v > SCHEMA_VERSION => Err(StoreError::TooNew {
                path: self.path.clone(),
                found: v,
                supported: SCHEMA_VERSION,
            }),
            Some(v) if v < SCHEMA_VERSION => migrate(tx, v),
            Some(_) => Ok(()),
        })
    }
}

/// Moves a store from schema `from` to [`SCHEMA_VERSION`], inside the
/// caller's transaction.
fn migrate(tx: &mut WriteTx, from: u64) -> Result<(), StoreError> {
    for (start, step) in MIGRATIONS {
        if start >= from {
            step(tx)?;
        }
    }
    tx.set_schema_version(SCHEMA_VERSION)
}

/// Schema 1 had no tenant index and took the next account number from the
/// highest one in use, which would hand a deleted account's number to the
/// next account. Schema 2 keeps a counter and indexes accounts by tenant.
fn schema_1_to_2(tx: &mut WriteTx) -> Result<(), StoreError> {
    let mut next = 1;
    for account in tx.all_json::<_, Account>(ACCOUNTS, "account")? {
        next = u64::max(next, account.number + 1);
        for key in tenant_keys(&account) {
            let id = account.id.as_u128();
            tx.insert(TENANT_ACCOUNTS, (key.as_str(), account.number), id)?;
        }
    }
    tx.set_meta(META_NEXT_ACCOUNT, &u64::to_be_bytes(next))
}

/// Schema 2 let a deleted reseller's or merchant's id be taken again, and
/// the new tenant then inherited the old one's audit trail. Schema 3 keeps
/// every removed tenant id in `retired_tenants`; this step finds the ones
/// a schema-2 store already removed from the tenant ids its audit log
/// names that no longer exist, dated by the last event naming each.
fn schema_2_to_3(tx: &mut WriteTx) -> Result<(), StoreError> {
    let mut gone: BTreeMap<String, i64> = BTreeMap::new();
    for entry in tx.open(AUDIT)?.iter().map_err(super::db_err)? {
        let (_, v) = entry.map_err(super::db_err)?;
        let event: AuditEvent = decode("audit event", v.value())?;
        if let Some(r) = &event.reseller_id
            && tx.get(RESELLERS, r.as_str(), |_| ())?.is_none()
        {
            gone.insert(reseller_key(r), event.at);
        }
        if let Some(m) = &event.merchant_id
            && tx.get(MERCHANTS, m.as_str(), |_| ())?.is_none()
        {
            gone.insert(merchant_key(m), event.at);
        }
    }
    for (key, at) in gone {
        tx.insert(RETIRED_TENANTS, key.as_str(), at)?;
    }
    Ok(())
}
