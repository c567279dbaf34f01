//! Signing in with a Google or Microsoft access token.
//!
//! The client claims an email and hands over an access token it got from
//! the provider. latchkey asks the provider about the token and issues its
//! own credential only when every check passes. What is trusted, and why:
//!
//! **Google.** The token is sent to the tokeninfo endpoint (in a POST body,
//! never in a URL). Google answering 200 proves the token is live and
//! genuine. From its answer latchkey trusts: `aud` (the OAuth client the
//! token was issued to), which must be one of `LATCHKEY_GOOGLE_CLIENT_IDS`,
//! since otherwise any app that ever got the user's token could sign in as
//! them; `email_verified`, which must be true; `email`, which must equal
//! the claimed email (case-insensitive); `expires_in`, which must be
//! positive; `sub`, the immutable account id that links are keyed by; and,
//! when `LATCHKEY_GOOGLE_HOSTED_DOMAINS` is set, `hd`, which must be one of
//! them (a consumer account has none).
//!
//! **Microsoft.** The token is sent to Graph `/me` as a bearer token. Graph
//! answering 200 proves the token is genuine and live: Graph checks its
//! signature and expiry; latchkey cannot, as Graph tokens are not meant to
//! be verified by anyone else. The token's own `appid` (v1 tokens) or
//! `azp` (v2) claim, read from the very bytes Graph accepted, must be one of
//! `LATCHKEY_MICROSOFT_CLIENT_IDS`: a token altered to name our app would
//! fail Graph's signature check. Its `tid`, read the same way, must be one
//! of `LATCHKEY_MICROSOFT_TENANT_IDS`: any Entra tenant can get a token for
//! a multi-tenant app, and its administrators decide what its users' `mail`
//! says, so without this list a stranger's tenant could claim any mailbox.
//! The settings refuse Microsoft client ids without tenant ids. From
//! Graph's answer latchkey trusts `mail`,
//! which must equal the claimed email (case-insensitive; an account without
//! `mail` is refused, as `userPrincipalName` is not a verified mailbox), and
//! `id`, the immutable id links are keyed by.
//!
//! **Linking.** The first successful exchange for an email links the
//! provider's immutable id to the enabled latchkey account with that email;
//! from then on the link, not the email, decides: a later exchange for that
//! account with a different immutable id is refused. Each link is written
//! to the audit log with the provider, the immutable id and the tenant or
//! hosted domain. Creating accounts on first sign-in is off unless
//! configured, and its default role and tenant are checked at start.
//!
//! A provider that is slow, down or answers garbage yields a provider
//! error (504, 503, 502), never a credential and never a lockout count.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use super::accounts::{Username, email_key};
use super::password::Password;
use super::secrets::{b64_decode, random_id, random_token};
use super::sessions::Issued;
use super::{AuditEntry, ClientInfo, Core, Document, Error, Outcome, accounts};
use crate::store::{Account, Lookup};

/// A request to a provider.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: &'static str,
    pub url: String,
    /// Header name and value pairs. Values may be secrets (a bearer token):
    /// nothing here is ever logged.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// A provider's answer, read in full.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The deadline passed (504).
    #[error("the provider did not answer in time")]
    Timeout,
    /// No connection: refused, unreachable, TLS failure (503).
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// An answer we will not use: a redirect, too large, garbage (502).
    #[error("the provider answered badly: {0}")]
    BadAnswer(String),
}

/// Performs outbound requests; implemented by `server::outbound`.
pub trait Fetch: Send + Sync {
    fn fetch(
        &self,
        request: OutboundRequest,
    ) -> Pin<Box<dyn Future<Output = Result<OutboundResponse, FetchError>> + Send + '_>>;
}

/// An identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    Microsoft,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
        }
    }

    /// The provider's name as people write it.
    pub fn title(self) -> &'static str {
        match self {
            Provider::Google => "Google",
            Provider::Microsoft => "Microsoft",
        }
    }

    pub fn parse(name: &str) -> Option<Provider> {
        match name {
            "google" => Some(Provider::Google),
            "microsoft" => Some(Provider::Microsoft),
            _ => None,
        }
    }
}

