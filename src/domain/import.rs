//! Importing accounts whose passwords are already hashed: people moving
//! from another system bring argon2id or bcrypt hashes, and seeding a large
//! store costs no argon2 work at all. A bcrypt hash is replaced by argon2id
//! with the current parameters at the account's first successful sign-in
//! (the stale-hash path of [`super::login`]).
//!
//! All or nothing: every line is checked first (its form, its identifiers,
//! its roles and tenants, its hash) against the file and the store, every
//! bad line is reported by number, and only a file with none is written,
//! in one write transaction with one `accounts_imported` audit entry.

use std::collections::HashMap;

use serde::Deserialize;
use uuid::Uuid;

use super::accounts::{Email, Username, put_checked};
use super::password::check_imported_hash;
use super::rbac::Scope;
use super::tenants::parse_tenant_id;
use super::users::place;
use super::{AuditEntry, Core, Error, Outcome};
use crate::store::{Account, Lookup};

/// Largest import file, in bytes (room for well over
/// [`MAX_IMPORT_ACCOUNTS`] ordinary lines).
pub const MAX_IMPORT_FILE_BYTES: u64 = 128 * 1024 * 1024;
/// Longest line, in bytes: an account with the longest username, email,
/// tenant ids and a few roles fits with room to spare.
pub const MAX_IMPORT_LINE_BYTES: usize = 4096;
/// Most accounts one import may hold; they are written in one transaction.
pub const MAX_IMPORT_ACCOUNTS: usize = 250_000;
/// Most bad lines described; the rest are only counted.
pub const MAX_REPORTED_LINES: usize = 50;
/// Most roles one line may list.
pub const MAX_IMPORT_ROLES: usize = 16;

/// One line of an import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    /// The account's username.
    username: String,
    /// The account's email.
    email: String,
    /// Its roles; `["user"]` when absent.
    #[serde(default)]
    roles: Option<Vec<String>>,
    /// Its reseller, for reseller and merchant accounts.
    #[serde(default)]
    reseller_id: Option<String>,
    /// Its merchant, for merchant accounts.
    #[serde(default)]
    merchant_id: Option<String>,
    /// Whether it starts disabled.
    #[serde(default)]
    disabled: bool,
    /// An argon2id PHC string or a bcrypt hash.
    password_hash: String,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole is unusable (too large, too many lines).
    #[error("{0}")]
    File(String),
    /// Some lines are bad; none was written.
    #[error("{}", describe(.problems, *.more))]
    Lines {
        /// Line number (from 1) and what is wrong, for the first
        /// [`MAX_REPORTED_LINES`] bad lines.
        problems: Vec<(usize, String)>,
        /// Bad lines beyond those described.
        more: usize,
    },
    /// The store refused or failed.
    #[error("{0}")]
    Core(#[from] Error),
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> Self {
        ImportError::Core(e.into())
    }
}

fn describe(problems: &[(usize, String)], more: usize) -> String {
    let mut text = format!(
        "nothing was imported: {} bad line(s)",
        problems.len() + more
    );
    for (line, why) in problems {
        text.push_str(&format!("\n  line {line}: {why}"));
    }
    if more > 0 {
        text.push_str(&format!("\n  ... and {more} more"));
    }
    text
}

/// Collects bad lines, describing only the first few.
struct Problems {
    /// The described ones.
    listed: Vec<(usize, String)>,
    /// How many more there were.
    more: usize,
}

impl Problems {
    fn add(&mut self, line: usize, why: impl Into<String>) {
        if self.listed.len() < MAX_REPORTED_LINES {
            self.listed.push((line, why.into()));
        } else {
            self.more += 1;
        }
    }
}

