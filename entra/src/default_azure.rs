//! `DefaultAzureCredential`: the default chain.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use entra_core::{AccessToken, Error, TokenCredential, TokenRequest};

use crate::azure_cli::AZURE_CLI_CREDENTIAL;
use crate::azure_developer_cli::AZURE_DEVELOPER_CLI_CREDENTIAL;
use crate::environment::ENVIRONMENT_CREDENTIAL;
use crate::workload_identity::WORKLOAD_IDENTITY_CREDENTIAL;
use crate::{
    AzureCliCredential, AzureDeveloperCliCredential, ChainedTokenCredential, CredentialOptions,
    DeveloperToolOptions, EnvironmentCredential, MANAGED_IDENTITY_CREDENTIAL,
    ManagedIdentityCredential, ManagedIdentityId, ProcessRunner, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

/// The name the default chain reports when no credential works.
pub const DEFAULT_AZURE_CREDENTIAL: &str = "DefaultAzureCredential";

/// The environment variable that selects what the default chain may use.
pub const AZURE_TOKEN_CREDENTIALS: &str = "AZURE_TOKEN_CREDENTIALS";

/// The credentials of the default chain, in order.
const ORDER: [&str; 5] = [
    ENVIRONMENT_CREDENTIAL,
    WORKLOAD_IDENTITY_CREDENTIAL,
    MANAGED_IDENTITY_CREDENTIAL,
    AZURE_CLI_CREDENTIAL,
    AZURE_DEVELOPER_CLI_CREDENTIAL,
];

/// Options of a [`DefaultAzureCredential`].
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct DefaultAzureCredentialOptions {
    options: CredentialOptions,
    tenant_id: Option<String>,
    managed_identity: Option<ManagedIdentityId>,
    excluded: Vec<&'static str>,
    require_envvar: bool,
    process_runner: Option<Arc<dyn ProcessRunner>>,
    tool_timeout: Option<Duration>,
}

impl fmt::Debug for DefaultAzureCredentialOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultAzureCredentialOptions")
            .field("options", &self.options)
            .field("tenant_id", &self.tenant_id)
            .field("managed_identity", &self.managed_identity)
            .field("excluded", &self.excluded)
            .field("require_envvar", &self.require_envvar)
            .finish_non_exhaustive()
    }
}

impl DefaultAzureCredentialOptions {
    /// Every credential, real edges.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared options (edges, authority, allowed tenants) of every credential in the chain.
    pub fn options(mut self, options: CredentialOptions) -> Self {
        self.options = options;
        self
    }

    /// The tenant the developer tools ask for (default: theirs).
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// The managed identity to use (default: `AZURE_CLIENT_ID` as a user-assigned client id
    /// when set, else the system-assigned identity).
    pub fn managed_identity(mut self, id: ManagedIdentityId) -> Self {
        self.managed_identity = Some(id);
        self
    }

    fn exclude(mut self, name: &'static str, exclude: bool) -> Self {
        self.excluded.retain(|n| *n != name);
        if exclude {
            self.excluded.push(name);
        }
        self
    }

    /// Leaves out the [`EnvironmentCredential`], whatever `AZURE_TOKEN_CREDENTIALS` says.
    pub fn exclude_environment_credential(self, exclude: bool) -> Self {
        self.exclude(ENVIRONMENT_CREDENTIAL, exclude)
    }

    /// Leaves out the [`WorkloadIdentityCredential`], whatever `AZURE_TOKEN_CREDENTIALS` says.
    pub fn exclude_workload_identity_credential(self, exclude: bool) -> Self {
        self.exclude(WORKLOAD_IDENTITY_CREDENTIAL, exclude)
    }

    /// Leaves out the [`ManagedIdentityCredential`], whatever `AZURE_TOKEN_CREDENTIALS` says.
    pub fn exclude_managed_identity_credential(self, exclude: bool) -> Self {
        self.exclude(MANAGED_IDENTITY_CREDENTIAL, exclude)
    }

    /// Leaves out the [`AzureCliCredential`], whatever `AZURE_TOKEN_CREDENTIALS` says.
    pub fn exclude_azure_cli_credential(self, exclude: bool) -> Self {
        self.exclude(AZURE_CLI_CREDENTIAL, exclude)
    }

    /// Leaves out the [`AzureDeveloperCliCredential`], whatever `AZURE_TOKEN_CREDENTIALS`
    /// says.
    pub fn exclude_azure_developer_cli_credential(self, exclude: bool) -> Self {
        self.exclude(AZURE_DEVELOPER_CLI_CREDENTIAL, exclude)
    }

