//! `cargo xtask tidy`: workspace rules that neither rustc nor clippy check. Also a `#[test]`, so
//! `cargo test` (and with it `cargo xtask test`) enforces them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// Checks the workspace and reports every problem found.
pub(crate) fn run() -> Result<()> {
    let problems = check(&workspace_root())?;
    if problems.is_empty() {
        eprintln!("tidy: ok");
        return Ok(());
    }
    let mut message = format!("tidy found {} problem(s):", problems.len());
    for problem in &problems {
        let _ = write!(message, "\n  {problem}");
    }
    bail!(message)
}

/// Every rule violation under `root`, one line each, naming the file.
pub(crate) fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let manifest = read(&root.join("Cargo.toml"))?;
    for member in workspace_members(&manifest)? {
        let dir = root.join(&member);
        let member_manifest = read(&dir.join("Cargo.toml"))?;
        if !lints_opt_in(&member_manifest) {
            problems.push(format!(
                "{member}/Cargo.toml: opt into the workspace lints with `[lints] workspace = true`"
            ));
        }
        let lib = dir.join("src").join("lib.rs");
        if lib.is_file() {
            let path = format!("{member}/src/lib.rs");
            problems.extend(
                check_lib(&read(&lib)?)
                    .into_iter()
                    .map(|p| format!("{path}: {p}")),
            );
        }
    }
    for file in rust_files(root)? {
        let path = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (line, problem) in check_markers(&read(&file)?) {
            problems.push(format!("{path}:{line}: {problem}"));
        }
    }
    Ok(problems)
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
}

/// The `members` of the root manifest's `[workspace]` table (no globs).
fn workspace_members(manifest: &str) -> Result<Vec<String>> {
    let section =
        toml_table(manifest, "[workspace]").context("the root Cargo.toml has no [workspace]")?;
    let mut lines = section.iter().skip_while(|line| {
        let key = line.trim_start();
        !(key.starts_with("members") && key["members".len()..].trim_start().starts_with('='))
    });
    let mut array = String::new();
    for line in lines.by_ref() {
        let line = strip_comment(line);
        array.push_str(line);
        array.push('\n');
        if line.contains(']') {
            break;
        }
    }
    let start = array
        .find('[')
        .context("[workspace] has no `members = [...]`")?;
    let end = array.find(']').context("`members` array is not closed")?;
    let members: Vec<String> = array[start + 1..end]
        .split(',')
        .map(|item| item.trim().trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect();
    if let Some(glob) = members.iter().find(|m| m.contains(['*', '?', '['])) {
        bail!("tidy does not expand the workspace member glob `{glob}`; list members by name");
    }
    Ok(members)
}

/// The lines of a TOML table, from the line after its header to the next header.
fn toml_table<'a>(manifest: &'a str, header: &str) -> Option<Vec<&'a str>> {
    let mut lines = manifest.lines();
    lines
        .by_ref()
        .find(|line| strip_comment(line).trim() == header)?;
    Some(
        lines
            .take_while(|line| !line.trim_start().starts_with('['))
            .collect(),
    )
}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or_default()
}

fn without_spaces(line: &str) -> String {
    strip_comment(line)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// `[lints] workspace = true`, or `lints.workspace = true` / `lints = { workspace = true }`.
fn lints_opt_in(manifest: &str) -> bool {
    let in_table = toml_table(manifest, "[lints]").is_some_and(|table| {
        table
            .iter()
            .any(|line| without_spaces(line) == "workspace=true")
    });
    let top_level = manifest
        .lines()
        .take_while(|line| !line.trim_start().starts_with('['));
    in_table
        || top_level
            .map(without_spaces)
            .any(|line| line == "lints.workspace=true" || line == "lints={workspace=true}")
}

/// The crate-level rules of a library's `src/lib.rs`.
fn check_lib(source: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let first = source.lines().find(|line| !line.trim().is_empty());
    if !first.is_some_and(|line| line.starts_with("//!")) {
        problems
            .push("open with `//!` crate docs: what the crate is for and an example".to_owned());
    }
    let lints = inner_lint_attributes(source);
    let has = |levels: &[&str], lint: &str| {
        lints
            .iter()
            .any(|(level, name)| levels.contains(&level.as_str()) && name == lint)
    };
    if !has(&["forbid"], "unsafe_code") {
        problems.push("add `#![forbid(unsafe_code)]`".to_owned());
    }
    if !has(&["warn", "deny", "forbid"], "missing_docs") {
        problems.push(
            "add `#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]`"
                .to_owned(),
        );
    }
    problems
}

/// `(level, lint)` for every lint named in a crate-level `#![level(...)]` attribute that starts a
/// line (so not one inside a comment or a doc example).
fn inner_lint_attributes(source: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut lints = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(attribute) = line.trim_start().strip_prefix("#![") else {
            continue;
        };
        let mut text = attribute.to_owned();
        for next in &lines[index + 1..] {
            if text.contains(')') {
                break;
            }
            text.push_str(next);
        }
        let (Some(open), Some(close)) = (text.find('('), text.find(')')) else {
            continue;
        };
        let level = text[..open].trim();
        if !["allow", "warn", "deny", "forbid", "expect"].contains(&level) || close < open {
            continue;
        }
        for lint in text[open + 1..close].split(',') {
            let lint = lint.trim();
            if !lint.is_empty() {
                lints.push((level.to_owned(), lint.to_owned()));
            }
        }
    }
    lints
}

