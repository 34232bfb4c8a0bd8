//! `cargo xtask bench`: criterion benchmarks, then a markdown table of their medians.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{cargo, run as run_command, target_dir};

/// Cargo flags that choose which targets to benchmark; without one we pick the `[[bench]]`
/// targets, so criterion's flags never reach a libtest harness that rejects them.
const TARGET_SELECTION: &[&str] = &[
    "--lib",
    "--bins",
    "--bin",
    "--examples",
    "--example",
    "--tests",
    "--test",
    "--benches",
    "--bench",
    "--all-targets",
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let report_only = args.first().is_some_and(|arg| arg == "--report-only");
    let started = SystemTime::now();
    if !report_only {
        let cargo_args = args.split(|arg| arg == "--").next().unwrap_or_default();
        let selects = cargo_args.iter().any(|arg| {
            TARGET_SELECTION
                .iter()
                .any(|flag| arg == flag || arg.starts_with(&format!("{flag}=")))
        });
        let mut command = cargo();
        command.args(["bench", "--workspace"]);
        if !selects {
            command.args(["--bench", "*"]);
        }
        run_command(command.args(args))?;
    } else if let Some(extra) = args.get(1) {
        anyhow::bail!("`bench --report-only` takes no other arguments, got `{extra}`");
    }

    let criterion = target_dir().join("criterion");
    let since = (!report_only).then_some(started);
    let rows = collect(&criterion, since)?;
    let mut report = render(&rows);
    report.push_str(&extras(&target_dir().join("bench-extra"), since));
    print!("{report}");
    let path = target_dir().join("bench-report.md");
    fs::write(&path, &report).with_context(|| format!("could not write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// One benchmark's median and its confidence interval, in nanoseconds.
#[derive(Debug, PartialEq)]
struct Row {
    id: String,
    median: f64,
    lower: f64,
    upper: f64,
    confidence: f64,
}

/// Every `**/new/estimates.json` under `criterion` (written after `since`, if given).
fn collect(criterion: &Path, since: Option<SystemTime>) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut dirs = vec![criterion.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if !is_new_estimates(&path) {
                continue;
            }
            let modified = fs::metadata(&path).and_then(|m| m.modified()).ok();
            if since.is_some_and(|since| modified.is_none_or(|modified| modified < since)) {
                continue; // a result of an earlier run of a benchmark that did not run now
            }
            rows.push(row(criterion, &path)?);
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}

fn is_new_estimates(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name == "estimates.json")
        && path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|dir| dir == "new")
}

fn row(criterion: &Path, estimates: &Path) -> Result<Row> {
    let json = |path: &Path| -> Result<Value> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
    };
    let new_dir = estimates.parent().unwrap_or(estimates);
    // criterion names the benchmark in benchmark.json; fall back to its directory.
    let id = json(&new_dir.join("benchmark.json"))
        .ok()
        .and_then(|b| b["full_id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            let dir: PathBuf = new_dir.parent().unwrap_or(new_dir).into();
            dir.strip_prefix(criterion)
                .unwrap_or(&dir)
                .display()
                .to_string()
        });
    let median = &json(estimates)?["median"];
    let number = |value: &Value, what: &str| {
        value
            .as_f64()
            .with_context(|| format!("{}: no {what}", estimates.display()))
    };
    let interval = &median["confidence_interval"];
    Ok(Row {
        id,
        median: number(&median["point_estimate"], "median point estimate")?,
        lower: number(&interval["lower_bound"], "lower bound")?,
        upper: number(&interval["upper_bound"], "upper bound")?,
        confidence: number(&interval["confidence_level"], "confidence level")?,
    })
}

fn render(rows: &[Row]) -> String {
    let mut report = String::from("# Benchmark report\n\n");
    if rows.is_empty() {
        report.push_str("No criterion results: no benchmark ran.\n");
        return report;
    }
    report.push_str(
        "Criterion's median time per iteration and its confidence interval, in nanoseconds\n\
         (from `target/criterion/**/new/estimates.json`).\n\n\
         `× floor` is the median over the floor's: a bare `HashMap` lookup plus an `Arc`\n\
         clone, measured in the same run at the same size where there is one (else the\n\
         1-entry floor).\n\n\
         | benchmark | median (ns) | × floor | confidence interval (ns) |\n|---|---:|---:|---:|\n",
    );
    for row in rows {
        let ratio = floor_of(rows, &row.id)
            .filter(|floor| floor.median > 0.0)
            .map_or("".to_owned(), |floor| {
                format!("{:.1}", row.median / floor.median)
            });
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} – {} ({:.0}%) |",
            row.id,
            nanoseconds(row.median),
            ratio,
            nanoseconds(row.lower),
            nanoseconds(row.upper),
            row.confidence * 100.0
        );
    }
    report
}

