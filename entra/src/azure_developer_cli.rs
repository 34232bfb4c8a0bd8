//! `AzureDeveloperCliCredential`: the account signed in to the Azure Developer CLI.

use async_trait::async_trait;
use entra_core::{AccessToken, Error, Secret, TokenCredential, TokenRequest};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::developer_tool::{DeveloperToolOptions, Tool, ToolConfig, garbage, parse_json};

/// The name this credential reports in errors and in `AZURE_TOKEN_CREDENTIALS`.
pub const AZURE_DEVELOPER_CLI_CREDENTIAL: &str = "AzureDeveloperCliCredential";

/// Options of an [`AzureDeveloperCliCredential`].
pub type AzureDeveloperCliCredentialOptions = DeveloperToolOptions;

const TOOL: Tool = Tool {
    credential: AZURE_DEVELOPER_CLI_CREDENTIAL,
    display: "the Azure Developer CLI",
    program: "azd",
    install: "install it from https://aka.ms/azd and run `azd auth login`",
    login: "azd auth login",
    not_logged_in: &["azd auth login", "not logged in"],
};

/// Tokens of the account signed in to the Azure Developer CLI:
/// `azd auth token --output json --scope <scope> [--tenant-id <tenant>]`, run with a timeout.
/// A missing `azd` or a signed-out azd is [`Error::Unavailable`]; any other failure carries
/// azd's error output, never a token.
///
/// ```
/// use std::sync::Arc;
/// use entra::{AzureDeveloperCliCredential, AzureDeveloperCliCredentialOptions};
/// use entra_core::MapEnv;
///
/// let credential = AzureDeveloperCliCredential::new(
///     AzureDeveloperCliCredentialOptions::new()
///         .tenant_id("contoso.onmicrosoft.com")
///         .env(Arc::new(MapEnv::new([("PATH", "/usr/local/bin")]))),
/// );
/// # let _ = credential;
/// ```
#[derive(Debug, Clone)]
pub struct AzureDeveloperCliCredential {
    config: ToolConfig,
}

impl AzureDeveloperCliCredential {
    /// A credential with `options`.
    pub fn new(options: AzureDeveloperCliCredentialOptions) -> Self {
        Self {
            config: options.into_config(),
        }
    }
}

#[async_trait]
impl TokenCredential for AzureDeveloperCliCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let stdout = self
            .config
            .run(&TOOL, request, |scope, tenant| {
                let mut args: Vec<String> = ["auth", "token", "--output", "json", "--scope", scope]
                    .map(str::to_owned)
                    .to_vec();
                if let Some(t) = tenant {
                    args.extend(["--tenant-id".to_owned(), t.to_owned()]);
                }
                args
            })
            .await?;
        let json = parse_json(&TOOL, &stdout)?;
        let token = json
            .get("token")
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| garbage(&TOOL, "the output has no `token`"))?;
        let expires_on = json
            .get("expiresOn")
            .and_then(|v| v.as_str())
            .and_then(|s| OffsetDateTime::parse(s.trim(), &Rfc3339).ok())
            .ok_or_else(|| garbage(&TOOL, "the output has no RFC 3339 `expiresOn`"))?;
        Ok(self
            .config
            .token(Secret::new(token.trim()), expires_on.into()))
    }
}
