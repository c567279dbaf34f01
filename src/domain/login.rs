//! Password login, shared by every document's login route, and every other
//! password check (the current password when changing one's own).
//!
//! The order of work is what makes it safe:
//!
//! 1. the identifier's length bound ([`LoginId::parse`], in the adapter):
//!    an over-long one is a validation error before any other work;
//! 2. a place in the hashing pool: an attempt refused as busy (503) is
//!    charged to no rate limit and no failure count; sign-ins have a share
//!    of the pool other password checks cannot take;
//! 3. the rate limiters (by address, then by identifier in lookup form,
//!    keyed by its digest): a refused attempt costs no hash and writes
//!    nothing;
//! 4. exactly one argon2id verification on the bounded pool, whatever the
//!    case: against the account's hash, or a decoy hash when there is no
//!    account, and also when it is locked or disabled;
//! 5. the outcome. Every refusal (unknown, wrong password, disabled,
//!    locked) does the same work: one write transaction that reads and
//!    writes the failure record and appends one audit entry. A locked
//!    account is refused even with the right password; a failure counts
//!    toward the lock; a success clears it.
//!
//! Failures against an existing account count against the account, keyed
//! by the digest of its id, whichever identifier, spelling or document was
//! used, and its lock refuses it everywhere. Failures for an identifier
//! that names no account count per identifier in lookup form (by digest),
//! so an unknown identifier locks just like an account does.
//!
//! Every password check leaves exactly one audit entry: a refusal its
//! failure entry; a sign-in the `login` entry written with its session; a
//! check that opens no session (`/api/account/roles`) a `login` entry of
//! its own; a current-password check that succeeds the `password_changed`
//! entry that follows it. Each entry names the document in `detail`.

use uuid::Uuid;

use super::accounts::LoginId;
use super::observe::CheckOutcome;
use super::password::{Lane, Password};
use super::sessions::Issued;
use super::{AuditEntry, ClientInfo, Core, Document, Error, Outcome, accounts};
use crate::store::{Account, Lockout, StoreError, WriteTx};

/// What a failed attempt changed.
enum Failure {
    /// Counted; not locked (yet).
    Counted,
    /// This failure locked the key.
    Locked,
    /// The key was already locked; nothing changed.
    AlreadyLocked,
}

/// Whose password is being checked.
enum Whom<'a> {
    /// Whoever a login identifier names, if anyone.
    Identifier(&'a LoginId),
    /// A known account, checking its current password.
    Account(Uuid),
}

/// Where and why a password is checked, for the audit entries.
struct Check {
    /// The audit event: `login` or `password_check`.
    event: &'static str,
    /// The document (or operation) that asked, named in `detail`.
    via: &'static str,
    /// The share of the hashing pool it may use.
    lane: Lane,
}

/// The record of one refused attempt, made before the answer goes out.
struct Refusal {
    /// The failure record's key.
    key: String,
    /// What the audit entry shows as the name tried.
    shown: String,
    /// The account named, if any.
    account: Option<Account>,
    /// Where the attempt came from.
    client: ClientInfo,
    /// The audit event.
    event: &'static str,
    /// The audit detail.
    detail: String,
    /// Whether the actor is the account itself (a current-password check)
    /// rather than an anonymous client.
    by_account: bool,
}

impl Core {
    /// A whole sign-in: the password check, then a session of the kind
    /// the document (`via`) issues, with a `login` audit entry naming it.
    pub async fn sign_in(
        self: &std::sync::Arc<Self>,
        identifier: &LoginId,
        password: &str,
        client: &ClientInfo,
        via: Document,
    ) -> Result<(Account, Issued), Error> {
        let account = self
            .check_login_password(identifier, password, client, via)
            .await?;
        let issued = self
            .open_session(
                &account,
                via.session(),
                client,
                AuditEntry::new("login", Outcome::Success)
                    .actor_account(&account)
                    .client(client)
                    .detail(via.as_str()),
            )
            .await?;
        // The account as the session saw it, which may have changed while
        // the password was checked.
        Ok((issued.account.clone(), issued))
    }