    /// Makes a missing or empty `AZURE_TOKEN_CREDENTIALS` a configuration error, so a
    /// deployment states which credentials it means to use.
    pub fn require_envvar(mut self, require: bool) -> Self {
        self.require_envvar = require;
        self
    }

    /// How the developer tools are started (default: real processes).
    pub fn process_runner(mut self, runner: Arc<dyn ProcessRunner>) -> Self {
        self.process_runner = Some(runner);
        self
    }

    /// How long a developer tool may run (default 10 s).
    pub fn developer_tool_timeout(mut self, timeout: Duration) -> Self {
        self.tool_timeout = Some(timeout);
        self
    }
}

/// The credentials `AZURE_TOKEN_CREDENTIALS` selects, or a configuration error listing the
/// valid values.
fn selected_by_env(value: Option<&str>, require: bool) -> Result<Vec<&'static str>, Error> {
    let valid = || {
        format!(
            "`dev`, `prod` or one of {}",
            ORDER.map(|n| format!("`{n}`")).join(", ")
        )
    };
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let Some(value) = value else {
        if require {
            return Err(Error::Configuration(format!(
                "{AZURE_TOKEN_CREDENTIALS} is required and not set; set it to {}",
                valid()
            )));
        }
        return Ok(ORDER.to_vec());
    };
    if value.eq_ignore_ascii_case("dev") {
        return Ok(vec![AZURE_CLI_CREDENTIAL, AZURE_DEVELOPER_CLI_CREDENTIAL]);
    }
    if value.eq_ignore_ascii_case("prod") {
        return Ok(vec![
            ENVIRONMENT_CREDENTIAL,
            WORKLOAD_IDENTITY_CREDENTIAL,
            MANAGED_IDENTITY_CREDENTIAL,
        ]);
    }
    if let Some(name) = ORDER.iter().find(|n| n.eq_ignore_ascii_case(value)) {
        return Ok(vec![name]);
    }
    Err(Error::Configuration(format!(
        "{AZURE_TOKEN_CREDENTIALS} is {value:?}, which is not a valid value; set it to {}",
        valid()
    )))
}

/// The default chain, for code that runs on developer machines and in Azure alike:
/// [`EnvironmentCredential`], [`WorkloadIdentityCredential`], [`ManagedIdentityCredential`]
/// (in probe mode, so a machine without a managed identity endpoint fails over fast),
/// [`AzureCliCredential`], [`AzureDeveloperCliCredential`].
///
/// - `AZURE_TOKEN_CREDENTIALS` narrows the chain: `dev` (the developer tools), `prod`
///   (environment, workload identity, managed identity) or one credential's name; anything else
///   is a configuration error listing the valid values. With
///   [`require_envvar`](DefaultAzureCredentialOptions::require_envvar), its absence is an error.
/// - Exclusions in code win over the variable.
/// - The chain moves on only when a credential is *unavailable*; a real failure stops it. Once
///   a credential has worked, it is used for every later request.
/// - When none works, the error lists what each credential said.
///
/// ```
/// use std::sync::Arc;
/// use entra::{CredentialOptions, DefaultAzureCredential, DefaultAzureCredentialOptions};
/// use entra_core::MapEnv;
///
/// let env = MapEnv::new([("AZURE_TOKEN_CREDENTIALS", "dev")]);
/// let credential = DefaultAzureCredential::with_options(
///     DefaultAzureCredentialOptions::new()
///         .options(CredentialOptions::new().env(Arc::new(env)))
///         .exclude_azure_developer_cli_credential(true),
/// )?;
/// assert_eq!(credential.credential_names(), ["AzureCliCredential"]);
///
/// let bad = MapEnv::new([("AZURE_TOKEN_CREDENTIALS", "everything")]);
/// let err = DefaultAzureCredential::with_options(
///     DefaultAzureCredentialOptions::new().options(CredentialOptions::new().env(Arc::new(bad))),
/// )
/// .unwrap_err();
/// assert!(err.to_string().contains("`prod`"));
/// # Ok::<(), entra_core::Error>(())
/// ```
#[derive(Debug)]
pub struct DefaultAzureCredential {
    names: Vec<&'static str>,
    chain: ChainedTokenCredential,
}

impl DefaultAzureCredential {
    /// The default chain with the real edges.
    pub fn new() -> Result<Self, Error> {
        Self::with_options(DefaultAzureCredentialOptions::new())
    }

