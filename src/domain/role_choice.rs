//! Choosing one role of a multi-role account (`account-roles-token.txt`).
//!
//! Read literally, that document's `POST /api/account/token` hands a token
//! to anyone who knows an account id. latchkey issues one only to a caller
//! that proved the login:
//!
//! - a caller holding a valid token of a sign-in of the same account (role
//!   switching with `Authorization: Bearer`), or
//! - a caller that passed `POST /api/account/roles` for that account less
//!   than [`GRANT_SECONDS`] ago, from the same client address and with the
//!   same User-Agent. The documented clients make the two calls back to
//!   back from one place, so they keep working unchanged; someone who only
//!   learned the account id, from anywhere else, gets nothing.
//!
//! A grant opens one session on its first use; later choices within the
//! grant's life sign tokens in that same session, so a logout or a
//! revocation ends every token the grant produced.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use uuid::Uuid;

use super::auth::Principal;
use super::secrets::digest;
use super::sessions::SessionRequest;
use super::{AuditEntry, ClientInfo, Core, Error, Outcome};
use crate::store::{Account, SessionKind};

/// How long after `/api/account/roles` a role may be chosen without a token.
pub const GRANT_SECONDS: i64 = 120;
/// Most grants held at once; the oldest go first past this.
const MAX_GRANTS: usize = 100_000;

/// Who a grant is for: the account, the client address, and a digest of
/// the User-Agent.
#[derive(Hash, PartialEq, Eq, Clone)]
struct GrantKey {
    account: Uuid,
    ip: IpAddr,
    agent: [u8; 32],
}

#[derive(Clone, Copy)]
struct Grant {
    expires_at: i64,
    /// The session opened by the first choice.
    session: Option<Uuid>,
    /// The account's `sessions_epoch` when the password was proved: a
    /// grant is a login in two steps, so a revoke-all or password change
    /// in between refuses its session as it refuses a login in flight.
    epoch: u64,
}

/// Live grants.
#[derive(Default)]
pub struct RoleGrants {
    grants: Mutex<HashMap<GrantKey, Grant>>,
}

impl RoleGrants {
    fn key(account: Uuid, client: &ClientInfo) -> GrantKey {
        GrantKey {
            account,
            ip: client.ip,
            agent: digest(client.user_agent.as_bytes()),
        }
    }

    fn give(&self, account: Uuid, epoch: u64, client: &ClientInfo, now: i64) {
        let Ok(mut grants) = self.grants.lock() else {
            return;
        };
        if grants.len() >= MAX_GRANTS {
            grants.retain(|_, g| g.expires_at > now);
        }
        if grants.len() >= MAX_GRANTS {
            // Still full of live grants: a flood. Forget them all rather
            // than grow; their holders log in again.
            grants.clear();
        }
        // A new proof is a new login: its first choice opens a new session.
        // Carrying an earlier grant's session over would tie it to one that
        // may have been logged out of since, and no token could be had.
        grants.insert(
            Self::key(account, client),
            Grant {
                expires_at: now + GRANT_SECONDS,
                session: None,
                epoch,
            },
        );
    }

    fn find(&self, account: Uuid, client: &ClientInfo, now: i64) -> Option<Grant> {
        let grants = self.grants.lock().ok()?;
        grants
            .get(&Self::key(account, client))
            .copied()
            .filter(|g| g.expires_at > now)
    }

    fn bind(&self, account: Uuid, client: &ClientInfo, session: Uuid) {
        if let Ok(mut grants) = self.grants.lock()
            && let Some(g) = grants.get_mut(&Self::key(account, client))
        {
            g.session = Some(session);
        }
    }

    /// Forgets expired grants.
    pub fn prune(&self, now: i64) {
        if let Ok(mut grants) = self.grants.lock() {
            grants.retain(|_, g| g.expires_at > now);
        }
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
    /// does not hold (`Forbidden`).
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
        let session = match (
            by_token.and_then(|p| p.session),
            grant.and_then(|g| g.session),
        ) {
            (Some(sid), _) | (None, Some(sid)) => sid,
            (None, None) => {
                // Opened against the account as the grant's proof saw it:
                // a revoke-all or a password change since then refuses it
                // (and asks for a new proof), as it refuses a login.
                let mut proved = account.clone();
                if let Some(g) = grant {
                    proved.sessions_epoch = g.epoch;
                }
                let issued = self
                    .open_session(
                        &proved,
                        SessionRequest {
                            kind: SessionKind::Jwt,
                            role: None,
                            with_refresh: false,
                        },
                        client,
                        AuditEntry::new("login", Outcome::Success)
                            .actor_account(&account)
                            .client(client)
                            .detail("account-roles: role chosen"),
                    )
                    .await
                    .map_err(|e| match e {
                        Error::InvalidCredentials => Error::Unauthenticated,
                        other => other,
                    })?;
                if by_token.is_none() {
                    self.role_grants.bind(account_id, client, issued.session.id);
                }
                issued.session.id
            }
        };
        self.sign_for_role(&account, session, &role).await
    }
}
