//! Getting an operator into the server: the first admin on an empty store,
//! the file that carries its generated password when no one watches the
//! terminal, and the recovery of a lost or locked-out admin.
//!
//! Both write one transaction each: the first admin with its audit entry
//! (and only while the store has no account, checked inside it), and the
//! recovered admin with its sessions ended, its locks cleared and its audit
//! entry.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::accounts::{
    Email, Username, find_for_login, index_keys, lockout_key_for_account,
    lockout_key_for_identifier, put_checked,
};
use super::password::Password;
use super::{AuditEntry, Core, Error, Outcome, secrets};
use crate::store::{Account, StoreError};

/// The file in the data directory that holds a generated first-admin
/// password when it is not printed.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// Length of generated passwords (base64url characters, 144 bits).
const GENERATED_PASSWORD_LEN: usize = 24;

/// Largest initial-password file read back; ours is a few hundred bytes.
const INITIAL_FILE_MAX_BYTES: u64 = 4096;

/// The first admin as asked for (`LATCHKEY_ADMIN_*`), before it is made.
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    /// Its username.
    pub username: String,
    /// Its email (the email-based documents sign in with it).
    pub email: String,
    /// A chosen password; `None` generates one.
    pub password: Option<String>,
    /// Write a generated password to [`INITIAL_PASSWORD_FILE`] instead of
    /// returning it for the terminal.
    pub to_file: bool,
}

/// How the first admin was made, for the operator to be told once.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The account's username, as stored.
    pub username: String,
    /// The account's email, as stored.
    pub email: String,
    /// The generated password when it is to be shown (not when it was
    /// chosen, nor when it went to a file).
    pub password: Option<String>,
    /// Where the generated password was written instead.
    pub file: Option<PathBuf>,
}

/// The outcome of a recovery, with the new password to show once.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The recovered account's username.
    pub username: String,
    /// Its email.
    pub email: String,
    /// The new generated password.
    pub password: String,
    /// Sessions that were live and are now ended.
    pub sessions_ended: usize,
}

impl Core {
    /// Makes the first admin when the store holds no account; `None` when
    /// it holds one already (this start is not the first). The password is
    /// hashed first, then the emptiness check, the account and its audit
    /// entry are one write transaction; a password going to a file is
    /// written before that commit and removed if it fails, so no admin
    /// exists whose password no one was given.
    pub async fn bootstrap_admin(&self, first: FirstAdmin) -> Result<Option<Bootstrapped>, Error> {
        if self.store.read()?.account_count()? > 0 {
            return Ok(None);
        }
        let username = Username::parse(&first.username)
            .map_err(|e| Error::invalid("username", format!("LATCHKEY_ADMIN_USERNAME: {e}")))?;
        let email = Email::parse(&first.email)
            .map_err(|e| Error::invalid("email", format!("LATCHKEY_ADMIN_EMAIL: {e}")))?;
        let (password, generated) = match first.password {
            Some(p) => (p, None),
            None => {
                let p = secrets::random_id(GENERATED_PASSWORD_LEN);
                (p.clone(), Some(p))
            }
        };
        let password = Password::new(&password)
            .map_err(|e| Error::invalid("password", format!("LATCHKEY_ADMIN_PASSWORD: {e}")))?;
        let hash = self.hash_password(password).await?;
        let now = self.clock.now();
        let mut account = Account {
            id: Uuid::new_v4(),
            number: 0,
            username: username.as_str().to_string(),
            email: email.as_str().to_string(),
            password_hash: hash,
            roles: vec!["admin".into()],
            reseller_id: None,
            merchant_id: None,
            attributes: Default::default(),
            disabled: false,
            sessions_epoch: 0,
            created_at: now,
            updated_at: now,
        };
        let file = match (&generated, first.to_file) {
            (Some(p), true) => Some(write_initial_password(&self.config.data_dir, &account, p)?),
            _ => None,
        };
        let entry = AuditEntry::new("account_created", Outcome::Success)
            .actor("system", "bootstrap")
            .target(account.id.to_string())
            .detail("first admin");
        let states = self.states.clone();
        let committed = self
            .store
            .write_async(move |tx| {
                if tx.account_count()? > 0 {
                    return Ok(None);
                }
                account.number = tx.next_account_number()?;
                put_checked(tx, &account, None)?;
                entry.append(tx, now)?;
                Ok::<_, Error>(Some(account))
            })
            .await;
        let account = match committed {
            Ok(Some(account)) => account,
            other => {
                if let Some(path) = &file {
                    let _ = std::fs::remove_file(path);
                }
                return other.map(|_| None);
            }
        };
        states.learn(&account);
        Ok(Some(Bootstrapped {
            username: account.username,
            email: account.email,
            password: if file.is_some() { None } else { generated },
            file,
        }))
    }

