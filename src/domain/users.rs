//! Managing accounts through the admin API: create, list, read, change,
//! disable, delete, set passwords, see and end sessions. Every operation
//! checks the caller's scope first; an account outside it is "not found".
//! Every change checks again inside its write transaction, both the
//! caller's credential (`auth::actor_still_valid`) and the account's place, so
//! a request that waited (for a hash, for the writer) does not land on an
//! account that left the caller's reach meanwhile.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::accounts::{Email, Username, email_key, put_checked};
use super::audit::AuditEntry;
use super::auth::{Principal, actor_still_valid};
use super::password::Password;
use super::rbac::{Scope, is_builtin, level};
use super::{Core, Error, Outcome, Page, PageRequest};
use crate::store::{Account, Lookup, Session, WriteTx};

/// A new account, as the admin API receives it.
#[derive(Debug, Default)]
pub struct UserRequest {
    pub username: String,
    pub email: String,
    pub password: String,
    pub roles: Vec<String>,
    pub reseller_id: Option<String>,
    pub merchant_id: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

/// A change to an account; `None` leaves a field as it is, and for the
/// tenant fields `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub username: Option<String>,
    pub email: Option<String>,
    pub roles: Option<Vec<String>>,
    pub reseller_id: Option<Option<String>>,
    pub merchant_id: Option<Option<String>>,
    pub attributes: Option<BTreeMap<String, String>>,
}

/// What to list.
#[derive(Debug, Default)]
pub struct UserFilter {
    pub reseller_id: Option<String>,
    pub merchant_id: Option<String>,
    pub role: Option<String>,
    /// Case-insensitive substring of username or email.
    pub q: Option<String>,
    /// Only disabled accounts (`Some(true)`) or only enabled ones
    /// (`Some(false)`); both when `None`.
    pub disabled: Option<bool>,
}

impl UserFilter {
    /// The list's `?state=`: `active` or `disabled`, or absent for both.
    pub fn state(raw: Option<&str>) -> Result<Option<bool>, Error> {
        match raw {
            None | Some("") => Ok(None),
            Some("active") => Ok(Some(false)),
            Some("disabled") => Ok(Some(true)),
            Some(_) => Err(Error::invalid("state", "state must be active or disabled")),
        }
    }
}

/// Most attributes an account may carry, and their sizes.
const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTE_KEY: usize = 64;
const MAX_ATTRIBUTE_VALUE: usize = 1024;

fn check_attributes(attributes: &BTreeMap<String, String>) -> Result<(), Error> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(Error::invalid(
            "attributes",
            format!("at most {MAX_ATTRIBUTES} attributes"),
        ));
    }
    for (k, v) in attributes {
        if k.is_empty() || k.len() > MAX_ATTRIBUTE_KEY || v.len() > MAX_ATTRIBUTE_VALUE {
            return Err(Error::invalid(
                "attributes",
                format!(
                    "attribute names are 1 to {MAX_ATTRIBUTE_KEY} bytes, values at most {MAX_ATTRIBUTE_VALUE}"
                ),
            ));
        }
    }
    Ok(())
}

