//! The admin HTTP API under `/_emulator/`: the same operations as the Rust API, as JSON.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /_emulator/info` | | URLs of this emulator (`mtls`: the IMDSv2 mutual-TLS listener; `imds_v2`: VM ids, issued certificate count) |
//! | `GET /_emulator/ca.pem` | | the CA certificate (PEM) |
//! | `POST /_emulator/tenants` | [`TenantSeed`] | 201 `{tenant_id, issuer, token_endpoint, authority}` |
//! | `POST /_emulator/tenants/{tenant}/applications` | [`AppRegistration`] | 201 `{client_id, object_id}` |
//! | `POST /_emulator/tenants/{tenant}/agent-blueprints` | [`AppRegistration`] | 201 `{client_id, object_id}` |
//! | `POST /_emulator/tenants/{tenant}/agent-identities` | [`AgentIdentitySeed`] `{blueprint_client_id, agent_client_id}` | 201 `{client_id, object_id, blueprint_client_id}` |
//! | `POST /_emulator/tenants/{tenant}/agent-users` | [`AgentUserSeed`] `{agent_client_id, object_id, user_principal_name, display_name?, default_scopes?}` | 201 `{object_id}` |
//! | `POST /_emulator/tenants/{tenant}/users` | [`UserAccount`] | 201 `{object_id}` |
//! | `POST /_emulator/tenants/{tenant}/user-tokens` | `{user_object_id, client_id, audience, scopes}` | `{token}`: a delegated user token (the incoming token of an on-behalf-of request) |
//! | `POST /_emulator/resources` | `{"uri": "..."}` | 201 |
//! | `POST /_emulator/managed-identities` | `{"system_assigned": bool, "tenant", "client_id", "object_id", "resource_id"}` ([`ManagedIdentity`] plus `system_assigned`, default false) | 201 with the identity |
//! | `POST /_emulator/issuers` | `{"name": "..."}` | 201 `{name, issuer}` |
//! | `POST /_emulator/issuers/{name}/tokens` | `{"subject", "audience"?, "lifetime_secs"?}` | `{token}` |
//! | `GET /_emulator/issuers/{name}/keys` | | the issuer's JWKS |
//! | `GET /_emulator/issuers/{name}/.well-known/openid-configuration` | | the issuer's discovery document |
//! | `GET`, `DELETE /_emulator/requests` | | the request log / clear it |
//! | `GET`, `POST`, `DELETE /_emulator/faults` | a [`Fault`] or an array of them | list / add / clear |
//! | `GET`, `POST /_emulator/settings` | [`SettingsUpdate`] | the settings |
//! | `POST /_emulator/seed` | [`Seed`] | 204 |
//!
//! Errors are `{"error": "<message>"}` with status 400 or 404.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::aadsts::json_response;
use crate::control::{
    AgentIdentitySeed, AgentUserSeed, Seed, SettingsUpdate, TenantSeed, describe_json_error,
};
use crate::error::EmulatorError;
use crate::fault::Fault;
use crate::managed_identity::ManagedIdentity;
use crate::registry::{AppRegistration, TOKEN_EXCHANGE_AUDIENCE, UserAccount};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/info", get(info))
        .route("/_emulator/ca.pem", get(ca_pem))
        .route("/_emulator/tenants", post(add_tenant))
        .route(
            "/_emulator/tenants/{tenant}/applications",
            post(add_application),
        )
        .route(
            "/_emulator/tenants/{tenant}/agent-blueprints",
            post(add_agent_blueprint),
        )
        .route(
            "/_emulator/tenants/{tenant}/agent-identities",
            post(add_agent_identity),
        )
        .route(
            "/_emulator/tenants/{tenant}/agent-users",
            post(add_agent_user),
        )
        .route("/_emulator/tenants/{tenant}/users", post(add_user))
        .route(
            "/_emulator/tenants/{tenant}/user-tokens",
            post(mint_user_token),
        )
        .route("/_emulator/resources", post(add_resource))
        .route("/_emulator/managed-identities", post(add_managed_identity))
        .route("/_emulator/issuers", post(add_issuer))
        .route("/_emulator/issuers/{name}/tokens", post(mint_token))
        .route("/_emulator/issuers/{name}/keys", get(issuer_keys))
        .route(
            "/_emulator/issuers/{name}/.well-known/openid-configuration",
            get(issuer_configuration),
        )
        .route("/_emulator/requests", get(requests).delete(clear_requests))
        .route(
            "/_emulator/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/_emulator/settings", get(settings).post(update_settings))
        .route("/_emulator/seed", post(seed))
}

