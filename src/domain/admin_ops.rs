//! The admin operations the browser console needs beyond the single-record
//! ones (issue 11), so that scripts can do everything the console does:
//! API keys across accounts, bulk actions on accounts, bounded exports of
//! the filtered account list and audit log, and the overview. Each is
//! scoped by the rules the single operations use (`Scope`, and the
//! operations of `users.rs` themselves for every bulk item), never by a
//! copy of them.

use std::collections::HashMap;

use uuid::Uuid;

use super::auth::Principal;
use super::keys::ApiKey;
use super::{Core, Error, Page, PageRequest};
use crate::store::Account;

/// Most key records one page of the cross-account key list looks at (as
/// the S2S and audit lists), so a narrow scope or filter cannot make a
/// page read the whole table; the cursor goes on from where it stopped.
const KEY_SCAN: usize = 10_000;

/// Which keys to list.
#[derive(Debug, Default)]
pub struct KeyFilter {
    /// Only keys of this account (its id).
    pub owner: Option<String>,
    /// Only keys of accounts of this reseller.
    pub reseller_id: Option<String>,
    /// Only keys of accounts of this merchant.
    pub merchant_id: Option<String>,
}

/// An API key in the cross-account list, with its owner.
#[derive(Debug, Clone)]
pub struct ListedKey {
    /// The key (its secret only as a digest), with its freshest last use.
    pub key: ApiKey,
    /// The account it acts as.
    pub owner: Account,
    /// Whether it has expired (it is refused, and deleted when its owner
    /// next makes a key).
    pub expired: bool,
}

impl Core {
    /// API keys of the accounts in the caller's scope (managers only), in
    /// key id order; the cursor is the last key id shown. A key whose
    /// owner the scope does not cover is skipped, as the account is.
    pub fn admin_list_keys(
        &self,
        principal: &Principal,
        filter: &KeyFilter,
        page: &PageRequest,
    ) -> Result<Page<ListedKey>, Error> {
        let scope = principal.scope();
        if !scope.manages() {
            return Err(Error::Forbidden);
        }
        let now = self.clock.now();
        let tx = self.store.read()?;
        let owner = match filter.owner.as_deref() {
            None => None,
            // An id that is no account's owns no key.
            Some(raw) => match Uuid::parse_str(raw) {
                Ok(id) => Some(id),
                Err(_) => {
                    return Ok(Page {
                        items: Vec::new(),
                        next: None,
                    });
                }
            },
        };
        // Each owner is read once per page, and judged by the scope and
        // the filter as it is in this snapshot.
        let mut accounts: HashMap<Uuid, Option<Account>> = HashMap::new();
        let mut failed = None;
        let mut owners = Vec::new();
        let mut keep = |key: &ApiKey| -> bool {
            let found = accounts.entry(key.account).or_insert_with(|| {
                tx.account(key.account).unwrap_or_else(|e| {
                    failed = Some(e);
                    None
                })
            });
            let owner = found.as_ref().filter(|a| {
                scope.covers_account(a)
                    && filter
                        .reseller_id
                        .as_ref()
                        .is_none_or(|r| a.reseller_id.as_ref() == Some(r))
                    && filter
                        .merchant_id
                        .as_ref()
                        .is_none_or(|m| a.merchant_id.as_ref() == Some(m))
            });
            match owner {
                Some(a) => {
                    owners.push(a.clone());
                    true
                }
                None => false,
            }
        };
        let after = page.after_id();
        let limit = page.limit();
        let (keys, next) = match owner {
            // One account's keys are few (its cap): read them by index.
            Some(id) => {
                let mut keys: Vec<ApiKey> = tx
                    .account_keys(id)?
                    .into_iter()
                    .filter(|k| k.id.as_str() > after)
                    .collect();
                keys.sort_by(|a, b| a.id.cmp(&b.id));
                let mut kept = Vec::new();
                let mut next = None;
                for key in keys {
                    if kept.len() >= limit {
                        next = kept.last().map(|k: &ApiKey| k.id.clone());
                        break;
                    }
                    if keep(&key) {
                        kept.push(key);
                    }
                }
                (kept, next)
            }
            None => tx.api_keys_after(after, &mut keep, limit, KEY_SCAN)?,
        };
        if let Some(e) = failed {
            return Err(e.into());
        }
        let items = keys
            .into_iter()
            .zip(owners)
            .map(|(mut key, owner)| {
                key.last_used = self.key_usage.last_used(&key);
                let expired = key.expires_at.is_some_and(|e| e <= now);
                ListedKey {
                    key,
                    owner,
                    expired,
                }
            })
            .collect();
        Ok(Page { items, next })
    }
}
