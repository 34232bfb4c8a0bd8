//! Which endpoint family a request path belongs to.
//!
//! One function, [`classify`], names the endpoint of a path for the request log and for fault
//! matching. A new endpoint family (managed identity, say) adds its variants here and its routes
//! in its own module.

use serde::{Deserialize, Serialize};

/// The kind of endpoint a request was addressed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndpointKind {
    /// `/{tenant}/oauth2/v2.0/token` (and the v1 `/{tenant}/oauth2/token`).
    Token,
    /// `/{tenant}/v2.0/.well-known/openid-configuration`.
    OpenIdConfiguration,
    /// `/discovery/v2.0/keys` and `/{tenant}/discovery/v2.0/keys`.
    Jwks,
    /// `/common/discovery/instance` (instance discovery).
    InstanceDiscovery,
    /// The emulator's own control API under `/_emulator/`.
    Admin,
    /// Managed identity, IMDS v1: `/metadata/identity/oauth2/token` on the plain HTTP listener.
    Imds,
    /// Managed identity, IMDSv2 platform metadata: `/metadata/identity/getplatformmetadata`.
    ImdsPlatformMetadata,
    /// Managed identity, IMDSv2 certificate issuance: `/metadata/identity/issuecredential`.
    ImdsIssueCredential,
    /// Managed identity, IMDSv2 token leg: everything on the mutual-TLS listener.
    MtlsToken,
    /// Managed identity, App Service: `/msi/token`.
    AppService,
    /// Managed identity, Service Fabric: everything on the Service Fabric listener.
    ServiceFabric,
    /// Managed identity, Azure Arc: `/arc/metadata/identity/oauth2/token`.
    Arc,
    /// Managed identity, Cloud Shell: `/cloudshell/token`.
    CloudShell,
    /// Managed identity, Azure Machine Learning: `/ml/token`.
    MachineLearning,
    /// Anything else.
    Other,
}

impl EndpointKind {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Token => "token",
            EndpointKind::OpenIdConfiguration => "open_id_configuration",
            EndpointKind::Jwks => "jwks",
            EndpointKind::InstanceDiscovery => "instance_discovery",
            EndpointKind::Admin => "admin",
            EndpointKind::Imds => "imds",
            EndpointKind::ImdsPlatformMetadata => "imds_platform_metadata",
            EndpointKind::ImdsIssueCredential => "imds_issue_credential",
            EndpointKind::MtlsToken => "mtls_token",
            EndpointKind::AppService => "app_service",
            EndpointKind::ServiceFabric => "service_fabric",
            EndpointKind::Arc => "arc",
            EndpointKind::CloudShell => "cloud_shell",
            EndpointKind::MachineLearning => "machine_learning",
            EndpointKind::Other => "other",
        }
    }
}

/// The endpoint kind of `path` and, for tenant-scoped endpoints, the tenant segment as sent.
pub(crate) fn classify(path: &str) -> (EndpointKind, Option<String>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let tenant = |s: &str| Some(s.to_owned());
    match segments.as_slice() {
        ["_emulator", ..] => (EndpointKind::Admin, None),
        ["metadata", "identity", "oauth2", "token"] => (EndpointKind::Imds, None),
        ["metadata", "identity", "getplatformmetadata"] => {
            (EndpointKind::ImdsPlatformMetadata, None)
        }
        ["metadata", "identity", "issuecredential"] => (EndpointKind::ImdsIssueCredential, None),
        ["msi", "token"] => (EndpointKind::AppService, None),
        ["arc", "metadata", "identity", "oauth2", "token"] => (EndpointKind::Arc, None),
        ["cloudshell", "token"] => (EndpointKind::CloudShell, None),
        ["ml", "token"] => (EndpointKind::MachineLearning, None),
        [t, "oauth2", "v2.0", "token"] | [t, "oauth2", "token"] => (EndpointKind::Token, tenant(t)),
        [t, "v2.0", ".well-known", "openid-configuration"]
        | [t, ".well-known", "openid-configuration"] => {
            (EndpointKind::OpenIdConfiguration, tenant(t))
        }
        ["discovery", "v2.0", "keys"] | ["discovery", "keys"] => (EndpointKind::Jwks, None),
        [t, "discovery", "v2.0", "keys"] | [t, "discovery", "keys"] => {
            (EndpointKind::Jwks, tenant(t))
        }
        ["common", "discovery", "instance"] => (EndpointKind::InstanceDiscovery, None),
        _ => (EndpointKind::Other, None),
    }
}

/// The endpoint kind of a request to the mutual-TLS listener, and the tenant segment of a
/// token request.
pub(crate) fn classify_mtls(path: &str) -> (EndpointKind, Option<String>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [t, "oauth2", "v2.0", "token"] => (EndpointKind::MtlsToken, Some((*t).to_owned())),
        _ => (EndpointKind::Other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        assert_eq!(
            classify("/t1/oauth2/v2.0/token"),
            (EndpointKind::Token, Some("t1".into()))
        );
        assert_eq!(
            classify("/t1/v2.0/.well-known/openid-configuration").0,
            EndpointKind::OpenIdConfiguration
        );
        assert_eq!(classify("/discovery/v2.0/keys"), (EndpointKind::Jwks, None));
        assert_eq!(classify("/_emulator/requests").0, EndpointKind::Admin);
        assert_eq!(classify("/nope").0, EndpointKind::Other);
        assert_eq!(
            classify("/metadata/identity/oauth2/token"),
            (EndpointKind::Imds, None)
        );
        assert_eq!(classify("/msi/token").0, EndpointKind::AppService);
        assert_eq!(
            classify("/metadata/identity/getplatformmetadata").0,
            EndpointKind::ImdsPlatformMetadata
        );
        assert_eq!(
            classify("/metadata/identity/issuecredential").0,
            EndpointKind::ImdsIssueCredential
        );
        assert_eq!(
            classify_mtls("/t1/oauth2/v2.0/token"),
            (EndpointKind::MtlsToken, Some("t1".into()))
        );
        assert_eq!(classify_mtls("/x").0, EndpointKind::Other);
        assert_eq!(
            classify("/arc/metadata/identity/oauth2/token").0,
            EndpointKind::Arc
        );
        assert_eq!(classify("/cloudshell/token").0, EndpointKind::CloudShell);
        assert_eq!(classify("/ml/token").0, EndpointKind::MachineLearning);
        for kind in [EndpointKind::AppService, EndpointKind::MachineLearning] {
            let json = serde_json::to_value(kind).unwrap_or_default();
            assert_eq!(json.as_str(), Some(kind.as_str()));
        }
    }
}
