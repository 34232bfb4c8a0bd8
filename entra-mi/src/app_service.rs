//! App Service and Azure Functions: `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…`
//! with `X-IDENTITY-HEADER: $IDENTITY_HEADER`.

use entra_core::{Env, Error, HttpRequest};
use http::{HeaderValue, Method};
use url::Url;

use crate::source::{
    ManagedIdentitySource, endpoint_from_env, request, secret_from_env, secret_header_value,
};
use crate::{ManagedIdentityId, ManagedIdentitySourceKind};

const API_VERSION: &str = "2019-08-01";

#[derive(Debug)]
pub(crate) struct AppService {
    endpoint: Url,
    /// `IDENTITY_HEADER`, marked sensitive.
    identity_header: HeaderValue,
    id: ManagedIdentityId,
}

impl AppService {
    pub(crate) fn new(env: &dyn Env, id: &ManagedIdentityId) -> Result<Self, Error> {
        let secret = secret_from_env(env, "IDENTITY_HEADER")?;
        Ok(Self {
            endpoint: endpoint_from_env(env, "IDENTITY_ENDPOINT")?,
            identity_header: secret_header_value(&secret, "IDENTITY_HEADER")?,
            id: id.clone(),
        })
    }
}

impl ManagedIdentitySource for AppService {
    fn kind(&self) -> ManagedIdentitySourceKind {
        ManagedIdentitySourceKind::AppService
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
            ManagedIdentityId::ResourceId(id) => query.push(("mi_res_id", id)),
        }
        let mut request = request(Method::GET, &self.endpoint, &query);
        request
            .headers
            .insert("x-identity-header", self.identity_header.clone());
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_core::MapEnv;

    fn env() -> MapEnv {
        MapEnv::new([
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "HEADER-SECRET"),
        ])
    }

    #[test]
    fn requests_per_selector() {
        let base = "http://127.0.0.1:41741/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fstorage.azure.com";
        for (id, extra) in [
            (ManagedIdentityId::SystemAssigned, ""),
            (ManagedIdentityId::ClientId("c".into()), "&client_id=c"),
            (ManagedIdentityId::ObjectId("o".into()), "&object_id=o"),
            (
                ManagedIdentityId::ResourceId("/r".into()),
                "&mi_res_id=%2Fr",
            ),
        ] {
            let source = AppService::new(&env(), &id).unwrap();
            let request = source.request("https://storage.azure.com");
            assert_eq!(request.method, Method::GET);
            assert_eq!(request.url.as_str(), format!("{base}{extra}"));
            assert_eq!(request.headers["x-identity-header"], "HEADER-SECRET");
            assert!(request.headers["x-identity-header"].is_sensitive());
            assert!(!format!("{source:?} {request:?}").contains("HEADER-SECRET"));
        }
    }

    #[test]
    fn bad_environment_is_a_configuration_error() {
        let env = MapEnv::new([("IDENTITY_ENDPOINT", "ftp://x"), ("IDENTITY_HEADER", "h")]);
        assert!(matches!(
            AppService::new(&env, &ManagedIdentityId::SystemAssigned),
            Err(Error::Configuration(m)) if m.contains("IDENTITY_ENDPOINT")
        ));
        let env = MapEnv::new([
            ("IDENTITY_ENDPOINT", "http://x"),
            ("IDENTITY_HEADER", "bad\nSECRET"),
        ]);
        let err = AppService::new(&env, &ManagedIdentityId::SystemAssigned).unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}
