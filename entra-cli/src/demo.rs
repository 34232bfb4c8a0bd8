//! `entra demo`: the project's main job on a fresh machine. Starts the emulator in-process,
//! registers a tenant, applications, a blueprint with two agent identities and an agent user,
//! and managed identities; acquires every kind of token over real HTTPS / mutual TLS; checks
//! each token's signature and claims; prints a table. Exits 0 only if every step worked.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use entra_agent::{AgentSessionId, AgentUser, Blueprint, BlueprintCredential};
use entra_core::{
    AccessToken, Acquired, AuthorityHost, ClientCertificate, ClientCredential, Grant,
    HttpTransport, MapEnv, ReqwestTransport, Secret, TokenClient, TokenRequest, TokenSource,
};
use entra_emulator::{AppRegistration, Emulator, ManagedIdentity, UserAccount};
use entra_mi::{ManagedIdentityCredential, ManagedIdentityId};
use serde_json::Value;

use crate::{CliError, FailureClass};

const TENANT: &str = "72f988bf-0000-4000-8000-00000000d3e0";
const SECRET_APP: &str = "de300000-0000-4000-8000-000000000001";
const CERT_APP: &str = "de300000-0000-4000-8000-000000000002";
const BLUEPRINT: &str = "de300000-0000-4000-8000-0000000000b1";
const AGENT_1: &str = "de300000-0000-4000-8000-0000000000a1";
const AGENT_2: &str = "de300000-0000-4000-8000-0000000000a2";
const AGENT_USER: &str = "de300000-0000-4000-8000-0000000000c1";
const AGENT_USER_UPN: &str = "research-agent@demo.example";
const GRAPH: &str = "https://graph.microsoft.com";
const ARM: &str = "https://management.azure.com";
const VAULT: &str = "https://vault.azure.net";

/// One row of the final table.
struct Row {
    flow: &'static str,
    token_type: String,
    audience: String,
    lifetime: String,
    cache: &'static str,
    requests: usize,
}

/// What each step returns: the token, where it came from (`None` for managed identity, which
/// does not say: the request count tells), and the audience to verify.
struct Outcome {
    token: AccessToken,
    source: Option<TokenSource>,
    audience: &'static str,
}

