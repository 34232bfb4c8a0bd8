//! The process edge: the one place that starts other programs (the Azure CLI, azd).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;

/// A program to run: resolved path, arguments, the `PATH` to give it, and how long it may take.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProcessCommand {
    /// The program, as a path.
    pub program: PathBuf,
    /// The arguments.
    pub args: Vec<String>,
    /// The `PATH` of the child (the injected environment's), if any.
    pub path: Option<String>,
    /// The longest the program may run before it is killed.
    pub timeout: Duration,
}

/// What a finished program produced.
#[derive(Clone)]
#[non_exhaustive]
pub struct ProcessOutput {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its exit code, if it exited normally.
    pub code: Option<i32>,
    /// Standard output: may hold a token, never log it.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl ProcessOutput {
    /// An output, for runners written in tests.
    pub fn new(code: i32, stdout: impl Into<Vec<u8>>, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            success: code == 0,
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }
}

impl fmt::Debug for ProcessOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessOutput")
            .field("success", &self.success)
            .field("code", &self.code)
            .field("stdout", &format_args!("<{} bytes>", self.stdout.len()))
            .field("stderr_bytes", &self.stderr.len())
            .finish()
    }
}

/// Why a program gave no output.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessError {
    /// It could not be found or started.
    NotFound,
    /// It ran longer than its timeout and was killed.
    TimedOut(Duration),
    /// Anything else.
    Io(io::Error),
}

/// Starts programs. The default, [`SystemProcessRunner`], starts real processes; tests can
/// inject their own.
#[async_trait]
pub trait ProcessRunner: Send + Sync + fmt::Debug {
    /// Runs `command` to completion or its timeout.
    async fn run(&self, command: &ProcessCommand) -> Result<ProcessOutput, ProcessError>;
}

/// Starts real processes (tokio), with the standard input closed, the output captured, and the
/// process killed when the timeout passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemProcessRunner;

#[async_trait]
impl ProcessRunner for SystemProcessRunner {
    async fn run(&self, command: &ProcessCommand) -> Result<ProcessOutput, ProcessError> {
        let mut attempts = 0;
        let child = loop {
            // The edge: the one place that starts processes.
            #[allow(clippy::disallowed_methods)]
            let mut cmd = tokio::process::Command::new(&command.program);
            cmd.args(&command.args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            if let Some(path) = &command.path {
                cmd.env("PATH", path);
            }
            match cmd.spawn() {
                Ok(child) => break child,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ProcessError::NotFound);
                }
                // ETXTBSY: a file just written is still open for writing in a process forked
                // at that moment; it clears at once.
                Err(e) if e.raw_os_error() == Some(26) && attempts < 5 => {
                    attempts += 1;
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(ProcessError::Io(e)),
            }
        };
        match tokio::time::timeout(command.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => Ok(ProcessOutput {
                success: output.status.success(),
                code: output.status.code(),
                stdout: output.stdout,
                stderr: output.stderr,
            }),
            Ok(Err(e)) => Err(ProcessError::Io(e)),
            // Dropping the future drops the child, which kills it (kill_on_drop).
            Err(_) => Err(ProcessError::TimedOut(command.timeout)),
        }
    }
}

/// The file `name` resolves to on `path` (a `PATH` value), if any.
pub(crate) fn find_on_path(name: &str, path: Option<&str>) -> Option<PathBuf> {
    let path = path?;
    let separator = if cfg!(windows) { ';' } else { ':' };
    let names: Vec<String> = if cfg!(windows) {
        vec![
            format!("{name}.cmd"),
            format!("{name}.exe"),
            name.to_owned(),
        ]
    } else {
        vec![name.to_owned()]
    };
    path.split(separator)
        .filter(|dir| !dir.is_empty())
        .flat_map(|dir| names.iter().map(move |n| Path::new(dir).join(n)))
        .find(|candidate| candidate.is_file())
}
