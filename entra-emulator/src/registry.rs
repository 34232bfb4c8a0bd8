//! What the emulator knows: tenants, applications and their credentials, resources, and
//! external (federated) issuers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::EmulatorError;
use crate::keys::{ExternalIssuerKey, certificate_rsa_key};

/// The audience Entra expects in federated assertions by default.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The resources every emulator knows from the start.
pub const DEFAULT_RESOURCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://management.azure.com",
    "https://vault.azure.net",
    "https://storage.azure.com",
    TOKEN_EXCHANGE_AUDIENCE,
];

/// A federated identity credential of an application: assertions from `issuer` about
/// `subject`, addressed to one of `audiences`, authenticate the application.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FederatedCredential {
    /// The `iss` the assertion must carry (compared exactly).
    pub issuer: String,
    /// The `sub` the assertion must carry (compared exactly).
    pub subject: String,
    /// Accepted `aud` values; defaults to `api://AzureADTokenExchange`.
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
}

fn default_audiences() -> Vec<String> {
    vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()]
}

impl FederatedCredential {
    /// A credential for `issuer` + `subject` with the default audience.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        FederatedCredential {
            issuer: issuer.into(),
            subject: subject.into(),
            audiences: default_audiences(),
        }
    }

    /// Replace the accepted audiences.
    #[must_use]
    pub fn with_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }
}

/// An application registration: a client id and the credentials that authenticate it.
///
/// In JSON (admin API and seed files):
/// `{"client_id": "...", "display_name": "...", "client_secrets": ["..."],
///   "certificates": ["<PEM or base64 DER>"], "federated_credentials": [{"issuer": "...",
///   "subject": "...", "audiences": ["..."]}], "object_id": "..."}` — all but `client_id`
/// optional.
#[derive(Clone, Deserialize)]
#[serde(try_from = "AppRegistrationJson")]
#[non_exhaustive]
pub struct AppRegistration {
    /// The application (client) id.
    pub client_id: String,
    /// A display name.
    pub display_name: Option<String>,
    /// Accepted client secrets.
    pub client_secrets: Vec<String>,
    /// Certificates (DER) whose keys may sign client assertions.
    pub certificates: Vec<Vec<u8>>,
    /// Federated identity credentials.
    pub federated_credentials: Vec<FederatedCredential>,
    /// The service principal object id (`oid`/`sub` of its tokens); derived from the tenant
    /// and client id when absent, so it is stable across runs.
    pub object_id: Option<String>,
}

impl AppRegistration {
    /// An application with no credentials yet.
    pub fn new(client_id: impl Into<String>) -> Self {
        AppRegistration {
            client_id: client_id.into(),
            display_name: None,
            client_secrets: Vec::new(),
            certificates: Vec::new(),
            federated_credentials: Vec::new(),
            object_id: None,
        }
    }

    /// Set the display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Accept this client secret.
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secrets.push(secret.into());
        self
    }

    /// Accept assertions signed by this certificate's key (DER).
    #[must_use]
    pub fn certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.certificates.push(der.into());
        self
    }

    /// Accept assertions signed by the key of the first certificate in `pem`.
    pub fn certificate_pem(mut self, pem: &str) -> Result<Self, EmulatorError> {
        let der = pem_to_der(pem).ok_or_else(|| EmulatorError::InvalidCertificate {
            client_id: self.client_id.clone(),
            reason: "no pem certificate found".to_owned(),
        })?;
        self.certificates.push(der);
        Ok(self)
    }

    /// Accept federated assertions matching `credential`.
    #[must_use]
    pub fn federated_credential(mut self, credential: FederatedCredential) -> Self {
        self.federated_credentials.push(credential);
        self
    }

    /// Fix the service principal object id.
    #[must_use]
    pub fn object_id(mut self, object_id: impl Into<String>) -> Self {
        self.object_id = Some(object_id.into());
        self
    }
}

impl fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field("display_name", &self.display_name)
            .field(
                "client_secrets",
                &format_args!("[{} redacted]", self.client_secrets.len()),
            )
            .field("certificates", &self.certificates.len())
            .field("federated_credentials", &self.federated_credentials)
            .field("object_id", &self.object_id)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppRegistrationJson {
    client_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    client_secrets: Vec<String>,
    #[serde(default)]
    certificates: Vec<String>,
    #[serde(default)]
    federated_credentials: Vec<FederatedCredential>,
    #[serde(default)]
    object_id: Option<String>,
}

