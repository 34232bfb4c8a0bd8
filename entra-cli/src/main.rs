//! `entra`: Microsoft Entra ID tokens from the command line, a JWT decoder, a local emulator,
//! and the project's end-to-end demo.
//!
//! Exit codes: 0 success, 1 internal error, 2 usage or configuration, 3 credential
//! unavailable, 4 authentication refused, 5 network or TLS, 6 unexpected response, 7 a demo
//! step failed.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod decode;
mod demo;
mod emulator_cmd;
mod error;
mod token;

pub(crate) use error::{CliError, FailureClass};

#[derive(Debug, Parser)]
#[command(
    name = "entra",
    version,
    about = "Microsoft Entra ID tokens, agent identities and managed identity, from the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Get an access token from any credential.
    Token(Box<token::TokenArgs>),
    /// Decode a JWT (header and claims; the signature is NOT verified).
    Decode {
        /// The token, or `-` (default) to read it from standard input.
        #[arg(default_value = "-")]
        token: String,
    },
    /// Run the local Entra ID / managed identity emulator in the foreground.
    Emulator(emulator_cmd::EmulatorArgs),
    /// Start an emulator in-process and acquire every kind of token against it.
    Demo {
        /// Print each token's claims as well.
        #[arg(long)]
        verbose: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "entra: {error}");
            ExitCode::from(error.class.exit_code())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("could not start the async runtime: {e}")))
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Decode { token } => {
            let text = if token == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                text
            } else {
                token
            };
            let decoded = decode::decode(&text)?;
            let out = decode::render(&decoded, now_unix());
            print_json(&out)
        }
        Command::Token(args) => runtime()?.block_on(token::run(*args)),
        Command::Emulator(args) => runtime()?.block_on(emulator_cmd::run(args)),
        Command::Demo { verbose } => runtime()?.block_on(demo::run(verbose)),
    }
}

/// The wall clock, for display only (the libraries take an injected clock).
#[allow(clippy::disallowed_methods)] // the CLI is an edge
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::internal(format!("could not write JSON: {e}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}
