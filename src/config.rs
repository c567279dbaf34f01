//! Settings: defaults < TOML file < `LATCHKEY_*` environment < flags.
//!
//! One struct, [`Layer`], is read three ways: clap fills it from flags and
//! environment variables (clap gives a flag precedence over its variable),
//! serde fills it from the `--config` file (unknown keys are an error), and
//! [`Settings::resolve`] lays the first over the second and fills the rest
//! with defaults. `latchkey serve --help` lists every setting with its
//! variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::password::HashParams;

/// One layer of settings; every field optional.
#[derive(clap::Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Directory for the store and the master key [default: ./latchkey-data]
    #[arg(long, env = "LATCHKEY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address and port to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "LATCHKEY_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// PEM certificate chain; with --tls-key, serve HTTPS
    #[arg(long, env = "LATCHKEY_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert
    #[arg(long, env = "LATCHKEY_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy) [default: false]
    #[arg(long, env = "LATCHKEY_INSECURE_HTTP", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub insecure_http: Option<bool>,

    /// `iss` claim of issued tokens [default: latchkey]
    #[arg(long, env = "LATCHKEY_ISSUER", value_name = "TEXT")]
    pub issuer: Option<String>,

    /// `aud` claim of issued tokens [default: latchkey]
    #[arg(long, env = "LATCHKEY_AUDIENCE", value_name = "TEXT")]
    pub audience: Option<String>,

    /// Access token lifetime in seconds [default: 900]
    #[arg(long, env = "LATCHKEY_ACCESS_TTL", value_name = "SECONDS")]
    pub access_ttl: Option<u64>,

    /// Refresh token lifetime in seconds [default: 604800]
    #[arg(long, env = "LATCHKEY_REFRESH_TTL", value_name = "SECONDS")]
    pub refresh_ttl: Option<u64>,

    /// Absolute session lifetime in seconds, whatever refreshes happen [default: 604800]
    #[arg(long, env = "LATCHKEY_SESSION_TTL", value_name = "SECONDS")]
    pub session_ttl: Option<u64>,

    /// argon2id memory cost in KiB [default: 19456]
    #[arg(long, env = "LATCHKEY_ARGON2_MEMORY_KIB", value_name = "KIB")]
    pub argon2_memory_kib: Option<u32>,

    /// argon2id passes [default: 2]
    #[arg(long, env = "LATCHKEY_ARGON2_ITERATIONS", value_name = "N")]
    pub argon2_iterations: Option<u32>,

    /// argon2id lanes [default: 1]
    #[arg(long, env = "LATCHKEY_ARGON2_PARALLELISM", value_name = "N")]
    pub argon2_parallelism: Option<u32>,

    /// Password hashes allowed to run at once [default: number of CPU cores]
    #[arg(long, env = "LATCHKEY_HASH_WORKERS", value_name = "N")]
    pub hash_workers: Option<usize>,

    /// Password hashes allowed to wait; beyond this, 503 with Retry-After [default: 64]
    #[arg(long, env = "LATCHKEY_HASH_QUEUE", value_name = "N")]
    pub hash_queue: Option<usize>,

    /// Largest request body in bytes [default: 65536]
    #[arg(long, env = "LATCHKEY_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Largest request head (request line and headers) in bytes [default: 16384]
    #[arg(long, env = "LATCHKEY_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,

    /// Most connections open at once [default: 1024]
    #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most connections open at once from one client address (IPv6 by /64); trusted proxies are exempt [default: 64]
    #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// Seconds a connection may go without a complete request head: from accept (TLS handshake included) and from the end of each response [default: 10]
    #[arg(long, env = "LATCHKEY_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<u64>,

    /// Seconds to let in-flight requests finish on shutdown [default: 10]
    #[arg(long, env = "LATCHKEY_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    pub shutdown_timeout: Option<u64>,

    /// Login attempts per minute from one client address, on every route that checks a password or exchanges a credential [default: 30]
    #[arg(long, env = "LATCHKEY_RATE_LOGIN_PER_IP", value_name = "N")]
    pub rate_login_per_ip: Option<u32>,

    /// Login attempts per minute for one account identifier (email or username, normalised) [default: 10]
    #[arg(long, env = "LATCHKEY_RATE_LOGIN_PER_ACCOUNT", value_name = "N")]
    pub rate_login_per_account: Option<u32>,

    /// Consecutive failed passwords that lock an account (or an identifier that names none) [default: 10]
    #[arg(long, env = "LATCHKEY_LOCKOUT_THRESHOLD", value_name = "N")]
    pub lockout_threshold: Option<u32>,

    /// Seconds a lock lasts [default: 1800]
    #[arg(long, env = "LATCHKEY_LOCKOUT_SECONDS", value_name = "SECONDS")]
    pub lockout_seconds: Option<u64>,

    /// Most API keys one account may hold; creating one more is refused [default: 100]
    #[arg(long, env = "LATCHKEY_MAX_API_KEYS_PER_ACCOUNT", value_name = "N")]
    pub max_api_keys_per_account: Option<u32>,

    /// Most live S2S tokens one tenant (a merchant, or a reseller for its reseller-scoped tokens) may hold; issuing one more is refused [default: 100]
    #[arg(long, env = "LATCHKEY_MAX_S2S_TOKENS_PER_TENANT", value_name = "N")]
    pub max_s2s_tokens_per_tenant: Option<u32>,

    /// Longest lifetime of an S2S token, in seconds; a token issued without `expires_in` gets this lifetime [default: 31536000, 365 days]
    #[arg(long, env = "LATCHKEY_S2S_MAX_TTL", value_name = "SECONDS")]
    pub s2s_max_ttl: Option<u64>,

    /// Proxies allowed to set X-Forwarded-For: addresses or CIDR ranges, comma-separated [default: none]
    #[arg(
        long,
        env = "LATCHKEY_TRUSTED_PROXIES",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,

    /// Accept opaque tokens (token-and-social-login) in a `token` query parameter as well as the Authorization header [default: true]
    #[arg(long, env = "LATCHKEY_TOKEN_QUERY_PARAM", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub token_query_param: Option<bool>,

    /// Google OAuth client ids whose access tokens may sign in, comma-separated; unset turns Google sign-in off
    #[arg(
        long,
        env = "LATCHKEY_GOOGLE_CLIENT_IDS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub google_client_ids: Option<Vec<String>>,

    /// Microsoft app (client) ids whose access tokens may sign in, comma-separated; unset turns Microsoft sign-in off
    #[arg(
        long,
        env = "LATCHKEY_MICROSOFT_CLIENT_IDS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub microsoft_client_ids: Option<Vec<String>>,

    /// Microsoft Entra tenant ids (`tid`) whose users may sign in, comma-separated; required when Microsoft sign-in is on
    #[arg(
        long,
        env = "LATCHKEY_MICROSOFT_TENANT_IDS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub microsoft_tenant_ids: Option<Vec<String>>,

    /// Google Workspace domains (`hd`) whose users may sign in, comma-separated; unset admits any Google account
    #[arg(
        long,
        env = "LATCHKEY_GOOGLE_HOSTED_DOMAINS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub google_hosted_domains: Option<Vec<String>>,

    /// Google's tokeninfo endpoint [default: https://oauth2.googleapis.com/tokeninfo]
    #[arg(long, env = "LATCHKEY_GOOGLE_TOKENINFO_URL", value_name = "URL")]
    pub google_tokeninfo_url: Option<String>,

    /// Microsoft Graph's /me endpoint [default: https://graph.microsoft.com/v1.0/me]
    #[arg(long, env = "LATCHKEY_MICROSOFT_USERINFO_URL", value_name = "URL")]
    pub microsoft_userinfo_url: Option<String>,

    /// Extra CA certificates (PEM files, comma-separated) trusted for provider connections, besides Mozilla's roots
    #[arg(
        long,
        env = "LATCHKEY_PROVIDER_CA_FILES",
        value_name = "FILES",
        value_delimiter = ','
    )]
    pub provider_ca_files: Option<Vec<PathBuf>>,

    /// Seconds to wait for an identity provider [default: 5]
    #[arg(long, env = "LATCHKEY_PROVIDER_TIMEOUT", value_name = "SECONDS")]
    pub provider_timeout: Option<u64>,

    /// Create an account at the first external sign-in of an unknown email [default: false]
    #[arg(long, env = "LATCHKEY_EXTERNAL_AUTO_CREATE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub external_auto_create: Option<bool>,

    /// Role of accounts created at external sign-in [default: user]
    #[arg(long, env = "LATCHKEY_EXTERNAL_DEFAULT_ROLE", value_name = "ROLE")]
    pub external_default_role: Option<String>,

    /// Reseller of accounts created at external sign-in [default: none]
    #[arg(long, env = "LATCHKEY_EXTERNAL_DEFAULT_RESELLER_ID", value_name = "ID")]
    pub external_default_reseller_id: Option<String>,

    /// Merchant of accounts created at external sign-in [default: none]
    #[arg(long, env = "LATCHKEY_EXTERNAL_DEFAULT_MERCHANT_ID", value_name = "ID")]
    pub external_default_merchant_id: Option<String>,

    /// Log format: text or json [default: text]
    #[arg(long, env = "LATCHKEY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Write a generated first-admin password to <data-dir>/initial-admin-password (0600) instead of printing it [default: true under systemd, else false]
    #[arg(long, env = "LATCHKEY_ADMIN_PASSWORD_FILE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub admin_password_file: Option<bool>,
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives; LATCHKEY_LOG, when set, wins; reloaded on SIGHUP [default: info]
    #[arg(long, env = "LATCHKEY_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Bearer secret /metrics requires from every client when set (16 to 256 visible ASCII characters; prefer the variable or the file to the flag, which others can read in the process list) [default: none: /metrics answers loopback clients only]
    #[arg(
        long,
        env = "LATCHKEY_METRICS_TOKEN",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub metrics_token: Option<Secret>,

    /// Serve /metrics on this address (plain HTTP) instead of the main listener [default: none]
    #[arg(long, env = "LATCHKEY_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,

    /// Seconds without a console request after which a console session ends (60 to 86400, at most the lifetime) [default: 1800]
    #[arg(long, env = "LATCHKEY_CONSOLE_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub console_idle_timeout: Option<u64>,

    /// Absolute lifetime of a console session in seconds, however active (300 to 2592000) [default: 43200]
    #[arg(
        long,
        env = "LATCHKEY_CONSOLE_SESSION_LIFETIME",
        value_name = "SECONDS"
    )]
    pub console_session_lifetime: Option<u64>,

    /// Seconds after a console session's password was entered (sign-in or re-authentication) within which it may take sensitive actions (60 to 3600) [default: 600]
    #[arg(long, env = "LATCHKEY_CONSOLE_REAUTH_WINDOW", value_name = "SECONDS")]
    pub console_reauth_window: Option<u64>,
}

