//! `ManagedIdentityCredential`: detects the source, asks it for tokens, caches them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use entra_cache::{CacheConfig, CacheKey, CacheMode, Fresh, TokenCache};
use entra_claims::ClientCapabilities;
use entra_core::wire::endpoint;
use entra_core::{
    AccessToken, AccessTokenCache, Clock, Env, Error, HttpTransport, ReqwestTransport, SystemClock,
    SystemEnv, TokenCredential, TokenRequest, TransportErrorKind,
};
use entra_mtls_pop::{
    AttestationProvider, Binding, KeyProvider, NoAttestation, SoftwareKeyProvider,
};
use tracing::Instrument as _;

use crate::app_service::AppService;
use crate::arc::AzureArc;
use crate::cloud_shell::CloudShell;
use crate::imds::Imds;
use crate::imds_v2::{ImdsV2, ImdsV2Parts, NOT_SUPPORTED_FOR_ENVIRONMENT};
use crate::machine_learning::MachineLearning;
use crate::retry::{self, RetryPolicy};
use crate::service_fabric::ServiceFabric;
use crate::source::ManagedIdentitySource;
use crate::{FileSystem, ManagedIdentitySourceKind, SystemFileSystem, detect_source};

/// The name this credential reports itself under in [`Error::Unavailable`].
pub const CREDENTIAL_NAME: &str = "ManagedIdentityCredential";

/// The tenant component of managed identity cache keys (a managed identity has no tenant to
/// choose).
pub const CACHE_TENANT: &str = "managed_identity";

/// How long a probe waits for the endpoint.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Which managed identity to use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ManagedIdentityId {
    /// The identity of the resource itself.
    #[default]
    SystemAssigned,
    /// A user-assigned identity, by client (application) id.
    ClientId(String),
    /// A user-assigned identity, by object (principal) id.
    ObjectId(String),
    /// A user-assigned identity, by Azure resource id.
    ResourceId(String),
}

