//! `WorkloadIdentityCredential`: Kubernetes workload identity (a federated token file).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use entra_core::{
    AccessToken, AssertionContext, AssertionProvider, ClientCredential, Clock, Error, Secret,
    TokenCredential, TokenRequest,
};
use entra_mi::FileSystem;

use crate::CredentialOptions;
use crate::client_assertion::ClientAssertionCredential;

/// The name this credential reports in errors and in `AZURE_TOKEN_CREDENTIALS`.
pub const WORKLOAD_IDENTITY_CREDENTIAL: &str = "WorkloadIdentityCredential";

/// How long a value read from the token file is used before the file is read again (the file
/// rotates).
pub const TOKEN_FILE_MAX_AGE: Duration = Duration::from_secs(10 * 60);

const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Options of a [`WorkloadIdentityCredential`]: each value defaults to its environment
/// variable (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WorkloadIdentityCredentialOptions {
    tenant_id: Option<String>,
    client_id: Option<String>,
    token_file_path: Option<PathBuf>,
    options: CredentialOptions,
}

impl WorkloadIdentityCredentialOptions {
    /// Everything from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tenant (default `AZURE_TENANT_ID`).
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// The application (default `AZURE_CLIENT_ID`).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The token file (default `AZURE_FEDERATED_TOKEN_FILE`).
    pub fn token_file_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_file_path = Some(path.into());
        self
    }

    /// The shared options (edges, authority, allowed tenants).
    pub fn options(mut self, options: CredentialOptions) -> Self {
        self.options = options;
        self
    }
}

/// Workload identity (Azure Kubernetes Service and other federations): the application
/// exchanges the service-account token that the platform writes to
/// `AZURE_FEDERATED_TOKEN_FILE` for an Entra token. The file rotates, so it is read again
/// whenever the value read last is older than [`TOKEN_FILE_MAX_AGE`] (by the injected clock).
///
/// Missing variables make every request [`Error::Unavailable`], naming them.
///
/// ```
/// use std::sync::Arc;
/// use entra::{CredentialOptions, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions};
/// use entra_core::MapEnv;
///
/// let env = MapEnv::new([
///     ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
///     ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
///     ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token"),
/// ]);
/// let credential = WorkloadIdentityCredential::new(
///     WorkloadIdentityCredentialOptions::new().options(CredentialOptions::new().env(Arc::new(env))),
/// );
/// # let _ = credential;
/// ```
#[derive(Debug, Clone)]
pub struct WorkloadIdentityCredential {
    state: Result<ClientAssertionCredential, Error>,
}

impl WorkloadIdentityCredential {
    /// Configures the credential from `options` and the environment.
    pub fn new(options: WorkloadIdentityCredentialOptions) -> Self {
        Self {
            state: configure(options),
        }
    }
}

fn configure(o: WorkloadIdentityCredentialOptions) -> Result<ClientAssertionCredential, Error> {
    let env = o.options.env_or_default();
    let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    let tenant = o.tenant_id.or_else(|| var("AZURE_TENANT_ID"));
    let client_id = o.client_id.or_else(|| var("AZURE_CLIENT_ID"));
    let file = o
        .token_file_path
        .or_else(|| var("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from));
    let mut missing = Vec::new();
    if tenant.is_none() {
        missing.push("AZURE_TENANT_ID");
    }
    if client_id.is_none() {
        missing.push("AZURE_CLIENT_ID");
    }
    if file.is_none() {
        missing.push("AZURE_FEDERATED_TOKEN_FILE");
    }
    let (Some(tenant), Some(client_id), Some(file)) = (tenant, client_id, file) else {
        return Err(Error::unavailable(
            WORKLOAD_IDENTITY_CREDENTIAL,
            format!(
                "workload identity is not configured: missing {}; enable workload identity on \
                 the pod or set the variables",
                missing.join(", ")
            ),
        ));
    };
    let provider = TokenFileAssertion::new(
        file,
        o.options.file_system_or_default(),
        o.options.clock_or_default(),
    );
    ClientAssertionCredential::with_credential(
        &tenant,
        &client_id,
        ClientCredential::Assertion(Arc::new(provider)),
        o.options,
        WORKLOAD_IDENTITY_CREDENTIAL,
        true,
    )
}

#[async_trait]
impl TokenCredential for WorkloadIdentityCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        match &self.state {
            Ok(c) => c.get_token(request).await,
            Err(e) => Err(e.clone()),
        }
    }
}

