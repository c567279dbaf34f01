//! The `latchkey` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::{Cli, Command};
use latchkey::config::{Layer, LogFormat, Settings};
use latchkey::domain::Clock;
use latchkey::reload::{LogFilter, Reloader, Signals};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let file = match &args.config {
                Some(path) => match Layer::from_file(path) {
                    Ok(layer) => layer,
                    Err(e) => return fail(&e.to_string()),
                },
                None => Layer::default(),
            };
            let fixed = args.settings.clone();
            let settings = match Settings::resolve(args.settings.over(file)) {
                Ok(s) => s,
                Err(e) => return fail(&e.to_string()),
            };
            let log_filter = init_logging(settings.log_format, &settings.log_level);
            let reloader = Reloader::new(args.config, fixed, settings.clone(), log_filter);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&format!("cannot start the runtime: {e}")),
            };
            runtime.block_on(serve(settings, reloader))
        }
    }
}

async fn serve(settings: Settings, reloader: Reloader) -> ExitCode {
    let signals = Signals::catch();
    let running =
        match latchkey::start(&settings, Clock::system(), latchkey::Bootstrap::from_env()).await {
            Ok(r) => r,
            Err(e) => return fail(&e.to_string()),
        };
    if let Some(password) = &running.generated_admin_password {
        // Printed once, on stderr, outside the log: it is a secret and
        // the log must never carry one.
        eprintln!(
            "\n  latchkey created the first admin account.\n  username: admin\n  password: {password}\n  This is shown once. Change it after signing in.\n"
        );
    }
    let scheme = if running.tls { "https" } else { "http" };
    tracing::info!(
        addr = %running.addr,
        data_dir = %settings.data_dir.display(),
        "latchkey listening on {scheme}://{}",
        running.addr
    );
    latchkey::systemd::ready();
    let watchdog = latchkey::systemd::start_watchdog(running.core());
    latchkey::reload::until_stopped(&running, reloader, signals).await;
    latchkey::systemd::stopping();
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Sets up logging with `level` as the filter, unless `LATCHKEY_LOG` holds
/// a valid one, which wins. Returns what changes the filter on reload
/// (nothing when `LATCHKEY_LOG` fixed it).
fn init_logging(format: LogFormat, level: &str) -> Option<LogFilter> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    let from_env = EnvFilter::try_from_env("LATCHKEY_LOG").ok();
    let fixed = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(level));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry.with(layer.json()).init(),
        LogFormat::Text => registry.with(layer).init(),
    }
    if fixed {
        return None;
    }
    Some(Box::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    }))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("latchkey: {message}");
    ExitCode::FAILURE
}