/// A secret setting: never shown by `Debug`, so no log line or error that
/// prints the settings carries it.
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one comparison that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// How log lines are written.
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Layer {
    /// This layer over `lower`: each field from `self` if set, else `lower`.
    pub fn over(self, lower: Layer) -> Layer {
        macro_rules! merge {
            ($($field:ident),* $(,)?) => {
                Layer { $($field: self.$field.or(lower.$field)),* }
            };
        }
        merge!(
            data_dir,
            listen,
            tls_cert,
            tls_key,
            insecure_http,
            issuer,
            audience,
            access_ttl,
            refresh_ttl,
            session_ttl,
            argon2_memory_kib,
            argon2_iterations,
            argon2_parallelism,
            hash_workers,
            hash_queue,
            max_body_bytes,
            max_header_bytes,
            max_connections,
            max_connections_per_ip,
            header_read_timeout,
            shutdown_timeout,
            rate_login_per_ip,
            rate_login_per_account,
            lockout_threshold,
            lockout_seconds,
            max_api_keys_per_account,
            max_s2s_tokens_per_tenant,
            s2s_max_ttl,
            trusted_proxies,
            token_query_param,
            google_client_ids,
            microsoft_client_ids,
            microsoft_tenant_ids,
            google_hosted_domains,
            google_tokeninfo_url,
            microsoft_userinfo_url,
            provider_ca_files,
            provider_timeout,
            external_auto_create,
            external_default_role,
            external_default_reseller_id,
            external_default_merchant_id,
            log_format,
            admin_password_file,
            log_level,
            metrics_token,
            metrics_listen,
            console_idle_timeout,
            console_session_lifetime,
            console_reauth_window,
        )
    }

    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }
}

