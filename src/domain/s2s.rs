//! Server-to-server tokens: `s2s_` + a 16-character id + 43 characters of
//! secret, scoped to a reseller or a merchant. Each expires: after the
//! lifetime asked for at issuance, at most `s2s_max_ttl`, which is also
//! the lifetime of one issued without asking (and of tokens stored before
//! lifetimes existed, counted from their creation). Looked up on every
//! request, so a revoked or expired token is refused at once. Housekeeping
//! deletes a token an hour after it was revoked or expired; a deleted
//! token is refused exactly like a revoked one.
//!
//! A tenant (a token's merchant, else its reseller) holds at most
//! `max_s2s_tokens_per_tenant` live tokens and keeps at most twice that
//! many records; a reseller's whole tree (its own tokens and all its
//! merchants') holds at most twice the cap live and keeps at most four
//! times it. Both are checked where the token is stored (`s2s_room`), and
//! a reseller has at most `MAX_MERCHANTS_PER_RESELLER` merchants, so what
//! one reseller's managers can make the store, the list or a tenant's
//! deletion hold is bounded by the cap, not by how many merchants they
//! create. Issuance still reads every stored token (there is no
//! per-tenant index yet); that is left for the performance work.
//!
//! A token belongs to its tenant, not to the account that issued it: it
//! outlives that account (lists say whether the issuer still exists), and
//! a tenant cannot be deleted while it has live tokens. Only a sign-in's
//! token can issue one: an S2S token or an API key cannot, so credentials
//! cannot breed.
//!
//! Who may issue what:
//!
//! | caller | may issue |
//! | --- | --- |
//! | admin | any role, any existing reseller and merchant |
//! | reseller | `reseller`, `merchant`, `user` under its own reseller |
//! | merchant | `merchant`, `user` under its own merchant |
//! | anyone else | nothing |

use super::auth::{CredentialKind, Principal, actor_still_valid, split_secret};
use super::rbac::Scope;
use super::secrets::{b64, constant_time_eq, digest, random_id, random_token};
use super::{Core, Error, Outcome};
use crate::store::S2sToken;

/// Prefix of S2S tokens.
pub const PREFIX: &str = "s2s_";
/// Roles an S2S token may have.
pub const ROLES: [&str; 3] = ["reseller", "merchant", "user"];

/// Most records one page of the S2S list looks at (as the audit list's
/// `AUDIT_SCAN`); the cursor lets the client go on.
const S2S_SCAN: usize = 10_000;

/// An issuance request, as the document words it.
#[derive(Debug, Default)]
pub struct NewS2s {
    pub name: Option<String>,
    pub role: Option<String>,
    pub reseller_id: Option<String>,
    pub merchant_id: Option<String>,
    /// Lifetime in seconds, at most `s2s_max_ttl`; absent: `s2s_max_ttl`.
    pub expires_in: Option<u64>,
}

/// What a caller of one scope may issue: the table in this module's
/// documentation, as data. [`Core::issue_s2s`] refuses what it does not
/// allow, and [`Core::s2s_issuable`] shows it, so the console offers
/// exactly what issuance accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuable {
    /// The roles it may give a token, in [`ROLES`] order.
    pub roles: Vec<&'static str>,
    /// The one reseller its tokens must name; `None`: any reseller.
    pub reseller_id: Option<String>,
    /// The one merchant its tokens must name; `None`: any merchant of the
    /// reseller (that the caller can see).
    pub merchant_id: Option<String>,
}

