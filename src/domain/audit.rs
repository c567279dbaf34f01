//! The append-only audit log of credential events.
//!
//! An entry that accompanies a change (a session opened, an account
//! created) is appended in the same write transaction as the change, so the
//! log and the state never disagree. An entry on its own (a failed login) is
//! a write of its own.
//!
//! Every field is bounded when the entry is appended, whatever built it: at
//! most [`FIELD_CHARS`] characters, the free-text `detail` at most
//! [`DETAIL_CHARS`], counted in characters so a cut never splits one. Some
//! fields carry what a client sent (a name tried at login), and an
//! unbounded one would let each request grow the store at will.

use std::collections::HashMap;

use uuid::Uuid;

use super::rbac::Scope;
use super::{ClientInfo, Core, Error};
/// An audit event as a list shows it.
pub use crate::store::AuditEvent;
use crate::store::{Account, ReadTx, StoreError, WriteTx};

/// Most characters any audit field but `detail` keeps.
pub const FIELD_CHARS: usize = 128;
/// Most characters `detail` keeps.
pub const DETAIL_CHARS: usize = 512;

/// `text` cut to at most `max` characters.
fn bounded(text: &mut String, max: usize) {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
    }
}

/// Success or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// An audit entry being built.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// The event as it will be stored; `seq` and `at` are set on append.
    event: AuditEvent,
}

impl AuditEntry {
    pub fn new(event: &str, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            event: AuditEvent {
                seq: 0,
                at: 0,
                event: event.to_string(),
                outcome: match outcome {
                    Outcome::Success => "success",
                    Outcome::Failure => "failure",
                }
                .to_string(),
                actor: None,
                actor_name: None,
                target: None,
                reseller_id: None,
                merchant_id: None,
                client_ip: None,
                detail: None,
            },
        }
    }

    /// Who acted.
    pub fn actor(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.event.actor = Some(id.into());
        self.event.actor_name = Some(name.into());
        self
    }

    /// The account acted as its own actor (a login, a logout).
    pub fn actor_account(self, account: &Account) -> Self {
        self.actor(account.id.to_string(), account.username.clone())
    }

    /// What was acted on.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.event.target = Some(target.into());
        self
    }

    /// Scopes the entry to the account's tenant.
    pub fn tenant_of(mut self, account: &Account) -> Self {
        self.event.reseller_id = account.reseller_id.clone();
        self.event.merchant_id = account.merchant_id.clone();
        self
    }

    /// Scopes the entry to a tenant.
    pub fn tenant(mut self, reseller_id: Option<String>, merchant_id: Option<String>) -> Self {
        self.event.reseller_id = reseller_id;
        self.event.merchant_id = merchant_id;
        self
    }

    /// Where the request came from.
    pub fn client(mut self, client: &ClientInfo) -> Self {
        self.event.client_ip = Some(client.ip.to_string());
        self
    }

    /// Where the request came from, by address alone.
    pub fn client_ip(mut self, ip: std::net::IpAddr) -> Self {
        self.event.client_ip = Some(ip.to_string());
        self
    }

    /// Extra words. Never a secret.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.event.detail = Some(detail.into());
        self
    }

    /// The same entry as a refusal: outcome `failure`, `why` before the
    /// detail it had (which names the document).
    pub fn refused(mut self, why: &str) -> Self {
        self.event.outcome = "failure".to_string();
        self.event.detail = Some(match self.event.detail.take() {
            Some(detail) => format!("{why} ({detail})"),
            None => why.to_string(),
        });
        self
    }

    /// Appends inside a transaction that carries the change it describes.
    pub fn append(self, tx: &mut WriteTx, now: i64) -> Result<u64, StoreError> {
        tx.append_audit(self.bounded(now))
    }

    /// The event as stored: stamped with `now`, every field cut to its
    /// bound.
    fn bounded(mut self, now: i64) -> AuditEvent {
        self.event.at = now;
        let e = &mut self.event;
        bounded(&mut e.event, FIELD_CHARS);
        bounded(&mut e.outcome, FIELD_CHARS);
        for field in [
            &mut e.actor,
            &mut e.actor_name,
            &mut e.target,
            &mut e.reseller_id,
            &mut e.merchant_id,
            &mut e.client_ip,
        ]
        .into_iter()
        .flatten()
        {
            bounded(field, FIELD_CHARS);
        }
        if let Some(detail) = &mut e.detail {
            bounded(detail, DETAIL_CHARS);
        }
        self.event
    }
}

impl Core {
    /// Appends an entry in a write of its own.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), Error> {
        let now = self.clock.now();
        self.store
            .write_async(move |tx| entry.append(tx, now).map(|_| ()))
            .await?;
        Ok(())
    }
}

/// What to show of the audit log.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub event: Option<String>,
    pub outcome: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub reseller_id: Option<String>,
    pub merchant_id: Option<String>,
    /// Only events at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only events before this time (Unix seconds).
    pub until: Option<i64>,
}