/// Settings with every value decided.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Certificate and key files, when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub insecure_http: bool,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: u64,
    pub refresh_ttl: u64,
    pub session_ttl: u64,
    pub hash_params: HashParams,
    pub hash_workers: usize,
    pub hash_queue: usize,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_read_timeout: u64,
    pub shutdown_timeout: u64,
    pub rate_login_per_ip: u32,
    pub rate_login_per_account: u32,
    pub lockout_threshold: u32,
    pub lockout_seconds: u64,
    pub max_api_keys_per_account: u32,
    pub max_s2s_tokens_per_tenant: u32,
    pub s2s_max_ttl: u64,
    pub trusted_proxies: crate::server::context::TrustedProxies,
    pub token_query_param: bool,
    pub external: crate::domain::external::ExternalConfig,
    pub provider_ca_files: Vec<PathBuf>,
    pub provider_timeout: u64,
    pub log_format: LogFormat,
    /// Whether a generated first-admin password goes to a file in the data
    /// directory rather than to stderr (which systemd keeps in the journal).
    pub admin_password_file: bool,
    /// The log filter (`log_level`), checked to parse.
    pub log_level: String,
    /// The bearer secret `/metrics` requires, if any.
    pub metrics_token: Option<Secret>,
    /// A listener of its own for `/metrics`, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds without a console request that end a console session.
    pub console_idle_timeout: u64,
    /// Seconds a console session lasts from its sign-in.
    pub console_session_lifetime: u64,
    /// Seconds a console session's password entry allows sensitive actions.
    pub console_reauth_window: u64,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings file {path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Fills unset values with defaults and checks the combination.
    pub fn resolve(layer: Layer) -> Result<Settings, ConfigError> {
        let defaults = HashParams::default();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let tls = match (layer.tls_cert, layer.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "--tls-cert and --tls-key must be given together".into(),
                ));
            }
        };
        let settings = Settings {
            data_dir: layer
                .data_dir
                .unwrap_or_else(|| PathBuf::from("./latchkey-data")),
            listen: layer
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            tls,
            insecure_http: layer.insecure_http.unwrap_or(false),
            issuer: layer.issuer.unwrap_or_else(|| "latchkey".into()),
            audience: layer.audience.unwrap_or_else(|| "latchkey".into()),
            access_ttl: layer.access_ttl.unwrap_or(900),
            refresh_ttl: layer.refresh_ttl.unwrap_or(7 * 24 * 3600),
            session_ttl: layer.session_ttl.unwrap_or(7 * 24 * 3600),
            hash_params: HashParams {
                memory_kib: layer.argon2_memory_kib.unwrap_or(defaults.memory_kib),
                iterations: layer.argon2_iterations.unwrap_or(defaults.iterations),
                parallelism: layer.argon2_parallelism.unwrap_or(defaults.parallelism),
            },
            hash_workers: layer.hash_workers.unwrap_or(cores).max(1),
            hash_queue: layer.hash_queue.unwrap_or(64),
            max_body_bytes: layer.max_body_bytes.unwrap_or(64 * 1024),
            max_header_bytes: layer.max_header_bytes.unwrap_or(16 * 1024),
            max_connections: layer.max_connections.unwrap_or(1024).max(1),
            max_connections_per_ip: layer.max_connections_per_ip.unwrap_or(64).max(1),
            header_read_timeout: layer.header_read_timeout.unwrap_or(10).max(1),
            shutdown_timeout: layer.shutdown_timeout.unwrap_or(10),
            rate_login_per_ip: layer.rate_login_per_ip.unwrap_or(30),
            rate_login_per_account: layer.rate_login_per_account.unwrap_or(10),
            lockout_threshold: layer.lockout_threshold.unwrap_or(10),
            lockout_seconds: layer.lockout_seconds.unwrap_or(1800),
            max_api_keys_per_account: layer.max_api_keys_per_account.unwrap_or(100),
            // A tenant's services need a token each, and a rotation holds
            // two at once for a while: 100 leaves room for 50 services
            // rotating together, and keeps what one tenant's deletion or
            // issuance has to read small.
            max_s2s_tokens_per_tenant: layer.max_s2s_tokens_per_tenant.unwrap_or(100),
            s2s_max_ttl: layer.s2s_max_ttl.unwrap_or(365 * 24 * 3600),
            trusted_proxies: crate::server::context::TrustedProxies::parse(
                &layer.trusted_proxies.unwrap_or_default(),
            )
            .map_err(|e| ConfigError::Invalid(format!("--trusted-proxies: {e}")))?,
            token_query_param: layer.token_query_param.unwrap_or(true),
            external: crate::domain::external::ExternalConfig {
                google_client_ids: ids(layer.google_client_ids),
                microsoft_client_ids: ids(layer.microsoft_client_ids),
                microsoft_tenant_ids: lowercase(ids(layer.microsoft_tenant_ids)),
                google_hosted_domains: lowercase(ids(layer.google_hosted_domains)),
                google_tokeninfo_url: layer
                    .google_tokeninfo_url
                    .unwrap_or_else(|| "https://oauth2.googleapis.com/tokeninfo".into()),
                microsoft_userinfo_url: layer
                    .microsoft_userinfo_url
                    .unwrap_or_else(|| "https://graph.microsoft.com/v1.0/me".into()),
                auto_create: layer.external_auto_create.unwrap_or(false),
                default_role: layer.external_default_role.unwrap_or_else(|| "user".into()),
                default_reseller_id: layer.external_default_reseller_id,
                default_merchant_id: layer.external_default_merchant_id,
            },
            provider_ca_files: layer.provider_ca_files.unwrap_or_default(),
            provider_timeout: layer.provider_timeout.unwrap_or(5).max(1),
            log_format: layer.log_format.unwrap_or_default(),
            admin_password_file: layer.admin_password_file.unwrap_or_else(under_systemd),
            log_level: layer.log_level.unwrap_or_else(|| "info".into()),
            metrics_token: layer.metrics_token,
            metrics_listen: layer.metrics_listen,
            console_idle_timeout: layer.console_idle_timeout.unwrap_or(30 * 60),
            console_session_lifetime: layer.console_session_lifetime.unwrap_or(12 * 3600),
            console_reauth_window: layer.console_reauth_window.unwrap_or(10 * 60),
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.tls.is_none() && !self.listen.ip().is_loopback() && !self.insecure_http {
            return bad(format!(
                "refusing to serve plain HTTP on {}: passwords and tokens would cross the network in clear. \
                 Give --tls-cert and --tls-key, listen on a loopback address, or pass --insecure-http \
                 if a TLS-terminating proxy sits in front",
                self.listen
            ));
        }
        for (name, value) in [
            ("access-ttl", self.access_ttl),
            ("refresh-ttl", self.refresh_ttl),
            ("session-ttl", self.session_ttl),
            ("s2s-max-ttl", self.s2s_max_ttl),
        ] {
            if value == 0 || value > 10 * 365 * 24 * 3600 {
                return bad(format!("--{name} must be between 1 second and 10 years"));
            }
        }
        if self.max_body_bytes < 1024 {
            return bad("--max-body-bytes must be at least 1024".into());
        }
        if self.max_header_bytes < 8192 {
            return bad("--max-header-bytes must be at least 8192".into());
        }
        if self.rate_login_per_ip == 0 || self.rate_login_per_account == 0 {
            return bad("login rate limits must be at least 1 per minute".into());
        }
        if self.max_api_keys_per_account == 0 || self.max_api_keys_per_account > 10_000 {
            return bad("--max-api-keys-per-account must be between 1 and 10000".into());
        }
        if self.max_s2s_tokens_per_tenant == 0 || self.max_s2s_tokens_per_tenant > 10_000 {
            return bad("--max-s2s-tokens-per-tenant must be between 1 and 10000".into());
        }
        if self.lockout_threshold == 0 || self.lockout_seconds == 0 {
            return bad("--lockout-threshold and --lockout-seconds must be at least 1".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return bad(format!("--log-level {:?}: {e}", self.log_level));
        }
        for url in [
            &self.external.google_tokeninfo_url,
            &self.external.microsoft_userinfo_url,
        ] {
            crate::server::outbound::check_url(url).map_err(ConfigError::Invalid)?;
        }
        if !self.external.microsoft_client_ids.is_empty()
            && self.external.microsoft_tenant_ids.is_empty()
        {
            return bad(
                "LATCHKEY_MICROSOFT_CLIENT_IDS is set but LATCHKEY_MICROSOFT_TENANT_IDS \
                 (--microsoft-tenant-ids) is not: without a tenant allow-list, a user of any \
                 Microsoft Entra tenant could sign in with a token for this app. Give the \
                 tenant ids (tid) whose users may sign in"
                    .into(),
            );
        }
        if let Some(token) = &self.metrics_token {
            let t = token.expose();
            if !(16..=256).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return bad(
                    "--metrics-token must be 16 to 256 visible ASCII characters (no spaces)".into(),
                );
            }
        }
        if let Some(addr) = self.metrics_listen {
            if addr == self.listen && addr.port() != 0 {
                return bad("--metrics-listen must differ from --listen".into());
            }
            if !addr.ip().is_loopback() && !self.insecure_http {
                return bad(format!(
                    "refusing to serve /metrics as plain HTTP on {addr}: the metrics listener has no TLS. \
                     Listen on a loopback address, or pass --insecure-http if the network to it is private"
                ));
            }
        }
        // An idle time under a minute would end a session between two
        // clicks (and activity is written to the minute); a lifetime or a
        // password window without bounds would make the console's limits
        // no limits at all.
        if !(60..=86_400).contains(&self.console_idle_timeout) {
            return bad("--console-idle-timeout must be between 60 and 86400 seconds".into());
        }
        if !(300..=30 * 86_400).contains(&self.console_session_lifetime) {
            return bad(
                "--console-session-lifetime must be between 300 seconds and 30 days".into(),
            );
        }
        if self.console_idle_timeout > self.console_session_lifetime {
            return bad(
                "--console-idle-timeout must not be longer than --console-session-lifetime".into(),
            );
        }
        if !(60..=3600).contains(&self.console_reauth_window) {
            return bad("--console-reauth-window must be between 60 and 3600 seconds".into());
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return bad("--issuer and --audience must not be empty".into());
        }
        crate::domain::password::validate_params(self.hash_params).map_err(ConfigError::Invalid)
    }
}