impl Core {
    /// Imports the accounts of a JSON Lines file (its bytes, already read
    /// within [`MAX_IMPORT_FILE_BYTES`]); answers how many were written.
    pub async fn import_accounts(&self, file: &[u8]) -> Result<usize, ImportError> {
        if file.len() as u64 > MAX_IMPORT_FILE_BYTES {
            return Err(ImportError::File(format!(
                "the file is larger than {MAX_IMPORT_FILE_BYTES} bytes"
            )));
        }
        let mut problems = Problems {
            listed: Vec::new(),
            more: 0,
        };
        let mut accounts: Vec<Account> = Vec::new();
        let mut usernames: HashMap<String, usize> = HashMap::new();
        let mut emails: HashMap<String, usize> = HashMap::new();
        let own = self.hasher.params();
        let now = self.clock.now();
        {
            let tx = self.store.read()?;
            let custom = tx.custom_roles()?;
            for (index, raw) in file.split(|b| *b == b'\n').enumerate() {
                let number = index + 1;
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                if raw.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if accounts.len() + problems.listed.len() + problems.more >= MAX_IMPORT_ACCOUNTS {
                    return Err(ImportError::File(format!(
                        "the file holds more than {MAX_IMPORT_ACCOUNTS} accounts"
                    )));
                }
                if raw.len() > MAX_IMPORT_LINE_BYTES {
                    problems.add(number, format!("longer than {MAX_IMPORT_LINE_BYTES} bytes"));
                    continue;
                }
                match check_line(&tx, &custom, raw, own) {
                    Err(why) => problems.add(number, why),
                    Ok(line) => {
                        let username_key = line.username.key();
                        let email_key = line.email.key();
                        if let Some(first) = usernames.insert(username_key.clone(), number) {
                            problems
                                .add(number, format!("username is the same as on line {first}"));
                            continue;
                        }
                        if let Some(first) = emails.insert(email_key.clone(), number) {
                            problems.add(number, format!("email is the same as on line {first}"));
                            continue;
                        }
                        if tx.account_by_username(&username_key)?.is_some() {
                            problems.add(number, "username is already taken");
                            continue;
                        }
                        if tx.account_by_email(&email_key)?.is_some() {
                            problems.add(number, "email is already in use");
                            continue;
                        }
                        accounts.push(Account {
                            id: Uuid::new_v4(),
                            number: 0,
                            username: line.username.as_str().to_string(),
                            email: line.email.as_str().to_string(),
                            password_hash: line.hash,
                            roles: line.roles,
                            reseller_id: line.reseller_id,
                            merchant_id: line.merchant_id,
                            attributes: Default::default(),
                            disabled: line.disabled,
                            sessions_epoch: 0,
                            created_at: now,
                            updated_at: now,
                        });
                    }
                }
            }
        }
        if !problems.listed.is_empty() {
            return Err(ImportError::Lines {
                problems: problems.listed,
                more: problems.more,
            });
        }
        let count = accounts.len();
        let entry = AuditEntry::new("accounts_imported", Outcome::Success)
            .actor("system", "import")
            .detail(format!("{count} accounts"));
        self.store
            .write_async(move |tx| {
                for mut account in accounts {
                    // Placement and uniqueness again, where they count.
                    place(
                        tx,
                        &Scope::All,
                        &account.roles,
                        account.reseller_id.clone(),
                        account.merchant_id.clone(),
                    )?;
                    account.number = tx.next_account_number()?;
                    put_checked(tx, &account, None)?;
                }
                entry.append(tx, now)?;
                Ok::<_, Error>(())
            })
            .await?;
        Ok(count)
    }
}

/// A line that passed every check that needs no other line.
struct Checked {
    /// Its username.
    username: Username,
    /// Its email.
    email: Email,
    /// Its roles, in their stored spelling.
    roles: Vec<String>,
    /// Its reseller, as placement settled it.
    reseller_id: Option<String>,
    /// Its merchant.
    merchant_id: Option<String>,
    /// Whether it starts disabled.
    disabled: bool,
    /// Its checked hash.
    hash: String,
}

/// Checks one line on its own: its form, identifiers, roles, tenants and
/// hash. The answer says what is wrong, never the hash.
fn check_line(
    tx: &impl Lookup,
    custom: &[crate::store::CustomRole],
    raw: &[u8],
    own: super::password::HashParams,
) -> Result<Checked, String> {
    let line: Line = serde_json::from_slice(raw).map_err(|e| {
        // serde's message names the field or position, never the values.
        format!("not an account object: {e}")
    })?;
    let username = Username::parse(&line.username).map_err(|e| format!("username: {e}"))?;
    let email = Email::parse(&line.email).map_err(|e| format!("email: {e}"))?;
    let asked = line.roles.unwrap_or_else(|| vec!["user".to_string()]);
    if asked.len() > MAX_IMPORT_ROLES {
        return Err(format!("more than {MAX_IMPORT_ROLES} roles"));
    }
    let roles: Vec<String> = asked
        .iter()
        .map(|a| super::tenants::resolve_role(custom, a).unwrap_or_else(|| a.clone()))
        .collect();
    let reseller_id = line
        .reseller_id
        .as_deref()
        .map(|r| parse_tenant_id("reseller_id", r))
        .transpose()
        .map_err(|e| format!("reseller_id: {e}"))?;
    let merchant_id = line
        .merchant_id
        .as_deref()
        .map(|m| parse_tenant_id("merchant_id", m))
        .transpose()
        .map_err(|e| format!("merchant_id: {e}"))?;
    let (reseller_id, merchant_id) = place(tx, &Scope::All, &roles, reseller_id, merchant_id)
        .map_err(|e| match e {
            Error::Invalid { field, message } => format!("{field}: {message}"),
            other => other.to_string(),
        })?;
    check_imported_hash(&line.password_hash, own)?;
    Ok(Checked {
        username,
        email,
        roles,
        reseller_id,
        merchant_id,
        disabled: line.disabled,
        hash: line.password_hash,
    })
}
