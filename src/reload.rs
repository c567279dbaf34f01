//! Reloading on SIGHUP without dropping a connection: the settings file is
//! read again (flags and `LATCHKEY_*` variables given at start still win
//! over it), the certificate and key are read again, and what can change
//! while running takes effect for the next connection, handshake or
//! request; requests in flight finish as they started.
//!
//! Reloadable: the TLS certificate and key (renewals), the login rate
//! limits, the lockout rule, the trusted proxies and the log filter.
//! Everything else (listen address, data directory, lifetimes, hashing,
//! caps) applies at the next start, and a reload that changes it says so.
//!
//! A reload is all or nothing: a settings file that does not parse or
//! resolve, or a certificate that cannot be read or does not match its key,
//! changes nothing, and the log says why.

use std::path::PathBuf;

use crate::Running;
use crate::config::{Layer, Settings};
use crate::domain::ReloadableSettings;
use crate::server::tls::ReloadableCert;

/// Sets the log filter (a `tracing` directive string) of the running
/// process; built by `main.rs`, which owns the subscriber.
pub type LogFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What a reload re-reads, and the settings in force.
pub struct Reloader {
    /// The `--config` file, read again on each reload.
    config: Option<PathBuf>,
    /// Flags and environment as given at start; they keep precedence over
    /// the file.
    fixed: Layer,
    /// The settings in force: those of the start, with each reload's
    /// reloadable values applied.
    current: Settings,
    /// Sets the log filter; `None` when `LATCHKEY_LOG` fixed it at start.
    log_filter: Option<LogFilter>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("settings: {0}")]
    Settings(#[from] crate::config::ConfigError),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("log filter: {0}")]
    LogFilter(String),
}

impl Reloader {
    /// A reloader for a server started from `config` and `fixed` (the
    /// flags and environment), which resolved to `current`.
    pub fn new(
        config: Option<PathBuf>,
        fixed: Layer,
        current: Settings,
        log_filter: Option<LogFilter>,
    ) -> Reloader {
        Reloader {
            config,
            fixed,
            current,
            log_filter,
        }
    }

    /// Reads everything again and applies it, or changes nothing.
    pub fn reload(&mut self, running: &Running) -> Result<(), ReloadError> {
        let file = match &self.config {
            Some(path) => Layer::from_file(path)?,
            None => Layer::default(),
        };
        let new = Settings::resolve(self.fixed.clone().over(file))?;
        let certificate = match (&new.tls, &running.listening.certificate) {
            (Some((cert, key)), Some(_)) => {
                Some(ReloadableCert::prepare(cert, key).map_err(ReloadError::Certificate)?)
            }
            _ => None,
        };
        if let Some(set) = &self.log_filter {
            set(&new.log_level).map_err(ReloadError::LogFilter)?;
        }
        // From here on nothing can fail.
        let mut kept = self.current.clone();
        kept.rate_login_per_ip = new.rate_login_per_ip;
        kept.rate_login_per_account = new.rate_login_per_account;
        kept.lockout_threshold = new.lockout_threshold;
        kept.lockout_seconds = new.lockout_seconds;
        kept.trusted_proxies = new.trusted_proxies.clone();
        kept.log_level = new.log_level.clone();
        kept.tls = match (&kept.tls, &new.tls) {
            (Some(_), Some(paths)) => Some(paths.clone()),
            (old, _) => old.clone(),
        };
        // Settings has no equality of its own (it holds parsed networks and
        // provider settings); its Debug form covers every field, and is
        // compared here only, never logged.
        if format!("{kept:?}") != format!("{new:?}") {
            tracing::warn!(
                "settings that apply only at start changed (listen address, TLS on or off, data \
                 directory, lifetimes, hashing, caps, external sign-in, log format); \
                 they take effect at the next restart"
            );
        }
        running.core.reload(ReloadableSettings {
            rate_login_per_ip: kept.rate_login_per_ip,
            rate_login_per_account: kept.rate_login_per_account,
            lockout_threshold: kept.lockout_threshold,
            lockout_seconds: kept.lockout_seconds,
        });
        running
            .listening
            .set_trusted_proxies(kept.trusted_proxies.clone());
        if let (Some(prepared), Some(resolver)) = (certificate, &running.listening.certificate) {
            resolver.install(prepared);
        }
        tracing::info!(
            rate_login_per_ip = kept.rate_login_per_ip,
            rate_login_per_account = kept.rate_login_per_account,
            lockout_threshold = kept.lockout_threshold,
            lockout_seconds = kept.lockout_seconds,
            log_level = %kept.log_level,
            certificate = kept.tls.is_some(),
            "reloaded"
        );
        self.current = kept;
        Ok(())
    }
}

/// The signals a server answers: SIGTERM and SIGINT stop it, SIGHUP
/// reloads. Made before the server starts, so a signal sent as soon as it
/// says it listens is already caught rather than killing it.
pub struct Signals {
    /// SIGTERM (systemd's stop), when it could be watched.
    term: Option<tokio::signal::unix::Signal>,
    /// SIGHUP (systemd's reload), when it could be watched.
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts catching the signals; must run inside the runtime.
    pub fn catch() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch {name}");
                None
            }
        };
        Signals {
            term: watch(SignalKind::terminate(), "SIGTERM"),
            hup: watch(SignalKind::hangup(), "SIGHUP"),
        }
    }
}

/// Waits for SIGTERM or SIGINT, reloading on each SIGHUP meanwhile (and
/// telling systemd about each reload).
pub async fn until_stopped(running: &Running, mut reloader: Reloader, mut signals: Signals) {
    async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
        match signal {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    loop {
        tokio::select! {
            _ = next(&mut signals.term) => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = next(&mut signals.hup) => {
                crate::systemd::reloading();
                if let Err(e) = reloader.reload(running) {
                    tracing::error!(error = %e, "reload refused; the running settings and certificate stay in use");
                }
                crate::systemd::reloaded();
            }
        }
    }
}
