//! Azure Arc: `GET /arc/metadata/identity/oauth2/token?api-version=2020-06-01&resource=...` with
//! `Metadata: true`, in two steps.
//!
//! Without `Authorization`, the emulator writes a key file of random text into the Arc key
//! directory and answers 401 with `WWW-Authenticate: Basic realm=<absolute path>`; the client
//! reads the file and asks again with `Authorization: Basic <file content>`. A content that is
//! not one the emulator wrote gets a new challenge. System-assigned identity only.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Uri, header};
use serde_json::json;

use super::{Params, Problem, has_metadata, issue, ok};
use crate::state::Shared;

const API_VERSIONS: &[&str] = &["2020-06-01", "2019-11-01"];

/// Parameters that would select a user-assigned identity.
const REFUSED: &[&str] = &[
    "client_id",
    "object_id",
    "msi_res_id",
    "mi_res_id",
    "principalId",
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
    params.refuse(REFUSED, "Azure Arc")?;
    let resource = params.resource()?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest)
        });
    match presented {
        Some(key) if shared.mi.is_arc_key(key) => {}
        _ => return challenge(shared),
    }
    let minted = issue(shared, None, resource, None)?;
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

/// Write a new key file and answer 401 naming it.
fn challenge(shared: &Shared) -> Result<Response, Problem> {
    let path = shared.mi.new_arc_key().map_err(|e| {
        tracing::warn!(error = %e, "could not write the azure arc key file");
        Problem::internal("could not write the challenge key file")
    })?;
    let mut response = Problem::unauthorized(
        "read the key file named in WWW-Authenticate and send its content as 'Authorization: Basic <content>'",
    )
    .oauth();
    let value = HeaderValue::from_str(&format!("Basic realm={}", path.display()))
        .map_err(|_| Problem::internal("the key directory path is not a valid header value"))?;
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    Ok(response)
}
