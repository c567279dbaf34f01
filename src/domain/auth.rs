//! The one authentication function: a bearer string in, a [`Principal`] out.
//!
//! Every protected route of every API calls [`Core::authenticate`]. Each
//! credential kind is told apart by its shape before anything else is done:
//! refresh tokens (`lk_rt_`) are never accepted here, and an access token
//! must be a JWT with our `typ`, so no kind can pass as another.

use uuid::Uuid;

use super::sessions::REFRESH_PREFIX;
use super::{Core, Error};

/// Which kind of credential authenticated the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A JWT access token.
    AccessToken,
}

/// Who is calling, with the roles and scope the credential grants.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The credential kind presented.
    pub kind: CredentialKind,
    /// The account acted as.
    pub account: Option<Uuid>,
    /// The session the credential belongs to.
    pub session: Option<Uuid>,
    /// The role the credential acts as.
    pub role: String,
    /// Every role the credential carries.
    pub roles: Vec<String>,
    /// Reseller scope.
    pub reseller_id: Option<String>,
    /// Merchant scope.
    pub merchant_id: Option<String>,
}

impl Core {
    /// Authenticates a bearer credential. Every failure is
    /// [`Error::Unauthenticated`]; the cause is not told to the client.
    pub fn authenticate(&self, bearer: &str) -> Result<Principal, Error> {
        if bearer.is_empty() || bearer.starts_with(REFRESH_PREFIX) {
            return Err(Error::Unauthenticated);
        }
        self.authenticate_access_token(bearer)
    }

    fn authenticate_access_token(&self, token: &str) -> Result<Principal, Error> {
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
            role: claims.role,
            roles: claims.roles,
            reseller_id: claims.reseller_id,
            merchant_id: claims.merchant_id,
        })
    }
}