    /// Checks an identifier (username or email) and password without
    /// opening a session. On success the account is returned, its hash
    /// upgraded if the parameters changed, and a `login` entry naming the
    /// document (`via`) is appended, since no session entry records it.
    pub async fn password_login(
        &self,
        identifier: &LoginId,
        password: &str,
        client: &ClientInfo,
        via: Document,
    ) -> Result<Account, Error> {
        let account = self
            .check_login_password(identifier, password, client, via)
            .await?;
        self.audit(
            AuditEntry::new("login", Outcome::Success)
                .actor_account(&account)
                .tenant_of(&account)
                .target(account.id.to_string())
                .client(client)
                .detail(via.as_str()),
        )
        .await?;
        Ok(account)
    }

    /// The password check of a sign-in: a `login` attempt through the
    /// document `via`, in the pool's share for sign-ins.
    pub(super) async fn check_login_password(
        &self,
        identifier: &LoginId,
        password: &str,
        client: &ClientInfo,
        via: Document,
    ) -> Result<Account, Error> {
        self.check_password(
            Whom::Identifier(identifier),
            password,
            client,
            Check {
                event: "login",
                via: via.as_str(),
                lane: Lane::SignIn,
            },
        )
        .await
    }

    /// Checks the current password of `account` (changing one's own
    /// password) with the same limits, lockout and audit as a sign-in, in
    /// the pool's share for other work. A wrong one is
    /// [`Error::InvalidCredentials`]; success writes nothing of its own
    /// (the change that follows is audited).
    pub(crate) async fn check_current_password(
        &self,
        account: Uuid,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Account, Error> {
        self.check_password(
            Whom::Account(account),
            password,
            client,
            Check {
                event: "password_check",
                via: "current password",
                lane: Lane::Other,
            },
        )
        .await
    }

    /// The one password check; see the module comment for its order. Its
    /// outcome is reported to the observer (the metrics) here, once.
    async fn check_password(
        &self,
        whom: Whom<'_>,
        password: &str,
        client: &ClientInfo,
        check: Check,
    ) -> Result<Account, Error> {
        let (event, via) = (check.event, check.via);
        let result = self
            .check_password_once(whom, password, client, check)
            .await;
        self.observe
            .observer()
            .password_checked(event, via, CheckOutcome::of(&result));
        result
    }

    async fn check_password_once(
        &self,
        whom: Whom<'_>,
        password: &str,
        client: &ClientInfo,
        check: Check,
    ) -> Result<Account, Error> {
        let password = Password::for_login(password);
        // A place in the pool first: an attempt refused as busy is charged
        // to no one's allowance. A password longer than any password can be
        // needs no place: it is refused without a hash.
        let slot = match password {
            Some(_) => Some(
                self.hasher
                    .admit(check.lane)
                    .map_err(|_| Error::Busy { retry_after: 1 })?,
            ),
            None => None,
        };
        // The per-identifier limiter stays keyed by what was typed (it runs
        // before the account is looked up, so a refusal costs nothing);
        // the lockout below follows the account.
        let limit_key = match &whom {
            Whom::Identifier(id) => id.key().to_string(),
            Whom::Account(id) => format!("account:{id}"),
        };
        self.limits.check(client.ip, Some(&limit_key))?;
        let now = self.clock.now();
        // One snapshot for the account and its failure record.
        let (account, key, lock) = {
            let tx = self.store.read()?;
            let account = match &whom {
                Whom::Identifier(id) => accounts::find_for_login(&tx, id.raw())?,
                Whom::Account(id) => tx.account(*id)?,
            };
            let key = match (&account, &whom) {
                (Some(a), _) => accounts::lockout_key_for_account(a.id),
                (None, Whom::Identifier(id)) => id.lockout_key(),
                (None, Whom::Account(id)) => accounts::lockout_key_for_account(*id),
            };
            let lock = tx.lockout(&key)?;
            (account, key, lock)
        };
        let locked_until = lock
            .as_ref()
            .and_then(|l| l.locked_until)
            .filter(|&until| until > now);
        let shown = match (&whom, &account) {
            (Whom::Identifier(id), _) => id.raw().to_string(),
            (Whom::Account(_), Some(a)) => a.username.clone(),
            (Whom::Account(id), None) => id.to_string(),
        };
        let refusal = |why: &str, account: Option<Account>| Refusal {
            key: key.clone(),
            shown: shown.clone(),
            account,
            client: client.clone(),
            event: check.event,
            detail: format!("{why} ({})", check.via),
            by_account: matches!(whom, Whom::Account(_)),
        };

        let locked = locked_until.map(|until| Error::Locked {
            retry_after: u64::try_from(until - now).unwrap_or(1).max(1),
        });
        let (Some(password), Some(slot)) = (password, slot) else {
            // Longer than any password can be: refused before any hash.
            let answer = locked.unwrap_or(Error::InvalidCredentials);
            return Err(self
                .refuse(refusal("password too long", account), answer)
                .await);
        };
        let verified = self
            .hasher
            .verify(
                slot,
                password,
                account.as_ref().map(|a| a.password_hash.clone()),
            )
            .await
            .map_err(|_| Error::Busy { retry_after: 1 })?;
        if let Some(answer) = locked {
            return Err(self.refuse(refusal("locked", account), answer).await);
        }
        let mut account = match account {
            Some(a) if verified.ok => a,
            other => {
                return Err(self
                    .refuse(
                        refusal("invalid credentials", other),
                        Error::InvalidCredentials,
                    )
                    .await);
            }
        };
        if account.disabled {
            return Err(self
                .refuse(refusal("account disabled", Some(account)), Error::Disabled)
                .await);
        }
        if let Some(fresh) = verified.rehashed {
            account = self.upgrade_hash(account, fresh).await?;
        }
        if lock.is_some() {
            self.clear_lockout(&key, &account, lock, client).await?;
        }
        Ok(account)
    }

    /// Records a refused attempt, durably, before `answer` goes out. Every
    /// case does the same work: one write transaction that reads the
    /// failure record, writes it back (counted, or unchanged while a lock
    /// runs, which an attempt does not extend) and appends one audit entry
    /// (and a `lockout` entry when this failure locks).
    async fn refuse(&self, refusal: Refusal, answer: Error) -> Error {
        let now = self.clock.now();
        let threshold = self.lockout.threshold();
        let lock_for = self.lockout.seconds();
        let written = self
            .store
            .write_grouped(move |tx| {
                let Refusal {
                    key,
                    shown,
                    account,
                    client,
                    event,
                    detail,
                    by_account,
                } = refusal;
                let failure = count_failure(tx, &key, threshold, lock_for, now)?;
                let mut entry = AuditEntry::new(event, Outcome::Failure)
                    .client(&client)
                    .detail(detail);
                entry = match (&account, by_account) {
                    (Some(a), true) => entry.actor_account(a),
                    _ => entry.actor("anonymous", shown.clone()),
                };
                if let Some(a) = &account {
                    entry = entry.target(a.id.to_string()).tenant_of(a);
                }
                entry.append(tx, now)?;
                if let Failure::Locked = failure {
                    let shown: String = shown.chars().take(64).collect();
                    let mut lockout = AuditEntry::new("lockout", Outcome::Success)
                        .actor("system", "lockout")
                        .client(&client)
                        .detail(format!(
                            "{threshold} consecutive failed passwords for {shown}; locked for {lock_for} s"
                        ));
                    if let Some(a) = &account {
                        lockout = lockout.target(a.id.to_string()).tenant_of(a);
                    }
                    lockout.append(tx, now)?;
                }
                Ok(())
            })
            .await;
        match written {
            Ok(()) => answer,
            Err(e) => e.into(),
        }
    }

    /// A success clears the count, and an expired lock is recorded as
    /// ended.
    async fn clear_lockout(
        &self,
        key: &str,
        account: &Account,
        lock: Option<Lockout>,
        client: &ClientInfo,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let key = key.to_string();
        let target = account.id.to_string();
        let (reseller, merchant) = (account.reseller_id.clone(), account.merchant_id.clone());
        let client = client.clone();
        let expired = lock.and_then(|l| l.locked_until).is_some();
        self.store
            .write_grouped(move |tx| {
                tx.remove_lockout(&key)?;
                if expired {
                    AuditEntry::new("unlock", Outcome::Success)
                        .actor("system", "lockout")
                        .target(target.clone())
                        .tenant(reseller.clone(), merchant.clone())
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
/// seconds and starts the count again. While a lock runs the record is
/// written back unchanged, so every refusal writes the same.
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
    if state.locked_until.is_some_and(|u| u > now) {
        tx.put_lockout(key, &state)?;
        return Ok(Failure::AlreadyLocked);
    }
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
