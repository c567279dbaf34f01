//! Choosing one role of a multi-role account (`account-roles-token.txt`).
//!
//! Read literally, that document's `POST /api/account/token` hands a token
//! to anyone who knows an account id. latchkey issues one only to a caller
//! that proved the login:
//!
//! - a caller holding a valid token of a sign-in of the same account that
//!   carries the role chosen (role switching with `Authorization: Bearer`:
//!   a full sign-in's token carries every role of the account; a token
//!   narrowed to one role re-issues only that role), or
//! - a caller that passed `POST /api/account/roles` for that account less
//!   than [`GRANT_SECONDS`] ago, from the same client address and with the
//!   same User-Agent. The documented clients make the two calls back to
//!   back from one place, so they keep working unchanged; someone who only
//!   learned the account id, from anywhere else, gets nothing.
//!
//! A grant opens one session on its first use; later choices within the
//! grant's life sign tokens in that same session, so a logout or a
//! revocation ends every token the grant produced. The grant keeps the
//! account's `sessions_epoch` as it was when the password was proved, and
//! its session is opened against that view: a revoke-all, a disable, a role
//! or password change after the proof refuses it. An account holds at most
//! [`MAX_GRANTS_PER_ACCOUNT`] grants, and the table [`MAX_GRANTS`]; past
//! either bound the oldest goes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use uuid::Uuid;

use super::auth::Principal;
use super::secrets::digest;
use super::{AuditEntry, ClientInfo, Core, Document, Error, Outcome};
use crate::store::Account;

/// How long after `/api/account/roles` a role may be chosen without a token.
pub const GRANT_SECONDS: i64 = 120;
/// Most grants held at once; past this the oldest goes first.
const MAX_GRANTS: usize = 100_000;
/// Most grants one account holds at once (one per client address and
/// User-Agent); past this its oldest goes first, so one account cannot
/// fill the table by varying its User-Agent and push out everyone else's.
pub const MAX_GRANTS_PER_ACCOUNT: usize = 8;
/// The longest role name a choice may name, in characters; no role is
/// longer, so a longer one is refused before any other work.
const MAX_CHOSEN_ROLE_CHARS: usize = 64;

/// The role a `/api/account/token` request names, as the choice reads it
/// (without surrounding spaces), or `None` when it cannot name a role.
pub fn chosen_role(raw: &str) -> Option<&str> {
    let role = raw.trim();
    (!role.is_empty() && role.chars().count() <= MAX_CHOSEN_ROLE_CHARS).then_some(role)
}

#[derive(Clone, Copy)]
struct Grant {
    expires_at: i64,
    /// The account's `sessions_epoch` when the password was proved. A
    /// revoke-all, a disable, a role or password change raises it, and a
    /// grant from before any of them opens no session.
    epoch: u64,
    /// The session opened by the first choice.
    session: Option<Uuid>,
}

/// One grant and who it is for, beside the account it belongs to.
struct Held {
    /// The client address that proved the password.
    ip: IpAddr,
    /// A digest of that client's User-Agent.
    agent: [u8; 32],
    /// The grant itself.
    grant: Grant,
}

/// The grants, by account, each account's oldest first.
#[derive(Default)]
struct Book {
    /// Account id -> its grants, in the order they were given.
    by_account: HashMap<Uuid, Vec<Held>>,
    /// How many grants `by_account` holds in all.
    count: usize,
}

impl Book {
    fn recount(&mut self) {
        self.by_account.retain(|_, held| !held.is_empty());
        self.count = self.by_account.values().map(Vec::len).sum();
    }

    fn held(&mut self, account: Uuid, ip: IpAddr, agent: &[u8; 32]) -> Option<&mut Held> {
        self.by_account
            .get_mut(&account)?
            .iter_mut()
            .find(|h| h.ip == ip && h.agent == *agent)
    }
}

/// Live grants.
#[derive(Default)]
pub struct RoleGrants {
    book: Mutex<Book>,
}

impl RoleGrants {
    fn give(&self, account: Uuid, epoch: u64, client: &ClientInfo, now: i64) {
        self.give_within(MAX_GRANTS, account, epoch, client, now);
    }

