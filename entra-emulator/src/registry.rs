//! What the emulator knows: tenants, applications and their credentials, resources, and
//! external (federated) issuers.

use std::collections::{BTreeMap, BTreeSet};
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

/// The application id of Entra's token exchange app: the `aud` of T1 and T2 tokens (requests
/// for `api://AzureADTokenExchange/.default` from agent blueprints and agent identities).
pub const TOKEN_EXCHANGE_APP_ID: &str = "fb60f99c-7a34-4190-8149-302f77469936";

/// The exchange audiences of the public, US Government and China clouds.
pub(crate) const EXCHANGE_AUDIENCES: &[&str] = &[
    TOKEN_EXCHANGE_AUDIENCE,
    "api://AzureADTokenExchangeUSGov",
    "api://AzureADTokenExchangeChina",
];

/// Whether `resource` is one of the token exchange audiences (or the exchange app id).
pub(crate) fn is_exchange_resource(resource: &str) -> bool {
    let r = resource.trim_end_matches('/');
    r.eq_ignore_ascii_case(TOKEN_EXCHANGE_APP_ID)
        || EXCHANGE_AUDIENCES.iter().any(|a| a.eq_ignore_ascii_case(r))
}

/// A user of a tenant: a plain (human) user or an agent user.
///
/// In JSON (admin API and seed files): `{"object_id": "...", "user_principal_name": "...",
/// "display_name": "...", "default_scopes": ["User.Read"]}` — `display_name` and
/// `default_scopes` optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UserAccount {
    /// The user's object id (`oid`/`sub` of its tokens).
    pub object_id: String,
    /// The user principal name (`upn`, `preferred_username`).
    #[serde(alias = "upn")]
    pub user_principal_name: String,
    /// The display name (`name` of the id token).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The delegated scopes (`scp`) granted for a `{resource}/.default` request; default
    /// `["User.Read"]`.
    #[serde(default = "default_user_scopes")]
    pub default_scopes: Vec<String>,
}

fn default_user_scopes() -> Vec<String> {
    vec!["User.Read".to_owned()]
}

impl UserAccount {
    /// A user with object id `object_id` and user principal name `upn`.
    pub fn new(object_id: impl Into<String>, upn: impl Into<String>) -> Self {
        UserAccount {
            object_id: object_id.into(),
            user_principal_name: upn.into(),
            display_name: None,
            default_scopes: default_user_scopes(),
        }
    }

    /// Set the display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Replace the scopes granted for a `/.default` request.
    #[must_use]
    pub fn default_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.default_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// A registered user and, for an agent user, the agent identity that owns it.
#[derive(Debug, Clone)]
pub(crate) struct RegisteredUser {
    pub(crate) account: UserAccount,
    /// The client id of the owning agent identity (agent users only).
    pub(crate) agent: Option<String>,
}

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
    /// Agent identity blueprints (client ids, lower case).
    blueprints: BTreeSet<String>,
    /// Agent identity (lower case) → its blueprint's client id.
    agents: BTreeMap<String, String>,
    /// Users by object id (lower case).
    users: BTreeMap<String, RegisteredUser>,
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
            blueprints: BTreeSet::new(),
            agents: BTreeMap::new(),
            users: BTreeMap::new(),
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

    fn tenant_mut(&mut self, tenant: &str) -> Result<&mut Tenant, EmulatorError> {
        let key = self.resolve_key(tenant)?;
        self.tenants
            .get_mut(&key)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.to_owned()))
    }

    fn tenant_ref(&self, tenant: &str) -> Option<&Tenant> {
        let key = self.resolve_key(tenant).ok()?;
        self.tenants.get(&key)
    }

    /// Register `app` as an agent identity blueprint.
    pub(crate) fn add_blueprint(
        &mut self,
        tenant: &str,
        app: AppRegistration,
    ) -> Result<Arc<RegisteredApp>, EmulatorError> {
        let app = self.add_application(tenant, app)?;
        self.tenant_mut(tenant)?
            .blueprints
            .insert(app.client_id.to_ascii_lowercase());
        Ok(app)
    }

    /// Whether `client_id` is an agent identity blueprint of `tenant`.
    pub(crate) fn is_blueprint(&self, tenant: &str, client_id: &str) -> bool {
        self.tenant_ref(tenant)
            .is_some_and(|t| t.blueprints.contains(&client_id.to_ascii_lowercase()))
    }

    /// Register agent identity `agent` under blueprint `blueprint`.
    pub(crate) fn add_agent(
        &mut self,
        tenant: &str,
        blueprint: &str,
        agent: &str,
    ) -> Result<Arc<RegisteredApp>, EmulatorError> {
        let blueprint_id = self
            .tenant_ref(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.to_owned()))?
            .apps
            .get(&blueprint.to_ascii_lowercase())
            .map(|a| a.client_id.clone())
            .filter(|_| self.is_blueprint(tenant, blueprint))
            .ok_or_else(|| EmulatorError::UnknownBlueprint(blueprint.to_owned()))?;
        if self.is_blueprint(tenant, agent) {
            return Err(EmulatorError::InvalidClientId(agent.to_owned()));
        }
        let app = self.add_application(tenant, AppRegistration::new(agent))?;
        self.tenant_mut(tenant)?
            .agents
            .insert(agent.to_ascii_lowercase(), blueprint_id);
        Ok(app)
    }

    /// The blueprint client id of agent identity `agent`, if it is one.
    pub(crate) fn agent_blueprint(&self, tenant: &str, agent: &str) -> Option<String> {
        self.tenant_ref(tenant)?
            .agents
            .get(&agent.to_ascii_lowercase())
            .cloned()
    }

    /// Register a user (owned by agent identity `agent` for an agent user).
    pub(crate) fn add_user(
        &mut self,
        tenant: &str,
        agent: Option<&str>,
        user: UserAccount,
    ) -> Result<(), EmulatorError> {
        if user.object_id.trim().is_empty() || user.user_principal_name.trim().is_empty() {
            return Err(EmulatorError::InvalidUser(user.object_id));
        }
        let agent = match agent {
            Some(a) => Some(
                self.tenant_ref(tenant)
                    .ok_or_else(|| EmulatorError::UnknownTenant(tenant.to_owned()))?
                    .apps
                    .get(&a.to_ascii_lowercase())
                    .map(|app| app.client_id.clone())
                    .filter(|_| self.agent_blueprint(tenant, a).is_some())
                    .ok_or_else(|| EmulatorError::UnknownAgentIdentity(a.to_owned()))?,
            ),
            None => None,
        };
        self.tenant_mut(tenant)?.users.insert(
            user.object_id.to_ascii_lowercase(),
            RegisteredUser {
                account: user,
                agent,
            },
        );
        Ok(())
    }

    /// The user whose object id or user principal name is `id` (case-insensitive).
    pub(crate) fn user(&self, tenant: &str, id: &str) -> Option<RegisteredUser> {
        let t = self.tenant_ref(tenant)?;
        let key = id.to_ascii_lowercase();
        t.users
            .get(&key)
            .or_else(|| {
                t.users
                    .values()
                    .find(|u| u.account.user_principal_name.eq_ignore_ascii_case(id))
            })
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
