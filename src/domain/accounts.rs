//! Accounts: the rules for usernames and emails, creation, and lookup.

use std::collections::BTreeMap;

use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::password::Password;
use super::{AuditEntry, Core, Error};
/// The account record as adapters may see it (they shape it, never
/// write it).
pub use crate::store::Account;
use crate::store::{IndexKeys, ReadTx, StoreError, WriteTx};

/// The built-in roles, whose scope rules the domain knows.
pub const BUILTIN_ROLES: [&str; 4] = ["admin", "reseller", "merchant", "user"];

/// Longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;
/// Longest email, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest username, email or login identifier accepted as input, in bytes,
/// checked before anything else (trimming, NFKC): no valid username (64
/// characters of at most 4 bytes) or email (254 bytes) comes near it, and
/// it keeps a character that NFKC expands 18-fold from growing anything
/// past a few kilobytes.
pub const MAX_IDENTIFIER_BYTES: usize = 320;

/// The refusal of over-long input, before any other work.
fn too_long(field: &'static str) -> Error {
    Error::invalid(
        field,
        format!("{field} must be at most {MAX_IDENTIFIER_BYTES} bytes"),
    )
}

/// A login identifier (username or email) as submitted, bounded in length
/// before it is normalised. Every document's login route parses its
/// identifier with [`LoginId::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginId {
    /// The identifier as submitted (at most [`MAX_IDENTIFIER_BYTES`]).
    raw: String,
    /// Its lookup form ([`identifier_key`]).
    key: String,
}

impl LoginId {
    /// Refuses input over [`MAX_IDENTIFIER_BYTES`] as a validation error
    /// naming the request's `field` (it says nothing about any account);
    /// anything shorter is an identifier, which may or may not name one.
    pub fn parse(raw: &str, field: &'static str) -> Result<LoginId, Error> {
        if raw.len() > MAX_IDENTIFIER_BYTES {
            return Err(too_long(field));
        }
        // No username or email may hold a control character, so such an
        // identifier names no account: it is refused before the password
        // check rather than spending a hash, an audit entry and a lockout
        // record on it. Saying so reveals nothing about any account.
        if raw.trim().chars().any(char::is_control) {
            return Err(Error::invalid(
                field,
                format!("{field} must not contain control characters"),
            ));
        }
        Ok(LoginId {
            raw: raw.to_string(),
            key: identifier_key(raw),
        })
    }

    /// The identifier as submitted.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Its lookup form: what the per-identifier rate limit is keyed by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lockout key of this identifier when it names no account.
    pub fn lockout_key(&self) -> String {
        lockout_key_for_identifier(&self.key)
    }
}

/// The lockout record of an account: every identifier, spelling and
/// document that names the account counts against this one key. A SHA-256
/// digest in hex, so its size is fixed.
pub fn lockout_key_for_account(id: Uuid) -> String {
    hex_digest(&format!("account:{id}"))
}

/// The lockout record of an identifier that names no account, by its
/// lookup form: a lock on it says nothing about existence. A SHA-256
/// digest in hex, so its size is fixed.
pub fn lockout_key_for_identifier(lookup: &str) -> String {
    hex_digest(&format!("identifier:{lookup}"))
}

