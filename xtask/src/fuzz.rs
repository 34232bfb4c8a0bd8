//! `cargo xtask fuzz`: cargo-fuzz on the stable toolchain, with a summary of executions.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, run as run_command, show, workspace_root};

const DEFAULT_SECONDS: u64 = 60;

#[derive(Debug, Default)]
struct Options {
    list: bool,
    all: bool,
    targets: Vec<String>,
    seconds: Option<u64>,
    sanitizer: Option<String>,
    libfuzzer_args: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--list" => options.list = true,
                "--all" => options.all = true,
                "--seconds" => {
                    let value = args.next().context("`--seconds` needs a number")?;
                    let seconds =
                        value
                            .parse()
                            .ok()
                            .filter(|&s: &u64| s > 0)
                            .with_context(|| {
                                format!("`--seconds {value}`: expected a positive whole number")
                            })?;
                    options.seconds = Some(seconds);
                }
                "--sanitizer" => {
                    let value = args
                        .next()
                        .context("`--sanitizer` needs a name (address, none, ...)")?;
                    options.sanitizer = Some(value.clone());
                }
                "--" => options.libfuzzer_args = args.by_ref().cloned().collect(),
                flag if flag.starts_with('-') => {
                    bail!("unknown fuzz option `{flag}`; run `cargo xtask help`")
                }
                target => options.targets.push(target.to_owned()),
            }
        }
        let selections = usize::from(options.list)
            + usize::from(options.all)
            + usize::from(!options.targets.is_empty());
        if selections != 1 {
            bail!(
                "give exactly one of `--list`, `--all` or target names; run `cargo xtask fuzz --list`"
            );
        }
        Ok(options)
    }
}

/// What one libFuzzer run reported.
#[derive(Debug, Default, PartialEq)]
struct Stats {
    executions: Option<u64>,
    exec_per_sec: Option<u64>,
    coverage: Option<u64>,
    artifact: Option<String>,
}

impl Stats {
    /// Reads one line of libFuzzer's stderr: the `#N DONE ...` status line, the
    /// `-print_final_stats=1` lines, and where a crashing input was written.
    fn observe(&mut self, line: &str) {
        if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
            self.executions = value.trim().parse().ok().or(self.executions);
        } else if let Some(value) = line.strip_prefix("stat::average_exec_per_sec:") {
            self.exec_per_sec = value.trim().parse().ok().or(self.exec_per_sec);
        } else if let Some(rest) = line.strip_prefix('#') {
            // `#1234\tDONE   cov: 56 ft: 78 corp: 9/10b lim: 4 exec/s: 123 rss: 45Mb`, also the
            // `pulse`, `NEW` and `REDUCE` lines, which keep the numbers current until the end.
            let mut words = rest.split_whitespace();
            let Some(executions) = words.next().and_then(|n| n.parse().ok()) else {
                return;
            };
            self.executions = Some(executions);
            let words: Vec<&str> = words.collect();
            for pair in words.windows(2) {
                match pair[0] {
                    "cov:" => self.coverage = pair[1].parse().ok(),
                    "exec/s:" => self.exec_per_sec = pair[1].parse().ok(),
                    _ => {}
                }
            }
        } else if let Some(at) = line.find("Test unit written to ") {
            self.artifact = Some(line[at + "Test unit written to ".len()..].trim().to_owned());
        }
    }
}

struct Outcome {
    target: String,
    passed: bool,
    stats: Stats,
    wall: Duration,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let fuzz_dir = workspace_root().join("fuzz");
    let known = targets(&fuzz_dir)?;
    if options.list {
        for target in &known {
            println!("{target}");
        }
        return Ok(());
    }
    let selected = if options.all {
        known.clone()
    } else {
        options.targets.clone()
    };
    if let Some(unknown) = selected.iter().find(|target| !known.contains(target)) {
        bail!(
            "no fuzz target `{unknown}` in fuzz/Cargo.toml; known: {}",
            known.join(", ")
        );
    }
    if selected.is_empty() {
        bail!("fuzz/Cargo.toml declares no [[bin]] fuzz targets");
    }
    ensure_cargo_fuzz()?;
    let seconds = options.seconds.unwrap_or(DEFAULT_SECONDS);
    let mut outcomes = Vec::new();
    for target in &selected {
        outcomes.push(fuzz_one(&fuzz_dir, target, seconds, &options)?);
    }
    print!("{}", summary(&outcomes));
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.target.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzzing failed for {} (see the output above)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// The `[[bin]]` names of the fuzz package.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let manifest_path = fuzz_dir.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path)
        .with_context(|| format!("could not read {}", manifest_path.display()))?;
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(value) = line.strip_prefix("name")
            && let Some(value) = value.trim_start().strip_prefix('=')
        {
            targets.push(value.trim().trim_matches('"').to_owned());
        }
    }
    Ok(targets)
}

