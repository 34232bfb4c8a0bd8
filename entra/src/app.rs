//! What the application credentials share: a `TokenClient` and the tenant rule.

use std::borrow::Cow;

use entra_core::{AccessToken, Error, TokenClient, TokenRequest};

use crate::tenant::resolve_tenant;

/// A confidential client: one `TokenClient` (the one token exchange) and the tenants it may
/// also use.
#[derive(Debug, Clone)]
pub(crate) struct AppCredential {
    pub(crate) name: &'static str,
    pub(crate) client: TokenClient,
    pub(crate) allowed_tenants: Vec<String>,
}

impl AppCredential {
    pub(crate) async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let tenant = resolve_tenant(
            self.name,
            Some(self.client.tenant().as_str()),
            request.tenant.as_deref(),
            &self.allowed_tenants,
        )?;
        let request: Cow<'_, TokenRequest> = match (&request.tenant, tenant) {
            (Some(_), Some(t)) => {
                let mut r = request.clone();
                r.tenant = Some(t);
                Cow::Owned(r)
            }
            _ => Cow::Borrowed(request),
        };
        self.client.get_token(&request).await
    }
}
