//! The browser console's sessions: an opaque session (the same records,
//! revocation and per-request account checks as every opaque token),
//! signed in through the same password check, lockout, rate limits and
//! hashing pool as every login, and a CSRF token bound to it.
//!
//! The CSRF token is derived from the session token rather than stored:
//! `base64url(SHA-256("latchkey console csrf\0" || session token))`. The
//! page gets it in the sign-in answer and sends it back in a header; the
//! server recomputes it from the cookie. Knowing it reveals nothing about
//! the cookie (a preimage), and it dies with the session.
//!
//! A console session is marked as one in its record (`Session::console`),
//! and only the console's sign-in opens one: its token is taken from the
//! console's cookie and nowhere else, and no other token is taken from that
//! cookie. It lasts [`ConsoleRules::lifetime`] from its sign-in (its
//! `expires_at`), and ends at the first request after more than
//! [`ConsoleRules::idle_timeout`] without one: that request revokes it like
//! any revoked session, with a `session_expired` audit entry. The last
//! activity is kept in memory, exact to the second, and written to the
//! session's `last_used_at` at most once a minute
//! ([`ACTIVITY_WRITE_INTERVAL`]), so a request costs no store write while a
//! restart still finds the idle clock where it was, give or take that
//! minute (to the safe side: a session may end up to a minute early after a
//! restart, never late).
//!
//! Sensitive actions ask [`Core::require_recent_password`]: a console
//! session must have had its password entered (its sign-in, or
//! `Core::console_reauth`) within [`ConsoleRules::reauth_window`]. A
//! bearer credential is not held to it; see ARCHITECTURE.md ("The
//! console's session") for why.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::accounts::LoginId;
use super::auth::{CredentialKind, Principal, actor_still_valid};
use super::secrets::{b64, digest};
use super::sessions::SessionRequest;
use super::{AuditEntry, ClientInfo, Core, Document, Error, Outcome};
use crate::store::{Account, Session};

/// The audit detail of a console sign-in.
const VIA: &str = "console";

/// Domain separation of the CSRF derivation.
const CSRF_CONTEXT: &[u8] = b"latchkey console csrf\0";

/// The most often a console session's last activity is written to the
/// store, seconds: an active console costs one small write a minute, not
/// one a request.
pub const ACTIVITY_WRITE_INTERVAL: i64 = 60;

/// The most console sessions whose activity is held in memory; past it, a
/// session's idle clock is the stored one (to the minute, ending it up to
/// a minute early, never late).
const MAX_TRACKED: usize = 100_000;

/// The console sessions' limits (settings `console_idle_timeout`,
/// `console_session_lifetime`, `console_reauth_window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleRules {
    /// Seconds without a console request after which the session ends.
    pub idle_timeout: i64,
    /// Seconds from sign-in after which the session ends, however active.
    pub lifetime: i64,
    /// Seconds after a password entry within which the session may take
    /// sensitive actions.
    pub reauth_window: i64,
}

impl Default for ConsoleRules {
    fn default() -> ConsoleRules {
        ConsoleRules {
            idle_timeout: 30 * 60,
            lifetime: 12 * 3600,
            reauth_window: 10 * 60,
        }
    }
}

/// What the domain keeps of console sessions in memory.
#[derive(Default)]
pub(crate) struct ConsoleState {
    /// The limits in force (set once at start).
    rules: ConsoleRules,
    /// Session id -> its activity as this process saw it.
    seen: Mutex<HashMap<Uuid, Seen>>,
}

/// One console session's activity.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Its last request (Unix seconds).
    last: i64,
    /// The last activity written to the store, or being written.
    written: i64,
    /// Its end, after which the entry is dropped.
    expires_at: i64,
}

impl ConsoleState {
    /// The limits in force.
    pub(crate) fn rules(&self) -> ConsoleRules {
        self.rules
    }

