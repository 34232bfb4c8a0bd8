//! Client assertions: certificate-signed (`iss` = `sub` = client id) and federated (from an
//! external issuer registered with the emulator).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::aadsts::Aadsts;
use crate::clock::format_timestamp;
use crate::registry::{ExternalIssuer, RegisteredApp, TenantRef};
use crate::state::{CredentialKind, Shared, lock};

use super::token::echo;

/// The only `client_assertion_type` Entra accepts.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub(super) const SKEW: u64 = 300;

/// The longest lifetime of a certificate assertion (`exp` − `nbf`/`iat`), in seconds.
const MAX_CERTIFICATE_ASSERTION_LIFETIME: u64 = 600;

/// Validate `jwt` as a client assertion of `app`.
pub(super) fn validate(
    shared: &Shared,
    tenant: &TenantRef,
    app: &RegisteredApp,
    jwt: &str,
) -> Result<CredentialKind, Aadsts> {
    let (header, payload) = peek(jwt)?;
    let iss = payload
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let external = lock(&shared.registry).issuer_by_url(iss);
    match external {
        Some(issuer) => federated(shared, app, &issuer, jwt, &payload),
        None if is_own_issuer(shared, tenant, iss) => own_federated(shared, app, jwt, &payload),
        None => certificate(shared, tenant, app, jwt, &header, &payload),
    }
}

/// Whether `iss` is this emulator's issuer for `tenant` (what its tokens, managed identity
/// tokens included, carry in `iss`).
pub(super) fn is_own_issuer(shared: &Shared, tenant: &TenantRef, iss: &str) -> bool {
    iss.trim_end_matches('/') == shared.issuer(&tenant.id)
}

/// Verify that `jwt` was signed by this emulator's key.
pub(super) fn signed_by_emulator(shared: &Shared, jwt: &str) -> bool {
    verify_signature(jwt, &shared.signing.decoding_key(), Algorithm::RS256)
}

/// A federated assertion issued by this emulator itself (a managed identity token for
/// `api://AzureADTokenExchange`): signed with the emulator key and matched against the
/// application's federated identity credentials like any other.
fn own_federated(
    shared: &Shared,
    app: &RegisteredApp,
    jwt: &str,
    claims: &Map<String, Value>,
) -> Result<CredentialKind, Aadsts> {
    if !signed_by_emulator(shared, jwt) {
        return Err(Aadsts::assertion_signature(
            "The signature could not be verified with the keys of the assertion's issuer.",
        ));
    }
    check_times(claims, shared.now_unix(), None)?;
    match_federated(app, claims)
}

/// The header and claims of a JWT, unverified.
pub(super) fn peek(jwt: &str) -> Result<(Header, Map<String, Value>), Aadsts> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err(Aadsts::malformed_assertion(
            "the client assertion is not a compact JWS (three dot-separated parts).",
        ));
    };
    let header = jsonwebtoken::decode_header(jwt)
        .map_err(|_| Aadsts::malformed_assertion("the client assertion's header is not valid."))?;
    let claims = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .ok_or_else(|| {
            Aadsts::malformed_assertion("the client assertion's payload is not a JSON object.")
        })?;
    Ok((header, claims))
}

/// Verify the signature of `jwt` with `key` for `alg` only (claims are checked separately).
pub(super) fn verify_signature(jwt: &str, key: &DecodingKey, alg: Algorithm) -> bool {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, key, &validation).is_ok()
}

pub(super) fn number(claims: &Map<String, Value>, name: &str) -> Option<u64> {
    let value = claims.get(name)?;
    value
        .as_u64()
        .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

pub(super) fn audiences(claims: &Map<String, Value>) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Check `exp` (required), `nbf` and, when given, the longest lifetime. Returns `exp`.
pub(super) fn check_times(
    claims: &Map<String, Value>,
    now: u64,
    max_lifetime: Option<u64>,
) -> Result<u64, Aadsts> {
    let exp = number(claims, "exp")
        .ok_or_else(|| Aadsts::malformed_assertion("the client assertion has no 'exp' claim."))?;
    let nbf = number(claims, "nbf");
    let iat = number(claims, "iat");
    if now > exp.saturating_add(SKEW) {
        return Err(Aadsts::assertion_time(&format!(
            "Current time: {}, expiry time of assertion {}.",
            format_timestamp(now),
            format_timestamp(exp)
        )));
    }
    if let Some(nbf) = nbf
        && now.saturating_add(SKEW) < nbf
    {
        return Err(Aadsts::assertion_time(&format!(
            "Current time: {}, assertion valid from {}, expiry time of assertion {}.",
            format_timestamp(now),
            format_timestamp(nbf),
            format_timestamp(exp)
        )));
    }
    if let Some(max) = max_lifetime {
        let start = nbf.or(iat).unwrap_or(now);
        if exp > start.saturating_add(max + SKEW) {
            return Err(Aadsts::assertion_time(&format!(
                "The assertion is valid from {} to {}: longer than the {} minutes allowed.",
                format_timestamp(start),
                format_timestamp(exp),
                max / 60
            )));
        }
    }
    Ok(exp)
}

/// A certificate assertion: signed by a registered certificate's key, `iss` = `sub` =
/// client id, `aud` = this tenant's token endpoint, short-lived, single-use `jti`.
fn certificate(
    shared: &Shared,
    tenant: &TenantRef,
    app: &RegisteredApp,
    jwt: &str,
    header: &Header,
    claims: &Map<String, Value>,
) -> Result<CredentialKind, Aadsts> {
    if !matches!(header.alg, Algorithm::PS256 | Algorithm::RS256) {
        return Err(Aadsts::assertion_signature(
            "Unsupported signing algorithm: client assertions are signed with PS256 or RS256.",
        ));
    }
    let named = header.x5t_s256.is_some() || header.x5t.is_some();
    let candidates: Vec<_> = if named {
        let cert = app
            .certificate_by_thumbprint(header.x5t_s256.as_deref(), header.x5t.as_deref())
            .ok_or_else(|| {
                let thumbprint = header
                    .x5t_s256
                    .as_deref()
                    .or(header.x5t.as_deref())
                    .unwrap_or_default();
                Aadsts::assertion_key_not_found(&echo(thumbprint), &app.client_id)
            })?;
        vec![cert]
    } else {
        app.certificates.iter().collect()
    };
    if candidates.is_empty() {
        return Err(Aadsts::assertion_key_not_found("", &app.client_id));
    }
    let cert = candidates
        .into_iter()
        .find(|c| verify_signature(jwt, &c.key, header.alg))
        .ok_or_else(|| {
            Aadsts::assertion_signature(
                "The signature could not be verified with the key of a certificate registered on the application.",
            )
        })?;

    let is_client = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(&app.client_id))
    };
    if !is_client("iss") || !is_client("sub") {
        return Err(Aadsts::assertion_client_mismatch());
    }
    if !audiences(claims)
        .iter()
        .any(|aud| is_token_endpoint(shared, tenant, aud))
    {
        return Err(Aadsts::assertion_audience());
    }
    let exp = check_times(
        claims,
        shared.now_unix(),
        Some(MAX_CERTIFICATE_ASSERTION_LIFETIME),
    )?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or_else(|| Aadsts::malformed_assertion("the client assertion has no 'jti' claim."))?;
    if !shared.remember_jti(&app.client_id, jti, exp) {
        return Err(Aadsts::assertion_replayed());
    }
    Ok(CredentialKind::Certificate {
        thumbprint_sha256: cert.sha256.clone(),
    })
}

