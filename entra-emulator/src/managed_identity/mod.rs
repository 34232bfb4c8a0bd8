//! The managed identity endpoint family: IMDS v1, App Service, Service Fabric, Azure Arc,
//! Cloud Shell and Azure Machine Learning, one file per source.
//!
//! One set of identities (a system-assigned one and any number of user-assigned ones) serves
//! every source. Every source issues the same access token (see [`mint`]); they differ in how a
//! request is authenticated, how an identity is selected and how the answer is shaped.
//!
//! Error bodies: IMDS, Azure Arc and Cloud Shell answer `{"error", "error_description"}`; App
//! Service, Service Fabric and Azure Machine Learning answer `{"error": {"code", "message"}}`.

mod app_service;
mod arc;
mod cloud_shell;
mod imds;
mod imds_v2;
mod machine_learning;
mod service_fabric;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aadsts::json_response;
use crate::error::EmulatorError;
use crate::state::{Shared, lock, random_id};

pub(crate) use imds_v2::{ImdsV2State, mtls_token};

/// The default lifetime of managed identity tokens (24 hours, as Azure issues them).
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The default size of an Azure Arc challenge key file, in bytes.
pub(crate) const DEFAULT_ARC_KEY_SIZE: usize = 32;

/// A managed identity: the service principal a workload's tokens are issued for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManagedIdentity {
    /// The tenant the identity lives in (it must be registered).
    pub tenant: String,
    /// The client (application) id: `appid`/`azp` of its tokens.
    pub client_id: String,
    /// The service principal object id: `oid`/`sub` of its tokens.
    pub object_id: String,
    /// The Azure resource id (`/subscriptions/.../userAssignedIdentities/...` for a
    /// user-assigned identity): `xms_mirid` of its tokens.
    pub resource_id: String,
}

impl ManagedIdentity {
    /// An identity of `tenant` with these ids.
    pub fn new(
        tenant: impl Into<String>,
        client_id: impl Into<String>,
        object_id: impl Into<String>,
        resource_id: impl Into<String>,
    ) -> Self {
        ManagedIdentity {
            tenant: tenant.into(),
            client_id: client_id.into(),
            object_id: object_id.into(),
            resource_id: resource_id.into(),
        }
    }
}

/// How a request selects a user-assigned identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    Client(String),
    Object(String),
    Resource(String),
}

/// A query parameter that selects an identity, and what it selects by.
pub(crate) type SelectorParam = (&'static str, fn(String) -> Selector);

/// The changeable managed identity state.
#[derive(Debug)]
struct MiInner {
    system: Option<ManagedIdentity>,
    user: Vec<ManagedIdentity>,
    lifetime: Duration,
    app_service_date: bool,
    arc_dir: PathBuf,
    arc_key_size: usize,
    /// The Arc key files written so far and their contents.
    arc_keys: Vec<(PathBuf, String)>,
}

/// Everything the managed identity sources share: the identities, the secrets the sources
/// check, the Service Fabric listener's address and the Azure Arc key files.
pub(crate) struct MiState {
    pub(crate) app_service_secret: String,
    pub(crate) service_fabric_secret: String,
    pub(crate) ml_secret: String,
    pub(crate) service_fabric_url: String,
    pub(crate) service_fabric_thumbprint: String,
    /// The temporary directory created at start (removed when the emulator is dropped).
    default_arc_dir: PathBuf,
    inner: Mutex<MiInner>,
}

impl std::fmt::Debug for MiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiState")
            .field("service_fabric_url", &self.service_fabric_url)
            .field("service_fabric_thumbprint", &self.service_fabric_thumbprint)
            .finish_non_exhaustive()
    }
}

/// A random secret: 32 hex digits.
fn random_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `len` random hex digits.
fn random_hex(len: usize) -> String {
    let mut text = String::with_capacity(len + 32);
    while text.len() < len {
        text.push_str(&random_secret());
    }
    text.truncate(len);
    text
}

impl MiState {
    /// Fresh secrets and a fresh temporary directory for Arc key files.
    pub(crate) fn new(
        service_fabric_url: String,
        service_fabric_thumbprint: String,
    ) -> Result<MiState, EmulatorError> {
        let dir = std::env::temp_dir().join(format!("entra-emulator-arc-{}", random_secret()));
        std::fs::create_dir_all(&dir).map_err(|source| EmulatorError::Io {
            action: "create the azure arc key directory",
            path: dir.display().to_string(),
            source,
        })?;
        Ok(MiState {
            app_service_secret: random_secret(),
            service_fabric_secret: random_secret(),
            ml_secret: random_secret(),
            service_fabric_url,
            service_fabric_thumbprint,
            default_arc_dir: dir.clone(),
            inner: Mutex::new(MiInner {
                system: None,
                user: Vec::new(),
                lifetime: DEFAULT_LIFETIME,
                app_service_date: false,
                arc_dir: dir,
                arc_key_size: DEFAULT_ARC_KEY_SIZE,
                arc_keys: Vec::new(),
            }),
        })
    }

