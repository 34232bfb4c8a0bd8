//! `entra token`: a token from any credential, printed as ours, `az`'s, a Kubernetes
//! `ExecCredential`, or the bare token.

use std::path::PathBuf;
use std::sync::Arc;

use entra::{
    AzureCliCredential, AzureCliCredentialOptions, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialOptions, ClientCertificateCredential, ClientSecretCredential,
    CredentialOptions, DefaultAzureCredential, DefaultAzureCredentialOptions,
    EnvironmentCredential, ManagedIdentityCredential, ManagedIdentityId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use entra_agent::{AgentUser, Blueprint, BlueprintCredential};
use entra_claims::{AgentSessionId, Claims, SessionClaimsForm};
use entra_core::{
    AccessToken, AuthorityHost, Env, HttpTransport, ReqwestTransport, Secret, SystemEnv,
    TokenCredential, TokenRequest,
};
use serde_json::{Value, json};

use crate::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CredentialKind {
    /// The default chain: environment, workload identity, managed identity, Azure CLI, azd.
    Default,
    /// AZURE_TENANT_ID, AZURE_CLIENT_ID and a secret or certificate from the environment.
    Env,
    /// Kubernetes workload identity (AZURE_FEDERATED_TOKEN_FILE).
    Workload,
    /// The managed identity of the Azure host.
    Mi,
    /// The Azure CLI's signed-in account.
    Cli,
    /// The Azure Developer CLI's signed-in account.
    Azd,
    /// A client secret (read from the variable named by --client-secret-env).
    Secret,
    /// A client certificate (--certificate).
    Cert,
    /// An agent identity under a blueprint (--blueprint-id, --agent-id).
    Agent,
    /// An agent user of an agent identity (--user-id or --username).
    AgentUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// entra-rs's JSON: token, type, expiry and refresh times.
    Json,
    /// The shape of `az account get-access-token --output json`.
    Az,
    /// A Kubernetes ExecCredential (client.authentication.k8s.io v1 or v1beta1), as kubelogin.
    ExecCredential,
    /// The token alone, for `$(entra token …)`.
    Raw,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// The scope to ask for (repeatable), for example `https://graph.microsoft.com/.default`
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Which credential to use.
    #[arg(long, value_enum, default_value = "default")]
    credential: CredentialKind,
    /// The tenant: the home tenant of secret, cert and agent credentials, otherwise a tenant
    /// override for the request.
    #[arg(long)]
    tenant: Option<String>,
    /// The application (client) id (default: AZURE_CLIENT_ID).
    #[arg(long)]
    client_id: Option<String>,
    /// The environment variable holding the client secret (never pass secrets as arguments).
    #[arg(long, default_value = "AZURE_CLIENT_SECRET", value_name = "VAR")]
    client_secret_env: String,
    /// A certificate with its private key: PEM or PKCS#12.
    #[arg(long, value_name = "FILE")]
    certificate: Option<PathBuf>,
    /// The environment variable holding the PKCS#12 password.
    #[arg(long, value_name = "VAR")]
    certificate_password_env: Option<String>,
    /// A claims challenge: JSON, or the base64 `claims` value of a WWW-Authenticate header.
    #[arg(long)]
    claims: Option<String>,
    /// Ask the blueprint (secret or cert credential) for a T1 token for this agent identity.
    #[arg(long, value_name = "AGENT_CLIENT_ID")]
    fmi_path: Option<String>,
    /// The agent identity blueprint's client id (agent, agent-user).
    #[arg(long)]
    blueprint_id: Option<String>,
    /// The blueprint authenticates with the host's managed identity (agent, agent-user).
    #[arg(long)]
    blueprint_managed_identity: bool,
    /// The agent identity's client id (agent, agent-user).
    #[arg(long)]
    agent_id: Option<String>,
    /// The agent user's object id (agent-user; or --username).
    #[arg(long)]
    user_id: Option<String>,
    /// The agent user's user principal name (agent-user; or --user-id).
    #[arg(long)]
    username: Option<String>,
    /// A user-assigned managed identity by client id.
    #[arg(long)]
    mi_client_id: Option<String>,
    /// A user-assigned managed identity by object id.
    #[arg(long)]
    mi_object_id: Option<String>,
    /// A user-assigned managed identity by Azure resource id.
    #[arg(long)]
    mi_resource_id: Option<String>,
    /// An mTLS proof-of-possession token from IMDSv2 (managed identity).
    #[arg(long)]
    mtls_pop: bool,
    /// Send the agentic session claims in the first-design form (`xms_agent_session`).
    #[arg(long)]
    seed_session_claims: bool,
    /// The authority host (default: AZURE_AUTHORITY_HOST, else the public cloud).
    #[arg(long)]
    authority: Option<String>,
    /// Also trust the CA certificates in this PEM file (for example the emulator's).
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// How to print the token.
    #[arg(long, value_enum, default_value = "json")]
    output: OutputFormat,
}

fn required(
    value: Option<String>,
    flag: &str,
    env: &dyn Env,
    var: &str,
) -> Result<String, CliError> {
    value
        .or_else(|| env.var(var))
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| CliError::usage(format!("{flag} is required (or set {var})")))
}