fn ensure_cargo_fuzz() -> Result<()> {
    let installed = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        eprintln!("cargo-fuzz is not installed; installing it (about 35 s on 2 cores)");
        // The newest 0.13.x: a new minor release could change the flags this file passes.
        run_command(cargo().args(["install", "cargo-fuzz", "--locked", "--version", "^0.13"]))?;
    }
    Ok(())
}

fn fuzz_one(fuzz_dir: &Path, target: &str, seconds: u64, options: &Options) -> Result<Outcome> {
    let corpus = fuzz_dir.join("corpus").join(target);
    fs::create_dir_all(&corpus)
        .with_context(|| format!("could not create {}", corpus.display()))?;
    let seeds = fuzz_dir.join("seeds").join(target);

    let mut command: Command = cargo();
    command
        .current_dir(fuzz_dir)
        // cargo-fuzz puts a nightly-only flag in RUSTFLAGS (-Zsanitizer=address); this lets the
        // stable toolchain accept them, so CI and contributors need no nightly toolchain.
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run"]);
    if let Some(sanitizer) = &options.sanitizer {
        command.args(["--sanitizer", sanitizer]);
    }
    command.arg(target).arg(&corpus);
    if seeds.is_dir() {
        command.arg(&seeds); // read, never written: new inputs go to the first corpus
    }
    command
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .args(&options.libfuzzer_args)
        .stderr(Stdio::piped());

    let shown = show(&command);
    eprintln!("\n==> fuzz `{target}` for {seconds} s\n$ {shown}");
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let mut stats = Stats::default();
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        let mut echo = std::io::stderr();
        while reader
            .read_until(b'\n', &mut line)
            .context("could not read cargo fuzz output")?
            > 0
        {
            let _ = echo.write_all(&line);
            stats.observe(String::from_utf8_lossy(&line).trim_end());
            line.clear();
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("could not wait for `{shown}`"))?;
    Ok(Outcome {
        target: target.to_owned(),
        passed: status.success(),
        stats,
        wall: started.elapsed(),
    })
}

fn summary(outcomes: &[Outcome]) -> String {
    let number = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut table = String::from(
        "\n| target | result | executions | exec/s | coverage | wall time |\n|---|---|---:|---:|---:|---:|\n",
    );
    for outcome in outcomes {
        let result = match (&outcome.passed, &outcome.stats.artifact) {
            (true, _) => "ok".to_owned(),
            (false, Some(artifact)) => format!("crash: {artifact}"),
            (false, None) => "failed".to_owned(),
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {:.0?} |",
            outcome.target,
            result,
            number(outcome.stats.executions),
            number(outcome.stats.exec_per_sec),
            number(outcome.stats.coverage),
            outcome.wall,
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&a| a.to_owned()).collect()
    }

    #[test]
    fn parses_options() {
        let options =
            Options::parse(&strings(&["a", "--seconds", "5", "--", "-max_len=64"])).unwrap();
        assert_eq!(
            (options.targets, options.seconds),
            (strings(&["a"]), Some(5))
        );
        assert_eq!(options.libfuzzer_args, strings(&["-max_len=64"]));
        assert!(Options::parse(&strings(&["--all"])).unwrap().all);
        assert!(Options::parse(&[]).is_err());
        assert!(Options::parse(&strings(&["--all", "a"])).is_err());
        assert!(Options::parse(&strings(&["a", "--seconds", "0"])).is_err());
        assert!(Options::parse(&strings(&["a", "--secs", "1"])).is_err());
    }

    #[test]
    fn reads_libfuzzer_output() {
        let mut stats = Stats::default();
        for line in [
            "INFO: Seed: 123",
            "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#1048576\tpulse  cov: 50 ft: 60 corp: 7/90b lim: 4096 exec/s: 349525 rss: 40Mb",
            "#1234567\tDONE   cov: 52 ft: 61 corp: 8/99b lim: 4096 exec/s: 123456 rss: 41Mb",
            "Done 1234567 runs in 10 second(s)",
            "stat::number_of_executed_units: 1234568",
            "stat::average_exec_per_sec:     123457",
        ] {
            stats.observe(line);
        }
        assert_eq!(
            stats,
            Stats {
                executions: Some(1_234_568),
                exec_per_sec: Some(123_457),
                coverage: Some(52),
                artifact: None
            }
        );
        stats.observe("artifact_prefix='a/'; Test unit written to a/crash-abc");
        assert_eq!(stats.artifact.as_deref(), Some("a/crash-abc"));
    }

    #[test]
    fn reads_bin_targets() {
        let dir = std::env::temp_dir().join(format!("xtask-fuzz-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let manifest = "[package]\nname = \"entra-fuzz\"\n\n[[bin]]\nname = \"one\"\npath = \"x.rs\"\n\n[[bin]]\nname=\"two\" # c\n";
        fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        let found = targets(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.unwrap(), ["one", "two"]);
    }
}