fn ok(status: StatusCode, body: &Value) -> Response {
    json_response(status, body, None)
}

fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }), None)
}

fn refused(e: &EmulatorError) -> Response {
    let status = match e {
        EmulatorError::UnknownTenant(_)
        | EmulatorError::UnknownIssuer(_)
        | EmulatorError::UnknownBlueprint(_)
        | EmulatorError::UnknownAgentIdentity(_)
        | EmulatorError::UnknownUser(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, &e.to_string())
}

/// Parse a JSON body; the error is the answer to send.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("invalid json body: {}", describe_json_error(&e)),
        ))
    })
}

async fn info(State(shared): State<Arc<Shared>>) -> Response {
    ok(
        StatusCode::OK,
        &json!({
            "https": shared.urls.https,
            "http": shared.urls.http,
            "authority_host": shared.urls.https,
            "jwks_uri": format!("{}/discovery/v2.0/keys", shared.urls.https),
            "signing_kid": shared.signing.kid(),
            "mtls": shared.urls.mtls,
            "imds_v2": {
                "enabled": shared.imds_v2.enabled(),
                "vm_id": shared.imds_v2.vm_id(),
                "vmss_id": shared.imds_v2.vmss_id(),
                "mtls_url": shared.urls.mtls,
                "issued_certificates": shared.imds_v2.issued_count(),
            },
            "managed_identity": {
                "app_service_secret": shared.mi.app_service_secret,
                "service_fabric_secret": shared.mi.service_fabric_secret,
                "ml_secret": shared.mi.ml_secret,
                "service_fabric_url": shared.mi.service_fabric_url,
                "service_fabric_thumbprint": shared.mi.service_fabric_thumbprint,
                "arc_key_directory": shared.mi.arc_dir(),
            },
        }),
    )
}