impl Issuable {
    /// What `scope` may issue.
    pub fn of(scope: &Scope) -> Issuable {
        let (roles, reseller_id, merchant_id): (&[&'static str], _, _) = match scope {
            Scope::All => (&ROLES, None, None),
            Scope::Reseller(r) => (&ROLES, Some(r.clone()), None),
            Scope::Merchant { reseller, merchant } => (
                &["merchant", "user"],
                Some(reseller.clone()),
                Some(merchant.clone()),
            ),
            Scope::Own(_) | Scope::Nothing => (&[], None, None),
        };
        Issuable {
            roles: roles.to_vec(),
            reseller_id,
            merchant_id,
        }
    }

    /// Whether a token of `role` for this tenant is within it. A merchant
    /// outside the caller's sight is refused where the token is stored.
    fn allows(&self, role: &str, reseller_id: &str, merchant_id: Option<&str>) -> bool {
        self.roles.contains(&role)
            && self.reseller_id.as_deref().is_none_or(|r| r == reseller_id)
            && self
                .merchant_id
                .as_deref()
                .is_none_or(|m| merchant_id == Some(m))
    }
}

/// What the console's issuance form offers a caller.
#[derive(Debug, Clone)]
pub struct IssueOptions {
    /// The roles and tenants it may issue for (no roles for a credential
    /// that may not mint one: an API key, an S2S token).
    pub issuable: Issuable,
    /// The longest lifetime a token may be given, seconds.
    pub max_expires_in: i64,
}

/// An S2S token as the admin list shows it.
#[derive(Debug, Clone)]
pub struct ListedS2s {
    /// The stored token, with its effective expiry filled in.
    pub token: S2sToken,
    /// Whether the account that issued it still exists (false for tokens
    /// issued by something other than an account).
    pub issuer_exists: bool,
}

impl Core {
    pub(crate) fn authenticate_s2s(
        &self,
        token: &str,
        client_ip: std::net::IpAddr,
    ) -> Result<Principal, Error> {
        let id = split_secret(token, PREFIX).ok_or(Error::Unauthenticated)?;
        let record = self
            .store
            .current_s2s_token(id)?
            .ok_or(Error::Unauthenticated)?;
        if !constant_time_eq(
            b64(&digest(token.as_bytes())).as_bytes(),
            record.digest.as_bytes(),
        ) {
            return Err(Error::Unauthenticated);
        }
        let now = self.clock.now();
        if record.revoked_at.is_some() || self.s2s_expiry(&record) <= now {
            return Err(Error::Unauthenticated);
        }
        if self
            .s2s_usage
            .first_use(&record.id, record.last_used.is_none())
        {
            let id = record.id.clone();
            self.audit_in_background(
                super::AuditEntry::new("s2s_token_first_used", Outcome::Success)
                    .actor(format!("s2s:{}", record.id), record.name.clone())
                    .tenant(Some(record.reseller_id.clone()), record.merchant_id.clone())
                    .target(id.clone())
                    .client_ip(client_ip),
            );
            let store = self.store.clone();
            self.in_background(async move {
                let _ = store
                    .write_grouped(move |tx| {
                        if let Some(mut t) = tx.s2s_token(&id)?
                            && t.last_used.is_none()
                        {
                            t.last_used = Some(now);
                            tx.put_s2s_token(&t)?;
                        }
                        Ok(())
                    })
                    .await;
            });
        }
        Ok(Principal {
            kind: CredentialKind::S2s,
            account: None,
            session: None,
            credential_id: Some(record.id.clone()),
            name: record.name.clone(),
            role: record.role.clone(),
            roles: vec![record.role.clone()],
            reseller_id: Some(record.reseller_id.clone()),
            merchant_id: record.merchant_id.clone(),
            expires_at: Some(self.s2s_expiry(&record)),
            client_ip,
            from_query: false,
        })
    }

    /// When a token stops working: its own expiry, or, for a token stored
    /// before lifetimes existed, its creation plus the maximum lifetime.
    pub fn s2s_expiry(&self, token: &S2sToken) -> i64 {
        expiry(token, self.config.s2s_max_ttl)
    }

