//! The agent identity blueprint and its T1 leg.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use entra_cache::{CacheConfig, TokenCache};
use entra_claims::{AgentSessionId, ClientCapabilities, SessionClaimsForm};
use entra_core::{
    AccessToken, AccessTokenCache, Acquired, AssertionContext, AssertionProvider, AuthorityHost,
    ClientCertificate, ClientCredential, Clock, Env, Error, Grant, HttpTransport, RetryPolicy,
    Secret, SystemClock, SystemEnv, Tenant, TokenClient, TokenCredential, TokenRequest,
};

use crate::identity::AgentIdentityCredential;
use crate::session::{SessionPolicy, evict_session};

/// How a blueprint proves its own identity on the T1 leg.
#[derive(Clone)]
#[non_exhaustive]
pub enum BlueprintCredential {
    /// A client secret.
    Secret(Secret),
    /// A certificate (a PS256 client assertion signed per request).
    Certificate {
        /// The certificate and its key.
        certificate: Arc<ClientCertificate>,
        /// Whether to send the chain (`x5c`) for subject-name/issuer authentication.
        send_chain: bool,
    },
    /// A caller-supplied assertion (a federated token from elsewhere).
    Assertion(Arc<dyn AssertionProvider>),
    /// A token from another credential used as a federated credential: typically a managed
    /// identity, whose token for the cloud's token-exchange audience
    /// (`api://AzureADTokenExchange/.default`) is the blueprint's client assertion.
    Federated(Arc<dyn TokenCredential>),
}

impl BlueprintCredential {
    /// A certificate credential without chain.
    pub fn certificate(certificate: ClientCertificate) -> Self {
        Self::Certificate {
            certificate: Arc::new(certificate),
            send_chain: false,
        }
    }

    /// A managed identity (or any other credential) used as the blueprint's federated
    /// identity credential.
    pub fn federated(credential: impl TokenCredential + 'static) -> Self {
        Self::Federated(Arc::new(credential))
    }

    fn into_client_credential(self, exchange_audience: &'static str) -> ClientCredential {
        match self {
            Self::Secret(secret) => ClientCredential::Secret(secret),
            Self::Certificate {
                certificate,
                send_chain,
            } => ClientCredential::Certificate {
                certificate,
                send_chain,
            },
            Self::Assertion(provider) => ClientCredential::Assertion(provider),
            Self::Federated(credential) => {
                ClientCredential::Assertion(Arc::new(FederatedAssertion {
                    credential,
                    scope: format!("{exchange_audience}/.default"),
                }))
            }
        }
    }
}

impl fmt::Debug for BlueprintCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
            Self::Certificate {
                certificate,
                send_chain,
            } => f
                .debug_struct("Certificate")
                .field("certificate", certificate)
                .field("send_chain", send_chain)
                .finish(),
            Self::Assertion(provider) => f.debug_tuple("Assertion").field(provider).finish(),
            Self::Federated(credential) => f.debug_tuple("Federated").field(credential).finish(),
        }
    }
}

/// A federated identity credential backed by another credential's token.
#[derive(Debug)]
struct FederatedAssertion {
    credential: Arc<dyn TokenCredential>,
    scope: String,
}

#[async_trait]
impl AssertionProvider for FederatedAssertion {
    async fn assertion(&self, _context: &AssertionContext) -> Result<Secret, Error> {
        let token = self
            .credential
            .get_token(&TokenRequest::new([self.scope.as_str()]))
            .await?;
        Ok(token.token().clone())
    }
}

/// Everything a blueprint and the agents under it share: one authority and tenant, one
/// transport, one clock and one token cache (so a finished session is evicted everywhere).
#[derive(Clone, Debug)]
pub(crate) struct Context {
    pub(crate) authority: AuthorityHost,
    pub(crate) tenant: Tenant,
    pub(crate) transport: Option<Arc<dyn HttpTransport>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cache: AccessTokenCache,
    pub(crate) capabilities: ClientCapabilities,
    pub(crate) retry: RetryPolicy,
    pub(crate) session: SessionPolicy,
}

