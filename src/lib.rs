//! latchkey: a self-contained authentication server.
//!
//! One binary holds the HTTP server, its embedded store, password hashing,
//! token signing and the published APIs. The modules, from the socket in:
//!
//! - [`server`]: transport only. Listener, TLS, connection cap, timeouts,
//!   body limit, request context (client address, request id), graceful
//!   drain. Hands each request, body read, to a [`server::Handler`].
//! - [`api`]: the router and one thin adapter per API document (plus the
//!   canonical API). Parses requests, calls [`domain`], shapes responses in
//!   the document's words.
//! - [`domain`]: accounts, passwords, tokens, sessions, audit. No HTTP.
//!   [`domain::Core`] is the one object adapters call.
//! - [`store`]: the only code that touches redb. Tables, schema version,
//!   migrations, typed records.
//! - [`config`] and [`cli`]: settings from flags, environment, file and
//!   defaults.
//! - [`metrics`]: the Prometheus registry the domain and the server report
//!   to, and `GET /metrics`.
//!
//! [`start`] wires them together; `main.rs` only parses the command line,
//! sets up logging and waits for a signal.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod server;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::domain::accounts::{Email, NewAccount, Username};
use crate::domain::password::Password;
use crate::domain::{AuditEntry, Clock, Core, CoreConfig, Error, Outcome, StartError};

/// The first admin account, made on first start with an empty store.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// `LATCHKEY_ADMIN_USERNAME`, default `admin`.
    pub username: Option<String>,
    /// `LATCHKEY_ADMIN_EMAIL`, default `admin@localhost`.
    pub email: Option<String>,
    /// `LATCHKEY_ADMIN_PASSWORD`; when unset a random one is generated and
    /// returned once.
    pub password: Option<String>,
}

impl Bootstrap {
    /// Reads the `LATCHKEY_ADMIN_*` variables.
    pub fn from_env() -> Bootstrap {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Bootstrap {
            username: var("LATCHKEY_ADMIN_USERNAME"),
            email: var("LATCHKEY_ADMIN_EMAIL"),
            password: var("LATCHKEY_ADMIN_PASSWORD"),
        }
    }
}

/// A running server.
pub struct Running {
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// A password generated for the first admin, to show once.
    pub generated_admin_password: Option<String>,
    /// The domain, kept for the final flush at shutdown.
    core: Arc<Core>,
    /// The listener and its connections.
    listening: server::Listening,
    /// The metrics listener (`metrics_listen`), when there is one.
    metrics_listening: Option<server::Listening>,
    /// Periodic upkeep.
    housekeeping: JoinHandle<()>,
    /// Tells the upkeep loop to stop between rounds.
    stop_housekeeping: tokio::sync::watch::Sender<bool>,
    /// How long shutdown may wait for work in flight.
    shutdown_timeout: Duration,
}

impl Running {
    /// Keys held by the login rate limiters: (addresses, identifiers).
    pub fn limiter_sizes(&self) -> (usize, usize) {
        self.core.limiter_sizes()
    }

    /// Password hashes running or waiting right now.
    pub fn hashes_in_flight(&self) -> usize {
        self.core.hashes_in_flight()
    }

    /// argon2 verifications run since start: every password check that
    /// reaches the hashing pool runs exactly one.
    pub fn hash_verifications(&self) -> u64 {
        self.core.hash_verifications()
    }

    /// The domain core, for tests that must call it directly: to line up
    /// two changes that a socket cannot line up (both authenticated before
    /// either is written).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The address of the metrics listener, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listening.as_ref().map(|l| l.addr)
    }

    /// Runs one round of upkeep now (what the periodic loop does).
    pub async fn housekeeping(&self) {
        if let Err(e) = self.core.housekeeping().await {
            tracing::warn!(error = %e, "housekeeping failed");
        }
    }

    /// Stops accepting, drains in-flight requests, writes what is held in
    /// memory, and closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop_housekeeping.send(true);
        let _ = self.housekeeping.await;
        self.listening.shutdown().await;
        if let Some(metrics) = self.metrics_listening {
            metrics.shutdown().await;
        }
        if let Err(e) = self.core.flush().await {
            tracing::warn!(error = %e, "could not write API key usage at shutdown");
        }
        // Background work (an audit entry being appended, a connection
        // past the drain timeout) may still hold the core; the store closes
        // when the last holder lets go, so give them the same grace period.
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        while Arc::strong_count(&self.core) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(self.core);
    }
}

