//! Cloud Shell: `POST /cloudshell/token` with `Metadata: true` and the form `resource=...`.
//!
//! System-assigned identity only. Cloud Shell tokens live at most one hour.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, Uri};
use serde_json::json;

use super::{Params, Problem, has_metadata, issue, ok};
use crate::state::Shared;

/// The longest lifetime of a Cloud Shell token.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// Parameters that would select a user-assigned identity.
const REFUSED: &[&str] = &["client_id", "object_id", "msi_res_id", "mi_res_id"];

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&shared, &uri, &headers, &body) {
        Ok(response) => response,
        Err(problem) => problem.oauth(),
    }
}

fn handle(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Problem> {
    if !has_metadata(headers) {
        return Err(Problem::missing_metadata());
    }
    let form = Params(crate::server::parse_form(headers, body));
    form.refuse(REFUSED, "Cloud Shell")?;
    Params::query(uri).refuse(REFUSED, "Cloud Shell")?;
    let resource = form
        .get("resource")
        .ok_or_else(|| Problem::bad_request("Required form field 'resource' is missing"))?;
    let minted = issue(shared, None, resource, Some(MAX_LIFETIME))?;
    Ok(ok(&json!({
        "access_token": minted.access_token,
        "expires_in": minted.expires_on.saturating_sub(minted.now).to_string(),
        "expires_on": minted.expires_on.to_string(),
        "resource": minted.resource,
        "token_type": "Bearer",
    })))
}
