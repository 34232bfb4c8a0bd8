//! `cargo xtask interop`: Microsoft's own Python clients (MSAL Python, azure-identity) against
//! the emulator binary.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{cargo, run, target_dir, workspace_root};

/// The client packages, with the lowest versions whose features the checks use.
const PACKAGES: &[&str] = &["msal>=1.37", "azure-identity>=1.19", "PyJWT[crypto]>=2.8"];

/// Kills the emulator when dropped, whatever happened.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn run_interop(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`interop` takes no arguments, got `{arg}`");
    }
    let dir = target_dir().join("interop");
    let venv = dir.join("venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES))?;
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "entra-emulator",
        "--bin",
        "entra-emulator",
    ]))?;

    let state = dir.join("state");
    std::fs::create_dir_all(&state)
        .with_context(|| format!("could not create {}", state.display()))?;
    let mut child = Command::new(target_dir().join("debug").join("entra-emulator"))
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("could not start the emulator binary")?;
    let stdout = child.stdout.take().context("no stdout from the emulator")?;
    let emulator = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("could not read the emulator's start-up line")?;
    let info: serde_json::Value = serde_json::from_str(line.trim())
        .with_context(|| format!("the emulator's start-up line is not JSON: {line:?}"))?;
    let ca = info["ca_pem"]
        .as_str()
        .context("the start-up line names no ca_pem")?
        .to_owned();
    eprintln!("emulator at {}", info["https"]);

    let script = workspace_root()
        .join("xtask")
        .join("interop")
        .join("entra_interop.py");
    let result = run(Command::new(&python)
        .arg(script)
        .arg(line.trim())
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca));
    drop(emulator);
    result
}