/// The floor a row is compared with: a `floor…` benchmark of the same group and parameter,
/// else the 1-entry floor of the facade or cache benchmarks.
fn floor_of<'a>(rows: &'a [Row], id: &str) -> Option<&'a Row> {
    let mut parts = id.split('/');
    let group = parts.next()?;
    let param = id
        .rsplit('/')
        .next()
        .filter(|_| id.matches('/').count() >= 2);
    rows.iter()
        .find(|r| {
            let mut p = r.id.split('/');
            p.next() == Some(group)
                && p.next().is_some_and(|name| name.starts_with("floor"))
                && param.is_some_and(|param| r.id.ends_with(&format!("/{param}")))
        })
        .or_else(|| {
            [
                "credential_hit/floor_hashmap_arc_clone/1",
                "cache_hit/floor_hashmap_arc_clone/1",
            ]
            .iter()
            .find_map(|floor| rows.iter().find(|r| r.id == *floor))
        })
}

/// Figures that are not times (requests made, bytes per token), written by the benches as
/// one line each under `target/bench-extra/` (only those written by this run, if timed).
fn extras(dir: &Path, since: Option<SystemTime>) -> String {
    let Ok(entries) = fs::read_dir(dir) else {
        return String::new();
    };
    let mut lines: Vec<String> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let modified = fs::metadata(path).and_then(|m| m.modified()).ok();
            since.is_none_or(|since| modified.is_some_and(|m| m >= since))
        })
        .filter_map(|path| fs::read_to_string(path).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    lines.sort();
    let mut out = String::from("\n## Other figures\n\n");
    for line in lines {
        let _ = writeln!(out, "- {line}");
    }
    out
}

/// At least three significant digits, without noise digits for large values.
fn nanoseconds(value: f64) -> String {
    match value.abs() {
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_criterion_estimates() {
        let root = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let new = root.join("get").join("hit").join("new");
        fs::create_dir_all(&new).unwrap();
        fs::create_dir_all(root.join("get").join("hit").join("base")).unwrap();
        let estimate = r#"{"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":41.5,"upper_bound":43.26},"point_estimate":42.0,"standard_error":0.4}}"#;
        fs::write(new.join("estimates.json"), estimate).unwrap();
        fs::write(
            root.join("get")
                .join("hit")
                .join("base")
                .join("estimates.json"),
            estimate,
        )
        .unwrap();
        let rows = collect(&root, None);
        fs::remove_dir_all(&root).unwrap();
        let rows = rows.unwrap();
        assert_eq!(
            rows,
            [Row {
                id: "get/hit".to_owned(),
                median: 42.0,
                lower: 41.5,
                upper: 43.26,
                confidence: 0.95
            }]
        );
        assert!(render(&rows).contains("| get/hit | 42.0 |  | 41.5 – 43.3 (95%) |"));
        // With a floor in the same group and size, the ratio is shown.
        let with_floor = [
            Row {
                id: "g/hit/10".to_owned(),
                median: 84.0,
                lower: 80.0,
                upper: 90.0,
                confidence: 0.95,
            },
            Row {
                id: "g/floor_map/10".to_owned(),
                median: 21.0,
                lower: 20.0,
                upper: 22.0,
                confidence: 0.95,
            },
        ];
        assert!(
            render(&with_floor).contains("| g/hit/10 | 84.0 | 4.0 |"),
            "{}",
            render(&with_floor)
        );
    }

    #[test]
    fn formats_nanoseconds() {
        assert_eq!(nanoseconds(1.234), "1.23");
        assert_eq!(nanoseconds(42.04), "42.0");
        assert_eq!(nanoseconds(123_456.7), "123457");
    }
}