struct Built {
    credential: Arc<dyn TokenCredential>,
    /// The tenant the token comes from, if known (for `--output az`).
    tenant: Option<String>,
}

/// The PEM of `--ca-file`, if given.
fn extra_roots(args: &TokenArgs) -> Result<Option<Vec<u8>>, CliError> {
    let Some(path) = &args.ca_file else {
        return Ok(None);
    };
    std::fs::read(path)
        .map(Some)
        .map_err(|e| CliError::usage(format!("could not read --ca-file {}: {e}", path.display())))
}

fn transport(args: &TokenArgs) -> Result<Option<Arc<dyn HttpTransport>>, CliError> {
    let Some(pem) = extra_roots(args)? else {
        return Ok(None);
    };
    let transport = ReqwestTransport::builder()
        .add_root_certificates_pem(&pem)?
        .build()?;
    Ok(Some(Arc::new(transport)))
}

fn options(args: &TokenArgs, env: &Arc<dyn Env>) -> Result<CredentialOptions, CliError> {
    let mut options = CredentialOptions::new().env(env.clone());
    if let Some(authority) = &args.authority {
        options = options.authority(AuthorityHost::parse(authority)?);
    }
    if let Some(transport) = transport(args)? {
        options = options.transport(transport);
    }
    Ok(options)
}

fn managed_identity_id(args: &TokenArgs) -> Result<ManagedIdentityId, CliError> {
    match (&args.mi_client_id, &args.mi_object_id, &args.mi_resource_id) {
        (None, None, None) => Ok(ManagedIdentityId::SystemAssigned),
        (Some(id), None, None) => Ok(ManagedIdentityId::ClientId(id.clone())),
        (None, Some(id), None) => Ok(ManagedIdentityId::ObjectId(id.clone())),
        (None, None, Some(id)) => Ok(ManagedIdentityId::ResourceId(id.clone())),
        _ => Err(CliError::usage(
            "pass at most one of --mi-client-id, --mi-object-id and --mi-resource-id",
        )),
    }
}

fn managed_identity(
    args: &TokenArgs,
    env: &Arc<dyn Env>,
) -> Result<ManagedIdentityCredential, CliError> {
    let mut builder = ManagedIdentityCredential::builder()
        .identity(managed_identity_id(args)?)
        .env(env.clone())
        .mtls_proof_of_possession(args.mtls_pop);
    if let Some(pem) = extra_roots(args)? {
        builder = builder.mtls_extra_root_certificates_pem(pem);
    }
    Ok(builder.build()?)
}

fn load_certificate(
    args: &TokenArgs,
    env: &dyn Env,
) -> Result<Option<entra_core::ClientCertificate>, CliError> {
    let Some(path) = &args.certificate else {
        return Ok(None);
    };
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::usage(format!(
            "could not read --certificate {}: {e}",
            path.display()
        ))
    })?;
    let password = args
        .certificate_password_env
        .as_deref()
        .and_then(|var| env.var(var));
    Ok(Some(ClientCertificateCredential::load_certificate(
        &bytes,
        password.as_deref(),
    )?))
}

