//! Sessions: opening one, rotating its refresh token, revoking it.
//!
//! Refresh tokens are opaque (`lk_rt_` and 256 random bits), stored as
//! SHA-256 digests, each pointing at its session and generation. A refresh
//! replaces the session's generation, so the previous token stops working;
//! presenting a token of an older generation again is reuse (RFC 9700
//! section 4.14) and revokes the whole session. The check and the rotation
//! happen inside one write transaction, and redb runs one writer at a time,
//! so two racing refreshes with the same token cannot both succeed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::auth::Principal;
use super::jwt::{AccessClaims, KeySet, LEEWAY_SECS};
use super::secrets::{digest, random_token};
use super::{AuditEntry, ClientInfo, Core, Document, Error, Outcome};
use crate::store::{Account, RefreshRecord, WriteTx};
/// A session as it is listed, and its kind.
pub use crate::store::{Session, SessionKind};

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "lk_rt_";
/// Prefix of opaque session tokens.
pub const OPAQUE_PREFIX: &str = "lk_ot_";

/// What kind of session to open.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// JWT or opaque.
    pub kind: SessionKind,
    /// Restrict the session's tokens to this one role.
    pub role: Option<String>,
    /// Hand out a refresh token too.
    pub with_refresh: bool,
    /// A console session: opaque, lasting the console's lifetime, with its
    /// password stamped at opening (see `domain::console`).
    pub console: bool,
}

impl SessionRequest {
    /// A JWT session that a refresh token renews (the canonical and the
    /// client documents' logins).
    pub fn jwt_with_refresh() -> SessionRequest {
        SessionRequest {
            kind: SessionKind::Jwt,
            role: None,
            with_refresh: true,
            console: false,
        }
    }

    /// A JWT session that ends with its access token (the tenant
    /// document's login, a chosen role).
    pub fn jwt() -> SessionRequest {
        SessionRequest {
            kind: SessionKind::Jwt,
            role: None,
            with_refresh: false,
            console: false,
        }
    }

    /// A session whose token is opaque (`lk_ot_`), looked up on each use
    /// (the token document).
    pub fn opaque() -> SessionRequest {
        SessionRequest {
            kind: SessionKind::Opaque,
            role: None,
            with_refresh: false,
            console: false,
        }
    }

    /// The console's session: opaque, and opened only by the console's
    /// sign-in, so no other sign-in's token is ever taken as one.
    pub(crate) fn console() -> SessionRequest {
        SessionRequest {
            console: true,
            ..SessionRequest::opaque()
        }
    }
}

/// Credentials issued to a client. Shown once; never stored in clear.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The session they belong to.
    pub session: Session,
    /// The access token: signed (JWT sessions) or opaque (`lk_ot_`).
    pub access_token: Option<String>,
    /// When the access token expires (Unix seconds).
    pub access_expires_at: i64,
    /// When they were issued: the `now` the expiries were counted from, so
    /// an answer's `expires_in` is the lifetime given, whatever second the
    /// answer is written in.
    pub issued_at: i64,
    /// The refresh token, when asked for.
    pub refresh_token: Option<String>,
    /// When the refresh token expires.
    pub refresh_expires_at: Option<i64>,
    /// The account as it was when the tokens were issued (read inside the
    /// same write transaction), which is what they carry.
    pub account: Account,
}

/// What a refresh attempt found, decided inside the write transaction.
enum RefreshOutcome {
    Rotated(Box<(Account, Issued)>),
    Reused,
    Refused,
}

impl Core {
    /// Signs an access token for `account` in `session`.
    fn sign_access(
        &self,
        account: &Account,
        session: &Session,
        role: Option<&str>,
        now: i64,
    ) -> Result<(String, i64), Error> {
        sign_with(
            &self.keys,
            account,
            session,
            role,
            now,
            self.config.access_ttl,
        )
    }

    /// The key set, for signing inside a write transaction.
    fn signer(&self) -> Arc<KeySet> {
        self.keys.clone()
    }

