//! Which managed identity source this host offers, from the environment and the file system
//! (PROTOCOL.md section 4, environment first, IMDS last).

use std::fmt;
use std::path::Path;

use entra_core::Env;

use crate::FileSystem;

/// The Azure Arc agent binary; its presence means the host is an Arc-enabled server.
pub const ARC_AGENT_BINARY: &str = "/opt/azcmagent/bin/himds";

/// A managed identity source: where tokens come from on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentitySourceKind {
    /// Service Fabric (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, `IDENTITY_SERVER_THUMBPRINT`).
    ServiceFabric,
    /// App Service and Azure Functions (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).
    AppService,
    /// Azure Machine Learning (`MSI_ENDPOINT`, `MSI_SECRET`).
    MachineLearning,
    /// Azure Cloud Shell (`MSI_ENDPOINT` alone).
    CloudShell,
    /// Azure Arc (`IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or the Arc agent installed).
    AzureArc,
    /// The Azure Instance Metadata Service of virtual machines (and AKS pod identity).
    Imds,
}

impl ManagedIdentitySourceKind {
    /// A short lower-case name, as used in traces (`imds`, `app_service`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceFabric => "service_fabric",
            Self::AppService => "app_service",
            Self::MachineLearning => "machine_learning",
            Self::CloudShell => "cloud_shell",
            Self::AzureArc => "azure_arc",
            Self::Imds => "imds",
        }
    }
}

impl fmt::Display for ManagedIdentitySourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A variable that is set and not blank.
pub(crate) fn var(env: &dyn Env, name: &str) -> Option<String> {
    env.var(name).filter(|v| !v.trim().is_empty())
}

/// The source this host offers, in PROTOCOL.md order:
///
/// 1. `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT` → Service Fabric;
///    `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` → App Service;
/// 2. `MSI_ENDPOINT` + `MSI_SECRET` → Azure Machine Learning;
/// 3. `MSI_ENDPOINT` alone → Cloud Shell;
/// 4. `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or [`ARC_AGENT_BINARY`] exists → Azure Arc;
/// 5. otherwise IMDS.
///
/// Blank variables count as unset.
///
/// ```
/// use entra_core::MapEnv;
/// use entra_mi::{ManagedIdentitySourceKind, MemoryFileSystem, detect_source};
///
/// let env = MapEnv::new([("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]);
/// assert_eq!(detect_source(&env, &MemoryFileSystem::new()), ManagedIdentitySourceKind::CloudShell);
/// assert_eq!(detect_source(&MapEnv::default(), &MemoryFileSystem::new()), ManagedIdentitySourceKind::Imds);
/// ```
pub fn detect_source(env: &dyn Env, fs: &dyn FileSystem) -> ManagedIdentitySourceKind {
    let has = |name: &str| var(env, name).is_some();
    if has("IDENTITY_ENDPOINT") && has("IDENTITY_HEADER") {
        if has("IDENTITY_SERVER_THUMBPRINT") {
            return ManagedIdentitySourceKind::ServiceFabric;
        }
        return ManagedIdentitySourceKind::AppService;
    }
    if has("MSI_ENDPOINT") {
        if has("MSI_SECRET") {
            return ManagedIdentitySourceKind::MachineLearning;
        }
        return ManagedIdentitySourceKind::CloudShell;
    }
    if (has("IDENTITY_ENDPOINT") && has("IMDS_ENDPOINT")) || fs.exists(Path::new(ARC_AGENT_BINARY))
    {
        return ManagedIdentitySourceKind::AzureArc;
    }
    ManagedIdentitySourceKind::Imds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryFileSystem;
    use ManagedIdentitySourceKind::*;
    use entra_core::MapEnv;

    fn detect(vars: &[&str], arc_binary: bool) -> ManagedIdentitySourceKind {
        let env = MapEnv::new(vars.iter().map(|v| (*v, "http://127.0.0.1:1/x")));
        let fs = if arc_binary {
            MemoryFileSystem::new().with_file(ARC_AGENT_BINARY, "")
        } else {
            MemoryFileSystem::new()
        };
        detect_source(&env, &fs)
    }

    const ALL: &[&str] = &[
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "IDENTITY_SERVER_THUMBPRINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IMDS_ENDPOINT",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    ];

    #[test]
    fn detection_follows_the_protocol_order() {
        // Each step wins over everything after it, including the Arc binary.
        assert_eq!(detect(ALL, true), ServiceFabric);
        assert_eq!(
            detect(
                &[
                    "IDENTITY_ENDPOINT",
                    "IDENTITY_HEADER",
                    "MSI_ENDPOINT",
                    "MSI_SECRET",
                    "IMDS_ENDPOINT"
                ],
                true
            ),
            AppService
        );
        assert_eq!(
            detect(
                &[
                    "MSI_ENDPOINT",
                    "MSI_SECRET",
                    "IDENTITY_ENDPOINT",
                    "IMDS_ENDPOINT"
                ],
                true
            ),
            MachineLearning
        );
        assert_eq!(
            detect(
                &["MSI_ENDPOINT", "IDENTITY_ENDPOINT", "IMDS_ENDPOINT"],
                true
            ),
            CloudShell
        );
        assert_eq!(
            detect(&["IDENTITY_ENDPOINT", "IMDS_ENDPOINT"], false),
            AzureArc
        );
        assert_eq!(detect(&[], true), AzureArc);
        assert_eq!(detect(&["AZURE_POD_IDENTITY_AUTHORITY_HOST"], false), Imds);
        assert_eq!(detect(&[], false), Imds);
    }

    #[test]
    fn partial_sets_fall_through() {
        // A thumbprint or a header without an endpoint means nothing on its own.
        assert_eq!(
            detect(&["IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT"], false),
            Imds
        );
        assert_eq!(detect(&["IDENTITY_ENDPOINT"], false), Imds);
        assert_eq!(detect(&["IMDS_ENDPOINT"], false), Imds);
        assert_eq!(detect(&["MSI_SECRET"], false), Imds);
    }

    #[test]
    fn blank_variables_count_as_unset() {
        let env = MapEnv::new([("IDENTITY_ENDPOINT", "http://x"), ("IDENTITY_HEADER", "  ")]);
        assert_eq!(detect_source(&env, &MemoryFileSystem::new()), Imds);
    }
}
