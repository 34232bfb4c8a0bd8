//! `AzureCliCredential`: the account signed in to the Azure CLI (`az login`).

use async_trait::async_trait;
use entra_core::{AccessToken, Error, Secret, TokenCredential, TokenRequest};

use crate::developer_tool::{
    DeveloperToolOptions, Tool, ToolConfig, garbage, parse_json, unix_seconds,
};

/// The name this credential reports in errors and in `AZURE_TOKEN_CREDENTIALS`.
pub const AZURE_CLI_CREDENTIAL: &str = "AzureCliCredential";

/// Options of an [`AzureCliCredential`].
pub type AzureCliCredentialOptions = DeveloperToolOptions;

const TOOL: Tool = Tool {
    credential: AZURE_CLI_CREDENTIAL,
    display: "the Azure CLI",
    program: "az",
    install: "install it from https://aka.ms/azure-cli and run `az login`",
    login: "az login",
    not_logged_in: &["az login", "az account set", "not logged in"],
};

/// Tokens of the account signed in to the Azure CLI, for development machines:
/// `az account get-access-token --output json --scope <scope> [--tenant <tenant>]`, run with a
/// timeout. A missing `az` or a signed-out CLI is [`Error::Unavailable`] (with the CLI's
/// advice); any other failure carries the CLI's error output, never a token.
///
/// ```
/// use std::sync::Arc;
/// use entra::{AzureCliCredential, AzureCliCredentialOptions};
/// use entra_core::{MapEnv, TokenCredential, TokenRequest};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // No `az` on this PATH: unavailable, so a chain would try the next credential.
/// let env = MapEnv::new([("PATH", "/nonexistent")]);
/// let credential = AzureCliCredential::new(AzureCliCredentialOptions::new().env(Arc::new(env)));
/// let err = credential.get_token(&TokenRequest::new(["https://vault.azure.net/.default"])).await.unwrap_err();
/// assert!(err.is_unavailable());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct AzureCliCredential {
    config: ToolConfig,
}

impl AzureCliCredential {
    /// A credential with `options`.
    pub fn new(options: AzureCliCredentialOptions) -> Self {
        Self {
            config: options.into_config(),
        }
    }
}

#[async_trait]
impl TokenCredential for AzureCliCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let stdout = self
            .config
            .run(&TOOL, request, |scope, tenant| {
                let mut args: Vec<String> = [
                    "account",
                    "get-access-token",
                    "--output",
                    "json",
                    "--scope",
                    scope,
                ]
                .map(str::to_owned)
                .to_vec();
                if let Some(t) = tenant {
                    args.extend(["--tenant".to_owned(), t.to_owned()]);
                }
                args
            })
            .await?;
        let json = parse_json(&TOOL, &stdout)?;
        let token = json
            .get("accessToken")
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| garbage(&TOOL, "the output has no `accessToken`"))?;
        let expires_on = json
            .get("expires_on")
            .and_then(unix_seconds)
            .ok_or_else(|| {
                garbage(
                    &TOOL,
                    "the output has no usable `expires_on` (Azure CLI 2.54 or later prints it)",
                )
            })?;
        Ok(self.config.token(Secret::new(token.trim()), expires_on))
    }
}