/// Reads the federated token from a file, keeping a read value at most [`TOKEN_FILE_MAX_AGE`].
pub(crate) struct TokenFileAssertion {
    path: PathBuf,
    file_system: Arc<dyn FileSystem>,
    clock: Arc<dyn Clock>,
    last: Mutex<Option<(Secret, SystemTime)>>,
}

impl fmt::Debug for TokenFileAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFileAssertion")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TokenFileAssertion {
    pub(crate) fn new(
        path: PathBuf,
        file_system: Arc<dyn FileSystem>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            path,
            file_system,
            clock,
            last: Mutex::new(None),
        }
    }

    fn read(&self) -> Result<Secret, Error> {
        let now = self.clock.now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((value, read_at)) = last.as_ref() {
            let age = now.duration_since(*read_at).unwrap_or(Duration::ZERO);
            if age < TOKEN_FILE_MAX_AGE {
                return Ok(value.clone());
            }
        }
        let value = read_token_file(self.file_system.as_ref(), &self.path)?;
        *last = Some((value.clone(), now));
        Ok(value)
    }
}

fn read_token_file(fs: &dyn FileSystem, path: &Path) -> Result<Secret, Error> {
    let shown = path.display();
    let bytes = fs
        .read_at_most(path, MAX_TOKEN_FILE_BYTES + 1)
        .map_err(|e| {
            Error::Configuration(format!(
                "cannot read the federated token file {shown}: {e}; check AZURE_FEDERATED_TOKEN_FILE"
            ))
        })?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(Error::Configuration(format!(
            "the federated token file {shown} is larger than 64 KiB; it should hold one JWT"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::Configuration(format!(
            "the federated token file {shown} is not UTF-8; it should hold one JWT"
        ))
    })?;
    let token = Secret::new(text.trim());
    if token.is_empty() {
        return Err(Error::Configuration(format!(
            "the federated token file {shown} is empty; wait for the platform to write it"
        )));
    }
    Ok(token)
}

#[async_trait]
impl AssertionProvider for TokenFileAssertion {
    async fn assertion(&self, _context: &AssertionContext) -> Result<Secret, Error> {
        self.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_core::{ManualClock, MapEnv};
    use entra_mi::MemoryFileSystem;

    #[test]
    fn the_file_is_read_again_after_ten_minutes_only() {
        let fs = MemoryFileSystem::new().with_file("/t", "first");
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let provider =
            TokenFileAssertion::new("/t".into(), Arc::new(fs.clone()), Arc::new(clock.clone()));
        assert_eq!(provider.read().unwrap().expose(), "first");
        fs.insert("/t", "second\n");
        clock.advance(TOKEN_FILE_MAX_AGE - Duration::from_secs(1));
        assert_eq!(provider.read().unwrap().expose(), "first");
        clock.advance(Duration::from_secs(1));
        assert_eq!(provider.read().unwrap().expose(), "second");
        assert_eq!(fs.reads().len(), 2);
    }

    #[test]
    fn empty_or_missing_file_is_a_clear_error() {
        let fs = MemoryFileSystem::new().with_file("/t", " \n");
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let provider = TokenFileAssertion::new("/t".into(), Arc::new(fs), Arc::new(clock.clone()));
        assert!(provider.read().unwrap_err().to_string().contains("empty"));
        let provider = TokenFileAssertion::new(
            "/missing".into(),
            Arc::new(MemoryFileSystem::new()),
            Arc::new(clock),
        );
        assert!(
            provider
                .read()
                .unwrap_err()
                .to_string()
                .contains("/missing")
        );
    }

    #[test]
    fn missing_variables_are_listed() {
        let env = MapEnv::new([("AZURE_CLIENT_ID", "app")]);
        let c = WorkloadIdentityCredential::new(
            WorkloadIdentityCredentialOptions::new()
                .options(CredentialOptions::new().env(Arc::new(env))),
        );
        let err = c.state.unwrap_err();
        assert!(err.is_unavailable());
        let text = err.to_string();
        assert!(text.contains("AZURE_TENANT_ID") && text.contains("AZURE_FEDERATED_TOKEN_FILE"));
        assert!(!text.contains("AZURE_CLIENT_ID,"));
    }
}
