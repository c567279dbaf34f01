//! The append-only audit log of credential events.
//!
//! An entry that accompanies a change (a session opened, an account
//! created) is appended in the same write transaction as the change, so the
//! log and the state never disagree. An entry on its own (a failed login) is
//! a write of its own.

use super::{ClientInfo, Core, Error};
use crate::store::{Account, AuditEvent, StoreError, WriteTx};

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

    /// Appends inside a transaction that carries the change it describes.
    pub fn append(mut self, tx: &mut WriteTx, now: i64) -> Result<u64, StoreError> {
        self.event.at = now;
        tx.append_audit(self.event)
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
}

/// Most events one page looks at, so a filter that matches little cannot
/// make a page read the whole log; the cursor lets the client go on.
const AUDIT_SCAN: usize = 10_000;

impl Core {
    /// Audit events in the caller's scope, newest first, before `before`.
    /// Admin sees all; a reseller or merchant its tenant's; an account the
    /// events it did or that were done to it.
    pub fn list_audit(
        &self,
        principal: &super::auth::Principal,
        filter: &AuditFilter,
        before: u64,
        limit: usize,
    ) -> Result<super::Page<AuditEvent>, Error> {
        use super::rbac::Scope;
        let scope = principal.scope();
        let own = principal.actor_id();
        let visible = |e: &AuditEvent| match &scope {
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
        let (items, last) = self
            .store
            .read()?
            .audit_before(before, limit, AUDIT_SCAN, |e| {
                visible(e)
                    && filter.event.as_ref().is_none_or(|w| *w == e.event)
                    && filter.outcome.as_ref().is_none_or(|w| *w == e.outcome)
                    && matches(&filter.actor, &e.actor)
                    && matches(&filter.target, &e.target)
                    && matches(&filter.reseller_id, &e.reseller_id)
                    && matches(&filter.merchant_id, &e.merchant_id)
            })?;
        // Older events may follow unless the scan reached the first one.
        let next = last.filter(|&seq| seq > 1).map(|seq| seq.to_string());
        Ok(super::Page { items, next })
    }
}