/// Most events one page looks at, so a filter that matches little cannot
/// make a page read the whole log; the cursor lets the client go on. With
/// the account checks below, one page costs at most this many event reads
/// plus, for each distinct account or session id among those events, one
/// account read and at most one session read, and for a reseller one
/// merchant read per distinct merchant id (remembered for the page).
const AUDIT_SCAN: usize = 10_000;

/// Decides, within one read snapshot, whether the accounts an event names
/// are ones the caller manages. Ids are resolved once per page.
struct AccountCheck<'a> {
    /// The caller's scope.
    scope: &'a Scope,
    /// The snapshot the page is read from.
    tx: &'a ReadTx,
    /// Account id -> whether the scope covers it, or `None` for an id
    /// that names no account (as a deleted one).
    accounts: HashMap<Uuid, Option<bool>>,
    /// Session id -> the account it belongs to, if the session is known.
    sessions: HashMap<Uuid, Option<Uuid>>,
    /// The first store failure met; the page fails with it.
    failed: Option<StoreError>,
}

/// What an id in an event turned out to be.
enum Named {
    /// Not an account id at all (`anonymous`, `system`, `s2s:<id>`, a
    /// tenant id, a key id, a role name).
    NotAnAccount,
    /// An account (or a session of one): whether the scope covers it.
    Account(bool),
    /// A uuid that is no account and no known session: a deleted account
    /// or a session pruned since.
    Unknown,
}

impl AccountCheck<'_> {
    fn account(&mut self, id: Uuid) -> Option<bool> {
        if let Some(&known) = self.accounts.get(&id) {
            return known;
        }
        let covered = match self.tx.account(id) {
            Ok(found) => found.map(|a| self.scope.covers_account(&a)),
            Err(e) => {
                self.failed.get_or_insert(e);
                Some(false)
            }
        };
        self.accounts.insert(id, covered);
        covered
    }

    fn actor(&mut self, actor: Option<&str>) -> Named {
        match actor.and_then(|a| Uuid::parse_str(a).ok()) {
            None => Named::NotAnAccount,
            // A deleted actor is not one the caller manages.
            Some(id) => Named::Account(self.account(id).unwrap_or(false)),
        }
    }

    fn target(&mut self, target: Option<&str>) -> Named {
        let Some(id) = target.and_then(|t| Uuid::parse_str(t).ok()) else {
            return Named::NotAnAccount;
        };
        if let Some(covered) = self.account(id) {
            return Named::Account(covered);
        }
        let owner = match self.sessions.get(&id) {
            Some(&owner) => owner,
            None => {
                let owner = match self.tx.session(id) {
                    Ok(found) => found.map(|s| s.account),
                    Err(e) => {
                        self.failed.get_or_insert(e);
                        None
                    }
                };
                self.sessions.insert(id, owner);
                owner
            }
        };
        match owner {
            Some(account) => Named::Account(self.account(account).unwrap_or(false)),
            None => Named::Unknown,
        }
    }

    /// An event is shown when every account it names is one the caller
    /// manages. An actor that names no account any more (deleted) hides
    /// the event. A target uuid that is neither an account nor a known
    /// session (a deleted account, or a session pruned since) is shown only
    /// beside an actor account the caller manages: that actor could only
    /// act on what it manages itself, or on its own sessions.
    fn allows(&mut self, e: &AuditEvent) -> bool {
        let actor = self.actor(e.actor.as_deref());
        if matches!(actor, Named::Account(false)) {
            return false;
        }
        match self.target(e.target.as_deref()) {
            Named::NotAnAccount | Named::Account(true) => true,
            Named::Account(false) => false,
            Named::Unknown => matches!(actor, Named::Account(true)),
        }
    }
}

/// Hides, from a tenant's view, events dated before the tenant (as it is
/// now) was created: a store from before tenant ids were retired can hold
/// a deleted tenant's events under an id a new tenant took since, and the
/// 2 -> 3 upgrade could retire only ids that no longer existed.
struct TenantSince<'a> {
    /// The snapshot the page is read from.
    tx: &'a ReadTx,
    /// No event before this is the caller's: its own tenant record's
    /// `created_at` (the reseller's for a reseller, the merchant's for a
    /// merchant), or `i64::MAX` when that record is missing.
    floor: i64,
    /// For a reseller scope, the reseller: a merchant's event is also held
    /// to that merchant's `created_at`.
    reseller: Option<String>,
    /// Merchant id -> its `created_at` when it is a merchant of the
    /// caller's reseller (one read per distinct id on a page).
    merchants: HashMap<String, Option<i64>>,
    /// The first store failure met; the page fails with it.
    failed: Option<StoreError>,
}