    /// Issues the tokens of `session` at `now` and records them in it:
    /// a new refresh generation when asked, and the latest access expiry.
    fn issue_into(
        &self,
        tx: &mut WriteTx,
        account: &Account,
        session: &mut Session,
        with_refresh: bool,
        now: i64,
    ) -> Result<Issued, Error> {
        let mut issued = Issued {
            session: session.clone(),
            access_token: None,
            access_expires_at: session.expires_at,
            issued_at: now,
            refresh_token: None,
            refresh_expires_at: None,
            account: account.clone(),
        };
        match session.kind {
            SessionKind::Jwt => {
                let (token, exp) = self.sign_access(account, session, None, now)?;
                session.access_until = session.access_until.max(exp);
                issued.access_token = Some(token);
                issued.access_expires_at = exp;
            }
            SessionKind::Opaque => {
                // One opaque token per session, valid for the session's life.
                let token = format!("{OPAQUE_PREFIX}{}", random_token());
                tx.put_opaque_token(&digest(token.as_bytes()), session.id)?;
                session.access_until = session.expires_at;
                issued.access_token = Some(token);
            }
        }
        if with_refresh {
            let token = format!("{REFRESH_PREFIX}{}", random_token());
            let expires_at = (now + self.config.refresh_ttl).min(session.expires_at);
            session.refresh_generation += 1;
            session.refresh_expires_at = Some(expires_at);
            tx.put_refresh_token(
                &digest(token.as_bytes()),
                &RefreshRecord {
                    session: session.id,
                    generation: session.refresh_generation,
                    expires_at,
                },
            )?;
            issued.refresh_token = Some(token);
            issued.refresh_expires_at = Some(expires_at);
        }
        session.last_used_at = now;
        tx.put_session(session)?;
        issued.session = session.clone();
        Ok(issued)
    }

    /// Opens a session for an account that just proved who it is, with its
    /// audit entry in the same transaction.
    ///
    /// `account` is the record as the caller read it before proving the
    /// login (which can take a while: a password hash, a provider's
    /// answer). The session is opened against the account as it is inside
    /// the write transaction: refused if it was deleted or disabled, or
    /// had every session revoked, meanwhile; refused if the session asks
    /// for a role the account no longer holds; otherwise its tokens carry
    /// the roles and tenant the account has now. A change committed after
    /// this transaction finds the session and revokes it, so a login in
    /// flight cannot escape a disable, a demotion or a revoke-all. A
    /// refusal commits one `login` failure entry in place of `audit`, so a
    /// proved login that opens no session is still recorded.
    pub async fn open_session(
        self: &std::sync::Arc<Self>,
        account: &Account,
        request: SessionRequest,
        client: &ClientInfo,
        audit: AuditEntry,
    ) -> Result<Issued, Error> {
        let now = self.clock.now();
        let mut session = Session {
            id: Uuid::new_v4(),
            account: account.id,
            kind: request.kind,
            role: request.role,
            created_at: now,
            last_used_at: now,
            expires_at: now
                + if request.console {
                    self.console.rules().lifetime
                } else {
                    self.config.session_ttl
                },
            refresh_generation: 0,
            refresh_expires_at: None,
            access_until: now,
            revoked_at: None,
            revoked_reason: None,
            client_ip: client.ip.to_string(),
            user_agent: client.user_agent.clone(),
            console: request.console,
            password_at: request.console.then_some(now),
        };
        let core = self.clone();
        let seen = account.clone();
        self.store
            .write_async(move |tx| {
                let checked = match tx.account(seen.id)? {
                    None => Err(("account deleted", Error::InvalidCredentials)),
                    Some(a) if a.disabled => Err(("account disabled", Error::Disabled)),
                    Some(a) if a.sessions_epoch != seen.sessions_epoch => {
                        Err(("account changed", Error::InvalidCredentials))
                    }
                    Some(a)
                        if session
                            .role
                            .as_ref()
                            .is_some_and(|r| !super::tenants::holds(&a.roles, r)) =>
                    {
                        Err(("role no longer held", Error::Forbidden))
                    }
                    Some(a) => Ok(a),
                };
                let account = match checked {
                    Ok(account) => account,
                    Err((why, answer)) => {
                        // The login was proved but its session is refused:
                        // the refusal is the check's one audit entry,
                        // committed in place of the success it would have
                        // been, naming the account (the session never
                        // existed) and the document.
                        audit
                            .refused(&format!("session refused: {why} during sign-in"))
                            .target(seen.id.to_string())
                            .tenant_of(&seen)
                            .append(tx, now)?;
                        return Ok(Err(answer));
                    }
                };
                core.states.learn(&account);
                let issued =
                    core.issue_into(tx, &account, &mut session, request.with_refresh, now)?;
                audit
                    .target(session.id.to_string())
                    .tenant_of(&account)
                    .append(tx, now)?;
                Ok::<_, Error>(Ok(issued))
            })
            .await?
    }

