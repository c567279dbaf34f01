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
use super::rbac::Scope;
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

/// The most accounts one bulk request may name: one durable write each,
/// so a request is bounded in time as well as in size.
pub const MAX_BULK_IDS: usize = 500;

/// What a bulk request does to each account it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// As `POST /api/v1/admin/users/{id}/disable`.
    Disable,
    /// As `POST /api/v1/admin/users/{id}/enable`.
    Enable,
    /// As `DELETE /api/v1/admin/users/{id}/sessions`.
    RevokeSessions,
    /// As `DELETE /api/v1/admin/users/{id}`.
    Delete,
}

/// What one account's action did.
#[derive(Debug)]
pub enum BulkDone {
    /// Disabled or enabled: the account as it now is.
    Account(Box<Account>),
    /// Its sessions ended: how many.
    Revoked(usize),
    /// Deleted.
    Deleted,
}

/// One account's outcome in a bulk request, in the order asked.
#[derive(Debug)]
pub struct BulkItem {
    /// The id as it was sent.
    pub id: String,
    /// What happened, or why not: the single action's own refusal.
    pub outcome: Result<BulkDone, Error>,
}

impl Core {
    /// Runs one action on each named account, one at a time and each as
    /// its single route would (the same operation, so the same scope
    /// checks, refusals, durable write transaction and audit entry): not
    /// all-or-nothing. Every item gets its outcome; one refused does not
    /// stop the others. The request itself is refused whole only when it
    /// is malformed (no ids, more than [`MAX_BULK_IDS`], an id twice), when
    /// the caller manages no accounts, or, for delete, when the caller's
    /// password was not re-entered recently.
    pub async fn admin_bulk(
        &self,
        principal: &Principal,
        action: BulkAction,
        ids: Vec<String>,
    ) -> Result<Vec<BulkItem>, Error> {
        if ids.is_empty() || ids.len() > MAX_BULK_IDS {
            return Err(Error::invalid(
                "ids",
                format!("give 1 to {MAX_BULK_IDS} account ids"),
            ));
        }
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(Error::invalid("ids", format!("{id} is listed twice")));
            }
        }
        if !principal.scope().manages() {
            return Err(Error::Forbidden);
        }
        if action == BulkAction::Delete {
            self.require_recent_password(principal)?;
        }
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            // An id that is no account's reads as the single route reads
            // it: not found.
            let outcome = match Uuid::parse_str(&id) {
                Err(_) => Err(Error::NotFound("user")),
                Ok(uuid) => match action {
                    BulkAction::Disable => self
                        .disable_user(principal, uuid)
                        .await
                        .map(|a| BulkDone::Account(Box::new(a))),
                    BulkAction::Enable => self
                        .enable_user(principal, uuid)
                        .await
                        .map(|a| BulkDone::Account(Box::new(a))),
                    BulkAction::RevokeSessions => self
                        .revoke_user_sessions(principal, uuid)
                        .await
                        .map(BulkDone::Revoked),
                    BulkAction::Delete => self
                        .admin_delete_user(principal, uuid)
                        .await
                        .map(|()| BulkDone::Deleted),
                },
            };
            items.push(BulkItem { id, outcome });
        }
        Ok(items)
    }
}

/// The most rows one CSV export holds; past it, the export says where the
/// next one starts (a cursor, as the JSON lists give).
pub const EXPORT_ROWS: usize = 10_000;
/// The most list pages one export reads (for the audit log, each page
/// looks at up to 10,000 events), so a filter that matches little cannot
/// make one export read the whole log.
const EXPORT_PAGES: usize = 20;

/// What part of a list an export asks for: at most `rows` rows (1 to
/// [`EXPORT_ROWS`], default all of them) from `cursor` on.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The most rows.
    rows: usize,
    /// Where to start: a previous export's (or list page's) `next`.
    cursor: Option<String>,
}

impl ExportRequest {
    /// The export a request's `limit` and `cursor` name.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<ExportRequest, Error> {
        let rows = match limit {
            None => EXPORT_ROWS,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=EXPORT_ROWS).contains(n))
                .ok_or_else(|| {
                    Error::invalid(
                        "limit",
                        format!("limit must be a number from 1 to {EXPORT_ROWS}"),
                    )
                })?,
        };
        Ok(ExportRequest {
            rows,
            cursor: cursor.filter(|c| !c.is_empty()).map(str::to_string),
        })
    }
}

impl Core {
    /// The filtered account list as one export: the JSON list's own pages
    /// (so the same filter and scope), gathered up to the rows asked for;
    /// `next` is where a further export starts.
    pub fn export_users(
        &self,
        principal: &Principal,
        filter: &super::users::UserFilter,
        export: &ExportRequest,
    ) -> Result<Page<Account>, Error> {
        gather(export, |page| {
            self.admin_list_users(principal, filter, page)
        })
    }

    /// The filtered audit log as one export, as [`Core::export_users`].
    pub fn export_audit(
        &self,
        principal: &Principal,
        filter: &super::audit::AuditFilter,
        export: &ExportRequest,
    ) -> Result<Page<super::audit::AuditEvent>, Error> {
        gather(export, |page| self.list_audit(principal, filter, page))
    }
}

