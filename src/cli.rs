//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Layer;

/// latchkey: a self-contained authentication server.
#[derive(Parser, Debug)]
#[command(name = "latchkey", version = crate::ops::VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (on 127.0.0.1:8080 with data in ./latchkey-data unless told otherwise)
    #[command(after_long_help = SERVE_AFTER_HELP, after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
    /// Make an account an enabled, unlocked admin with a new password, shown once (server running or not)
    #[command(after_help = RECOVER_AFTER_HELP)]
    RecoverAdmin(RecoverArgs),
    /// Write a consistent backup of the running server's store and master key to FILE (mode 0600)
    Backup(BackupArgs),
    /// Fill an empty data directory from a backup
    Restore(RestoreArgs),
    /// Check a backup, a store file or the data directory; exit 1 on any problem
    Verify(VerifyArgs),
    /// Add accounts with pre-hashed passwords (argon2id or bcrypt) from a JSON Lines file; server stopped
    #[command(after_help = IMPORT_AFTER_HELP)]
    Import(ImportArgs),
    /// Check the settings and print the effective ones (secrets hidden) without starting anything
    CheckConfig(ServeArgs),
    /// Exit 0 when the configured server answers 200 (for containers and scripts)
    Healthcheck(ServeArgs),
}

/// Arguments of `recover-admin`.
#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    /// Username or email of the account; default: the oldest admin
    #[arg(value_name = "USERNAME")]
    pub username: Option<String>,

    #[command(flatten)]
    pub settings: ServeArgs,
}

/// Arguments of `backup`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// Where to write the backup (replaced if it exists)
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,

    #[command(flatten)]
    pub settings: ServeArgs,
}

/// Arguments of `restore`.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The backup to restore
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,

    #[command(flatten)]
    pub settings: ServeArgs,
}

/// Arguments of `import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The JSON Lines file: one account per line
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,

    #[command(flatten)]
    pub settings: ServeArgs,
}

/// Arguments of `verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A backup, a store file or a data directory; default: the configured data directory
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub settings: ServeArgs,
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

First start: with an empty store, once the server listens, an admin
account is created from LATCHKEY_ADMIN_USERNAME, LATCHKEY_ADMIN_EMAIL and
LATCHKEY_ADMIN_PASSWORD. Unset, they are `admin`, `admin@localhost` and a
random password printed once on stderr (or, under systemd or with
--admin-password-file, written to <data-dir>/initial-admin-password, which
is deleted when that password is changed). Later starts never print or
change it; `latchkey recover-admin` makes a new one.

Logging: LATCHKEY_LOG sets the filter (default `info`).";

const RECOVER_AFTER_HELP: &str = "\
Run it on the server's machine as a user who can read the data directory.
With the server running, it asks it through <data-dir>/control.sock; with
it stopped, it opens the store directly. Either way every session of the
account ends and the audit log records the recovery.";

const IMPORT_AFTER_HELP: &str = "\
One account per line, as a JSON object:
  {\"username\": \"ada\", \"email\": \"ada@example.com\", \"roles\": [\"user\"],
   \"reseller_id\": null, \"merchant_id\": null, \"disabled\": false,
   \"password_hash\": \"$argon2id$v=19$m=19456,t=2,p=1$...\"}
roles defaults to [\"user\"]; password_hash is an argon2id PHC string or a
bcrypt $2a$/$2b$/$2y$ hash (re-hashed to argon2id at the first sign-in).
Every line is checked first; any bad line imports nothing. Stop the
server first: the import writes the store directly.";