impl Context {
    /// A token client for `client_id` sharing everything in this context.
    pub(crate) fn client(
        &self,
        client_id: &str,
        credential: ClientCredential,
    ) -> Result<TokenClient, Error> {
        let mut builder = TokenClient::builder(client_id)
            .authority(self.authority.clone())
            .tenant(self.tenant.as_str())?
            .credential(credential)
            .client_capabilities(self.capabilities.clone())
            .cache(self.cache.clone())
            .clock(self.clock.clone())
            .retry(self.retry.clone());
        if let Some(transport) = &self.transport {
            builder = builder.transport(transport.clone());
        }
        builder.build()
    }

    /// The scope of token-exchange tokens (T1, T2) in this cloud.
    pub(crate) fn exchange_scope(&self) -> String {
        format!("{}/.default", self.authority.token_exchange_audience())
    }
}

/// An agent identity blueprint: the application that holds the credential, requests a T1
/// token per agent identity (`fmi_path`), and creates the agent identities under it.
///
/// Cloning is cheap; clones share the token cache.
#[derive(Clone, Debug)]
pub struct Blueprint {
    client: TokenClient,
    context: Context,
}

impl Blueprint {
    /// Starts building the blueprint whose application (client) id is `client_id`.
    pub fn builder(client_id: impl Into<String>) -> BlueprintBuilder {
        BlueprintBuilder {
            client_id: client_id.into(),
            tenant: None,
            credential: None,
            authority: None,
            transport: None,
            clock: None,
            cache: None,
            capabilities: ClientCapabilities::none(),
            retry: RetryPolicy::default(),
            env: None,
            session: None,
            session_form: SessionClaimsForm::default(),
        }
    }

    /// The blueprint's application (client) id.
    pub fn client_id(&self) -> &str {
        self.client.client_id()
    }

    /// The token cache shared by the blueprint and its agents.
    pub fn cache(&self) -> &AccessTokenCache {
        &self.context.cache
    }

    /// The agentic session this blueprint's agents act in by default, if any.
    pub fn agent_session(&self) -> Option<&AgentSessionId> {
        self.context.session.id.as_ref()
    }

    /// The T1 token for the agent identity `fmi_path` (its client id): the blueprint's
    /// client-credentials token for the cloud's token-exchange audience, cached per `fmi_path`
    /// so two agent identities never share one.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an empty `fmi_path`; otherwise what the token endpoint
    /// answered.
    pub async fn t1(&self, fmi_path: &str) -> Result<Acquired<AccessToken>, Error> {
        self.t1_in(fmi_path, None).await
    }

    pub(crate) async fn t1_in(
        &self,
        fmi_path: &str,
        tenant: Option<&str>,
    ) -> Result<Acquired<AccessToken>, Error> {
        let fmi_path = fmi_path.trim();
        if fmi_path.is_empty() {
            return Err(Error::Configuration(
                "the fmi_path is empty; pass the client id of the agent identity the T1 token is for"
                    .to_owned(),
            ));
        }
        let mut request = TokenRequest::new([self.context.exchange_scope()]);
        if let Some(tenant) = tenant {
            request = request.with_tenant(tenant);
        }
        self.client
            .exchange(
                &request,
                &Grant::client_credentials().with_fmi_path(fmi_path),
            )
            .await
    }

    /// The agent identity `agent_client_id` under this blueprint, authenticating with its T1.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an empty client id.
    pub fn agent_identity(&self, agent_client_id: &str) -> Result<AgentIdentityCredential, Error> {
        AgentIdentityCredential::new(self.clone(), agent_client_id)
    }

    /// Drops every cached token of the finished agentic session `id` (of every agent identity,
    /// agent user and on-behalf-of credential sharing this blueprint's cache) and returns how
    /// many were dropped.
    pub fn evict_session(&self, id: &AgentSessionId) -> usize {
        evict_session(&self.context.cache, id)
    }

    pub(crate) fn context(&self) -> &Context {
        &self.context
    }
}

/// The blueprint's own tokens are plain client-credentials tokens (no `fmi_path`), for the
/// resources the blueprint itself may call.
#[async_trait]
impl TokenCredential for Blueprint {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.client.get_token(request).await
    }
}

