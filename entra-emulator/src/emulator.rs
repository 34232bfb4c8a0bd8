//! The [`Emulator`] handle and its configuration.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::control::Seed;
use crate::error::EmulatorError;
use crate::fault::Fault;
use crate::keys::{Pki, ServerIdentity, SigningKey};
use crate::log::{RecordedRequest, Scheme};
use crate::managed_identity::{self, ManagedIdentity, MiState};
use crate::registry::{AppRegistration, UserAccount};
use crate::server::{self, Listener, ListenerRole};
use crate::state::{ExtraClaimsHook, Settings, Shared, Urls, lock};
use crate::tls::{self, TlsOptions};

/// How to start an [`Emulator`].
///
/// The default binds `127.0.0.1` on two ephemeral ports (HTTPS and plain HTTP), issues tokens
/// valid for one hour, signs them with the process-wide [`SigningKey::shared`] key and reads
/// the system clock.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmulatorConfig {
    bind_address: IpAddr,
    https_port: u16,
    http_port: u16,
    service_fabric_port: u16,
    mtls_port: u16,
    token_lifetime: Duration,
    signing_key: Option<SigningKey>,
    clock: Clock,
    server_names: Vec<String>,
    request_log_capacity: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            https_port: 0,
            http_port: 0,
            service_fabric_port: 0,
            mtls_port: 0,
            token_lifetime: Duration::from_secs(3600),
            signing_key: None,
            clock: Clock::system(),
            server_names: Vec::new(),
            request_log_capacity: 10_000,
        }
    }
}

impl EmulatorConfig {
    /// The address both listeners bind (default `127.0.0.1`).
    #[must_use]
    pub fn bind_address(mut self, address: IpAddr) -> Self {
        self.bind_address = address;
        self
    }

    /// The HTTPS port (0, the default, lets the system choose).
    #[must_use]
    pub fn https_port(mut self, port: u16) -> Self {
        self.https_port = port;
        self
    }

    /// The plain HTTP port (0, the default, lets the system choose).
    #[must_use]
    pub fn http_port(mut self, port: u16) -> Self {
        self.http_port = port;
        self
    }

    /// The port of the Service Fabric managed identity listener (0, the default, lets the system
    /// choose).
    #[must_use]
    pub fn service_fabric_port(mut self, port: u16) -> Self {
        self.service_fabric_port = port;
        self
    }

    /// The port of the IMDSv2 mutual-TLS token listener (0, the default, lets the system
    /// choose).
    #[must_use]
    pub fn mtls_port(mut self, port: u16) -> Self {
        self.mtls_port = port;
        self
    }

    /// The lifetime of issued access tokens (default one hour).
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Sign tokens with `key` instead of the process-wide shared key.
    #[must_use]
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// Read time from `clock` (for `iat`/`nbf`/`exp` and assertion validation).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Add a host name to the server certificate (besides `127.0.0.1`, `::1`, `localhost`).
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_names.push(name.into());
        self
    }

    /// Keep at most this many requests in the log (default 10 000; oldest dropped first).
    #[must_use]
    pub fn request_log_capacity(mut self, capacity: usize) -> Self {
        self.request_log_capacity = capacity;
        self
    }
}

/// A running emulator. Dropping it (or calling [`Emulator::shutdown`]) stops its listeners.
///
/// All registration and inspection methods take `&self` and may be called while requests are
/// being served.
pub struct Emulator {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("https", &self.shared.urls.https)
            .field("http", &self.shared.urls.http)
            .finish_non_exhaustive()
    }
}

fn base_url(scheme: &str, addr: SocketAddr) -> String {
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("{scheme}://{host}:{}", addr.port())
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, EmulatorError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind {
            listener,
            addr,
            source,
        })
}