impl Outcome {
    fn acquired(acquired: Acquired<AccessToken>, audience: &'static str) -> Self {
        Self {
            token: acquired.value,
            source: Some(acquired.source),
            audience,
        }
    }
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, String>> + Send + 'a>>;

/// Everything the steps use.
struct Demo {
    emulator: Emulator,
    secret_client: TokenClient,
    cert_client: TokenClient,
    imds_v1: ManagedIdentityCredential,
    imds_v2: ManagedIdentityCredential,
    blueprint: Blueprint,
    session: AgentSessionId,
}

fn fail(what: &str) -> impl Fn(entra_core::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn setup() -> Result<Demo, CliError> {
    let setup_error = |e: &dyn std::fmt::Display| {
        CliError::new(
            FailureClass::DemoFailed,
            format!("setting up the emulator: {e}"),
        )
    };
    let emulator = Emulator::start().await.map_err(|e| setup_error(&e))?;
    let app_secret = format!("demo-{}", uuid::Uuid::new_v4());
    let blueprint_secret = format!("demo-{}", uuid::Uuid::new_v4());
    let cert = entra_emulator::testing::try_client_certificate("entra demo")
        .map_err(|e| setup_error(&e))?;
    let register = || -> Result<(), entra_emulator::EmulatorError> {
        emulator.add_tenant(TENANT)?;
        emulator.add_application(
            TENANT,
            AppRegistration::new(SECRET_APP)
                .display_name("demo secret app")
                .client_secret(app_secret.clone()),
        )?;
        emulator.add_application(
            TENANT,
            AppRegistration::new(CERT_APP)
                .display_name("demo certificate app")
                .certificate_der(cert.cert_der.clone()),
        )?;
        emulator.add_agent_blueprint(
            TENANT,
            AppRegistration::new(BLUEPRINT)
                .display_name("demo agent blueprint")
                .client_secret(blueprint_secret.clone()),
        )?;
        emulator.add_agent_identity(TENANT, BLUEPRINT, AGENT_1)?;
        emulator.add_agent_identity(TENANT, BLUEPRINT, AGENT_2)?;
        emulator.add_agent_user(
            TENANT,
            AGENT_1,
            UserAccount::new(AGENT_USER, AGENT_USER_UPN).display_name("Research Agent"),
        )?;
        emulator.set_system_assigned_identity(ManagedIdentity::new(
            TENANT,
            "de300000-0000-4000-8000-0000000000d1",
            "de300000-0000-4000-8000-0000000000d2",
            "/subscriptions/demo/resourceGroups/demo/providers/Microsoft.Compute/virtualMachines/demo-vm",
        ))?;
        emulator.set_imds_v2_enabled(true);
        Ok(())
    };
    register().map_err(|e| setup_error(&e))?;

    // Trust the emulator's CA, and only it.
    let transport: Arc<dyn HttpTransport> = Arc::new(
        ReqwestTransport::builder()
            .add_root_certificates_pem(emulator.ca_pem().as_bytes())
            .and_then(|b| b.only_added_roots(true).build())?,
    );
    let authority = AuthorityHost::parse(&emulator.https_url())?;
    let client = |id: &str, credential: ClientCredential| -> Result<TokenClient, CliError> {
        Ok(TokenClient::builder(id)
            .authority(authority.clone())
            .tenant(TENANT)?
            .credential(credential)
            .transport(transport.clone())
            .build()?)
    };
    let secret_client = client(
        SECRET_APP,
        ClientCredential::Secret(Secret::new(app_secret)),
    )?;
    let certificate =
        ClientCertificate::from_pem_parts(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())?;
    let cert_client = client(CERT_APP, ClientCredential::certificate(certificate))?;
    // What a virtual machine sees: IMDS at the emulator's plain-HTTP address.
    let vm = || MapEnv::new([("AZURE_POD_IDENTITY_AUTHORITY_HOST", emulator.http_url())]);
    let imds_v1 = ManagedIdentityCredential::builder()
        .identity(ManagedIdentityId::SystemAssigned)
        .env(Arc::new(vm()))
        .build()?;
    let imds_v2 = ManagedIdentityCredential::builder()
        .identity(ManagedIdentityId::SystemAssigned)
        .env(Arc::new(vm()))
        .mtls_proof_of_possession(true)
        .mtls_extra_root_certificates_pem(emulator.ca_pem().as_bytes().to_vec())
        .build()?;
    let blueprint = Blueprint::builder(BLUEPRINT)
        .tenant(TENANT)?
        .credential(BlueprintCredential::Secret(Secret::new(blueprint_secret)))
        .authority(authority.clone())
        .transport(transport.clone())
        .env(Arc::new(MapEnv::default()))
        .build()?;
    let session = AgentSessionId::new(&format!(
        "demo-session-{}",
        &uuid::Uuid::new_v4().to_string()[..8]
    ))
    .map_err(|e| CliError::internal(e.to_string()))?;
    Ok(Demo {
        emulator,
        secret_client,
        cert_client,
        imds_v1,
        imds_v2,
        blueprint,
        session,
    })
}

impl Demo {
    fn step(&self, n: usize) -> (&'static str, StepFuture<'_>) {
        match n {
            0 => (
                "client secret",
                Box::pin(app_token(&self.secret_client, "client secret")),
            ),
            1 => (
                "certificate",
                Box::pin(app_token(&self.cert_client, "certificate")),
            ),
            2 => (
                "managed identity (IMDSv1)",
                Box::pin(async move {
                    use entra_core::TokenCredential as _;
                    let token = self
                        .imds_v1
                        .get_token(&scope(ARM))
                        .await
                        .map_err(fail("IMDS"))?;
                    Ok(Outcome {
                        token,
                        source: None,
                        audience: ARM,
                    })
                }),
            ),
            3 => (
                "managed identity (IMDSv2 mTLS PoP)",
                Box::pin(async move {
                    let (token, binding) = self
                        .imds_v2
                        .get_bound_token(&scope(VAULT))
                        .await
                        .map_err(fail("IMDSv2"))?;
                    let claims = claims(&self.emulator, token.token().expose(), VAULT)?;
                    if claims["cnf"]["x5t#S256"].as_str() != Some(binding.thumbprint()) {
                        return Err(
                            "the bound token's cnf.x5t#S256 is not the binding certificate's"
                                .to_owned(),
                        );
                    }
                    if token.scheme() != "mtls_pop" {
                        return Err(format!("token type {} instead of mtls_pop", token.scheme()));
                    }
                    Ok(Outcome {
                        token,
                        source: None,
                        audience: VAULT,
                    })
                }),
            ),
            4 => (
                "agent identity",
                Box::pin(async move {
                    let agent = self
                        .blueprint
                        .agent_identity(AGENT_1)
                        .map_err(fail("agent identity"))?;
                    let r = agent
                        .acquire(&scope(GRAPH))
                        .await
                        .map_err(fail("agent identity"))?;
                    let claims = claims(&self.emulator, r.value.token().expose(), GRAPH)?;
                    expect(&claims, "xms_par_app_azp", BLUEPRINT)?;
                    expect(&claims, "appid", AGENT_1)?;
                    Ok(Outcome::acquired(r, GRAPH))
                }),
            ),
            5 => (
                "agent user",
                Box::pin(async move {
                    let agent = self
                        .blueprint
                        .agent_identity(AGENT_1)
                        .map_err(fail("agent user"))?;
                    let user = agent.agent_user(
                        AgentUser::username(AGENT_USER_UPN).map_err(fail("agent user"))?,
                    );
                    let r = user
                        .acquire(&TokenRequest::new([format!("{GRAPH}/User.Read")]))
                        .await
                        .map_err(fail("agent user"))?;
                    let claims = claims(&self.emulator, r.value.token().expose(), GRAPH)?;
                    expect(&claims, "idtyp", "user")?;
                    expect(&claims, "oid", AGENT_USER)?;
                    Ok(Outcome::acquired(r, GRAPH))
                }),
            ),
            6 => (
                "agentic session",
                Box::pin(async move {
                    let agent = self
                        .blueprint
                        .agent_identity(AGENT_2)
                        .map_err(fail("agentic session"))?
                        .in_session(self.session.clone());
                    let r = agent
                        .acquire(&scope(ARM))
                        .await
                        .map_err(fail("agentic session"))?;
                    let claims = claims(&self.emulator, r.value.token().expose(), ARM)?;
                    expect(&claims, "xms_cli_ses", self.session.as_str())?;
                    // The same resource outside the session must not be served that token.
                    let manual = agent
                        .outside_session()
                        .acquire(&scope(ARM))
                        .await
                        .map_err(fail("agentic session"))?;
                    if manual.source != TokenSource::Fetched
                        || manual.value.token() == r.value.token()
                    {
                        return Err("a session token was served outside its session".to_owned());
                    }
                    Ok(Outcome::acquired(r, ARM))
                }),
            ),
            _ => (
                "cache hit (client secret again)",
                Box::pin(async move {
                    let outcome = app_token(&self.secret_client, "cache hit").await?;
                    if outcome.source != Some(TokenSource::Cache) {
                        return Err("the second request was not answered from the cache".to_owned());
                    }
                    Ok(outcome)
                }),
            ),
        }
    }
}

const STEPS: usize = 8;

/// An application's client-credentials token for Microsoft Graph.
async fn app_token(client: &TokenClient, what: &'static str) -> Result<Outcome, String> {
    let acquired = client
        .exchange(&scope(GRAPH), &Grant::client_credentials())
        .await
        .map_err(fail(what))?;
    Ok(Outcome::acquired(acquired, GRAPH))
}

fn scope(resource: &str) -> TokenRequest {
    TokenRequest::new([format!("{resource}/.default")])
}

/// The verified claims of `token` (signature by the emulator's key, issuer, audience, times).
fn claims(emulator: &Emulator, token: &str, audience: &str) -> Result<Value, String> {
    let validation = emulator.validation(TENANT, audience);
    jsonwebtoken::decode::<Value>(token, &emulator.decoding_key(), &validation)
        .map(|d| d.claims)
        .map_err(|e| format!("the token does not verify against the emulator's keys: {e}"))
}

fn expect(claims: &Value, name: &str, value: &str) -> Result<(), String> {
    match claims.get(name).and_then(Value::as_str) {
        Some(v) if v == value => Ok(()),
        other => Err(format!("claim {name} is {other:?}, expected {value:?}")),
    }
}

#[allow(clippy::disallowed_methods)] // the CLI is an edge: lifetimes are shown in wall time
fn now() -> SystemTime {
    SystemTime::now()
}

pub(crate) async fn run(verbose: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "entra demo: starting an emulator (Entra ID, IMDS v1/v2) on loopback"
    )?;
    let demo = setup().await?;
    writeln!(
        out,
        "  tenant {TENANT}: 2 apps, blueprint with 2 agent identities and 1 agent user, a VM identity\n"
    )?;
    drop(out);
    let mut rows = Vec::new();
    let mut failures = 0;
    for n in 0..STEPS {
        let before = demo.emulator.requests().len();
        let (name, future) = demo.step(n);
        let result = match future.await {
            Ok(outcome) => claims(
                &demo.emulator,
                outcome.token.token().expose(),
                outcome.audience,
            )
            .map(|c| (outcome, c)),
            Err(e) => Err(e),
        };
        let requests = demo.emulator.requests().len() - before;
        let mut out = std::io::stdout().lock();
        match result {
            Ok((outcome, verified)) => {
                let left = outcome
                    .token
                    .expires_on()
                    .duration_since(now())
                    .unwrap_or(Duration::ZERO);
                let cache = match (outcome.source, requests) {
                    (Some(TokenSource::Cache), _) | (None, 0) => "hit",
                    (Some(TokenSource::Shared), _) => "shared",
                    _ => "miss",
                };
                writeln!(
                    out,
                    "[{}/{STEPS}] {name:<36} ok   {} token for {}, {} request(s)",
                    n + 1,
                    outcome.token.scheme(),
                    outcome.audience,
                    requests
                )?;
                if verbose {
                    let text = serde_json::to_string_pretty(&verified).unwrap_or_default();
                    writeln!(out, "{text}")?;
                }
                rows.push(Row {
                    flow: name,
                    token_type: outcome.token.scheme().to_owned(),
                    audience: outcome.audience.to_owned(),
                    lifetime: format!("{} min", left.as_secs() / 60),
                    cache,
                    requests,
                });
            }
            Err(problem) => {
                failures += 1;
                writeln!(out, "[{}/{STEPS}] {name:<36} FAILED: {problem}", n + 1)?;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "{:<36} {:<10} {:<32} {:<10} {:<6} requests",
        "flow", "type", "audience", "lifetime", "cache"
    )?;
    for row in &rows {
        writeln!(
            out,
            "{:<36} {:<10} {:<32} {:<10} {:<6} {}",
            row.flow, row.token_type, row.audience, row.lifetime, row.cache, row.requests
        )?;
    }
    let total = demo.emulator.requests().len();
    writeln!(
        out,
        "\n{} of {STEPS} steps worked; the emulator answered {total} requests",
        rows.len()
    )?;
    drop(out);
    demo.emulator.shutdown().await;
    if failures > 0 {
        return Err(CliError::new(
            FailureClass::DemoFailed,
            format!("{failures} of {STEPS} demo steps failed (see above)"),
        ));
    }
    Ok(())
}