/// External sign-in settings.
#[derive(Debug, Clone, Default)]
pub struct ExternalConfig {
    /// OAuth client ids tokens must have been issued to; empty turns
    /// Google sign-in off.
    pub google_client_ids: Vec<String>,
    /// App ids tokens must have been issued to; empty turns Microsoft
    /// sign-in off.
    pub microsoft_client_ids: Vec<String>,
    /// Entra tenant ids (`tid`, lowercase) whose users may sign in. Any
    /// tenant can get a token for a multi-tenant app id, so the settings
    /// refuse Microsoft client ids without this list.
    pub microsoft_tenant_ids: Vec<String>,
    /// Google Workspace domains (`hd`, lowercase) whose users may sign in;
    /// empty admits any Google account.
    pub google_hosted_domains: Vec<String>,
    pub google_tokeninfo_url: String,
    pub microsoft_userinfo_url: String,
    /// Create an account at the first sign-in of an unknown email.
    pub auto_create: bool,
    /// Role of accounts created that way.
    pub default_role: String,
    /// Tenant of accounts created that way.
    pub default_reseller_id: Option<String>,
    pub default_merchant_id: Option<String>,
}

/// What a provider vouched for.
#[derive(Debug, Clone)]
struct Identity {
    /// The provider's immutable account id.
    subject: String,
    /// The organisation it belongs to: Microsoft's `tid`, Google's `hd`.
    organisation: Option<String>,
}

/// Longest access token passed on to a provider.
const MAX_ACCESS_TOKEN: usize = 8 * 1024;
/// Longest immutable id or organisation taken from a provider; real ones
/// are GUIDs, digit strings and domain names.
const MAX_PROVIDER_ID: usize = 255;

impl Core {
    /// Whether sign-in with `provider` is configured.
    /// The provider, when sign-in through it is configured (it has
    /// client ids to check tokens against); otherwise
    /// [`Error::ProviderDisabled`]. Adapters ask before reading a body, so
    /// a provider that is off answers the same whatever is sent.
    pub fn enabled_provider(&self, provider: Provider) -> Result<Provider, Error> {
        if self.client_ids(provider).is_empty() {
            return Err(Error::ProviderDisabled(provider));
        }
        Ok(provider)
    }

    fn client_ids(&self, provider: Provider) -> &[String] {
        match provider {
            Provider::Google => &self.external.google_client_ids,
            Provider::Microsoft => &self.external.microsoft_client_ids,
        }
    }

    /// Refuses external sign-in defaults that grant power or name nothing;
    /// called at start. The defaults only shape accounts made at first
    /// sign-in, but they are checked whenever they are set, auto-creation
    /// on or off: a setting that would be refused the day someone turns
    /// creation on is better refused now.
    pub fn check_external_defaults(&self) -> Result<(), String> {
        check_defaults(
            &self.store.read().map_err(|e| e.to_string())?,
            &self.external,
        )
        .map(|_| ())
    }

    /// Exchanges a provider access token for a latchkey session.
    pub async fn external_sign_in(
        self: &Arc<Self>,
        provider: Provider,
        claimed_email: &str,
        access_token: &str,
        client: &ClientInfo,
        via: Document,
    ) -> Result<(Account, Issued), Error> {
        self.enabled_provider(provider)?;
        self.check_rate(client, Some(claimed_email))?;
        let audit = |outcome, detail: String| {
            let shown: String = claimed_email.chars().take(64).collect();
            AuditEntry::new("external_login", outcome)
                .actor("anonymous", shown)
                .client(client)
                .detail(format!("{}: {detail}", provider.name()))
        };
        if access_token.is_empty() || access_token.len() > MAX_ACCESS_TOKEN {
            self.audit(audit(Outcome::Failure, "malformed access token".into()))
                .await?;
            return Err(Error::InvalidCredentials);
        }
        let verified = match provider {
            Provider::Google => self.ask_google(claimed_email, access_token).await,
            Provider::Microsoft => self.ask_microsoft(claimed_email, access_token).await,
        };
        let identity = match verified {
            Ok(identity) => identity,
            Err(refusal) => {
                let detail = match &refusal {
                    Refusal::Identity(why) => why.to_string(),
                    Refusal::Provider(e) => e.to_string(),
                };
                self.audit(audit(Outcome::Failure, detail)).await?;
                return Err(match refusal {
                    Refusal::Identity(_) => Error::InvalidCredentials,
                    Refusal::Provider(e) => Error::Provider(e),
                });
            }
        };
        let account = match self.link(provider, &identity, claimed_email).await {
            Ok(account) => account,
            Err(e) => {
                let why = match &e {
                    Error::InvalidCredentials => "no usable account for this identity".to_string(),
                    Error::Disabled => "account disabled".to_string(),
                    other => other.to_string(),
                };
                self.audit(audit(Outcome::Failure, why)).await?;
                return Err(e);
            }
        };
        let issued = self
            .open_session(
                &account,
                via.session(),
                client,
                AuditEntry::new("external_login", Outcome::Success)
                    .actor_account(&account)
                    .client(client)
                    .detail(format!("{} ({via})", provider.name())),
            )
            .await?;
        // The account as the session saw it, which may have changed since
        // the link was read; the answer's user view shows what the tokens
        // carry, as the password sign-in's does.
        Ok((issued.account.clone(), issued))
    }