    /// The last activity of `session`: the later of what this process saw
    /// and what the store holds.
    fn last_activity(&self, session: &Session) -> i64 {
        let held = self
            .seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(&session.id).map(|s| s.last));
        held.unwrap_or(session.last_used_at)
            .max(session.last_used_at)
    }

    /// Whether `session`, a console session, has been idle too long at
    /// `now`.
    pub(crate) fn is_idle(&self, session: &Session, now: i64) -> bool {
        now.saturating_sub(self.last_activity(session)) > self.rules.idle_timeout
    }

    /// Records a request of `session` at `now`; true when its activity is
    /// due to be written (the store's is a minute old or more), and then
    /// taken as written, so concurrent requests write it once.
    fn touch(&self, session: &Session, now: i64) -> bool {
        let stored = session.last_used_at;
        let Ok(mut seen) = self.seen.lock() else {
            return now - stored >= ACTIVITY_WRITE_INTERVAL;
        };
        if !seen.contains_key(&session.id) && seen.len() >= MAX_TRACKED {
            return now - stored >= ACTIVITY_WRITE_INTERVAL;
        }
        let entry = seen.entry(session.id).or_insert(Seen {
            last: stored,
            written: stored,
            expires_at: session.expires_at,
        });
        entry.last = entry.last.max(now);
        entry.written = entry.written.max(stored);
        let due = now - entry.written >= ACTIVITY_WRITE_INTERVAL;
        if due {
            entry.written = now;
        }
        due
    }

    /// Forgets an ended session.
    fn forget(&self, session: Uuid) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(&session);
        }
    }

    /// Drops the sessions that have ended or are idle past the timeout
    /// (the store's activity is never later than what is dropped, so their
    /// next request finds them idle all the same).
    pub(crate) fn prune(&self, now: i64) {
        let idle = self.rules.idle_timeout;
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, s| s.expires_at > now && now.saturating_sub(s.last) <= idle);
        }
    }

    /// How many sessions are held (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// A console session just opened.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The opaque session token, for the cookie only.
    pub token: String,
    /// The CSRF token the page sends back with every change.
    pub csrf: String,
    /// The account as the session saw it.
    pub account: Account,
    /// When the session ends (Unix seconds).
    pub expires_at: i64,
}

impl Core {
    /// Signs in to the console: the password check every login goes
    /// through (its lockout, limits and failure audit speak of the
    /// canonical document, whose words the console's routes share), then
    /// an opaque session with a `login` entry whose detail is `console`.
    pub async fn console_sign_in(
        self: &Arc<Self>,
        identifier: &LoginId,
        password: &str,
        client: &ClientInfo,
    ) -> Result<ConsoleSession, Error> {
        let account = self
            .check_login_password(identifier, password, client, Document::V1)
            .await?;
        let issued = self
            .open_session(
                &account,
                SessionRequest::console(),
                client,
                AuditEntry::new("login", Outcome::Success)
                    .actor_account(&account)
                    .client(client)
                    .detail(VIA),
            )
            .await?;
        let token = issued
            .access_token
            .ok_or_else(|| Error::Internal("opaque session without a token".into()))?;
        Ok(ConsoleSession {
            csrf: csrf_token(&token),
            token,
            account: issued.account,
            expires_at: issued.session.expires_at,
        })
    }
}

impl Core {
    /// Sets the console sessions' limits (at start, before serving).
    pub fn set_console_rules(&mut self, rules: ConsoleRules) {
        self.console.rules = rules;
    }

    /// Authenticates the console's cookie: an opaque token whose session
    /// is a console session (no other session's token is taken from the
    /// cookie), live, within its lifetime, its account able to act, and
    /// not idle past the timeout. An idle session is revoked here, by the
    /// request that finds it idle, and refused like any revoked one. Every
    /// failure is [`Error::Unauthenticated`]. Reported to the observer
    /// once, as [`Core::authenticate`] does.
    pub async fn authenticate_console(
        self: &Arc<Self>,
        token: &str,
        client_ip: IpAddr,
    ) -> Result<Principal, Error> {
        let result = self.console_principal(token, client_ip).await;
        let accepted = match &result {
            Ok(_) => Ok(true),
            Err(Error::Unauthenticated) => Ok(false),
            Err(_) => Err(()),
        };
        self.observe
            .observer()
            .authenticated(Some(CredentialKind::OpaqueToken), accepted);
        result
    }

