//! The store's cross-record rules, checked by `latchkey verify`: what one
//! write transaction keeps in step must be in step in the file. redb's
//! integrity check proves each table is a sound tree; this proves no
//! change was half-written across tables (a key without its owner or its
//! owner's index entry, a session without its index entry, an index
//! entry naming a record that is gone, an account counter behind the
//! numbers it has handed out).

use std::collections::{HashMap, HashSet};

use redb::{Key, ReadableTable, TableDefinition, Value};

use super::reads::{Source, be_u64};
use super::tables::*;
use super::{Account, ApiKey, Merchant, ReadTx, Session, StoreError, db_err, decode};

/// Most problems one check reports (the first found, in table order).
const MOST_REPORTED: usize = 5;

/// Calls `f` with every entry of `def` (none when the table was never
/// written).
fn each<K: Key + 'static, V: Value + 'static>(
    read: &ReadTx,
    def: TableDefinition<K, V>,
    mut f: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let Some(table) = read.tx.table(def)? else {
        return Ok(());
    };
    for entry in table.iter().map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        f(k.value(), v.value())?;
    }
    Ok(())
}

/// Checks the cross-record rules in one read snapshot; returns what breaks
/// them (empty when the store is whole), at most [`MOST_REPORTED`] lines.
pub(super) fn problems(read: &ReadTx) -> Result<Vec<String>, StoreError> {
    let mut found = Vec::new();
    let mut say = |line: String| {
        if found.len() < MOST_REPORTED {
            found.push(line);
        }
    };

    let mut accounts: HashMap<u128, Account> = HashMap::new();
    each(read, ACCOUNTS, |id, bytes| {
        let account: Account = decode("account", bytes)?;
        accounts.insert(id, account);
        Ok(())
    })?;
    let mut resellers = HashSet::new();
    each(read, RESELLERS, |id, _| {
        resellers.insert(id.to_string());
        Ok(())
    })?;
    let mut merchants: HashMap<String, String> = HashMap::new();
    each(read, MERCHANTS, |id, bytes| {
        let m: Merchant = decode("merchant", bytes)?;
        merchants.insert(id.to_string(), m.reseller_id);
        Ok(())
    })?;

    // Accounts and their indexes.
    let mut numbers = HashMap::new();
    each(read, ACCOUNT_NUMBERS, |number, id| {
        numbers.insert(number, id);
        Ok(())
    })?;
    let next = read
        .meta(META_NEXT_ACCOUNT)?
        .map(|b| be_u64(&b, "account counter"))
        .transpose()?;
    for (id, a) in &accounts {
        if a.id.as_u128() != *id {
            say(format!(
                "account record {} is stored under another id",
                a.id
            ));
        }
        if numbers.get(&a.number) != Some(id) {
            say(format!("account {} has no number index entry", a.id));
        }
        if next.is_some_and(|n| a.number >= n) {
            say(format!(
                "the account counter is behind account {} (number {})",
                a.id, a.number
            ));
        }
        if let Some(r) = &a.reseller_id
            && !resellers.contains(r)
        {
            say(format!(
                "account {} names reseller {r}, which is gone",
                a.id
            ));
        }
        if let Some(m) = &a.merchant_id
            && !merchants.contains_key(m)
        {
            say(format!(
                "account {} names merchant {m}, which is gone",
                a.id
            ));
        }
    }
    for (number, id) in &numbers {
        if accounts.get(id).map(|a| a.number) != Some(*number) {
            say(format!("account number {number} names no account"));
        }
    }
    for (what, def) in [("username", USERNAMES), ("email", EMAILS)] {
        let mut entries = 0;
        each(read, def, |key, id| {
            entries += 1;
            if !accounts.contains_key(&id) {
                say(format!("{what} index entry {key:?} names no account"));
            }
            Ok(())
        })?;
        if entries != accounts.len() {
            say(format!(
                "{entries} {what} index entries for {} accounts",
                accounts.len()
            ));
        }
    }
    each(read, TENANT_ACCOUNTS, |(tenant, _), id| {
        if !accounts.contains_key(&id) {
            say(format!(
                "tenant index entry under {tenant} names no account"
            ));
        }
        Ok(())
    })?;

    // API keys: owner, and the owner's index, both ways.
    let mut keys: HashMap<String, u128> = HashMap::new();
    each(read, API_KEYS, |id, bytes| {
        let key: ApiKey = decode("API key", bytes)?;
        keys.insert(id.to_string(), key.account.as_u128());
        Ok(())
    })?;
    let mut indexed = HashSet::new();
    each(read, ACCOUNT_KEYS, |(account, id), ()| {
        if keys.get(id) != Some(&account) {
            say(format!(
                "the key index names key {id}, which is not that account's"
            ));
        }
        indexed.insert(id.to_string());
        Ok(())
    })?;
    for (id, account) in &keys {
        if !accounts.contains_key(account) {
            say(format!("API key {id} has no owner"));
        }
        if !indexed.contains(id) {
            say(format!("API key {id} is missing from its owner's index"));
        }
    }

    // Sessions and their account index, both ways; opaque tokens.
    let mut sessions: HashMap<u128, u128> = HashMap::new();
    each(read, SESSIONS, |id, bytes| {
        let s: Session = decode("session", bytes)?;
        sessions.insert(id, s.account.as_u128());
        Ok(())
    })?;
    let mut listed = HashSet::new();
    each(read, ACCOUNT_SESSIONS, |(account, id), ()| {
        if sessions.get(&id) != Some(&account) {
            say(format!(
                "the session index names session {}, which is not that account's",
                uuid::Uuid::from_u128(id)
            ));
        }
        listed.insert(id);
        Ok(())
    })?;
    for id in sessions.keys() {
        if !listed.contains(id) {
            say(format!(
                "session {} is missing from its account's index",
                uuid::Uuid::from_u128(*id)
            ));
        }
    }
    each(read, OPAQUE_TOKENS, |_, session| {
        if !sessions.contains_key(&session) {
            say(format!(
                "an opaque token names session {}, which is gone",
                uuid::Uuid::from_u128(session)
            ));
        }
        Ok(())
    })?;

    // Merchants and their reseller's index, both ways.
    for (id, reseller) in &merchants {
        if !resellers.contains(reseller) {
            say(format!(
                "merchant {id} names reseller {reseller}, which is gone"
            ));
        }
    }
    let mut linked = 0;
    each(read, RESELLER_MERCHANTS, |(reseller, merchant), ()| {
        linked += 1;
        if merchants.get(merchant).map(String::as_str) != Some(reseller) {
            say(format!(
                "the reseller index names merchant {merchant} under {reseller}, which is not there"
            ));
        }
        Ok(())
    })?;
    if linked != merchants.len() {
        say(format!(
            "{linked} reseller index entries for {} merchants",
            merchants.len()
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn account(n: u64) -> (Account, crate::store::IndexKeys) {
        let name = format!("user{n}");
        let a: Account = serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::new_v4(),
            "number": n,
            "username": name,
            "email": format!("{name}@example.com"),
            "password_hash": "x",
            "roles": ["user"],
            "disabled": false,
            "created_at": 0,
            "updated_at": 0,
        }))
        .expect("an account record");
        let keys = crate::store::IndexKeys {
            username: name.clone(),
            email: format!("{name}@example.com"),
        };
        (a, keys)
    }

    fn key(id: &str, owner: uuid::Uuid) -> ApiKey {
        serde_json::from_value(serde_json::json!({
            "id": id, "account": owner, "name": "k", "digest": "d",
            "roles": ["user"], "created_at": 0,
        }))
        .expect("a key record")
    }

    fn check(store: &Store) -> Vec<String> {
        problems(&store.read().expect("read")).expect("checked")
    }

    /// A store written through `WriteTx` is whole; each half-written
    /// change across tables is named.
    #[test]
    fn half_written_changes_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let (a, a_keys) = account(1);
        let (b, b_keys) = account(2);
        store
            .write(|tx| {
                tx.next_account_number()?;
                tx.next_account_number()?;
                tx.put_account(&a, &a_keys, None)?;
                tx.put_account(&b, &b_keys, None)?;
                tx.put_api_key(&key("key_a", a.id))
            })
            .expect("written");
        assert_eq!(check(&store), Vec::<String>::new());

        // The owner removed, with its indexes, but not its keys.
        store
            .write(|tx| {
                tx.remove(USERNAMES, a_keys.username.as_str())?;
                tx.remove(EMAILS, a_keys.email.as_str())?;
                tx.remove(ACCOUNT_NUMBERS, a.number)?;
                tx.remove(ACCOUNTS, a.id.as_u128())
            })
            .expect("written");
        assert_eq!(check(&store), ["API key key_a has no owner"]);

        // A key without its owner's index entry.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store
            .write(|tx| {
                tx.next_account_number()?;
                tx.next_account_number()?;
                tx.next_account_number()?;
                tx.put_account(&b, &b_keys, None)?;
                tx.insert_json(API_KEYS, "key_b", &key("key_b", b.id))
            })
            .expect("written");
        assert_eq!(
            check(&store),
            ["API key key_b is missing from its owner's index"]
        );

        // The counter behind a number handed out.
        store
            .write(|tx| tx.set_meta(META_NEXT_ACCOUNT, &2u64.to_be_bytes()))
            .expect("written");
        assert!(
            check(&store)
                .iter()
                .any(|p| p.starts_with("the account counter is behind")),
            "{:?}",
            check(&store)
        );
    }
}
