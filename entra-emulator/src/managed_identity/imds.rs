//! IMDS v1: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`.
//!
//! Requires `Metadata: true`; selectors `client_id`, `object_id`, `msi_res_id` (at most one);
//! every number of the answer is a string. The `Server` header every IMDS answer carries is
//! added by the listener, so faults carry it too.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, Uri};
use serde_json::json;

use super::{Params, Problem, Selector, SelectorParam, has_metadata, issue, ok};
use crate::state::Shared;

/// The API versions accepted (the one clients send first).
const API_VERSIONS: &[&str] = &["2018-02-01", "2019-08-01", "2021-02-01"];

/// The identity selectors of IMDS.
pub(super) const SELECTORS: &[SelectorParam] = &[
    ("client_id", Selector::Client),
    ("object_id", Selector::Object),
    ("msi_res_id", Selector::Resource),
];

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match handle(&shared, &uri, &headers) {
        Ok(response) => response,
        Err(problem) => problem.oauth(),
    }
}

fn handle(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    if !has_metadata(headers) {
        return Err(Problem::missing_metadata());
    }
    let params = Params::query(uri);
    params.api_version(API_VERSIONS)?;
    let selector = params.selector(SELECTORS)?;
    let resource = params.resource()?;
    let minted = issue(shared, selector.as_ref(), resource, None)?;
    let expires_in = minted.expires_in().to_string();
    Ok(ok(&json!({
        "access_token": minted.access_token,
        "client_id": minted.client_id,
        "expires_in": expires_in,
        "expires_on": minted.expires_on.to_string(),
        "ext_expires_in": expires_in,
        "not_before": minted.now.to_string(),
        "resource": minted.resource,
        "token_type": "Bearer",
    })))
}
