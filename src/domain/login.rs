//! Password login, shared by every document's login route.
//!
//! The order of work is what makes it safe:
//!
//! 1. the rate limiters (by address, then by identifier): a refused attempt
//!    costs no hash and writes nothing;
//! 2. exactly one argon2id verification on the bounded pool, whatever the
//!    case: against the account's hash, or a decoy hash when there is no
//!    account, and also when the identifier is locked, so an unknown
//!    account, a wrong password, a disabled account and a locked one all
//!    cost the same;
//! 3. the lockout rule: a locked identifier is refused even with the right
//!    password; a failure counts toward the lock; a success clears it.
//!
//! Failures count per identifier as submitted (in lookup form), whether or
//! not an account has it, so a lock says nothing about existence.

use super::password::Password;
use super::sessions::{Issued, SessionRequest};
use super::{AuditEntry, ClientInfo, Core, Error, Outcome, accounts};
use crate::store::{Account, Lockout, StoreError, WriteTx};

/// What a failed attempt changed.
enum Failure {
    /// Counted; not locked (yet).
    Counted,
    /// This failure locked the identifier.
    Locked,
}

impl Core {
    /// A whole sign-in: [`Core::password_login`], then a session of the
    /// asked kind, with a `login` audit entry naming the document (`via`).
    pub async fn sign_in(
        self: &std::sync::Arc<Self>,
        identifier: &str,
        password: &str,
        client: &ClientInfo,
        request: SessionRequest,
        via: &str,
    ) -> Result<(Account, Issued), Error> {
        let account = self.password_login(identifier, password, client).await?;
        let issued = self
            .open_session(
                &account,
                request,
                client,
                AuditEntry::new("login", Outcome::Success)
                    .actor_account(&account)
                    .client(client)
                    .detail(via),
            )
            .await?;
        // The account as the session saw it, which may have changed while
        // the password was checked.
        Ok((issued.account.clone(), issued))
    }

