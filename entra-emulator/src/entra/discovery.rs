//! OpenID discovery, signing keys and instance discovery.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::aadsts::{Aadsts, json_response};
use crate::endpoint::classify;
use crate::server::RequestInfo;
use crate::state::{Shared, lock};

/// Tenant aliases that stand for "any tenant" in discovery.
const MULTI_TENANT: &[&str] = &["common", "organizations", "consumers"];

/// The tenant id used in discovery documents for `segment`, or `None` if unknown.
fn discovery_tenant(shared: &Shared, segment: &str) -> Option<(String, bool)> {
    if let Some(t) = lock(&shared.registry).tenant(segment) {
        return Some((t.id, false));
    }
    MULTI_TENANT
        .iter()
        .any(|m| m.eq_ignore_ascii_case(segment))
        .then(|| (segment.to_ascii_lowercase(), true))
}

fn unknown_tenant(shared: &Shared, info: &RequestInfo, segment: &str) -> Response {
    Aadsts::unknown_tenant(segment).into_response(info.base_url(shared), shared.now_unix(), None)
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(super) async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Extension(info): Extension<RequestInfo>,
    uri: Uri,
) -> Response {
    let segment = classify(uri.path()).1.unwrap_or_default();
    let Some((tenant, multi)) = discovery_tenant(&shared, &segment) else {
        return unknown_tenant(&shared, &info, &segment);
    };
    let base = info.base_url(&shared);
    let issuer = if multi {
        format!("{}/{{tenantid}}/v2.0", shared.urls.https)
    } else {
        shared.issuer(&tenant)
    };
    let t = &tenant;
    let body = json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{base}/{t}/kerberos"),
        "tenant_region_scope": Value::Null,
        "cloud_instance_name": "entra-emulator",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    json_response(StatusCode::OK, &body, None)
}

fn keys_document(shared: &Shared, issuer: Option<&str>) -> Value {
    json!({ "keys": [shared.signing.jwk(issuer)] })
}

/// `GET /discovery/v2.0/keys`.
pub(super) async fn common_keys(State(shared): State<Arc<Shared>>) -> Response {
    let issuer = format!("{}/{{tenantid}}/v2.0", shared.urls.https);
    json_response(StatusCode::OK, &keys_document(&shared, Some(&issuer)), None)
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub(super) async fn tenant_keys(
    State(shared): State<Arc<Shared>>,
    Extension(info): Extension<RequestInfo>,
    uri: Uri,
) -> Response {
    let segment = classify(uri.path()).1.unwrap_or_default();
    let Some((tenant, multi)) = discovery_tenant(&shared, &segment) else {
        return unknown_tenant(&shared, &info, &segment);
    };
    let issuer = if multi {
        format!("{}/{{tenantid}}/v2.0", shared.urls.https)
    } else {
        shared.issuer(&tenant)
    };
    json_response(StatusCode::OK, &keys_document(&shared, Some(&issuer)), None)
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...`: this emulator
/// is its own (only) instance.
pub(super) async fn instance_discovery(
    State(shared): State<Arc<Shared>>,
    Extension(info): Extension<RequestInfo>,
    uri: Uri,
) -> Response {
    let base = info.base_url(&shared);
    let tenant = uri
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "authorization_endpoint")
                .map(|(_, v)| v.into_owned())
        })
        .and_then(|e| url::Url::parse(&e).ok())
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_owned))
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "common".to_owned());
    let host = base
        .split_once("://")
        .map_or(base, |(_, host)| host)
        .to_owned();
    let body = json!({
        "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    });
    json_response(StatusCode::OK, &body, None)
}
