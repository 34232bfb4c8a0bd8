//! `cargo xtask fault-matrix`: runs the fault-matrix test (tests/tests/fault_matrix.rs) with
//! `--nocapture`, so its summary table is printed, and says where the table was written.

use anyhow::{Result, bail};

use crate::{cargo, no_args, run, target_dir};

/// Runs the fault matrix and points at `target/fault-matrix.md`.
pub(crate) fn run_fault_matrix(rest: &[String]) -> Result<()> {
    no_args("fault-matrix", rest)?;
    let out = target_dir().join("fault-matrix.md");
    let _ = std::fs::remove_file(&out);
    run(cargo()
        .args([
            "test",
            "-p",
            "entra-tests",
            "--test",
            "fault_matrix",
            "--",
            "--nocapture",
        ])
        .env("FAULT_MATRIX_OUT", &out))?;
    if !out.is_file() {
        bail!("the fault matrix ran but wrote no {}", out.display());
    }
    println!("\nfault matrix summary: {}", out.display());
    Ok(())
}
