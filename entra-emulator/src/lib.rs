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
//!   certificate assertion or a federated assertion (errors: see [below](#errors)), and the
//!   agent identity grants (see [Agent identities](#agent-identities));
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
//! | 70021 | `invalid_client` | 401 | no federated identity credential matches the assertion's issuer, subject and audience; an agent identity presented an assertion that is not a T1 (another issuer, `aud` not the exchange app, `sub` without an fmi_path) |
//! | 90100 | `invalid_request` | 400 | `fmi_path` present but empty; both `user_id` and `username` in a `user_fic` request |
//! | 9002313 | `invalid_request` | 400 | (also) `fmi_path` from an application that is not an agent blueprint; `user_fic` from a client that is not an agent identity; `requested_token_use` other than `on_behalf_of` |
//! | 70011 | `invalid_scope` | 400 | (also) `fmi_path` with a scope other than the exchange audience; delegated scopes of several resources |
//! | 7000215 | `invalid_client` | 401 | (also) an agent identity sent a client secret (it has none) |
//! | 700211 | `invalid_client` | 401 | the T1 was issued for another agent identity (its `sub` does not end in `/<client_id>`) |
//! | 700213 | `invalid_client` | 401 | the T1's `azp` is not the agent identity's parent blueprint |
//! | 700211 | `invalid_grant` | 400 | the `user_federated_identity_credential` is not a T2 of this agent identity (not this tenant's token, `aud` not the exchange app, `azp`/`appid` another client) |
//! | 90014 | `invalid_request` | 400 | `user_fic` without `user_id` or `username` |
//! | 50034 | `invalid_grant` | 400 | the user is not an agent user of this agent identity (`user_fic`), or the on-behalf-of user is not registered |
//! | 50013 | `invalid_grant` | 400 | the on-behalf-of `assertion` (or a T2) is not this tenant's token, its signature fails, or it is not a delegated user token |
//! | 500133 | `invalid_grant` | 400 | the on-behalf-of `assertion` or the T2 is expired or not yet valid |
//! | 70000 | `invalid_grant` | 400 | a `refresh_token` the emulator did not issue, issued to another client or tenant, or expired (90 days) |
//! | 500131 | `invalid_grant` | 400 | the on-behalf-of assertion's `aud` is not the calling app (`<id>` or `api://<id>`), or for an agent identity its parent blueprint |
//!
//! # Agent identities
//!
//! Registered with [`Emulator::add_agent_blueprint`], [`Emulator::add_agent_identity`],
//! [`Emulator::add_agent_user`] and [`Emulator::add_user`] (or the admin API and seed files).
//!
//! - **T1**: a blueprint's client credentials (secret, certificate, federated — including a
//!   managed identity token of this emulator) with `fmi_path=<agent id>` and scope
//!   `api://AzureADTokenExchange/.default` (or the `USGov`/`China` audiences): `aud` =
//!   [`TOKEN_EXCHANGE_APP_ID`], `azp` = `appid` = blueprint, `sub` =
//!   `/eid1/c/pub/t/<tenant>/a/<blueprint>/<fmi_path>` (GUIDs as base64url of their bytes in
//!   .NET order, as Entra writes them), `xms_act_fct` = `9 3`, `xms_sub_fct` = `3 9`.
//! - **TR / T2**: `client_id=<agent id>` with `client_assertion=<T1>` (emulator-signed, unexpired,
//!   `aud` the exchange app, `sub` ending in `/<agent id>`, `azp` the parent blueprint): an app
//!   token with `appid` = `azp` = agent, `oid` = `sub` = its object id
//!   ([`Emulator::service_principal_id`]), `xms_par_app_azp` = blueprint, `xms_act_fct` =
//!   `3 11 9`, `xms_sub_fct` = `9 3 11`; `aud` = [`TOKEN_EXCHANGE_APP_ID`] for the exchange
//!   scope (T2).
//! - **Agent user**: `grant_type=user_fic` with the T1 as client assertion,
//!   `user_federated_identity_credential=<T2>` and one of `user_id`/`username`: a delegated token
//!   (`scp`, `idtyp` = `user`, `upn`, `xms_sub_fct` = `13`) plus `id_token`, `client_info` and an
//!   opaque `refresh_token`.
//! - **On-behalf-of**: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//!   `requested_token_use=on_behalf_of`, `assertion=<user token>` (see
//!   [`Emulator::mint_user_token`]), from an ordinary app or an agent identity.
//! - **Refresh**: `grant_type=refresh_token` with a refresh token of an agent user or
//!   on-behalf-of answer, from the same client authenticated again (an agent identity with a
//!   T1); `scope` may name another resource, and defaults to the original request's.
//! - **Managed identity as federated credential**: register
//!   `FederatedCredential::new(emulator.issuer(tenant), <managed identity object id>)`: the
//!   emulator's managed identity tokens carry `iss` = [`Emulator::issuer`] and `sub` = the
//!   identity's object id; request them for resource `api://AzureADTokenExchange`.
//! - **Agentic session**: a `claims` request with `access_token.xms_cli_sid.values[0]` or
//!   `access_token.xms_agent_session.value` gets `xms_cli_ses` = the id and `xms_sess_fct` =
//!   `21` in the access token (any grant).
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