/// SHA-256 of `text` in lowercase hex (64 characters).
fn hex_digest(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64);
    for byte in super::secrets::digest(text.as_bytes()) {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A valid username in display form (NFKC-normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Letters, digits and `. _ - +`, 1 to 64 characters. No `@`, so a login
    /// identifier is unambiguously a username or an email.
    pub fn parse(raw: &str) -> Result<Username, Error> {
        if raw.len() > MAX_IDENTIFIER_BYTES {
            return Err(too_long("username"));
        }
        let s: String = raw.trim().nfkc().collect();
        let count = s.chars().count();
        if count == 0 || count > MAX_USERNAME_CHARS {
            return Err(Error::invalid(
                "username",
                format!("username must be 1 to {MAX_USERNAME_CHARS} characters"),
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
        {
            return Err(Error::invalid(
                "username",
                "username may contain only letters, digits and . _ - +",
            ));
        }
        if looks_like_another(&s) {
            return Err(Error::invalid(
                "username",
                "username must not mix scripts or imitate Latin letters with look-alikes",
            ));
        }
        Ok(Username(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and lookup use.
    pub fn key(&self) -> String {
        username_key(&self.0)
    }
}

/// Whether a username (NFKC already) could pass for another account's
/// name: its letters come from more than one script (Cyrillic `а` among
/// Latin letters), or it is not ASCII yet its UTS #39 skeleton is (every
/// letter a look-alike of a Latin one: Cyrillic `аlісе`). NFKC has already
/// made compatibility forms (fullwidth letters, ligatures, decomposed
/// accents) the names they stand for, which the unique lookup key then
/// holds; this refuses at creation what NFKC cannot fold, so no second
/// account looks like an existing one. A name in one script that looks
/// like no Latin name (`иван`, `müller`) is not touched.
fn looks_like_another(name: &str) -> bool {
    use unicode_security::MixedScript;
    !name.is_ascii()
        && (!name.is_single_script() || unicode_security::skeleton(name).all(|c| c.is_ascii()))
}

/// A plausible email address, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl From<Email> for LoginId {
    /// An address already parsed is an identifier within the bound; it
    /// names the same account, and counts against the same lock, as the
    /// text it was parsed from.
    fn from(email: Email) -> LoginId {
        LoginId {
            key: identifier_key(&email.0),
            raw: email.0,
        }
    }
}

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Error> {
        if raw.len() > MAX_IDENTIFIER_BYTES {
            return Err(too_long("email"));
        }
        let s = raw.trim();
        let bad = || Error::invalid("email", "email must be a valid address");
        if s.len() < 3 || s.len() > MAX_EMAIL_BYTES {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.is_empty()
            || domain.starts_with('.')
            || domain.ends_with('.')
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
            || domain.contains('@')
        {
            return Err(bad());
        }
        Ok(Email(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        email_key(&self.0)
    }
}

/// Lookup form of a username: NFKC, trimmed, then lowercase. Trimmed
/// after NFKC, since NFKC can make a space (`´` is a space and a combining
/// accent), so that the key of a key is itself. No stored username has a
/// space, so no stored key changes.
pub fn username_key(raw: &str) -> String {
    raw.nfkc().collect::<String>().trim().to_lowercase()
}

/// Lookup form of a login identifier: an email's if it has `@`, else a
/// username's. Rate limits and lockout counters are keyed by it.
pub fn identifier_key(raw: &str) -> String {
    if raw.contains('@') {
        email_key(raw)
    } else {
        username_key(raw)
    }
}

/// Lookup form of an email: trimmed, lowercase.
pub fn email_key(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// What a new account is made of; validated by [`Core::create_account`].
#[derive(Debug)]
pub struct NewAccount {
    pub username: Username,
    pub email: Email,
    pub password: Password,
    pub roles: Vec<String>,
    pub reseller_id: Option<String>,
    pub merchant_id: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

/// Finds the account a login identifier names: an identifier with `@` is an
/// email, anything else a username.
pub fn find_for_login(tx: &ReadTx, identifier: &str) -> Result<Option<Account>, StoreError> {
    if identifier.contains('@') {
        tx.account_by_email(&email_key(identifier))
    } else {
        tx.account_by_username(&username_key(identifier))
    }
}

/// The lookup forms of an account's username and email.
pub fn index_keys(account: &Account) -> IndexKeys {
    IndexKeys {
        username: username_key(&account.username),
        email: email_key(&account.email),
    }
}

/// Writes an account inside `tx`, refusing a username or email another
/// account holds. `previous` is the stored version when updating.
pub fn put_checked(
    tx: &mut WriteTx,
    account: &Account,
    previous: Option<&Account>,
) -> Result<(), Error> {
    let keys = index_keys(account);
    if let Some(other) = tx.account_by_username(&keys.username)?
        && other.id != account.id
    {
        return Err(Error::Conflict("username is already taken".into()));
    }
    if let Some(other) = tx.account_by_email(&keys.email)?
        && other.id != account.id
    {
        return Err(Error::Conflict("email is already in use".into()));
    }
    let old_keys = previous.map(index_keys);
    tx.put_account(account, &keys, previous.zip(old_keys.as_ref()))?;
    Ok(())
}

impl Core {
    /// Creates an account: hashes its password on the pool, then writes it
    /// with its audit entry in one transaction.
    pub async fn create_account(
        &self,
        new: NewAccount,
        audit: AuditEntry,
    ) -> Result<Account, Error> {
        if new.roles.is_empty() {
            return Err(Error::invalid(
                "roles",
                "an account needs at least one role",
            ));
        }
        let hash = self.hash_password(new.password).await?;
        let now = self.clock.now();
        let mut account = Account {
            id: Uuid::new_v4(),
            number: 0,
            username: new.username.as_str().to_string(),
            email: new.email.as_str().to_string(),
            password_hash: hash,
            roles: new.roles,
            reseller_id: new.reseller_id,
            merchant_id: new.merchant_id,
            attributes: new.attributes,
            disabled: false,
            sessions_epoch: 0,
            created_at: now,
            updated_at: now,
        };
        let entry = audit.target(account.id.to_string()).tenant_of(&account);
        self.store
            .write_async(move |tx| {
                account.number = tx.next_account_number()?;
                put_checked(tx, &account, None)?;
                entry.append(tx, now)?;
                Ok::<_, Error>(account)
            })
            .await
    }

    /// Hashes a new password on the bounded pool.
    pub async fn hash_password(&self, password: Password) -> Result<String, Error> {
        self.hasher
            .hash(password)
            .await
            .map_err(|_| Error::Busy { retry_after: 1 })?
            .map_err(Error::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("jane.doe").is_ok());
        assert!(Username::parse("your_api_username").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("a@b").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        // Refused on its raw length, before NFKC could expand it.
        let expanding = "\u{FDFA}".repeat(MAX_IDENTIFIER_BYTES / 3 + 1);
        assert!(matches!(
            Username::parse(&expanding),
            Err(Error::Invalid {
                field: "username",
                ..
            })
        ));
        assert!(LoginId::parse(&expanding, "email").is_err());
        assert_eq!(
            LoginId::parse(" ＬＯＣＫ ", "username").unwrap().key(),
            "lock"
        );
        assert_eq!(lockout_key_for_identifier(&"x".repeat(300)).len(), 64);
        assert_eq!(username_key("Jane.Doe"), "jane.doe");
        // Full-width letters normalise to ASCII under NFKC.
        assert_eq!(username_key("ＡＤＭＩＮ"), "admin");
    }

    #[test]
    fn look_alike_usernames() {
        for name in [
            "\u{430}lice",
            "\u{430}l\u{456}\u{441}\u{435}",
            "b\u{3bf}b",
            "p\u{430}ypal",
        ] {
            assert!(Username::parse(name).is_err(), "{name}");
        }
        for name in [
            "alice",
            "иван",
            "ζωή",
            "müller",
            "josé",
            "jose\u{301}",
            "李小龙",
            "ａｌｉｃｅ",
        ] {
            assert!(Username::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("  Jane@Example.com ").unwrap().as_str(),
            "Jane@Example.com"
        );
        assert_eq!(email_key("  Jane@Example.com "), "jane@example.com");
        for bad in ["", "plain", "@x.com", "a@", "a b@x.com", "a@.x", "a@x."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
