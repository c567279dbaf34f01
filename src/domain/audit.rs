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