fn local_addr(
    listener: &'static str,
    tcp: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, EmulatorError> {
    tcp.local_addr().map_err(|source| EmulatorError::Bind {
        listener,
        addr,
        source,
    })
}

impl Emulator {
    /// Start an emulator with the default configuration.
    pub async fn start() -> Result<Emulator, EmulatorError> {
        Emulator::start_with(EmulatorConfig::default()).await
    }

    /// Start an emulator.
    pub async fn start_with(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let signing = match config.signing_key.clone() {
            Some(key) => key,
            None => tokio::task::spawn_blocking(SigningKey::shared)
                .await
                .unwrap_or_else(|_| SigningKey::shared())?,
        };
        let pki = Pki::generate(&config.server_names)?;

        let https_addr = SocketAddr::new(config.bind_address, config.https_port);
        let http_addr = SocketAddr::new(config.bind_address, config.http_port);
        let https_tcp = bind("https", https_addr).await?;
        let http_tcp = bind("http", http_addr).await?;
        let https_bound = local_addr("https", &https_tcp, https_addr)?;
        let http_bound = local_addr("http", &http_tcp, http_addr)?;
        let fabric_addr = SocketAddr::new(config.bind_address, config.service_fabric_port);
        let fabric_tcp = bind("service fabric", fabric_addr).await?;
        let fabric_bound = local_addr("service fabric", &fabric_tcp, fabric_addr)?;
        let fabric_identity = ServerIdentity::self_signed("entra-emulator service fabric")?;
        let fabric_acceptor = tls::acceptor(&fabric_identity, &TlsOptions::default())?;
        let mtls_addr = SocketAddr::new(config.bind_address, config.mtls_port);
        let mtls_tcp = bind("mtls", mtls_addr).await?;
        let mtls_bound = local_addr("mtls", &mtls_tcp, mtls_addr)?;
        let mtls_acceptor = tls::acceptor(
            &pki.server,
            &TlsOptions {
                client_ca_der: vec![pki.ca_der.clone()],
                reject_client_certs: false,
            },
        )?;
        let reject_acceptor = tls::acceptor(
            &pki.server,
            &TlsOptions {
                client_ca_der: vec![pki.ca_der.clone()],
                reject_client_certs: true,
            },
        )?;
        let mi = MiState::new(base_url("https", fabric_bound), fabric_identity.sha1_hex())?;

        let urls = Urls {
            https: base_url("https", https_bound),
            http: base_url("http", http_bound),
            https_port: https_bound.port(),
            http_port: http_bound.port(),
            mtls: base_url("https", mtls_bound),
            server_names: config.server_names.clone(),
        };
        let acceptor = tls::acceptor(&pki.server, &TlsOptions::default())?;
        let settings = Settings {
            token_lifetime: config.token_lifetime,
            refresh_in: None,
            expires_in_as_string: false,
            extra_claims: None,
        };
        let shared = Arc::new(Shared::new(
            urls,
            signing,
            pki,
            config.clock.clone(),
            settings,
            config.request_log_capacity,
            mi,
        ));
        let router: Router = crate::routes().with_state(Arc::clone(&shared));
        let fabric_router: Router =
            managed_identity::service_fabric_routes().with_state(Arc::clone(&shared));
        let mtls_router: Router = Router::new()
            .route(
                "/{tenant}/oauth2/v2.0/token",
                axum::routing::post(managed_identity::mtls_token),
            )
            .fallback(crate::not_found)
            .with_state(Arc::clone(&shared));

        let (shutdown, watcher) = watch::channel(false);
        let tasks = vec![
            server::spawn(
                Listener {
                    scheme: Scheme::Https,
                    role: ListenerRole::Main,
                    tcp: https_tcp,
                    tls: Some(acceptor),
                    reject_tls: None,
                },
                Arc::clone(&shared),
                router.clone(),
                watcher.clone(),
            ),
            server::spawn(
                Listener {
                    scheme: Scheme::Http,
                    role: ListenerRole::Main,
                    tcp: http_tcp,
                    tls: None,
                    reject_tls: None,
                },
                Arc::clone(&shared),
                router,
                watcher.clone(),
            ),
            server::spawn(
                Listener {
                    scheme: Scheme::Https,
                    role: ListenerRole::ServiceFabric,
                    tcp: fabric_tcp,
                    tls: Some(fabric_acceptor),
                    reject_tls: None,
                },
                Arc::clone(&shared),
                fabric_router,
                watcher.clone(),
            ),
            server::spawn(
                Listener {
                    scheme: Scheme::Https,
                    role: ListenerRole::Mtls,
                    tcp: mtls_tcp,
                    tls: Some(mtls_acceptor),
                    reject_tls: Some(reject_acceptor),
                },
                Arc::clone(&shared),
                mtls_router,
                watcher,
            ),
        ];
        tracing::debug!(https = %shared.urls.https, http = %shared.urls.http, "entra emulator started");
        Ok(Emulator {
            shared,
            shutdown,
            tasks,
        })
    }

    /// Stop the listeners and wait until they have stopped.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }

    // ---- addresses ----

    /// The HTTPS base URL, e.g. `https://127.0.0.1:41234` (no trailing slash).
    pub fn https_url(&self) -> String {
        self.shared.urls.https.clone()
    }

    /// The plain HTTP base URL, e.g. `http://127.0.0.1:41235`.
    pub fn http_url(&self) -> String {
        self.shared.urls.http.clone()
    }

    /// The authority host to configure clients with (the HTTPS base URL).
    pub fn authority_host(&self) -> String {
        self.https_url()
    }

    /// `{https_url}/{tenant}`: the authority of a tenant.
    pub fn authority(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.shared.urls.https)
    }

    /// The HTTPS port.
    pub fn https_port(&self) -> u16 {
        self.shared.urls.https_port
    }

    /// The plain HTTP port.
    pub fn http_port(&self) -> u16 {
        self.shared.urls.http_port
    }

    /// `{https_url}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.shared.urls.https)
    }

    /// `{https_url}/{tenant}/v2.0`: the `iss` of the tenant's tokens.
    pub fn issuer(&self, tenant: &str) -> String {
        let id = lock(&self.shared.registry)
            .tenant(tenant)
            .map_or_else(|| tenant.to_owned(), |t| t.id);
        self.shared.issuer(&id)
    }

    /// `{https_url}/{tenant}/v2.0/.well-known/openid-configuration`.
    pub fn openid_configuration_url(&self, tenant: &str) -> String {
        format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            self.shared.urls.https
        )
    }

    /// `{https_url}/discovery/v2.0/keys`.
    pub fn jwks_url(&self) -> String {
        format!("{}/discovery/v2.0/keys", self.shared.urls.https)
    }

    // ---- TLS ----

    /// The emulator's CA certificate (PEM): trust it to reach the HTTPS listener.
    pub fn ca_pem(&self) -> &str {
        &self.shared.pki.ca_pem
    }

    /// The emulator's CA certificate (DER).
    pub fn ca_der(&self) -> &[u8] {
        &self.shared.pki.ca_der
    }

    /// Write the CA certificate to `dir/ca.pem` (creating `dir`) and return the path.
    pub fn write_ca_pem(&self, dir: impl AsRef<Path>) -> io::Result<PathBuf> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.ca_pem())?;
        Ok(path)
    }

    // ---- token verification ----

    /// The key that verifies the access tokens this emulator issues.
    pub fn decoding_key(&self) -> DecodingKey {
        self.shared.signing.decoding_key()
    }

    /// The signing key (its `kid`, public key and certificate).
    pub fn signing_key(&self) -> &SigningKey {
        &self.shared.signing
    }

    /// The signing key's public key as SPKI PEM.
    pub fn signing_public_key_pem(&self) -> &str {
        self.shared.signing.public_key_pem()
    }

    /// The JWKS document served at `/discovery/v2.0/keys`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.shared.signing.jwk(None)] })
    }

    /// A [`Validation`] that accepts this emulator's access tokens for `tenant` and `audience`
    /// (RS256, `iss` = [`Emulator::issuer`], `aud` = `audience`, `exp` checked).
    pub fn validation(&self, tenant: &str, audience: &str) -> Validation {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[self.issuer(tenant)]);
        validation.set_audience(&[audience]);
        validation
    }

    /// The emulator's current time (its [`Clock`]).
    pub fn now(&self) -> SystemTime {
        self.shared.now()
    }

    // ---- registry ----

    /// Register a tenant (a GUID in real life). Registering it again is harmless.
    pub fn add_tenant(&self, tenant_id: &str) -> Result<(), EmulatorError> {
        self.shared.add_tenant(tenant_id)
    }

    /// Let `domain` (e.g. `contoso.onmicrosoft.com`) name the tenant `tenant` too.
    pub fn add_tenant_domain(&self, tenant: &str, domain: &str) -> Result<(), EmulatorError> {
        self.shared.add_tenant_domain(tenant, domain)
    }

    /// Register (or replace) an application in `tenant`; returns its service principal object
    /// id (the `oid`/`sub` of its tokens).
    pub fn add_application(
        &self,
        tenant: &str,
        app: AppRegistration,
    ) -> Result<String, EmulatorError> {
        self.shared.add_application(tenant, app)
    }

    /// Register an agent identity blueprint: an application (its credentials: secret,
    /// certificate, federated) that may request T1 tokens with `fmi_path`. Without `fmi_path`
    /// it behaves like any application.
    pub fn add_agent_blueprint(
        &self,
        tenant: &str,
        app: AppRegistration,
    ) -> Result<(), EmulatorError> {
        self.shared.add_agent_blueprint(tenant, app).map(drop)
    }

    /// An agent identity under a blueprint (it has no credential of its own: only a T1 of its
    /// parent authenticates it). Error if the blueprint is unknown. Its object id (`oid`/`sub`
    /// of its tokens) is [`Emulator::service_principal_id`].
    pub fn add_agent_identity(
        &self,
        tenant: &str,
        blueprint_client_id: &str,
        agent_client_id: &str,
    ) -> Result<(), EmulatorError> {
        self.shared
            .add_agent_identity(tenant, blueprint_client_id, agent_client_id)
            .map(drop)
    }

    /// An agent user owned by an agent identity. Error if the agent identity is unknown.
    pub fn add_agent_user(
        &self,
        tenant: &str,
        agent_client_id: &str,
        user: UserAccount,
    ) -> Result<(), EmulatorError> {
        self.shared.add_user(tenant, Some(agent_client_id), user)
    }

    /// A plain (human) user, e.g. the signed-in user of an on-behalf-of flow.
    pub fn add_user(&self, tenant: &str, user: UserAccount) -> Result<(), EmulatorError> {
        self.shared.add_user(tenant, None, user)
    }

    /// A signed delegated user access token as the emulator would issue it (`idtyp=user`,
    /// `scp=scopes`, `oid`/`sub` = the user, `aud=audience`, `azp`/`appid` = `client_id`), to
    /// use as the incoming token of an on-behalf-of request. Error if the user is unknown.
    pub fn mint_user_token(
        &self,
        tenant: &str,
        user_object_id: &str,
        client_id: &str,
        audience: &str,
        scopes: &str,
    ) -> Result<String, EmulatorError> {
        self.shared
            .mint_user_token(tenant, user_object_id, client_id, audience, scopes)
    }

    /// The service principal object id of a registered application.
    pub fn service_principal_id(&self, tenant: &str, client_id: &str) -> Option<String> {
        lock(&self.shared.registry)
            .application(tenant, client_id)
            .map(|app| app.object_id.clone())
    }

    /// Make `uri` a known resource (scope `{uri}/.default`).
    pub fn add_resource(&self, uri: &str) -> Result<(), EmulatorError> {
        self.shared.add_resource(uri)
    }

    /// Create an external issuer called `name` (or return the existing one) and return its
    /// issuer URL, `{https_url}/_emulator/issuers/{name}`. Its JWKS and discovery document are
    /// served under that URL.
    pub fn add_external_issuer(&self, name: &str) -> Result<String, EmulatorError> {
        self.shared.add_external_issuer(name)
    }

    /// A token from external issuer `issuer_name` about `subject` for `audience`, valid from
    /// now for `lifetime`: a federated assertion.
    pub fn mint_external_token(
        &self,
        issuer_name: &str,
        subject: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, EmulatorError> {
        self.shared
            .mint_external_token(issuer_name, subject, audience, lifetime)
    }

    /// A token from external issuer `issuer_name` with exactly `claims` (plus `iss` when
    /// absent), for assertions that are expired, mis-addressed and so on.
    pub fn mint_external_token_with_claims(
        &self,
        issuer_name: &str,
        claims: Map<String, Value>,
    ) -> Result<String, EmulatorError> {
        self.shared
            .mint_external_token_with_claims(issuer_name, claims)
    }

    /// Register everything in `seed`.
    pub fn apply_seed(&self, seed: &Seed) -> Result<(), EmulatorError> {
        self.shared.apply_seed(seed)
    }

    // ---- settings ----

    /// The lifetime of the access tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.settings).token_lifetime = lifetime.max(Duration::from_secs(1));
    }

    /// Send `refresh_in` with successful token answers (`None` stops it).
    pub fn set_refresh_in(&self, refresh_in: Option<Duration>) {
        lock(&self.shared.settings).refresh_in = refresh_in;
    }

    /// Send `expires_in`, `ext_expires_in` and `refresh_in` as strings, as ESTS sometimes does.
    pub fn set_expires_in_as_string(&self, as_string: bool) {
        lock(&self.shared.settings).expires_in_as_string = as_string;
    }

    /// Add claims to every access token issued from now on (`None` removes the hook).
    pub fn set_extra_claims(&self, hook: Option<ExtraClaimsHook>) {
        lock(&self.shared.settings).extra_claims = hook;
    }

    // ---- request log ----

    /// Every request recorded so far (oldest first), secrets redacted.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// How many recorded requests satisfy `predicate`.
    pub fn count(&self, predicate: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.shared.count_requests(predicate)
    }

    /// The recorded requests to the token endpoint of `tenant`.
    pub fn token_requests(&self, tenant: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_token_request_for(tenant))
            .collect()
    }

    // ---- managed identity ----

    /// Make `identity` the system-assigned managed identity (replacing any earlier one): the
    /// identity every source serves when the request selects none. Its tenant must be
    /// registered.
    pub fn set_system_assigned_identity(
        &self,
        identity: ManagedIdentity,
    ) -> Result<(), EmulatorError> {
        let identity = self.canonical_identity(identity)?;
        self.shared.mi.set_system(identity);
        Ok(())
    }

    /// Add a user-assigned managed identity (replacing one with the same client id), selected
    /// by its client id, object id or resource id. Its tenant must be registered.
    pub fn add_user_assigned_identity(
        &self,
        identity: ManagedIdentity,
    ) -> Result<(), EmulatorError> {
        let identity = self.canonical_identity(identity)?;
        self.shared.mi.add_user(identity);
        Ok(())
    }

    fn canonical_identity(
        &self,
        identity: ManagedIdentity,
    ) -> Result<ManagedIdentity, EmulatorError> {
        self.shared.canonical_identity(identity)
    }

    /// The secret App Service checks in `X-IDENTITY-HEADER` (what `IDENTITY_HEADER` holds).
    pub fn app_service_secret(&self) -> &str {
        &self.shared.mi.app_service_secret
    }

    /// The secret Service Fabric checks in the `secret` header (what `IDENTITY_HEADER` holds).
    pub fn service_fabric_secret(&self) -> &str {
        &self.shared.mi.service_fabric_secret
    }

    /// The secret Azure Machine Learning checks in the `secret` header (what `MSI_SECRET`
    /// holds).
    pub fn ml_secret(&self) -> &str {
        &self.shared.mi.ml_secret
    }

    /// The base URL of the Service Fabric listener, e.g. `https://127.0.0.1:41236`; its token
    /// endpoint (`IDENTITY_ENDPOINT`) is `{url}/metadata/identity/oauth2/token`.
    pub fn service_fabric_url(&self) -> String {
        self.shared.mi.service_fabric_url.clone()
    }

    /// The SHA-1 thumbprint of the Service Fabric listener's self-signed certificate, upper-case
    /// hex (what `IDENTITY_SERVER_THUMBPRINT` holds).
    pub fn service_fabric_thumbprint(&self) -> String {
        self.shared.mi.service_fabric_thumbprint.clone()
    }

    /// The lifetime of the managed identity tokens issued from now on (default 24 hours).
    pub fn set_mi_token_lifetime(&self, lifetime: Duration) {
        self.shared.mi.set_lifetime(lifetime);
    }

    /// Make App Service send `expires_on` as `MM/dd/yyyy HH:mm:ss +00:00` instead of unix
    /// seconds.
    pub fn set_app_service_expires_on_as_date(&self, as_date: bool) {
        self.shared.mi.set_app_service_date(as_date);
    }

    /// Write Azure Arc challenge key files into `dir` (created when needed) from now on.
    pub fn set_arc_key_directory(&self, dir: PathBuf) {
        self.shared.mi.set_arc_dir(dir);
    }

    /// The directory Azure Arc challenge key files are written to (by default a temporary
    /// directory created at start and removed when the emulator is dropped).
    pub fn arc_key_directory(&self) -> PathBuf {
        self.shared.mi.arc_dir()
    }

    /// The size in bytes of the Azure Arc challenge key files written from now on (default 32
    /// random hex digits); clients refuse files over 4096 bytes.
    pub fn set_arc_key_file_size(&self, size: usize) {
        self.shared.mi.set_arc_key_size(size);
    }

    // ---- IMDSv2 (mutual-TLS proof-of-possession) ----

    /// The base URL of the IMDSv2 mutual-TLS token listener, e.g. `https://127.0.0.1:41237`
    /// (what `issuecredential` answers as `mtls_authentication_endpoint`).
    pub fn mtls_url(&self) -> String {
        self.shared.urls.mtls.clone()
    }

    /// Serve IMDSv2 (`getplatformmetadata`, `issuecredential`); when false both answer 404, as
    /// on an IMDSv1-only VM. Default true.
    pub fn set_imds_v2_enabled(&self, enabled: bool) {
        self.shared.imds_v2.set_enabled(enabled);
    }

    /// The VM id of the emulated VM (`cuId.vmId`), fixed per emulator.
    pub fn vm_id(&self) -> String {
        self.shared.imds_v2.vm_id()
    }

    /// The VM scale set id of the emulated VM (`cuId.vmssId`), if any.
    pub fn vmss_id(&self) -> Option<String> {
        self.shared.imds_v2.vmss_id()
    }

    /// Set (or, with `None`, omit) the VM scale set id of the emulated VM.
    pub fn set_vmss_id(&self, vmss_id: Option<String>) {
        self.shared.imds_v2.set_vmss_id(vmss_id);
    }

    /// The lifetime of the certificates `issuecredential` signs from now on (default 7 days).
    pub fn set_bound_certificate_lifetime(&self, lifetime: Duration) {
        self.shared.imds_v2.set_cert_lifetime(lifetime);
    }

    /// How many certificates `issuecredential` has signed.
    pub fn issued_certificate_count(&self) -> usize {
        self.shared.imds_v2.issued_count()
    }

    /// Mark every certificate issued so far as revoked: the mutual-TLS token endpoint then
    /// answers 401 `invalid_client` to them.
    pub fn revoke_bound_certificates(&self) {
        self.shared.imds_v2.revoke_all();
    }

    /// Make the next `n` TLS handshakes on the mutual-TLS listener fail (the client
    /// certificate is refused with a fatal alert). 0 cancels pending rejections.
    pub fn reject_mtls_handshakes(&self, n: u32) {
        self.shared.imds_v2.reject_handshakes(n);
    }

    /// Answer `token_type` = `token_type` from the mutual-TLS token endpoint instead of
    /// `mtls_pop` (`Some("")` omits it; `None` restores the normal behaviour).
    pub fn set_mtls_token_type_override(&self, token_type: Option<String>) {
        self.shared.imds_v2.set_token_type_override(token_type);
    }

    // ---- faults ----

    /// Script a fault (see [`Fault`]).
    pub fn add_fault(&self, fault: Fault) -> Result<(), EmulatorError> {
        fault.validate()?;
        self.shared.add_fault(fault);
        Ok(())
    }

    /// The faults not yet used up.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.faults()
    }

    /// Remove every scripted fault.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shared.mi.cleanup();
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}
