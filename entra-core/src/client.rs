//! `TokenClient`: the one token exchange every flow goes through.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use entra_cache::{Acquired, CacheConfig, CacheKey, CacheMode, Fresh, TokenCache, TokenType};
use entra_claims::{Claims, ClientCapabilities, request_claims};
use http::{HeaderMap, Method, header};
use tracing::Instrument as _;
use url::Url;

use crate::error::TransportErrorKind;
use crate::http::{endpoint, header_value, retry_after};
use crate::key_memo::{GrantInputs, KeyMemo};
use crate::response::{parse_error, parse_success};
use crate::{
    AccessToken, AssertionContext, AssertionProvider, AuthorityHost, ClientCredential, Clock,
    Error, HttpRequest, HttpTransport, ReqwestTransport, Secret, SystemClock, Tenant,
    TokenCredential, TokenRequest,
};

/// The client-assertion type of every JWT-bearer client assertion.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The token cache of access tokens, as shared between token clients.
pub type AccessTokenCache = TokenCache<AccessToken, Error>;

/// How failed requests are retried.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 1).
    pub max_retries: u32,
    /// Wait before a retry when the answer names none (default 1 s).
    pub default_delay: Duration,
    /// Longest `Retry-After` honoured; a longer one is cut to this (default 60 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 1,
            default_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }
}

/// A form value: plain, or secret (redacted from `Debug`, zeroized).
#[derive(Clone)]
#[non_exhaustive]
pub enum FormValue {
    /// A value that may be logged.
    Plain(String),
    /// A value that must never be shown.
    Secret(Secret),
    /// A secret produced only when a request is actually sent (never on a cache hit), such
    /// as an intermediate token of a multi-leg flow.
    Provided(Arc<dyn AssertionProvider>),
}

impl fmt::Debug for FormValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(s) => fmt::Debug::fmt(s, f),
            Self::Secret(s) => fmt::Debug::fmt(s, f),
            Self::Provided(p) => f.debug_tuple("Provided").field(p).finish(),
        }
    }
}

/// *What* a flow sends, beyond the client's own credential: the grant type, extra form
/// fields, extra cache-key components, the account a user token belongs to, and the token
/// type. [`TokenClient::exchange`] does the rest.
///
/// ```
/// use entra_core::{Grant, Secret};
/// // An agent blueprint's T1: client credentials plus `fmi_path`, cached per agent identity.
/// let t1 = Grant::client_credentials().with_fmi_path("agent-identity-client-id");
/// // On-behalf-of: the incoming token is a secret field; the cache is partitioned by its hash.
/// let obo = Grant::new("urn:ietf:params:oauth:grant-type:jwt-bearer")
///     .with_field("requested_token_use", "on_behalf_of")
///     .with_secret_field("assertion", Secret::new("eyJ…"))
///     .with_account("sha256-of-the-incoming-token");
/// # let _ = (t1, obo);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Grant {
    grant_type: Cow<'static, str>,
    fields: Vec<(Cow<'static, str>, FormValue)>,
    key_components: Vec<(String, String)>,
    account: Option<String>,
    token_type: TokenType,
}

impl Grant {
    /// `grant_type=client_credentials`.
    pub fn client_credentials() -> Self {
        Self::new("client_credentials")
    }

    /// Any grant type.
    pub fn new(grant_type: impl Into<Cow<'static, str>>) -> Self {
        Self {
            grant_type: grant_type.into(),
            fields: Vec::new(),
            key_components: Vec::new(),
            account: None,
            token_type: TokenType::Bearer,
        }
    }

    /// Adds a form field.
    pub fn with_field(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        self.fields
            .push((name.into(), FormValue::Plain(value.into())));
        self
    }

    /// Adds a secret form field (an assertion, a token).
    pub fn with_secret_field(mut self, name: impl Into<Cow<'static, str>>, value: Secret) -> Self {
        self.fields.push((name.into(), FormValue::Secret(value)));
        self
    }

    /// Adds a secret form field whose value `provider` produces when a request is sent; a
    /// cache hit never calls it. The provider is told the same context as a client-assertion
    /// provider.
    pub fn with_provided_field(
        mut self,
        name: impl Into<Cow<'static, str>>,
        provider: Arc<dyn AssertionProvider>,
    ) -> Self {
        self.fields
            .push((name.into(), FormValue::Provided(provider)));
        self
    }