    pub(crate) fn set_system(&self, identity: ManagedIdentity) {
        lock(&self.inner).system = Some(identity);
    }

    /// Add a user-assigned identity, replacing one with the same client id.
    pub(crate) fn add_user(&self, identity: ManagedIdentity) {
        let mut inner = lock(&self.inner);
        inner
            .user
            .retain(|i| !i.client_id.eq_ignore_ascii_case(&identity.client_id));
        inner.user.push(identity);
    }

    pub(crate) fn set_lifetime(&self, lifetime: Duration) {
        lock(&self.inner).lifetime = lifetime.max(Duration::from_secs(1));
    }

    pub(crate) fn lifetime(&self) -> Duration {
        lock(&self.inner).lifetime
    }

    pub(crate) fn set_app_service_date(&self, as_date: bool) {
        lock(&self.inner).app_service_date = as_date;
    }

    pub(crate) fn app_service_date(&self) -> bool {
        lock(&self.inner).app_service_date
    }

    pub(crate) fn set_arc_dir(&self, dir: PathBuf) {
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        lock(&self.inner).arc_dir = dir;
    }

    pub(crate) fn arc_dir(&self) -> PathBuf {
        lock(&self.inner).arc_dir.clone()
    }

    pub(crate) fn set_arc_key_size(&self, size: usize) {
        lock(&self.inner).arc_key_size = size;
    }

    /// Write a new Arc key file and return its absolute path.
    pub(crate) fn new_arc_key(&self) -> std::io::Result<PathBuf> {
        let (dir, size) = {
            let inner = lock(&self.inner);
            (inner.arc_dir.clone(), inner.arc_key_size)
        };
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.key", random_secret()));
        let content = random_hex(size);
        std::fs::write(&path, &content)?;
        lock(&self.inner).arc_keys.push((path.clone(), content));
        Ok(path)
    }

    /// Whether `content` is the content of a key file this emulator wrote.
    pub(crate) fn is_arc_key(&self, content: &str) -> bool {
        lock(&self.inner)
            .arc_keys
            .iter()
            .any(|(_, k)| constant_time_eq(k.as_bytes(), content.as_bytes()))
    }

    /// The identity a request selects: the system-assigned one without a selector, else the
    /// user-assigned one the selector names.
    pub(crate) fn find(&self, selector: Option<&Selector>) -> Option<ManagedIdentity> {
        let inner = lock(&self.inner);
        match selector {
            None => inner.system.clone(),
            Some(selector) => inner
                .user
                .iter()
                .find(|i| match selector {
                    Selector::Client(id) => i.client_id.eq_ignore_ascii_case(id),
                    Selector::Object(id) => i.object_id.eq_ignore_ascii_case(id),
                    Selector::Resource(id) => i.resource_id.eq_ignore_ascii_case(id),
                })
                .cloned(),
        }
    }

    /// The identity (system- or user-assigned) whose client id is `client_id`.
    pub(crate) fn find_by_client_id(&self, client_id: &str) -> Option<ManagedIdentity> {
        let inner = lock(&self.inner);
        inner
            .system
            .iter()
            .chain(inner.user.iter())
            .find(|i| i.client_id.eq_ignore_ascii_case(client_id))
            .cloned()
    }

    /// Whether `selector` names the system-assigned identity by its client id, which is how
    /// Azure Machine Learning asks for it (`clientid=$DEFAULT_IDENTITY_CLIENT_ID`).
    pub(crate) fn names_system_by_client_id(&self, selector: &Selector) -> bool {
        let inner = lock(&self.inner);
        match (selector, &inner.system) {
            (Selector::Client(id), Some(system)) => system.client_id.eq_ignore_ascii_case(id),
            _ => false,
        }
    }

    /// Remove the key files written and the temporary directory created at start.
    pub(crate) fn cleanup(&self) {
        let keys = std::mem::take(&mut lock(&self.inner).arc_keys);
        for (path, _) in keys {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_dir_all(&self.default_arc_dir);
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The routes of the managed identity sources served on the main listeners.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/metadata/identity/oauth2/token", get(imds::token))
        .route(
            "/metadata/identity/getplatformmetadata",
            get(imds_v2::platform_metadata),
        )
        .route(
            "/metadata/identity/issuecredential",
            post(imds_v2::issue_credential),
        )
        .route("/msi/token", get(app_service::token))
        .route("/arc/metadata/identity/oauth2/token", get(arc::token))
        .route("/cloudshell/token", post(cloud_shell::token))
        .route("/ml/token", get(machine_learning::token))
}

/// The routes of the Service Fabric listener.
pub(crate) fn service_fabric_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/metadata/identity/oauth2/token",
            get(service_fabric::token),
        )
        .fallback(service_fabric::not_found)
}