/// Whether systemd started this process: it sets `NOTIFY_SOCKET` for a
/// notify unit and `INVOCATION_ID` for every unit.
fn under_systemd() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some() || std::env::var_os("INVOCATION_ID").is_some()
}

/// A comma-separated list, trimmed, without empty entries.
fn ids(list: Option<Vec<String>>) -> Vec<String> {
    list.unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Tenant ids and domain names compare case-insensitively.
fn lowercase(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layer_wins_field_by_field() {
        let file = Layer {
            access_ttl: Some(60),
            refresh_ttl: Some(120),
            ..Layer::default()
        };
        let env = Layer {
            refresh_ttl: Some(240),
            ..Layer::default()
        };
        let merged = env.over(file);
        assert_eq!(merged.access_ttl, Some(60));
        assert_eq!(merged.refresh_ttl, Some(240));
    }

    #[test]
    fn the_s2s_cap_layers_defaults_and_is_bounded() {
        let file: Layer = toml::from_str("max_s2s_tokens_per_tenant = 7").unwrap();
        let merged = Layer::default().over(file);
        assert_eq!(merged.max_s2s_tokens_per_tenant, Some(7));
        let settings = Settings::resolve(merged).unwrap();
        assert_eq!(settings.max_s2s_tokens_per_tenant, 7);
        let default = Settings::resolve(Layer::default()).unwrap();
        assert_eq!(default.max_s2s_tokens_per_tenant, 100);
        for bad in [0, 10_001] {
            let err = Settings::resolve(Layer {
                max_s2s_tokens_per_tenant: Some(bad),
                ..Layer::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains("--max-s2s-tokens-per-tenant"), "{err}");
        }
    }

    #[test]
    fn plain_http_only_on_loopback_or_when_asked() {
        let public = Layer {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            ..Layer::default()
        };
        let err = Settings::resolve(public.clone()).unwrap_err().to_string();
        assert!(err.contains("refusing to serve plain HTTP"), "{err}");
        let asked = Layer {
            insecure_http: Some(true),
            ..public
        };
        assert!(Settings::resolve(asked).is_ok());
        let v6 = Layer {
            listen: Some("[::1]:8080".parse().unwrap()),
            ..Layer::default()
        };
        assert!(Settings::resolve(v6).is_ok());
    }

    #[test]
    fn metrics_settings_are_checked_and_the_token_never_shown() {
        let short = Layer {
            metrics_token: Some("too-short".parse().unwrap()),
            ..Layer::default()
        };
        let err = Settings::resolve(short).unwrap_err().to_string();
        assert!(err.contains("--metrics-token"), "{err}");
        let secret = "a-long-enough-metrics-token";
        let file: Layer = toml::from_str(&format!("metrics_token = \"{secret}\"")).unwrap();
        assert!(!format!("{file:?}").contains(secret));
        let settings = Settings::resolve(file).unwrap();
        assert_eq!(
            settings.metrics_token.as_ref().map(Secret::expose),
            Some(secret)
        );
        assert!(!format!("{settings:?}").contains(secret));

        let public = Layer {
            metrics_listen: Some("0.0.0.0:9090".parse().unwrap()),
            ..Layer::default()
        };
        let err = Settings::resolve(public.clone()).unwrap_err().to_string();
        assert!(err.contains("/metrics"), "{err}");
        let asked = Layer {
            insecure_http: Some(true),
            ..public
        };
        assert!(Settings::resolve(asked).is_ok());
        let same = Layer {
            listen: Some("127.0.0.1:8080".parse().unwrap()),
            metrics_listen: Some("127.0.0.1:8080".parse().unwrap()),
            ..Layer::default()
        };
        let err = Settings::resolve(same).unwrap_err().to_string();
        assert!(err.contains("--metrics-listen"), "{err}");
    }

    /// The console's session limits default to 30 minutes idle, 12 hours
    /// in all and a 10-minute password window, are read from the file,
    /// and are refused outside their bounds.
    #[test]
    fn console_session_limits_layer_default_and_are_bounded() {
        let default = Settings::resolve(Layer::default()).unwrap();
        assert_eq!(
            (
                default.console_idle_timeout,
                default.console_session_lifetime,
                default.console_reauth_window
            ),
            (1800, 43_200, 600)
        );
        let file: Layer = toml::from_str(
            "console_idle_timeout = 120\nconsole_session_lifetime = 3600\nconsole_reauth_window = 300",
        )
        .unwrap();
        let settings = Settings::resolve(Layer::default().over(file)).unwrap();
        assert_eq!(
            (
                settings.console_idle_timeout,
                settings.console_session_lifetime,
                settings.console_reauth_window
            ),
            (120, 3600, 300)
        );
        let refused = [
            ("--console-idle-timeout", Some(59), None, None),
            ("--console-idle-timeout", Some(86_401), None, None),
            ("--console-session-lifetime", None, Some(299), None),
            (
                "--console-session-lifetime",
                None,
                Some(30 * 86_400 + 1),
                None,
            ),
            ("--console-idle-timeout", Some(7200), Some(3600), None),
            ("--console-reauth-window", None, None, Some(59)),
            ("--console-reauth-window", None, None, Some(3601)),
        ];
        for (name, idle, lifetime, window) in refused {
            let err = Settings::resolve(Layer {
                console_idle_timeout: idle,
                console_session_lifetime: lifetime,
                console_reauth_window: window,
                ..Layer::default()
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let err = toml::from_str::<Layer>("listn = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