/// Whether `aud` names the token endpoint of `tenant` on this emulator (https or http
/// listener, any loopback host or configured server name, tenant id or domain, v2 or v1 path,
/// with or without a trailing slash).
fn is_token_endpoint(shared: &Shared, tenant: &TenantRef, aud: &str) -> bool {
    let Ok(url) = url::Url::parse(aud) else {
        return false;
    };
    if !matches!(url.scheme(), "https" | "http") {
        return false;
    }
    let port = url.port_or_known_default();
    if port != Some(shared.urls.https_port) && port != Some(shared.urls.http_port) {
        return false;
    }
    let host_ok = match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || shared
                    .urls
                    .server_names
                    .iter()
                    .any(|n| *n == ip.to_string())
        }
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || shared
                    .urls
                    .server_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(d))
        }
        None => false,
    };
    if !host_ok {
        return false;
    }
    let path = url.path().trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [t, "oauth2", "v2.0", "token"] | [t, "oauth2", "token"] => {
            tenant.names.iter().any(|n| n.eq_ignore_ascii_case(t))
        }
        _ => false,
    }
}

/// A federated assertion: signed by a registered external issuer, matching one of the
/// application's federated identity credentials.
fn federated(
    shared: &Shared,
    app: &RegisteredApp,
    issuer: &ExternalIssuer,
    jwt: &str,
    claims: &Map<String, Value>,
) -> Result<CredentialKind, Aadsts> {
    if !verify_signature(jwt, &issuer.key.decoding, Algorithm::ES256) {
        return Err(Aadsts::assertion_signature(
            "The signature could not be verified with the keys of the assertion's issuer.",
        ));
    }
    check_times(claims, shared.now_unix(), None)?;
    match_federated(app, claims)
}

/// The federated identity credential of `app` matching the assertion's `iss`, `sub`, `aud`.
fn match_federated(
    app: &RegisteredApp,
    claims: &Map<String, Value>,
) -> Result<CredentialKind, Aadsts> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let sub = claims.get("sub").and_then(Value::as_str).ok_or_else(|| {
        Aadsts::malformed_assertion("the federated assertion has no 'sub' claim.")
    })?;
    let auds = audiences(claims);
    let matched = app.federated.iter().any(|f| {
        f.issuer == iss
            && f.subject == sub
            && f.audiences.iter().any(|a| auds.contains(&a.as_str()))
    });
    if !matched {
        return Err(Aadsts::no_federated_match(
            &echo(iss),
            &echo(sub),
            &echo(&auds.join(",")),
        ));
    }
    Ok(CredentialKind::Federated {
        issuer: iss.to_owned(),
        subject: sub.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn times_are_checked_with_skew() {
        let now = 1_000_000;
        let ok = claims(serde_json::json!({"exp": now + 600, "nbf": now, "iat": now}));
        assert_eq!(check_times(&ok, now, Some(600)).ok(), Some(now + 600));
        let expired = claims(serde_json::json!({"exp": now - SKEW - 1}));
        assert_eq!(
            check_times(&expired, now, None).map_err(|e| e.code).err(),
            Some(700024)
        );
        let within_skew = claims(serde_json::json!({"exp": now - 10}));
        assert!(check_times(&within_skew, now, None).is_ok());
        let future = claims(serde_json::json!({"exp": now + 7200, "nbf": now + 3600}));
        assert!(check_times(&future, now, None).is_err());
        let too_long = claims(serde_json::json!({"exp": now + 7200, "iat": now}));
        assert!(check_times(&too_long, now, Some(600)).is_err());
        let no_exp = claims(serde_json::json!({"iat": now}));
        assert_eq!(
            check_times(&no_exp, now, None).map_err(|e| e.code).err(),
            Some(50027)
        );
    }

    #[test]
    fn malformed_assertions_are_refused() {
        assert!(peek("not-a-jwt").is_err());
        assert!(peek("a.b.c").is_err());
    }
}