    async fn ask_google(&self, claimed: &str, token: &str) -> Result<Identity, Refusal> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("access_token", token)
            .finish();
        let answer = self
            .fetch
            .fetch(OutboundRequest {
                method: "POST",
                url: self.external.google_tokeninfo_url.clone(),
                headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
                body: body.into_bytes(),
            })
            .await
            .map_err(Refusal::Provider)?;
        let info = judge_answer(&answer)?;
        let text = |k: &str| match info.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        };
        let aud = text("aud").unwrap_or_default();
        if !self.external.google_client_ids.contains(&aud) {
            return Err(Refusal::Identity("token issued to another application"));
        }
        if text("expires_in")
            .and_then(|s| s.parse::<i64>().ok())
            .is_none_or(|secs| secs <= 0)
        {
            return Err(Refusal::Identity("token expired"));
        }
        if text("email_verified").as_deref() != Some("true") {
            return Err(Refusal::Identity("email not verified"));
        }
        if text("email").is_none_or(|e| email_key(&e) != email_key(claimed)) {
            return Err(Refusal::Identity("email does not match"));
        }
        let hd = text("hd").map(|h| h.to_ascii_lowercase());
        if !self.external.google_hosted_domains.is_empty()
            && !hd
                .as_ref()
                .is_some_and(|h| self.external.google_hosted_domains.contains(h))
        {
            return Err(Refusal::Identity(
                "account outside the allowed hosted domains",
            ));
        }
        let subject = text("sub")
            .filter(|s| !s.is_empty() && s.len() <= MAX_PROVIDER_ID)
            .ok_or(Refusal::Provider(FetchError::BadAnswer(
                "no usable sub".into(),
            )))?;
        Ok(Identity {
            subject,
            organisation: hd.filter(|h| h.len() <= MAX_PROVIDER_ID),
        })
    }

    async fn ask_microsoft(&self, claimed: &str, token: &str) -> Result<Identity, Refusal> {
        // The app and tenant claims, read from the same bytes Graph is
        // about to judge: a token altered to name our app or an allowed
        // tenant fails Graph's signature check.
        let claims = jwt_payload(token);
        let app = claims.as_ref().and_then(|claims| {
            ["appid", "azp"]
                .iter()
                .find_map(|k| claims.get(*k).and_then(Value::as_str).map(str::to_string))
        });
        if !app.is_some_and(|a| self.external.microsoft_client_ids.contains(&a)) {
            return Err(Refusal::Identity("token issued to another application"));
        }
        let tenant = claims
            .as_ref()
            .and_then(|claims| claims.get("tid"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        if !tenant
            .as_ref()
            .is_some_and(|t| self.external.microsoft_tenant_ids.contains(t))
        {
            return Err(Refusal::Identity("token from a tenant that is not allowed"));
        }
        let answer = self
            .fetch
            .fetch(OutboundRequest {
                method: "GET",
                url: self.external.microsoft_userinfo_url.clone(),
                headers: vec![("authorization", format!("Bearer {token}"))],
                body: Vec::new(),
            })
            .await
            .map_err(Refusal::Provider)?;
        let me = judge_answer(&answer)?;
        let mail = me.get("mail").and_then(Value::as_str);
        if mail.is_none_or(|m| email_key(m) != email_key(claimed)) {
            return Err(Refusal::Identity("email does not match"));
        }
        let subject = me
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= MAX_PROVIDER_ID)
            .map(str::to_string)
            .ok_or(Refusal::Provider(FetchError::BadAnswer(
                "no usable id".into(),
            )))?;
        Ok(Identity {
            subject,
            organisation: tenant,
        })
    }

    /// The account for a verified identity: the linked one, or the one with
    /// that email (linking it now), or, when configured, a new one.
    async fn link(
        &self,
        provider: Provider,
        identity: &Identity,
        email: &str,
    ) -> Result<Account, Error> {
        let existing = {
            let tx = self.store.read()?;
            tx.external_identity(provider.name(), &identity.subject)?
                .is_some()
                || tx.account_by_email(&email_key(email))?.is_some()
        };
        // A new account needs its (unusable) password hashed before the
        // write transaction; only then is the pool's time spent.
        let fresh_hash = if !existing && self.external.auto_create {
            let random =
                Password::new(&random_token()).map_err(|e| Error::Internal(e.to_string()))?;
            Some(self.hash_password(random).await?)
        } else {
            None
        };
        let now = self.clock.now();
        let provider_name = provider.name();
        let subject = identity.subject.clone();
        // The link decides every later sign-in to the account, so the log
        // says exactly which outside identity it trusts from now on.
        let linked = format!(
            "{provider_name}: id {}, {} {}",
            identity.subject,
            match provider {
                Provider::Google => "hosted domain",
                Provider::Microsoft => "tenant",
            },
            identity.organisation.as_deref().unwrap_or("none"),
        );
        let email = email.to_string();
        let config = self.external.clone();
        self.store
            .write_async(move |tx| {
                let account = match tx.external_identity(provider_name, &subject)? {
                    Some(id) => tx.account(id)?.ok_or(Error::InvalidCredentials)?,
                    None => {
                        let account = match tx.account_by_email(&email_key(&email))? {
                            Some(a) => a,
                            None => match fresh_hash {
                                Some(hash) => create_external(tx, &config, &email, hash, now)?,
                                None => return Err(Error::InvalidCredentials),
                            },
                        };
                        if tx.account_link(account.id, provider_name)?.is_some() {
                            // Linked before, to another immutable id.
                            return Err(Error::InvalidCredentials);
                        }
                        tx.put_external_link(provider_name, &subject, account.id)?;
                        AuditEntry::new("external_linked", Outcome::Success)
                            .actor_account(&account)
                            .tenant_of(&account)
                            .target(account.id.to_string())
                            .detail(linked)
                            .append(tx, now)?;
                        account
                    }
                };
                if account.disabled {
                    return Err(Error::Disabled);
                }
                Ok(account)
            })
            .await
    }
}

