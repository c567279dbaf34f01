//! The `latchkey` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::{Cli, Command};
use latchkey::config::{Layer, LogFormat, Settings};
use latchkey::domain::Clock;

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
            let settings = match Settings::resolve(args.settings.over(file)) {
                Ok(s) => s,
                Err(e) => return fail(&e.to_string()),
            };
            init_logging(settings.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&format!("cannot start the runtime: {e}")),
            };
            runtime.block_on(serve(settings))
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
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
        // One object per line: the event's fields at the top level, and
        // the request's span (its `request_id`) under `span`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("latchkey: {message}");
    ExitCode::FAILURE
}