impl TryFrom<AppRegistrationJson> for AppRegistration {
    type Error = String;

    fn try_from(json: AppRegistrationJson) -> Result<Self, String> {
        let mut certificates = Vec::with_capacity(json.certificates.len());
        for text in &json.certificates {
            let der = if text.contains("-----BEGIN") {
                pem_to_der(text)
            } else {
                STANDARD
                    .decode(text.split_whitespace().collect::<String>())
                    .ok()
            };
            certificates.push(der.ok_or_else(|| {
                format!(
                    "a certificate of application {:?} is neither pem nor base64 der",
                    json.client_id
                )
            })?);
        }
        Ok(AppRegistration {
            client_id: json.client_id,
            display_name: json.display_name,
            client_secrets: json.client_secrets,
            certificates,
            federated_credentials: json.federated_credentials,
            object_id: json.object_id,
        })
    }
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    (pem.label == "CERTIFICATE").then_some(pem.contents)
}

/// A certificate credential ready for verification.
pub(crate) struct RegisteredCertificate {
    pub(crate) sha256: String,
    pub(crate) sha1: String,
    pub(crate) key: DecodingKey,
}

/// An application as the token endpoint sees it.
pub(crate) struct RegisteredApp {
    pub(crate) client_id: String,
    pub(crate) display_name: Option<String>,
    pub(crate) object_id: String,
    pub(crate) secrets: Vec<String>,
    pub(crate) certificates: Vec<RegisteredCertificate>,
    pub(crate) federated: Vec<FederatedCredential>,
}

impl fmt::Debug for RegisteredApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredApp")
            .field("client_id", &self.client_id)
            .field("object_id", &self.object_id)
            .finish_non_exhaustive()
    }
}