    /// Checks an identifier (username or email) and password. On success the
    /// account is returned, its hash upgraded if the parameters changed.
    pub async fn password_login(
        &self,
        identifier: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Account, Error> {
        let key = accounts::identifier_key(identifier);
        self.limits.check(client.ip, Some(&key))?;
        let now = self.clock.now();
        // One snapshot for the lock and the account.
        let (lock, account) = {
            let tx = self.store.read()?;
            (
                tx.lockout(&key)?,
                accounts::find_for_login(&tx, identifier)?,
            )
        };
        let locked_until = lock
            .as_ref()
            .and_then(|l| l.locked_until)
            .filter(|&until| until > now);

        let Some(password) = Password::for_login(password) else {
            // Longer than any password can be: refused before any hash.
            return Err(self
                .refuse(&key, identifier, client, locked_until, "password too long")
                .await);
        };
        let verified = self
            .hasher
            .verify(password, account.as_ref().map(|a| a.password_hash.clone()))
            .await
            .map_err(|_| Error::Busy { retry_after: 1 })?;
        let mut account = match account {
            Some(a) if verified.ok && locked_until.is_none() => a,
            _ => {
                return Err(self
                    .refuse(
                        &key,
                        identifier,
                        client,
                        locked_until,
                        "invalid credentials",
                    )
                    .await);
            }
        };
        if account.disabled {
            self.audit(
                AuditEntry::new("login", Outcome::Failure)
                    .actor_account(&account)
                    .tenant_of(&account)
                    .target(account.id.to_string())
                    .client(client)
                    .detail("account disabled"),
            )
            .await?;
            return Err(Error::Disabled);
        }
        if let Some(fresh) = verified.rehashed {
            account = self.upgrade_hash(account, fresh).await?;
        }
        if lock.is_some() {
            self.clear_lockout(&key, lock, client).await?;
        }
        Ok(account)
    }

    /// Answers a refused attempt: a locked identifier stays locked (and
    /// the attempt does not extend it); otherwise the failure is counted,
    /// durably, with its audit entry, before the answer goes out.
    async fn refuse(
        &self,
        key: &str,
        identifier: &str,
        client: &ClientInfo,
        locked_until: Option<i64>,
        why: &'static str,
    ) -> Error {
        let now = self.clock.now();
        let shown: String = identifier.chars().take(64).collect();
        if let Some(until) = locked_until {
            let entry = AuditEntry::new("login", Outcome::Failure)
                .actor("anonymous", shown)
                .client(client)
                .detail("identifier locked");
            if let Err(e) = self
                .store
                .write_grouped(move |tx| entry.append(tx, now).map(|_| ()))
                .await
            {
                return e.into();
            }
            return Error::Locked {
                retry_after: u64::try_from(until - now).unwrap_or(1).max(1),
            };
        }
        let threshold = self.config.lockout_threshold;
        let lock_for = self.config.lockout_seconds;
        let key_owned = key.to_string();
        let client = client.clone();
        let written = self
            .store
            .write_grouped(move |tx| {
                let failure = count_failure(tx, &key_owned, threshold, lock_for, now)?;
                AuditEntry::new("login", Outcome::Failure)
                    .actor("anonymous", shown.clone())
                    .client(&client)
                    .detail(why)
                    .append(tx, now)?;
                if let Failure::Locked = failure {
                    AuditEntry::new("lockout", Outcome::Success)
                        .actor("system", "lockout")
                        .target(key_owned.clone())
                        .client(&client)
                        .detail(format!(
                            "{threshold} consecutive failed passwords for {shown}; locked for {lock_for} s"
                        ))
                        .append(tx, now)?;
                }
                Ok(())
            })
            .await;
        match written {
            Ok(()) => Error::InvalidCredentials,
            Err(e) => e.into(),
        }
    }

    /// A success clears the count, and an expired lock is recorded as
    /// ended.
    async fn clear_lockout(
        &self,
        key: &str,
        lock: Option<Lockout>,
        client: &ClientInfo,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let key = key.to_string();
        let client = client.clone();
        let expired = lock.and_then(|l| l.locked_until).is_some();
        self.store
            .write_grouped(move |tx| {
                tx.remove_lockout(&key)?;
                if expired {
                    AuditEntry::new("unlock", Outcome::Success)
                        .actor("system", "lockout")
                        .target(key.clone())
                        .client(&client)
                        .detail("lock expired")
                        .append(tx, now)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Stores a hash made with the current parameters in place of a stale
    /// one, unless the password was changed meanwhile.
    async fn upgrade_hash(&self, account: Account, fresh: String) -> Result<Account, Error> {
        let now = self.clock.now();
        self.store
            .write_async(move |tx| {
                let Some(mut current) = tx.account(account.id)? else {
                    return Ok(account);
                };
                if current.password_hash != account.password_hash
                    || current.sessions_epoch != account.sessions_epoch
                {
                    // Changed while the login ran: keep the login's view,
                    // which opening the session compares with the account
                    // as it is then.
                    return Ok(account);
                }
                let previous = current.clone();
                current.password_hash = fresh;
                current.updated_at = now;
                accounts::put_checked(tx, &current, Some(&previous))?;
                Ok::<_, Error>(current)
            })
            .await
    }
}

/// Adds one failure for `key`; at `threshold`, locks it for `lock_for`
/// seconds and starts the count again.
fn count_failure(
    tx: &mut WriteTx,
    key: &str,
    threshold: u32,
    lock_for: u64,
    now: i64,
) -> Result<Failure, StoreError> {
    let mut state = tx.lockout(key)?.unwrap_or(Lockout {
        failures: 0,
        locked_until: None,
        updated_at: now,
    });
    // A lock that has run out starts a fresh count.
    if state.locked_until.is_some_and(|u| u <= now) {
        state.locked_until = None;
        state.failures = 0;
    }
    state.failures += 1;
    state.updated_at = now;
    let outcome = if state.failures >= threshold {
        state.failures = 0;
        state.locked_until = Some(now + i64::try_from(lock_for).unwrap_or(i64::MAX / 2));
        Failure::Locked
    } else {
        Failure::Counted
    };
    tx.put_lockout(key, &state)?;
    Ok(outcome)
}