    /// [`Self::give`] with the table's bound as a parameter, for the
    /// tests.
    fn give_within(&self, max: usize, account: Uuid, epoch: u64, client: &ClientInfo, now: i64) {
        let Ok(mut book) = self.book.lock() else {
            return;
        };
        let agent = digest(client.user_agent.as_bytes());
        // A new proof is a new login: it replaces this client's earlier
        // grant, and its first choice opens a new session. Carrying an
        // earlier grant's session over would tie it to one that may have
        // been logged out of since, and no token could be had.
        let mine = book.by_account.entry(account).or_default();
        let before = mine.len();
        mine.retain(|h| h.expires_at() > now && !(h.ip == client.ip && h.agent == agent));
        if mine.len() >= MAX_GRANTS_PER_ACCOUNT {
            let extra = mine.len() + 1 - MAX_GRANTS_PER_ACCOUNT;
            mine.drain(..extra);
        }
        let removed = before - mine.len();
        book.count = book.count.saturating_sub(removed);
        if book.count >= max {
            book.by_account
                .values_mut()
                .for_each(|held| held.retain(|h| h.expires_at() > now));
            book.recount();
        }
        if book.count >= max {
            // Still full of live grants: the oldest one goes, and its
            // holder proves the password again. Only a flood gets here, and
            // each grant in it cost a password hash.
            let oldest = book
                .by_account
                .iter()
                .filter_map(|(id, held)| held.first().map(|h| (h.expires_at(), *id)))
                .min();
            if let Some((_, id)) = oldest
                && let Some(held) = book.by_account.get_mut(&id)
                && !held.is_empty()
            {
                held.remove(0);
                book.count -= 1;
            }
        }
        book.by_account.entry(account).or_default().push(Held {
            ip: client.ip,
            agent,
            grant: Grant {
                expires_at: now + GRANT_SECONDS,
                epoch,
                session: None,
            },
        });
        book.count += 1;
    }

    fn find(&self, account: Uuid, client: &ClientInfo, now: i64) -> Option<Grant> {
        let mut book = self.book.lock().ok()?;
        book.held(account, client.ip, &digest(client.user_agent.as_bytes()))
            .map(|h| h.grant)
            .filter(|g| g.expires_at > now)
    }

    /// Records the session that `grant`'s first choice opened, if this
    /// client still holds that same grant: a new proof made while the
    /// session was opening (after a revoke-all, say) replaced it, and must
    /// not inherit a session opened under the old one.
    fn bind(&self, account: Uuid, client: &ClientInfo, grant: &Grant, session: Uuid) {
        if let Ok(mut book) = self.book.lock()
            && let Some(h) = book.held(account, client.ip, &digest(client.user_agent.as_bytes()))
            && h.grant.expires_at == grant.expires_at
            && h.grant.epoch == grant.epoch
            && h.grant.session.is_none()
        {
            h.grant.session = Some(session);
        }
    }

    /// Forgets expired grants.
    pub fn prune(&self, now: i64) {
        if let Ok(mut book) = self.book.lock() {
            book.by_account
                .values_mut()
                .for_each(|held| held.retain(|h| h.expires_at() > now));
            book.recount();
        }
    }
}

impl Held {
    fn expires_at(&self) -> i64 {
        self.grant.expires_at
    }
}

impl Core {
    /// Records that `client` just proved the password of `account`.
    pub fn grant_role_choice(&self, account: &Account, client: &ClientInfo) {
        self.role_grants
            .give(account.id, account.sessions_epoch, client, self.clock.now());
    }