    /// Exchanges a refresh token for new tokens, rotating it. A reused token
    /// revokes its session.
    pub async fn refresh(
        self: &std::sync::Arc<Self>,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<(Account, Issued), Error> {
        self.check_rate(client, None)?;
        if !refresh_token.starts_with(REFRESH_PREFIX) || refresh_token.len() > 256 {
            return Err(Error::InvalidRefresh);
        }
        let key = digest(refresh_token.as_bytes());
        let now = self.clock.now();
        let core = self.clone();
        let client = client.clone();
        let outcome = self
            .store
            .write_async(move |tx| {
                let Some(record) = tx.refresh_token(&key)? else {
                    return Ok(RefreshOutcome::Refused);
                };
                let Some(mut session) = tx.session(record.session)? else {
                    return Ok(RefreshOutcome::Refused);
                };
                if session.revoked_at.is_some() {
                    return Ok(RefreshOutcome::Refused);
                }
                if record.generation != session.refresh_generation {
                    core.revoked
                        .revoke_in(tx, &mut session, "refresh token reuse", now)?;
                    let account = tx.account(session.account)?;
                    let mut entry = AuditEntry::new("refresh_reuse_detected", Outcome::Failure)
                        .target(session.id.to_string())
                        .client(&client)
                        .detail("a rotated refresh token was presented again; session revoked");
                    if let Some(account) = &account {
                        entry = entry.actor_account(account).tenant_of(account);
                    }
                    entry.append(tx, now)?;
                    return Ok(RefreshOutcome::Reused);
                }
                if record.expires_at <= now || session.expires_at <= now {
                    return Ok(RefreshOutcome::Refused);
                }
                let Some(account) = tx.account(session.account)? else {
                    return Ok(RefreshOutcome::Refused);
                };
                if account.disabled
                    || session
                        .role
                        .as_ref()
                        .is_some_and(|r| !super::tenants::holds(&account.roles, r))
                {
                    return Ok(RefreshOutcome::Refused);
                }
                core.states.learn(&account);
                let issued = core.issue_into(tx, &account, &mut session, true, now)?;
                AuditEntry::new("refresh", Outcome::Success)
                    .actor_account(&account)
                    .tenant_of(&account)
                    .target(session.id.to_string())
                    .client(&client)
                    .append(tx, now)?;
                Ok::<_, Error>(RefreshOutcome::Rotated(Box::new((account, issued))))
            })
            .await?;
        match outcome {
            RefreshOutcome::Rotated(done) => Ok(*done),
            RefreshOutcome::Reused => Err(Error::InvalidRefresh),
            RefreshOutcome::Refused => Err(Error::InvalidRefresh),
        }
    }

    /// Signs an access token for one role of `account` within `session`
    /// (role switching), recording it in the session.
    /// The account is read again inside the write transaction: a disabled
    /// or deleted account, or a role it no longer holds, is refused.
    pub async fn sign_for_role(
        self: &std::sync::Arc<Self>,
        account: &Account,
        session: Uuid,
        role: &str,
    ) -> Result<String, Error> {
        let now = self.clock.now();
        let account_id = account.id;
        let role = role.to_string();
        let keys = self.signer();
        let access_ttl = self.config.access_ttl;
        let core = self.clone();
        self.store
            .write_async(move |tx| {
                let account = tx.account(account_id)?.ok_or(Error::Unauthenticated)?;
                if account.disabled {
                    return Err(Error::Disabled);
                }
                if !super::tenants::holds(&account.roles, &role) {
                    return Err(Error::Forbidden);
                }
                core.states.learn(&account);
                let mut session = tx
                    .session(session)?
                    .filter(|s| {
                        s.account == account.id && s.revoked_at.is_none() && s.expires_at > now
                    })
                    .ok_or(Error::Unauthenticated)?;
                let (token, exp) =
                    sign_with(&keys, &account, &session, Some(&role), now, access_ttl)?;
                session.access_until = session.access_until.max(exp);
                session.last_used_at = now;
                tx.put_session(&session)?;
                Ok(token)
            })
            .await
    }

    /// Logout by refresh token, for clients whose access token has already
    /// expired: ends the session the token belongs to. Here the token is
    /// the caller's credential, so one that does not work (unknown,
    /// expired, revoked) is [`Error::Unauthenticated`].
    pub async fn logout_by_refresh(
        self: &std::sync::Arc<Self>,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<(), Error> {
        self.check_rate(client, None)?;
        if !refresh_token.starts_with(REFRESH_PREFIX) || refresh_token.len() > 256 {
            return Err(Error::Unauthenticated);
        }
        let tx = self.store.read()?;
        let record = tx
            .refresh_token(&digest(refresh_token.as_bytes()))?
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        let session = tx
            .session(record.session)?
            .filter(|s| s.revoked_at.is_none() && s.expires_at > now && record.expires_at > now)
            .ok_or(Error::Unauthenticated)?;
        let audit = match tx.account(session.account)? {
            Some(a) => AuditEntry::new("logout", Outcome::Success).actor_account(&a),
            None => AuditEntry::new("logout", Outcome::Success),
        }
        .client(client)
        .detail("by refresh token");
        drop(tx);
        self.revoke_session(session.id, "logout", audit).await
    }

    /// Logout: ends the session of the credential that asks, with a
    /// `logout` audit entry naming the document. A credential without a
    /// session (an API key, an S2S token) has nothing to end
    /// ([`Error::NoSession`]).
    pub async fn logout(
        self: &std::sync::Arc<Self>,
        principal: &Principal,
        client: &ClientInfo,
        via: Document,
    ) -> Result<(), Error> {
        let session = principal.session.ok_or(Error::NoSession)?;
        let audit = self
            .actor_entry(principal, "logout", Outcome::Success)?
            .client(client)
            .detail(via.as_str());
        self.revoke_session(session, "logout", audit).await
    }

    /// Whether a session's tokens have been revoked.
    pub fn is_revoked(&self, session: Uuid) -> bool {
        self.revoked.contains(session)
    }

    /// A handle on the revocation set for use inside write transactions.
    pub(crate) fn revocations_handle(&self) -> Arc<Revocations> {
        self.revoked.clone()
    }

    /// Revokes one session, with an audit entry.
    pub async fn revoke_session(
        self: &std::sync::Arc<Self>,
        session: Uuid,
        reason: &'static str,
        audit: AuditEntry,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let core = self.clone();
        self.store
            .write_async(move |tx| {
                let Some(mut s) = tx.session(session)? else {
                    return Err(Error::NotFound("session"));
                };
                core.revoked.revoke_in(tx, &mut s, reason, now)?;
                let audit = match tx.account(s.account)? {
                    Some(a) => audit.tenant_of(&a),
                    None => audit,
                };
                audit.target(session.to_string()).append(tx, now)?;
                Ok(())
            })
            .await
    }
}

/// Signs an access token for `account` in `session`, for one `role` when
/// given (else the session's role, else all the account's roles), expiring
/// after `access_ttl` or at the session's end, whichever comes first.
fn sign_with(
    keys: &KeySet,
    account: &Account,
    session: &Session,
    role: Option<&str>,
    now: i64,
    access_ttl: i64,
) -> Result<(String, i64), Error> {
    let exp = (now + access_ttl).min(session.expires_at);
    let (role, roles) = match role.or(session.role.as_deref()) {
        Some(role) => (role.to_string(), vec![role.to_string()]),
        None => (account.primary_role().to_string(), account.roles.clone()),
    };
    let claims = AccessClaims {
        iss: keys.issuer().to_string(),
        sub: account.id.to_string(),
        aud: keys.audience().to_string(),
        iat: now,
        nbf: now,
        exp,
        jti: Uuid::new_v4().simple().to_string(),
        sid: session.id.to_string(),
        role,
        roles,
        reseller_id: account.reseller_id.clone(),
        merchant_id: account.merchant_id.clone(),
    };
    let token = keys.sign(&claims).map_err(Error::Internal)?;
    Ok((token, exp))
}

/// Revoked session ids, and until when to remember each (Unix seconds).
/// Checked on every access-token request, so it lives in memory; the store
/// holds the same set for restarts.
#[derive(Default)]
pub struct Revocations {
    set: RwLock<HashMap<Uuid, i64>>,
}

impl Revocations {
    /// Loads the set from the store's list.
    pub fn from_stored(stored: Vec<(Uuid, i64)>) -> Revocations {
        Revocations {
            set: RwLock::new(stored.into_iter().collect()),
        }
    }

    pub fn contains(&self, session: Uuid) -> bool {
        match self.set.read() {
            Ok(set) => set.contains_key(&session),
            // A poisoned lock means a writer panicked mid-update: refuse.
            Err(_) => true,
        }
    }

    fn remember(&self, session: &Session) {
        if let Ok(mut set) = self.set.write() {
            set.insert(session.id, revocation_horizon(session));
        }
    }

    /// Forgets entries no token can outlive.
    pub fn prune(&self, now: i64) {
        if let Ok(mut set) = self.set.write() {
            set.retain(|_, until| *until >= now);
        }
    }

    /// How many revocations are remembered.
    pub fn len(&self) -> usize {
        self.set.read().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks `session` revoked inside `tx` and remembers the revocation for
    /// as long as any of its access tokens could still be presented. The
    /// in-memory set is updated first, so the token is refused even before
    /// the commit lands (failing safe if the commit fails).
    pub fn revoke_in(
        &self,
        tx: &mut WriteTx,
        session: &mut Session,
        reason: &str,
        now: i64,
    ) -> Result<(), Error> {
        if session.revoked_at.is_some() {
            return Ok(());
        }
        session.revoked_at = Some(now);
        session.revoked_reason = Some(reason.to_string());
        self.remember(session);
        tx.put_session(session)?;
        tx.put_revocation(session.id, revocation_horizon(session))?;
        Ok(())
    }

    /// Revokes every live session of an account; returns how many.
    pub fn revoke_all_in(
        &self,
        tx: &mut WriteTx,
        account: Uuid,
        reason: &str,
        now: i64,
    ) -> Result<usize, Error> {
        let mut n = 0;
        for mut session in tx.account_sessions(account)? {
            if session.revoked_at.is_none() && session.expires_at > now {
                self.revoke_in(tx, &mut session, reason, now)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Until when a revoked session must be remembered: past the last access
/// token it issued (plus clock leeway), and past its own end, after which
/// nothing of it is accepted anyway.
fn revocation_horizon(session: &Session) -> i64 {
    session.access_until.min(session.expires_at) + LEEWAY_SECS + 1
}
