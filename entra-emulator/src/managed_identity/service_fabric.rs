//! Service Fabric: `GET /metadata/identity/oauth2/token?api-version=2019-07-01-preview&resource=...`
//! with `secret: <service_fabric_secret>`, on a listener of its own whose self-signed
//! certificate only thumbprint pinning trusts.
//!
//! Selector `principalId` (an object id); `expires_on` is a JSON number.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode, Uri};
use serde_json::json;

use super::{Params, Problem, Selector, SelectorParam, has_secret, issue, ok};
use crate::aadsts::json_response;
use crate::state::Shared;

const API_VERSIONS: &[&str] = &["2019-07-01-preview"];

const SELECTORS: &[SelectorParam] = &[("principalId", Selector::Object)];

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match handle(&shared, &uri, &headers) {
        Ok(response) => response,
        Err(problem) => problem.coded(),
    }
}

fn handle(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    if !has_secret(headers, "secret", &shared.mi.service_fabric_secret) {
        return Err(Problem::unauthorized(
            "the secret header is missing or does not match IDENTITY_HEADER",
        ));
    }
    let params = Params::query(uri);
    params.api_version(API_VERSIONS)?;
    let selector = params.selector(SELECTORS)?;
    let resource = params.resource()?;
    let minted = issue(shared, selector.as_ref(), resource, None)?;
    Ok(ok(&json!({
        "access_token": minted.access_token,
        "expires_on": minted.expires_on,
        "resource": minted.resource,
        "token_type": "Bearer",
    })))
}

pub(super) async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "error": { "code": "NotFound", "message": "the service fabric endpoint is /metadata/identity/oauth2/token" } }),
        None,
    )
}