    /// Issues an S2S token, checking the caller's credential (403: an S2S
    /// token or API key issues nothing), the request's shape (422), the
    /// caller's right to issue at that scope (403), then, inside the write
    /// transaction that stores the token, that the tenants exist and fit
    /// together (422), so a tenant deleted meanwhile leaves no orphan.
    pub async fn issue_s2s(
        &self,
        principal: &Principal,
        request: NewS2s,
    ) -> Result<(S2sToken, String), Error> {
        principal.may_mint()?;
        // A bearer credential is not held to the console's password window:
        // a console session must pass it to make one.
        self.require_recent_password(principal)?;
        let name = request
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty() && n.chars().count() <= 100)
            .ok_or_else(|| Error::invalid("name", "name is required (1 to 100 characters)"))?;
        // The tenant document's enum, spelt exactly: never a custom role,
        // so the role-name rule of `tenants` does not apply.
        let role = request
            .role
            .filter(|r| ROLES.contains(&r.as_str()))
            .ok_or_else(|| Error::invalid("role", "role must be reseller, merchant or user"))?;
        let reseller_id = request
            .reseller_id
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::invalid("reseller_id", "reseller_id is required"))?;
        let requested_merchant = request.merchant_id.filter(|m| !m.is_empty());
        let merchant_id = if role == "reseller" {
            None
        } else {
            Some(requested_merchant.clone().ok_or_else(|| {
                Error::invalid(
                    "merchant_id",
                    "merchant_id is required for merchant and user tokens",
                )
            })?)
        };
        let max_ttl = self.config.s2s_max_ttl;
        let now = self.clock.now();
        let lifetime = match request.expires_in {
            None => max_ttl,
            Some(secs) => i64::try_from(secs)
                .ok()
                .filter(|s| (1..=max_ttl).contains(s))
                .ok_or_else(|| {
                    Error::invalid(
                        "expires_in",
                        format!("expires_in must be between 1 and {max_ttl} seconds"),
                    )
                })?,
        };
        let expires_at = now
            .checked_add(lifetime)
            .ok_or_else(|| Error::invalid("expires_in", "expires_in is too large"))?;

        let scope = principal.scope();
        if !Issuable::of(&scope).allows(&role, &reseller_id, merchant_id.as_deref()) {
            return Err(Error::Forbidden);
        }

