//! The records latchkey keeps, as they are written to disk.
//!
//! Each record is stored as a JSON document in a redb table (see
//! `store/tables.rs` for the tables). JSON keeps the file format documented by
//! these types alone and lets a newer build add a field with a serde default
//! without a migration. Secrets never appear here in clear: refresh tokens,
//! opaque tokens, API keys and S2S tokens are kept as SHA-256 digests, and
//! passwords as argon2id PHC strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A person or service that can sign in.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Account {
    /// Stable identifier, exposed where a document wants a uuid or string id.
    pub id: Uuid,
    /// Stable sequential number, for documents that want a numeric id.
    pub number: u64,
    /// Display form of the username (NFKC-normalised); uniqueness and lookup
    /// use its lowercase form.
    pub username: String,
    /// Trimmed email as entered; lookup uses its lowercase form.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// At least one role; the first is the primary role.
    pub roles: Vec<String>,
    /// Reseller tenant, if the account belongs to one.
    #[serde(default)]
    pub reseller_id: Option<String>,
    /// Merchant tenant, if the account belongs to one.
    #[serde(default)]
    pub merchant_id: Option<String>,
    /// Free-form string attributes (such as `receipts_email`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// A disabled account cannot sign in and holds no live credentials.
    #[serde(default)]
    pub disabled: bool,
    /// Raised each time every session of the account is revoked, so that
    /// a login that read the account before the revocation and commits
    /// after it is refused (its session would otherwise escape it).
    #[serde(default)]
    pub sessions_epoch: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl Account {
    /// The primary role (the first one).
    pub fn primary_role(&self) -> &str {
        self.roles.first().map(String::as_str).unwrap_or("user")
    }
}

/// What kind of credential a session hands out.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// JWT access tokens, optionally with rotating refresh tokens.
    Jwt,
    /// One opaque bearer token (the token-and-social-login document).
    Opaque,
}

/// One sign-in: the unit that logout and revocation act on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Session {
    /// Carried as `sid` in every access token of the session.
    pub id: Uuid,
    /// The account signed in.
    pub account: Uuid,
    /// The credential kind this session issues.
    pub kind: SessionKind,
    /// When set, tokens of this session carry only this role.
    #[serde(default)]
    pub role: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last login or refresh (not of every request);
    /// for a console session, of its last request, to the minute.
    pub last_used_at: i64,
    /// Absolute end of the session, whatever refreshes happen.
    pub expires_at: i64,
    /// Generation of the refresh token that is currently valid; older
    /// generations presented again mean the token was stolen.
    #[serde(default)]
    pub refresh_generation: u32,
    /// When the current refresh token stops working, if there is one.
    #[serde(default)]
    pub refresh_expires_at: Option<i64>,
    /// The latest `exp` of any access token issued in this session: a
    /// revocation must be remembered until then.
    pub access_until: i64,
    /// Set once the session is revoked; never cleared.
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// Why it was revoked (logout, reuse detected, account disabled, ...).
    #[serde(default)]
    pub revoked_reason: Option<String>,
    /// Client address at sign-in.
    pub client_ip: String,
    /// User agent at sign-in, truncated.
    pub user_agent: String,
    /// Opened by the console's sign-in, and by nothing else: its token is
    /// a credential only in the console's cookie, and it ends after the
    /// console's idle time. Its `last_used_at` is its last console request,
    /// written at most once a minute.
    #[serde(default)]
    pub console: bool,
    /// When the password was last entered in this session (its sign-in, or
    /// a re-authentication): console sessions only.
    #[serde(default)]
    pub password_at: Option<i64>,
}

/// A refresh token digest points at its session and generation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RefreshRecord {
    /// The session the token belongs to.
    pub session: Uuid,
    /// The generation it was issued as.
    pub generation: u32,
    /// Unix seconds after which the token is refused.
    pub expires_at: i64,
}

/// A JWT signing key. The private half is sealed with the data directory's
/// master key (AES-256-GCM), so the store file alone cannot sign tokens.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SigningKey {
    /// Key id, published in the JWKS and carried in every token header.
    pub kid: String,
    /// Always `ES256` today; bound to the key, never taken from a token.
    pub alg: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Uncompressed P-256 point, base64url.
    pub public_key: String,
    /// Nonce followed by the sealed PKCS#8 document, base64url.
    pub sealed_private_key: String,
    /// The key new tokens are signed with; others only verify.
    pub active: bool,
    /// Unix seconds when the key stopped signing; `None` while it signs.
    /// A retired key verifies until the last token it signed has expired
    /// (access lifetime plus leeway after this), then is deleted. Records
    /// written before this field existed read as `None` and are stamped
    /// at the next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
}