impl<'a> TenantSince<'a> {
    fn new(scope: &Scope, tx: &'a ReadTx) -> Result<TenantSince<'a>, StoreError> {
        let (floor, reseller) = match scope {
            Scope::Reseller(r) => (
                tx.reseller(r)?.map_or(i64::MAX, |found| found.created_at),
                Some(r.clone()),
            ),
            Scope::Merchant { reseller, merchant } => (
                tx.merchant(merchant)?
                    .filter(|m| m.reseller_id == *reseller)
                    .map_or(i64::MAX, |m| m.created_at),
                None,
            ),
            // Every other scope is not a tenant's.
            _ => (i64::MIN, None),
        };
        Ok(TenantSince {
            tx,
            floor,
            reseller,
            merchants: HashMap::new(),
            failed: None,
        })
    }

    fn allows(&mut self, e: &AuditEvent) -> bool {
        if e.at < self.floor {
            return false;
        }
        let (Some(reseller), Some(merchant)) = (&self.reseller, &e.merchant_id) else {
            return true;
        };
        let since = match self.merchants.get(merchant) {
            Some(&since) => since,
            None => {
                let since = match self.tx.merchant(merchant) {
                    Ok(found) => found
                        .filter(|m| m.reseller_id == *reseller)
                        .map(|m| m.created_at),
                    Err(e) => {
                        self.failed.get_or_insert(e);
                        Some(i64::MAX)
                    }
                };
                self.merchants.insert(merchant.clone(), since);
                since
            }
        };
        // A merchant id that is no merchant of the caller's any more (one
        // deleted since, its id retired) keeps its trail with the reseller.
        since.is_none_or(|since| e.at >= since)
    }
}

impl Core {
    /// Audit events in the caller's scope, newest first, before `before`.
    /// Admin sees all. A reseller sees its tenant's events, a merchant
    /// those whose reseller and merchant are both its own, and an account
    /// the events it did or that were done to it; and none of them sees an
    /// event whose actor or target is an account it does not manage (such
    /// as an admin placed in its tenant, or an account deleted since), nor
    /// one dated before its tenant record was created ([`TenantSince`]).
    pub fn list_audit(
        &self,
        principal: &super::auth::Principal,
        filter: &AuditFilter,
        page: &super::PageRequest,
    ) -> Result<super::Page<AuditEvent>, Error> {
        let before = page.number(u64::MAX)?;
        let limit = page.limit();
        let scope = principal.scope();
        let own = principal.actor_id();
        let in_scope = |e: &AuditEvent| match &scope {
            Scope::Own(_) => {
                e.actor.as_deref() == Some(own.as_str())
                    || e.target.as_deref() == Some(own.as_str())
            }
            Scope::Nothing => false,
            s => s.covers_tenant(e.reseller_id.as_deref(), e.merchant_id.as_deref()),
        };
        let matches = |want: &Option<String>, have: &Option<String>| {
            want.as_ref()
                .is_none_or(|w| have.as_deref() == Some(w.as_str()))
        };
        let tx = self.store.read()?;
        let mut check = AccountCheck {
            scope: &scope,
            tx: &tx,
            accounts: HashMap::new(),
            sessions: HashMap::new(),
            failed: None,
        };
        let mut since = TenantSince::new(&scope, &tx)?;
        let (items, last) = tx.audit_before(before, limit, AUDIT_SCAN, |e| {
            in_scope(e)
                && since.allows(e)
                && filter.event.as_ref().is_none_or(|w| *w == e.event)
                && filter.outcome.as_ref().is_none_or(|w| *w == e.outcome)
                && matches(&filter.actor, &e.actor)
                && matches(&filter.target, &e.target)
                && matches(&filter.reseller_id, &e.reseller_id)
                && matches(&filter.merchant_id, &e.merchant_id)
                && filter.since.is_none_or(|t| e.at >= t)
                && filter.until.is_none_or(|t| e.at < t)
                && (scope == Scope::All || check.allows(e))
        })?;
        if let Some(e) = check.failed.or(since.failed) {
            return Err(e.into());
        }
        // Older events may follow unless the scan reached the first one.
        let next = last.filter(|&seq| seq > 1).map(|seq| seq.to_string());
        Ok(super::Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_cut_to_its_bound_in_characters() {
        let long = "\u{FDFA}".repeat(5000);
        let e = AuditEntry::new(&long, Outcome::Failure)
            .actor(long.clone(), long.clone())
            .target(long.clone())
            .tenant(Some(long.clone()), Some(long.clone()))
            .detail(long.clone())
            .bounded(7);
        for field in [
            Some(e.event),
            e.actor,
            e.actor_name,
            e.target,
            e.reseller_id,
            e.merchant_id,
        ] {
            assert_eq!(field.map(|f| f.chars().count()), Some(FIELD_CHARS));
        }
        assert_eq!(e.detail.map(|d| d.chars().count()), Some(DETAIL_CHARS));
        assert_eq!(e.at, 7);
        let short = AuditEntry::new("login", Outcome::Success)
            .detail("v1")
            .bounded(1);
        assert_eq!(short.detail.as_deref(), Some("v1"));
    }
}
