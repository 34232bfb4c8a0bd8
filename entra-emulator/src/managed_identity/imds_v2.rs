//! IMDSv2: managed identity tokens bound to a certificate by mutual-TLS proof-of-possession.
//!
//! 1. `GET /metadata/identity/getplatformmetadata?cred-api-version=2.0[&selector]`,
//!    `Metadata: true`: the identity's client and tenant ids, the VM's `cuId` and the
//!    attestation endpoint (404 when IMDSv2 is switched off: an IMDSv1-only VM).
//! 2. `POST /metadata/identity/issuecredential?cred-api-version=2.0[&selector]`,
//!    `Metadata: true`, JSON `{"csr", "attestation_token"}`: the CSR (RSA 2048, RSASSA-PSS
//!    SHA-256, subject `CN=<client id>, DC=<tenant id>`, the cuId attribute) is checked and a
//!    client certificate for its key is signed by the emulator CA.
//! 3. `POST {mtls_url}/{tenant}/oauth2/v2.0/token` over mutual TLS with that certificate:
//!    client credentials answered with a `mtls_pop` token carrying `cnf.x5t#S256`.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_lc_rs::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use entra_claims::Claims;
use http::{HeaderMap, StatusCode, Uri};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose,
    SerialNumber,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_DOMAIN_COMPONENT, OID_NIST_HASH_SHA256, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS,
    OID_PKCS1_SHA256WITHRSA, OID_X509_COMMON_NAME,
};
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::SignatureAlgorithm;

use super::{
    ManagedIdentity, Params, Problem, Selector, SelectorParam, has_metadata, mint_with, ok,
};
use crate::aadsts::Aadsts;
use crate::server::{PeerCertificate, parse_form};
use crate::state::{Shared, lock};

/// The only `cred-api-version` accepted.
const CRED_API_VERSION: &str = "2.0";

/// The OID of the CSR attribute carrying the cuId JSON.
pub(crate) const CU_ID_OID: &str = "1.3.6.1.4.1.311.90.2.10";

/// The default lifetime of the certificates `issuecredential` signs (7 days).
pub(crate) const DEFAULT_CERT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The identity selectors of IMDSv2 (`msi_res_id` accepted as IMDS v1 spells it).
const SELECTORS: &[SelectorParam] = &[
    ("client_id", Selector::Client),
    ("object_id", Selector::Object),
    ("mi_res_id", Selector::Resource),
    ("msi_res_id", Selector::Resource),
];

/// A certificate `issuecredential` signed.
#[derive(Debug)]
struct Issued {
    sha256: Vec<u8>,
    client_id: String,
    revoked: bool,
}

#[derive(Debug)]
struct Inner {
    enabled: bool,
    vm_id: String,
    vmss_id: Option<String>,
    cert_lifetime: Duration,
    token_type_override: Option<String>,
    issued: Vec<Issued>,
}

/// The IMDSv2 state: switches, the VM's ids and the certificates issued.
#[derive(Debug)]
pub(crate) struct ImdsV2State {
    inner: Mutex<Inner>,
    reject_handshakes: AtomicU32,
}

impl Default for ImdsV2State {
    fn default() -> Self {
        ImdsV2State {
            inner: Mutex::new(Inner {
                enabled: true,
                vm_id: uuid::Uuid::new_v4().to_string(),
                vmss_id: Some(uuid::Uuid::new_v4().to_string()),
                cert_lifetime: DEFAULT_CERT_LIFETIME,
                token_type_override: None,
                issued: Vec::new(),
            }),
            reject_handshakes: AtomicU32::new(0),
        }
    }
}

impl ImdsV2State {
    pub(crate) fn set_enabled(&self, enabled: bool) {
        lock(&self.inner).enabled = enabled;
    }

    pub(crate) fn enabled(&self) -> bool {
        lock(&self.inner).enabled
    }

    pub(crate) fn vm_id(&self) -> String {
        lock(&self.inner).vm_id.clone()
    }

    pub(crate) fn vmss_id(&self) -> Option<String> {
        lock(&self.inner).vmss_id.clone()
    }

    pub(crate) fn set_vmss_id(&self, id: Option<String>) {
        lock(&self.inner).vmss_id = id;
    }

    pub(crate) fn set_cert_lifetime(&self, lifetime: Duration) {
        lock(&self.inner).cert_lifetime = lifetime.max(Duration::from_secs(1));
    }

    pub(crate) fn cert_lifetime(&self) -> Duration {
        lock(&self.inner).cert_lifetime
    }

