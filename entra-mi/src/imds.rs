//! IMDS v1: `GET {base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
//! with `Metadata: true`, on virtual machines, scale sets and AKS (pod identity overrides the
//! base with `AZURE_POD_IDENTITY_AUTHORITY_HOST`).

use entra_core::{Env, Error, HttpRequest};
use http::Method;
use url::Url;

use crate::detect::var;
use crate::source::{ManagedIdentitySource, header, parse_endpoint, request};
use crate::{ManagedIdentityId, ManagedIdentitySourceKind};

/// The IMDS address on every Azure virtual machine.
pub const IMDS_BASE: &str = "http://169.254.169.254";
const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
const API_VERSION: &str = "2018-02-01";

#[derive(Debug)]
pub(crate) struct Imds {
    endpoint: Url,
    id: ManagedIdentityId,
}

impl Imds {
    pub(crate) fn new(env: &dyn Env, id: &ManagedIdentityId) -> Result<Self, Error> {
        let base = var(env, "AZURE_POD_IDENTITY_AUTHORITY_HOST");
        let base = base.as_deref().map_or(IMDS_BASE, str::trim);
        let endpoint = format!("{}{TOKEN_PATH}", base.trim_end_matches('/'));
        Ok(Self {
            endpoint: parse_endpoint("AZURE_POD_IDENTITY_AUTHORITY_HOST", &endpoint)?,
            id: id.clone(),
        })
    }
}

impl ManagedIdentitySource for Imds {
    fn kind(&self) -> ManagedIdentitySourceKind {
        ManagedIdentitySourceKind::Imds
    }

    fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn request(&self, resource: &str) -> HttpRequest {
        let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
        match &self.id {
            ManagedIdentityId::SystemAssigned => {}
            ManagedIdentityId::ClientId(id) => query.push(("client_id", id)),
            ManagedIdentityId::ObjectId(id) => query.push(("object_id", id)),
            ManagedIdentityId::ResourceId(id) => query.push(("msi_res_id", id)),
        }
        let mut request = request(Method::GET, &self.endpoint, &query);
        header(&mut request, "metadata", "true");
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_core::MapEnv;

    fn url(env: &MapEnv, id: ManagedIdentityId) -> String {
        let request = Imds::new(env, &id)
            .unwrap()
            .request("https://vault.azure.net");
        assert_eq!(request.method, Method::GET);
        assert_eq!(request.headers["metadata"], "true");
        request.url.to_string()
    }

    #[test]
    fn requests_per_selector() {
        let env = MapEnv::default();
        let base = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";
        assert_eq!(url(&env, ManagedIdentityId::SystemAssigned), base);
        assert_eq!(
            url(&env, ManagedIdentityId::ClientId("c-1".into())),
            format!("{base}&client_id=c-1")
        );
        assert_eq!(
            url(&env, ManagedIdentityId::ObjectId("o-1".into())),
            format!("{base}&object_id=o-1")
        );
        assert_eq!(
            url(
                &env,
                ManagedIdentityId::ResourceId("/subscriptions/s/rg".into())
            ),
            format!("{base}&msi_res_id=%2Fsubscriptions%2Fs%2Frg")
        );
    }

    #[test]
    fn pod_identity_overrides_the_base() {
        let env = MapEnv::new([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://10.0.0.7:2579/")]);
        assert!(url(&env, ManagedIdentityId::SystemAssigned).starts_with(
            "http://10.0.0.7:2579/metadata/identity/oauth2/token?api-version=2018-02-01&"
        ));
        let env = MapEnv::new([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "not a url")]);
        assert!(matches!(
            Imds::new(&env, &ManagedIdentityId::SystemAssigned),
            Err(Error::Configuration(_))
        ));
    }
}
