//! What the Azure CLI and Azure Developer CLI credentials share: running the tool, and turning
//! its exit, stderr and JSON into a token or an error that never holds the token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entra_core::{AccessToken, Clock, Env, Error, Secret, TokenRequest, TokenType};

use crate::process::{ProcessCommand, ProcessError, ProcessRunner, find_on_path};
use crate::tenant::resolve_tenant;

/// How long a developer tool may run by default.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest output read as a token answer.
const MAX_STDOUT_BYTES: usize = 1024 * 1024;

/// The longest stderr text kept in an error.
const MAX_STDERR_CHARS: usize = 1000;

/// The failure of a developer tool: its own words (stderr, with anything token-like removed).
#[derive(Debug, Clone)]
pub(crate) struct ToolError(pub(crate) String);

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}

/// One tool: its names and the way it words things.
pub(crate) struct Tool {
    pub(crate) credential: &'static str,
    pub(crate) display: &'static str,
    pub(crate) program: &'static str,
    pub(crate) install: &'static str,
    pub(crate) login: &'static str,
    pub(crate) not_logged_in: &'static [&'static str],
}

/// The configuration both credentials share.
#[derive(Clone)]
pub(crate) struct ToolConfig {
    pub(crate) tenant_id: Option<String>,
    pub(crate) allowed_tenants: Vec<String>,
    pub(crate) env: Arc<dyn Env>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) runner: Arc<dyn ProcessRunner>,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for ToolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolConfig")
            .field("tenant_id", &self.tenant_id)
            .field("allowed_tenants", &self.allowed_tenants)
            .field("runner", &self.runner)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A scope safe to pass as one argument: no leading `-`, no whitespace or shell-ish text.
fn check_scope(tool: &Tool, request: &TokenRequest) -> Result<String, Error> {
    let scopes: Vec<&str> = request
        .scopes
        .iter()
        .flat_map(|s| s.split_ascii_whitespace())
        .collect();
    let [scope] = scopes.as_slice() else {
        return Err(Error::Configuration(format!(
            "{} asks for exactly one scope at a time and got {}",
            tool.credential,
            scopes.len()
        )));
    };
    let ok = !scope.starts_with('-')
        && scope
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if !ok {
        return Err(Error::Configuration(format!(
            "{} refuses the scope {scope:?}: only letters, digits and - _ . : / are passed to \
             the tool",
            tool.credential
        )));
    }
    Ok((*scope).to_owned())
}

impl ToolConfig {
    /// Runs the tool for `request` and returns its standard output; `args` builds the
    /// arguments from the scope and the tenant.
    pub(crate) async fn run(
        &self,
        tool: &Tool,
        request: &TokenRequest,
        args: impl FnOnce(&str, Option<&str>) -> Vec<String>,
    ) -> Result<Vec<u8>, Error> {
        if request.claims_challenge.is_some() {
            return Err(Error::not_supported(
                "claims_challenge_not_supported",
                format!(
                    "{} cannot answer a claims challenge; run `{}` with the claims challenge \
                     yourself, or use another credential",
                    tool.credential, tool.login
                ),
            ));
        }
        let scope = check_scope(tool, request)?;
        let tenant = resolve_tenant(
            tool.credential,
            self.tenant_id.as_deref(),
            request.tenant.as_deref(),
            &self.allowed_tenants,
        )?;
        if let Some(t) = &tenant {
            entra_core::Tenant::new(t)?;
        }
        let path = self.env.var("PATH");
        let Some(program) = find_on_path(tool.program, path.as_deref()) else {
            return Err(Error::unavailable(
                tool.credential,
                format!(
                    "{} (`{}`) was not found on PATH; {}",
                    tool.display, tool.program, tool.install
                ),
            ));
        };
        let command = ProcessCommand {
            program,
            args: args(&scope, tenant.as_deref()),
            path,
            timeout: self.timeout,
        };
        tracing::debug!(tool = tool.program, scope = %scope, "running developer tool");
        let output = match self.runner.run(&command).await {
            Ok(output) => output,
            Err(ProcessError::NotFound) => {
                return Err(Error::unavailable(
                    tool.credential,
                    format!("{} could not be started; {}", tool.display, tool.install),
                ));
            }
            Err(ProcessError::TimedOut(t)) => {
                return Err(Error::unavailable(
                    tool.credential,
                    format!(
                        "{} did not answer within {t:?} and was stopped; run `{}` yourself to \
                         see what it waits for",
                        tool.display,
                        command.args.join(" ")
                    ),
                ));
            }
            Err(ProcessError::Io(e)) => {
                return Err(Error::Credential {
                    context: format!("{} could not be run", tool.display).into(),
                    source: Arc::new(e),
                });
            }
        };
        if output.success {
            return Ok(output.stdout);
        }
        let stderr = clean_stderr(&output.stderr);
        let lower = stderr.to_ascii_lowercase();
        if tool.not_logged_in.iter().any(|p| lower.contains(p)) {
            return Err(Error::unavailable(
                tool.credential,
                format!("not logged in; run `{}`: {stderr}", tool.login),
            ));
        }
        // 127: the shell could not find the tool (a wrapper script calling a missing binary).
        if output.code == Some(127) || lower.contains("command not found") {
            return Err(Error::unavailable(
                tool.credential,
                format!(
                    "{} is not installed; {}: {stderr}",
                    tool.display, tool.install
                ),
            ));
        }
        Err(Error::Credential {
            context: format!(
                "{} failed (exit code {})",
                tool.display,
                output
                    .code
                    .map_or_else(|| "none".to_owned(), |c| c.to_string())
            )
            .into(),
            source: Arc::new(ToolError(if stderr.is_empty() {
                "no error output".to_owned()
            } else {
                stderr
            })),
        })
    }