fn blueprint(
    args: &TokenArgs,
    env: &Arc<dyn Env>,
    client_id: &str,
    tenant: &str,
) -> Result<Blueprint, CliError> {
    let credential = if args.blueprint_managed_identity {
        BlueprintCredential::federated(managed_identity(args, env)?)
    } else if let Some(certificate) = load_certificate(args, env.as_ref())? {
        BlueprintCredential::certificate(certificate)
    } else {
        let secret = env
            .var(&args.client_secret_env)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                CliError::usage(format!(
                    "the blueprint needs a credential: set {} to its client secret, or pass \
                 --certificate or --blueprint-managed-identity",
                    args.client_secret_env
                ))
            })?;
        BlueprintCredential::Secret(Secret::new(secret))
    };
    let mut builder = Blueprint::builder(client_id)
        .tenant(tenant)?
        .credential(credential)
        .env(env.clone());
    if let Some(authority) = &args.authority {
        builder = builder.authority(AuthorityHost::parse(authority)?);
    }
    if let Some(transport) = transport(args)? {
        builder = builder.transport(transport);
    }
    if args.seed_session_claims {
        builder = builder.session_claims_form(SessionClaimsForm::Seed);
    }
    Ok(builder.build()?)
}

fn build(args: &TokenArgs, env: &Arc<dyn Env>) -> Result<Built, CliError> {
    let tenant_of = |args: &TokenArgs| {
        required(
            args.tenant.clone(),
            "--tenant",
            env.as_ref(),
            "AZURE_TENANT_ID",
        )
    };
    let client_of = |args: &TokenArgs| {
        required(
            args.client_id.clone(),
            "--client-id",
            env.as_ref(),
            "AZURE_CLIENT_ID",
        )
    };
    let built =
        |credential: Arc<dyn TokenCredential>, tenant: Option<String>| Built { credential, tenant };
    Ok(match args.credential {
        CredentialKind::Default => {
            let mut o = DefaultAzureCredentialOptions::new()
                .options(options(args, env)?)
                .managed_identity(managed_identity_id(args)?);
            if let Some(tenant) = &args.tenant {
                o = o.tenant_id(tenant.clone());
            }
            built(
                Arc::new(DefaultAzureCredential::with_options(o)?),
                args.tenant.clone(),
            )
        }
        CredentialKind::Env => built(
            Arc::new(EnvironmentCredential::new(options(args, env)?)),
            env.var("AZURE_TENANT_ID"),
        ),
        CredentialKind::Workload => {
            let mut o = WorkloadIdentityCredentialOptions::new().options(options(args, env)?);
            if let Some(tenant) = &args.tenant {
                o = o.tenant_id(tenant.clone());
            }
            if let Some(client) = &args.client_id {
                o = o.client_id(client.clone());
            }
            built(
                Arc::new(WorkloadIdentityCredential::new(o)),
                args.tenant.clone().or_else(|| env.var("AZURE_TENANT_ID")),
            )
        }
        CredentialKind::Mi => built(Arc::new(managed_identity(args, env)?), None),
        CredentialKind::Cli => {
            let mut o = AzureCliCredentialOptions::new().env(env.clone());
            if let Some(tenant) = &args.tenant {
                o = o.tenant_id(tenant.clone());
            }
            built(Arc::new(AzureCliCredential::new(o)), args.tenant.clone())
        }
        CredentialKind::Azd => {
            let mut o = AzureDeveloperCliCredentialOptions::new().env(env.clone());
            if let Some(tenant) = &args.tenant {
                o = o.tenant_id(tenant.clone());
            }
            built(
                Arc::new(AzureDeveloperCliCredential::new(o)),
                args.tenant.clone(),
            )
        }
        CredentialKind::Secret | CredentialKind::Cert if args.fmi_path.is_some() => {
            let tenant = tenant_of(args)?;
            let blueprint = blueprint(args, env, &client_of(args)?, &tenant)?;
            built(
                Arc::new(T1Credential {
                    blueprint,
                    fmi_path: args.fmi_path.clone().unwrap_or_default(),
                }),
                Some(tenant),
            )
        }
        CredentialKind::Secret => {
            let tenant = tenant_of(args)?;
            let secret = env
                .var(&args.client_secret_env)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "--credential secret reads the client secret from {}; set it (secrets are \
                     never taken as arguments)",
                        args.client_secret_env
                    ))
                })?;
            let credential = ClientSecretCredential::new(
                &tenant,
                &client_of(args)?,
                Secret::new(secret),
                options(args, env)?,
            )?;
            built(Arc::new(credential), Some(tenant))
        }
        CredentialKind::Cert => {
            let tenant = tenant_of(args)?;
            let certificate = load_certificate(args, env.as_ref())?
                .ok_or_else(|| CliError::usage("--credential cert needs --certificate FILE"))?;
            let credential = ClientCertificateCredential::new(
                &tenant,
                &client_of(args)?,
                certificate,
                options(args, env)?,
            )?;
            built(Arc::new(credential), Some(tenant))
        }
        CredentialKind::Agent | CredentialKind::AgentUser => {
            let tenant = tenant_of(args)?;
            let blueprint_id = required(
                args.blueprint_id.clone(),
                "--blueprint-id",
                env.as_ref(),
                "AZURE_CLIENT_ID",
            )?;
            let agent_id = args
                .agent_id
                .clone()
                .ok_or_else(|| CliError::usage("--agent-id is required for agent credentials"))?;
            let agent = blueprint(args, env, &blueprint_id, &tenant)?.agent_identity(&agent_id)?;
            if args.credential == CredentialKind::AgentUser {
                let user =
                    AgentUser::from_parts(args.user_id.as_deref(), args.username.as_deref())?;
                built(Arc::new(agent.agent_user(user)), Some(tenant))
            } else {
                built(Arc::new(agent), Some(tenant))
            }
        }
    })
}