/// Roles never given to an account made at first external sign-in: a
/// stranger with a verified mailbox would get power over others.
const FORBIDDEN_DEFAULT_ROLES: [&str; 2] = ["admin", "reseller"];

/// Checks the role and tenant given to accounts made at first sign-in: the
/// role exists and grants no power over others, and the tenant exists and
/// fits together. Each refusal names the setting to change. Returns the
/// role as it is stored: the setting may name it in any ASCII case, as
/// every request may.
fn check_defaults(tx: &impl Lookup, config: &ExternalConfig) -> Result<String, String> {
    const ROLE: &str = "LATCHKEY_EXTERNAL_DEFAULT_ROLE (--external-default-role)";
    const RESELLER: &str = "LATCHKEY_EXTERNAL_DEFAULT_RESELLER_ID (--external-default-reseller-id)";
    const MERCHANT: &str = "LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID (--external-default-merchant-id)";
    let role = config.default_role.as_str();
    if FORBIDDEN_DEFAULT_ROLES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(role.trim()))
    {
        return Err(format!(
            "{ROLE} is {role:?}: accounts created at external sign-in may not get the admin or reseller role, \
             since anyone with a verified mailbox could sign in and hold it"
        ));
    }
    let stored = |e: crate::store::StoreError| e.to_string();
    let roles = tx.custom_roles().map_err(stored)?;
    let Some(role) = super::tenants::resolve_role(&roles, role) else {
        return Err(format!("{ROLE} is {role:?}, which is not a role"));
    };
    let role = role.as_str();
    if let Some(r) = &config.default_reseller_id
        && tx.reseller(r).map_err(stored)?.is_none()
    {
        return Err(format!("{RESELLER} is {r:?}, which is not a reseller"));
    }
    match &config.default_merchant_id {
        Some(m) => {
            let merchant = tx
                .merchant(m)
                .map_err(stored)?
                .ok_or_else(|| format!("{MERCHANT} is {m:?}, which is not a merchant"))?;
            match &config.default_reseller_id {
                Some(r) if *r == merchant.reseller_id => {}
                Some(r) => {
                    return Err(format!(
                        "{MERCHANT} is {m:?}, which does not belong to reseller {r:?} ({RESELLER}); it belongs to {:?}",
                        merchant.reseller_id
                    ));
                }
                None => {
                    return Err(format!(
                        "{MERCHANT} is set without {RESELLER}: give the merchant's reseller, {:?}",
                        merchant.reseller_id
                    ));
                }
            }
        }
        None if role == "merchant" => {
            return Err(format!("{ROLE} is \"merchant\", which needs {MERCHANT}"));
        }
        None => {}
    }
    Ok(role.to_string())
}

