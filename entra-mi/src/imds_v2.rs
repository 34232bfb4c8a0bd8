//! IMDSv2: managed identity tokens bound to a certificate by mutual-TLS proof-of-possession
//! (PROTOCOL.md section 4, "IMDSv2").
//!
//! 1. `GET {imds}/metadata/identity/getplatformmetadata?cred-api-version=2.0` (an IMDS that
//!    answers 404 only speaks v1);
//! 2. a new RSA key and a PSS-signed CSR (`entra-mtls-pop`), attested by the pluggable
//!    [`AttestationProvider`];
//! 3. `POST {imds}/metadata/identity/issuecredential?cred-api-version=2.0` for a certificate;
//! 4. the token leg over mutual TLS **through entra-core's `TokenClient`**, so claims and
//!    capability merging, cache keying (token type `mtls_pop` + the certificate thumbprint),
//!    `token_type` checks and error mapping are the shared ones.
//!
//! The binding is cached per identity and reused for every scope until `not_after − 24 h`;
//! concurrent mints are coalesced. When the token leg answers `invalid_client` or the TLS
//! handshake fails, the binding (and every token bound to it) is discarded, a new one is
//! minted, and the token leg is retried once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use entra_cache::TokenType;
use entra_claims::ClientCapabilities;
use entra_core::wire::{endpoint, json_object, parse_error};
use entra_core::{
    AccessToken, AccessTokenCache, AuthorityHost, ClientCredential, Clock, Error, Grant,
    HttpRequest, HttpResponse, HttpTransport, ResponseProblem, TokenClient, TokenRequest,
    TransportErrorKind,
};
use entra_mtls_pop::{AttestationProvider, Binding, BindingCache, CuId, KeyProvider, build_csr};
use http::{HeaderValue, Method, header};
use serde_json::{Map, Value};
use url::Url;

use crate::ManagedIdentityId;
use crate::retry::{self, RetryPolicy};
use crate::source::request;

const CRED_API_VERSION: &str = "2.0";
const PLATFORM_METADATA_PATH: &str = "/metadata/identity/getplatformmetadata";
const ISSUE_CREDENTIAL_PATH: &str = "/metadata/identity/issuecredential";

/// The code of the error for an IMDS that only speaks v1.
pub const NOT_SUPPORTED_IN_IMDS_V1: &str = "mtls_pop_token_not_supported_in_imds_v1";
/// The code of the error for a managed identity source other than IMDS.
pub const NOT_SUPPORTED_FOR_ENVIRONMENT: &str = "mtls_pop_not_supported_for_environment";

/// The IMDSv2 flow of one credential.
pub(crate) struct ImdsV2 {
    base: Url,
    id: ManagedIdentityId,
    keys: Arc<dyn KeyProvider>,
    attestation: Arc<dyn AttestationProvider>,
    bindings: BindingCache,
    extra_roots: Option<Arc<[u8]>>,
    capabilities: ClientCapabilities,
    transport: Arc<dyn HttpTransport>,
    clock: Arc<dyn Clock>,
    cache: AccessTokenCache,
    /// One token client per binding (by certificate thumbprint): each owns an mTLS transport.
    clients: Mutex<HashMap<String, TokenClient>>,
}

impl fmt::Debug for ImdsV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImdsV2")
            .field("base", &endpoint(&self.base))
            .field("identity", &self.id.kind())
            .finish_non_exhaustive()
    }
}

/// What [`ImdsV2::new`] needs.
pub(crate) struct ImdsV2Parts {
    pub(crate) base: Url,
    pub(crate) id: ManagedIdentityId,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) attestation: Arc<dyn AttestationProvider>,
    pub(crate) extra_roots: Option<Arc<[u8]>>,
    pub(crate) capabilities: ClientCapabilities,
    pub(crate) transport: Arc<dyn HttpTransport>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cache: AccessTokenCache,
}

impl ImdsV2 {
    pub(crate) fn new(parts: ImdsV2Parts) -> Self {
        let binding_clock: Arc<dyn entra_cache::Clock> = parts.clock.clone();
        Self {
            base: parts.base,
            id: parts.id,
            keys: parts.keys,
            attestation: parts.attestation,
            bindings: BindingCache::new(binding_clock),
            extra_roots: parts.extra_roots,
            capabilities: parts.capabilities,
            transport: parts.transport,
            clock: parts.clock,
            cache: parts.cache,
            clients: Mutex::default(),
        }
    }

    /// The binding-cache key of this credential's identity.
    fn selector_key(&self) -> String {
        match &self.id {
            ManagedIdentityId::SystemAssigned => String::new(),
            ManagedIdentityId::ClientId(id)
            | ManagedIdentityId::ObjectId(id)
            | ManagedIdentityId::ResourceId(id) => {
                format!("{}:{}", self.id.kind(), id.trim())
            }
        }
    }