    /// Makes `identifier`'s account (a username or an email; without one,
    /// the oldest account holding `admin`) an enabled, unlocked admin with
    /// a new generated password, and ends all its sessions: in one write
    /// transaction with its audit entry. For the operator on the machine,
    /// never for a network caller.
    pub async fn recover_admin(&self, identifier: Option<&str>) -> Result<Recovered, Error> {
        let target = {
            let tx = self.store.read()?;
            match identifier {
                Some(id) => find_for_login(&tx, id)?,
                None => {
                    let mut first = None;
                    tx.scan_accounts(None, 0, |a| {
                        if a.roles.iter().any(|r| r == "admin") {
                            first = Some(a);
                            return false;
                        }
                        true
                    })?;
                    first
                }
            }
        };
        let target = target.ok_or_else(|| match identifier {
            Some(_) => Error::NotFound("account"),
            None => Error::invalid(
                "username",
                "no account holds the admin role: name the account to make admin",
            ),
        })?;
        let password = secrets::random_id(GENERATED_PASSWORD_LEN);
        let hash = self
            .hash_password(Password::new(&password).map_err(|e| Error::Internal(e.to_string()))?)
            .await?;
        let now = self.clock.now();
        let id = target.id;
        let revocations = self.revocations_handle();
        let states = self.states.clone();
        let recovered = self
            .store
            .write_async(move |tx| {
                let previous = tx.account(id)?.ok_or(Error::NotFound("account"))?;
                let mut next = previous.clone();
                next.password_hash = hash;
                next.disabled = false;
                if !next.roles.iter().any(|r| r == "admin") {
                    next.roles.insert(0, "admin".into());
                }
                // Every login in flight read the account as it was; none
                // may open a session after this.
                next.sessions_epoch = previous.sessions_epoch.wrapping_add(1);
                next.updated_at = now;
                put_checked(tx, &next, Some(&previous))?;
                let names = index_keys(&next);
                for key in [
                    lockout_key_for_account(id),
                    lockout_key_for_identifier(&names.username),
                    lockout_key_for_identifier(&names.email),
                ] {
                    if tx.lockout(&key)?.is_some() {
                        tx.remove_lockout(&key)?;
                    }
                }
                let ended = revocations.revoke_all_in(tx, id, "admin recovered", now)?;
                // Taking the account back, as a manager's password reset
                // does: an identity linked by whoever held it must not
                // sign in again by its provider id.
                let unlinked = AuditEntry::new("external_unlinked", Outcome::Success)
                    .actor("system", "recover-admin");
                super::users::drop_external_links(tx, &next, unlinked, "admin recovered", now)?;
                AuditEntry::new("admin_recovered", Outcome::Success)
                    .actor("system", "recover-admin")
                    .target(id.to_string())
                    .tenant_of(&next)
                    .detail(format!(
                        "enabled, unlocked, made admin, new password; {ended} sessions ended"
                    ))
                    .append(tx, now)?;
                Ok::<_, Error>((next, ended))
            })
            .await;
        let (account, sessions_ended) = recovered?;
        // What it gained (enabled, admin) is learnt after the commit, as
        // every grant is; the revocations above took effect before it.
        states.learn(&account);
        self.forget_changed_initial_password();
        Ok(Recovered {
            username: account.username,
            email: account.email,
            password,
            sessions_ended,
        })
    }

    /// Removes the initial-password file once the password it holds is no
    /// longer the account's (changed by any route, or the account gone).
    /// Called after every password change and by housekeeping.
    pub fn forget_changed_initial_password(&self) {
        let path = self.config.data_dir.join(INITIAL_PASSWORD_FILE);
        let Some((id, fingerprint)) = read_initial_marker(&path) else {
            return;
        };
        let current = match self.store.read().and_then(|tx| tx.account(id)) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "could not check the initial admin password file");
                return;
            }
        };
        let still = current.is_some_and(|a| hash_fingerprint(&a.password_hash) == fingerprint);
        if !still {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(
                    path = %path.display(),
                    "removed the initial admin password file: that password was changed"
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "could not remove the initial admin password file"
                ),
            }
        }
    }
}

/// A digest of a stored hash: tells a changed password apart without
/// keeping the hash itself in a second place.
fn hash_fingerprint(phc: &str) -> String {
    secrets::digest(phc.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the initial-password file (mode 0600, replaced atomically, so a
/// stale one from a failed start is overwritten whole).
fn write_initial_password(dir: &Path, account: &Account, password: &str) -> Result<PathBuf, Error> {
    let path = dir.join(INITIAL_PASSWORD_FILE);
    let partial = dir.join(format!("{INITIAL_PASSWORD_FILE}.partial"));
    let text = format!(
        "# The first latchkey admin account. This file is deleted when its password is changed.\n\
         username: {}\nemail: {}\npassword: {password}\n\
         # Used by latchkey to notice the change; not secret.\n\
         account: {}\nfingerprint: {}\n",
        account.username,
        account.email,
        account.id,
        hash_fingerprint(&account.password_hash),
    );
    let io = |e: std::io::Error| {
        Error::Store(StoreError::DataDir {
            path: path.clone(),
            source: e,
        })
    };
    let _ = std::fs::remove_file(&partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&partial).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&partial, &path).map_err(io)?;
    Ok(path)
}

/// The account id and hash fingerprint an initial-password file names.
fn read_initial_marker(path: &Path) -> Option<(Uuid, String)> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(INITIAL_FILE_MAX_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let id = field("account:")?.parse().ok()?;
    Some((id, field("fingerprint:")?))
}
