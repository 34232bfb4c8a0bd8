//! App Service: `GET /msi/token?api-version=2019-08-01&resource=...` with
//! `X-IDENTITY-HEADER: <app_service_secret>`.
//!
//! Selectors `client_id`, `object_id`, `mi_res_id` (at most one). `expires_on` is unix seconds
//! as a string, or `MM/dd/yyyy HH:mm:ss +00:00` when the date form is switched on.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, Uri};
use serde_json::json;

use super::{Params, Problem, Selector, SelectorParam, has_secret, issue, ok};
use crate::clock::format_app_service_date;
use crate::state::Shared;

const API_VERSIONS: &[&str] = &["2019-08-01"];

const SELECTORS: &[SelectorParam] = &[
    ("client_id", Selector::Client),
    ("object_id", Selector::Object),
    ("mi_res_id", Selector::Resource),
];

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
    if !has_secret(headers, "x-identity-header", &shared.mi.app_service_secret) {
        return Err(Problem::unauthorized(
            "the X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER",
        ));
    }
    let params = Params::query(uri);
    params.api_version(API_VERSIONS)?;
    let selector = params.selector(SELECTORS)?;
    let resource = params.resource()?;
    let minted = issue(shared, selector.as_ref(), resource, None)?;
    let expires_on = if shared.mi.app_service_date() {
        format_app_service_date(minted.expires_on)
    } else {
        minted.expires_on.to_string()
    };
    Ok(ok(&json!({
        "access_token": minted.access_token,
        "expires_on": expires_on,
        "resource": minted.resource,
        "token_type": "Bearer",
        "client_id": minted.client_id,
    })))
}
