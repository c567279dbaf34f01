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
//! - [`control`]: the Unix socket in the data directory through which the
//!   operator's commands reach a running server.
//! - [`ops`]: those commands (`recover-admin`, `backup`, `restore`,
//!   `verify`, `check-config`, `healthcheck`) and the backup format.
//! - [`reload`] and [`systemd`]: SIGHUP reloads, and readiness, watchdog
//!   and reload notifications for `Type=notify`.
//! - [`metrics`]: the Prometheus registry the domain and the server report
//!   to, and `GET /metrics`.
//! - [`logsink`]: where log lines go: stderr, with access lines buffered
//!   and written by a thread of their own.
//! - [`memory`]: hands the allocator's free memory back once the server is
//!   quiet.
//!
//! [`start`] wires them together; `main.rs` only parses the command line,
//! sets up logging and waits for a signal.

pub mod api;
pub mod cli;
pub mod config;
pub mod console;
pub mod control;
pub mod domain;
pub mod logsink;
pub mod memory;
pub mod metrics;
pub mod ops;
pub mod reload;
pub mod server;
pub mod store;
pub mod systemd;

#[cfg(test)]
mod props;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::domain::recovery::{Bootstrapped, FirstAdmin};
use crate::domain::{Clock, Core, CoreConfig, Error, StartError};

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
    /// The first admin, when this start made it: its names, and its
    /// generated password (to show once) or the file that holds it.
    pub first_admin: Option<Bootstrapped>,
    /// The domain, kept for the final flush at shutdown.
    core: Arc<Core>,
    /// The listener and its connections.
    listening: server::Listening,
    /// The control socket, when it could be bound.
    control: Option<control::ControlServer>,
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

    /// ECDSA verifications of access tokens run since start: a token
    /// already verified and still cached runs none.
    pub fn token_verifications(&self) -> u64 {
        self.core.token_verifications()
    }

    /// API keys in the key index, and keys looked up in the store since
    /// start because the index did not hold them.
    pub fn key_index(&self) -> (usize, u64) {
        self.core.key_index()
    }

    /// Access tokens in the verified-token cache, and its bound.
    pub fn verified_tokens(&self) -> (usize, usize) {
        self.core.verified_tokens()
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
        if let Some(control) = self.control {
            control.stop().await;
        }
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

/// What the domain needs from the settings.
fn core_config(settings: &Settings) -> CoreConfig {
    CoreConfig {
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
    }
}

/// Opens the store and the domain on it, as `serve` does, without
/// listening: for the operator's commands on a stopped server.
pub async fn open_core(settings: &Settings) -> Result<Core, StartError> {
    open_core_with(settings, Clock::system()).await
}

async fn open_core_with(settings: &Settings, clock: Clock) -> Result<Core, StartError> {
    let core_config = core_config(settings);
    let fetch: Arc<dyn domain::external::Fetch> = Arc::new(
        server::outbound::HttpsClient::new(
            &settings.provider_ca_files,
            Duration::from_secs(settings.provider_timeout),
        )
        .map_err(StartError::Config)?,
    );
    let console = domain::console::ConsoleRules {
        idle_timeout: seconds(settings.console_idle_timeout),
        lifetime: seconds(settings.console_session_lifetime),
        reauth_window: seconds(settings.console_reauth_window),
    };
    let mut core = tokio::task::spawn_blocking(move || Core::open(core_config, clock, fetch))
        .await
        .map_err(|e| StartError::Config(format!("startup task failed: {e}")))??;
    core.set_console_rules(console);
    Ok(core)
}

/// Opens the store, starts listening, and then makes the first admin if
/// the store has none: only once the server can serve (store open,
/// listener bound, certificate loaded), so a start that fails leaves no
/// admin whose password no one saw.
pub async fn start(
    settings: &Settings,
    clock: Clock,
    bootstrap: Bootstrap,
) -> Result<Running, StartError> {
    let core = open_core_with(settings, clock).await?;
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
    let first = first_admin(bootstrap, settings.admin_password_file);
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
                server::bind(config, Arc::new(endpoint))
                    .await
                    .map_err(|e| StartError::Config(e.to_string()))?,
            )
        }
        None => None,
    };
    let listening = server::bind(server_config, Arc::new(api::Api(app)))
        .await
        .map_err(|e| StartError::Config(e.to_string()))?;
    let first_admin = match core.bootstrap_admin(first).await {
        Ok(made) => made,
        Err(e) => {
            listening.shutdown().await;
            if let Some(metrics) = metrics_listening {
                metrics.shutdown().await;
            }
            return Err(match e {
                Error::Busy { .. } => StartError::Config("hashing pool unavailable".into()),
                Error::Invalid { message, .. } => StartError::Config(message),
                other => StartError::Domain(other),
            });
        }
    };
    core.forget_changed_initial_password();
    // Only now does a request get an answer: a client that connected early
    // (to sign in as the first admin, or to ask /readyz) waited in the
    // backlog until the admin existed.
    listening.open();
    if let Some(metrics) = &metrics_listening {
        metrics.open();
    }
    let control = match control::ControlServer::start(&settings.data_dir, core.clone()) {
        Ok(c) => Some(c),
        Err(e) => {
            // The server serves without it; only the operator's commands
            // that need a running server are unavailable, and say so.
            tracing::warn!(
                error = %e,
                "cannot open the control socket in the data directory; recover-admin and backup will not reach this server"
            );
            None
        }
    };
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
                core.forget_changed_initial_password();
            }
        })
    };
    Ok(Running {
        addr: listening.addr,
        tls: settings.tls.is_some(),
        first_admin,
        core,
        listening,
        control,
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

/// The first admin as the `LATCHKEY_ADMIN_*` variables ask for it.
fn first_admin(bootstrap: Bootstrap, to_file: bool) -> FirstAdmin {
    FirstAdmin {
        username: bootstrap.username.unwrap_or_else(|| "admin".into()),
        email: bootstrap.email.unwrap_or_else(|| "admin@localhost".into()),
        password: bootstrap.password,
        to_file,
    }
}
