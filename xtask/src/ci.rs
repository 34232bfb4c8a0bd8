//! `cargo xtask ci` and `cargo xtask test`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::{cargo, run, run_with_deadline, tidy, workspace_root};

type Step = fn() -> Result<()>;

/// What CI runs, in order; stops at the first failing step.
pub(crate) fn ci() -> Result<()> {
    let steps: [(&str, Step); 5] = [
        ("fmt", fmt),
        ("clippy", clippy),
        ("test", || test(&[])),
        ("doc", doc),
        ("tidy", tidy::run),
    ];
    let started = Instant::now();
    for (name, step) in steps {
        eprintln!("\n==> ci step `{name}`");
        let step_started = Instant::now();
        step().with_context(|| format!("ci step `{name}` failed"))?;
        eprintln!(
            "==> ci step `{name}` passed in {:.1?}",
            step_started.elapsed()
        );
    }
    eprintln!("\n==> ci passed in {:.1?}", started.elapsed());
    Ok(())
}

/// How long `cargo xtask test` may take (build included) before it is killed. A full run takes
/// about 5 minutes on 2 cores; a hung test must not eat CI's whole budget.
const TEST_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// `cargo test --workspace` (unit, integration and doc tests), extra arguments passed verbatim,
/// then the `entra` crate with its optional `azure_core` feature; each killed after
/// [`TEST_DEADLINE`].
pub(crate) fn test(args: &[String]) -> Result<()> {
    run_with_deadline(
        cargo().args(["test", "--workspace"]).args(args),
        TEST_DEADLINE,
    )?;
    run_with_deadline(
        cargo().args(["test", "-p", "entra", "--features", "azure_core"]),
        TEST_DEADLINE,
    )
}

fn fmt() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // The fuzz package is outside the workspace, so `cargo fmt --all` does not see it.
    let root = workspace_root();
    let targets = root.join("fuzz").join("fuzz_targets");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&targets) {
        Ok(entries) => entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
            .filter_map(|path| Some(path.strip_prefix(&root).ok()?.to_path_buf()))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    if files.is_empty() {
        return Ok(());
    }
    let program = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let mut rustfmt = std::process::Command::new(program);
    rustfmt
        .current_dir(&root)
        .args(["--check", "--edition", "2024"])
        .args(files);
    run(&mut rustfmt)
}

fn clippy() -> Result<()> {
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

fn doc() -> Result<()> {
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))
}