        let id = random_id(16);
        let secret = format!("{PREFIX}{id}{}", random_token());
        let token = S2sToken {
            id: id.clone(),
            name,
            role,
            reseller_id,
            merchant_id,
            digest: b64(&digest(secret.as_bytes())),
            created_at: now,
            created_by: principal.actor_id(),
            expires_at: Some(expires_at),
            revoked_at: None,
            last_used: None,
        };
        let stored = token.clone();
        let audit = self
            .actor_entry(principal, "s2s_token_created", Outcome::Success)?
            .tenant(Some(token.reseller_id.clone()), token.merchant_id.clone())
            .target(id)
            .detail(format!("name: {}", token.name));
        let actor = principal.clone();
        let cap = self.config.max_s2s_tokens_per_tenant;
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                // Checked here, where a tenant's deletion cannot slip in
                // between the check and the write: deleting a tenant is
                // refused while it has a live token, and this transaction
                // sees every deletion committed before it.
                if tx.reseller(&stored.reseller_id)?.is_none() {
                    return Err(Error::invalid("reseller_id", "unknown reseller_id"));
                }
                // A merchant_id given with a reseller token is not kept on
                // the token, but like any other it must exist under that
                // reseller.
                if let Some(m) = &requested_merchant {
                    // A merchant the caller cannot see reads exactly like
                    // one that does not exist, so the answer confirms
                    // nothing.
                    match tx.merchant(m)?.filter(|found| scope.covers_merchant(found)) {
                        None => return Err(Error::invalid("merchant_id", "unknown merchant_id")),
                        Some(merchant) if merchant.reseller_id != stored.reseller_id => {
                            return Err(Error::invalid(
                                "merchant_id",
                                "the merchant does not belong to that reseller",
                            ));
                        }
                        Some(_) => {}
                    }
                }
                s2s_room(tx, &stored, now, max_ttl, cap)?;
                tx.put_s2s_token(&stored)?;
                audit.append(tx, now)?;
                Ok::<_, Error>(())
            })
            .await?;
        Ok((token, secret))
    }

    /// What the caller may issue (managers only, like the list): the
    /// same [`Issuable`] that [`Core::issue_s2s`] checks, empty for a
    /// credential that may not mint one.
    pub fn s2s_issuable(&self, principal: &Principal) -> Result<IssueOptions, Error> {
        let scope = principal.scope();
        if !scope.manages() {
            return Err(Error::Forbidden);
        }
        let issuable = match principal.may_mint() {
            Ok(()) => Issuable::of(&scope),
            Err(_) => Issuable::of(&Scope::Nothing),
        };
        Ok(IssueOptions {
            issuable,
            max_expires_in: self.config.s2s_max_ttl,
        })
    }

    /// S2S tokens in the caller's scope, in id order after `after`, with
    /// the cursor of the next page. One page looks at most `S2S_SCAN`
    /// records, so a narrow scope cannot make a page read the whole table:
    /// a page may then hold fewer than `limit` tokens (even none) and a
    /// cursor that goes on from where the scan stopped.
    pub fn list_s2s(
        &self,
        principal: &Principal,
        page: &super::PageRequest,
    ) -> Result<super::Page<ListedS2s>, Error> {
        let (after, limit) = (page.after_id(), page.limit());
        let scope = principal.scope();
        if !scope.manages() {
            return Err(Error::Forbidden);
        }
        let tx = self.store.read()?;
        let (tokens, next) = tx.s2s_tokens_after(
            after,
            |t| scope.covers_tenant(Some(&t.reseller_id), t.merchant_id.as_deref()),
            limit,
            S2S_SCAN,
        )?;
        let mut items = Vec::with_capacity(tokens.len());
        for mut token in tokens {
            let issuer_exists = match uuid::Uuid::parse_str(&token.created_by) {
                Ok(id) => tx.account(id)?.is_some(),
                Err(_) => false,
            };
            token.expires_at = Some(self.s2s_expiry(&token));
            items.push(ListedS2s {
                token,
                issuer_exists,
            });
        }
        Ok(super::Page { items, next })
    }

    /// Revokes an S2S token in the caller's scope; from the next request on
    /// it is refused.
    pub async fn revoke_s2s(&self, principal: &Principal, id: &str) -> Result<S2sToken, Error> {
        let scope = principal.scope();
        if !scope.manages() {
            return Err(Error::Forbidden);
        }
        let now = self.clock.now();
        let id = id.to_string();
        let audit = self.actor_entry(principal, "s2s_token_revoked", Outcome::Success)?;
        let actor = principal.clone();
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let mut token = tx
                    .s2s_token(&id)?
                    .filter(|t| scope.covers_tenant(Some(&t.reseller_id), t.merchant_id.as_deref()))
                    .ok_or(Error::NotFound("S2S token"))?;
                if token.revoked_at.is_none() {
                    token.revoked_at = Some(now);
                    tx.put_s2s_token(&token)?;
                    audit
                        .tenant(Some(token.reseller_id.clone()), token.merchant_id.clone())
                        .target(token.id.clone())
                        .detail(format!("name: {}", token.name))
                        .append(tx, now)?;
                }
                Ok(token)
            })
            .await
    }
}