/// A stable GUID derived from `parts` (so object ids survive restarts).
pub(crate) fn stable_guid(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"entra-emulator");
    for part in parts {
        hasher.update([0u8]);
        hasher.update(part.to_ascii_lowercase().as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

impl RegisteredApp {
    fn build(tenant_id: &str, app: AppRegistration) -> Result<Self, EmulatorError> {
        let mut certificates = Vec::with_capacity(app.certificates.len());
        for der in &app.certificates {
            let key =
                certificate_rsa_key(der).map_err(|reason| EmulatorError::InvalidCertificate {
                    client_id: app.client_id.clone(),
                    reason,
                })?;
            certificates.push(RegisteredCertificate {
                sha256: crate::keys::sha256_thumbprint(der),
                sha1: crate::keys::sha1_thumbprint(der),
                key,
            });
        }
        let object_id = app
            .object_id
            .clone()
            .unwrap_or_else(|| stable_guid(&["sp", tenant_id, &app.client_id]));
        Ok(RegisteredApp {
            client_id: app.client_id,
            display_name: app.display_name,
            object_id,
            secrets: app.client_secrets,
            certificates,
            federated: app.federated_credentials,
        })
    }

    /// The certificate whose SHA-256 (`x5t#S256`) or SHA-1 (`x5t`) thumbprint is given
    /// (base64url; hex is accepted too).
    pub(crate) fn certificate_by_thumbprint(
        &self,
        sha256: Option<&str>,
        sha1: Option<&str>,
    ) -> Option<&RegisteredCertificate> {
        let norm = |t: &str| normalize_thumbprint(t);
        self.certificates.iter().find(|c| {
            sha256.is_some_and(|t| norm(t) == c.sha256) || sha1.is_some_and(|t| norm(t) == c.sha1)
        })
    }
}

/// Accept a thumbprint in base64url, padded base64 or hex, and return it as base64url.
fn normalize_thumbprint(thumbprint: &str) -> String {
    let trimmed = thumbprint.trim_end_matches('=');
    if (trimmed.len() == 40 || trimmed.len() == 64)
        && trimmed.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(bytes) = hex::decode(trimmed)
    {
        return base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    }
    trimmed.replace('+', "-").replace('/', "_")
}

/// An external issuer: a stand-in for GitHub Actions, Kubernetes and the like.
#[derive(Debug)]
pub(crate) struct ExternalIssuer {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) key: ExternalIssuerKey,
}

#[derive(Debug)]
struct Tenant {
    id: String,
    domains: Vec<String>,
    apps: BTreeMap<String, Arc<RegisteredApp>>,
}

/// A tenant as resolved from a path segment.
#[derive(Debug, Clone)]
pub(crate) struct TenantRef {
    pub(crate) id: String,
    pub(crate) names: Vec<String>,
}

/// All registrations of one emulator.
#[derive(Debug)]
pub(crate) struct Registry {
    tenants: BTreeMap<String, Tenant>,
    aliases: BTreeMap<String, String>,
    resources: Vec<String>,
    issuers: BTreeMap<String, Arc<ExternalIssuer>>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn normalize_resource(uri: &str) -> String {
    uri.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            tenants: BTreeMap::new(),
            aliases: BTreeMap::new(),
            resources: DEFAULT_RESOURCES.iter().map(|r| (*r).to_owned()).collect(),
            issuers: BTreeMap::new(),
        }
    }

    pub(crate) fn add_tenant(&mut self, tenant_id: &str) -> Result<(), EmulatorError> {
        if !valid_name(tenant_id) {
            return Err(EmulatorError::InvalidTenantId(tenant_id.to_owned()));
        }
        let key = tenant_id.to_ascii_lowercase();
        if self.aliases.get(&key).is_some_and(|id| *id != key) {
            return Err(EmulatorError::InvalidTenantId(tenant_id.to_owned()));
        }
        self.tenants.entry(key).or_insert_with(|| Tenant {
            id: tenant_id.to_owned(),
            domains: Vec::new(),
            apps: BTreeMap::new(),
        });
        Ok(())
    }

    pub(crate) fn add_domain(&mut self, tenant: &str, domain: &str) -> Result<(), EmulatorError> {
        if !valid_name(domain) {
            return Err(EmulatorError::InvalidTenantId(domain.to_owned()));
        }
        let id = self.resolve_key(tenant)?;
        let domain_key = domain.to_ascii_lowercase();
        if self.tenants.contains_key(&domain_key)
            || self.aliases.get(&domain_key).is_some_and(|t| *t != id)
        {
            return Err(EmulatorError::InvalidTenantId(domain.to_owned()));
        }
        self.aliases.insert(domain_key, id.clone());
        if let Some(t) = self.tenants.get_mut(&id)
            && !t.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
        {
            t.domains.push(domain.to_owned());
        }
        Ok(())
    }

    fn resolve_key(&self, tenant: &str) -> Result<String, EmulatorError> {
        let key = tenant.to_ascii_lowercase();
        if self.tenants.contains_key(&key) {
            return Ok(key);
        }
        self.aliases
            .get(&key)
            .cloned()
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.to_owned()))
    }

    /// The tenant named by `tenant` (its id or one of its domains).
    pub(crate) fn tenant(&self, tenant: &str) -> Option<TenantRef> {
        let key = self.resolve_key(tenant).ok()?;
        let t = self.tenants.get(&key)?;
        let mut names = vec![t.id.clone()];
        names.extend(t.domains.iter().cloned());
        Some(TenantRef {
            id: t.id.clone(),
            names,
        })
    }

    pub(crate) fn add_application(
        &mut self,
        tenant: &str,
        app: AppRegistration,
    ) -> Result<Arc<RegisteredApp>, EmulatorError> {
        let client_id = app.client_id.trim();
        if client_id.is_empty()
            || client_id.len() != app.client_id.len()
            || client_id.contains(['/', ' ', '\t', '\n'])
        {
            return Err(EmulatorError::InvalidClientId(app.client_id));
        }
        let key = self.resolve_key(tenant)?;
        let tenant_id = self
            .tenants
            .get(&key)
            .map(|t| t.id.clone())
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.to_owned()))?;
        let app = Arc::new(RegisteredApp::build(&tenant_id, app)?);
        if let Some(t) = self.tenants.get_mut(&key) {
            t.apps
                .insert(app.client_id.to_ascii_lowercase(), Arc::clone(&app));
        }
        Ok(app)
    }

    pub(crate) fn application(&self, tenant: &str, client_id: &str) -> Option<Arc<RegisteredApp>> {
        let key = self.resolve_key(tenant).ok()?;
        self.tenants
            .get(&key)?
            .apps
            .get(&client_id.to_ascii_lowercase())
            .cloned()
    }

    pub(crate) fn add_resource(&mut self, uri: &str) -> Result<(), EmulatorError> {
        let trimmed = uri.trim();
        if trimmed.is_empty() || !trimmed.contains(':') || trimmed.contains(char::is_whitespace) {
            return Err(EmulatorError::InvalidResource(uri.to_owned()));
        }
        let norm = normalize_resource(trimmed);
        if !self.resources.iter().any(|r| normalize_resource(r) == norm) {
            self.resources
                .push(trimmed.trim_end_matches('/').to_owned());
        }
        Ok(())
    }

    /// The registered form of `resource`, if known in `tenant`: a registered resource URI, or
    /// the client id of an application of the tenant.
    pub(crate) fn resource(&self, tenant: &str, resource: &str) -> Option<String> {
        let norm = normalize_resource(resource);
        if let Some(r) = self
            .resources
            .iter()
            .find(|r| normalize_resource(r) == norm)
        {
            return Some(r.clone());
        }
        let key = self.resolve_key(tenant).ok()?;
        self.tenants
            .get(&key)?
            .apps
            .get(&norm)
            .map(|app| app.client_id.clone())
    }

    pub(crate) fn add_issuer(&mut self, issuer: ExternalIssuer) -> Arc<ExternalIssuer> {
        let issuer = Arc::new(issuer);
        self.issuers
            .insert(issuer.name.clone(), Arc::clone(&issuer));
        issuer
    }

    pub(crate) fn issuer(&self, name: &str) -> Option<Arc<ExternalIssuer>> {
        self.issuers.get(name).cloned()
    }

    pub(crate) fn issuer_by_url(&self, url: &str) -> Option<Arc<ExternalIssuer>> {
        let url = url.trim_end_matches('/');
        self.issuers
            .values()
            .find(|i| i.url.trim_end_matches('/') == url)
            .cloned()
    }
}

