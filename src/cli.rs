//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Layer;

/// latchkey: a self-contained authentication server.
#[derive(Parser, Debug)]
#[command(name = "latchkey", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (on 127.0.0.1:8080 with data in ./latchkey-data unless told otherwise)
    #[command(after_long_help = SERVE_AFTER_HELP, after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
}

/// Arguments of `serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TOML settings file; its keys are the flag names with `_` for `-`
    #[arg(long, env = "LATCHKEY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: Layer,
}

const SERVE_AFTER_HELP: &str = "\
Precedence: flag > LATCHKEY_* environment variable > --config file > default.

First start: with an empty store, an admin account is created from
LATCHKEY_ADMIN_USERNAME, LATCHKEY_ADMIN_EMAIL and LATCHKEY_ADMIN_PASSWORD.
Unset, the username is `admin` and a random password is printed once on
stderr. Later starts never print or change it.

Logging: LATCHKEY_LOG sets the filter (default `info`).";