    pub(crate) fn set_token_type_override(&self, token_type: Option<String>) {
        lock(&self.inner).token_type_override = token_type;
    }

    pub(crate) fn token_type_override(&self) -> Option<String> {
        lock(&self.inner).token_type_override.clone()
    }

    /// The number of certificates issued so far.
    pub(crate) fn issued_count(&self) -> usize {
        lock(&self.inner).issued.len()
    }

    /// Mark every certificate issued so far as revoked.
    pub(crate) fn revoke_all(&self) {
        for issued in &mut lock(&self.inner).issued {
            issued.revoked = true;
        }
    }

    /// Make the next `n` TLS accepts of the mutual-TLS listener fail.
    pub(crate) fn reject_handshakes(&self, n: u32) {
        self.reject_handshakes.store(n, Ordering::SeqCst);
    }

    /// The number of TLS accepts still to be rejected.
    pub(crate) fn pending_handshake_rejections(&self) -> u32 {
        self.reject_handshakes.load(Ordering::SeqCst)
    }

    /// Whether this TLS accept must fail (consuming one rejection).
    pub(crate) fn take_handshake_rejection(&self) -> bool {
        self.reject_handshakes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The cuId JSON of this VM (`vmssId` omitted when unset).
    pub(crate) fn cu_id(&self) -> Value {
        let inner = lock(&self.inner);
        let mut cu = Map::new();
        cu.insert("vmId".to_owned(), Value::String(inner.vm_id.clone()));
        if let Some(vmss) = &inner.vmss_id {
            cu.insert("vmssId".to_owned(), Value::String(vmss.clone()));
        }
        Value::Object(cu)
    }

    fn record(&self, cert_der: &[u8], client_id: &str) {
        lock(&self.inner).issued.push(Issued {
            sha256: Sha256::digest(cert_der).to_vec(),
            client_id: client_id.to_owned(),
            revoked: false,
        });
    }

    /// The client id a certificate was issued for and whether it is revoked.
    fn lookup(&self, cert_der: &[u8]) -> Option<(String, bool)> {
        let digest = Sha256::digest(cert_der);
        lock(&self.inner)
            .issued
            .iter()
            .find(|i| i.sha256.as_slice() == digest.as_slice())
            .map(|i| (i.client_id.clone(), i.revoked))
    }
}

// ---- platform metadata ----

fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "NotFound",
        "IMDSv2 is not available on this VM",
    )
}