/// Decides where an account with `roles` may sit, for a caller of `scope`.
/// An explicit tenant outside the scope is 403 (decided before any lookup,
/// so it confirms nothing); a tenant the caller cannot see reads as
/// unknown (422), exactly like one that does not exist.
pub(super) fn place(
    tx: &impl Lookup,
    scope: &Scope,
    roles: &[String],
    reseller_id: Option<String>,
    merchant_id: Option<String>,
) -> Result<(Option<String>, Option<String>), Error> {
    if roles.is_empty() {
        return Err(Error::invalid(
            "roles",
            "an account needs at least one role",
        ));
    }
    for (i, role) in roles.iter().enumerate() {
        if roles[..i].contains(role) {
            return Err(Error::invalid("roles", format!("{role} is listed twice")));
        }
        if !is_builtin(role) && tx.custom_role(role)?.is_none() {
            return Err(Error::invalid("roles", format!("unknown role: {role}")));
        }
        if !scope.may_grant(role) {
            return Err(Error::Forbidden);
        }
    }
    let (mut reseller_id, merchant_id) = match scope {
        Scope::All => (reseller_id, merchant_id),
        Scope::Reseller(own) => {
            if reseller_id.as_ref().is_some_and(|r| r != own) {
                return Err(Error::Forbidden);
            }
            (Some(own.clone()), merchant_id)
        }
        Scope::Merchant { reseller, merchant } => {
            if reseller_id.as_ref().is_some_and(|r| r != reseller)
                || merchant_id.as_ref().is_some_and(|m| m != merchant)
            {
                return Err(Error::Forbidden);
            }
            (Some(reseller.clone()), Some(merchant.clone()))
        }
        Scope::Own(_) | Scope::Nothing => return Err(Error::Forbidden),
    };
    if let Some(m) = &merchant_id {
        let merchant = tx
            .merchant(m)?
            .filter(|found| scope.covers_merchant(found))
            .ok_or_else(|| Error::invalid("merchant_id", "unknown merchant_id"))?;
        match &reseller_id {
            Some(r) if *r != merchant.reseller_id => {
                return Err(Error::invalid(
                    "merchant_id",
                    "the merchant does not belong to that reseller",
                ));
            }
            _ => reseller_id = Some(merchant.reseller_id),
        }
    }
    if let Some(r) = &reseller_id
        && tx.reseller(r)?.is_none()
    {
        return Err(Error::invalid("reseller_id", "unknown reseller_id"));
    }
    let strongest = roles.iter().map(|r| level(r)).max().unwrap_or(1);
    if strongest == 3 && reseller_id.is_none() {
        return Err(Error::invalid(
            "reseller_id",
            "a reseller account needs a reseller_id",
        ));
    }
    if strongest == 2 && merchant_id.is_none() {
        return Err(Error::invalid(
            "merchant_id",
            "a merchant account needs a merchant_id",
        ));
    }
    Ok((reseller_id, merchant_id))
}

/// Removes every provider link of `account` and logs which providers (and
/// which of their ids) it trusted, never a token. A link was made because a
/// provider vouched for the account's email, so it must not outlive that
/// email, nor the password reset a manager reaches for to take an account
/// back. Returns how many links went.
pub(super) fn drop_external_links(
    tx: &mut WriteTx,
    account: &Account,
    audit: AuditEntry,
    why: &str,
    now: i64,
) -> Result<usize, Error> {
    let links = tx.remove_external_links(account.id)?;
    if !links.is_empty() {
        let named: Vec<String> = links
            .iter()
            .map(|(provider, subject)| format!("{provider}: id {subject}"))
            .collect();
        audit
            .tenant_of(account)
            .target(account.id.to_string())
            .detail(format!("{why}; unlinked {}", named.join(", ")))
            .append(tx, now)?;
    }
    Ok(links.len())
}

fn is_enabled_admin(account: &Account) -> bool {
    !account.disabled && account.roles.iter().any(|r| r == "admin")
}

/// Refuses a change of `current` into `next` (`None`: deleted) that would
/// leave no enabled admin, since nothing could then bring one back. Run
/// inside the write transaction that makes the change, so two changes
/// racing (two admins demoting each other) cannot both pass: the second
/// sees the first.
fn keep_an_admin(tx: &WriteTx, current: &Account, next: Option<&Account>) -> Result<(), Error> {
    if !is_enabled_admin(current) || next.is_some_and(is_enabled_admin) {
        return Ok(());
    }
    let mut another = false;
    tx.scan_accounts(None, 0, |a| {
        another = a.id != current.id && is_enabled_admin(&a);
        !another
    })?;
    if another {
        Ok(())
    } else {
        Err(Error::Conflict(
            "this would leave no enabled admin; enable or promote another admin first".into(),
        ))
    }
}