/// Opens the store, makes the first admin if needed, and starts listening.
pub async fn start(
    settings: &Settings,
    clock: Clock,
    bootstrap: Bootstrap,
) -> Result<Running, StartError> {
    let core_config = CoreConfig {
        data_dir: settings.data_dir.clone(),
        issuer: settings.issuer.clone(),
        audience: settings.audience.clone(),
        access_ttl: seconds(settings.access_ttl),
        refresh_ttl: seconds(settings.refresh_ttl),
        session_ttl: seconds(settings.session_ttl),
        hash_params: settings.hash_params,
        hash_workers: settings.hash_workers,
        hash_queue: settings.hash_queue,
        rate_login_per_ip: settings.rate_login_per_ip,
        rate_login_per_account: settings.rate_login_per_account,
        lockout_threshold: settings.lockout_threshold,
        lockout_seconds: settings.lockout_seconds,
        max_api_keys_per_account: usize::try_from(settings.max_api_keys_per_account)
            .unwrap_or(usize::MAX),
        max_s2s_tokens_per_tenant: usize::try_from(settings.max_s2s_tokens_per_tenant)
            .unwrap_or(usize::MAX),
        s2s_max_ttl: seconds(settings.s2s_max_ttl),
        external: settings.external.clone(),
    };
    let fetch: Arc<dyn domain::external::Fetch> = Arc::new(
        server::outbound::HttpsClient::new(
            &settings.provider_ca_files,
            Duration::from_secs(settings.provider_timeout),
        )
        .map_err(StartError::Config)?,
    );
    let core = {
        let clock = clock.clone();
        tokio::task::spawn_blocking(move || Core::open(core_config, clock, fetch))
            .await
            .map_err(|e| StartError::Config(format!("startup task failed: {e}")))??
    };
    core.check_external_defaults().map_err(StartError::Config)?;
    let routes: Vec<&'static str> = api::routes().iter().map(|r| r.path).collect();
    let metrics = Arc::new(
        metrics::Metrics::new(
            metrics::Access {
                token: settings.metrics_token.clone(),
                own_listener: settings.metrics_listen.is_some(),
            },
            &routes,
        )
        .map_err(StartError::Config)?,
    );
    let mut core = core;
    core.set_observer(metrics.clone());
    let core = Arc::new(core);
    let generated_admin_password = bootstrap_admin(&core, bootstrap).await?;
    let app = api::App::new(
        core.clone(),
        api::ApiOptions {
            token_query_param: settings.token_query_param,
            metrics: metrics.clone(),
        },
    )
    .map_err(StartError::Config)?;
    let server_config = server::ServerConfig {
        listen: settings.listen,
        tls: settings.tls.clone(),
        max_connections: settings.max_connections,
        max_connections_per_ip: settings.max_connections_per_ip,
        header_read_timeout: Duration::from_secs(settings.header_read_timeout),
        max_header_bytes: settings.max_header_bytes,
        max_body_bytes: settings.max_body_bytes,
        shutdown_timeout: Duration::from_secs(settings.shutdown_timeout),
        trusted_proxies: settings.trusted_proxies.clone(),
    };
    let metrics_listening = match settings.metrics_listen {
        Some(addr) => {
            let config = server::ServerConfig {
                listen: addr,
                tls: None,
                ..server_config.clone()
            };
            let endpoint = metrics::Endpoint {
                core: core.clone(),
                metrics,
            };
            Some(
                server::listen(config, Arc::new(endpoint))
                    .await
                    .map_err(|e| StartError::Config(e.to_string()))?,
            )
        }
        None => None,
    };
    let listening = server::listen(server_config, Arc::new(api::Api(app)))
        .await
        .map_err(|e| StartError::Config(e.to_string()))?;
    let (stop_housekeeping, mut stopped) = tokio::sync::watch::channel(false);
    let housekeeping = {
        let core = core.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                if let Err(e) = core.housekeeping().await {
                    tracing::warn!(error = %e, "housekeeping failed");
                }
            }
        })
    };
    Ok(Running {
        addr: listening.addr,
        tls: settings.tls.is_some(),
        generated_admin_password,
        core,
        listening,
        metrics_listening,
        housekeeping,
        stop_housekeeping,
        shutdown_timeout: Duration::from_secs(settings.shutdown_timeout.max(1)),
    })
}

/// How often upkeep runs (API key last-use writes, revocation pruning).
/// Last-use times are written at most once a minute per key whatever this
/// is; a shorter interval only makes them land sooner after that minute.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Creates the first admin when the store has no accounts. Returns the
/// password if it was generated here.
async fn bootstrap_admin(core: &Core, bootstrap: Bootstrap) -> Result<Option<String>, StartError> {
    if core.store.read()?.account_count()? > 0 {
        return Ok(None);
    }
    let username = Username::parse(bootstrap.username.as_deref().unwrap_or("admin"))
        .map_err(|e| StartError::Config(format!("LATCHKEY_ADMIN_USERNAME: {e}")))?;
    let email = Email::parse(bootstrap.email.as_deref().unwrap_or("admin@localhost"))
        .map_err(|e| StartError::Config(format!("LATCHKEY_ADMIN_EMAIL: {e}")))?;
    let (password, generated) = match bootstrap.password {
        Some(p) => (p, None),
        None => {
            let p = domain::secrets::random_id(24);
            (p.clone(), Some(p))
        }
    };
    let password = Password::new(&password)
        .map_err(|e| StartError::Config(format!("LATCHKEY_ADMIN_PASSWORD: {e}")))?;
    let created = core
        .create_account(
            NewAccount {
                username,
                email,
                password,
                roles: vec!["admin".into()],
                reseller_id: None,
                merchant_id: None,
                attributes: Default::default(),
            },
            AuditEntry::new("account_created", Outcome::Success)
                .actor("system", "bootstrap")
                .detail("first admin"),
        )
        .await;
    match created {
        Ok(_) => Ok(generated),
        Err(Error::Busy { .. }) => Err(StartError::Config("hashing pool unavailable".into())),
        Err(e) => Err(StartError::Domain(e)),
    }
}