/// Unfinished code and skipped tests. The patterns are assembled so that this file does not
/// contain them.
fn check_markers(source: &str) -> Vec<(usize, String)> {
    let macros = [concat!("todo", "!("), concat!("unimplemented", "!(")];
    let ignore = concat!("#[", "ignore");
    let mut problems = Vec::new();
    for (index, line) in source.lines().enumerate() {
        for pattern in macros {
            if line.contains(pattern) {
                let name = pattern.trim_end_matches('(');
                problems.push((
                    index + 1,
                    format!("`{name}` left in the code: finish it or return an error"),
                ));
            }
        }
        let ignored = line
            .match_indices(ignore)
            .any(|(at, _)| line[at + ignore.len()..].starts_with([']', ' ', '=']));
        if ignored {
            problems.push((
                index + 1,
                "ignored test: make it pass or delete it".to_owned(),
            ));
        }
    }
    problems
}

/// Every `.rs` file under `root`, skipping build output and hidden directories.
fn rust_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            fs::read_dir(&dir).with_context(|| format!("could not list {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                let skipped = name.starts_with('.')
                    || name == "target"
                    || name == "corpus"
                    || name == "artifacts";
                if !skipped {
                    dirs.push(path);
                }
            } else if kind.is_file() && name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules hold for this workspace: `cargo test` fails when they do not.
    #[test]
    fn workspace_is_tidy() {
        let problems = check(&workspace_root()).expect("tidy could not read the workspace");
        assert!(
            problems.is_empty(),
            "tidy found problems:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn reads_members_across_lines_and_comments() {
        let manifest = "[package]\nmembers = [\"no\"]\n[workspace]\nresolver = \"3\"\nmembers = [\n  \"a\", # first\n  \"b/c\",\n]\n[workspace.package]\n";
        assert_eq!(workspace_members(manifest).unwrap(), ["a", "b/c"]);
        assert!(workspace_members("[workspace]\nmembers = [\"crates/*\"]\n").is_err());
    }

    #[test]
    fn lints_opt_in_forms() {
        assert!(lints_opt_in(
            "[package]\nname = \"x\"\n\n[lints]\nworkspace = true\n"
        ));
        assert!(lints_opt_in("lints.workspace = true\n[package]\n"));
        assert!(!lints_opt_in("[package]\nworkspace = true\n[lints]\n"));
        assert!(!lints_opt_in("[lints.rust]\nunsafe_code = \"forbid\"\n"));
    }

    #[test]
    fn library_rules() {
        let good = "//! Does things.\n\n#![forbid(unsafe_code)]\n#![warn(\n    missing_docs,\n    unreachable_pub\n)]\n";
        assert!(check_lib(good).is_empty(), "{:?}", check_lib(good));
        let bad = "#![warn(unsafe_code)]\n//! #![forbid(unsafe_code)]\n// #![warn(missing_docs)]\n";
        assert_eq!(check_lib(bad).len(), 3, "{:?}", check_lib(bad));
    }

    #[test]
    fn markers() {
        let todo = format!("fn f() {{ {}!() }}", "todo");
        let ignore = format!(
            "#[{}]\n#[{} = \"slow\"]\n#[{}_me]",
            "ignore", "ignore", "ignore"
        );
        assert_eq!(check_markers(&todo).len(), 1);
        let lines: Vec<usize> = check_markers(&ignore)
            .into_iter()
            .map(|(line, _)| line)
            .collect();
        assert_eq!(lines, [1, 2]);
        assert!(check_markers("let todo = 1;").is_empty());
    }
}
