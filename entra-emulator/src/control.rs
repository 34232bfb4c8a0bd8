//! Operations on an emulator's registrations and settings, shared by the Rust API
//! ([`Emulator`](crate::Emulator)) and the admin HTTP API.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::EmulatorError;
use crate::keys::ExternalIssuerKey;
use crate::registry::{AppRegistration, ExternalIssuer, UserAccount, valid_issuer_name};
use crate::state::{Shared, lock};

/// A tenant to register, with its domains and applications (the body of
/// `POST /_emulator/tenants`, and an entry of a [`Seed`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantSeed {
    /// The tenant id (a GUID in real life).
    pub tenant_id: String,
    /// Domain names that also name the tenant (e.g. `contoso.onmicrosoft.com`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Applications to register in it.
    #[serde(default)]
    pub applications: Vec<AppRegistration>,
    /// Agent identity blueprints to register in it.
    #[serde(default)]
    pub agent_blueprints: Vec<AppRegistration>,
    /// Agent identities: `{"blueprint_client_id": "...", "agent_client_id": "..."}`.
    #[serde(default)]
    pub agent_identities: Vec<AgentIdentitySeed>,
    /// Agent users: a [`UserAccount`] plus `"agent_client_id"`.
    #[serde(default)]
    pub agent_users: Vec<AgentUserSeed>,
    /// Plain (human) users.
    #[serde(default)]
    pub users: Vec<UserAccount>,
}

/// An agent identity under a blueprint (admin API body and seed entry).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentIdentitySeed {
    /// The blueprint's client id.
    pub blueprint_client_id: String,
    /// The agent identity's client id.
    pub agent_client_id: String,
}

/// An agent user of an agent identity (admin API body and seed entry).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct AgentUserSeed {
    /// The owning agent identity's client id.
    pub agent_client_id: String,
    /// The user.
    #[serde(flatten)]
    pub user: UserAccount,
}

impl TenantSeed {
    /// A tenant with no domains or applications.
    pub fn new(tenant_id: impl Into<String>) -> Self {
        TenantSeed {
            tenant_id: tenant_id.into(),
            domains: Vec::new(),
            applications: Vec::new(),
            agent_blueprints: Vec::new(),
            agent_identities: Vec::new(),
            agent_users: Vec::new(),
            users: Vec::new(),
        }
    }
}

/// Settings changed through `POST /_emulator/settings` or a [`Seed`]; absent fields are left
/// alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SettingsUpdate {
    /// Access token lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime_secs: Option<u64>,
    /// `refresh_in` in seconds; 0 stops sending it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_in_secs: Option<u64>,
    /// Send `expires_in` (and friends) as strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_as_string: Option<bool>,
    /// Serve IMDSv2 (`false`: an IMDSv1-only VM, `getplatformmetadata` answers 404).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds_v2_enabled: Option<bool>,
    /// The lifetime of the certificates IMDSv2 `issuecredential` signs, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_certificate_lifetime_secs: Option<u64>,
    /// The `token_type` the mutual-TLS token endpoint answers instead of `mtls_pop`: `""`
    /// omits it, `"default"` restores the normal behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_token_type_override: Option<String>,
    /// Make the next n TLS handshakes of the mutual-TLS listener fail (reads back the number
    /// still pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_mtls_handshakes: Option<u32>,
    /// `true` revokes every IMDSv2 certificate issued so far (an action; never read back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_bound_certificates: Option<bool>,
}

/// Everything to register at start (the `--seed` file of the binary, or
/// `POST /_emulator/seed`).
///
/// ```json
/// {
///   "tenants": [{
///     "tenant_id": "11111111-1111-1111-1111-111111111111",
///     "domains": ["contoso.example"],
///     "applications": [{"client_id": "22222222-2222-2222-2222-222222222222",
///                       "client_secrets": ["s3cr3t"]}]
///   }],
///   "resources": ["api://my-api"],
///   "external_issuers": ["github"],
///   "settings": {"token_lifetime_secs": 3600}
/// }
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Seed {
    /// Tenants (with their applications).
    #[serde(default)]
    pub tenants: Vec<TenantSeed>,
    /// Extra resource URIs.
    #[serde(default)]
    pub resources: Vec<String>,
    /// External issuer names to create.
    #[serde(default)]
    pub external_issuers: Vec<String>,
    /// Settings.
    #[serde(default)]
    pub settings: Option<SettingsUpdate>,
}

impl Seed {
    /// Parse a seed document.
    pub fn from_json(text: &str) -> Result<Seed, EmulatorError> {
        serde_json::from_str(text).map_err(|e| EmulatorError::InvalidSeed(describe_json_error(&e)))
    }
}