    /// The current binding, if one has been minted and is still fresh.
    pub(crate) fn current_binding(&self) -> Option<Arc<Binding>> {
        self.bindings.get(&self.selector_key())
    }

    /// A bound token for `request` and the binding it is bound to.
    pub(crate) async fn get_token(
        &self,
        request: &TokenRequest,
    ) -> Result<(AccessToken, Arc<Binding>), Error> {
        let binding = self.binding().await?;
        match self.token_leg(&binding, request).await {
            Ok(token) => Ok((token, binding)),
            Err(error) if needs_new_binding(&error) => {
                tracing::warn!(%error, "the certificate binding was refused; minting a new one and retrying once");
                self.discard(&binding);
                let binding = self.binding().await?;
                let token = self.token_leg(&binding, request).await?;
                Ok((token, binding))
            }
            Err(error) => Err(error),
        }
    }

    /// Drops `binding`, its token client and every token bound to it.
    fn discard(&self, binding: &Binding) {
        let selector = self.selector_key();
        if self
            .bindings
            .get(&selector)
            .is_some_and(|current| current.thumbprint() == binding.thumbprint())
        {
            self.bindings.evict(&selector);
        }
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(binding.thumbprint());
        let thumbprint = binding.thumbprint().to_owned();
        self.cache.remove_where(
            |key| matches!(key.token_type(), TokenType::Bound { key_id, .. } if *key_id == thumbprint),
        );
    }

    async fn binding(&self) -> Result<Arc<Binding>, Error> {
        let mint = Mint {
            base: self.base.clone(),
            id: self.id.clone(),
            keys: self.keys.clone(),
            attestation: self.attestation.clone(),
            transport: self.transport.clone(),
            clock: self.clock.clone(),
        };
        self.bindings
            .get_or_mint(&self.selector_key(), move || mint.run())
            .await
    }

    /// The token leg: `TokenClient` over the binding's mTLS transport.
    async fn token_leg(
        &self,
        binding: &Binding,
        request: &TokenRequest,
    ) -> Result<AccessToken, Error> {
        let client = self.client_for(binding)?;
        let grant = Grant::client_credentials()
            .with_token_type(TokenType::bound("mtls_pop", binding.thumbprint()));
        Ok(client.exchange(request, &grant).await?.value)
    }

    fn client_for(&self, binding: &Binding) -> Result<TokenClient, Error> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(binding.thumbprint()) {
            return Ok(client.clone());
        }
        let url = binding.token_endpoint();
        let origin = url.origin().ascii_serialization();
        let transport = binding.transport(self.extra_roots.as_deref())?;
        let client = TokenClient::builder(binding.client_id())
            .authority(AuthorityHost::parse(&origin)?)
            .tenant(binding.tenant_id())?
            .credential(ClientCredential::None)
            .client_capabilities(self.capabilities.clone())
            .transport(Arc::new(transport))
            .clock(self.clock.clone())
            .cache(self.cache.clone())
            .token_endpoint(url.clone())
            .build()?;
        clients.insert(binding.thumbprint().to_owned(), client.clone());
        Ok(client)
    }
}

/// Whether the token leg's failure means the binding itself was refused.
fn needs_new_binding(error: &Error) -> bool {
    match error {
        Error::Service(e) => e.error == "invalid_client",
        Error::Transport { kind, .. } => *kind == TransportErrorKind::Tls,
        _ => false,
    }
}

/// Everything a mint needs, owned, so the binding cache can run it as one shared load.
struct Mint {
    base: Url,
    id: ManagedIdentityId,
    keys: Arc<dyn KeyProvider>,
    attestation: Arc<dyn AttestationProvider>,
    transport: Arc<dyn HttpTransport>,
    clock: Arc<dyn Clock>,
}

impl Mint {
    fn url(&self, path: &str) -> Result<HttpRequest, Error> {
        let url = self
            .base
            .join(path)
            .map_err(|_| Error::Configuration("the IMDS address is not a base URL".to_owned()))?;
        let mut query = vec![("cred-api-version", CRED_API_VERSION)];
        match &self.id {
            ManagedIdentityId::SystemAssigned => {}
            ManagedIdentityId::ClientId(id) => query.push(("client_id", id)),
            ManagedIdentityId::ObjectId(id) => query.push(("object_id", id)),
            ManagedIdentityId::ResourceId(id) => query.push(("mi_res_id", id)),
        }
        let method = if path == ISSUE_CREDENTIAL_PATH {
            Method::POST
        } else {
            Method::GET
        };
        let mut req = request(method, &url, &query);
        req.headers
            .insert("metadata", HeaderValue::from_static("true"));
        Ok(req)
    }

