//! The `latchkey` binary: parse the command line, set up logging, run.

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::{Cli, Command, ServeArgs};
use latchkey::config::{LogFormat, Settings};
use latchkey::domain::Clock;
use latchkey::ops::{self, OpsError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = match settings(&args) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_logging(settings.log_format);
            block_on(serve(settings))
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
    init_logging(settings.log_format);
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

async fn serve(settings: Settings) -> ExitCode {
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
    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("latchkey: {message}");
    ExitCode::FAILURE
}