// ---- shared request handling ----

/// Why a request is refused, rendered in the shape of its source.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    /// The OAuth-style `error` (`{"error", "error_description"}` shape).
    error: &'static str,
    /// The `code` of the `{"error": {"code", "message"}}` shape.
    code: &'static str,
    message: String,
}

impl Problem {
    fn new(
        status: StatusCode,
        error: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "BadRequest",
            message,
        )
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Unauthorized",
            message,
        )
    }

    pub(crate) fn identity_not_found() -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "IdentityNotFound",
            "Identity not found",
        )
    }

    pub(crate) fn missing_metadata() -> Self {
        Problem::bad_request("Required metadata header not specified")
    }

    fn unknown_resource(resource: &str, tenant: &str) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            "InvalidResource",
            format!(
                "AADSTS500011: The resource principal named {} was not found in the tenant named {tenant}.",
                echo(resource)
            ),
        )
    }

    fn internal(message: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "InternalServerError",
            message,
        )
    }

    /// `{"error", "error_description"}`.
    pub(crate) fn oauth(&self) -> Response {
        json_response(
            self.status,
            &json!({ "error": self.error, "error_description": self.message }),
            None,
        )
    }

    /// `{"error": {"code", "message"}}`.
    pub(crate) fn coded(&self) -> Response {
        json_response(
            self.status,
            &json!({ "error": { "code": self.code, "message": self.message } }),
            None,
        )
    }
}