    /// Issues an access token for one role of `account_id`, to a caller
    /// that proved the login (see the module documentation). Refusals, in
    /// order: over the address rate limit (`RateLimited`), a credential of
    /// another account (`Forbidden`), no such account (`NotFound`), no
    /// proof (`Unauthenticated`), disabled (`Disabled`), a role the account
    /// does not hold (`Forbidden`), a token that does not carry the role
    /// and no grant (`Forbidden`), a grant the account changed since
    /// (`Unauthenticated`).
    pub async fn token_for_role(
        self: &std::sync::Arc<Self>,
        account_id: Uuid,
        role: &str,
        client: &ClientInfo,
        bearer: Option<&Principal>,
    ) -> Result<String, Error> {
        self.check_rate(client, None)?;
        let now = self.clock.now();
        // A token of a sign-in of this account. An API key is no proof of a
        // login: it may be narrowed to one role or expire soon, and the
        // session a choice opens would outlive it.
        // A credential presented for another account (or for none, as an
        // S2S token) is refused whatever else the request carries: a grant
        // of the named account from the same address must not lend itself
        // to someone else's token.
        if bearer.is_some_and(|p| p.account != Some(account_id)) {
            return Err(Error::Forbidden);
        }
        // An id that names no account says so: account ids are random
        // UUIDs, so this tells nothing to someone guessing, and the proof
        // below is still required for one that exists.
        let account = self
            .store
            .read()?
            .account(account_id)?
            .ok_or(Error::NotFound("account"))?;
        let by_token = bearer.filter(|p| p.session.is_some());
        let grant = self.role_grants.find(account_id, client, now);
        if by_token.is_none() && grant.is_none() {
            return Err(Error::Unauthenticated);
        }
        if account.disabled {
            return Err(Error::Disabled);
        }
        // The role as the account holds it, named in any ASCII case.
        let Some(role) = account
            .roles
            .iter()
            .find(|r| super::tenants::role_matches(r, role))
            .cloned()
        else {
            return Err(Error::Forbidden);
        };
        // A token proves a choice only of a role it carries: a full
        // sign-in's token carries every role of the account, so switching
        // among them needs nothing more; a token narrowed to one role
        // re-issues that role, and reaching another takes the password
        // (`/api/account/roles`), or a narrowed token would outrank itself.
        let by_token = by_token.filter(|p| {
            p.roles
                .iter()
                .any(|r| super::tenants::role_matches(r, &role))
        });
        let session = match (by_token.and_then(|p| p.session), grant) {
            (Some(sid), _) => sid,
            // A token of this account, for a role it does not carry.
            (None, None) => return Err(Error::Forbidden),
            (None, Some(grant)) => match grant.session {
                Some(sid) => {
                    // The grant's session was opened against the account as
                    // proved; anything that raised the epoch since ends it.
                    if grant.epoch != account.sessions_epoch {
                        return Err(Error::Unauthenticated);
                    }
                    sid
                }
                None => {
                    // The session is opened against the account as it was
                    // when the password was proved, so a revoke-all, a
                    // disable, a role or password change since (each raises
                    // the epoch) refuses it; reading the epoch afresh here
                    // would compare the new one with itself.
                    let proved = Account {
                        sessions_epoch: grant.epoch,
                        ..account.clone()
                    };
                    let issued = self
                        .open_session(
                            &proved,
                            Document::AccountRolesToken.session(),
                            client,
                            AuditEntry::new("login", Outcome::Success)
                                .actor_account(&account)
                                .client(client)
                                .detail("account-roles: role chosen"),
                        )
                        .await
                        .map_err(|e| match e {
                            // The proof no longer holds: the caller proves
                            // the password again.
                            Error::InvalidCredentials => Error::Unauthenticated,
                            other => other,
                        })?;
                    self.role_grants
                        .bind(account_id, client, &grant, issued.session.id);
                    issued.session.id
                }
            },
        };
        self.sign_for_role(&account, session, &role).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(agent: &str) -> ClientInfo {
        ClientInfo {
            ip: IpAddr::from([192, 0, 2, 1]),
            user_agent: agent.to_string(),
        }
    }

    #[test]
    fn a_session_binds_only_to_the_grant_it_was_opened_under() {
        let grants = RoleGrants::default();
        let id = Uuid::new_v4();
        let sid = Uuid::new_v4();
        grants.give(id, 1, &client("a"), 1000);
        let first = grants.find(id, &client("a"), 1000).unwrap();
        // The same client proves its password again (after a revoke-all,
        // so with a new epoch) while the first choice's session opens.
        grants.give(id, 2, &client("a"), 1010);
        grants.bind(id, &client("a"), &first, sid);
        let now_held = grants.find(id, &client("a"), 1010).unwrap();
        assert_eq!(now_held.epoch, 2);
        assert_eq!(now_held.session, None);
        // The grant it was opened under takes it.
        grants.bind(id, &client("a"), &now_held, sid);
        assert_eq!(
            grants.find(id, &client("a"), 1010).unwrap().session,
            Some(sid)
        );
    }

    #[test]
    fn a_full_table_loses_its_oldest_grant_not_every_grant() {
        let grants = RoleGrants::default();
        let accounts: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        for (i, id) in accounts.iter().enumerate() {
            let at = i64::try_from(i).unwrap_or(0);
            grants.give_within(3, *id, 0, &client("a"), 1000 + at);
        }
        let now = 1004;
        let held: Vec<bool> = accounts
            .iter()
            .map(|id| grants.find(*id, &client("a"), now).is_some())
            .collect();
        assert_eq!(held, [false, true, true, true]);
    }

    #[test]
    fn one_account_holds_at_most_its_bound_and_loses_its_oldest_first() {
        let grants = RoleGrants::default();
        let id = Uuid::new_v4();
        let other = Uuid::new_v4();
        grants.give(other, 0, &client("other"), 1000);
        let agents: Vec<String> = (0..MAX_GRANTS_PER_ACCOUNT + 3)
            .map(|i| format!("agent {i}"))
            .collect();
        for agent in &agents {
            grants.give(id, 0, &client(agent), 1000);
        }
        let held = agents
            .iter()
            .filter(|a| grants.find(id, &client(a), 1001).is_some())
            .count();
        assert_eq!(held, MAX_GRANTS_PER_ACCOUNT);
        assert!(grants.find(id, &client(&agents[0]), 1001).is_none());
        assert!(
            grants
                .find(id, &client(&agents[agents.len() - 1]), 1001)
                .is_some()
        );
        // Another account's grant is untouched.
        assert!(grants.find(other, &client("other"), 1001).is_some());
        assert_eq!(
            grants.book.lock().map(|b| b.count).unwrap_or(0),
            MAX_GRANTS_PER_ACCOUNT + 1
        );
    }
}
