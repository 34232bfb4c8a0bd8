//! `cargo xtask`: the one automation entry point of entra-rs. Run `cargo xtask help`.

// xtask is the process edge of the repository: it spawns cargo, reads the environment, the clock
// and the file system, and talks to the user on stdout and stderr. The workspace bans those
// elsewhere (clippy.toml, [workspace.lints]); here they are the job.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod fault_matrix;
mod fuzz;
mod interop;
mod tidy;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask: automation for the entra-rs workspace

USAGE:
    cargo xtask <COMMAND> [ARGS]

COMMANDS:
    ci                      what CI runs (.ci/run), in order, stopping at the first failure:
                              fmt    cargo fmt --all -- --check  (+ rustfmt --check fuzz/fuzz_targets)
                              clippy cargo clippy --workspace --all-targets -- -D warnings
                              test   cargo xtask test
                              doc    cargo doc --workspace --no-deps  (RUSTDOCFLAGS=\"-D warnings\")
                              tidy   cargo xtask tidy
    test [ARGS]             cargo test --workspace [ARGS] (unit, integration and doc tests);
                            ARGS go to cargo verbatim, e.g. `cargo xtask test -- --nocapture`
    fuzz --list             list the fuzz targets of fuzz/Cargo.toml
    fuzz <TARGET>... [--seconds N] [--sanitizer S] [-- LIBFUZZER_ARGS]
    fuzz --all [--seconds N] [--sanitizer S] [-- LIBFUZZER_ARGS]
                            run cargo fuzz (installed on first use) on the stable toolchain for
                            N seconds per target (default 60), then print executions per target;
                            corpus in fuzz/corpus/<TARGET>, seeds read from fuzz/seeds/<TARGET>;
                            S is a cargo-fuzz sanitizer (default address, or none)
    bench [--report-only] [ARGS]
                            cargo bench --workspace [ARGS] (criterion; default selection: the
                            [[bench]] targets), then print the medians of the benchmarks that ran
                            and write them to target/bench-report.md; --report-only skips the run
                            and reports every result under target/criterion
    fault-matrix            run the fault-matrix test (every endpoint family against every injected
                            fault, in virtual time) with --nocapture; prints the summary table and
                            writes it to target/fault-matrix.md
    demo [--verbose]        the project's main job: `cargo run --release -p entra-cli -- demo`
                            (an in-process emulator, every kind of token, a table; exit 0 only
                            if every step worked)
    interop                 Microsoft's own clients against the emulator: creates a Python virtual
                            environment in target/interop, installs msal and azure-identity,
                            starts the emulator binary and acquires client-secret and
                            client-certificate tokens and managed identity tokens (IMDS, App
                            Service) with both, verifying each against the JWKS
    tidy                    check workspace rules: `[lints] workspace = true` in every member,
                            crate docs, #![forbid(unsafe_code)] and #![warn(missing_docs)] in every
                            library, no todo!, unimplemented! or ignored tests in any .rs file
    help                    print this help
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(());
    };
    match command.as_str() {
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        "ci" => {
            no_args("ci", rest)?;
            ci::ci()
        }
        "test" => ci::test(rest),
        "fuzz" => fuzz::run(rest),
        "bench" => bench::run(rest),
        "demo" => run(cargo()
            .args(["run", "--release", "-p", "entra-cli", "--", "demo"])
            .args(rest)),
        "interop" => interop::run_interop(rest),
        "fault-matrix" => fault_matrix::run_fault_matrix(rest),
        "tidy" => {
            no_args("tidy", rest)?;
            tidy::run()
        }
        other => bail!("unknown command `{other}`; run `cargo xtask help` for the list"),
    }
}

fn no_args(command: &str, rest: &[String]) -> Result<()> {
    match rest.first() {
        None => Ok(()),
        Some(arg) => bail!("`{command}` takes no arguments, got `{arg}`; run `cargo xtask help`"),
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// The directory cargo builds into (`CARGO_TARGET_DIR` or `<root>/target`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// A `cargo` command (the cargo that runs xtask) in the workspace root.
fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(workspace_root());
    command
}

/// Runs a command to completion, echoing it first; fails if it does not exit with success.
fn run(command: &mut Command) -> Result<()> {
    let shown = show(command);
    eprintln!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Like [`run`], but kills the command (and every process it started) if it has not finished
/// within `limit`, so a hung test fails CI in bounded time instead of using up its whole budget.
fn run_with_deadline(command: &mut Command, limit: std::time::Duration) -> Result<()> {
    use std::os::unix::process::CommandExt as _;
    let shown = show(command);
    eprintln!("$ {shown}   (killed after {} min)", limit.as_secs() / 60);
    // Its own process group, so the test binaries cargo starts can be killed with it.
    command.process_group(0);
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("could not wait for `{shown}`"))?
        {
            if !status.success() {
                bail!("`{shown}` failed ({status})");
            }
            return Ok(());
        }
        if started.elapsed() >= limit {
            let group = format!("-{}", child.id());
            // Best effort: `kill` of the whole group, then of the child itself.
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{shown}` did not finish within {} min and was killed: a test is probably hung \
                 (look for \"has been running for over 60 seconds\" above)",
                limit.as_secs() / 60
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// A command as a user would type it: the variables we set, then `cargo` and its arguments.
fn show(command: &Command) -> String {
    let mut words: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| Some(format!("{}={}", key.to_string_lossy(), quote(value?))))
        .collect();
    let program = Path::new(command.get_program());
    let name = program.file_name().unwrap_or(program.as_os_str());
    words.push(name.to_string_lossy().into_owned());
    words.extend(command.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@+".contains(c))
    {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