    /// The default chain with `options`.
    pub fn with_options(o: DefaultAzureCredentialOptions) -> Result<Self, Error> {
        let env = o.options.env_or_default();
        let selected = selected_by_env(
            env.var(AZURE_TOKEN_CREDENTIALS).as_deref(),
            o.require_envvar,
        )?;
        let only_one = selected.len() == 1;
        let names: Vec<&'static str> = selected
            .into_iter()
            .filter(|n| !o.excluded.contains(n))
            .collect();
        if names.is_empty() {
            return Err(Error::Configuration(format!(
                "every credential {AZURE_TOKEN_CREDENTIALS} selects is excluded in code; change \
                 the variable or the exclusions"
            )));
        }
        let mut credentials: Vec<Arc<dyn TokenCredential>> = Vec::new();
        for name in &names {
            credentials.push(match *name {
                ENVIRONMENT_CREDENTIAL => Arc::new(EnvironmentCredential::new(o.options.clone())),
                WORKLOAD_IDENTITY_CREDENTIAL => Arc::new(WorkloadIdentityCredential::new(
                    WorkloadIdentityCredentialOptions::new().options(o.options.clone()),
                )),
                MANAGED_IDENTITY_CREDENTIAL => managed_identity(&o, !only_one),
                AZURE_CLI_CREDENTIAL => Arc::new(AzureCliCredential::new(tool_options(&o))),
                _ => Arc::new(AzureDeveloperCliCredential::new(tool_options(&o))),
            });
        }
        Ok(Self {
            names,
            chain: ChainedTokenCredential::named(DEFAULT_AZURE_CREDENTIAL, credentials)
                .remember_success(true),
        })
    }

    /// The names of the credentials in the chain, in order.
    pub fn credential_names(&self) -> &[&'static str] {
        &self.names
    }

    /// The name of the credential in use, once one has worked.
    pub fn selected(&self) -> Option<&'static str> {
        self.chain.selected().map(|i| self.names[i])
    }
}

fn tool_options(o: &DefaultAzureCredentialOptions) -> DeveloperToolOptions {
    let mut t = DeveloperToolOptions::new()
        .env(o.options.env_or_default())
        .clock(o.options.clock_or_default())
        .additionally_allowed_tenants(o.options.allowed_tenants(true));
    if let Some(tenant) = &o.tenant_id {
        t = t.tenant_id(tenant.clone());
    }
    if let Some(runner) = &o.process_runner {
        t = t.process_runner(runner.clone());
    }
    if let Some(timeout) = o.tool_timeout {
        t = t.timeout(timeout);
    }
    t
}

/// The managed identity credential of the chain; a configuration it cannot use is reported
/// when a token is asked for, so the rest of the chain is still built.
fn managed_identity(o: &DefaultAzureCredentialOptions, probe: bool) -> Arc<dyn TokenCredential> {
    let env = o.options.env_or_default();
    let id = o.managed_identity.clone().unwrap_or_else(|| {
        match env.var("AZURE_CLIENT_ID").filter(|v| !v.trim().is_empty()) {
            Some(client_id) => ManagedIdentityId::ClientId(client_id),
            None => ManagedIdentityId::SystemAssigned,
        }
    });
    let mut b = ManagedIdentityCredential::builder()
        .identity(id)
        .env(env)
        .clock(o.options.clock_or_default())
        .file_system(o.options.file_system_or_default())
        .probe_mode(probe);
    if let Some(transport) = &o.options.transport {
        b = b.transport(transport.clone());
    }
    if let Some(cache) = &o.options.cache {
        b = b.cache(cache.clone());
    }
    match b.build() {
        Ok(c) => Arc::new(c),
        Err(e) => Arc::new(Broken(e)),
    }
}

/// A credential whose configuration failed: it reports that failure.
#[derive(Debug)]
struct Broken(Error);

#[async_trait]
impl TokenCredential for Broken {
    async fn get_token(&self, _request: &TokenRequest) -> Result<AccessToken, Error> {
        Err(self.0.clone())
    }
}

#[async_trait]
impl TokenCredential for DefaultAzureCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.chain.get_token(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_credentials_values() {
        assert_eq!(selected_by_env(None, false).unwrap(), ORDER.to_vec());
        assert_eq!(
            selected_by_env(Some("DEV"), false).unwrap(),
            [AZURE_CLI_CREDENTIAL, AZURE_DEVELOPER_CLI_CREDENTIAL]
        );
        assert_eq!(selected_by_env(Some(" prod "), false).unwrap().len(), 3);
        assert_eq!(
            selected_by_env(Some("managedidentitycredential"), false).unwrap(),
            [MANAGED_IDENTITY_CREDENTIAL]
        );
        let err = selected_by_env(Some("VisualStudioCredential"), false).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Configuration(_)));
        for name in ORDER.iter().chain(&["dev", "prod"]) {
            assert!(text.contains(name), "{text}");
        }
        assert!(selected_by_env(None, true).is_err());
        assert!(selected_by_env(Some(""), true).is_err());
    }
}