/// A serde_json error described without echoing the input (which may hold secrets).
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let safe = message.starts_with("missing field")
        || message.starts_with("unknown field")
        || message.starts_with("unknown variant")
        || message.starts_with("duplicate field");
    let what = if safe {
        message
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        match e.classify() {
            serde_json::error::Category::Io => "i/o error".to_owned(),
            serde_json::error::Category::Syntax => "not valid json".to_owned(),
            serde_json::error::Category::Data => "a value has the wrong type or form".to_owned(),
            serde_json::error::Category::Eof => "unexpected end of json".to_owned(),
        }
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

impl Shared {
    pub(crate) fn add_tenant(&self, tenant_id: &str) -> Result<(), EmulatorError> {
        lock(&self.registry).add_tenant(tenant_id)
    }

    pub(crate) fn add_tenant_domain(
        &self,
        tenant: &str,
        domain: &str,
    ) -> Result<(), EmulatorError> {
        lock(&self.registry).add_domain(tenant, domain)
    }

    pub(crate) fn add_tenant_seed(&self, seed: &TenantSeed) -> Result<(), EmulatorError> {
        self.add_tenant(&seed.tenant_id)?;
        for domain in &seed.domains {
            self.add_tenant_domain(&seed.tenant_id, domain)?;
        }
        for app in &seed.applications {
            self.add_application(&seed.tenant_id, app.clone())?;
        }
        for app in &seed.agent_blueprints {
            self.add_agent_blueprint(&seed.tenant_id, app.clone())?;
        }
        for agent in &seed.agent_identities {
            self.add_agent_identity(
                &seed.tenant_id,
                &agent.blueprint_client_id,
                &agent.agent_client_id,
            )?;
        }
        for user in &seed.users {
            self.add_user(&seed.tenant_id, None, user.clone())?;
        }
        for user in &seed.agent_users {
            self.add_user(
                &seed.tenant_id,
                Some(&user.agent_client_id),
                user.user.clone(),
            )?;
        }
        Ok(())
    }

    /// Register an agent identity blueprint; returns its service principal object id.
    pub(crate) fn add_agent_blueprint(
        &self,
        tenant: &str,
        app: AppRegistration,
    ) -> Result<String, EmulatorError> {
        Ok(lock(&self.registry)
            .add_blueprint(tenant, app)?
            .object_id
            .clone())
    }

    /// Register an agent identity under `blueprint`; returns its object id.
    pub(crate) fn add_agent_identity(
        &self,
        tenant: &str,
        blueprint: &str,
        agent: &str,
    ) -> Result<String, EmulatorError> {
        Ok(lock(&self.registry)
            .add_agent(tenant, blueprint, agent)?
            .object_id
            .clone())
    }

    /// Register a user (an agent user of `agent` when given).
    pub(crate) fn add_user(
        &self,
        tenant: &str,
        agent: Option<&str>,
        user: UserAccount,
    ) -> Result<(), EmulatorError> {
        lock(&self.registry).add_user(tenant, agent, user)
    }

    /// A signed delegated access token of a registered user.
    pub(crate) fn mint_user_token(
        &self,
        tenant: &str,
        user_object_id: &str,
        client_id: &str,
        audience: &str,
        scopes: &str,
    ) -> Result<String, EmulatorError> {
        let (tenant_id, user) = {
            let registry = lock(&self.registry);
            let tenant_id = registry
                .tenant(tenant)
                .ok_or_else(|| EmulatorError::UnknownTenant(tenant.to_owned()))?
                .id;
            let user = registry
                .user(&tenant_id, user_object_id)
                .ok_or_else(|| EmulatorError::UnknownUser(user_object_id.to_owned()))?;
            (tenant_id, user)
        };
        let claims = crate::entra::user_claims(
            self,
            &tenant_id,
            &user.account,
            audience,
            scopes,
            client_id,
            "1",
        );
        self.sign(&claims).map_err(EmulatorError::Signing)
    }

    /// Register `app`; returns its service principal object id.
    pub(crate) fn add_application(
        &self,
        tenant: &str,
        app: AppRegistration,
    ) -> Result<String, EmulatorError> {
        Ok(lock(&self.registry)
            .add_application(tenant, app)?
            .object_id
            .clone())
    }

    /// `identity` with its tenant in canonical form; an error when the tenant is unknown.
    pub(crate) fn canonical_identity(
        &self,
        mut identity: crate::ManagedIdentity,
    ) -> Result<crate::ManagedIdentity, EmulatorError> {
        let tenant = lock(&self.registry)
            .tenant(&identity.tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(identity.tenant.clone()))?;
        identity.tenant = tenant.id;
        Ok(identity)
    }

    pub(crate) fn add_resource(&self, uri: &str) -> Result<(), EmulatorError> {
        lock(&self.registry).add_resource(uri)
    }

    pub(crate) fn external_issuer_url(&self, name: &str) -> String {
        format!("{}/_emulator/issuers/{name}", self.urls.https)
    }

    /// Create (or return the existing) external issuer `name`; returns its issuer URL.
    pub(crate) fn add_external_issuer(&self, name: &str) -> Result<String, EmulatorError> {
        if !valid_issuer_name(name) {
            return Err(EmulatorError::InvalidIssuerName(name.to_owned()));
        }
        if let Some(existing) = lock(&self.registry).issuer(name) {
            return Ok(existing.url.clone());
        }
        let key = ExternalIssuerKey::generate()?;
        let url = self.external_issuer_url(name);
        let mut registry = lock(&self.registry);
        if let Some(existing) = registry.issuer(name) {
            return Ok(existing.url.clone());
        }
        registry.add_issuer(ExternalIssuer {
            name: name.to_owned(),
            url: url.clone(),
            key,
        });
        Ok(url)
    }

    pub(crate) fn mint_external_token_with_claims(
        &self,
        issuer_name: &str,
        mut claims: Map<String, Value>,
    ) -> Result<String, EmulatorError> {
        let issuer = lock(&self.registry)
            .issuer(issuer_name)
            .ok_or_else(|| EmulatorError::UnknownIssuer(issuer_name.to_owned()))?;
        claims
            .entry("iss")
            .or_insert_with(|| Value::String(issuer.url.clone()));
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(issuer.key.kid.clone());
        jsonwebtoken::encode(&header, &Value::Object(claims), &issuer.key.encoding)
            .map_err(EmulatorError::Signing)
    }

    pub(crate) fn mint_external_token(
        &self,
        issuer_name: &str,
        subject: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, EmulatorError> {
        let now = self.now_unix();
        let claims = json!({
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime.as_secs(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        self.mint_external_token_with_claims(
            issuer_name,
            claims.as_object().cloned().unwrap_or_default(),
        )
    }

    pub(crate) fn external_issuer_jwks(&self, name: &str) -> Option<Value> {
        let issuer = lock(&self.registry).issuer(name)?;
        Some(json!({ "keys": [issuer.key.jwk()] }))
    }

    pub(crate) fn update_settings(&self, update: &SettingsUpdate) {
        let mut settings = lock(&self.settings);
        if let Some(secs) = update.token_lifetime_secs {
            settings.token_lifetime = Duration::from_secs(secs.max(1));
        }
        if let Some(secs) = update.refresh_in_secs {
            settings.refresh_in = (secs > 0).then(|| Duration::from_secs(secs));
        }
        if let Some(as_string) = update.expires_in_as_string {
            settings.expires_in_as_string = as_string;
        }
        drop(settings);
        if let Some(enabled) = update.imds_v2_enabled {
            self.imds_v2.set_enabled(enabled);
        }
        if let Some(secs) = update.bound_certificate_lifetime_secs {
            self.imds_v2.set_cert_lifetime(Duration::from_secs(secs));
        }
        if let Some(token_type) = &update.mtls_token_type_override {
            self.imds_v2
                .set_token_type_override((token_type != "default").then(|| token_type.clone()));
        }
        if let Some(n) = update.reject_mtls_handshakes {
            self.imds_v2.reject_handshakes(n);
        }
        if update.revoke_bound_certificates == Some(true) {
            self.imds_v2.revoke_all();
        }
    }

    pub(crate) fn settings_view(&self) -> SettingsUpdate {
        let settings = lock(&self.settings);
        SettingsUpdate {
            token_lifetime_secs: Some(settings.token_lifetime.as_secs()),
            refresh_in_secs: Some(settings.refresh_in.map_or(0, |d| d.as_secs())),
            expires_in_as_string: Some(settings.expires_in_as_string),
            imds_v2_enabled: Some(self.imds_v2.enabled()),
            bound_certificate_lifetime_secs: Some(self.imds_v2.cert_lifetime().as_secs()),
            mtls_token_type_override: Some(
                self.imds_v2
                    .token_type_override()
                    .unwrap_or_else(|| "default".to_owned()),
            ),
            reject_mtls_handshakes: Some(self.imds_v2.pending_handshake_rejections()),
            revoke_bound_certificates: None,
        }
    }

    pub(crate) fn apply_seed(&self, seed: &Seed) -> Result<(), EmulatorError> {
        for tenant in &seed.tenants {
            self.add_tenant_seed(tenant)?;
        }
        for resource in &seed.resources {
            self.add_resource(resource)?;
        }
        for issuer in &seed.external_issuers {
            self.add_external_issuer(issuer)?;
        }
        if let Some(settings) = &seed.settings {
            self.update_settings(settings);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_do_not_echo_values() {
        let err = serde_json::from_str::<SettingsUpdate>(r#"{"token_lifetime_secs":"hunter2"}"#)
            .err()
            .map(|e| describe_json_error(&e))
            .unwrap_or_default();
        assert!(!err.contains("hunter2"), "{err}");
        let err = Seed::from_json(r#"{"tenants":[{}]}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("missing field `tenant_id`"), "{err}");
    }
}
