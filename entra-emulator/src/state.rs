//! The state every listener and every handle of one emulator shares.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::fault::{Fault, FaultTarget};
use crate::keys::{Pki, SigningKey};
use crate::log::{RecordedRequest, RequestLog};
use crate::managed_identity::{ImdsV2State, MiState};
use crate::registry::Registry;

/// Lock a mutex, ignoring poisoning (a panicked handler must not wedge the emulator).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a token is being issued for, as given to an [`ExtraClaimsHook`].
#[derive(Debug)]
#[non_exhaustive]
pub struct TokenContext<'a> {
    /// The tenant id (canonical, even when the request used a domain).
    pub tenant_id: &'a str,
    /// The client id of the application.
    pub client_id: &'a str,
    /// The resource (token audience).
    pub resource: &'a str,
    /// The grant type.
    pub grant_type: &'a str,
    /// How the client authenticated.
    pub credential: CredentialKind,
    /// The non-secret form fields of the request (e.g. `fmi_path`, `client_session`).
    pub public_form: Vec<(&'a str, &'a str)>,
}

impl TokenContext<'_> {
    /// The value of non-secret form field `name`.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.public_form
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// How a client authenticated at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialKind {
    /// A client secret.
    ClientSecret,
    /// A certificate-signed client assertion.
    Certificate {
        /// The `x5t#S256` of the certificate.
        thumbprint_sha256: String,
    },
    /// A T1 token of the agent identity's blueprint (agent identities only).
    AgentBlueprintToken {
        /// The blueprint's client id (the T1's `azp`).
        blueprint_client_id: String,
    },
    /// A federated assertion from an external issuer, or a managed identity token of this
    /// emulator.
    Federated {
        /// The assertion's `iss`.
        issuer: String,
        /// The assertion's `sub`.
        subject: String,
    },
}

/// Adds claims to the access tokens an emulator issues; the claims it returns are merged over
/// the standard ones (agent identity claims are built in; this is for tests of anything else).
pub type ExtraClaimsHook = Arc<dyn Fn(&TokenContext<'_>) -> Map<String, Value> + Send + Sync>;

/// Runtime settings (changeable while the emulator runs).
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) token_lifetime: Duration,
    pub(crate) refresh_in: Option<Duration>,
    pub(crate) expires_in_as_string: bool,
    pub(crate) extra_claims: Option<ExtraClaimsHook>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("token_lifetime", &self.token_lifetime)
            .field("refresh_in", &self.refresh_in)
            .field("expires_in_as_string", &self.expires_in_as_string)
            .field("extra_claims", &self.extra_claims.is_some())
            .finish()
    }
}

/// The base URLs of the listeners.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    pub(crate) https: String,
    pub(crate) http: String,
    pub(crate) https_port: u16,
    pub(crate) http_port: u16,
    /// The base URL of the mutual-TLS (IMDSv2 token) listener.
    pub(crate) mtls: String,
    pub(crate) server_names: Vec<String>,
}

/// The state shared by the listeners and the [`Emulator`](crate::Emulator) handle.
pub(crate) struct Shared {
    pub(crate) urls: Urls,
    pub(crate) signing: SigningKey,
    pub(crate) pki: Pki,
    pub(crate) clock: Clock,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) settings: Mutex<Settings>,
    pub(crate) mi: MiState,
    pub(crate) imds_v2: ImdsV2State,
    log: Mutex<RequestLog>,
    faults: Mutex<Vec<Fault>>,
    /// client id (lower case) → jti → expiry (unix seconds).
    seen_jti: Mutex<HashMap<String, HashMap<String, u64>>>,
    /// The refresh tokens issued with user tokens, by value.
    pub(crate) refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
}

/// What a refresh token issued with a user token stands for.
#[derive(Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) user_object_id: String,
    /// Issued by `user_fic` (the refreshed token is an agent user token again).
    pub(crate) agent_user: bool,
    /// The `scope` of the original request.
    pub(crate) scope: String,
    pub(crate) expires: u64,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("urls", &self.urls)
            .field("signing", &self.signing)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        urls: Urls,
        signing: SigningKey,
        pki: Pki,
        clock: Clock,
        settings: Settings,
        log_capacity: usize,
        mi: MiState,
    ) -> Self {
        Shared {
            urls,
            signing,
            pki,
            clock,
            registry: Mutex::new(Registry::new()),
            settings: Mutex::new(settings),
            mi,
            imds_v2: ImdsV2State::default(),
            log: Mutex::new(RequestLog::new(log_capacity)),
            faults: Mutex::new(Vec::new()),
            seen_jti: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub(crate) fn now_unix(&self) -> u64 {
        self.clock.unix_now()
    }

    pub(crate) fn issuer(&self, tenant_id: &str) -> String {
        format!("{}/{tenant_id}/v2.0", self.urls.https)
    }

    /// Sign `claims` as an RS256 JWT with the emulator key (header `typ`, `kid`, `x5t`).
    pub(crate) fn sign(
        &self,
        claims: &Map<String, Value>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.signing.kid().to_owned());
        header.x5t = Some(self.signing.x5t().to_owned());
        jsonwebtoken::encode(&header, claims, self.signing.encoding_key())
    }

    pub(crate) fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    // ---- request log ----

    pub(crate) fn log_start(&self, entry: RecordedRequest) -> u64 {
        lock(&self.log).start(entry)
    }

    pub(crate) fn log_finish(&self, id: u64, status: Option<u16>, fault: Option<&str>) {
        lock(&self.log).finish(id, status, fault);
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).all()
    }

    pub(crate) fn count_requests(&self, predicate: impl Fn(&RecordedRequest) -> bool) -> usize {
        lock(&self.log).count(predicate)
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    // ---- faults ----

    pub(crate) fn add_fault(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn faults(&self) -> Vec<Fault> {
        lock(&self.faults).clone()
    }

    /// The first fault matching `target`, with its count decremented (and removed at zero).
    pub(crate) fn take_fault(&self, target: &FaultTarget<'_>) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(|f| f.matcher.matches(target))?;
        let fault = faults.get_mut(index)?;
        fault.times = fault.times.saturating_sub(1);
        let applied = fault.clone();
        if fault.times == 0 {
            faults.remove(index);
        }
        Some(applied)
    }

    // ---- replay protection ----

    /// Record `jti` for `client_id`; false if it was already seen (and has not expired).
    pub(crate) fn remember_jti(&self, client_id: &str, jti: &str, expires: u64) -> bool {
        let now = self.now_unix();
        let mut seen = lock(&self.seen_jti);
        let per_client = seen.entry(client_id.to_ascii_lowercase()).or_default();
        // Forget assertions that can no longer be replayed (expired well past any skew).
        per_client.retain(|_, exp| exp.saturating_add(3600) > now);
        if per_client.contains_key(jti) {
            return false;
        }
        per_client.insert(jti.to_owned(), expires);
        true
    }
}

/// A random id like Entra's `uti`: 16 random bytes, base64url without padding.
pub(crate) fn random_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}