impl Core {
    /// The account `id` if the caller's scope covers it.
    fn visible(&self, scope: &Scope, account: Option<Account>) -> Result<Account, Error> {
        account
            .filter(|a| scope.covers_account(a))
            .ok_or(Error::NotFound("user"))
    }

    /// The caller's scope, once the account `id` is found in it; "not
    /// found" otherwise, whether the account exists or not.
    pub(super) fn scope_seeing(&self, principal: &Principal, id: Uuid) -> Result<Scope, Error> {
        let scope = principal.scope();
        self.visible(&scope, self.store.read()?.account(id)?)?;
        Ok(scope)
    }

    pub async fn admin_create_user(
        &self,
        principal: &Principal,
        mut request: UserRequest,
    ) -> Result<Account, Error> {
        // An account is made with a password: a credential that may not
        // mint credentials may not make one.
        principal.may_mint()?;
        let scope = principal.scope();
        if !scope.manages() {
            return Err(Error::Forbidden);
        }
        request.roles = self.canonical_roles(&request.roles)?;
        let username = Username::parse(&request.username)?;
        let email = Email::parse(&request.email)?;
        let password = Password::new(&request.password)
            .map_err(|e| Error::invalid("password", e.to_string()))?;
        check_attributes(&request.attributes)?;
        // Placement is checked before the (expensive) hash, so a request
        // that will be refused costs no argon2 time, and again inside the
        // write transaction, where it counts.
        place(
            &self.store.read()?,
            &scope,
            &request.roles,
            request.reseller_id.clone(),
            request.merchant_id.clone(),
        )?;
        if request.roles.iter().any(|r| r == "admin") {
            self.require_recent_password(principal)?;
        }
        let hash = self.hash_password(password).await?;
        let now = self.clock.now();
        let audit = self.actor_entry(principal, "account_created", Outcome::Success)?;
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let (reseller_id, merchant_id) = place(
                    tx,
                    &scope,
                    &request.roles,
                    request.reseller_id,
                    request.merchant_id,
                )?;
                let account = Account {
                    id: Uuid::new_v4(),
                    number: tx.next_account_number()?,
                    username: username.as_str().to_string(),
                    email: email.as_str().to_string(),
                    password_hash: hash,
                    roles: request.roles,
                    reseller_id,
                    merchant_id,
                    attributes: request.attributes,
                    disabled: false,
                    sessions_epoch: 0,
                    created_at: now,
                    updated_at: now,
                };
                put_checked(tx, &account, None)?;
                audit
                    .tenant_of(&account)
                    .target(account.id.to_string())
                    .append(tx, now)?;
                Ok(account)
            })
            .await
    }

    pub fn admin_list_users(
        &self,
        principal: &Principal,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<Account>, Error> {
        let after = page.number(0)?;
        let limit = page.limit();
        let scope = principal.scope();
        let tenant_key = match (&scope, &filter.merchant_id, &filter.reseller_id) {
            (Scope::Own(_) | Scope::Nothing, _, _) => return Err(Error::Forbidden),
            (_, Some(m), _) => Some(crate::store::merchant_key(m)),
            (_, None, Some(r)) => Some(crate::store::reseller_key(r)),
            (Scope::Reseller(r), None, None) => Some(crate::store::reseller_key(r)),
            (Scope::Merchant { merchant, .. }, None, None) => {
                Some(crate::store::merchant_key(merchant))
            }
            (Scope::All, None, None) => None,
        };
        let q = filter.q.as_ref().map(|q| q.to_lowercase());
        let mut items = Vec::new();
        let mut last = after;
        let mut more = false;
        self.store
            .read()?
            .scan_accounts(tenant_key.as_deref(), after, |account| {
                if items.len() >= limit {
                    more = true;
                    return false;
                }
                last = account.number;
                let keep = scope.covers_account(&account)
                    && filter.disabled.is_none_or(|d| account.disabled == d)
                    && filter
                        .reseller_id
                        .as_ref()
                        .is_none_or(|r| account.reseller_id.as_ref() == Some(r))
                    && filter
                        .role
                        .as_ref()
                        .is_none_or(|r| super::tenants::holds(&account.roles, r))
                    && q.as_ref().is_none_or(|q| {
                        account.username.to_lowercase().contains(q)
                            || account.email.to_lowercase().contains(q)
                    });
                if keep {
                    items.push(account);
                }
                true
            })?;
        let next = more.then(|| last.to_string());
        Ok(Page { items, next })
    }

    pub fn admin_get_user(&self, principal: &Principal, id: Uuid) -> Result<Account, Error> {
        let scope = principal.scope();
        self.visible(&scope, self.store.read()?.account(id)?)
    }

    pub async fn admin_update_user(
        &self,
        principal: &Principal,
        id: Uuid,
        mut patch: UserPatch,
    ) -> Result<Account, Error> {
        let scope = principal.scope();
        if let Some(roles) = &patch.roles {
            patch.roles = Some(self.canonical_roles(roles)?);
        }
        let username = patch.username.as_deref().map(Username::parse).transpose()?;
        let email = patch.email.as_deref().map(Email::parse).transpose()?;
        if let Some(attributes) = &patch.attributes {
            check_attributes(attributes)?;
        }
        let now = self.clock.now();
        let audit = self.actor_entry(principal, "account_updated", Outcome::Success)?;
        let unlinked = self.actor_entry(principal, "external_unlinked", Outcome::Success)?;
        let revocations = self.revocations_handle();
        let states = self.states.clone();
        // Pending until the commit is over: see `KeyIndex::removal`.
        let _settles = self.states.keys().removal();
        let own = principal.account == Some(id);
        let actor = principal.clone();
        // Asked now (a store read), used only if the change grants admin
        // or moves another account's email, which the write transaction
        // alone can tell.
        let reauth = self.require_recent_password(principal).err();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let current = tx.account(id)?.filter(|a| scope.covers_account(a));
                let current = current.ok_or(Error::NotFound("user"))?;
                if !scope.manages() {
                    return Err(Error::Forbidden);
                }
                let mut next = current.clone();
                if let Some(u) = username {
                    next.username = u.as_str().to_string();
                }
                // An email is a sign-in identifier: a provider that vouches
                // for the mailbox signs in to the account. Pointing it
                // elsewhere is minting a credential.
                let email_changed = email
                    .as_ref()
                    .is_some_and(|e| email_key(e.as_str()) != email_key(&current.email));
                if email_changed {
                    actor.may_mint()?;
                }
                if let Some(e) = email {
                    next.email = e.as_str().to_string();
                }
                if let Some(a) = patch.attributes {
                    next.attributes = a;
                }
                let placement_changed = patch.roles.is_some()
                    || patch.reseller_id.is_some()
                    || patch.merchant_id.is_some();
                if placement_changed {
                    let roles = patch.roles.unwrap_or_else(|| current.roles.clone());
                    let reseller = patch.reseller_id.unwrap_or(current.reseller_id.clone());
                    let merchant = patch.merchant_id.unwrap_or(current.merchant_id.clone());
                    let (r, m) = place(tx, &scope, &roles, reseller, merchant)?;
                    next.roles = roles;
                    next.reseller_id = r;
                    next.merchant_id = m;
                }
                let is_admin = |a: &Account| a.roles.iter().any(|r| r == "admin");
                if own && is_admin(&current) && !is_admin(&next) {
                    return Err(Error::Conflict(
                        "you cannot remove your own admin role".into(),
                    ));
                }
                keep_an_admin(tx, &current, Some(&next))?;
                // Granting admin is a sensitive action, and so is pointing
                // another account's email elsewhere: a provider vouching
                // for the new mailbox signs in to the account.
                let sensitive = (!is_admin(&current) && is_admin(&next)) || (email_changed && !own);
                if sensitive && let Some(e) = reauth {
                    return Err(e);
                }
                let placement_changed = next.roles != current.roles
                    || next.reseller_id != current.reseller_id
                    || next.merchant_id != current.merchant_id;
                if placement_changed {
                    // A login in flight must not open a session afterwards
                    // with what it read before.
                    next.sessions_epoch = current.sessions_epoch.wrapping_add(1);
                }
                next.updated_at = now;
                put_checked(tx, &next, Some(&current))?;
                let mut dropped = 0;
                if email_changed {
                    dropped = drop_external_links(tx, &next, unlinked, "email changed", now)?;
                }
                if dropped > 0 {
                    // A provider sign-in in flight read the link before
                    // this commit: it must not open a session after it.
                    let before = next.clone();
                    next.sessions_epoch = next.sessions_epoch.wrapping_add(1);
                    put_checked(tx, &next, Some(&before))?;
                }
                // Before the commit, and after the last check that can
                // refuse the change: what is taken away is refused from
                // now, and a refused change takes nothing away.
                states.restrict(&current, &next);
                let mut detail = String::new();
                if placement_changed {
                    // Tokens carry roles and tenant: the old ones must go.
                    let n = revocations.revoke_all_in(tx, id, "roles or tenant changed", now)?;
                    // A key acting with a role the account lost is deleted,
                    // so giving the role back does not revive it.
                    let mut keys = 0;
                    for key in tx.account_keys(id)? {
                        let acts_with: Vec<&String> = key.roles.iter().chain(&key.role).collect();
                        if acts_with
                            .iter()
                            .any(|r| !super::tenants::holds(&next.roles, r))
                        {
                            tx.remove_api_key(&key)?;
                            keys += 1;
                        }
                    }
                    detail = format!(
                        "roles or tenant changed; {n} sessions and {keys} API keys revoked"
                    );
                }
                if dropped > 0 {
                    // The sessions a dropped link opened are not told apart
                    // from the others, so all of them end with the link, as
                    // when a manager sets the password: whoever signed in
                    // through the provider is out from the next request.
                    let n = revocations.revoke_all_in(tx, id, "email changed", now)?;
                    let part = format!("email changed with provider links; {n} sessions revoked");
                    detail = if detail.is_empty() {
                        part
                    } else {
                        format!("{detail}; {part}")
                    };
                }
                let audit = audit.tenant_of(&next).target(id.to_string());
                if detail.is_empty() {
                    audit
                } else {
                    audit.detail(detail)
                }
                .append(tx, now)?;
                Ok(next)
            })
            .await
    }

    /// Disables an account in scope: its sessions and API keys end with it,
    /// and it can sign in nowhere until enabled again.
    pub async fn disable_user(&self, principal: &Principal, id: Uuid) -> Result<Account, Error> {
        self.set_disabled(principal, id, true).await
    }

    /// Enables an account in scope again. Nothing it had is given back:
    /// its sessions and keys ended when it was disabled.
    pub async fn enable_user(&self, principal: &Principal, id: Uuid) -> Result<Account, Error> {
        self.set_disabled(principal, id, false).await
    }

    /// The one write behind [`Core::disable_user`] and [`Core::enable_user`]:
    /// the same checks either way, and what a disable ends.
    async fn set_disabled(
        &self,
        principal: &Principal,
        id: Uuid,
        disabled: bool,
    ) -> Result<Account, Error> {
        let scope = principal.scope();
        if principal.account == Some(id) {
            return Err(Error::Conflict(
                "you cannot disable or enable your own account".into(),
            ));
        }
        let now = self.clock.now();
        let event = if disabled {
            "account_disabled"
        } else {
            "account_enabled"
        };
        let audit = self.actor_entry(principal, event, Outcome::Success)?;
        let revocations = self.revocations_handle();
        let states = self.states.clone();
        // Pending until the commit is over: see `KeyIndex::removal`.
        let _settles = self.states.keys().removal();
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let mut account = tx
                    .account(id)?
                    .filter(|a| scope.covers_account(a))
                    .ok_or(Error::NotFound("user"))?;
                if !scope.manages() {
                    return Err(Error::Forbidden);
                }
                let mut audit = audit.tenant_of(&account).target(id.to_string());
                // Checked before anything is revoked, in memory or not.
                let after = Account {
                    disabled,
                    ..account.clone()
                };
                keep_an_admin(tx, &account, Some(&after))?;
                if disabled && !account.disabled {
                    let sessions = revocations.revoke_all_in(tx, id, "account disabled", now)?;
                    let keys = tx.account_keys(id)?;
                    for key in &keys {
                        tx.remove_api_key(key)?;
                    }
                    audit = audit.detail(format!(
                        "{sessions} sessions and {} API keys revoked",
                        keys.len()
                    ));
                }
                let previous = account.clone();
                account.disabled = disabled;
                account.updated_at = now;
                if disabled && !previous.disabled {
                    account.sessions_epoch = previous.sessions_epoch.wrapping_add(1);
                }
                put_checked(tx, &account, Some(&previous))?;
                // Before the commit, and after the last check that can
                // refuse it: a disable is refused from now; an enable is
                // learnt by the account's next sign-in.
                states.restrict(&previous, &account);
                audit.append(tx, now)?;
                Ok(account)
            })
            .await
    }

    pub async fn admin_delete_user(&self, principal: &Principal, id: Uuid) -> Result<(), Error> {
        let scope = principal.scope();
        if principal.account == Some(id) {
            return Err(Error::Conflict("you cannot delete your own account".into()));
        }
        let now = self.clock.now();
        let audit = self.actor_entry(principal, "account_deleted", Outcome::Success)?;
        // Said after the checks that refuse the deletion anyway (not found,
        // not allowed, the last admin), so no password is asked for nothing.
        let reauth = self.require_recent_password(principal).err();
        let revocations = self.revocations_handle();
        let states = self.states.clone();
        // Pending until the commit is over: see `KeyIndex::removal`.
        let _settles = self.states.keys().removal();
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let account = tx
                    .account(id)?
                    .filter(|a| scope.covers_account(a))
                    .ok_or(Error::NotFound("user"))?;
                if !scope.manages() {
                    return Err(Error::Forbidden);
                }
                keep_an_admin(tx, &account, None)?;
                if let Some(e) = reauth {
                    return Err(e);
                }
                states.forget(id);
                let sessions = revocations.revoke_all_in(tx, id, "account deleted", now)?;
                tx.remove_account(&account, &super::accounts::index_keys(&account))?;
                audit
                    .tenant_of(&account)
                    .target(id.to_string())
                    .detail(format!(
                        "{} ({}); {sessions} sessions revoked",
                        account.username, account.email
                    ))
                    .append(tx, now)?;
                Ok(())
            })
            .await
    }

    /// Sets an account's password. A manager may set any account's in its
    /// scope; an account changing its own must give the current one. Every
    /// other session of the account ends.
    pub async fn admin_set_password(
        &self,
        principal: &Principal,
        id: Uuid,
        new_password: &str,
        current_password: Option<&str>,
    ) -> Result<(), Error> {
        // A password is a credential: a credential that may not mint
        // credentials may not set one, not even its own account's.
        principal.may_mint()?;
        let scope = self.scope_seeing(principal, id)?;
        let own = principal.account == Some(id);
        if !scope.manages() && !own {
            return Err(Error::Forbidden);
        }
        // The new password's rules first: a check that will be refused
        // costs no hash.
        let password =
            Password::new(new_password).map_err(|e| Error::invalid("password", e.to_string()))?;
        // Choosing another account's password is signing in as it (an
        // admin's, a fresh session that passes every re-auth check): a
        // sensitive action, asked before the hash so a refusal costs none.
        if !own {
            self.require_recent_password(principal)?;
        }
        if !scope.manages() || own {
            let current = current_password.ok_or_else(|| {
                Error::invalid("current_password", "current_password is required")
            })?;
            // The login's limits, lockout and audit apply: otherwise this
            // is an unlimited oracle for the password.
            let client = super::ClientInfo {
                ip: principal.client_ip,
                user_agent: String::new(),
            };
            self.check_current_password(id, current, &client)
                .await
                .map_err(|e| match e {
                    Error::InvalidCredentials => {
                        Error::invalid("current_password", "current_password is wrong")
                    }
                    other => other,
                })?;
        }
        let hash = self.hash_password(password).await?;
        let now = self.clock.now();
        let keep = principal.session;
        let audit = self.actor_entry(principal, "password_changed", Outcome::Success)?;
        let unlinked = self.actor_entry(principal, "external_unlinked", Outcome::Success)?;
        let revocations = self.revocations_handle();
        let actor = principal.clone();
        let changed: Result<(), Error> = self
            .store
            .write_async(move |tx| {
                // The actor and the scope again, as they are now: the
                // account may have been promoted out of reach while the
                // new password hashed.
                actor_still_valid(tx, &actor, now)?;
                let previous = tx
                    .account(id)?
                    .filter(|a| scope.covers_account(a))
                    .ok_or(Error::NotFound("user"))?;
                let mut account = previous.clone();
                account.password_hash = hash;
                account.updated_at = now;
                // A login that checked the old password before this commit
                // must not open a session after it: the other sessions end
                // here, and so does every sign-in still in flight.
                account.sessions_epoch = previous.sessions_epoch.wrapping_add(1);
                put_checked(tx, &account, Some(&previous))?;
                if !own {
                    // A manager setting the password is taking the account
                    // back: the provider identities it trusted go too.
                    drop_external_links(tx, &account, unlinked, "password set by a manager", now)?;
                }
                let mut n = 0;
                for mut session in tx.account_sessions(id)? {
                    if Some(session.id) != keep && session.revoked_at.is_none() {
                        revocations.revoke_in(tx, &mut session, "password changed", now)?;
                        n += 1;
                    }
                }
                audit
                    .tenant_of(&account)
                    .target(id.to_string())
                    .detail(format!("{n} other sessions revoked"))
                    .append(tx, now)?;
                Ok(())
            })
            .await;
        if changed.is_ok() {
            self.forget_changed_initial_password();
        }
        changed
    }

    /// Ends the account's lock (and clears its failure count), and clears
    /// any count its username and email gathered as unknown identifiers.
    /// Records keyed by the plain lookup form (before counts followed the
    /// account) are left to housekeeping, which drops them within a day.
    pub async fn admin_unlock(&self, principal: &Principal, id: Uuid) -> Result<bool, Error> {
        let scope = self.scope_seeing(principal, id)?;
        if !scope.manages() {
            return Err(Error::Forbidden);
        }
        let now = self.clock.now();
        let audit = self.actor_entry(principal, "unlock", Outcome::Success)?;
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                // The account and its names as they are now, in scope now.
                actor_still_valid(tx, &actor, now)?;
                let account = tx
                    .account(id)?
                    .filter(|a| scope.covers_account(a))
                    .ok_or(Error::NotFound("user"))?;
                let audit = audit.tenant_of(&account).target(id.to_string());
                let keys = super::accounts::index_keys(&account);
                let keys = [
                    super::accounts::lockout_key_for_account(account.id),
                    super::accounts::lockout_key_for_identifier(&keys.username),
                    super::accounts::lockout_key_for_identifier(&keys.email),
                ];
                let mut was_locked = false;
                for key in &keys {
                    if let Some(lock) = tx.lockout(key)? {
                        was_locked |= lock.locked_until.is_some_and(|u| u > now);
                        tx.remove_lockout(key)?;
                    }
                }
                audit
                    .detail(if was_locked {
                        "lock ended by an administrator"
                    } else {
                        "failure count cleared by an administrator (it was not locked)"
                    })
                    .append(tx, now)?;
                Ok(was_locked)
            })
            .await
    }

    /// The live sessions of an account in scope, newest first.
    pub fn admin_list_sessions(
        &self,
        principal: &Principal,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Session>, Error> {
        let scope = principal.scope();
        let tx = self.store.read()?;
        self.visible(&scope, tx.account(id)?)?;
        self.account_live_sessions(&tx, id, page)
    }

    /// The live sessions of the caller's own account, newest first (an
    /// S2S token has no account, and so none).
    pub fn own_sessions(
        &self,
        principal: &Principal,
        page: &PageRequest,
    ) -> Result<Page<Session>, Error> {
        let id = principal.account.ok_or(Error::Forbidden)?;
        let tx = self.store.read()?;
        self.account_live_sessions(&tx, id, page)
    }

    /// An account's sessions that are neither revoked nor expired.
    fn account_live_sessions(
        &self,
        tx: &crate::store::ReadTx,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Session>, Error> {
        let now = self.clock.now();
        let mut sessions: Vec<Session> = tx
            .account_sessions(id)?
            .into_iter()
            .filter(|s| self.session_is_live(s, now))
            .collect();
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        page.in_memory(sessions)
    }

    /// Ends every session of an account in scope, and any login still in
    /// flight for it. Returns how many sessions ended.
    pub async fn revoke_user_sessions(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<usize, Error> {
        self.revoke_sessions_of(principal, id, None).await
    }

    /// Ends one live session of an account in scope; one that is not the
    /// account's, or already ended, is "not found".
    pub async fn revoke_user_session(
        &self,
        principal: &Principal,
        id: Uuid,
        session: Uuid,
    ) -> Result<(), Error> {
        self.revoke_sessions_of(principal, id, Some(session))
            .await
            .map(|_| ())
    }

    /// The one write behind [`Core::revoke_user_sessions`] and
    /// [`Core::revoke_user_session`]: one session (`Some`) or all (`None`).
    async fn revoke_sessions_of(
        &self,
        principal: &Principal,
        id: Uuid,
        which: Option<Uuid>,
    ) -> Result<usize, Error> {
        let scope = self.scope_seeing(principal, id)?;
        let now = self.clock.now();
        let audit = self.actor_entry(
            principal,
            if which.is_some() {
                "session_revoked"
            } else {
                "sessions_revoked"
            },
            Outcome::Success,
        )?;
        let revocations = self.revocations_handle();
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let account = tx
                    .account(id)?
                    .filter(|a| scope.covers_account(a))
                    .ok_or(Error::NotFound("user"))?;
                let n = match which {
                    Some(sid) => {
                        let mut session = tx
                            .session(sid)?
                            .filter(|s| s.account == id && s.revoked_at.is_none())
                            .ok_or(Error::NotFound("session"))?;
                        revocations.revoke_in(
                            tx,
                            &mut session,
                            "revoked by an administrator",
                            now,
                        )?;
                        1
                    }
                    None => {
                        // A login in flight opens no session after this.
                        let mut next = account.clone();
                        next.sessions_epoch = account.sessions_epoch.wrapping_add(1);
                        put_checked(tx, &next, Some(&account))?;
                        revocations.revoke_all_in(tx, id, "revoked by an administrator", now)?
                    }
                };
                audit
                    .tenant_of(&account)
                    .target(which.map_or(id.to_string(), |s| s.to_string()))
                    .detail(format!("{n} sessions revoked"))
                    .append(tx, now)?;
                Ok(n)
            })
            .await
    }

    /// The keys of an account in scope.
    pub fn admin_user_keys(
        &self,
        principal: &Principal,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<crate::store::ApiKey>, Error> {
        self.scope_seeing(principal, id)?;
        page.in_memory(self.list_api_keys(id)?)
    }

    /// Deletes a key of an account in scope.
    pub async fn admin_delete_user_key(
        &self,
        principal: &Principal,
        id: Uuid,
        key_id: &str,
    ) -> Result<(), Error> {
        let scope = self.scope_seeing(principal, id)?;
        if !scope.manages() && principal.account != Some(id) {
            return Err(Error::Forbidden);
        }
        self.delete_api_key(principal, id, key_id).await
    }
}
