//! A local Microsoft Entra ID for tests, benchmarks, demos and users' own tests.
//!
//! `entra-emulator` is a real HTTP(S) server on loopback that speaks Entra ID's token protocol
//! from the server side: it registers tenants, applications and their credentials (client
//! secrets, certificates, federated credentials), issues RS256-signed access tokens with the
//! claims Entra puts in them, publishes OpenID configuration and JWKS, validates what it
//! receives as strictly as Entra does (answering AADSTS-shaped errors with Entra's codes),
//! records every request with secrets redacted, and injects faults on demand. Microsoft's own
//! clients (MSAL Python, azure-identity) work against it too.
//!
//! ```
//! use entra_emulator::{AppRegistration, Emulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::start().await?;
//! let tenant = "11111111-1111-1111-1111-111111111111";
//! emulator.add_tenant(tenant)?;
//! emulator.add_application(tenant, AppRegistration::new("my-app").client_secret("s3cret"))?;
//!
//! assert!(emulator.https_url().starts_with("https://127.0.0.1:"));
//! assert_eq!(
//!     emulator.token_endpoint(tenant),
//!     format!("{}/{tenant}/oauth2/v2.0/token", emulator.https_url())
//! );
//! assert!(emulator.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! assert!(emulator.requests().is_empty());
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Endpoints
//!
//! On both the HTTPS and the plain HTTP listener:
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials with a client secret, a
//!   certificate assertion or a federated assertion (errors: see [below](#errors));
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration` (what MSAL fetches for an authority
//!   on a non-Microsoft host with instance discovery off);
//! - `GET /discovery/v2.0/keys` and `GET /{tenant}/discovery/v2.0/keys`;
//! - `GET /common/discovery/instance`;
//! - the control API under `/_emulator/` (see [`admin`]).
//!
//! Managed identity endpoints, on the plain HTTP listener (the HTTPS one answers them too), for
//! the identities set with [`Emulator::set_system_assigned_identity`] and
//! [`Emulator::add_user_assigned_identity`]:
//!
//! | source | request | identity selectors |
//! |---|---|---|
//! | IMDS v1 | `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R`, `Metadata: true` | `client_id`, `object_id`, `msi_res_id` |
//! | App Service | `GET /msi/token?api-version=2019-08-01&resource=R`, `X-IDENTITY-HEADER` = [`Emulator::app_service_secret`] | `client_id`, `object_id`, `mi_res_id` |
//! | Service Fabric | `GET {service_fabric_url}/metadata/identity/oauth2/token?api-version=2019-07-01-preview&resource=R`, `secret` = [`Emulator::service_fabric_secret`] | `principalId` |
//! | Azure Arc | `GET /arc/metadata/identity/oauth2/token?api-version=2020-06-01&resource=R`, `Metadata: true`, then `Authorization: Basic <key file content>` | none |
//! | Cloud Shell | `POST /cloudshell/token`, `Metadata: true`, form `resource=R` | none |
//! | Azure ML | `GET /ml/token?api-version=2017-09-01&resource=R`, `Metadata: true`, `secret` = [`Emulator::ml_secret`] | `clientid` |
//!
//! Service Fabric has a listener of its own ([`Emulator::service_fabric_url`]) whose self-signed
//! certificate only pinning [`Emulator::service_fabric_thumbprint`] trusts. Every IMDS answer,
//! faults included, carries `Server: IMDS/150.870.65.1854`. Managed identity tokens are RS256
//! JWTs with `aud` (the resource), `iss`, `tid`, `appid` = `azp` (client id), `oid` = `sub`
//! (object id), `xms_mirid` (resource id), `idtyp` = `app`, `ver` = `1.0`, `iat`, `nbf`, `exp`
//! and `uti`, valid for 24 hours unless [`Emulator::set_mi_token_lifetime`] says otherwise
//! (Cloud Shell tokens: at most one hour).
//!
//! ## IMDSv2 (managed identity with mutual-TLS proof-of-possession)
//!
//! - `GET /metadata/identity/getplatformmetadata?cred-api-version=2.0[&client_id|object_id|mi_res_id]`,
//!   `Metadata: true`: `{clientId, tenantId, cuId: {vmId, vmssId}, attestationEndpoint}`
//!   ([`Emulator::vm_id`], [`Emulator::vmss_id`]); 404 after
//!   [`Emulator::set_imds_v2_enabled`]`(false)` (an IMDSv1-only VM).
//! - `POST /metadata/identity/issuecredential?cred-api-version=2.0[&selector]`, `Metadata: true`,
//!   JSON `{csr, attestation_token}`: the CSR must be RSA 2048, signed RSASSA-PSS (SHA-256,
//!   MGF1-SHA-256, salt 32), with subject `CN=<client id>, DC=<tenant id>` and one attribute
//!   `1.3.6.1.4.1.311.90.2.10` holding the cuId JSON as a UTF8String; anything else is a 400
//!   `invalid_request` saying what is wrong. The answer, `{client_id, tenant_id, certificate,
//!   identity_type, mtls_authentication_endpoint}`, carries a client certificate for the CSR's
//!   key signed by the emulator CA (valid 7 days unless
//!   [`Emulator::set_bound_certificate_lifetime`] says otherwise).
//! - `POST {mtls_url}/{tenant}/oauth2/v2.0/token` on the mutual-TLS listener
//!   ([`Emulator::mtls_url`]; a client certificate issued by the emulator CA is required):
//!   client credentials with `token_type=mtls_pop` answer a token with `cnf: {"x5t#S256"}` of
//!   the presented certificate. A certificate not issued by `issuecredential`, revoked
//!   ([`Emulator::revoke_bound_certificates`]) or issued for another client id is refused with
//!   401 `invalid_client`. [`Emulator::reject_mtls_handshakes`] makes handshakes fail and
//!   [`Emulator::set_mtls_token_type_override`] changes the answered `token_type`.
//!
//! # Errors
//!
//! The token endpoint answers errors the way Entra does, `{error, error_description:
//! "AADSTSnnnnn: ... Trace ID: ... Correlation ID: ... Timestamp: ...", error_codes, timestamp,
//! trace_id, correlation_id, error_uri}`, with `correlation_id` echoing the `client-request-id`
//! header. The codes used:
//!
//! | code | `error` | status | when |
//! |---|---|---|---|
//! | 90002 | `invalid_request` | 400 | the tenant is not registered |
//! | 900144 | `invalid_request` | 400 | a required form field is missing |
//! | 900561 | `invalid_request` | 400 | the token endpoint was called with another method than POST |
//! | 9002313 | `invalid_request` | 400 | malformed request: `claims` not a JSON object, both a secret and an assertion, a wrong `client_assertion_type` |
//! | 50027 | `invalid_request` | 400 | the client assertion is not a well-formed JWT, or lacks `exp`/`jti`/`sub` |
//! | 70003 | `unsupported_grant_type` | 400 | a grant type the emulator does not implement |
//! | 700016 | `unauthorized_client` | 400 | the client id is not registered in the tenant |
//! | 1002012 | `invalid_scope` | 400 | a client-credentials scope without `/.default` |
//! | 70011 | `invalid_scope` | 400 | several resources in one client-credentials scope |
//! | 500011 | `invalid_resource` | 400 | the resource of the scope is not known in the tenant |
//! | 7000218 | `invalid_client` | 401 | neither `client_secret` nor `client_assertion` |
//! | 7000215 | `invalid_client` | 401 | wrong client secret |
//! | 700027 | `invalid_client` | 401 | assertion signature invalid, unknown certificate thumbprint, unsupported `alg` |
//! | 700021 | `invalid_client` | 401 | assertion `iss`/`sub` differ from `client_id` |
//! | 700023 | `invalid_client` | 401 | assertion `aud` is not this tenant's token endpoint |
//! | 700024 | `invalid_client` | 401 | assertion expired, not yet valid, or living longer than 10 minutes (+5 min skew) |
//! | 50013 | `invalid_client` | 401 | assertion `jti` already used (Entra documents no dedicated code; the emulator's choice) |
//! | 70021 | `invalid_client` | 401 | no federated identity credential matches the assertion's issuer, subject and audience |
//!
//! # Access tokens
//!
//! RS256 JWTs with header `kid` and `x5t`, and claims `aud` (the resource), `iss`
//! ([`Emulator::issuer`]), `tid`, `appid`, `azp`, `appidacr`, `azpacr`, `oid` = `sub` (a
//! stable service principal object id), `idtyp` = `app`, `ver` = `2.0`, `iat`, `nbf`, `exp`,
//! `uti`, `xms_cc` when the `claims` request asks for client capabilities, and whatever an
//! [`ExtraClaimsHook`] adds.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod aadsts;
pub mod admin;
mod clock;
mod control;
mod emulator;
mod endpoint;
mod entra;
mod error;
mod fault;
mod keys;
mod log;
mod managed_identity;
mod registry;
mod server;
mod state;
pub mod testing;
mod tls;

pub use clock::Clock;
pub use control::{AgentIdentitySeed, AgentUserSeed, Seed, SettingsUpdate, TenantSeed};
pub use emulator::{Emulator, EmulatorConfig};
pub use endpoint::EndpointKind;
pub use error::EmulatorError;
pub use fault::{Fault, FaultAction, FaultBody, FaultMatcher};
pub use keys::SigningKey;
pub use log::{FormField, REDACTED, RecordedRequest, Scheme};
pub use managed_identity::ManagedIdentity;
pub use registry::{
    AppRegistration, DEFAULT_RESOURCES, FederatedCredential, TOKEN_EXCHANGE_APP_ID,
    TOKEN_EXCHANGE_AUDIENCE, UserAccount,
};
pub use state::{CredentialKind, ExtraClaimsHook, TokenContext};

/// Every route of the emulator: one router per endpoint family, merged.
fn routes() -> axum::Router<std::sync::Arc<state::Shared>> {
    entra::routes()
        .merge(managed_identity::routes())
        .merge(admin::routes())
        .fallback(not_found)
}

async fn not_found() -> axum::response::Response {
    aadsts::json_response(
        http::StatusCode::NOT_FOUND,
        &serde_json::json!({
            "error": "not_found",
            "error_description": "the entra emulator has no endpoint at this path",
        }),
        None,
    )
}
