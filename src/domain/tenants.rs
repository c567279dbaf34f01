//! Resellers, merchants and custom roles.

use super::audit::AuditEntry;
use super::auth::{Principal, actor_still_valid};
use super::rbac::{Scope, is_builtin};
use super::secrets::random_id;
use super::{Core, Error, Outcome, Page, PageRequest};
use crate::store::{CustomRole, S2sToken, WriteTx, merchant_key, reseller_key};
/// Resellers and merchants as they are listed.
pub use crate::store::{Merchant, Reseller};

/// Tenant ids: 1 to 64 letters, digits, `_` and `-`.
pub fn parse_tenant_id(field: &'static str, raw: &str) -> Result<String, Error> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Error::invalid(
            field,
            format!("{field} must be 1 to 64 letters, digits, _ or -"),
        ))
    }
}

/// The refusal of a deleted tenant's id. Ids are never reused: the audit
/// log and every record that names a tenant by id would otherwise speak
/// of the old tenant to the new one.
const RETIRED: &str = "this id was used before by a deleted tenant; choose another";

fn parse_name(raw: &str) -> Result<String, Error> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "name must be 1 to 200 characters"));
    }
    Ok(name.to_string())
}

/// Longest role name, in bytes (every byte of one is ASCII).
pub const MAX_ROLE_NAME: usize = 64;
/// Most custom roles a store holds; role lookups that ignore case read
/// them all, so their number is bounded.
pub const MAX_CUSTOM_ROLES: usize = 1000;