/// A blueprint's T1 for `--fmi-path` (what `--credential secret|cert --fmi-path` prints).
#[derive(Debug)]
struct T1Credential {
    blueprint: Blueprint,
    fmi_path: String,
}

#[async_trait::async_trait]
impl TokenCredential for T1Credential {
    async fn get_token(&self, _request: &TokenRequest) -> Result<AccessToken, entra_core::Error> {
        Ok(self.blueprint.t1(&self.fmi_path).await?.value)
    }
}

fn claims_challenge(text: &str) -> Result<Claims, CliError> {
    let text = text.trim();
    let json = if text.starts_with('{') {
        text.to_owned()
    } else {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| CliError::usage("--claims is neither JSON nor base64"))?;
        String::from_utf8(bytes).map_err(|_| CliError::usage("--claims is not UTF-8"))?
    };
    Claims::parse(&json).map_err(|e| CliError::usage(format!("--claims: {e}")))
}

pub(crate) async fn run(args: TokenArgs) -> Result<(), CliError> {
    let env: Arc<dyn Env> = Arc::new(SystemEnv);
    run_with(args, env).await
}

pub(crate) async fn run_with(args: TokenArgs, env: Arc<dyn Env>) -> Result<(), CliError> {
    if args.scopes.is_empty() && args.fmi_path.is_none() {
        return Err(CliError::usage(
            "--scope is required, for example --scope https://graph.microsoft.com/.default",
        ));
    }
    let built = build(&args, &env)?;
    let mut request = TokenRequest::new(args.scopes.iter().cloned());
    if let Some(text) = &args.claims {
        request = request.with_claims_challenge(claims_challenge(text)?);
    }
    let tenant_override = matches!(
        args.credential,
        CredentialKind::Default | CredentialKind::Env | CredentialKind::Workload
    );
    if tenant_override && let Some(tenant) = &args.tenant {
        request = request.with_tenant(tenant.clone());
    }
    if let Some(session) = AgentSessionId::from_env(|name| env.var(name))
        .map_err(|e| CliError::usage(format!("COPILOT_AGENT_SESSION_ID: {e}")))?
    {
        let form = if args.seed_session_claims {
            SessionClaimsForm::Seed
        } else {
            SessionClaimsForm::Released
        };
        request = request.with_agent_session(session, form);
    }
    let token = built.credential.get_token(&request).await?;
    let text = render(&token, args.output, built.tenant.as_deref(), env.as_ref())?;
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, text.as_bytes())?;
    Ok(())
}