/// Builds a [`Blueprint`].
#[derive(Debug)]
pub struct BlueprintBuilder {
    client_id: String,
    tenant: Option<Tenant>,
    credential: Option<BlueprintCredential>,
    authority: Option<AuthorityHost>,
    transport: Option<Arc<dyn HttpTransport>>,
    clock: Option<Arc<dyn Clock>>,
    cache: Option<AccessTokenCache>,
    capabilities: ClientCapabilities,
    retry: RetryPolicy,
    env: Option<Arc<dyn Env>>,
    session: Option<Option<AgentSessionId>>,
    session_form: SessionClaimsForm,
}

impl BlueprintBuilder {
    /// The tenant (required).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for a malformed tenant.
    pub fn tenant(mut self, tenant: &str) -> Result<Self, Error> {
        self.tenant = Some(Tenant::new(tenant)?);
        Ok(self)
    }

    /// The blueprint's credential (required).
    pub fn credential(mut self, credential: BlueprintCredential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// The authority host (default: `AZURE_AUTHORITY_HOST` from the environment, else the
    /// public cloud). It also picks the token-exchange audience of T1 tokens.
    pub fn authority(mut self, authority: AuthorityHost) -> Self {
        self.authority = Some(authority);
        self
    }

    /// The HTTP transport (default: entra-core's process-wide one).
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Shares `cache` (default: a cache of this blueprint and its agents).
    pub fn cache(mut self, cache: AccessTokenCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Client capabilities declared on every request (for example `cp1`).
    pub fn client_capabilities(mut self, capabilities: ClientCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The retry policy of every leg.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The environment `COPILOT_AGENT_SESSION_ID` and `AZURE_AUTHORITY_HOST` are read from
    /// (default: the process environment), once, when the blueprint is built.
    pub fn env(mut self, env: Arc<dyn Env>) -> Self {
        self.env = Some(env);
        self
    }

    /// Acts in the agentic session `id` without reading `COPILOT_AGENT_SESSION_ID` (for
    /// programs that know their session id); `None` turns sessions off even when the
    /// variable is set.
    pub fn agent_session(mut self, id: Option<AgentSessionId>) -> Self {
        self.session = Some(id);
        self
    }

    /// The form of the session claims (default: the released `xms_cli_sid` form).
    pub fn session_claims_form(mut self, form: SessionClaimsForm) -> Self {
        self.session_form = form;
        self
    }

    /// Builds the blueprint.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] without a tenant or credential, for an empty client id, a bad
    /// `AZURE_AUTHORITY_HOST`, or an invalid `COPILOT_AGENT_SESSION_ID`.
    pub fn build(self) -> Result<Blueprint, Error> {
        let env: Arc<dyn Env> = self.env.unwrap_or_else(|| Arc::new(SystemEnv));
        let tenant = self.tenant.ok_or_else(|| {
            Error::Configuration(
                "the blueprint has no tenant; call tenant() with the directory (tenant) id"
                    .to_owned(),
            )
        })?;
        let credential = self.credential.ok_or_else(|| {
            Error::Configuration(
                "the blueprint has no credential; pass a client secret, a certificate, an \
                 assertion or a managed identity as its federated credential"
                    .to_owned(),
            )
        })?;
        let authority = match self.authority {
            Some(authority) => authority,
            None => AuthorityHost::from_env(env.as_ref())?,
        };
        let id = match self.session {
            Some(explicit) => explicit,
            None => AgentSessionId::from_env(|name| env.var(name))?,
        };
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let cache = self.cache.unwrap_or_else(|| {
            let cache_clock: Arc<dyn entra_cache::Clock> = clock.clone();
            TokenCache::new(CacheConfig::default().with_clock(cache_clock))
        });
        let context = Context {
            authority,
            tenant,
            transport: self.transport,
            clock,
            cache,
            capabilities: self.capabilities,
            retry: self.retry,
            session: SessionPolicy {
                id,
                form: self.session_form,
            },
        };
        let credential =
            credential.into_client_credential(context.authority.token_exchange_audience());
        let client = context.client(&self.client_id, credential)?;
        Ok(Blueprint { client, context })
    }
}
