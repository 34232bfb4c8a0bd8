//! `entra-emulator`: run a local Entra ID until Ctrl-C.
//!
//! Prints one line of JSON on start —
//! `{"https":"...","http":"...","ca_pem":"<path>","authority_host":"...","service_fabric_url":"...",
//! "service_fabric_thumbprint":"...","mtls":"..."}` — then serves. The managed identity secrets are at
//! `GET /_emulator/info`.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use entra_emulator::{Emulator, EmulatorConfig, Seed};

const USAGE: &str = "usage: entra-emulator [--https-port N] [--http-port N] [--bind ADDR] \
[--server-name NAME]... [--state-dir DIR] [--seed FILE.json] [--verbose]";

#[derive(Debug, Default, PartialEq)]
struct Options {
    https_port: Option<u16>,
    http_port: Option<u16>,
    bind: Option<IpAddr>,
    server_names: Vec<String>,
    state_dir: Option<PathBuf>,
    seed: Option<PathBuf>,
    verbose: bool,
    help: bool,
}

fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--https-port" => options.https_port = Some(value("--https-port")?.parse()?),
            "--http-port" => options.http_port = Some(value("--http-port")?.parse()?),
            "--bind" => options.bind = Some(value("--bind")?.parse()?),
            "--server-name" => options.server_names.push(value("--server-name")?),
            "--state-dir" => options.state_dir = Some(value("--state-dir")?.into()),
            "--seed" => options.seed = Some(value("--seed")?.into()),
            "--verbose" | "-v" => options.verbose = true,
            "--help" | "-h" => options.help = true,
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse(std::env::args().skip(1))?;
    if options.help {
        writeln!(std::io::stdout(), "{USAGE}")?;
        return Ok(());
    }
    if options.verbose {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }

    let mut config = EmulatorConfig::default();
    if let Some(port) = options.https_port {
        config = config.https_port(port);
    }
    if let Some(port) = options.http_port {
        config = config.http_port(port);
    }
    if let Some(bind) = options.bind {
        config = config.bind_address(bind);
    }
    for name in &options.server_names {
        config = config.server_name(name.clone());
    }
    let emulator = Emulator::start_with(config).await?;

    if let Some(path) = &options.seed {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the seed file {}", path.display()))?;
        emulator.apply_seed(&Seed::from_json(&text)?)?;
    }
    let state_dir = options.state_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("entra-emulator-{}", std::process::id()))
    });
    let ca_path = emulator
        .write_ca_pem(&state_dir)
        .with_context(|| format!("could not write ca.pem to {}", state_dir.display()))?;

    let line = serde_json::json!({
        "https": emulator.https_url(),
        "http": emulator.http_url(),
        "ca_pem": ca_path,
        "authority_host": emulator.authority_host(),
        "service_fabric_url": emulator.service_fabric_url(),
        "service_fabric_thumbprint": emulator.service_fabric_thumbprint(),
        "mtls": emulator.mtls_url(),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    drop(stdout);

    wait_for_signal().await?;
    tracing::debug!("stopping");
    emulator.shutdown().await;
    tracing::debug!("stopped");
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_options() -> anyhow::Result<()> {
        let options = parse(args(&[
            "--https-port",
            "8443",
            "--http-port=8080",
            "--state-dir",
            "/tmp/x",
            "--seed",
            "seed.json",
        ]))?;
        assert_eq!(options.https_port, Some(8443));
        assert_eq!(options.http_port, Some(8080));
        assert_eq!(options.state_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(options.seed, Some(PathBuf::from("seed.json")));
        assert!(parse(args(&["--nope"])).is_err());
        assert!(parse(args(&["--https-port"])).is_err());
        assert!(parse(args(&["--https-port", "x"])).is_err());
        Ok(())
    }
}