/// One line of the append-only audit log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditEvent {
    /// Position in the log; newer events have larger numbers.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// What happened, such as `login`, `refresh`, `logout`.
    pub event: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Who acted: an account id, `s2s:<id>`, or null for anonymous attempts.
    #[serde(default)]
    pub actor: Option<String>,
    /// Human-readable actor (username, token name).
    #[serde(default)]
    pub actor_name: Option<String>,
    /// What was acted on (account id, session id, key id, tenant id, ...).
    #[serde(default)]
    pub target: Option<String>,
    /// Tenant of the target, for scoping the log.
    #[serde(default)]
    pub reseller_id: Option<String>,
    /// Tenant of the target, for scoping the log.
    #[serde(default)]
    pub merchant_id: Option<String>,
    /// Client address of the request.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// Extra words, never a secret.
    #[serde(default)]
    pub detail: Option<String>,
}

/// A reseller tenant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reseller {
    /// Chosen by the creator or generated (`res_...`).
    pub id: String,
    /// Display name, as the admin gave it.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last rename.
    pub updated_at: i64,
}

/// A merchant tenant, under exactly one reseller.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Merchant {
    /// Chosen by the creator or generated (`mer_...`).
    pub id: String,
    /// The reseller it belongs to; fixed for the merchant's life.
    pub reseller_id: String,
    /// Display name, as the admin gave it.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last rename.
    pub updated_at: i64,
}

/// A role an admin defined (built-in roles are not stored).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CustomRole {
    /// The role's name as first given (compared without regard to case).
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// An API key. The secret is kept only as its SHA-256 digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ApiKey {
    /// `key_` and 16 lowercase letters and digits; also inside the secret.
    pub id: String,
    /// The account the key acts as.
    pub account: Uuid,
    /// A label its owner chose, shown in lists.
    pub name: String,
    /// SHA-256 of the whole `sk_live_...` string, base64url.
    pub digest: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Last use as last written to the store (at most once a minute; the
    /// server holds fresher values in memory).
    #[serde(default)]
    pub last_used: Option<i64>,
    /// When set, the key acts with this one role of its owner's (keys
    /// made before `roles` existed; newer keys set both when they carry
    /// one role).
    #[serde(default)]
    pub role: Option<String>,
    /// The roles the key acts with, fixed at creation: at most those of
    /// the credential that made it. Empty only on keys made before this
    /// field existed, which act with `role` or else their owner's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The roles were chosen at creation (`role` or `roles`), rather than
    /// all of the creating credential's: lists show them.
    #[serde(default)]
    pub narrowed: bool,
    /// When set, the key is refused from this time on.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A server-to-server token. The secret is kept only as its digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct S2sToken {
    /// 16 lowercase letters and digits; also inside the secret.
    pub id: String,
    /// Shown in the audit log as the actor's name.
    pub name: String,
    /// `reseller`, `merchant` or `user`.
    pub role: String,
    /// The reseller the token belongs to, itself or through its merchant.
    pub reseller_id: String,
    /// The merchant the token belongs to, if it belongs to one.
    #[serde(default)]
    pub merchant_id: Option<String>,
    /// SHA-256 of the whole `s2s_...` string, base64url.
    pub digest: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Who issued it: an account id, or `s2s:<id>`. The token belongs to
    /// its tenant and outlives that account.
    pub created_by: String,
    /// When it stops working. Tokens issued before lifetimes existed have
    /// none and are held to `created_at` plus the configured maximum.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Set once the token is revoked; never cleared.
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// Unix seconds of the token's first use, written once (later uses
    /// are not recorded).
    #[serde(default)]
    pub last_used: Option<i64>,
}

/// Failed-password state of one login identifier (email or username, in
/// lookup form, whether or not an account has it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lockout {
    /// Consecutive failures since the last success or lock.
    pub failures: u32,
    /// While in the future, every attempt is refused.
    #[serde(default)]
    pub locked_until: Option<i64>,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}