    /// Adds a cache-key component.
    pub fn with_key_component(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.key_components.push((name.into(), value.into()));
        self
    }

    /// Adds `fmi_path` as a form field and a cache-key component.
    pub fn with_fmi_path(self, fmi_path: impl Into<String>) -> Self {
        let fmi_path = fmi_path.into();
        self.with_field("fmi_path", fmi_path.clone())
            .with_key_component(entra_cache::FMI_PATH, fmi_path)
    }

    /// Partitions the cache by `account` (a user, or a hash of an incoming token).
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Asks for a bound token: sends `token_type=<type>` and keys the cache by type and key id.
    pub fn with_token_type(mut self, token_type: TokenType) -> Self {
        self.token_type = token_type;
        self
    }
}

/// The one token exchange: every request to a token endpoint goes through a `TokenClient`.
///
/// A client is one application (client id and credential) at one authority and default
/// tenant. It builds the form, merges claims (client capabilities, a claims challenge, client
/// claims, agentic-session claims) through `entra-claims`, looks tokens up and stores them in
/// an `entra-cache` [`TokenCache`] (shared between clients if you pass one) with single-flight
/// and proactive refresh, bypasses the cache for claims challenges, parses answers (`expires_in`
/// as number or string, `refresh_in`), maps AADSTS errors to [`Error`], retries once on 5xx,
/// 429 and dropped connections honouring `Retry-After`, and traces each request without
/// anything secret in the spans.
///
/// ```no_run
/// use entra_core::{ClientCredential, Secret, TokenClient, TokenRequest};
///
/// # async fn run() -> Result<(), entra_core::Error> {
/// let client = TokenClient::builder("00000000-0000-0000-0000-000000000001")
///     .tenant("contoso.onmicrosoft.com")?
///     .credential(ClientCredential::Secret(Secret::new("…")))
///     .build()?;
/// let token = client.get_token(&TokenRequest::new(["https://graph.microsoft.com/.default"])).await?;
/// println!("expires at {:?}", token.expires_on());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