async fn ca_pem(State(shared): State<Arc<Shared>>) -> Response {
    let mut response = Response::new(Body::from(shared.pki.ca_pem.clone()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    response
}

async fn add_tenant(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let seed: TenantSeed = match parse(&body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match shared.add_tenant_seed(&seed) {
        Ok(()) => {
            let id = seed.tenant_id;
            ok(
                StatusCode::CREATED,
                &json!({
                    "tenant_id": id,
                    "issuer": shared.issuer(&id),
                    "authority": format!("{}/{id}", shared.urls.https),
                    "token_endpoint": format!("{}/{id}/oauth2/v2.0/token", shared.urls.https),
                }),
            )
        }
        Err(e) => refused(&e),
    }
}

async fn add_application(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    register_app(&shared, &tenant, &body, Shared::add_application)
}

async fn add_agent_blueprint(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    register_app(&shared, &tenant, &body, Shared::add_agent_blueprint)
}

/// Registers the application in `body` with `add` (a plain application or a blueprint).
fn register_app(
    shared: &Shared,
    tenant: &str,
    body: &[u8],
    add: fn(&Shared, &str, AppRegistration) -> Result<String, EmulatorError>,
) -> Response {
    let app: AppRegistration = match parse(body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let client_id = app.client_id.clone();
    match add(shared, tenant, app) {
        Ok(object_id) => ok(
            StatusCode::CREATED,
            &json!({ "client_id": client_id, "object_id": object_id }),
        ),
        Err(e) => refused(&e),
    }
}

async fn add_agent_identity(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let agent: AgentIdentitySeed = match parse(&body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match shared.add_agent_identity(&tenant, &agent.blueprint_client_id, &agent.agent_client_id) {
        Ok(object_id) => ok(
            StatusCode::CREATED,
            &json!({
                "client_id": agent.agent_client_id,
                "object_id": object_id,
                "blueprint_client_id": agent.blueprint_client_id,
            }),
        ),
        Err(e) => refused(&e),
    }
}

async fn add_agent_user(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let user: AgentUserSeed = match parse(&body) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let object_id = user.user.object_id.clone();
    match shared.add_user(&tenant, Some(&user.agent_client_id), user.user) {
        Ok(()) => ok(StatusCode::CREATED, &json!({ "object_id": object_id })),
        Err(e) => refused(&e),
    }
}

async fn add_user(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let user: UserAccount = match parse(&body) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let object_id = user.object_id.clone();
    match shared.add_user(&tenant, None, user) {
        Ok(()) => ok(StatusCode::CREATED, &json!({ "object_id": object_id })),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserTokenBody {
    user_object_id: String,
    client_id: String,
    audience: String,
    scopes: String,
}

async fn mint_user_token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let mint: UserTokenBody = match parse(&body) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    match shared.mint_user_token(
        &tenant,
        &mint.user_object_id,
        &mint.client_id,
        &mint.audience,
        &mint.scopes,
    ) {
        Ok(token) => ok(StatusCode::OK, &json!({ "token": token })),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceBody {
    uri: String,
}

async fn add_resource(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let resource: ResourceBody = match parse(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    match shared.add_resource(&resource.uri) {
        Ok(()) => ok(StatusCode::CREATED, &json!({ "uri": resource.uri })),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManagedIdentityBody {
    #[serde(default)]
    system_assigned: bool,
    tenant: String,
    client_id: String,
    object_id: String,
    resource_id: String,
}

async fn add_managed_identity(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: ManagedIdentityBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let identity = ManagedIdentity::new(
        body.tenant,
        body.client_id,
        body.object_id,
        body.resource_id,
    );
    let identity = match shared.canonical_identity(identity) {
        Ok(i) => i,
        Err(e) => return refused(&e),
    };
    let mut answer = serde_json::to_value(&identity).unwrap_or_else(|_| json!({}));
    if let Some(map) = answer.as_object_mut() {
        map.insert("system_assigned".to_owned(), json!(body.system_assigned));
    }
    if body.system_assigned {
        shared.mi.set_system(identity);
    } else {
        shared.mi.add_user(identity);
    }
    ok(StatusCode::CREATED, &answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerBody {
    name: String,
}

async fn add_issuer(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let issuer: IssuerBody = match parse(&body) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    match shared.add_external_issuer(&issuer.name) {
        Ok(url) => ok(
            StatusCode::CREATED,
            &json!({ "name": issuer.name, "issuer": url }),
        ),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintBody {
    subject: String,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    lifetime_secs: Option<u64>,
}

async fn mint_token(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let mint: MintBody = match parse(&body) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let audience = mint.audience.as_deref().unwrap_or(TOKEN_EXCHANGE_AUDIENCE);
    let lifetime = Duration::from_secs(mint.lifetime_secs.unwrap_or(3600));
    match shared.mint_external_token(&name, &mint.subject, audience, lifetime) {
        Ok(token) => ok(StatusCode::OK, &json!({ "token": token })),
        Err(e) => refused(&e),
    }
}

async fn issuer_keys(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match shared.external_issuer_jwks(&name) {
        Some(jwks) => ok(StatusCode::OK, &jwks),
        None => refused(&EmulatorError::UnknownIssuer(name)),
    }
}

async fn issuer_configuration(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    if shared.external_issuer_jwks(&name).is_none() {
        return refused(&EmulatorError::UnknownIssuer(name));
    }
    let issuer = shared.external_issuer_url(&name);
    ok(
        StatusCode::OK,
        &json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/keys"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf"],
        }),
    )
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    let log = serde_json::to_value(shared.requests()).unwrap_or_else(|_| json!([]));
    ok(StatusCode::OK, &log)
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> Response {
    shared.clear_requests();
    no_content()
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    let faults = serde_json::to_value(shared.faults()).unwrap_or_else(|_| json!([]));
    ok(StatusCode::OK, &faults)
}

async fn add_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    // One fault or an array of them; parsed by shape so errors name the real problem.
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let faults = if is_array {
        match parse::<Vec<Fault>>(&body) {
            Ok(faults) => faults,
            Err(r) => return *r,
        }
    } else {
        match parse::<Fault>(&body) {
            Ok(fault) => vec![fault],
            Err(r) => return *r,
        }
    };
    for fault in &faults {
        if let Err(e) = fault.validate() {
            return refused(&e);
        }
    }
    let count = faults.len();
    for fault in faults {
        shared.add_fault(fault);
    }
    ok(StatusCode::CREATED, &json!({ "added": count }))
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.clear_faults();
    no_content()
}

async fn settings(State(shared): State<Arc<Shared>>) -> Response {
    let view = serde_json::to_value(shared.settings_view()).unwrap_or_else(|_| json!({}));
    ok(StatusCode::OK, &view)
}

async fn update_settings(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let update: SettingsUpdate = match parse(&body) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    shared.update_settings(&update);
    let view = serde_json::to_value(shared.settings_view()).unwrap_or_else(|_| json!({}));
    ok(StatusCode::OK, &view)
}

async fn seed(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let seed: Seed = match parse(&body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match shared.apply_seed(&seed) {
        Ok(()) => no_content(),
        Err(e) => refused(&e),
    }
}
