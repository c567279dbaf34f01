//! The `latchkey` binary: parse the command line, set up logging, run.

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::{Cli, Command, ServeArgs};
use latchkey::config::{LogFormat, Settings};
use latchkey::domain::Clock;
use latchkey::logsink::LogSink;
use latchkey::ops::{self, OpsError};
use latchkey::reload::{LogFilter, Reloader, Signals};

/// Where log lines go; its access lines are written out before exit.
static LOG: std::sync::OnceLock<LogSink> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    ignore_file_size_signal();
    let cli = Cli::parse();
    let code = run(cli);
    if let Some(log) = LOG.get() {
        log.flush();
    }
    code
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => {
            let fixed = args.settings.clone();
            let settings = match settings(&args) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let log_filter = init_logging(settings.log_format, &settings.log_level);
            latchkey::memory::give_back_when_quiet();
            let reloader = Reloader::new(args.config, fixed, settings.clone(), log_filter);
            block_on(serve(settings, reloader))
        }
        Command::RecoverAdmin(args) => with_settings(&args.settings, |s| async move {
            ops::recover_admin(&s, args.username.as_deref()).await
        }),
        Command::Backup(args) => with_settings(&args.settings, |s| async move {
            ops::backup(&s, &args.to).await
        }),
        Command::Restore(args) => {
            with_settings(
                &args.settings,
                |s| async move { ops::restore(&s, &args.from) },
            )
        }
        Command::Verify(args) => with_settings(&args.settings, |s| async move {
            ops::verify(&s, args.file.as_deref()).await
        }),
        Command::Import(args) => with_settings(&args.settings, |s| async move {
            ops::import(&s, &args.from).await
        }),
        Command::CheckConfig(args) => {
            let file = args.config.clone();
            with_settings(
                &args,
                |s| async move { ops::check_config(&s, file.as_deref()) },
            )
        }
        Command::Healthcheck(args) => {
            with_settings(&args, |s| async move { ops::healthcheck(&s).await })
        }
    }
}

/// A write past a file size limit (`ulimit -f`, systemd's `LimitFSIZE=`)
/// raises SIGXFSZ, whose default action kills the process. Ignored, the
/// write fails with EFBIG instead, which the store treats like a full
/// disk: the request is refused with 503 and the server recovers once the
/// limit allows the write.
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread
    // is started, installs no handler and touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

fn settings(args: &ServeArgs) -> Result<Settings, ExitCode> {
    ops::resolve(args.config.as_deref(), args.settings.clone()).map_err(|e| fail(&e.to_string()))
}

/// Runs an operator's command: its result on stdout, or its error on
/// stderr with exit status 1.
fn with_settings<F, Fut>(args: &ServeArgs, command: F) -> ExitCode
where
    F: FnOnce(Settings) -> Fut,
    Fut: Future<Output = Result<String, OpsError>>,
{
    let settings = match settings(args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    init_logging(settings.log_format, &settings.log_level);
    block_on(async move {
        match command(settings).await {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        }
    })
}

fn block_on(work: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(work),
        Err(e) => fail(&format!("cannot start the runtime: {e}")),
    }
}

async fn serve(settings: Settings, reloader: Reloader) -> ExitCode {
    let signals = Signals::catch();
    let running =
        match latchkey::start(&settings, Clock::system(), latchkey::Bootstrap::from_env()).await {
            Ok(r) => r,
            Err(e) => return fail(&e.to_string()),
        };
    if let Some(first) = &running.first_admin {
        // Printed once, on stderr, outside the log: a password is a secret
        // and the log must never carry one. Under systemd it went to a file
        // instead, and only the path is printed.
        match (&first.password, &first.file) {
            (Some(password), _) => eprintln!(
                "\n  latchkey created the first admin account.\n  username: {}\n  email: {}\n  password: {password}\n  This is shown once. Change it after signing in.\n",
                first.username, first.email
            ),
            (None, Some(file)) => eprintln!(
                "\n  latchkey created the first admin account.\n  username: {}\n  email: {}\n  Its password is in {} (readable only by this service's user; deleted when the password is changed).\n",
                first.username,
                first.email,
                file.display()
            ),
            (None, None) => {}
        }
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
    let sink = LOG.get_or_init(LogSink::stderr).clone();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !ansi {
        // Access lines are then written by the server itself, in the same
        // bytes (see `logsink::access`); with colours, through tracing.
        let format = match format {
            LogFormat::Json => latchkey::logsink::LineFormat::Json,
            LogFormat::Text => latchkey::logsink::LineFormat::Text,
        };
        latchkey::logsink::write_access_lines_directly(sink.clone(), format);
    }
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(sink);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        // One object per line: the event's fields at the top level, and
        // the request's span (its `request_id`) under `span`.
        LogFormat::Json => registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .init(),
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
    if let Some(log) = LOG.get() {
        log.flush();
    }
    eprintln!("latchkey: {message}");
    ExitCode::FAILURE
}