    async fn console_principal(
        self: &Arc<Self>,
        token: &str,
        client_ip: IpAddr,
    ) -> Result<Principal, Error> {
        let (principal, session) = self.opaque_session(token, client_ip)?;
        if !session.console {
            return Err(Error::Unauthenticated);
        }
        let now = self.clock.now();
        if self.console.is_idle(&session, now) {
            self.end_idle(&session, &principal, now).await?;
            return Err(Error::Unauthenticated);
        }
        if self.console.touch(&session, now) {
            self.write_activity(session.id, now).await;
        }
        Ok(principal)
    }

    /// Revokes a console session found idle, with a `session_expired`
    /// audit entry (once, however many requests find it so).
    async fn end_idle(
        self: &Arc<Self>,
        session: &Session,
        principal: &Principal,
        now: i64,
    ) -> Result<(), Error> {
        self.console.forget(session.id);
        let idle = self.console.rules.idle_timeout;
        let audit = AuditEntry::new("session_expired", Outcome::Success)
            .actor(principal.actor_id(), principal.name.clone())
            .client_ip(principal.client_ip)
            .detail(format!("console session idle for more than {idle} seconds"));
        let revocations = self.revocations_handle();
        let sid = session.id;
        self.store
            .write_async(move |tx| {
                let Some(mut s) = tx.session(sid)? else {
                    return Ok(());
                };
                if s.revoked_at.is_some() {
                    return Ok(());
                }
                revocations.revoke_in(tx, &mut s, "idle timeout", now)?;
                let audit = match tx.account(s.account)? {
                    Some(a) => audit.tenant_of(&a),
                    None => audit,
                };
                audit.target(sid.to_string()).append(tx, now)?;
                Ok::<_, Error>(())
            })
            .await
    }