    /// A token from the tool's JSON output.
    pub(crate) fn token(&self, secret: Secret, expires_on: SystemTime) -> AccessToken {
        let now = self.clock.now();
        AccessToken::new(
            secret,
            expires_on,
            entra_cache::refresh_on(now, expires_on, None),
            TokenType::Bearer,
        )
    }
}

/// An error for output that is not what the tool should print. The output itself is never
/// quoted: it may hold a token.
pub(crate) fn garbage(tool: &Tool, what: &str) -> Error {
    Error::Credential {
        context: format!("{} printed output this library cannot use", tool.display).into(),
        source: Arc::new(ToolError(format!(
            "{what}; update {} and run it yourself to check its output",
            tool.display
        ))),
    }
}

/// The JSON object the tool printed.
pub(crate) fn parse_json(
    tool: &Tool,
    stdout: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    if stdout.len() > MAX_STDOUT_BYTES {
        return Err(garbage(
            tool,
            &format!("the output is larger than {MAX_STDOUT_BYTES} bytes"),
        ));
    }
    match serde_json::from_slice::<serde_json::Value>(stdout) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(garbage(tool, "the output is JSON but not an object")),
        Err(e) => Err(garbage(
            tool,
            &format!(
                "the output ({} bytes) is not JSON (line {}, column {})",
                stdout.len(),
                e.line(),
                e.column()
            ),
        )),
    }
}

/// A unix-seconds timestamp from a number or a numeric string.
pub(crate) fn unix_seconds(value: &serde_json::Value) -> Option<SystemTime> {
    let secs = match value {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// The tool's stderr, trimmed, cut, and with anything token-like removed.
fn clean_stderr(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut out = String::new();
    for word in text.split_inclusive(char::is_whitespace) {
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if bare.starts_with("eyJ") || (bare.len() > 100 && !bare.contains('/')) {
            out.push_str("<redacted>");
            out.extend(word.chars().filter(|c| c.is_whitespace()));
        } else {
            out.push_str(word);
        }
    }
    let out = out.trim();
    match out.char_indices().nth(MAX_STDERR_CHARS) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_like_words_are_removed_from_stderr() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let cleaned = clean_stderr(format!("ERROR: bad token {jwt}\nsee docs").as_bytes());
        assert!(!cleaned.contains("eyJ"), "{cleaned}");
        assert!(cleaned.contains("ERROR: bad token <redacted>"), "{cleaned}");
        assert!(cleaned.ends_with("see docs"));
    }

    #[test]
    fn timestamps_as_numbers_or_strings() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(unix_seconds(&serde_json::json!(1_700_000_000)), Some(t));
        assert_eq!(unix_seconds(&serde_json::json!("1700000000")), Some(t));
        assert_eq!(unix_seconds(&serde_json::json!("soon")), None);
    }
}

/// Options of the developer-tool credentials ([`AzureCliCredential`](crate::AzureCliCredential),
/// [`AzureDeveloperCliCredential`](crate::AzureDeveloperCliCredential)).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct DeveloperToolOptions {
    tenant_id: Option<String>,
    additionally_allowed_tenants: Vec<String>,
    env: Option<Arc<dyn Env>>,
    clock: Option<Arc<dyn Clock>>,
    runner: Option<Arc<dyn ProcessRunner>>,
    timeout: Option<Duration>,
}

impl fmt::Debug for DeveloperToolOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeveloperToolOptions")
            .field("tenant_id", &self.tenant_id)
            .field(
                "additionally_allowed_tenants",
                &self.additionally_allowed_tenants,
            )
            .field("env", &self.env)
            .field("runner", &self.runner)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DeveloperToolOptions {
    /// The defaults: the tool's own tenant, the process environment, a 10 s timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tenant to ask the tool for (default: the tool's current one).
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Tenants besides [`tenant_id`](Self::tenant_id) that a request may name (`*` for any).
    pub fn additionally_allowed_tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.additionally_allowed_tenants = tenants.into_iter().map(Into::into).collect();
        self
    }

    /// The environment whose `PATH` the tool is looked up on and run with (default: the
    /// process environment).
    pub fn env(mut self, env: Arc<dyn Env>) -> Self {
        self.env = Some(env);
        self
    }

    /// The clock (default: the system clock), for the refresh time of tokens.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How processes are started (default: [`SystemProcessRunner`](crate::SystemProcessRunner)).
    pub fn process_runner(mut self, runner: Arc<dyn ProcessRunner>) -> Self {
        self.runner = Some(runner);
        self
    }

    /// How long the tool may run before it is stopped (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn into_config(self) -> ToolConfig {
        ToolConfig {
            tenant_id: self.tenant_id,
            allowed_tenants: self.additionally_allowed_tenants,
            env: self.env.unwrap_or_else(|| Arc::new(entra_core::SystemEnv)),
            clock: self
                .clock
                .unwrap_or_else(|| Arc::new(entra_core::SystemClock)),
            runner: self
                .runner
                .unwrap_or_else(|| Arc::new(crate::SystemProcessRunner)),
            timeout: self.timeout.unwrap_or(DEFAULT_TOOL_TIMEOUT),
        }
    }
}