fn check_request(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Params, Problem> {
    if !shared.imds_v2.enabled() {
        return Err(not_found());
    }
    if !has_metadata(headers) {
        return Err(Problem::missing_metadata());
    }
    let params = Params::query(uri);
    match params.get("cred-api-version") {
        Some(CRED_API_VERSION) => Ok(params),
        Some(other) => Err(Problem::bad_request(format!(
            "cred-api-version '{}' is not supported: use {CRED_API_VERSION}",
            super::echo(other)
        ))),
        None => Err(Problem::bad_request(
            "Required query variable 'cred-api-version' is missing",
        )),
    }
}

/// The selected identity and its canonical tenant id.
fn identity(
    shared: &Shared,
    selector: Option<&Selector>,
) -> Result<(ManagedIdentity, String), Problem> {
    let identity = shared
        .mi
        .find(selector)
        .ok_or_else(Problem::identity_not_found)?;
    let tenant = lock(&shared.registry)
        .tenant(&identity.tenant)
        .map_or_else(|| identity.tenant.clone(), |t| t.id);
    Ok((identity, tenant))
}

pub(super) async fn platform_metadata(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result = check_request(&shared, &uri, &headers).and_then(|params| {
        let selector = params.selector(SELECTORS)?;
        let (identity, tenant) = identity(&shared, selector.as_ref())?;
        Ok(ok(&json!({
            "clientId": identity.client_id,
            "tenantId": tenant,
            "cuId": shared.imds_v2.cu_id(),
            "attestationEndpoint": format!("{}/attest", shared.urls.https),
        })))
    });
    result.unwrap_or_else(|problem| problem.oauth())
}

// ---- issuecredential ----

#[derive(Deserialize)]
struct IssueBody {
    csr: String,
    #[serde(default)]
    attestation_token: Option<String>,
}

pub(super) async fn issue_credential(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = check_request(&shared, &uri, &headers).and_then(|params| {
        let selector = params.selector(SELECTORS)?;
        let (identity, tenant) = identity(&shared, selector.as_ref())?;
        let body: IssueBody = serde_json::from_slice(&body).map_err(|e| {
            Problem::bad_request(format!(
                "the body must be JSON {{\"csr\", \"attestation_token\"}}: {}",
                crate::control::describe_json_error(&e)
            ))
        })?;
        let _ = body.attestation_token;
        let der = STANDARD
            .decode(body.csr.trim())
            .map_err(|_| Problem::bad_request("csr is not valid base64"))?;
        let cu_id = shared.imds_v2.cu_id();
        let spki =
            verify_csr(&der, &identity.client_id, &tenant, &cu_id).map_err(Problem::bad_request)?;
        let cert = sign_certificate(&shared, &spki, &identity.client_id, &tenant)?;
        shared.imds_v2.record(&cert, &identity.client_id);
        Ok(ok(&json!({
            "client_id": identity.client_id,
            "tenant_id": tenant,
            "certificate": STANDARD.encode(&cert),
            "identity_type": if selector.is_some() { "UserAssigned" } else { "SystemAssigned" },
            "mtls_authentication_endpoint": shared.urls.mtls,
        })))
    });
    result.unwrap_or_else(|problem| problem.oauth())
}

/// Check a CSR the way IMDSv2 does; the answer is its SubjectPublicKeyInfo (DER).
pub(crate) fn verify_csr(
    der: &[u8],
    client_id: &str,
    tenant_id: &str,
    cu_id: &Value,
) -> Result<Vec<u8>, String> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| format!("csr is not a DER PKCS#10 certification request: {e}"))?;
    if !rest.is_empty() {
        return Err("csr has trailing bytes after the certification request".to_owned());
    }
    let info = &csr.certification_request_info;

    // Signature algorithm: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32.
    let alg = &csr.signature_algorithm.algorithm;
    if *alg != OID_PKCS1_RSASSAPSS {
        let name = if *alg == OID_PKCS1_SHA256WITHRSA {
            "sha256WithRSAEncryption (PKCS#1 v1.5)".to_owned()
        } else {
            alg.to_id_string()
        };
        return Err(format!(
            "csr signature algorithm must be RSASSA-PSS (1.2.840.113549.1.1.10), not {name}"
        ));
    }
    let Ok(SignatureAlgorithm::RSASSA_PSS(pss)) =
        SignatureAlgorithm::try_from(&csr.signature_algorithm)
    else {
        return Err("csr RSASSA-PSS parameters are malformed".to_owned());
    };
    if *pss.hash_algorithm_oid() != OID_NIST_HASH_SHA256 {
        return Err("csr RSASSA-PSS hash algorithm must be SHA-256".to_owned());
    }
    match pss.mask_gen_algorithm() {
        Ok(mgf)
            if mgf.hash == OID_NIST_HASH_SHA256
                && mgf.mgf.to_id_string() == "1.2.840.113549.1.1.8" => {}
        _ => return Err("csr RSASSA-PSS mask generation must be MGF1 with SHA-256".to_owned()),
    }
    if pss.salt_length() != 32 {
        return Err(format!(
            "csr RSASSA-PSS salt length must be 32, not {}",
            pss.salt_length()
        ));
    }

    // Key: RSA 2048.
    let spki = &info.subject_pki;
    if spki.algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
        return Err("csr public key must be an RSA key".to_owned());
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() == 2048 => {}
        Ok(PublicKey::RSA(rsa)) => {
            return Err(format!(
                "csr RSA key must be 2048 bits, not {}",
                rsa.key_size()
            ));
        }
        _ => return Err("csr public key is not a valid RSA key".to_owned()),
    }

    // Signature.
    UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &spki.subject_public_key.data)
        .verify(info.raw, &csr.signature_value.data)
        .map_err(|_| {
            "csr signature is not valid (RSASSA-PSS SHA-256 over the request info)".to_owned()
        })?;

    // Subject: CN=<client id>, DC=<tenant id>, nothing else.
    let mut cn = Vec::new();
    let mut dc = Vec::new();
    for attr in info.subject.iter_attributes() {
        let value = attr
            .as_str()
            .map_err(|_| "csr subject has a value that is not a string".to_owned())?;
        if *attr.attr_type() == OID_X509_COMMON_NAME {
            cn.push(value);
        } else if *attr.attr_type() == OID_DOMAIN_COMPONENT {
            dc.push(value);
        } else {
            return Err(format!(
                "csr subject must be CN=<client id>, DC=<tenant id>; it has {}",
                attr.attr_type().to_id_string()
            ));
        }
    }
    match cn.as_slice() {
        [v] if v.eq_ignore_ascii_case(client_id) => {}
        [v] => {
            return Err(format!(
                "csr subject CN '{}' is not the client id of the identity ({client_id})",
                super::echo(v)
            ));
        }
        _ => return Err("csr subject must have exactly one CN (the client id)".to_owned()),
    }
    match dc.as_slice() {
        [v] if v.eq_ignore_ascii_case(tenant_id) => {}
        [v] => {
            return Err(format!(
                "csr subject DC '{}' is not the tenant id of the identity ({tenant_id})",
                super::echo(v)
            ));
        }
        _ => return Err("csr subject must have exactly one DC (the tenant id)".to_owned()),
    }

    // The cuId attribute.
    let cu_attrs: Vec<_> = info
        .iter_attributes()
        .filter(|a| a.oid.to_id_string() == CU_ID_OID)
        .collect();
    let [attr] = cu_attrs.as_slice() else {
        return Err(format!(
            "csr must have exactly one cuId attribute ({CU_ID_OID}), it has {}",
            cu_attrs.len()
        ));
    };
    let text = attribute_utf8(info.raw, attr.value)
        .ok_or_else(|| format!("csr cuId attribute ({CU_ID_OID}) must hold one UTF8String"))?;
    let sent: Value = serde_json::from_str(text)
        .map_err(|_| "csr cuId attribute does not hold JSON".to_owned())?;
    if sent != *cu_id {
        return Err(format!(
            "csr cuId {} does not match this VM ({cu_id})",
            super::echo(text)
        ));
    }
    Ok(spki.raw.to_vec())
}

