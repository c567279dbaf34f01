//! In-process access to the domain for the `domain_*` tests: the harness
//! server's own `Core`, called directly, with its manual clock. Every call
//! into `Core` these tests make goes through here, so a change to an
//! operation's signature is met in one place.

use std::net::IpAddr;
use std::sync::Arc;

use latchkey::config::Layer;
use latchkey::domain::accounts::LoginId;
use latchkey::domain::auth::Principal;
use latchkey::domain::sessions::Issued;
use latchkey::domain::users::UserRequest;
use latchkey::domain::{ClientInfo, Core, Document, Error};
use latchkey::store::Account;

use crate::harness::Server;

/// A harness server and its domain core.
pub struct Domain {
    /// The server, for its clock and for setting up over HTTP.
    pub srv: Server,
    /// Its core, called directly.
    pub core: Arc<Core>,
}

/// The address every in-process call comes from.
pub fn ip() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

fn client() -> ClientInfo {
    ClientInfo {
        ip: ip(),
        user_agent: "domain test".into(),
    }
}

impl Domain {
    /// A server with `layer` (over light hashing) and its core.
    pub async fn start(layer: Layer) -> Domain {
        let srv = Server::start_with(layer).await;
        let core = srv.running().core().clone();
        Domain { srv, core }
    }

    /// Moves the manual clock forward.
    pub fn advance(&self, seconds: u64) {
        self.srv.advance(seconds);
    }

    /// Checks a password the way every login route does, opening no
    /// session.
    pub async fn check(&self, identifier: &str, password: &str) -> Result<Account, Error> {
        let id = LoginId::parse(identifier, "username")?;
        self.core
            .password_login(&id, password, &client(), Document::V1)
            .await
    }

    /// A whole sign-in: a JWT session with a refresh token.
    pub async fn sign_in(&self, identifier: &str, password: &str) -> Result<Issued, Error> {
        let id = LoginId::parse(identifier, "username")?;
        let (_, issued) = self
            .core
            .sign_in(&id, password, &client(), Document::V1)
            .await?;
        Ok(issued)
    }

    /// Exchanges a refresh token.
    pub async fn refresh(&self, token: &str) -> Result<Issued, Error> {
        let (_, issued) = self.core.refresh(token, &client()).await?;
        Ok(issued)
    }

    /// The principal a bearer credential authenticates as.
    pub fn authenticate(&self, bearer: &str) -> Result<Principal, Error> {
        self.core.authenticate(bearer, ip())
    }

    /// Creates an account as `principal`, with the password and email
    /// the harness gives every account.
    pub async fn create_user(
        &self,
        principal: &Principal,
        name: &str,
        roles: &[&str],
        reseller_id: Option<&str>,
        merchant_id: Option<&str>,
    ) -> Result<Account, Error> {
        let request = UserRequest {
            username: name.into(),
            email: format!("{name}@example.com"),
            password: crate::harness::PASSWORD.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            reseller_id: reseller_id.map(Into::into),
            merchant_id: merchant_id.map(Into::into),
            attributes: Default::default(),
        };
        self.core.admin_create_user(principal, request).await
    }

    /// Creates a merchant as `principal`.
    pub async fn create_merchant(
        &self,
        principal: &Principal,
        id: &str,
        reseller_id: Option<&str>,
    ) -> Result<(), Error> {
        self.core
            .create_merchant(
                principal,
                Some(id.into()),
                reseller_id.map(Into::into),
                "a merchant",
            )
            .await
            .map(|_| ())
    }

    /// Creates a reseller as `principal`.
    pub async fn create_reseller(&self, principal: &Principal, id: &str) -> Result<(), Error> {
        self.core
            .create_reseller(principal, Some(id.into()), "a reseller")
            .await
            .map(|_| ())
    }

    /// Reads an account as `principal`: what its scope lets it see.
    pub fn get_user(&self, principal: &Principal, id: &str) -> Result<Account, Error> {
        let id = id.parse().expect("a uuid");
        self.core.admin_get_user(principal, id)
    }
}

/// A short name for an outcome, for tables of expected results.
pub fn outcome<T>(result: &Result<T, Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(Error::Invalid { field, .. }) => format!("invalid {field}"),
        Err(Error::Locked { retry_after }) => format!("locked {retry_after}"),
        Err(e) => format!("{e:?}"),
    }
}
