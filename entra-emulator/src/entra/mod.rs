//! The Entra ID endpoint family: token endpoint, OpenID discovery, keys, instance discovery.

mod agent;
mod assertion;
mod discovery;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};

use crate::state::Shared;

pub(crate) use agent::user_claims;

/// The routes of the Entra ID endpoint family.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", any(token::token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/discovery/v2.0/keys", get(discovery::common_keys))
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::tenant_keys))
        .route(
            "/common/discovery/instance",
            get(discovery::instance_discovery),
        )
}