/// One DER TLV: tag, content, rest.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        (
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// The text of an attribute whose values are one UTF8String. `value` is x509-parser's view of
/// the values SET (for an unknown attribute, its header only), a slice of `raw`.
fn attribute_utf8<'a>(raw: &'a [u8], value: &[u8]) -> Option<&'a str> {
    let offset = (value.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
    let (tag, set, _) = read_tlv(raw.get(offset..)?)?;
    if tag != 0x31 {
        return None;
    }
    let (tag, text, rest) = read_tlv(set)?;
    if tag != 0x0c || !rest.is_empty() {
        return None;
    }
    std::str::from_utf8(text).ok()
}

fn sign_certificate(
    shared: &Shared,
    spki_der: &[u8],
    client_id: &str,
    tenant_id: &str,
) -> Result<Vec<u8>, Problem> {
    let internal = |_| Problem::internal("could not sign the certificate");
    let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der).map_err(internal)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, client_id);
    name.push(
        DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
        tenant_id,
    );
    params.distinguished_name = name;
    let mut serial = uuid::Uuid::new_v4().as_bytes().to_vec();
    if let Some(first) = serial.first_mut() {
        *first &= 0x7f;
    }
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = i64::try_from(shared.now_unix()).unwrap_or(i64::MAX);
    let lifetime = i64::try_from(shared.imds_v2.cert_lifetime().as_secs()).unwrap_or(i64::MAX / 2);
    let at = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .map_err(|_| Problem::internal("certificate validity out of range"))
    };
    params.not_before = at(now - 300)?;
    params.not_after = at(now.saturating_add(lifetime))?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&public_key, &shared.pki.ca_issuer)
        .map_err(internal)?;
    Ok(cert.der().to_vec())
}

// ---- the mutual-TLS token endpoint ----

/// The client capabilities (`xms_cc`) requested in a claims request.
fn capabilities(claims: &Claims) -> Option<Value> {
    let values = claims
        .get("access_token")?
        .get("xms_cc")?
        .get("values")?
        .as_array()?;
    let names: Vec<Value> = values
        .iter()
        .filter_map(Value::as_str)
        .map(|s| Value::String(s.to_owned()))
        .collect();
    (!names.is_empty()).then_some(Value::Array(names))
}

fn invalid_client(code: u32, message: impl Into<String>) -> Aadsts {
    Aadsts::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
}

pub(crate) async fn mtls_token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Extension(peer): Extension<PeerCertificate>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match mtls_handle(&shared, &tenant, &peer, &headers, &body) {
        Ok(response) => response,
        Err(e) => e.into_response(&shared.urls.mtls, shared.now_unix(), correlation.as_deref()),
    }
}