struct Inner {
    authority: AuthorityHost,
    tenant: Tenant,
    client_id: String,
    credential: ClientCredential,
    capabilities: ClientCapabilities,
    cache: AccessTokenCache,
    transport: Arc<dyn HttpTransport>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    token_endpoint: Option<Url>,
    key_memo: KeyMemo,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("TokenClient")
            .field("authority", &i.authority)
            .field("tenant", &i.tenant)
            .field("client_id", &i.client_id)
            .field("credential", &i.credential)
            .field("capabilities", &i.capabilities)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenClient`].
#[derive(Debug)]
pub struct TokenClientBuilder {
    client_id: String,
    authority: Option<AuthorityHost>,
    tenant: Option<Tenant>,
    credential: ClientCredential,
    capabilities: ClientCapabilities,
    cache: Option<AccessTokenCache>,
    transport: Option<Arc<dyn HttpTransport>>,
    clock: Option<Arc<dyn Clock>>,
    retry: RetryPolicy,
    token_endpoint: Option<Url>,
}

impl TokenClientBuilder {
    /// The authority host (default: the public cloud).
    pub fn authority(mut self, authority: AuthorityHost) -> Self {
        self.authority = Some(authority);
        self
    }

    /// The default tenant (required).
    pub fn tenant(mut self, tenant: &str) -> Result<Self, Error> {
        self.tenant = Some(Tenant::new(tenant)?);
        Ok(self)
    }

    /// How the client authenticates.
    pub fn credential(mut self, credential: ClientCredential) -> Self {
        self.credential = credential;
        self
    }

    /// Client capabilities to declare (for example `cp1` for CAE).
    pub fn client_capabilities(mut self, capabilities: ClientCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Shares `cache` with other clients (default: a cache of its own).
    pub fn cache(mut self, cache: AccessTokenCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The HTTP transport (default: a process-wide [`ReqwestTransport`]).
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The clock (default: the system clock). A cache built by this builder uses it too; a
    /// cache passed with [`cache`](Self::cache) keeps its own.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The retry policy (default: one retry).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sends requests to `url` instead of `{authority}/{tenant}/oauth2/v2.0/token` (for
    /// endpoints given by a server, such as an IMDSv2 mTLS endpoint).
    pub fn token_endpoint(mut self, url: Url) -> Self {
        self.token_endpoint = Some(url);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<TokenClient, Error> {
        if self.client_id.trim().is_empty() {
            return Err(Error::Configuration(
                "the client id is empty; pass the application (client) id".to_owned(),
            ));
        }
        let tenant = self.tenant.ok_or_else(|| {
            Error::Configuration("no tenant given; pass the directory (tenant) id".to_owned())
        })?;
        if let Some(url) = &self.token_endpoint {
            // The same rule as for authority hosts: https, or http on loopback only.
            let host = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
            AuthorityHost::parse(&host)?;
        }
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let cache = self.cache.unwrap_or_else(|| {
            let cache_clock: Arc<dyn entra_cache::Clock> = clock.clone();
            TokenCache::new(CacheConfig::default().with_clock(cache_clock))
        });
        let transport = match self.transport {
            Some(t) => t,
            None => default_transport()?,
        };
        Ok(TokenClient {
            inner: Arc::new(Inner {
                authority: self.authority.unwrap_or_else(AuthorityHost::public_cloud),
                tenant,
                client_id: self.client_id.trim().to_owned(),
                credential: self.credential,
                capabilities: self.capabilities,
                cache,
                transport,
                clock,
                retry: self.retry,
                token_endpoint: self.token_endpoint,
                key_memo: KeyMemo::default(),
            }),
        })
    }
}

/// One reqwest client for the whole process (connection pools and root stores are shared).
fn default_transport() -> Result<Arc<dyn HttpTransport>, Error> {
    static DEFAULT: OnceLock<Arc<ReqwestTransport>> = OnceLock::new();
    if let Some(t) = DEFAULT.get() {
        return Ok(t.clone());
    }
    let built = Arc::new(ReqwestTransport::new()?);
    Ok(DEFAULT.get_or_init(|| built).clone())
}

/// Everything one request needs, owned so the load can outlive the caller's borrow.
struct Plan {
    tenant: Tenant,
    scope: String,
    grant: Grant,
    claims: Option<Claims>,
    client_session: Option<String>,
}

impl TokenClient {
    /// Starts a client for the application `client_id`.
    pub fn builder(client_id: impl Into<String>) -> TokenClientBuilder {
        TokenClientBuilder {
            client_id: client_id.into(),
            authority: None,
            tenant: None,
            credential: ClientCredential::None,
            capabilities: ClientCapabilities::none(),
            cache: None,
            transport: None,
            clock: None,
            retry: RetryPolicy::default(),
            token_endpoint: None,
        }
    }

    /// The application (client) id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The default tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.inner.tenant
    }

    /// The authority host.
    pub fn authority(&self) -> &AuthorityHost {
        &self.inner.authority
    }

    /// The cache this client stores into.
    pub fn cache(&self) -> &AccessTokenCache {
        &self.inner.cache
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The token endpoint for `tenant`.
    pub fn token_endpoint(&self, tenant: &Tenant) -> Url {
        match &self.inner.token_endpoint {
            Some(url) => url.clone(),
            None => self.inner.authority.token_endpoint(tenant),
        }
    }

    /// A client-credentials token for `request` (`grant_type=client_credentials`).
    pub async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        Ok(self
            .exchange(request, &Grant::client_credentials())
            .await?
            .value)
    }

    /// A token for `request` with `grant`, from the cache when possible, and where it came from.
    pub async fn exchange(
        &self,
        request: &TokenRequest,
        grant: &Grant,
    ) -> Result<Acquired<AccessToken>, Error> {
        let inner = &self.inner;
        if request.scopes.iter().all(|s| s.trim().is_empty()) {
            return Err(Error::Configuration("no scope requested; pass at least one scope such as https://graph.microsoft.com/.default".to_owned()));
        }
        // Validated here; the client's own tenant is copied only when a request is sent.
        let request_tenant = match &request.tenant {
            Some(t) => Some(Tenant::new(t)?),
            None => None,
        };
        let grant_inputs = GrantInputs {
            token_type: &grant.token_type,
            account: grant.account.as_deref(),
            components: &grant.key_components,
        };
        let key = inner.key_memo.get_or_build(request, &grant_inputs, || {
            self.build_key(
                request,
                grant,
                request_tenant.as_ref().unwrap_or(&inner.tenant),
            )
        })?;
        let mode = if request.claims_challenge.is_some() {
            CacheMode::Bypass
        } else {
            CacheMode::Use
        };
        // Everything below runs only when the cache cannot answer: a hit costs the key alone.
        let load = || {
            let tenant = request_tenant.unwrap_or_else(|| inner.tenant.clone());
            let plan = self.plan(request, grant, tenant);
            let span = tracing::info_span!(
                "entra.token",
                client_id = %inner.client_id,
                tenant = %plan.tenant,
                grant_type = %plan.grant.grant_type,
                scope = %plan.scope,
                bypass = request.claims_challenge.is_some(),
            );
            let this = self.clone();
            async move { this.fetch(plan).await }.instrument(span)
        };
        inner.cache.get_or_load(&key, mode, load).await
    }

    /// The cache key of `request` with `grant` (see PROTOCOL.md section 3).
    fn build_key(
        &self,
        request: &TokenRequest,
        grant: &Grant,
        tenant: &Tenant,
    ) -> Result<CacheKey, Error> {
        let inner = &self.inner;
        let mut key = CacheKey::builder(
            inner.authority.host(),
            tenant.as_str(),
            inner.client_id.as_str(),
        )
        .scopes(&request.scopes)
        .token_type(grant.token_type.clone());
        if let Some(account) = &grant.account {
            key = key.account(account.clone());
        }
        for (name, value) in grant.key_components.iter().chain(&request.key_components) {
            key = key.extension(name.clone(), value.clone());
        }
        if let Some(client_claims) = &request.client_claims {
            key = key.extension(
                entra_cache::CLIENT_CLAIMS,
                client_claims.to_canonical_json(),
            );
        }
        if let Some((session, _)) = &request.agent_session {
            key = key.extension(entra_cache::CLIENT_SESSION, session.client_session());
        }
        Ok(key.build()?)
    }

    /// What to send for `request` with `grant`.
    fn plan(&self, request: &TokenRequest, grant: &Grant, tenant: Tenant) -> Plan {
        let mut grant = grant.clone();
        if let TokenType::Bound { token_type, .. } = grant.token_type.clone() {
            grant = grant.with_field("token_type", token_type);
        }
        let mut extra_claims = request.client_claims.clone();
        let mut client_session = None;
        if let Some((session, form)) = &request.agent_session {
            let session_claims = session.to_claims(*form);
            extra_claims = Some(match extra_claims {
                Some(c) => c.merge(&session_claims),
                None => session_claims,
            });
            client_session = Some(session.client_session().to_owned());
        }
        let claims = request_claims(
            &self.inner.capabilities,
            request.claims_challenge.as_ref(),
            extra_claims.as_ref(),
        );
        // Scopes go on the wire as given (servers may treat case as significant), without
        // repeats; the cache key normalises them separately.
        let mut scopes: Vec<&str> = Vec::new();
        for scope in request
            .scopes
            .iter()
            .flat_map(|s| s.split_ascii_whitespace())
        {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Plan {
            scope: scopes.join(" "),
            tenant,
            grant,
            claims,
            client_session,
        }
    }

    /// Sends the request (retrying as the policy says) and parses the answer.
    async fn fetch(&self, plan: Plan) -> Result<Fresh<AccessToken>, Error> {
        let inner = &self.inner;
        let url = self.token_endpoint(&plan.tenant);
        let shown = endpoint(&url);
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        loop {
            let body = self.form(&plan, &url).await?;
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                header_value("application/x-www-form-urlencoded"),
            );
            headers.insert(header::ACCEPT, header_value("application/json"));
            headers.insert("client-request-id", header_value(&correlation_id));
            headers.insert("return-client-request-id", header_value("true"));
            headers.insert("x-client-sku", header_value("entra-rs"));
            headers.insert("x-client-ver", header_value(env!("CARGO_PKG_VERSION")));
            let mut request = HttpRequest::new(Method::POST, url.clone());
            request.headers = headers;
            request.body = body.into();
            let sent_at = inner.clock.now();
            let result = inner.transport.send(request).await;
            let retryable_delay = match &result {
                Ok(r) if r.status == 429 || (500..600).contains(&r.status) => {
                    Some(retry_after(r, inner.clock.now()).unwrap_or(inner.retry.default_delay))
                }
                Err(Error::Transport {
                    kind: TransportErrorKind::Io | TransportErrorKind::Timeout,
                    ..
                }) => Some(inner.retry.default_delay),
                _ => None,
            };
            match (&result, retryable_delay) {
                (Ok(r), _) => {
                    tracing::debug!(attempt, status = r.status, %correlation_id, "token endpoint answered")
                }
                (Err(e), _) => {
                    tracing::debug!(attempt, error = %e, %correlation_id, "token request failed")
                }
            }
            if let Some(delay) = retryable_delay
                && attempt < inner.retry.max_retries
            {
                attempt += 1;
                let delay = delay.min(inner.retry.max_delay);
                tracing::info!(
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "retrying the token request"
                );
                inner.clock.sleep(delay).await;
                continue;
            }
            let response = result?;
            return if response.status == 200 {
                parse_success(&response, &shown, sent_at, &plan.grant.token_type)
            } else {
                let error = parse_error(&response, &shown);
                if let Some(service) = error.service_error() {
                    tracing::warn!(
                        error = %service.error,
                        codes = ?service.codes,
                        correlation_id = service.correlation_id.as_deref().unwrap_or(&correlation_id),
                        trace_id = service.trace_id.as_deref().unwrap_or(""),
                        "the token service refused the request"
                    );
                }
                Err(error)
            };
        }
    }

    fn assertion_context(&self, plan: &Plan, url: &Url) -> AssertionContext {
        AssertionContext {
            token_endpoint: url.clone(),
            client_id: self.inner.client_id.clone(),
            tenant: plan.tenant.as_str().to_owned(),
        }
    }

    /// The form body; client assertions are made fresh for every attempt (their `jti` must
    /// never repeat).
    async fn form(&self, plan: &Plan, url: &Url) -> Result<String, Error> {
        let inner = &self.inner;
        // The credential first: the form serializer must not be held across an await.
        let credential: Option<(&str, Secret)> = match &inner.credential {
            ClientCredential::Secret(secret) => Some(("client_secret", secret.clone())),
            ClientCredential::Certificate {
                certificate,
                send_chain,
            } => Some((
                "client_assertion",
                certificate.sign_assertion(
                    &inner.client_id,
                    url.as_str(),
                    inner.clock.now(),
                    *send_chain,
                )?,
            )),
            ClientCredential::Assertion(provider) => Some((
                "client_assertion",
                provider
                    .assertion(&self.assertion_context(plan, url))
                    .await?,
            )),
            ClientCredential::None => None,
        };
        // Provided fields likewise, before the serializer exists.
        let mut provided: Vec<Secret> = Vec::new();
        for (_, value) in &plan.grant.fields {
            if let FormValue::Provided(provider) = value {
                provided.push(
                    provider
                        .assertion(&self.assertion_context(plan, url))
                        .await?,
                );
            }
        }
        let mut provided = provided.iter();
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", &plan.grant.grant_type);
        form.append_pair("client_id", &inner.client_id);
        if let Some((field, value)) = &credential {
            if *field == "client_assertion" {
                form.append_pair("client_assertion_type", JWT_BEARER_ASSERTION_TYPE);
            }
            form.append_pair(field, value.expose());
        }
        form.append_pair("scope", &plan.scope);
        for (name, value) in &plan.grant.fields {
            match value {
                FormValue::Plain(plain) => form.append_pair(name, plain),
                FormValue::Secret(secret) => form.append_pair(name, secret.expose()),
                FormValue::Provided(_) => match provided.next() {
                    Some(secret) => form.append_pair(name, secret.expose()),
                    None => &mut form,
                },
            };
        }
        if let Some(session) = &plan.client_session {
            form.append_pair("client_session", session);
        }
        if let Some(claims) = &plan.claims {
            form.append_pair("claims", &claims.to_json());
        }
        Ok(form.finish())
    }
}

#[async_trait]
impl TokenCredential for TokenClient {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        TokenClient::get_token(self, request).await
    }
}