/// Whether `raw` has the one form of a role name: 1 to 64 ASCII letters,
/// digits, `-`, `_` and `.`, starting with a letter. Nothing outside ASCII
/// is allowed, so no name can look like another (`ａｄｍｉｎ`, a Cyrillic
/// `а`, a dotted `İ`), and case is compared by ASCII rules alone.
pub fn is_role_form(raw: &str) -> bool {
    let b = raw.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ROLE_NAME
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Whether a role name a request gave (`asked`) names the stored role
/// `stored`: the same text, or, for custom names of the role form, the
/// same letters in any ASCII case. A stored name from before the form (kept
/// working) is matched by its exact text only. So is anything spelled like
/// a built-in role: `admin` is only ever `admin`, so a custom role a store
/// made before the form (`Admin`) can never stand for the built-in one in
/// a check that an account, a session or a key still holds a role.
pub fn role_matches(stored: &str, asked: &str) -> bool {
    stored == asked
        || (is_role_form(asked)
            && !spelled_like_builtin(stored)
            && !spelled_like_builtin(asked)
            && stored.eq_ignore_ascii_case(asked))
}

/// Why a role or tenant named by the external sign-in defaults cannot be
/// deleted: accounts created at external sign-in are placed with them, and
/// the start-up check would refuse the next start.
const EXTERNAL_DEFAULT: &str = "external sign-in creates accounts with this as its default (LATCHKEY_EXTERNAL_DEFAULT_*); change that setting first";

/// Whether `name` is a built-in role name in some ASCII case.
fn spelled_like_builtin(name: &str) -> bool {
    super::accounts::BUILTIN_ROLES
        .iter()
        .any(|b| b.eq_ignore_ascii_case(name))
}

/// Whether the role names `held` include `asked` by [`role_matches`]: the
/// one way every rule asks whether an account, key or credential holds a
/// role, so no rule can be passed or failed by spelling a name otherwise.
pub fn holds(held: &[String], asked: &str) -> bool {
    held.iter().any(|r| role_matches(r, asked))
}

/// A new custom role's name: of the role form, and not a built-in role in
/// any case (that is a conflict, as with an existing custom role). The name
/// keeps the spelling it was given, so documents show it as created;
/// uniqueness and every lookup ignore ASCII case.
pub fn parse_role_name(raw: &str) -> Result<String, Error> {
    if !is_role_form(raw) {
        return Err(Error::invalid(
            "name",
            format!(
                "role names are 1 to {MAX_ROLE_NAME} ASCII letters, digits, -, _ or ., starting with a letter"
            ),
        ));
    }
    if let Some(builtin) = super::accounts::BUILTIN_ROLES
        .iter()
        .find(|b| b.eq_ignore_ascii_case(raw))
    {
        return Err(Error::Conflict(format!("{builtin} is a built-in role")));
    }
    Ok(raw.to_string())
}

/// The stored spelling of the role a request named: a built-in role in
/// any case, or a custom role found by [`role_matches`]. `None` when no
/// role has that name.
pub(crate) fn resolve_role(roles: &[CustomRole], asked: &str) -> Option<String> {
    if is_role_form(asked)
        && let Some(builtin) = super::accounts::BUILTIN_ROLES
            .iter()
            .find(|b| b.eq_ignore_ascii_case(asked))
    {
        return Some(builtin.to_string());
    }
    roles
        .iter()
        .find(|r| r.name == asked)
        .or_else(|| roles.iter().find(|r| role_matches(&r.name, asked)))
        .map(|r| r.name.clone())
}

impl Core {
    /// The stored spelling of each role a request names, so an account
    /// holds `Support-Team` whichever case the request used. A name that
    /// matches no role is left as given, for the placement rules to refuse
    /// as unknown.
    pub fn canonical_roles(&self, asked: &[String]) -> Result<Vec<String>, Error> {
        let roles = self.store.read()?.custom_roles()?;
        Ok(asked
            .iter()
            .map(|a| resolve_role(&roles, a).unwrap_or_else(|| a.clone()))
            .collect())
    }
}

/// Most merchants one reseller may have. Each merchant is a tenant of its
/// own (its accounts, its S2S tokens), so without this a reseller's
/// manager could grow its tree, and what every scan over it reads, at
/// will; the S2S bound on a reseller's whole tree (`s2s_room`) holds
/// whatever this is.
pub const MAX_MERCHANTS_PER_RESELLER: usize = 1000;

/// Ends a tenant's S2S tokens as the tenant is deleted, inside that
/// write. A live token (neither revoked nor expired) refuses the deletion
/// (`Conflict`, with `refusal`): someone still relies on it. An expired one
/// does not, and is marked revoked with the tenant, so that nothing can
/// bring it back (a token stored before lifetimes existed expires by the
/// `s2s_max_ttl` of the day, which a later setting could lengthen).
///
/// Holds at most `batch` of the tenant's unrevoked tokens in memory at a
/// time, but reads (decodes) every stored S2S token to find them: there is
/// no per-tenant index yet (a schema change, left for the performance
/// work). Issuance keeps at most twice `max_s2s_tokens_per_tenant` records
/// per tenant and four times it per reseller tree (live, or ended within
/// the last hour; older ones are deleted there and by housekeeping), and a
/// reseller is deleted only once its merchants are, so with `batch` twice
/// the cap one batch usually holds them all. Expired but unrevoked
/// records may outnumber that for a while (a store written before the
/// cap, or a cap lowered since), so the loop goes on in batches until the
/// table is done: a deletion never leaves a token unended, whatever the
/// count, and a live one anywhere aborts the whole write.
fn end_s2s_in(
    tx: &mut WriteTx,
    now: i64,
    max_ttl: i64,
    batch: usize,
    of_tenant: impl Fn(&S2sToken) -> bool,
    refusal: &str,
) -> Result<(), Error> {
    let mut after = String::new();
    loop {
        let (unrevoked, next) = tx.s2s_tokens_after(
            &after,
            |t| t.revoked_at.is_none() && of_tenant(t),
            batch.max(1),
            usize::MAX,
        )?;
        if unrevoked
            .iter()
            .any(|t| super::s2s::expiry(t, max_ttl) > now)
        {
            return Err(Error::Conflict(refusal.into()));
        }
        for mut token in unrevoked {
            token.revoked_at = Some(now);
            tx.put_s2s_token(&token)?;
        }
        match next {
            Some(id) => after = id,
            None => return Ok(()),
        }
    }
}

/// The id of a new reseller or merchant: the one asked for, checked, or a
/// random one after `prefix` (`res`, `mer`).
fn new_tenant_id(asked: Option<String>, prefix: &str) -> Result<String, Error> {
    match asked {
        Some(id) => parse_tenant_id("id", &id),
        None => Ok(format!("{prefix}_{}", random_id(12))),
    }
}

/// Refuses a new tenant's id that one of its kind (`what`) holds now
/// (`taken`) or held once (`key` is retired): ids are never reused.
fn id_free(tx: &WriteTx, taken: bool, key: &str, what: &str) -> Result<(), Error> {
    if taken {
        return Err(Error::Conflict(format!("a {what} with this id exists")));
    }
    if tx.tenant_retired(key)? {
        return Err(Error::Conflict(RETIRED.into()));
    }
    Ok(())
}

/// Only the admin changes a reseller; one out of the caller's sight is
/// "not found" first, so a refusal confirms nothing.
fn admin_changes_reseller(principal: &Principal, id: &str) -> Result<(), Error> {
    let scope = principal.scope();
    if !scope.covers_reseller(id) {
        return Err(Error::NotFound("reseller"));
    }
    if scope != Scope::All {
        return Err(Error::Forbidden);
    }
    Ok(())
}

/// `audit` about `merchant`: its tenant and its id.
fn of_merchant(audit: AuditEntry, merchant: &Merchant) -> AuditEntry {
    audit
        .tenant(
            Some(merchant.reseller_id.clone()),
            Some(merchant.id.clone()),
        )
        .target(merchant.id.clone())
}

/// The merchant `id` for a change by a caller of `scope`: "not found" out
/// of its sight, forbidden below a reseller's level.
fn merchant_to_change(tx: &WriteTx, scope: &Scope, id: &str) -> Result<Merchant, Error> {
    let merchant = tx
        .merchant(id)?
        .filter(|m| scope.covers_merchant(m))
        .ok_or(Error::NotFound("merchant"))?;
    if scope.level() < 3 {
        return Err(Error::Forbidden);
    }
    Ok(merchant)
}

impl Core {
    pub async fn create_reseller(
        &self,
        principal: &Principal,
        id: Option<String>,
        name: &str,
    ) -> Result<Reseller, Error> {
        if principal.scope() != Scope::All {
            return Err(Error::Forbidden);
        }
        let id = new_tenant_id(id, "res")?;
        let now = self.clock.now();
        let reseller = Reseller {
            id: id.clone(),
            name: parse_name(name)?,
            created_at: now,
            updated_at: now,
        };
        let audit = self
            .actor_entry(principal, "reseller_created", Outcome::Success)?
            .tenant(Some(id.clone()), None)
            .target(id);
        let stored = reseller.clone();
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let taken = tx.reseller(&stored.id)?.is_some();
                id_free(tx, taken, &reseller_key(&stored.id), "reseller")?;
                tx.put_reseller(&stored)?;
                audit.append(tx, now)?;
                Ok::<_, Error>(())
            })
            .await?;
        Ok(reseller)
    }

    pub fn list_resellers(
        &self,
        principal: &Principal,
        page: &PageRequest,
    ) -> Result<Page<Reseller>, Error> {
        let (after, limit) = (page.after_id(), page.limit());
        let tx = self.store.read()?;
        match principal.scope() {
            Scope::All => {
                let items = tx.resellers_after(after, limit)?;
                let next = (items.len() == limit)
                    .then(|| items.last().map(|r| r.id.clone()))
                    .flatten();
                Ok(Page { items, next })
            }
            Scope::Reseller(r) => {
                let items = match tx.reseller(&r)? {
                    Some(own) if own.id.as_str() > after => vec![own],
                    _ => Vec::new(),
                };
                Ok(Page { items, next: None })
            }
            _ => Err(Error::Forbidden),
        }
    }

    pub fn get_reseller(&self, principal: &Principal, id: &str) -> Result<Reseller, Error> {
        if !principal.scope().covers_reseller(id) {
            return Err(Error::NotFound("reseller"));
        }
        self.store
            .read()?
            .reseller(id)?
            .ok_or(Error::NotFound("reseller"))
    }

    pub async fn update_reseller(
        &self,
        principal: &Principal,
        id: &str,
        name: &str,
    ) -> Result<Reseller, Error> {
        admin_changes_reseller(principal, id)?;
        let name = parse_name(name)?;
        let now = self.clock.now();
        let id = id.to_string();
        let audit = self
            .actor_entry(principal, "reseller_updated", Outcome::Success)?
            .tenant(Some(id.clone()), None)
            .target(id.clone());
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let mut reseller = tx.reseller(&id)?.ok_or(Error::NotFound("reseller"))?;
                reseller.name = name;
                reseller.updated_at = now;
                tx.put_reseller(&reseller)?;
                audit.append(tx, now)?;
                Ok(reseller)
            })
            .await
    }

    pub async fn delete_reseller(&self, principal: &Principal, id: &str) -> Result<(), Error> {
        admin_changes_reseller(principal, id)?;
        let now = self.clock.now();
        let id = id.to_string();
        let audit = self
            .actor_entry(principal, "reseller_deleted", Outcome::Success)?
            .tenant(Some(id.clone()), None)
            .target(id.clone());
        let max_ttl = self.config.s2s_max_ttl;
        let batch = self.config.max_s2s_tokens_per_tenant.saturating_mul(2);
        let actor = principal.clone();
        let external = self.external.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                tx.reseller(&id)?.ok_or(Error::NotFound("reseller"))?;
                if external.default_reseller_id.as_deref() == Some(id.as_str()) {
                    return Err(Error::Conflict(EXTERNAL_DEFAULT.into()));
                }
                if tx.reseller_has_merchants(&id)? {
                    return Err(Error::Conflict(
                        "the reseller still has merchants; delete them first".into(),
                    ));
                }
                if tx.tenant_has_accounts(&reseller_key(&id))? {
                    return Err(Error::Conflict(
                        "the reseller still has accounts; delete or move them first".into(),
                    ));
                }
                end_s2s_in(
                    tx,
                    now,
                    max_ttl,
                    batch,
                    |t| t.reseller_id == id,
                    "the reseller still has live S2S tokens; revoke them first",
                )?;
                tx.remove_reseller(&id, now)?;
                audit.append(tx, now)?;
                Ok(())
            })
            .await
    }

    pub async fn create_merchant(
        &self,
        principal: &Principal,
        id: Option<String>,
        reseller_id: Option<String>,
        name: &str,
    ) -> Result<Merchant, Error> {
        let scope = principal.scope();
        let reseller_id = match (&scope, reseller_id) {
            (Scope::All, Some(r)) => r,
            (Scope::All, None) => {
                return Err(Error::invalid("reseller_id", "reseller_id is required"));
            }
            (Scope::Reseller(own), r) => {
                let r = r.unwrap_or_else(|| own.clone());
                if &r != own {
                    return Err(Error::Forbidden);
                }
                r
            }
            _ => return Err(Error::Forbidden),
        };
        let id = new_tenant_id(id, "mer")?;
        let now = self.clock.now();
        let merchant = Merchant {
            id: id.clone(),
            reseller_id: reseller_id.clone(),
            name: parse_name(name)?,
            created_at: now,
            updated_at: now,
        };
        let audit = self
            .actor_entry(principal, "merchant_created", Outcome::Success)?
            .tenant(Some(reseller_id), Some(id.clone()))
            .target(id);
        let stored = merchant.clone();
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                if tx.reseller(&stored.reseller_id)?.is_none() {
                    return Err(Error::invalid("reseller_id", "unknown reseller_id"));
                }
                let taken = tx.merchant(&stored.id)?.is_some();
                id_free(tx, taken, &merchant_key(&stored.id), "merchant")?;
                // Counted in this write, so two creations cannot both take
                // the last place.
                if tx.reseller_merchant_count(&stored.reseller_id, MAX_MERCHANTS_PER_RESELLER)?
                    >= MAX_MERCHANTS_PER_RESELLER
                {
                    return Err(Error::Conflict(format!(
                        "the reseller already has {MAX_MERCHANTS_PER_RESELLER} merchants, the most it may have; delete one first"
                    )));
                }
                tx.put_merchant(&stored)?;
                audit.append(tx, now)?;
                Ok(())
            })
            .await?;
        Ok(merchant)
    }

    pub fn list_merchants(
        &self,
        principal: &Principal,
        reseller: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Merchant>, Error> {
        let (after, limit) = (page.after_id(), page.limit());
        let tx = self.store.read()?;
        let items = match (principal.scope(), reseller) {
            (Scope::All, filter) => tx.merchants_after(filter, after, limit)?,
            (Scope::Reseller(own), filter) => {
                if filter.is_some_and(|f| f != own) {
                    return Err(Error::Forbidden);
                }
                tx.merchants_after(Some(&own), after, limit)?
            }
            (Scope::Merchant { merchant, .. }, _) => tx
                .merchant(&merchant)?
                .filter(|m| m.id.as_str() > after)
                .into_iter()
                .collect(),
            _ => return Err(Error::Forbidden),
        };
        let next = (items.len() == limit)
            .then(|| items.last().map(|m| m.id.clone()))
            .flatten();
        Ok(Page { items, next })
    }

    pub fn get_merchant(&self, principal: &Principal, id: &str) -> Result<Merchant, Error> {
        self.store
            .read()?
            .merchant(id)?
            .filter(|m| principal.scope().covers_merchant(m))
            .ok_or(Error::NotFound("merchant"))
    }

    pub async fn update_merchant(
        &self,
        principal: &Principal,
        id: &str,
        name: &str,
    ) -> Result<Merchant, Error> {
        let scope = principal.scope();
        let name = parse_name(name)?;
        let now = self.clock.now();
        let id = id.to_string();
        let audit = self.actor_entry(principal, "merchant_updated", Outcome::Success)?;
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let mut merchant = merchant_to_change(tx, &scope, &id)?;
                merchant.name = name;
                merchant.updated_at = now;
                tx.put_merchant(&merchant)?;
                of_merchant(audit, &merchant).append(tx, now)?;
                Ok(merchant)
            })
            .await
    }

    pub async fn delete_merchant(&self, principal: &Principal, id: &str) -> Result<(), Error> {
        let scope = principal.scope();
        let now = self.clock.now();
        let id = id.to_string();
        let audit = self.actor_entry(principal, "merchant_deleted", Outcome::Success)?;
        let max_ttl = self.config.s2s_max_ttl;
        let batch = self.config.max_s2s_tokens_per_tenant.saturating_mul(2);
        let actor = principal.clone();
        let external = self.external.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let merchant = merchant_to_change(tx, &scope, &id)?;
                if external.default_merchant_id.as_deref() == Some(id.as_str()) {
                    return Err(Error::Conflict(EXTERNAL_DEFAULT.into()));
                }
                if tx.tenant_has_accounts(&merchant_key(&id))? {
                    return Err(Error::Conflict(
                        "the merchant still has accounts; delete or move them first".into(),
                    ));
                }
                end_s2s_in(
                    tx,
                    now,
                    max_ttl,
                    batch,
                    |t| t.merchant_id.as_deref() == Some(id.as_str()),
                    "the merchant still has live S2S tokens; revoke them first",
                )?;
                tx.remove_merchant(&merchant, now)?;
                of_merchant(audit, &merchant).append(tx, now)?;
                Ok(())
            })
            .await
    }

    /// Built-in roles first, then custom ones by name.
    pub fn list_roles(
        &self,
        principal: &Principal,
        page: &PageRequest,
    ) -> Result<Page<(String, bool)>, Error> {
        if !principal.scope().manages() {
            return Err(Error::Forbidden);
        }
        let mut roles: Vec<(String, bool)> = super::accounts::BUILTIN_ROLES
            .iter()
            .map(|r| (r.to_string(), true))
            .collect();
        roles.extend(
            self.store
                .read()?
                .custom_roles()?
                .into_iter()
                .map(|r| (r.name, false)),
        );
        page.in_memory(roles)
    }

    pub async fn create_role(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<CustomRole, Error> {
        if principal.scope() != Scope::All {
            return Err(Error::Forbidden);
        }
        let now = self.clock.now();
        let role = CustomRole {
            name: parse_role_name(name)?,
            created_at: now,
        };
        let audit = self
            .actor_entry(principal, "role_created", Outcome::Success)?
            .target(role.name.clone());
        let stored = role.clone();
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let existing = tx.custom_roles()?;
                if existing
                    .iter()
                    .any(|r| r.name.eq_ignore_ascii_case(&stored.name))
                {
                    return Err(Error::Conflict("this role exists".into()));
                }
                if existing.len() >= MAX_CUSTOM_ROLES {
                    return Err(Error::Conflict(format!(
                        "there are already {MAX_CUSTOM_ROLES} custom roles; delete one first"
                    )));
                }
                tx.put_custom_role(&stored)?;
                audit.append(tx, now)?;
                Ok(())
            })
            .await?;
        Ok(role)
    }

    pub async fn delete_role(&self, principal: &Principal, name: &str) -> Result<(), Error> {
        if principal.scope() != Scope::All {
            return Err(Error::Forbidden);
        }
        if is_builtin(&name.to_ascii_lowercase()) {
            return Err(Error::Conflict(format!("{name} is a built-in role")));
        }
        let now = self.clock.now();
        let asked = name.to_string();
        let audit = self.actor_entry(principal, "role_deleted", Outcome::Success)?;
        let actor = principal.clone();
        let default_role = self.external.default_role.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let name =
                    resolve_role(&tx.custom_roles()?, &asked).ok_or(Error::NotFound("role"))?;
                let audit = audit.target(name.clone());
                if role_matches(&name, &default_role) {
                    return Err(Error::Conflict(EXTERNAL_DEFAULT.into()));
                }
                let mut used = false;
                tx.scan_accounts(None, 0, |a| {
                    used = holds(&a.roles, &name);
                    !used
                })?;
                if used {
                    return Err(Error::Conflict(
                        "the role is held by at least one account".into(),
                    ));
                }
                tx.remove_custom_role(&name)?;
                audit.append(tx, now)?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_match_by_one_rule() {
        let check = |stored: &str, asked: &str, expected: bool| {
            assert_eq!(role_matches(stored, asked), expected, "{stored} ~ {asked}");
        };
        // Custom names of the role form: any ASCII case.
        check("Support-Team", "support-team", true);
        check("support-team", "SUPPORT-TEAM", true);
        check("Support-Team", "Support-Teams", false);
        // Built-in names match only themselves, exactly; a custom role a
        // store made before the form, spelled like one, never stands for
        // it, nor it for that role.
        check("admin", "admin", true);
        check("Admin", "admin", false);
        check("admin", "Admin", false);
        check("Admin", "Admin", true);
        check("RESELLER", "reseller", false);
        // Names outside the form match by their exact text only.
        check("Night Lead", "Night Lead", true);
        check("Night Lead", "night lead", false);
        check("ａｄｍｉｎ", "admin", false);
        check("аdmin", "admin", false);
        assert!(holds(
            &["user".into(), "Support-Team".into()],
            "support-team"
        ));
        assert!(!holds(&["Admin".into()], "admin"));
    }
}
