//! The tables, the keys of `meta`, and the schema version: the on-disk
//! layout, which ARCHITECTURE.md documents table by table. A table's name
//! and types are part of the file format: changing one needs a migration
//! (see `migrate.rs`).

use redb::TableDefinition;

use super::Account;

/// The schema this build writes. See `migrate.rs` for how older ones move up.
pub const SCHEMA_VERSION: u64 = 3;

/// The store file's name inside the data directory.
pub const STORE_FILE: &str = "latchkey.redb";

pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(super) const ACCOUNTS: TableDefinition<u128, &[u8]> = TableDefinition::new("accounts");
pub(super) const ACCOUNT_NUMBERS: TableDefinition<u64, u128> =
    TableDefinition::new("account_numbers");
pub(super) const USERNAMES: TableDefinition<&str, u128> = TableDefinition::new("usernames");
pub(super) const EMAILS: TableDefinition<&str, u128> = TableDefinition::new("emails");
pub(super) const SESSIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("sessions");
pub(super) const ACCOUNT_SESSIONS: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("account_sessions");
pub(super) const REFRESH_TOKENS: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("refresh_tokens");
pub(super) const REVOCATIONS: TableDefinition<u128, i64> = TableDefinition::new("revocations");
pub(super) const SIGNING_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("signing_keys");
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
// Schema 2.
pub(super) const RESELLERS: TableDefinition<&str, &[u8]> = TableDefinition::new("resellers");
pub(super) const MERCHANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("merchants");
pub(super) const RESELLER_MERCHANTS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("reseller_merchants");
pub(super) const TENANT_ACCOUNTS: TableDefinition<(&str, u64), u128> =
    TableDefinition::new("tenant_accounts");
pub(super) const ROLES: TableDefinition<&str, &[u8]> = TableDefinition::new("roles");
pub(super) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
pub(super) const ACCOUNT_KEYS: TableDefinition<(u128, &str), ()> =
    TableDefinition::new("account_keys");
pub(super) const S2S_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("s2s_tokens");
pub(super) const LOCKOUTS: TableDefinition<&str, &[u8]> = TableDefinition::new("lockouts");
pub(super) const OPAQUE_TOKENS: TableDefinition<&[u8; 32], u128> =
    TableDefinition::new("opaque_tokens");
pub(super) const EXTERNAL_IDENTITIES: TableDefinition<(&str, &str), u128> =
    TableDefinition::new("external_identities");
pub(super) const ACCOUNT_LINKS: TableDefinition<(u128, &str), &str> =
    TableDefinition::new("account_links");
// Schema 3.
pub(super) const RETIRED_TENANTS: TableDefinition<&str, i64> =
    TableDefinition::new("retired_tenants");

/// `meta` key of the schema version, a big-endian `u64`.
pub(super) const META_SCHEMA: &str = "schema_version";
/// `meta` key of the next account number, a big-endian `u64`.
pub(super) const META_NEXT_ACCOUNT: &str = "next_account_number";

/// The tenant index key of a reseller (`r:<id>`).
pub fn reseller_key(id: &str) -> String {
    format!("r:{id}")
}

/// The tenant index key of a merchant (`m:<id>`).
pub fn merchant_key(id: &str) -> String {
    format!("m:{id}")
}

/// The `tenant_accounts` keys an account is indexed under.
pub(super) fn tenant_keys(account: &Account) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(r) = &account.reseller_id {
        keys.push(reseller_key(r));
    }
    if let Some(m) = &account.merchant_id {
        keys.push(merchant_key(m));
    }
    keys
}

/// The lookup forms of an account's username and email, computed by the
/// domain (which owns the normalisation rules).
#[derive(Debug, Clone)]
pub struct IndexKeys {
    /// The `usernames` key: lowercase NFKC.
    pub username: String,
    /// The `emails` key: trimmed, lowercase.
    pub email: String,
}
