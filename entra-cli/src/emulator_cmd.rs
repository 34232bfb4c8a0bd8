//! `entra emulator`: the emulator in the foreground, configured by flags or a TOML file.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use entra_emulator::{Emulator, EmulatorConfig, Seed};
use serde::Deserialize;

use crate::CliError;

#[derive(Debug, clap::Args)]
pub(crate) struct EmulatorArgs {
    /// A TOML file: an `[emulator]` table (https_port, http_port, bind, state_dir) and a
    /// `[seed]` table shaped like the JSON seed (tenants, resources, external_issuers, settings).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// A JSON seed file (tenants, applications, resources), applied after the TOML seed.
    #[arg(long, value_name = "FILE.json")]
    seed: Option<PathBuf>,
    /// HTTPS port (default: any free port).
    #[arg(long)]
    https_port: Option<u16>,
    /// Plain HTTP port, for the managed identity endpoints (default: any free port).
    #[arg(long)]
    http_port: Option<u16>,
    /// Address to listen on (default 127.0.0.1).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Where to write the CA certificate (default: a new directory under the temp dir).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    emulator: ListenSettings,
    #[serde(default)]
    seed: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenSettings {
    https_port: Option<u16>,
    http_port: Option<u16>,
    bind: Option<IpAddr>,
    state_dir: Option<PathBuf>,
}

fn read_config(path: &Path) -> Result<(ListenSettings, Option<Seed>), CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(format!(
            "could not read the config file {}: {e}",
            path.display()
        ))
    })?;
    // The file may hold client secrets: report where it is wrong, never its text.
    let config: ConfigFile = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text.get(..s.start).map_or(0, |t| t.lines().count().max(1));
                format!(" near line {line}")
            })
            .unwrap_or_default();
        CliError::usage(format!(
            "the config file {} is not valid{at}: {}",
            path.display(),
            without_quoted_text(e.message())
        ))
    })?;
    let seed = match config.seed {
        Some(value) => {
            let json = serde_json::to_string(&value)
                .map_err(|e| CliError::internal(format!("could not convert the seed: {e}")))?;
            Some(Seed::from_json(&json).map_err(|e| {
                CliError::usage(format!(
                    "the [seed] of {} is not valid: {e}",
                    path.display()
                ))
            })?)
        }
        None => None,
    };
    Ok((config.emulator, seed))
}

/// `message` with every quoted piece (`"…"`, `'…'`, `` `…` ``) cut out: parser messages quote
/// the offending value, which may be a secret.
fn without_quoted_text(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(quote) if c == quote => {
                out.push_str("(value not shown)");
                open = None;
            }
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => open = Some(c),
            None => out.push(c),
        }
    }
    out
}

pub(crate) async fn run(args: EmulatorArgs) -> Result<(), CliError> {
    let (file, toml_seed) = match &args.config {
        Some(path) => read_config(path)?,
        None => (ListenSettings::default(), None),
    };
    let mut config = EmulatorConfig::default();
    if let Some(port) = args.https_port.or(file.https_port) {
        config = config.https_port(port);
    }
    if let Some(port) = args.http_port.or(file.http_port) {
        config = config.http_port(port);
    }
    if let Some(bind) = args.bind.or(file.bind) {
        config = config.bind_address(bind);
    }
    let emulator = Emulator::start_with(config)
        .await
        .map_err(|e| CliError::usage(format!("the emulator could not start: {e}")))?;
    if let Some(seed) = &toml_seed {
        emulator
            .apply_seed(seed)
            .map_err(|e| CliError::usage(format!("the TOML seed could not be applied: {e}")))?;
    }
    if let Some(path) = &args.seed {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::usage(format!(
                "could not read the seed file {}: {e}",
                path.display()
            ))
        })?;
        let seed = Seed::from_json(&text).map_err(|e| {
            CliError::usage(format!(
                "the seed file {} is not valid: {e}",
                path.display()
            ))
        })?;
        emulator
            .apply_seed(&seed)
            .map_err(|e| CliError::usage(format!("the seed could not be applied: {e}")))?;
    }
    let state_dir = args.state_dir.or(file.state_dir).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("entra-emulator-{}", std::process::id()))
    });
    let ca_path = emulator.write_ca_pem(&state_dir).map_err(|e| {
        CliError::usage(format!(
            "could not write ca.pem to {}: {e}",
            state_dir.display()
        ))
    })?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "entra emulator running (Ctrl-C to stop)")?;
        writeln!(out, "  authority host   {}", emulator.authority_host())?;
        writeln!(out, "  https            {}", emulator.https_url())?;
        writeln!(out, "  http (IMDS, MI)  {}", emulator.http_url())?;
        writeln!(out, "  mTLS (IMDSv2)    {}", emulator.mtls_url())?;
        writeln!(out, "  CA certificate   {}", ca_path.display())?;
        writeln!(
            out,
            "  admin API        {}/_emulator/",
            emulator.https_url()
        )?;
        writeln!(out, "use it from a shell:")?;
        writeln!(
            out,
            "  export AZURE_AUTHORITY_HOST={}",
            emulator.authority_host()
        )?;
        writeln!(
            out,
            "  export AZURE_POD_IDENTITY_AUTHORITY_HOST={}",
            emulator.http_url()
        )?;
        writeln!(out, "  export SSL_CERT_FILE={}", ca_path.display())?;
        out.flush()?;
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| CliError::internal(format!("could not wait for Ctrl-C: {e}")))?;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_config_with_listen_settings_and_a_seed() {
        let dir = std::env::temp_dir().join(format!("entra-cli-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("emulator.toml");
        std::fs::write(
            &path,
            r#"
[emulator]
https_port = 18443
bind = "127.0.0.1"

[seed]
resources = ["https://example.test"]

[[seed.tenants]]
tenant_id = "11111111-1111-1111-1111-111111111111"
"#,
        )
        .unwrap();
        let (listen, seed) = read_config(&path).unwrap();
        assert_eq!(listen.https_port, Some(18443));
        assert!(seed.is_some());

        std::fs::write(&path, "[emulator]\nhttps_port = \"super-secret-value\"\n").unwrap();
        let err = read_config(&path).unwrap_err();
        assert!(!err.to_string().contains("super-secret-value"), "{err}");
        assert_eq!(err.class, crate::FailureClass::Usage);
        std::fs::write(&path, "[nope]\n").unwrap();
        assert!(read_config(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