/// Request text cut to a length fit for an error message.
fn echo(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Query (or form) parameters.
#[derive(Debug)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn query(uri: &http::Uri) -> Params {
        Params::parse(uri.query().unwrap_or_default().as_bytes())
    }

    pub(crate) fn parse(text: &[u8]) -> Params {
        Params(
            url::form_urlencoded::parse(text)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first non-empty value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Require `api-version` to be one of `accepted`.
    pub(crate) fn api_version(&self, accepted: &[&str]) -> Result<(), Problem> {
        match self.get("api-version") {
            None => Err(Problem::bad_request(
                "Required query variable 'api-version' is missing",
            )),
            Some(v) if accepted.contains(&v) => Ok(()),
            Some(v) => Err(Problem::bad_request(format!(
                "api-version '{}' is not supported: use {}",
                echo(v),
                accepted.join(" or ")
            ))),
        }
    }

    /// The required `resource` parameter.
    pub(crate) fn resource(&self) -> Result<&str, Problem> {
        self.get("resource")
            .ok_or_else(|| Problem::bad_request("Required query variable 'resource' is missing"))
    }

    /// The identity selector among `names` (parameter name and what it selects by); more than
    /// one is refused.
    pub(crate) fn selector(&self, names: &[SelectorParam]) -> Result<Option<Selector>, Problem> {
        let mut found = names
            .iter()
            .filter_map(|(name, make)| self.get(name).map(|v| make(v.to_owned())));
        let first = found.next();
        if found.next().is_some() {
            let names: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            return Err(Problem::bad_request(format!(
                "Only one of {} may be specified",
                names.join(", ")
            )));
        }
        Ok(first)
    }

    /// Refuse any of `names` (sources that serve the system-assigned identity only).
    pub(crate) fn refuse(&self, names: &[&str], source: &str) -> Result<(), Problem> {
        match names.iter().find(|n| self.get(n).is_some()) {
            Some(name) => Err(Problem::bad_request(format!(
                "{source} supports the system-assigned identity only: '{name}' is not accepted"
            ))),
            None => Ok(()),
        }
    }
}

/// Whether the `Metadata: true` header is present.
pub(crate) fn has_metadata(headers: &HeaderMap) -> bool {
    headers
        .get("metadata")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Whether header `name` equals `secret` (compared in constant time).
pub(crate) fn has_secret(headers: &HeaderMap, name: &str, secret: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| constant_time_eq(v.as_bytes(), secret.as_bytes()))
}

/// An issued token and its times.
#[derive(Debug)]
pub(crate) struct Minted {
    pub(crate) access_token: String,
    pub(crate) now: u64,
    pub(crate) expires_on: u64,
    pub(crate) resource: String,
    pub(crate) client_id: String,
}

impl Minted {
    /// Seconds until expiry as IMDS reports them: one less than the lifetime (`86399` for
    /// 24 hours).
    pub(crate) fn expires_in(&self) -> u64 {
        self.expires_on.saturating_sub(self.now).saturating_sub(1)
    }
}

/// Select the identity and issue its token for `resource`, valid for the managed identity
/// token lifetime (or `max_lifetime` when shorter).
pub(crate) fn issue(
    shared: &Shared,
    selector: Option<&Selector>,
    resource: &str,
    max_lifetime: Option<Duration>,
) -> Result<Minted, Problem> {
    let identity = shared
        .mi
        .find(selector)
        .ok_or_else(Problem::identity_not_found)?;
    let tenant = lock(&shared.registry)
        .tenant(&identity.tenant)
        .map_or_else(|| identity.tenant.clone(), |t| t.id);
    if lock(&shared.registry).resource(&tenant, resource).is_none() {
        return Err(Problem::unknown_resource(resource, &tenant));
    }
    let mut lifetime = shared.mi.lifetime();
    if let Some(max) = max_lifetime {
        lifetime = lifetime.min(max);
    }
    mint(shared, &identity, &tenant, resource, lifetime)
}

/// Sign a managed identity access token.
fn mint(
    shared: &Shared,
    identity: &ManagedIdentity,
    tenant: &str,
    resource: &str,
    lifetime: Duration,
) -> Result<Minted, Problem> {
    mint_with(
        shared,
        identity,
        tenant,
        resource,
        lifetime,
        serde_json::Map::new(),
    )
}

/// Sign a managed identity access token with `extra` claims merged over the standard ones.
fn mint_with(
    shared: &Shared,
    identity: &ManagedIdentity,
    tenant: &str,
    resource: &str,
    lifetime: Duration,
    extra: serde_json::Map<String, Value>,
) -> Result<Minted, Problem> {
    let now = shared.now_unix();
    let expires_on = now + lifetime.as_secs().max(1);
    let mut claims = json!({
        "aud": resource,
        "iss": shared.issuer(tenant),
        "iat": now,
        "nbf": now,
        "exp": expires_on,
        "tid": tenant,
        "appid": identity.client_id,
        "azp": identity.client_id,
        "oid": identity.object_id,
        "sub": identity.object_id,
        "xms_mirid": identity.resource_id,
        "idtyp": "app",
        "ver": "1.0",
        "uti": random_id(),
    });
    if let Some(map) = claims.as_object_mut() {
        map.extend(extra);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(shared.signing.kid().to_owned());
    header.x5t = Some(shared.signing.x5t().to_owned());
    let access_token = jsonwebtoken::encode(&header, &claims, shared.signing.encoding_key())
        .map_err(|_| Problem::internal("could not sign the token"))?;
    Ok(Minted {
        access_token,
        now,
        expires_on,
        resource: resource.to_owned(),
        client_id: identity.client_id.clone(),
    })
}

/// A 200 JSON answer.
pub(crate) fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body, None)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn is_in(path: &Path, dir: &Path) -> bool {
        path.parent() == Some(dir)
    }

    #[test]
    fn selectors_find_user_assigned_identities_only() -> Result<(), EmulatorError> {
        let state = MiState::new(String::new(), String::new())?;
        let system = ManagedIdentity::new("t", "sys-client", "sys-object", "/sys");
        let user = ManagedIdentity::new("t", "u-client", "u-object", "/subscriptions/x/U");
        assert_eq!(state.find(None), None);
        state.set_system(system.clone());
        state.add_user(user.clone());
        assert_eq!(state.find(None), Some(system));
        let by = |s: Selector| state.find(Some(&s));
        assert_eq!(by(Selector::Client("U-CLIENT".into())), Some(user.clone()));
        assert_eq!(by(Selector::Object("u-object".into())), Some(user.clone()));
        assert_eq!(
            by(Selector::Resource("/subscriptions/X/u".into())),
            Some(user)
        );
        assert_eq!(by(Selector::Client("sys-client".into())), None);
        state.cleanup();
        Ok(())
    }

    #[test]
    fn arc_keys_are_written_and_recognized() -> Result<(), Box<dyn std::error::Error>> {
        let state = MiState::new(String::new(), String::new())?;
        state.set_arc_key_size(5000);
        let path = state.new_arc_key()?;
        assert!(path.is_absolute());
        assert!(is_in(&path, &state.arc_dir()));
        let content = std::fs::read_to_string(&path)?;
        assert_eq!(content.len(), 5000);
        assert!(state.is_arc_key(&content));
        assert!(!state.is_arc_key("nope"));
        state.cleanup();
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn params_refuse_two_selectors() {
        let params = Params::parse(b"client_id=a&object_id=b");
        let names: &[SelectorParam] = &[
            ("client_id", Selector::Client),
            ("object_id", Selector::Object),
        ];
        assert!(params.selector(names).is_err());
        let params = Params::parse(b"object_id=b");
        assert_eq!(
            params.selector(names).ok().flatten(),
            Some(Selector::Object("b".into()))
        );
    }
}
