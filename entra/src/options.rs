//! `CredentialOptions`: the injected edges and settings every credential of this crate shares.

use std::fmt;
use std::sync::Arc;

use entra_claims::ClientCapabilities;
use entra_core::{
    AccessTokenCache, AuthorityHost, ClientCredential, Clock, Env, Error, HttpTransport,
    RetryPolicy, SystemClock, SystemEnv, TokenClient,
};
use entra_mi::{FileSystem, SystemFileSystem};

/// The environment variable that lists, separated by `;`, the tenants a credential configured
/// from the environment may also get tokens from (`*` for any).
pub const AZURE_ADDITIONALLY_ALLOWED_TENANTS: &str = "AZURE_ADDITIONALLY_ALLOWED_TENANTS";

/// Settings and injected edges shared by the credentials of this crate, in one value (as
/// aws-config's `ProviderConfig`). Every edge defaults to the real one: the process
/// environment, the system clock, a reqwest transport, the real file system, a cache of the
/// credential's own, and the authority host from `AZURE_AUTHORITY_HOST` or the public cloud.
///
/// ```
/// use std::sync::Arc;
/// use entra::CredentialOptions;
/// use entra_core::{AuthorityHost, ManualClock, MapEnv};
///
/// let options = CredentialOptions::new()
///     .authority(AuthorityHost::parse("https://login.microsoftonline.us")?)
///     .env(Arc::new(MapEnv::new([("AZURE_TENANT_ID", "contoso")])))
///     .clock(Arc::new(ManualClock::at_unix_seconds(1_700_000_000)))
///     .additionally_allowed_tenants(["fabrikam.onmicrosoft.com"]);
/// # let _ = options;
/// # Ok::<(), entra_core::Error>(())
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct CredentialOptions {
    pub(crate) authority: Option<AuthorityHost>,
    pub(crate) env: Option<Arc<dyn Env>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) transport: Option<Arc<dyn HttpTransport>>,
    pub(crate) cache: Option<AccessTokenCache>,
    pub(crate) file_system: Option<Arc<dyn FileSystem>>,
    pub(crate) capabilities: ClientCapabilities,
    pub(crate) additionally_allowed_tenants: Option<Vec<String>>,
    pub(crate) retry: Option<RetryPolicy>,
}

impl fmt::Debug for CredentialOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialOptions")
            .field("authority", &self.authority)
            .field("env", &self.env)
            .field("clock", &self.clock.as_ref().map(|_| "injected"))
            .field("transport", &self.transport.as_ref().map(|_| "injected"))
            .field("cache", &self.cache.as_ref().map(|_| "shared"))
            .field("file_system", &self.file_system)
            .field("capabilities", &self.capabilities)
            .field(
                "additionally_allowed_tenants",
                &self.additionally_allowed_tenants,
            )
            .finish()
    }
}

impl CredentialOptions {
    /// Options with every edge the real one.
    pub fn new() -> Self {
        Self::default()
    }

    /// The authority host (default: `AZURE_AUTHORITY_HOST` from the environment, else the
    /// public cloud).
    pub fn authority(mut self, authority: AuthorityHost) -> Self {
        self.authority = Some(authority);
        self
    }

    /// The environment variables are read from (default: the process environment).
    pub fn env(mut self, env: Arc<dyn Env>) -> Self {
        self.env = Some(env);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The HTTP transport (default: a reqwest + rustls transport).
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// A token cache shared with other credentials (default: one of the credential's own).
    pub fn cache(mut self, cache: AccessTokenCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The file system certificate and federated token files are read from (default: the
    /// real one).
    pub fn file_system(mut self, file_system: Arc<dyn FileSystem>) -> Self {
        self.file_system = Some(file_system);
        self
    }

    /// Client capabilities to declare (for example `cp1` for Continuous Access Evaluation).
    pub fn client_capabilities(mut self, capabilities: ClientCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Tenants besides the credential's own that a request may name (`*` for any). Without
    /// this, credentials configured from the environment read
    /// [`AZURE_ADDITIONALLY_ALLOWED_TENANTS`].
    pub fn additionally_allowed_tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.additionally_allowed_tenants = Some(tenants.into_iter().map(Into::into).collect());
        self
    }

    /// How failed token requests are retried (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    pub(crate) fn env_or_default(&self) -> Arc<dyn Env> {
        self.env.clone().unwrap_or_else(|| Arc::new(SystemEnv))
    }

    pub(crate) fn clock_or_default(&self) -> Arc<dyn Clock> {
        self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock))
    }

    pub(crate) fn file_system_or_default(&self) -> Arc<dyn FileSystem> {
        self.file_system
            .clone()
            .unwrap_or_else(|| Arc::new(SystemFileSystem))
    }

    /// The allowed tenants: the explicit list, else (when `from_env`) the environment's.
    pub(crate) fn allowed_tenants(&self, from_env: bool) -> Vec<String> {
        match &self.additionally_allowed_tenants {
            Some(list) => list.clone(),
            None if from_env => self
                .env_or_default()
                .var(AZURE_ADDITIONALLY_ALLOWED_TENANTS)
                .map(|v| {
                    v.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The one token exchange for `client_id` in `tenant` with `credential`.
    pub(crate) fn token_client(
        &self,
        tenant: &str,
        client_id: &str,
        credential: ClientCredential,
    ) -> Result<TokenClient, Error> {
        let authority = match &self.authority {
            Some(a) => a.clone(),
            None => AuthorityHost::from_env(self.env_or_default().as_ref())?,
        };
        let mut builder = TokenClient::builder(client_id)
            .authority(authority)
            .tenant(tenant)?
            .credential(credential)
            .client_capabilities(self.capabilities.clone())
            .clock(self.clock_or_default());
        if let Some(transport) = &self.transport {
            builder = builder.transport(transport.clone());
        }
        if let Some(cache) = &self.cache {
            builder = builder.cache(cache.clone());
        }
        if let Some(retry) = &self.retry {
            builder = builder.retry(retry.clone());
        }
        builder.build()
    }
}
