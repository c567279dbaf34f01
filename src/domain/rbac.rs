//! Roles and scope: who may see and change what.
//!
//! A credential's scope follows from the strongest built-in role it
//! carries: `admin` sees everything; `reseller` its reseller, the merchants
//! under it and their accounts; `merchant` its merchant and its accounts;
//! anything else (`user` and custom roles) only its own account. Every
//! admin operation asks the scope before it reads or writes, and an object
//! outside the scope is reported as not found, so a 403 never confirms that
//! something exists.

use uuid::Uuid;

use super::accounts::BUILTIN_ROLES;
use super::auth::Principal;
use crate::store::{Account, Merchant};

/// How far a credential reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (admin).
    All,
    /// One reseller, its merchants and their accounts.
    Reseller(String),
    /// One merchant and its accounts.
    Merchant { reseller: String, merchant: String },
    /// One account (its own).
    Own(Uuid),
    /// Nothing beyond authenticating (an S2S `user` token, a reseller
    /// account with no reseller set).
    Nothing,
}

/// Strength of a role: admin 4, reseller 3, merchant 2, anything else 1.
pub fn level(role: &str) -> u8 {
    match role {
        "admin" => 4,
        "reseller" => 3,
        "merchant" => 2,
        _ => 1,
    }
}

/// Whether `role` is one of the built-in roles.
pub fn is_builtin(role: &str) -> bool {
    BUILTIN_ROLES.contains(&role)
}

impl Principal {
    /// The scope of this credential.
    pub fn scope(&self) -> Scope {
        let top = self.roles.iter().map(|r| level(r)).max().unwrap_or(0);
        match (top, &self.reseller_id, &self.merchant_id) {
            (4, _, _) => Scope::All,
            (3, Some(r), _) => Scope::Reseller(r.clone()),
            (2, Some(r), Some(m)) => Scope::Merchant {
                reseller: r.clone(),
                merchant: m.clone(),
            },
            (2..=3, _, _) => Scope::Nothing,
            _ => match self.account {
                Some(id) => Scope::Own(id),
                None => Scope::Nothing,
            },
        }
    }
}

impl Scope {
    /// The strongest role level this scope acts with.
    pub fn level(&self) -> u8 {
        match self {
            Scope::All => 4,
            Scope::Reseller(_) => 3,
            Scope::Merchant { .. } => 2,
            Scope::Own(_) => 1,
            Scope::Nothing => 0,
        }
    }

    /// Whether this scope manages other accounts (admin, reseller, merchant).
    pub fn manages(&self) -> bool {
        self.level() >= 2
    }

    /// Whether an account is visible: in the tenant, and holding no role
    /// stronger than the scope's own (a reseller never sees an admin, even
    /// one placed in its tenant).
    pub fn covers_account(&self, account: &Account) -> bool {
        let strongest = account.roles.iter().map(|r| level(r)).max().unwrap_or(1);
        let in_tenant = match self {
            Scope::All => true,
            Scope::Reseller(r) => account.reseller_id.as_deref() == Some(r),
            Scope::Merchant { merchant, .. } => account.merchant_id.as_deref() == Some(merchant),
            Scope::Own(id) => account.id == *id,
            Scope::Nothing => false,
        };
        in_tenant && (strongest <= self.level() || matches!(self, Scope::Own(_)))
    }

    /// Whether a reseller is visible.
    pub fn covers_reseller(&self, id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Reseller(r) => r == id,
            _ => false,
        }
    }

    /// Whether a merchant is visible.
    pub fn covers_merchant(&self, merchant: &Merchant) -> bool {
        match self {
            Scope::All => true,
            Scope::Reseller(r) => merchant.reseller_id == *r,
            Scope::Merchant { merchant: m, .. } => merchant.id == *m,
            _ => false,
        }
    }

    /// Whether a tenant placement (as on an S2S token or audit event) is
    /// inside this scope.
    pub fn covers_tenant(&self, reseller: Option<&str>, merchant: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Reseller(r) => reseller == Some(r.as_str()),
            // Both ids: a merchant id alone could name an earlier tenant
            // of another reseller.
            Scope::Merchant {
                reseller: r,
                merchant: m,
            } => reseller == Some(r.as_str()) && merchant == Some(m.as_str()),
            _ => false,
        }
    }

    /// Whether this scope may give an account `role`: never a role
    /// stronger than its own; custom roles count as `user`.
    pub fn may_grant(&self, role: &str) -> bool {
        self.manages() && level(role) <= self.level()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::CredentialKind;

    fn principal(roles: &[&str], reseller: Option<&str>, merchant: Option<&str>) -> Principal {
        Principal {
            kind: CredentialKind::AccessToken,
            account: Some(Uuid::nil()),
            session: None,
            credential_id: None,
            name: String::new(),
            role: roles.first().map(|s| s.to_string()).unwrap_or_default(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            reseller_id: reseller.map(Into::into),
            merchant_id: merchant.map(Into::into),
            expires_at: None,
            client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            from_query: false,
        }
    }

    #[test]
    fn scope_follows_the_strongest_role() {
        assert_eq!(
            principal(&["user", "admin"], None, None).scope(),
            Scope::All
        );
        assert_eq!(
            principal(&["reseller"], Some("r1"), None).scope(),
            Scope::Reseller("r1".into())
        );
        assert_eq!(
            principal(&["merchant", "Customer"], Some("r1"), Some("m1")).scope(),
            Scope::Merchant {
                reseller: "r1".into(),
                merchant: "m1".into()
            }
        );
        assert_eq!(principal(&["reseller"], None, None).scope(), Scope::Nothing);
        assert_eq!(
            principal(&["Customer"], Some("r1"), Some("m1")).scope(),
            Scope::Own(Uuid::nil())
        );
    }

    #[test]
    fn grants_never_exceed_the_granter() {
        let reseller = Scope::Reseller("r".into());
        assert!(reseller.may_grant("merchant"));
        assert!(reseller.may_grant("reseller"));
        assert!(reseller.may_grant("Customer"));
        assert!(!reseller.may_grant("admin"));
        assert!(!Scope::Own(Uuid::nil()).may_grant("user"));
    }
}