fn unix(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `az`'s `expiresOn`: `YYYY-MM-DD HH:MM:SS.ffffff` (UTC here; az prints local time).
fn az_time(seconds: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]"
    );
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The text printed for `token` in `format`.
pub(crate) fn render(
    token: &AccessToken,
    format: OutputFormat,
    tenant: Option<&str>,
    env: &dyn Env,
) -> Result<String, CliError> {
    let expires = unix(token.expires_on());
    let value = match format {
        OutputFormat::Raw => return Ok(format!("{}\n", token.token().expose())),
        OutputFormat::Json => json!({
            "access_token": token.token().expose(),
            "token_type": token.scheme(),
            "expires_on": expires,
            "expires_on_utc": rfc3339(expires),
            "refresh_on": unix(token.refresh_on()),
        }),
        OutputFormat::Az => json!({
            "accessToken": token.token().expose(),
            "expiresOn": az_time(expires),
            "expires_on": expires,
            "subscription": Value::Null,
            "tenant": tenant,
            "tokenType": token.scheme(),
        }),
        OutputFormat::ExecCredential => {
            let api_version = exec_api_version(env)?;
            json!({
                "kind": "ExecCredential",
                "apiVersion": api_version,
                "spec": {"interactive": false},
                "status": {
                    "expirationTimestamp": rfc3339(expires),
                    "token": token.token().expose(),
                },
            })
        }
    };
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| CliError::internal(format!("could not write JSON: {e}")))?;
    Ok(format!("{text}\n"))
}

/// The ExecCredential API version kubectl asked for in `KUBERNETES_EXEC_INFO` (v1beta1 when
/// unset, as kubelogin does).
fn exec_api_version(env: &dyn Env) -> Result<&'static str, CliError> {
    const V1: &str = "client.authentication.k8s.io/v1";
    const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
    let Some(info) = env
        .var("KUBERNETES_EXEC_INFO")
        .filter(|s| !s.trim().is_empty())
    else {
        return Ok(V1BETA1);
    };
    let parsed: Value = serde_json::from_str(&info)
        .map_err(|_| CliError::usage("KUBERNETES_EXEC_INFO is not JSON"))?;
    match parsed.get("apiVersion").and_then(Value::as_str) {
        Some(V1) => Ok(V1),
        Some(V1BETA1) | None => Ok(V1BETA1),
        Some(other) => Err(CliError::usage(format!(
            "KUBERNETES_EXEC_INFO asks for apiVersion {other:?}; supported: {V1}, {V1BETA1}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entra_core::{MapEnv, TokenType};
    use std::time::{Duration, UNIX_EPOCH};

    fn token() -> AccessToken {
        let expires = UNIX_EPOCH + Duration::from_secs(1_700_003_600);
        AccessToken::new(
            Secret::new("eyJ.token.value"),
            expires,
            expires - Duration::from_secs(300),
            TokenType::Bearer,
        )
    }

    #[test]
    fn output_shapes() {
        let env = MapEnv::default();
        let raw = render(&token(), OutputFormat::Raw, None, &env).unwrap();
        assert_eq!(raw, "eyJ.token.value\n");
        let az: Value =
            serde_json::from_str(&render(&token(), OutputFormat::Az, Some("t"), &env).unwrap())
                .unwrap();
        assert_eq!(az["accessToken"], "eyJ.token.value");
        assert_eq!(az["expires_on"], 1_700_003_600);
        assert_eq!(az["expiresOn"], "2023-11-14 23:13:20.000000");
        assert_eq!(az["tokenType"], "Bearer");
        assert_eq!(az["tenant"], "t");
        let exec: Value = serde_json::from_str(
            &render(&token(), OutputFormat::ExecCredential, None, &env).unwrap(),
        )
        .unwrap();
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1beta1");
        assert_eq!(
            exec["status"]["expirationTimestamp"],
            "2023-11-14T23:13:20Z"
        );
        let v1 = MapEnv::new([(
            "KUBERNETES_EXEC_INFO",
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#,
        )]);
        let exec: Value = serde_json::from_str(
            &render(&token(), OutputFormat::ExecCredential, None, &v1).unwrap(),
        )
        .unwrap();
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        let bad = MapEnv::new([(
            "KUBERNETES_EXEC_INFO",
            r#"{"apiVersion":"client.authentication.k8s.io/v2"}"#,
        )]);
        assert!(render(&token(), OutputFormat::ExecCredential, None, &bad).is_err());
    }

    #[test]
    fn claims_as_json_or_base64() {
        use base64::Engine as _;
        let json = r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        assert_eq!(
            claims_challenge(json).unwrap(),
            claims_challenge(&b64).unwrap()
        );
        let err = claims_challenge("[\"secret-array\"]").unwrap_err();
        assert!(!err.to_string().contains("secret-array"));
    }
}