    /// Writes a console session's last activity (never backwards, never
    /// into a revoked session). A failure is logged, not the request's:
    /// the idle clock in memory goes on, and the stored one only lags,
    /// which after a restart ends the session early rather than late.
    async fn write_activity(&self, session: Uuid, now: i64) {
        let result = self
            .store
            .write_async(move |tx| {
                if let Some(mut s) = tx.session(session)?
                    && s.revoked_at.is_none()
                    && s.last_used_at < now
                {
                    s.last_used_at = now;
                    tx.put_session(&s)?;
                }
                Ok::<_, Error>(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record a console session's activity");
        }
    }

    /// Whether a session is live at `now`: not revoked, not over, and for
    /// a console session not idle past the timeout (what the lists of
    /// sessions show).
    pub(crate) fn session_is_live(&self, session: &Session, now: i64) -> bool {
        session.revoked_at.is_none()
            && session.expires_at > now
            && !(session.console && self.console.is_idle(session, now))
    }

    /// Refuses a sensitive action (granting admin, deleting accounts,
    /// rotating signing keys, creating keys or S2S tokens) from a console
    /// session whose password was not entered within the reauth window
    /// ([`Error::ReauthRequired`]). The one place every sensitive action
    /// asks. A bearer credential (an access token, an API key, an S2S
    /// token, a token-document opaque token) is not held to it: it is a
    /// program's, never sent by a browser on its own, and has no password
    /// to enter; a console session cannot turn itself into one without
    /// passing this check first (making keys and S2S tokens ask it), and
    /// its own token is no bearer credential.
    pub fn require_recent_password(&self, principal: &Principal) -> Result<(), Error> {
        let (CredentialKind::OpaqueToken, Some(sid)) = (principal.kind, principal.session) else {
            return Ok(());
        };
        let session = self
            .store
            .read()?
            .session(sid)?
            .ok_or(Error::Unauthenticated)?;
        if !session.console {
            return Ok(());
        }
        let now = self.clock.now();
        match session.password_at {
            Some(at) if now.saturating_sub(at) <= self.console.rules.reauth_window => Ok(()),
            _ => Err(Error::ReauthRequired),
        }
    }

    /// Re-authenticates a console session: the password is checked as
    /// every password is (the same rate limits, lockout, hashing pool and
    /// failure audit as a sign-in), then the session is stamped, with a
    /// `reauth` audit entry. Returns until when sensitive actions are
    /// allowed (Unix seconds). A credential that is not a console session
    /// has nothing to stamp ([`Error::Forbidden`]).
    pub async fn console_reauth(
        self: &Arc<Self>,
        principal: &Principal,
        password: &str,
        client: &ClientInfo,
    ) -> Result<i64, Error> {
        let (CredentialKind::OpaqueToken, Some(sid), Some(account)) =
            (principal.kind, principal.session, principal.account)
        else {
            return Err(Error::Forbidden);
        };
        if !self.store.read()?.session(sid)?.is_some_and(|s| s.console) {
            return Err(Error::Forbidden);
        }
        let account = self
            .check_current_password(account, password, client)
            .await?;
        let now = self.clock.now();
        let audit = self
            .actor_entry(principal, "reauth", Outcome::Success)?
            .client(client)
            .detail(VIA);
        let actor = principal.clone();
        let window = self.console.rules.reauth_window;
        self.store
            .write_async(move |tx| {
                actor_still_valid(tx, &actor, now)?;
                let mut s = tx
                    .session(sid)?
                    .filter(|s| s.console)
                    .ok_or(Error::Unauthenticated)?;
                s.password_at = Some(now);
                s.last_used_at = s.last_used_at.max(now);
                tx.put_session(&s)?;
                audit
                    .tenant_of(&account)
                    .target(sid.to_string())
                    .append(tx, now)?;
                Ok(now + window)
            })
            .await
    }
}

/// The CSRF token bound to a console session token.
pub fn csrf_token(session_token: &str) -> String {
    let mut input = Vec::with_capacity(CSRF_CONTEXT.len() + session_token.len());
    input.extend_from_slice(CSRF_CONTEXT);
    input.extend_from_slice(session_token.as_bytes());
    b64(&digest(&input))
}

/// Whether `presented` is the CSRF token of `session_token`, compared in
/// constant time.
pub fn csrf_matches(session_token: &str, presented: &str) -> bool {
    let want = csrf_token(session_token);
    want.len() == presented.len() && bool::from(want.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console_session(last_used_at: i64, expires_at: i64) -> Session {
        Session {
            id: Uuid::new_v4(),
            account: Uuid::new_v4(),
            kind: crate::store::SessionKind::Opaque,
            role: None,
            created_at: 0,
            last_used_at,
            expires_at,
            refresh_generation: 0,
            refresh_expires_at: None,
            access_until: expires_at,
            revoked_at: None,
            revoked_reason: None,
            client_ip: String::new(),
            user_agent: String::new(),
            console: true,
            password_at: Some(0),
        }
    }

    /// Requests within a minute of the last write ask for no write; the
    /// first a minute on asks for one, once; the idle clock is the later
    /// of memory and store; and housekeeping drops what has ended or gone
    /// idle, so the map holds live sessions only.
    #[test]
    fn activity_is_written_once_a_minute_and_pruned() {
        let state = ConsoleState::default();
        let s = console_session(1000, 1000 + 12 * 3600);
        assert!(!state.touch(&s, 1030));
        assert!(!state.touch(&s, 1059));
        assert!(state.touch(&s, 1060));
        assert!(
            !state.touch(&s, 1061),
            "a concurrent request writes nothing"
        );
        assert!(!state.is_idle(&s, 1061 + 1800));
        assert!(state.is_idle(&s, 1062 + 1800));
        let other = console_session(1000, 1100);
        state.touch(&other, 1001);
        assert_eq!(state.len(), 2);
        state.prune(1100);
        assert_eq!(state.len(), 1);
        state.prune(1062 + 1800);
        assert_eq!(state.len(), 0);
        // What was dropped is no younger in the store: still idle.
        assert!(state.is_idle(&s, 1062 + 1800));
    }

    /// Each session has its own token, and only it matches.
    #[test]
    fn csrf_is_bound_to_the_session() {
        let a = csrf_token("lk_ot_a");
        assert_ne!(a, csrf_token("lk_ot_b"));
        assert!(csrf_matches("lk_ot_a", &a));
        assert!(!csrf_matches("lk_ot_b", &a));
        assert!(!csrf_matches("lk_ot_a", ""));
        assert!(!csrf_matches("lk_ot_a", &a[..a.len() - 1]));
    }
}