/// Whether `token`'s tenant, and its reseller's whole tree, have room for
/// it, checked in the write that stores it so two issuances cannot both
/// take the last place. A token's tenant is its merchant if it has one,
/// else its reseller: a merchant's tokens do not count against its
/// reseller's own places, so one merchant's manager cannot exhaust the
/// places of the reseller's other merchants.
///
/// Per tenant, two bounds, both refused with `Conflict`: at most `cap`
/// live tokens (neither revoked nor expired), so revoking or letting one
/// expire frees a place; and at most twice `cap` records kept, live or
/// ended less than `super::RECORD_GRACE` ago, so issuing and revoking in a
/// loop cannot grow the store faster than housekeeping deletes.
///
/// Per reseller tree (the reseller's own tokens and all its merchants'),
/// the same two bounds at twice the tenant's: at most `2 * cap` live and
/// `4 * cap` kept. Merchants are tenants of their own and a reseller's
/// manager creates them, so without this a tree would hold merchants x
/// `cap` live tokens; with it, what one reseller's managers can make the
/// store hold does not grow with its merchants. The tree's places are
/// shared: its merchants together may use them all.
///
/// Records ended longer ago than the grace are deleted here, as
/// housekeeping would. With no per-tenant index this decodes every stored
/// token on every issuance; an index keyed by reseller (a schema change)
/// is left for the performance work.
fn s2s_room(
    tx: &mut crate::store::WriteTx,
    token: &S2sToken,
    now: i64,
    max_ttl: i64,
    cap: usize,
) -> Result<(), Error> {
    let same_tenant = |t: &S2sToken| match &token.merchant_id {
        Some(m) => t.merchant_id.as_ref() == Some(m),
        None => t.merchant_id.is_none() && t.reseller_id == token.reseller_id,
    };
    let (mut live, mut kept, mut stale) = (0usize, 0usize, Vec::new());
    let (mut tree_live, mut tree_kept) = (0usize, 0usize);
    // Keeps nothing in memory but the stale ids: the closure only counts.
    tx.s2s_tokens_after(
        "",
        |t| {
            if t.reseller_id == token.reseller_id {
                let ended = t.revoked_at.unwrap_or(i64::MAX).min(expiry(t, max_ttl));
                let (is_live, is_kept) = if ended > now {
                    (true, true)
                } else if ended.saturating_add(super::RECORD_GRACE) >= now {
                    (false, true)
                } else {
                    stale.push(t.id.clone());
                    (false, false)
                };
                tree_live += usize::from(is_live);
                tree_kept += usize::from(is_kept);
                if same_tenant(t) {
                    live += usize::from(is_live);
                    kept += usize::from(is_kept);
                }
            }
            false
        },
        usize::MAX,
        usize::MAX,
    )?;
    for id in &stale {
        tx.remove_s2s_token(id)?;
    }
    if live >= cap {
        return Err(Error::Conflict(format!(
            "this tenant already has {live} live S2S tokens, the most it may hold ({cap}); revoke one first"
        )));
    }
    if kept >= cap.saturating_mul(2) {
        return Err(Error::Conflict(format!(
            "this tenant has {kept} S2S tokens live or ended within the last hour, the most it may keep ({}); try again later",
            cap.saturating_mul(2)
        )));
    }
    if tree_live >= cap.saturating_mul(2) {
        return Err(Error::Conflict(format!(
            "this reseller and its merchants already have {tree_live} live S2S tokens, the most they may hold together ({}); revoke one first",
            cap.saturating_mul(2)
        )));
    }
    if tree_kept >= cap.saturating_mul(4) {
        return Err(Error::Conflict(format!(
            "this reseller and its merchants have {tree_kept} S2S tokens live or ended within the last hour, the most they may keep together ({}); try again later",
            cap.saturating_mul(4)
        )));
    }
    Ok(())
}

/// When `token` stops working, given the configured `s2s_max_ttl`.
pub(crate) fn expiry(token: &S2sToken, max_ttl: i64) -> i64 {
    token
        .expires_at
        .unwrap_or_else(|| token.created_at.saturating_add(max_ttl))
}

/// Remembers which S2S tokens were seen used, so "first used" is written
/// once per token and the store is not read-modify-written per request.
#[derive(Default)]
pub struct S2sUsage {
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl S2sUsage {
    /// True the first time an unused token is seen in this process.
    fn first_use(&self, id: &str, never_used: bool) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        seen.insert(id.to_string()) && never_used
    }
}
