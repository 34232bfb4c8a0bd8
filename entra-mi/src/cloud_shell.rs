//! Azure Cloud Shell: `POST $MSI_ENDPOINT` with the form `resource=…` and `Metadata: true`.
//! System-assigned only.

use entra_core::{Env, Error, HttpRequest};
use http::Method;
use url::Url;

use crate::source::{
    ManagedIdentitySource, endpoint_from_env, header, request, unsupported_selector,
};
use crate::{ManagedIdentityId, ManagedIdentitySourceKind};

#[derive(Debug)]
pub(crate) struct CloudShell {
    endpoint: Url,
}

impl CloudShell {
    pub(crate) fn new(env: &dyn Env, id: &ManagedIdentityId) -> Result<Self, Error> {
        if *id != ManagedIdentityId::SystemAssigned {
            return Err(unsupported_selector(
                "cloud shell",
                "supports only the signed-in user's identity (system-assigned); remove the user-assigned identity selector",
            ));
        }
        Ok(Self {
            endpoint: endpoint_from_env(env, "MSI_ENDPOINT")?,
        })
    }
}

impl ManagedIdentitySource for CloudShell {
    fn kind(&self) -> ManagedIdentitySourceKind {
        ManagedIdentitySourceKind::CloudShell
    }

    fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn request(&self, resource: &str) -> HttpRequest {
        let mut request = request(Method::POST, &self.endpoint, &[]);
        header(&mut request, "metadata", "true");
        header(
            &mut request,
            "content-type",
            "application/x-www-form-urlencoded",
        );
        request.body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("resource", resource)
            .finish()
            .into();
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_core::MapEnv;

    #[test]
    fn posts_the_resource_as_a_form() {
        let env = MapEnv::new([("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]);
        let source = CloudShell::new(&env, &ManagedIdentityId::SystemAssigned).unwrap();
        let request = source.request("https://management.core.windows.net/");
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.url.as_str(), "http://localhost:50342/oauth2/token");
        assert_eq!(request.headers["metadata"], "true");
        assert_eq!(
            request.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            &request.body[..],
            b"resource=https%3A%2F%2Fmanagement.core.windows.net%2F"
        );
    }

    #[test]
    fn user_assigned_identities_are_refused() {
        let env = MapEnv::new([("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]);
        for id in [
            ManagedIdentityId::ClientId("c".into()),
            ManagedIdentityId::ObjectId("o".into()),
            ManagedIdentityId::ResourceId("/r".into()),
        ] {
            assert!(matches!(
                CloudShell::new(&env, &id),
                Err(Error::Configuration(m)) if m.contains("cloud shell")
            ));
        }
    }
}