impl ManagedIdentityId {
    /// The kind of selector: `system`, `client_id`, `object_id` or `resource_id` (what traces
    /// show; the id itself is not shown).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SystemAssigned => "system",
            Self::ClientId(_) => "client_id",
            Self::ObjectId(_) => "object_id",
            Self::ResourceId(_) => "resource_id",
        }
    }

    /// The selector as a cache-key client id: `system`, or `<kind>:<id>`.
    fn cache_client_id(&self) -> String {
        match self {
            Self::SystemAssigned => "system".to_owned(),
            Self::ClientId(id) | Self::ObjectId(id) | Self::ResourceId(id) => {
                format!("{}:{}", self.kind(), id.trim())
            }
        }
    }

    fn check(&self) -> Result<(), Error> {
        match self {
            Self::SystemAssigned => Ok(()),
            Self::ClientId(id) | Self::ObjectId(id) | Self::ResourceId(id) => {
                if id.trim().is_empty() {
                    Err(Error::Configuration(format!(
                        "the managed identity {} is empty; pass the identity's id or use SystemAssigned",
                        self.kind()
                    )))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Options of a [`ManagedIdentityCredential`]: which identity, and the injected edges. Every
/// edge defaults to the real one.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ManagedIdentityOptions {
    id: ManagedIdentityId,
    env: Option<Arc<dyn Env>>,
    clock: Option<Arc<dyn Clock>>,
    transport: Option<Arc<dyn HttpTransport>>,
    cache: Option<AccessTokenCache>,
    file_system: Option<Arc<dyn FileSystem>>,
    probe_mode: bool,
    arc_key_directory: Option<PathBuf>,
    mtls_pop: bool,
    key_provider: Option<Arc<dyn KeyProvider>>,
    attestation: Option<Arc<dyn AttestationProvider>>,
    mtls_extra_roots: Option<Arc<[u8]>>,
    capabilities: ClientCapabilities,
}

impl ManagedIdentityOptions {
    /// Options for the system-assigned identity with the real edges.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which identity to use (default system-assigned).
    pub fn identity(mut self, id: ManagedIdentityId) -> Self {
        self.id = id;
        self
    }

    /// The environment the source is detected from (default: the process environment).
    pub fn env(mut self, env: Arc<dyn Env>) -> Self {
        self.env = Some(env);
        self
    }

    /// The clock (default: the system clock); retries wait on it. A cache built by these
    /// options uses it too; a cache passed with [`cache`](Self::cache) keeps its own.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The HTTP transport (default: a [`ReqwestTransport`]; for Service Fabric one that pins
    /// the server certificate's thumbprint). An injected transport is used as is, also in
    /// probe mode and for Service Fabric.
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Shares `cache` with other credentials (default: a cache of its own).
    pub fn cache(mut self, cache: AccessTokenCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The file system (default: the real one), read for the Arc agent binary and key file.
    pub fn file_system(mut self, file_system: Arc<dyn FileSystem>) -> Self {
        self.file_system = Some(file_system);
        self
    }

    /// Probe mode, for a credential that is one link of a chain: until the endpoint has
    /// answered once, requests use a 1 s timeout ([`PROBE_TIMEOUT`]) and are not retried, and
    /// a connection failure or timeout is [`Error::Unavailable`] (so is IMDS's 400 "identity
    /// not found"). Once the endpoint has answered, the normal timeouts and retries apply.
    pub fn probe_mode(mut self, probe: bool) -> Self {
        self.probe_mode = probe;
        self
    }

    /// **Tests only**: accepts Azure Arc key files in `directory` instead of the agent's token
    /// directory (`/var/opt/azcmagent/tokens` on Linux). Never taken from the environment.
    /// Asks for tokens bound to a certificate by mutual-TLS proof-of-possession (IMDSv2). Only
    /// IMDS can issue them: on an IMDSv1-only machine the token call fails with
    /// [`NOT_SUPPORTED_IN_IMDS_V1`](crate::NOT_SUPPORTED_IN_IMDS_V1), and with any other source
    /// with [`NOT_SUPPORTED_FOR_ENVIRONMENT`](crate::NOT_SUPPORTED_FOR_ENVIRONMENT). Without it,
    /// IMDS v1 bearer tokens are used even on an IMDSv2 machine.
    pub fn mtls_proof_of_possession(mut self, enabled: bool) -> Self {
        self.mtls_pop = enabled;
        self
    }

    /// Where binding keys come from (default: software RSA-2048 keys).
    pub fn key_provider(mut self, provider: Arc<dyn KeyProvider>) -> Self {
        self.key_provider = Some(provider);
        self
    }

    /// The attestation of binding keys (default: none, an empty attestation token).
    pub fn attestation_provider(mut self, provider: Arc<dyn AttestationProvider>) -> Self {
        self.attestation = Some(provider);
        self
    }

    /// Extra root certificates (PEM) trusted on the mTLS token leg, besides the system's (for
    /// an emulator).
    pub fn mtls_extra_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.mtls_extra_roots = Some(pem.into().into());
        self
    }

    /// Client capabilities declared on the mTLS token leg (for example `cp1`).
    pub fn client_capabilities(mut self, capabilities: ClientCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// A test-only Arc key directory (see [`ARC_KEY_DIRECTORY`](crate::ARC_KEY_DIRECTORY)).
    pub fn arc_key_directory_for_tests(mut self, directory: PathBuf) -> Self {
        self.arc_key_directory = Some(directory);
        self
    }

    /// Detects the source and builds the credential.
    ///
    /// Fails with [`Error::Configuration`] when the selector does not suit the detected source
    /// (for example a user-assigned identity on Azure Arc) or the source's environment
    /// variables are unusable.
    pub fn build(self) -> Result<ManagedIdentityCredential, Error> {
        self.id.check()?;
        let env: Arc<dyn Env> = self.env.unwrap_or_else(|| Arc::new(SystemEnv));
        let fs: Arc<dyn FileSystem> = self
            .file_system
            .unwrap_or_else(|| Arc::new(SystemFileSystem));
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let kind = detect_source(env.as_ref(), fs.as_ref());
        let id = &self.id;
        let mut tls = None;
        let source: Box<dyn ManagedIdentitySource> = match kind {
            ManagedIdentitySourceKind::ServiceFabric => {
                let source = ServiceFabric::new(env.as_ref(), id)?;
                if self.transport.is_none() {
                    tls = Some(source.tls_config()?);
                }
                Box::new(source)
            }
            ManagedIdentitySourceKind::AppService => Box::new(AppService::new(env.as_ref(), id)?),
            ManagedIdentitySourceKind::MachineLearning => {
                Box::new(MachineLearning::new(env.as_ref(), id)?)
            }
            ManagedIdentitySourceKind::CloudShell => Box::new(CloudShell::new(env.as_ref(), id)?),
            ManagedIdentitySourceKind::AzureArc => Box::new(AzureArc::new(
                env.as_ref(),
                id,
                fs.clone(),
                self.arc_key_directory,
            )?),
            ManagedIdentitySourceKind::Imds => Box::new(Imds::new(env.as_ref(), id)?),
        };
        let (transport, probe_transport): (Arc<dyn HttpTransport>, Arc<dyn HttpTransport>) =
            match self.transport {
                Some(t) => (t.clone(), t),
                None => {
                    let builder = || match &tls {
                        Some(config) => ReqwestTransport::builder().rustls_config(config.clone()),
                        None => ReqwestTransport::builder(),
                    };
                    let normal = Arc::new(builder().build()?);
                    let probe: Arc<dyn HttpTransport> = if self.probe_mode {
                        Arc::new(
                            builder()
                                .connect_timeout(PROBE_TIMEOUT)
                                .timeout(PROBE_TIMEOUT)
                                .build()?,
                        )
                    } else {
                        normal.clone()
                    };
                    (normal, probe)
                }
            };
        let cache = self.cache.unwrap_or_else(|| {
            let cache_clock: Arc<dyn entra_cache::Clock> = clock.clone();
            TokenCache::new(CacheConfig::default().with_clock(cache_clock))
        });
        let v2 = if self.mtls_pop && kind == ManagedIdentitySourceKind::Imds {
            let base = source.endpoint().join("/").map_err(|_| {
                Error::Configuration("the IMDS address is not a base URL".to_owned())
            })?;
            Some(ImdsV2::new(ImdsV2Parts {
                base,
                id: self.id.clone(),
                keys: self
                    .key_provider
                    .unwrap_or_else(|| Arc::new(SoftwareKeyProvider::default())),
                attestation: self
                    .attestation
                    .unwrap_or_else(|| Arc::new(NoAttestation::default())),
                extra_roots: self.mtls_extra_roots,
                capabilities: self.capabilities,
                transport: transport.clone(),
                clock: clock.clone(),
                cache: cache.clone(),
            }))
        } else {
            None
        };
        let url = source.endpoint();
        let cache_host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        Ok(ManagedIdentityCredential {
            inner: Arc::new(Inner {
                cache_client_id: self.id.cache_client_id(),
                id: self.id,
                source,
                clock,
                transport,
                probe_transport,
                cache,
                cache_host,
                probing: AtomicBool::new(self.probe_mode),
                v2,
                mtls_pop: self.mtls_pop,
            }),
        })
    }
}

/// A token credential for the managed identity of the Azure host this runs on: a virtual
/// machine or scale set (IMDS), App Service or Functions, Service Fabric, an Arc-enabled
/// server, Cloud Shell or Azure Machine Learning, detected from the environment.
///
/// Each request asks for exactly one scope, `<resource>/.default`; the resource is sent. Tokens
/// are cached (by endpoint host, selector and resource) with single-flight loading and refresh
/// at half-life for long-lived tokens; failed requests are retried as PROTOCOL.md says.
#[derive(Clone)]
pub struct ManagedIdentityCredential {
    inner: Arc<Inner>,
}

struct Inner {
    id: ManagedIdentityId,
    cache_client_id: String,
    source: Box<dyn ManagedIdentitySource>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn HttpTransport>,
    probe_transport: Arc<dyn HttpTransport>,
    cache: AccessTokenCache,
    cache_host: String,
    probing: AtomicBool,
    /// The IMDSv2 flow, when mTLS PoP was asked for and the source is IMDS.
    v2: Option<ImdsV2>,
    mtls_pop: bool,
}

impl fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("ManagedIdentityCredential")
            .field("source", &i.source.kind())
            .field("endpoint", &endpoint(i.source.endpoint()))
            .field("identity", &i.id.kind())
            .field("probing", &i.probing.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ManagedIdentityCredential {
    /// The system-assigned identity, with the real edges.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Starts options (see [`ManagedIdentityOptions`]).
    pub fn builder() -> ManagedIdentityOptions {
        ManagedIdentityOptions::new()
    }

    /// The source detected.
    pub fn source_kind(&self) -> ManagedIdentitySourceKind {
        self.inner.source.kind()
    }

    /// The identity used.
    pub fn identity(&self) -> &ManagedIdentityId {
        &self.inner.id
    }

    /// The cache tokens are stored in.
    pub fn cache(&self) -> &AccessTokenCache {
        &self.inner.cache
    }

    /// A token bound to a certificate by mutual-TLS proof-of-possession (IMDSv2), and the
    /// binding: make the call to the resource over mutual TLS with the binding's certificate
    /// (for example through [`Binding::transport`]), presenting the token as
    /// `Authorization: mtls_pop <token>`.
    pub async fn get_bound_token(
        &self,
        request: &TokenRequest,
    ) -> Result<(AccessToken, Arc<Binding>), Error> {
        resource(&request.scopes)?;
        match &self.inner.v2 {
            Some(v2) => v2.get_token(request).await,
            None if self.inner.source.kind() == ManagedIdentitySourceKind::Imds => Err(Error::Configuration(
                "mTLS proof-of-possession was not enabled; build the credential with mtls_proof_of_possession(true)"
                    .to_owned(),
            )),
            None => Err(Error::not_supported(
                NOT_SUPPORTED_FOR_ENVIRONMENT,
                format!(
                    "the {} managed identity source cannot issue mTLS proof-of-possession tokens; only IMDS (IMDSv2) can, so request a bearer token here",
                    self.inner.source.kind()
                ),
            )),
        }
    }

    /// The current certificate binding (IMDSv2), if one has been minted and is still fresh.
    pub fn current_binding(&self) -> Option<Arc<Binding>> {
        self.inner.v2.as_ref().and_then(ImdsV2::current_binding)
    }

    /// The cache key of `resource` (the scope without `/.default`).
    fn cache_key(&self, resource: &str) -> Result<CacheKey, Error> {
        Ok(CacheKey::builder(
            self.inner.cache_host.as_str(),
            CACHE_TENANT,
            self.inner.cache_client_id.as_str(),
        )
        .scopes([resource])
        .build()?)
    }
}

/// The one scope of `scopes` as a resource (without `/.default`).
fn resource(scopes: &[String]) -> Result<String, Error> {
    let mut all = scopes.iter().flat_map(|s| s.split_ascii_whitespace());
    match (all.next(), all.next()) {
        (Some(scope), None) => {
            let resource = scope.strip_suffix("/.default").unwrap_or(scope);
            if resource.is_empty() {
                Err(Error::Configuration(
                    "the scope names no resource; pass a scope such as https://vault.azure.net/.default"
                        .to_owned(),
                ))
            } else {
                Ok(resource.to_owned())
            }
        }
        _ => Err(Error::Configuration(
            "managed identity takes exactly one scope; pass one such as https://vault.azure.net/.default"
                .to_owned(),
        )),
    }
}

impl Inner {
    /// Asks the source for a token for `resource`.
    async fn fetch(self: Arc<Self>, resource: String) -> Result<Fresh<AccessToken>, Error> {
        let kind = self.source.kind();
        let shown = endpoint(self.source.endpoint());
        let probing = self.probing.load(Ordering::Acquire);
        let (transport, policy) = if probing {
            (self.probe_transport.as_ref(), RetryPolicy::None)
        } else {
            let policy = match kind {
                ManagedIdentitySourceKind::Imds => RetryPolicy::Imds,
                _ => RetryPolicy::Standard,
            };
            (self.transport.as_ref(), policy)
        };
        let clock = self.clock.as_ref();
        let first = self.source.request(&resource);
        let (response, sent_at) = match retry::send(transport, clock, policy, first).await {
            Ok(sent) => sent,
            Err(Error::Transport {
                kind: TransportErrorKind::Connect | TransportErrorKind::Timeout,
                ..
            }) if probing => {
                return Err(Error::unavailable(
                    CREDENTIAL_NAME,
                    format!(
                        "no {kind} managed identity endpoint answered at {shown}; run on an azure host with a managed identity"
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        // The endpoint exists: from now on, normal timeouts and retries.
        self.probing.store(false, Ordering::Release);
        if probing && kind == ManagedIdentitySourceKind::Imds && response.status == 400 {
            return Err(Error::unavailable(
                CREDENTIAL_NAME,
                "the requested identity is not assigned to this resource; assign it or choose another identity",
            ));
        }
        let (response, sent_at) = match self.source.challenge(&resource, &response)? {
            Some(next) => retry::send(transport, clock, policy, next).await?,
            None => (response, sent_at),
        };
        let result = crate::response::parse(&response, &shown, sent_at);
        match &result {
            Ok(_) => tracing::debug!("managed identity token acquired"),
            Err(error) => tracing::warn!(%error, "managed identity token request failed"),
        }
        result
    }
}

#[async_trait]
impl TokenCredential for ManagedIdentityCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        if self.inner.mtls_pop {
            return self.get_bound_token(request).await.map(|(token, _)| token);
        }
        let resource = resource(&request.scopes)?;
        let key = self.cache_key(&resource)?;
        // A claims challenge means the cached token was refused: fetch a new one.
        let mode = if request.claims_challenge.is_some() {
            CacheMode::Bypass
        } else {
            CacheMode::Use
        };
        let inner = self.inner.clone();
        let load = move || {
            let span = tracing::info_span!(
                "entra.managed_identity",
                source = inner.source.kind().as_str(),
                selector = inner.id.kind(),
                endpoint = %endpoint(inner.source.endpoint()),
                resource = %resource,
            );
            inner.fetch(resource).instrument(span)
        };
        Ok(self.inner.cache.get_or_load(&key, mode, load).await?.value)
    }
}
