//! Azure Machine Learning: `GET /ml/token?api-version=2017-09-01&resource=...` with
//! `Metadata: true` and `secret: <ml_secret>`.
//!
//! Selector `clientid`; `expires_on` is a JSON integer.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, Uri};
use serde_json::json;

use super::{Params, Problem, Selector, SelectorParam, has_metadata, has_secret, issue, ok};
use crate::state::Shared;

const API_VERSIONS: &[&str] = &["2017-09-01"];

const SELECTORS: &[SelectorParam] = &[("clientid", Selector::Client)];

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
    if !has_metadata(headers) {
        return Err(Problem::missing_metadata());
    }
    if !has_secret(headers, "secret", &shared.mi.ml_secret) {
        return Err(Problem::unauthorized(
            "the secret header is missing or does not match MSI_SECRET",
        ));
    }
    let params = Params::query(uri);
    params.api_version(API_VERSIONS)?;
    // Azure ML names even its system-assigned identity by client id
    // (`$DEFAULT_IDENTITY_CLIENT_ID`); any other client id selects a user-assigned identity.
    let selector = params
        .selector(SELECTORS)?
        .filter(|s| !shared.mi.names_system_by_client_id(s));
    let resource = params.resource()?;
    let minted = issue(shared, selector.as_ref(), resource, None)?;
    Ok(ok(&json!({
        "access_token": minted.access_token,
        "expires_on": minted.expires_on,
        "resource": minted.resource,
        "token_type": "Bearer",
        "client_id": minted.client_id,
    })))
}
