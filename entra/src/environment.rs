//! `EnvironmentCredential`: an application configured by `AZURE_*` environment variables.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use entra_core::{AccessToken, ClientCredential, Error, Secret, TokenCredential, TokenRequest};

use crate::CredentialOptions;
use crate::app::AppCredential;
use crate::client_certificate::ClientCertificateCredential;

/// The name this credential reports in errors and in `AZURE_TOKEN_CREDENTIALS`.
pub const ENVIRONMENT_CREDENTIAL: &str = "EnvironmentCredential";

/// The largest certificate file read.
const MAX_CERTIFICATE_BYTES: u64 = 1024 * 1024;

/// An application (service principal) configured by environment variables:
///
/// - `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`, and
/// - `AZURE_CLIENT_SECRET`, or `AZURE_CLIENT_CERTIFICATE_PATH` (PEM or PKCS#12) with
///   optional `AZURE_CLIENT_CERTIFICATE_PASSWORD` and `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`
///   (`1` or `true`).
///
/// When variables are missing, every request fails with [`Error::Unavailable`] naming them,
/// so a chain moves on. When they are present but unusable (an unreadable certificate, a bad
/// tenant), requests fail with that error, which stops a chain. A request for another tenant
/// is allowed when `AZURE_ADDITIONALLY_ALLOWED_TENANTS` (or the options) lists it.
///
/// ```
/// use std::sync::Arc;
/// use entra::{CredentialOptions, EnvironmentCredential};
/// use entra_core::{MapEnv, TokenCredential, TokenRequest};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let env = MapEnv::new([("AZURE_TENANT_ID", "contoso.onmicrosoft.com")]);
/// let credential = EnvironmentCredential::new(CredentialOptions::new().env(Arc::new(env)));
/// let err = credential.get_token(&TokenRequest::new(["https://vault.azure.net/.default"])).await.unwrap_err();
/// assert!(err.is_unavailable());
/// assert!(err.to_string().contains("AZURE_CLIENT_ID"));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct EnvironmentCredential {
    state: Result<AppCredential, Error>,
}

impl EnvironmentCredential {
    /// Reads the environment of `options` (the process environment by default).
    pub fn new(options: CredentialOptions) -> Self {
        Self {
            state: configure(&options),
        }
    }
}

fn configure(options: &CredentialOptions) -> Result<AppCredential, Error> {
    let env = options.env_or_default();
    let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    let tenant = var("AZURE_TENANT_ID");
    let client_id = var("AZURE_CLIENT_ID");
    let secret = var("AZURE_CLIENT_SECRET");
    let cert_path = var("AZURE_CLIENT_CERTIFICATE_PATH");
    let mut missing = Vec::new();
    if tenant.is_none() {
        missing.push("AZURE_TENANT_ID");
    }
    if client_id.is_none() {
        missing.push("AZURE_CLIENT_ID");
    }
    if secret.is_none() && cert_path.is_none() {
        missing.push("AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH");
    }
    let (Some(tenant), Some(client_id), false) = (tenant, client_id, !missing.is_empty()) else {
        return Err(Error::unavailable(
            ENVIRONMENT_CREDENTIAL,
            format!(
                "environment variables are not fully configured: missing {}; set them for a \
                 service principal",
                missing.join(", ")
            ),
        ));
    };
    let credential = match (secret, cert_path) {
        (Some(secret), _) => ClientCredential::Secret(Secret::new(secret)),
        (None, Some(path)) => {
            let bytes = options
                .file_system_or_default()
                .read_at_most(Path::new(&path), MAX_CERTIFICATE_BYTES + 1)
                .map_err(|e| {
                    Error::Configuration(format!(
                        "cannot read AZURE_CLIENT_CERTIFICATE_PATH {path}: {e}; check the path \
                         and its permissions"
                    ))
                })?;
            if bytes.len() as u64 > MAX_CERTIFICATE_BYTES {
                return Err(Error::Configuration(format!(
                    "AZURE_CLIENT_CERTIFICATE_PATH {path} is larger than 1 MiB; point it at a \
                     PEM or PKCS#12 file"
                )));
            }
            let password = var("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(Secret::new);
            let certificate = ClientCertificateCredential::load_certificate(
                &bytes,
                password.as_ref().map(Secret::expose),
            )?;
            let send_chain = var("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").is_some_and(|v| {
                let v = v.trim();
                v == "1" || v.eq_ignore_ascii_case("true")
            });
            ClientCredential::Certificate {
                certificate: Arc::new(certificate),
                send_chain,
            }
        }
        (None, None) => unreachable!("checked above"),
    };
    Ok(AppCredential {
        name: ENVIRONMENT_CREDENTIAL,
        client: options.token_client(&tenant, &client_id, credential)?,
        allowed_tenants: options.allowed_tenants(true),
    })
}

#[async_trait]
impl TokenCredential for EnvironmentCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        match &self.state {
            Ok(app) => app.get_token(request).await,
            Err(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_core::MapEnv;
    use entra_mi::MemoryFileSystem;

    fn credential(vars: &[(&str, &str)]) -> EnvironmentCredential {
        EnvironmentCredential::new(
            CredentialOptions::new()
                .env(Arc::new(MapEnv::new(vars.iter().copied())))
                .file_system(Arc::new(MemoryFileSystem::new())),
        )
    }

    #[test]
    fn lists_every_missing_variable() {
        let err = credential(&[]).state.unwrap_err();
        assert!(err.is_unavailable());
        let text = err.to_string();
        for name in [
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
        ] {
            assert!(text.contains(name), "{text}");
        }
        let err = credential(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")])
            .state
            .unwrap_err();
        assert!(!err.to_string().contains("AZURE_TENANT_ID"));
    }

    #[test]
    fn secret_configuration_is_used_and_never_shown() {
        let c = credential(&[
            ("AZURE_TENANT_ID", "contoso"),
            ("AZURE_CLIENT_ID", "app"),
            ("AZURE_CLIENT_SECRET", "very-secret-value"),
        ]);
        assert!(c.state.is_ok());
        assert!(!format!("{c:?}").contains("very-secret-value"));
    }

    #[test]
    fn an_unreadable_certificate_is_a_real_failure() {
        let err = credential(&[
            ("AZURE_TENANT_ID", "contoso"),
            ("AZURE_CLIENT_ID", "app"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/nowhere/cert.pem"),
        ])
        .state
        .unwrap_err();
        assert!(!err.is_unavailable());
        assert!(err.to_string().contains("/nowhere/cert.pem"));
    }
}