/// Reads pages of a list from the export's cursor on until its rows,
/// [`EXPORT_PAGES`] pages, or the list's end.
fn gather<T>(
    export: &ExportRequest,
    mut list: impl FnMut(&PageRequest) -> Result<Page<T>, Error>,
) -> Result<Page<T>, Error> {
    let mut items = Vec::new();
    let mut next = export.cursor.clone();
    for _ in 0..EXPORT_PAGES {
        let room = export.rows.saturating_sub(items.len()).min(super::MAX_PAGE);
        if room == 0 {
            break;
        }
        let page = PageRequest::parse(Some(&room.to_string()), next.as_deref())?;
        let got = list(&page)?;
        items.extend(got.items);
        next = got.next;
        if next.is_none() {
            break;
        }
    }
    Ok(Page { items, next })
}

/// The most accounts, and S2S tokens, one overview counts; past either,
/// its counts say they are incomplete rather than read on.
const OVERVIEW_SCAN: usize = 100_000;
/// Recent events an overview shows.
const OVERVIEW_EVENTS: usize = 10;

/// Accounts in a scope, by state.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountCounts {
    /// Every account counted.
    pub total: u64,
    /// Those that may sign in.
    pub enabled: u64,
    /// Those disabled.
    pub disabled: u64,
    /// Those locked out now (too many failed passwords).
    pub locked: u64,
}

/// S2S tokens in a scope, by state.
#[derive(Debug, Clone, Copy, Default)]
pub struct S2sCounts {
    /// Neither revoked nor expired.
    pub live: u64,
    /// Revoked or expired, kept until housekeeping deletes them.
    pub ended: u64,
}

/// What the console's overview shows, all within the caller's scope.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The caller's scope.
    pub scope: Scope,
    /// Accounts by state.
    pub accounts: AccountCounts,
    /// Resellers in scope.
    pub resellers: u64,
    /// Merchants in scope.
    pub merchants: u64,
    /// API keys of the accounts in scope.
    pub api_keys: u64,
    /// S2S tokens in scope.
    pub s2s_tokens: S2sCounts,
    /// Whether every count is whole (none stopped at its scan bound).
    pub complete: bool,
    /// The latest audit events the caller may see, newest first.
    pub recent_events: Vec<super::audit::AuditEvent>,
    /// The readiness checks, as `/readyz` runs them.
    pub readiness: super::observe::Readiness,
    /// The hashing pool now.
    pub hashing: super::observe::PoolState,
}

impl Core {
    /// Counts and recent events for the caller's scope (managers only),
    /// and the server's health. Accounts are judged by the scope rule of
    /// the account list (`Scope::covers_account`), S2S tokens by the S2S
    /// list's (`Scope::covers_tenant`), events through `list_audit`.
    pub async fn admin_overview(&self, principal: &Principal) -> Result<Overview, Error> {
        let scope = principal.scope();
        if !scope.manages() {
            return Err(Error::Forbidden);
        }
        let now = self.clock.now();
        let mut complete = true;
        let (accounts, resellers, merchants, api_keys, s2s_tokens) = {
            let tx = self.store.read()?;
            let tenant_key = match &scope {
                Scope::Reseller(r) => Some(crate::store::reseller_key(r)),
                Scope::Merchant { merchant, .. } => Some(crate::store::merchant_key(merchant)),
                _ => None,
            };
            let mut accounts = AccountCounts::default();
            let mut keys = 0u64;
            let mut failed = None;
            let mut seen = 0usize;
            tx.scan_accounts(tenant_key.as_deref(), 0, |a| {
                if seen >= OVERVIEW_SCAN {
                    complete = false;
                    return false;
                }
                seen += 1;
                if !scope.covers_account(&a) {
                    return true;
                }
                accounts.total += 1;
                if a.disabled {
                    accounts.disabled += 1;
                } else {
                    accounts.enabled += 1;
                }
                let lock = tx.lockout(&super::accounts::lockout_key_for_account(a.id));
                let own_keys = tx.account_keys(a.id);
                match (lock, own_keys) {
                    (Ok(lock), Ok(own_keys)) => {
                        if lock.and_then(|l| l.locked_until).is_some_and(|u| u > now) {
                            accounts.locked += 1;
                        }
                        keys += own_keys.len() as u64;
                        true
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        failed = Some(e);
                        false
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            let (resellers, merchants) = match &scope {
                Scope::All => {
                    let counts = tx.record_counts()?;
                    (counts.resellers, counts.merchants)
                }
                Scope::Reseller(r) => (1, tx.reseller_merchant_count(r, usize::MAX)? as u64),
                _ => (0, 1),
            };
            let mut s2s = S2sCounts::default();
            let max_ttl = self.config.s2s_max_ttl;
            let looked = tx.each_s2s_token(OVERVIEW_SCAN, |t| {
                if scope.covers_tenant(Some(&t.reseller_id), t.merchant_id.as_deref()) {
                    let ended = t.revoked_at.is_some() || super::s2s::expiry(t, max_ttl) <= now;
                    if ended {
                        s2s.ended += 1;
                    } else {
                        s2s.live += 1;
                    }
                }
                true
            })?;
            if looked >= OVERVIEW_SCAN {
                complete = false;
            }
            (accounts, resellers, merchants, keys, s2s)
        };
        let events = PageRequest::parse(Some(&OVERVIEW_EVENTS.to_string()), None)?;
        let recent_events = self
            .list_audit(principal, &super::audit::AuditFilter::default(), &events)?
            .items;
        Ok(Overview {
            scope,
            accounts,
            resellers,
            merchants,
            api_keys,
            s2s_tokens,
            complete,
            recent_events,
            readiness: self.readiness().await,
            hashing: self.pool_state(),
        })
    }
}