fn mtls_handle(
    shared: &Shared,
    tenant: &str,
    peer: &PeerCertificate,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Aadsts> {
    let tenant = lock(&shared.registry)
        .tenant(tenant)
        .ok_or_else(|| Aadsts::unknown_tenant(&super::echo(tenant)))?
        .id;
    let form = parse_form(headers, body);
    let get = |name: &str| {
        form.iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let grant = get("grant_type").ok_or_else(|| Aadsts::missing_parameter("grant_type"))?;
    if grant != "client_credentials" {
        return Err(Aadsts::unsupported_grant(&super::echo(grant)));
    }
    let client_id = get("client_id").ok_or_else(|| Aadsts::missing_parameter("client_id"))?;
    let scope = get("scope").ok_or_else(|| Aadsts::missing_parameter("scope"))?;

    let cert = peer
        .0
        .as_deref()
        .ok_or_else(|| invalid_client(700027, "No client certificate was presented."))?;
    match shared.imds_v2.lookup(cert) {
        None => {
            return Err(invalid_client(
                700027,
                "The presented client certificate was not issued by this IMDS.",
            ));
        }
        Some((_, true)) => {
            return Err(invalid_client(
                700027,
                "The presented client certificate has been revoked.",
            ));
        }
        Some((cert_client, false)) if !cert_client.eq_ignore_ascii_case(client_id) => {
            return Err(invalid_client(
                700021,
                format!(
                    "The client certificate subject does not match client_id '{}'.",
                    super::echo(client_id)
                ),
            ));
        }
        Some(_) => {}
    }
    let identity = shared
        .mi
        .find_by_client_id(client_id)
        .ok_or_else(|| Aadsts::unknown_client(&super::echo(client_id), &tenant))?;

    let lower = scope.to_ascii_lowercase();
    let resource = match lower.strip_suffix("/.default") {
        Some(_) if !scope.contains(' ') => scope
            .get(..scope.len() - "/.default".len())
            .unwrap_or_default(),
        _ => return Err(Aadsts::scope_without_default(&super::echo(scope))),
    };
    let resource = lock(&shared.registry)
        .resource(&tenant, resource)
        .ok_or_else(|| Aadsts::unknown_resource(&super::echo(resource), &tenant))?;

    let claims_request = match get("claims") {
        Some(text) => Some(Claims::parse(text).map_err(|_| Aadsts::invalid_claims())?),
        None => None,
    };
    let pop = get("token_type").is_some_and(|t| t.eq_ignore_ascii_case("mtls_pop"));
    let mut extra = Map::new();
    if pop {
        extra.insert(
            "cnf".to_owned(),
            json!({ "x5t#S256": URL_SAFE_NO_PAD.encode(Sha256::digest(cert)) }),
        );
    }
    if let Some(cc) = claims_request.as_ref().and_then(capabilities) {
        extra.insert("xms_cc".to_owned(), cc);
    }
    let lifetime = shared.settings().token_lifetime;
    let minted = mint_with(shared, &identity, &tenant, &resource, lifetime, extra)
        .map_err(|_| Aadsts::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    let expires_in = minted.expires_in();
    let mut body = Map::new();
    let token_type = match shared.imds_v2.token_type_override() {
        Some(t) if t.is_empty() => None,
        Some(t) => Some(t),
        None => Some(if pop { "mtls_pop" } else { "Bearer" }.to_owned()),
    };
    if let Some(t) = token_type {
        body.insert("token_type".to_owned(), Value::String(t));
    }
    body.insert("expires_in".to_owned(), json!(expires_in));
    body.insert("ext_expires_in".to_owned(), json!(expires_in));
    body.insert(
        "access_token".to_owned(),
        Value::String(minted.access_token),
    );
    Ok(ok(&Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_rejections_count_down() {
        let state = ImdsV2State::default();
        assert!(!state.take_handshake_rejection());
        state.reject_handshakes(2);
        assert!(state.take_handshake_rejection());
        assert!(state.take_handshake_rejection());
        assert!(!state.take_handshake_rejection());
    }

    #[test]
    fn cu_id_omits_absent_vmss_id() {
        let state = ImdsV2State::default();
        state.set_vmss_id(None);
        let cu = state.cu_id();
        assert!(cu.get("vmId").is_some());
        assert!(cu.get("vmssId").is_none());
    }

    #[test]
    fn tlv_reader_handles_long_lengths() {
        let mut der = vec![0x0c, 0x81, 200];
        der.extend(std::iter::repeat_n(b'a', 200));
        let (tag, content, rest) = read_tlv(&der).unwrap_or((0, &[], &[]));
        assert_eq!((tag, content.len(), rest.len()), (0x0c, 200, 0));
        assert!(read_tlv(&[0x0c, 5, 1]).is_none());
    }
}
