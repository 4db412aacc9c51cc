//! Typed configuration from flags and environment variables.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::vocabulary::Role;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/touchpoints.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// touchpoint-tracker: candidate touchpoints and employer perception.
#[derive(Parser, Debug)]
#[command(name = "touchpoint-tracker", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Database: `sqlite://path/to/file.db` (created if missing) or
    /// `postgres://user:pass@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
    /// Address the HTTP server listens on.
    #[arg(long = "bind", env = "BIND_ADDR", default_value = DEFAULT_BIND, global = true)]
    pub bind: SocketAddr,
    /// Log line format. Log levels come from `RUST_LOG` (default `info`).
    #[arg(
        long,
        value_enum,
        env = "LOG_FORMAT",
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organization (an employer).
    Create {
        /// Short identifier: lowercase letters, digits and dashes.
        slug: String,
        /// Display name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key; prints only the token on stdout.
    Create {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// The key's role.
        #[arg(long, value_enum)]
        role: CliRole,
        /// What the key is for.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum CliRole {
    Admin,
    Recruiter,
    Reporter,
}

impl From<CliRole> for Role {
    fn from(role: CliRole) -> Self {
        match role {
            CliRole::Admin => Role::Admin,
            CliRole::Recruiter => Role::Recruiter,
            CliRole::Reporter => Role::Reporter,
        }
    }
}

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind: SocketAddr,
}

impl From<&GlobalArgs> for Settings {
    fn from(args: &GlobalArgs) -> Self {
        Settings {
            database_url: args.database_url.clone(),
            bind: args.bind,
        }
    }
}
