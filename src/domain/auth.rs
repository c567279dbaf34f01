//! The one authentication function: a bearer string in, a [`Principal`] out.
//!
//! Every protected route of every API calls [`Core::authenticate`]. Each
//! credential kind is told apart by its shape before anything else is done,
//! so no kind can pass as another:
//!
//! | kind | shape |
//! | --- | --- |
//! | access token | JWT, header `typ: at+jwt`, our `kid` |
//! | API key | `sk_live_` + 16-character id + 43-character secret |
//! | S2S token | `s2s_` + 16-character id + 43-character secret |
//! | opaque token | `lk_ot_` + 43 characters, looked up by digest |
//! | refresh token | `lk_rt_` + 43 characters: never accepted here |

use std::net::IpAddr;

use uuid::Uuid;

use super::secrets::digest;
use super::sessions::{OPAQUE_PREFIX, REFRESH_PREFIX};
use super::{Core, Error, keys, s2s};

/// Which kind of credential authenticated the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A JWT access token.
    AccessToken,
    /// An API key (`sk_live_...`).
    ApiKey,
    /// A server-to-server token (`s2s_...`).
    S2s,
    /// An opaque session token (`lk_ot_...`).
    OpaqueToken,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AccessToken => "access_token",
            CredentialKind::ApiKey => "api_key",
            CredentialKind::S2s => "s2s_token",
            CredentialKind::OpaqueToken => "opaque_token",
        }
    }
}

/// Who is calling, with the roles and scope the credential grants.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The credential kind presented.
    pub kind: CredentialKind,
    /// The account acted as (none for S2S tokens).
    pub account: Option<Uuid>,
    /// The session the credential belongs to (access tokens).
    pub session: Option<Uuid>,
    /// The API key or S2S token id.
    pub credential_id: Option<String>,
    /// Display name for the audit log: the S2S token's name, the key
    /// owner's username; empty for access tokens (looked up when needed).
    pub name: String,
    /// The role the credential acts as.
    pub role: String,
    /// Every role the credential carries.
    pub roles: Vec<String>,
    /// Reseller scope.
    pub reseller_id: Option<String>,
    /// Merchant scope.
    pub merchant_id: Option<String>,
    /// When the credential itself stops working, if it does.
    pub expires_at: Option<i64>,
    /// Where the request came from, for the audit log.
    pub client_ip: IpAddr,
}

impl Principal {
    /// The actor id written to the audit log.
    pub fn actor_id(&self) -> String {
        match (self.kind, &self.account, &self.credential_id) {
            (CredentialKind::S2s, _, Some(id)) => format!("s2s:{id}"),
            (_, Some(account), _) => account.to_string(),
            _ => "unknown".into(),
        }
    }
}

impl Core {
    /// Authenticates a bearer credential. Every failure is
    /// [`Error::Unauthenticated`]; the cause is not told to the client.
    pub fn authenticate(&self, bearer: &str, client_ip: IpAddr) -> Result<Principal, Error> {
        if bearer.is_empty() || bearer.starts_with(REFRESH_PREFIX) {
            return Err(Error::Unauthenticated);
        }
        if bearer.starts_with(keys::PREFIX) {
            return self.authenticate_api_key(bearer, client_ip);
        }
        if bearer.starts_with(s2s::PREFIX) {
            return self.authenticate_s2s(bearer, client_ip);
        }
        if bearer.starts_with(OPAQUE_PREFIX) {
            return self.authenticate_opaque(bearer, client_ip);
        }
        self.authenticate_access_token(bearer, client_ip)
    }

    fn authenticate_access_token(
        &self,
        token: &str,
        client_ip: IpAddr,
    ) -> Result<Principal, Error> {
        let claims = self.keys.verify(token, self.clock.now()).map_err(|e| {
            tracing::debug!(reason = %e, "access token refused");
            Error::Unauthenticated
        })?;
        let session = Uuid::parse_str(&claims.sid).map_err(|_| Error::Unauthenticated)?;
        let account = Uuid::parse_str(&claims.sub).map_err(|_| Error::Unauthenticated)?;
        if self.is_revoked(session) {
            return Err(Error::Unauthenticated);
        }
        Ok(Principal {
            kind: CredentialKind::AccessToken,
            account: Some(account),
            session: Some(session),
            credential_id: None,
            name: String::new(),
            role: claims.role,
            roles: claims.roles,
            reseller_id: claims.reseller_id,
            merchant_id: claims.merchant_id,
            expires_at: Some(claims.exp),
            client_ip,
        })
    }
}

impl Core {
    /// An opaque token is looked up by its digest; its session must be
    /// live and its account enabled.
    fn authenticate_opaque(&self, token: &str, client_ip: IpAddr) -> Result<Principal, Error> {
        if token.len() != OPAQUE_PREFIX.len() + 43 {
            return Err(Error::Unauthenticated);
        }
        let tx = self.store.read()?;
        let sid = tx
            .opaque_token(&digest(token.as_bytes()))?
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        let session = tx
            .session(sid)?
            .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
            .ok_or(Error::Unauthenticated)?;
        let account = tx
            .account(session.account)?
            .filter(|a| !a.disabled)
            .ok_or(Error::Unauthenticated)?;
        let roles = match &session.role {
            Some(role) => vec![role.clone()],
            None => account.roles.clone(),
        };
        Ok(Principal {
            kind: CredentialKind::OpaqueToken,
            account: Some(account.id),
            session: Some(sid),
            credential_id: None,
            name: account.username.clone(),
            role: roles.first().cloned().unwrap_or_default(),
            roles,
            reseller_id: account.reseller_id.clone(),
            merchant_id: account.merchant_id.clone(),
            expires_at: Some(session.expires_at),
            client_ip,
        })
    }
}

/// Splits `<prefix><16-char id><43-char secret>`; `None` for any other shape.
pub(crate) fn split_secret<'a>(token: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = token.strip_prefix(prefix)?;
    if rest.len() != 16 + 43 || !rest.is_ascii() {
        return None;
    }
    let (id, secret) = rest.split_at(16);
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}
