//! Password login, shared by every document's login route.
//!
//! Every path through [`Core::password_login`] that reaches the hashing pool
//! costs exactly one argon2id verification: an unknown identifier is checked
//! against a decoy hash, so the answer takes the same time whether or not
//! the account exists, and the same [`Error::InvalidCredentials`] comes back
//! for both.

use super::password::Password;
use super::{AuditEntry, ClientInfo, Core, Error, Outcome, accounts};
use crate::store::Account;

impl Core {
    /// Checks an identifier (username or email) and password. On success the
    /// account is returned, its hash upgraded if the parameters changed.
    pub async fn password_login(
        &self,
        identifier: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Account, Error> {
        let Some(password) = Password::for_login(password) else {
            // Longer than any password can be: refused before any hash.
            self.audit_login_failure(identifier, client, "password too long")
                .await?;
            return Err(Error::InvalidCredentials);
        };
        let account = accounts::find_for_login(&self.store.read()?, identifier)?;
        let verified = self
            .hasher
            .verify(password, account.as_ref().map(|a| a.password_hash.clone()))
            .await
            .map_err(|_| Error::Busy { retry_after: 1 })?;
        let mut account = match account {
            Some(a) if verified.ok => a,
            _ => {
                self.audit_login_failure(identifier, client, "invalid credentials")
                    .await?;
                return Err(Error::InvalidCredentials);
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
        Ok(account)
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
                if current.password_hash != account.password_hash {
                    return Ok(current);
                }
                let previous = current.clone();
                current.password_hash = fresh;
                current.updated_at = now;
                accounts::put_checked(tx, &current, Some(&previous))?;
                Ok::<_, Error>(current)
            })
            .await
    }

    async fn audit_login_failure(
        &self,
        identifier: &str,
        client: &ClientInfo,
        why: &str,
    ) -> Result<(), Error> {
        // The identifier is what the client typed, truncated: useful to an
        // operator, and never a secret.
        let shown: String = identifier.chars().take(64).collect();
        self.audit(
            AuditEntry::new("login", Outcome::Failure)
                .actor("anonymous", shown)
                .client(client)
                .detail(why),
        )
        .await
    }
}