/// Makes an account for a first external sign-in.
fn create_external(
    tx: &mut crate::store::WriteTx,
    config: &ExternalConfig,
    email: &str,
    password_hash: String,
    now: i64,
) -> Result<Account, Error> {
    // Checked at start; checked again here because a role or tenant can be
    // deleted while the server runs.
    let role = check_defaults(tx, config).map_err(Error::Internal)?;
    let email = accounts::Email::parse(email)?;
    let local: String = email
        .as_str()
        .split('@')
        .next()
        .unwrap_or("user")
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
        .take(40)
        .collect();
    let mut username = Username::parse(if local.is_empty() { "user" } else { &local })?;
    if tx.account_by_username(&username.key())?.is_some() {
        username = Username::parse(&format!("{}-{}", username.as_str(), random_id(6)))?;
    }
    let account = Account {
        id: Uuid::new_v4(),
        number: tx.next_account_number()?,
        username: username.as_str().to_string(),
        email: email.as_str().to_string(),
        password_hash,
        roles: vec![role],
        reseller_id: config.default_reseller_id.clone(),
        merchant_id: config.default_merchant_id.clone(),
        attributes: Default::default(),
        disabled: false,
        sessions_epoch: 0,
        created_at: now,
        updated_at: now,
    };
    accounts::put_checked(tx, &account, None)?;
    AuditEntry::new("account_created", Outcome::Success)
        .actor("system", "external sign-in")
        .tenant_of(&account)
        .target(account.id.to_string())
        .append(tx, now)?;
    Ok(account)
}

/// Why an exchange was refused.
enum Refusal {
    /// The provider answered, and the identity does not pass.
    Identity(&'static str),
    /// The provider could not be asked properly.
    Provider(FetchError),
}

/// A 200 with a JSON object is an answer; 400, 401 and 403 mean the token
/// is not good; anything else means the provider is not working right.
fn judge_answer(answer: &OutboundResponse) -> Result<serde_json::Map<String, Value>, Refusal> {
    match answer.status {
        200 => match serde_json::from_slice::<Value>(&answer.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Refusal::Provider(FetchError::BadAnswer(
                "not a JSON object".into(),
            ))),
        },
        400 | 401 | 403 => Err(Refusal::Identity("the provider refused the token")),
        503 | 429 => Err(Refusal::Provider(FetchError::Unreachable(format!(
            "provider answered {}",
            answer.status
        )))),
        other => Err(Refusal::Provider(FetchError::BadAnswer(format!(
            "provider answered {other}"
        )))),
    }
}

/// The payload of a JWT, undecoded signature and all.
fn jwt_payload(token: &str) -> Option<serde_json::Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    match serde_json::from_slice(&b64_decode(payload)?).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let ok = OutboundResponse {
            status: 200,
            body: br#"{"a":1}"#.to_vec(),
        };
        assert!(judge_answer(&ok).is_ok());
        for (status, body, provider_fault) in [
            (200, &b"[1]"[..], true),
            (200, b"<html>", true),
            (401, b"{}", false),
            (400, b"{}", false),
            (500, b"{}", true),
            (503, b"{}", true),
        ] {
            let r = judge_answer(&OutboundResponse {
                status,
                body: body.to_vec(),
            });
            assert_eq!(
                matches!(r, Err(Refusal::Provider(_))),
                provider_fault,
                "{status}"
            );
        }
    }
}