    async fn run(self) -> Result<Binding, Error> {
        // 1. Platform metadata, retried as IMDS is, except 404: that is the answer of an
        //    IMDSv1-only machine, not something to wait out.
        let metadata_request = self.url(PLATFORM_METADATA_PATH)?;
        let shown = endpoint(&metadata_request.url);
        let (response, _) = retry::send(
            self.transport.as_ref(),
            self.clock.as_ref(),
            RetryPolicy::ImdsPlatformMetadata,
            metadata_request,
        )
        .await?;
        let (client_id, tenant_id, cu_id) = platform_metadata(&response, &shown)?;

        // 2. Key, CSR, attestation.
        let key = self.keys.generate()?;
        let csr = build_csr(key.as_ref(), &client_id, &tenant_id, &cu_id)?;
        let attestation = self.attestation.attestation_token(&csr).await?;

        // 3. The certificate.
        let mut issue = self.url(ISSUE_CREDENTIAL_PATH)?;
        let shown = endpoint(&issue.url);
        issue.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        issue.body =
            serde_json::json!({ "csr": csr.to_base64(), "attestation_token": attestation })
                .to_string()
                .into();
        let (response, _) = retry::send(
            self.transport.as_ref(),
            self.clock.as_ref(),
            RetryPolicy::Imds,
            issue,
        )
        .await?;
        let Issued {
            certificate,
            endpoint_url,
            client_id: issued_client,
            tenant_id: issued_tenant,
        } = issued_credential(&response, &shown)?;
        let binding = Binding::new(
            certificate,
            key,
            issued_client,
            issued_tenant,
            &endpoint_url,
        )?;
        tracing::info!(
            thumbprint = binding.thumbprint(),
            "minted an mTLS certificate binding"
        );
        Ok(binding)
    }
}

/// Reads the `getplatformmetadata` answer: the client id, tenant id and compute unit id.
pub(crate) fn platform_metadata(
    response: &HttpResponse,
    shown: &str,
) -> Result<(String, String, CuId), Error> {
    if response.status == 404 {
        return Err(Error::not_supported(
            NOT_SUPPORTED_IN_IMDS_V1,
            "this machine's IMDS speaks only v1 and cannot issue mTLS proof-of-possession tokens; request a bearer token instead",
        ));
    }
    if response.status != 200 {
        return Err(parse_error(response, shown));
    }
    if !response
        .header("server")
        .is_some_and(|s| s.to_ascii_uppercase().contains("IMDS"))
    {
        return Err(Error::UnexpectedResponse {
            status: response.status,
            endpoint: shown.to_owned(),
            problem: ResponseProblem::InvalidField("Server"),
        });
    }
    let metadata = json_object(response, shown)?;
    let client_id = text(&metadata, "clientId", shown, response.status)?;
    let tenant_id = text(&metadata, "tenantId", shown, response.status)?;
    let cu_id = match metadata.get("cuId") {
        Some(Value::Object(cu)) => CuId {
            vm_id: cu.get("vmId").and_then(Value::as_str).map(str::to_owned),
            vmss_id: cu.get("vmssId").and_then(Value::as_str).map(str::to_owned),
        },
        _ => CuId::default(),
    };
    Ok((client_id, tenant_id, cu_id))
}

/// What `issuecredential` answered, before the certificate is checked against the key.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) certificate: Vec<u8>,
    pub(crate) endpoint_url: String,
    pub(crate) client_id: String,
    pub(crate) tenant_id: String,
}

/// Reads the `issuecredential` answer.
pub(crate) fn issued_credential(response: &HttpResponse, shown: &str) -> Result<Issued, Error> {
    if response.status != 200 {
        return Err(parse_error(response, shown));
    }
    let issued = json_object(response, shown)?;
    let invalid = |field| Error::UnexpectedResponse {
        status: response.status,
        endpoint: shown.to_owned(),
        problem: ResponseProblem::InvalidField(field),
    };
    let certificate = STANDARD
        .decode(text(&issued, "certificate", shown, response.status)?.trim())
        .map_err(|_| invalid("certificate"))?;
    Ok(Issued {
        certificate,
        endpoint_url: text(
            &issued,
            "mtls_authentication_endpoint",
            shown,
            response.status,
        )?,
        client_id: text(&issued, "client_id", shown, response.status)?,
        tenant_id: text(&issued, "tenant_id", shown, response.status)?,
    })
}

fn text(
    map: &Map<String, Value>,
    field: &'static str,
    shown: &str,
    status: u16,
) -> Result<String, Error> {
    map.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::UnexpectedResponse {
            status,
            endpoint: shown.to_owned(),
            problem: ResponseProblem::MissingField(field),
        })
}