/// Whether `name` is acceptable as an external issuer name.
pub(crate) fn valid_issuer_name(name: &str) -> bool {
    valid_name(name) && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_resolve_by_id_and_domain() {
        let mut r = Registry::new();
        assert!(r.add_tenant("11111111-1111-1111-1111-111111111111").is_ok());
        assert!(
            r.add_domain("11111111-1111-1111-1111-111111111111", "contoso.example")
                .is_ok()
        );
        let t = r.tenant("CONTOSO.example").map(|t| t.id);
        assert_eq!(t.as_deref(), Some("11111111-1111-1111-1111-111111111111"));
        assert!(r.tenant("other").is_none());
        assert!(r.add_tenant("bad/tenant").is_err());
    }

    #[test]
    fn resources_match_leniently() {
        let r = Registry::new();
        assert_eq!(
            r.resource("t", "https://graph.microsoft.com/").as_deref(),
            Some("https://graph.microsoft.com")
        );
        assert_eq!(
            r.resource("t", "HTTPS://VAULT.AZURE.NET").as_deref(),
            Some("https://vault.azure.net")
        );
        assert!(r.resource("t", "https://nope.example").is_none());
    }

    #[test]
    fn object_ids_are_stable() {
        assert_eq!(
            stable_guid(&["sp", "t", "c"]),
            stable_guid(&["sp", "T", "C"])
        );
        assert_ne!(
            stable_guid(&["sp", "t", "c"]),
            stable_guid(&["sp", "t", "d"])
        );
    }

    #[test]
    fn thumbprints_normalize() {
        assert_eq!(normalize_thumbprint("ab+/=="), "ab-_");
        let hex = "00".repeat(20);
        assert_eq!(normalize_thumbprint(&hex), "AAAAAAAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn debug_redacts_secrets() {
        let app = AppRegistration::new("c").client_secret("hunter2");
        assert!(!format!("{app:?}").contains("hunter2"));
    }
}
