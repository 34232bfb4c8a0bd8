//! Azure Machine Learning: `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=…&clientid=…`
//! with `Metadata: true` and `secret: $MSI_SECRET`. System-assigned means the compute's
//! default identity, `$DEFAULT_IDENTITY_CLIENT_ID`.

use entra_core::{Env, Error, HttpRequest};
use http::{HeaderValue, Method};
use url::Url;

use crate::detect::var;
use crate::source::{
    ManagedIdentitySource, endpoint_from_env, header, request, secret_from_env,
    secret_header_value, unsupported_selector,
};
use crate::{ManagedIdentityId, ManagedIdentitySourceKind};

const API_VERSION: &str = "2017-09-01";

#[derive(Debug)]
pub(crate) struct MachineLearning {
    endpoint: Url,
    /// `MSI_SECRET`, marked sensitive.
    secret: HeaderValue,
    client_id: Option<String>,
}

impl MachineLearning {
    pub(crate) fn new(env: &dyn Env, id: &ManagedIdentityId) -> Result<Self, Error> {
        let client_id = match id {
            ManagedIdentityId::SystemAssigned => var(env, "DEFAULT_IDENTITY_CLIENT_ID"),
            ManagedIdentityId::ClientId(id) => Some(id.clone()),
            ManagedIdentityId::ObjectId(_) | ManagedIdentityId::ResourceId(_) => {
                return Err(unsupported_selector(
                    "azure machine learning",
                    "selects a user-assigned identity by client id only; pass ManagedIdentityId::ClientId",
                ));
            }
        };
        let secret = secret_from_env(env, "MSI_SECRET")?;
        Ok(Self {
            endpoint: endpoint_from_env(env, "MSI_ENDPOINT")?,
            secret: secret_header_value(&secret, "MSI_SECRET")?,
            client_id,
        })
    }
}

impl ManagedIdentitySource for MachineLearning {
    fn kind(&self) -> ManagedIdentitySourceKind {
        ManagedIdentitySourceKind::MachineLearning
    }

    fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn request(&self, resource: &str) -> HttpRequest {
        let mut query = vec![("api-version", API_VERSION), ("resource", resource)];
        if let Some(id) = &self.client_id {
            query.push(("clientid", id));
        }
        let mut request = request(Method::GET, &self.endpoint, &query);
        header(&mut request, "metadata", "true");
        request.headers.insert("secret", self.secret.clone());
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_core::MapEnv;

    fn env(default_id: bool) -> MapEnv {
        let mut vars = vec![
            ("MSI_ENDPOINT", "http://127.0.0.1:46808/"),
            ("MSI_SECRET", "ML-SECRET"),
        ];
        if default_id {
            vars.push(("DEFAULT_IDENTITY_CLIENT_ID", "default-client"));
        }
        MapEnv::new(vars)
    }

    #[test]
    fn requests_per_selector() {
        let base = "http://127.0.0.1:46808/?api-version=2017-09-01&resource=https%3A%2F%2Fmanagement.azure.com";
        for (env, id, extra) in [
            (
                env(true),
                ManagedIdentityId::SystemAssigned,
                "&clientid=default-client",
            ),
            (env(false), ManagedIdentityId::SystemAssigned, ""),
            (
                env(true),
                ManagedIdentityId::ClientId("mine".into()),
                "&clientid=mine",
            ),
        ] {
            let source = MachineLearning::new(&env, &id).unwrap();
            let request = source.request("https://management.azure.com");
            assert_eq!(request.method, Method::GET);
            assert_eq!(request.url.as_str(), format!("{base}{extra}"));
            assert_eq!(request.headers["metadata"], "true");
            assert_eq!(request.headers["secret"], "ML-SECRET");
            assert!(!format!("{source:?} {request:?}").contains("ML-SECRET"));
        }
    }

    #[test]
    fn object_and_resource_ids_are_refused() {
        for id in [
            ManagedIdentityId::ObjectId("o".into()),
            ManagedIdentityId::ResourceId("/r".into()),
        ] {
            let err = MachineLearning::new(&env(true), &id).unwrap_err();
            assert!(
                matches!(&err, Error::Configuration(m) if m.contains("client id only")),
                "{err}"
            );
        }
    }
}
