//! The `entra` facade against the emulator: every credential (the Azure CLI and azd through
//! fake executables written here and found through an injected PATH), the chain's selection
//! rules and its error, `AZURE_TOKEN_CREDENTIALS`, the tenant rule, the bearer-token provider
//! under concurrency and across a refresh on a virtual clock, and secrets kept out of logs and
//! errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use entra::{
    AzureCliCredential, AzureDeveloperCliCredential, BearerTokenProvider, ChainedTokenCredential,
    ClientAssertionCredential, ClientCertificateCredential, ClientSecretCredential,
    CredentialOptions, DefaultAzureCredential, DefaultAzureCredentialOptions, DeveloperToolOptions,
    EnvironmentCredential, ManagedIdentityCredential, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use entra_claims::Claims;
use entra_core::{
    AuthorityHost, Error, ManualClock, MapEnv, Secret, TokenCredential, TokenRequest,
};
use entra_emulator::{AppRegistration, Emulator, FederatedCredential, ManagedIdentity};
use entra_tests::{CapturedLogs, GRAPH, TENANT, clock_now, transport};
use serde_json::Value;

const APP: &str = "facade00-0000-0000-0000-000000000001";
const CERT_APP: &str = "facade00-0000-0000-0000-000000000002";
const FED_APP: &str = "facade00-0000-0000-0000-000000000003";
const SECRET: &str = "facade-client-secret-value-7d1f";
const OTHER_TENANT: &str = "22222222-2222-2222-2222-222222222222";
const SUBJECT: &str = "system:serviceaccount:default:workload";
/// What the fake tools print as a token: never to be seen in an error or a log.
const AZ_TOKEN: &str = "eyJhbGciOiJub25lIn0.fake-az-token-3c9a.sig";
const AZD_TOKEN: &str = "eyJhbGciOiJub25lIn0.fake-azd-token-51be.sig";

async fn emulator() -> Emulator {
    CapturedLogs::global();
    let emulator = Emulator::start().await.expect("emulator starts");
    for tenant in [TENANT, OTHER_TENANT] {
        emulator.add_tenant(tenant).unwrap();
        emulator
            .add_application(tenant, AppRegistration::new(APP).client_secret(SECRET))
            .unwrap();
    }
    emulator
}

/// Options wired to the emulator, on a virtual clock, with an empty environment.
fn options(emulator: &Emulator, clock: &ManualClock) -> CredentialOptions {
    CredentialOptions::new()
        .authority(AuthorityHost::parse(&emulator.https_url()).unwrap())
        .transport(transport(emulator))
        .clock(Arc::new(clock.clone()))
        .env(Arc::new(MapEnv::default()))
}

fn claims_of(emulator: &Emulator, tenant: &str, token: &str) -> Value {
    let validation = emulator.validation(tenant, "https://graph.microsoft.com");
    jsonwebtoken::decode::<Value>(token, &emulator.decoding_key(), &validation)
        .unwrap_or_else(|e| panic!("token does not verify: {e}"))
        .claims
}

fn graph() -> TokenRequest {
    TokenRequest::new([GRAPH])
}

fn fresh_challenge() -> Claims {
    Claims::parse(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#).unwrap()
}

// --- fake developer tools -------------------------------------------------------------------

/// A fresh directory for fake executables and files, removed when dropped.
struct ToolDir(PathBuf);

impl std::ops::Deref for ToolDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ToolDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tool_dir() -> ToolDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "entra-facade-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    ToolDir(dir)
}

/// Writes an executable shell script `name` into `dir`: it records its arguments in
/// `<name>.args`, counts its runs in `<name>.calls`, then runs `body`.
fn write_tool(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"${{0%/*}}/{name}.args\"\necho x >> \"${{0%/*}}/{name}.calls\"\n{body}\n"
    );
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, script).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn args_of(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{name}.args")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn calls_of(dir: &Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{name}.calls")))
        .unwrap_or_default()
        .lines()
        .count()
}

fn unix_now(clock: &ManualClock) -> u64 {
    entra_cache::Clock::now(clock)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn az_ok(clock: &ManualClock) -> String {
    let exp = unix_now(clock) + 3600;
    format!(
        "printf '%s' '{{\"accessToken\":\"{AZ_TOKEN}\",\"expiresOn\":\"2030-01-01 00:00:00.000000\",\"expires_on\":{exp},\"subscription\":\"sub\",\"tenant\":\"{TENANT}\",\"tokenType\":\"Bearer\"}}'"
    )
}

const AZD_OK: &str = "printf '%s' '{\"token\":\"eyJhbGciOiJub25lIn0.fake-azd-token-51be.sig\",\"expiresOn\":\"2099-01-01T00:00:00Z\"}'";
const AZ_NOT_LOGGED_IN: &str =
    "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1";
const AZD_NOT_LOGGED_IN: &str =
    "echo 'ERROR: not logged in, run `azd auth login` to login' >&2\nexit 1";

fn tool_env(dir: &Path, extra: &[(&str, &str)]) -> Arc<MapEnv> {
    let mut vars = vec![("PATH".to_owned(), dir.display().to_string())];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Arc::new(MapEnv::new(vars))
}

fn az(dir: &Path, clock: &ManualClock) -> AzureCliCredential {
    AzureCliCredential::new(
        DeveloperToolOptions::new()
            .env(tool_env(dir, &[]))
            .clock(Arc::new(clock.clone())),
    )
}

// --- application credentials ----------------------------------------------------------------

#[tokio::test]
async fn client_secret_credential_gets_a_verified_token() {
    let emulator = emulator().await;
    let clock = clock_now();
    let credential =
        ClientSecretCredential::new(TENANT, APP, SECRET, options(&emulator, &clock)).unwrap();
    let token = credential.get_token(&graph()).await.unwrap();
    let claims = claims_of(&emulator, TENANT, token.token().expose());
    assert_eq!(claims["azp"], APP);
    assert_eq!(claims["tid"], TENANT);
    // The second call is answered by the token exchange's cache.
    credential.get_token(&graph()).await.unwrap();
    assert_eq!(emulator.token_requests(TENANT).len(), 1);
    assert_eq!(
        emulator.token_requests(TENANT)[0].form_value("grant_type"),
        Some("client_credentials")
    );
}

#[tokio::test]
async fn client_certificate_credential_from_pem_with_and_without_chain() {
    let emulator = emulator().await;
    let cert = entra_emulator::testing::client_certificate("facade test client");
    emulator
        .add_application(
            TENANT,
            AppRegistration::new(CERT_APP).certificate_der(cert.cert_der.clone()),
        )
        .unwrap();
    let clock = clock_now();
    let pem = format!("{}\n{}", cert.cert_pem, cert.key_pem);
    for send_chain in [false, true] {
        let certificate =
            ClientCertificateCredential::load_certificate(pem.as_bytes(), None).unwrap();
        let credential = ClientCertificateCredential::builder(TENANT, CERT_APP, certificate)
            .send_certificate_chain(send_chain)
            .options(options(&emulator, &clock))
            .build()
            .unwrap();
        let token = credential.get_token(&graph()).await.unwrap();
        assert_eq!(
            claims_of(&emulator, TENANT, token.token().expose())["azp"],
            CERT_APP
        );
    }
    let sent = emulator.token_requests(TENANT);
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|r| r.has_form_field("client_assertion") && !r.has_form_field("client_secret"))
    );
    // Anything that is not PEM is read as PKCS#12, and garbage is a certificate error.
    let err =
        ClientCertificateCredential::load_certificate(b"\x30\x03garbage", Some("pw")).unwrap_err();
    assert!(matches!(err, Error::Certificate { .. }), "{err:?}");
}

#[tokio::test]
async fn client_assertion_credential_calls_the_callback() {
    let emulator = emulator().await;
    let issuer = emulator.add_external_issuer("github").unwrap();
    emulator
        .add_application(
            TENANT,
            AppRegistration::new(FED_APP)
                .federated_credential(FederatedCredential::new(issuer, SUBJECT)),
        )
        .unwrap();
    let minted = emulator
        .mint_external_token(
            "github",
            SUBJECT,
            "api://AzureADTokenExchange",
            Duration::from_secs(600),
        )
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let clock = clock_now();
    let credential = ClientAssertionCredential::new(
        TENANT,
        FED_APP,
        move |context| {
            counter.fetch_add(1, Ordering::SeqCst);
            assert_eq!(context.client_id, FED_APP);
            let minted = minted.clone();
            async move { Ok(Secret::new(minted)) }
        },
        options(&emulator, &clock),
    )
    .unwrap();
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(
        claims_of(&emulator, TENANT, token.token().expose())["azp"],
        FED_APP
    );
    credential.get_token(&graph()).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the cache answered the second call"
    );
}

#[tokio::test]
async fn environment_credential_with_a_secret_a_certificate_file_and_missing_variables() {
    let emulator = emulator().await;
    let clock = clock_now();
    let env = MapEnv::new([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", APP),
        ("AZURE_CLIENT_SECRET", SECRET),
    ]);
    let credential = EnvironmentCredential::new(options(&emulator, &clock).env(Arc::new(env)));
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(
        claims_of(&emulator, TENANT, token.token().expose())["azp"],
        APP
    );
    assert_eq!(
        emulator.token_requests(TENANT)[0].form_value("client_id"),
        Some(APP)
    );

    // A certificate file (PEM) with the chain sent.
    let cert = entra_emulator::testing::client_certificate("facade env client");
    emulator
        .add_application(
            TENANT,
            AppRegistration::new(CERT_APP).certificate_der(cert.cert_der.clone()),
        )
        .unwrap();
    let dir = tool_dir();
    let path = dir.join("client.pem");
    std::fs::write(&path, format!("{}\n{}", cert.cert_pem, cert.key_pem)).unwrap();
    let env = MapEnv::new([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CERT_APP),
        ("AZURE_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap()),
        ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true"),
    ]);
    let credential = EnvironmentCredential::new(options(&emulator, &clock).env(Arc::new(env)));
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(
        claims_of(&emulator, TENANT, token.token().expose())["azp"],
        CERT_APP
    );

    // Missing variables: unavailable, naming them.
    let env = MapEnv::new([("AZURE_CLIENT_ID", APP)]);
    let err = EnvironmentCredential::new(options(&emulator, &clock).env(Arc::new(env)))
        .get_token(&graph())
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let text = err.to_string();
    assert!(text.contains("AZURE_TENANT_ID"), "{text}");
    assert!(
        text.contains("AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"),
        "{text}"
    );
}

#[tokio::test]
async fn workload_identity_rereads_the_rotated_token_file_after_ten_minutes() {
    let emulator = emulator().await;
    let issuer = emulator.add_external_issuer("aks").unwrap();
    emulator
        .add_application(
            TENANT,
            AppRegistration::new(FED_APP)
                .federated_credential(FederatedCredential::new(issuer, SUBJECT)),
        )
        .unwrap();
    let good = emulator
        .mint_external_token(
            "aks",
            SUBJECT,
            "api://AzureADTokenExchange",
            Duration::from_secs(3600),
        )
        .unwrap();
    // A token for a subject the application does not trust: the emulator refuses it.
    let untrusted = emulator
        .mint_external_token(
            "aks",
            "system:serviceaccount:other:sa",
            "api://AzureADTokenExchange",
            Duration::from_secs(3600),
        )
        .unwrap();
    let dir = tool_dir();
    let file = dir.join("azure-identity-token");
    std::fs::write(&file, &good).unwrap();
    let clock = clock_now();
    let env = MapEnv::new([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", FED_APP),
        ("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap()),
    ]);
    let credential = WorkloadIdentityCredential::new(
        WorkloadIdentityCredentialOptions::new()
            .options(options(&emulator, &clock).env(Arc::new(env))),
    );
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(
        claims_of(&emulator, TENANT, token.token().expose())["azp"],
        FED_APP
    );

    // The file rotates; within ten minutes the value read is kept.
    std::fs::write(&file, &untrusted).unwrap();
    clock.advance(Duration::from_secs(9 * 60));
    let forced = graph().with_claims_challenge(fresh_challenge());
    credential.get_token(&forced).await.unwrap();
    // After ten minutes the file is read again, and its new content is what is sent.
    clock.advance(Duration::from_secs(60));
    let err = credential.get_token(&forced).await.unwrap_err();
    assert!(err.service_error().is_some(), "{err:?}");
    std::fs::write(&file, &good).unwrap();
    clock.advance(Duration::from_secs(10 * 60));
    credential.get_token(&forced).await.unwrap();
    assert_eq!(emulator.token_requests(TENANT).len(), 4);

    // Missing variables: unavailable.
    let err = WorkloadIdentityCredential::new(
        WorkloadIdentityCredentialOptions::new().options(options(&emulator, &clock)),
    )
    .get_token(&graph())
    .await
    .unwrap_err();
    assert!(err.is_unavailable() && err.to_string().contains("AZURE_FEDERATED_TOKEN_FILE"));
}

#[tokio::test]
async fn managed_identity_credential_from_the_facade() {
    let emulator = emulator().await;
    let identity = ManagedIdentity::new(
        TENANT,
        "c1d00000-0000-0000-0000-0000000000fa",
        "0b100000-0000-0000-0000-0000000000fa",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/facade",
    );
    emulator.set_system_assigned_identity(identity).unwrap();
    let clock = clock_now();
    let env = MapEnv::new([("AZURE_POD_IDENTITY_AUTHORITY_HOST", emulator.http_url())]);
    let credential = ManagedIdentityCredential::builder()
        .env(Arc::new(env))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let token = credential
        .get_token(&TokenRequest::new([
            "https://management.azure.com/.default",
        ]))
        .await
        .unwrap();
    assert!(!token.token().is_empty());
}

// --- developer tools --------------------------------------------------------------------------

#[tokio::test]
async fn azure_cli_runs_the_documented_command_and_parses_its_json() {
    let dir = tool_dir();
    let clock = clock_now();
    write_tool(&dir, "az", &az_ok(&clock));
    let token = az(&dir, &clock).get_token(&graph()).await.unwrap();
    assert_eq!(token.token().expose(), AZ_TOKEN);
    assert_eq!(
        token.expires_on(),
        UNIX_EPOCH + Duration::from_secs(unix_now(&clock) + 3600)
    );
    assert!(token.refresh_on() < token.expires_on());
    assert_eq!(
        args_of(&dir, "az"),
        [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--scope",
            GRAPH
        ]
    );

    // A configured tenant is passed with --tenant.
    let credential = AzureCliCredential::new(
        DeveloperToolOptions::new()
            .tenant_id(OTHER_TENANT)
            .env(tool_env(&dir, &[])),
    );
    credential.get_token(&graph()).await.unwrap();
    assert_eq!(
        args_of(&dir, "az")[6..],
        ["--tenant".to_owned(), OTHER_TENANT.to_owned()]
    );
}

#[tokio::test]
async fn azure_cli_missing_signed_out_failing_garbage_and_hanging() {
    let clock = clock_now();
    // Missing: unavailable.
    let empty = tool_dir();
    let err = az(&empty, &clock).get_token(&graph()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("not found on PATH"), "{err}");

    // Signed out: unavailable, with the CLI's advice.
    let dir = tool_dir();
    write_tool(&dir, "az", AZ_NOT_LOGGED_IN);
    let err = az(&dir, &clock).get_token(&graph()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("az login"), "{err}");

    // Fails: a real failure carrying stderr, but never a token printed there.
    write_tool(
        &dir,
        "az",
        &format!("echo 'ERROR: the subscription is disabled (token {AZ_TOKEN})' >&2\nexit 2"),
    );
    let err = az(&dir, &clock).get_token(&graph()).await.unwrap_err();
    assert!(!err.is_unavailable(), "{err}");
    let shown = format!(
        "{err} {:?} {}",
        err,
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(shown.contains("the subscription is disabled"), "{shown}");
    assert!(shown.contains("exit code 2"), "{shown}");
    assert!(
        !shown.contains(AZ_TOKEN) && !shown.contains("fake-az-token"),
        "{shown}"
    );

    // Garbage: an error that does not quote the output (it may hold a token).
    write_tool(
        &dir,
        "az",
        &format!("printf '%s' 'warning: {AZ_TOKEN} is not json'"),
    );
    let err = az(&dir, &clock).get_token(&graph()).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!err.is_unavailable());
    assert!(shown.contains("cannot use"), "{shown}");
    assert!(!shown.contains("fake-az-token"), "{shown}");
    // JSON without a token.
    write_tool(&dir, "az", "printf '%s' '{\"tokenType\":\"Bearer\"}'");
    let err = az(&dir, &clock).get_token(&graph()).await.unwrap_err();
    assert!(err.to_string().contains("cannot use"), "{err}");

    // Hangs: stopped at the timeout (a short real one: this is the process edge).
    write_tool(&dir, "az", "exec /bin/sleep 30");
    let credential = AzureCliCredential::new(
        DeveloperToolOptions::new()
            .env(tool_env(&dir, &[]))
            .timeout(Duration::from_millis(300)),
    );
    let err = credential.get_token(&graph()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("did not answer"), "{err}");

    // Scopes that could be read as options never reach the tool.
    write_tool(&dir, "az", &az_ok(&clock));
    let err = az(&dir, &clock)
        .get_token(&TokenRequest::new(["--debug"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Configuration(_)), "{err}");
    let err = az(&dir, &clock)
        .get_token(&TokenRequest::new([
            GRAPH,
            "https://vault.azure.net/.default",
        ]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exactly one scope"), "{err}");
    assert_eq!(calls_of(&dir, "az"), 5);
}

#[tokio::test]
async fn azure_developer_cli_runs_the_documented_command() {
    let dir = tool_dir();
    let clock = clock_now();
    write_tool(&dir, "azd", AZD_OK);
    let credential = AzureDeveloperCliCredential::new(
        DeveloperToolOptions::new()
            .tenant_id(TENANT)
            .env(tool_env(&dir, &[]))
            .clock(Arc::new(clock.clone())),
    );
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(token.token().expose(), AZD_TOKEN);
    assert_eq!(
        token.expires_on(),
        UNIX_EPOCH + Duration::from_secs(4_070_908_800)
    );
    assert_eq!(
        args_of(&dir, "azd"),
        [
            "auth",
            "token",
            "--output",
            "json",
            "--scope",
            GRAPH,
            "--tenant-id",
            TENANT
        ]
    );

    write_tool(&dir, "azd", AZD_NOT_LOGGED_IN);
    let err = credential.get_token(&graph()).await.unwrap_err();
    assert!(
        err.is_unavailable() && err.to_string().contains("azd auth login"),
        "{err}"
    );

    write_tool(
        &dir,
        "azd",
        "printf '%s' '{\"token\":\"x\",\"expiresOn\":\"tomorrow\"}'",
    );
    let err = credential.get_token(&graph()).await.unwrap_err();
    assert!(err.to_string().contains("expiresOn"), "{err}");

    let err = AzureDeveloperCliCredential::new(
        DeveloperToolOptions::new().env(tool_env(&tool_dir(), &[])),
    )
    .get_token(&graph())
    .await
    .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

// --- the tenant rule ----------------------------------------------------------------------------

#[tokio::test]
async fn another_tenant_only_when_allowed() {
    let emulator = emulator().await;
    let clock = clock_now();
    let other = graph().with_tenant(OTHER_TENANT);

    let strict =
        ClientSecretCredential::new(TENANT, APP, SECRET, options(&emulator, &clock)).unwrap();
    let err = strict.get_token(&other).await.unwrap_err();
    assert!(matches!(err, Error::Configuration(_)), "{err}");
    assert!(
        err.to_string().contains("additionally_allowed_tenants"),
        "{err}"
    );
    assert!(emulator.token_requests(OTHER_TENANT).is_empty());

    for allowed in [OTHER_TENANT, "*"] {
        let credential = ClientSecretCredential::new(
            TENANT,
            APP,
            SECRET,
            options(&emulator, &clock).additionally_allowed_tenants([allowed]),
        )
        .unwrap();
        let token = credential.get_token(&other).await.unwrap();
        assert_eq!(
            claims_of(&emulator, OTHER_TENANT, token.token().expose())["tid"],
            OTHER_TENANT
        );
    }

    // The environment credential reads AZURE_ADDITIONALLY_ALLOWED_TENANTS.
    let env = MapEnv::new([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", APP),
        ("AZURE_CLIENT_SECRET", SECRET),
        (
            "AZURE_ADDITIONALLY_ALLOWED_TENANTS",
            "33333333-3333-3333-3333-333333333333;22222222-2222-2222-2222-222222222222",
        ),
    ]);
    EnvironmentCredential::new(options(&emulator, &clock).env(Arc::new(env)))
        .get_token(&other)
        .await
        .unwrap();

    // The developer tools: refused before the tool runs, allowed when listed.
    let dir = tool_dir();
    write_tool(&dir, "az", &az_ok(&clock));
    let err = AzureCliCredential::new(
        DeveloperToolOptions::new()
            .tenant_id(TENANT)
            .env(tool_env(&dir, &[])),
    )
    .get_token(&other)
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Configuration(_)), "{err}");
    assert_eq!(calls_of(&dir, "az"), 0);
    AzureCliCredential::new(
        DeveloperToolOptions::new()
            .tenant_id(TENANT)
            .additionally_allowed_tenants(["*"])
            .env(tool_env(&dir, &[])),
    )
    .get_token(&other)
    .await
    .unwrap();
    assert!(args_of(&dir, "az").ends_with(&["--tenant".to_owned(), OTHER_TENANT.to_owned()]));
}

// --- chains ---------------------------------------------------------------------------------------

#[tokio::test]
async fn chain_falls_through_unavailable_stops_at_failure_and_reports_everything() {
    let emulator = emulator().await;
    let clock = clock_now();
    let unavailable: Arc<dyn TokenCredential> =
        Arc::new(EnvironmentCredential::new(options(&emulator, &clock)));
    let failing: Arc<dyn TokenCredential> = Arc::new(
        ClientSecretCredential::new(TENANT, APP, "wrong-secret", options(&emulator, &clock))
            .unwrap(),
    );
    let working: Arc<dyn TokenCredential> = Arc::new(
        ClientSecretCredential::new(TENANT, APP, SECRET, options(&emulator, &clock)).unwrap(),
    );

    let chain = ChainedTokenCredential::new(vec![unavailable.clone(), working.clone()]);
    chain.get_token(&graph()).await.unwrap();

    let chain = ChainedTokenCredential::new(vec![unavailable.clone(), failing, working]);
    let err = chain.get_token(&graph()).await.unwrap_err();
    assert_eq!(
        err.service_error().map(|e| e.error.as_str()),
        Some("invalid_client")
    );

    let dir = tool_dir();
    let chain = ChainedTokenCredential::new(vec![unavailable, Arc::new(az(&dir, &clock))]);
    let err = chain.get_token(&graph()).await.unwrap_err();
    assert!(err.is_unavailable());
    let text = err.to_string();
    assert!(
        text.contains("EnvironmentCredential is unavailable"),
        "{text}"
    );
    assert!(text.contains("AzureCliCredential is unavailable"), "{text}");
}

fn dac(
    env: Arc<MapEnv>,
    emulator: &Emulator,
    clock: &ManualClock,
) -> DefaultAzureCredentialOptions {
    DefaultAzureCredentialOptions::new().options(options(emulator, clock).env(env))
}

#[tokio::test]
async fn default_chain_uses_the_environment_first_and_stops_on_its_failure() {
    let emulator = emulator().await;
    let clock = clock_now();
    let dir = tool_dir();
    write_tool(&dir, "az", &az_ok(&clock));
    let env = tool_env(
        &dir,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", APP),
            ("AZURE_CLIENT_SECRET", SECRET),
        ],
    );
    let credential = DefaultAzureCredential::with_options(dac(env, &emulator, &clock)).unwrap();
    assert_eq!(
        credential.credential_names(),
        [
            "EnvironmentCredential",
            "WorkloadIdentityCredential",
            "ManagedIdentityCredential",
            "AzureCliCredential",
            "AzureDeveloperCliCredential"
        ]
    );
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(
        claims_of(&emulator, TENANT, token.token().expose())["azp"],
        APP
    );
    assert_eq!(credential.selected(), Some("EnvironmentCredential"));

    // A wrong secret is a real failure: the chain stops, the CLI is never run.
    let env = tool_env(
        &dir,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", APP),
            ("AZURE_CLIENT_SECRET", "wrong-secret"),
        ],
    );
    let credential = DefaultAzureCredential::with_options(dac(env, &emulator, &clock)).unwrap();
    let err = credential.get_token(&graph()).await.unwrap_err();
    assert!(err.service_error().is_some(), "{err}");
    assert_eq!(calls_of(&dir, "az"), 0);
    assert_eq!(credential.selected(), None);
}

#[tokio::test]
async fn default_chain_keeps_using_what_worked_and_lists_what_each_said() {
    let emulator = emulator().await;
    let clock = clock_now();
    let dir = tool_dir();
    write_tool(&dir, "az", AZ_NOT_LOGGED_IN);
    write_tool(&dir, "azd", AZD_OK);
    // No environment credential, no workload identity, no managed identity endpoint.
    let env = tool_env(
        &dir,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")],
    );
    let credential =
        DefaultAzureCredential::with_options(dac(env.clone(), &emulator, &clock)).unwrap();
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(token.token().expose(), AZD_TOKEN);
    assert_eq!(credential.selected(), Some("AzureDeveloperCliCredential"));
    assert_eq!(calls_of(&dir, "az"), 1);
    // The CLI now works, but the chain stays with azd.
    write_tool(&dir, "az", &az_ok(&clock));
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(token.token().expose(), AZD_TOKEN);
    assert_eq!(calls_of(&dir, "az"), 1);
    assert_eq!(calls_of(&dir, "azd"), 2);

    // Nothing works: one error listing what each credential said.
    let empty = tool_dir();
    let env = tool_env(
        &empty,
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")],
    );
    let credential = DefaultAzureCredential::with_options(dac(env, &emulator, &clock)).unwrap();
    let err = credential.get_token(&graph()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("DefaultAzureCredential is unavailable"),
        "{text}"
    );
    for name in [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
        "AzureCliCredential",
        "AzureDeveloperCliCredential",
    ] {
        assert!(
            text.contains(&format!("- {name} is unavailable")),
            "{name}: {text}"
        );
    }
}

#[tokio::test]
async fn azure_token_credentials_selects_and_exclusions_win() {
    let emulator = emulator().await;
    let clock = clock_now();
    let dir = tool_dir();
    write_tool(&dir, "az", &az_ok(&clock));
    write_tool(&dir, "azd", AZD_OK);
    let with = |value: &str| {
        tool_env(
            &dir,
            &[
                ("AZURE_TOKEN_CREDENTIALS", value),
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", APP),
                ("AZURE_CLIENT_SECRET", SECRET),
            ],
        )
    };

    // dev: the developer tools only, though the environment credential would work.
    let credential =
        DefaultAzureCredential::with_options(dac(with("dev"), &emulator, &clock)).unwrap();
    assert_eq!(
        credential.credential_names(),
        ["AzureCliCredential", "AzureDeveloperCliCredential"]
    );
    assert_eq!(
        credential
            .get_token(&graph())
            .await
            .unwrap()
            .token()
            .expose(),
        AZ_TOKEN
    );

    // prod: no developer tool.
    let credential =
        DefaultAzureCredential::with_options(dac(with("prod"), &emulator, &clock)).unwrap();
    assert_eq!(
        credential.credential_names(),
        [
            "EnvironmentCredential",
            "WorkloadIdentityCredential",
            "ManagedIdentityCredential"
        ]
    );
    credential.get_token(&graph()).await.unwrap();
    assert_eq!(credential.selected(), Some("EnvironmentCredential"));

    // One credential by name.
    let credential = DefaultAzureCredential::with_options(dac(
        with("AzureDeveloperCliCredential"),
        &emulator,
        &clock,
    ))
    .unwrap();
    assert_eq!(
        credential
            .get_token(&graph())
            .await
            .unwrap()
            .token()
            .expose(),
        AZD_TOKEN
    );

    // An exclusion in code wins over the variable.
    let credential = DefaultAzureCredential::with_options(
        dac(with("dev"), &emulator, &clock).exclude_azure_cli_credential(true),
    )
    .unwrap();
    assert_eq!(
        credential.credential_names(),
        ["AzureDeveloperCliCredential"]
    );
    let err = DefaultAzureCredential::with_options(
        dac(with("AzureCliCredential"), &emulator, &clock).exclude_azure_cli_credential(true),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Configuration(_)), "{err}");

    // Anything else: a configuration error listing the valid values.
    let err = DefaultAzureCredential::with_options(dac(
        with("VisualStudioCodeCredential"),
        &emulator,
        &clock,
    ))
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Configuration(_)));
    for valid in [
        "`dev`",
        "`prod`",
        "`ManagedIdentityCredential`",
        "`AzureCliCredential`",
    ] {
        assert!(text.contains(valid), "{text}");
    }

    // require_envvar: its absence is an error; its presence is fine.
    let err = DefaultAzureCredential::with_options(
        dac(tool_env(&dir, &[]), &emulator, &clock).require_envvar(true),
    )
    .unwrap_err();
    assert!(err.to_string().contains("AZURE_TOKEN_CREDENTIALS"), "{err}");
    DefaultAzureCredential::with_options(dac(with("dev"), &emulator, &clock).require_envvar(true))
        .unwrap();
}

#[tokio::test]
async fn default_chain_with_managed_identity_by_name() {
    let emulator = emulator().await;
    let identity = ManagedIdentity::new(
        TENANT,
        "c1d00000-0000-0000-0000-0000000000fb",
        "0b100000-0000-0000-0000-0000000000fb",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/dac",
    );
    emulator.set_system_assigned_identity(identity).unwrap();
    let clock = clock_now();
    let env = Arc::new(MapEnv::new([
        (
            "AZURE_TOKEN_CREDENTIALS",
            "ManagedIdentityCredential".to_owned(),
        ),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", emulator.http_url()),
    ]));
    let credential = DefaultAzureCredential::with_options(dac(env, &emulator, &clock)).unwrap();
    let token = credential
        .get_token(&TokenRequest::new([
            "https://management.azure.com/.default",
        ]))
        .await
        .unwrap();
    assert!(!token.token().is_empty());
    assert_eq!(credential.selected(), Some("ManagedIdentityCredential"));
}

// --- the bearer-token provider ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_provider_one_request_for_many_tasks_and_a_refresh_on_virtual_time() {
    let emulator = emulator().await;
    let clock = clock_now();
    let credential =
        ClientSecretCredential::new(TENANT, APP, SECRET, options(&emulator, &clock)).unwrap();
    let provider =
        BearerTokenProvider::new(Arc::new(credential), [GRAPH]).with_clock(Arc::new(clock.clone()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.token().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert_eq!(
        emulator.token_requests(TENANT).len(),
        1,
        "one request for 16 tasks"
    );
    let first = provider.access_token().await.unwrap();
    assert_eq!(first.token(), &tokens[0]);
    assert_eq!(
        provider.authorization_header().await.unwrap().expose(),
        format!("Bearer {}", tokens[0].expose())
    );

    // Just before the refresh time: still the same token, no request.
    clock.set(first.refresh_on() - Duration::from_secs(60));
    assert_eq!(provider.token().await.unwrap(), tokens[0]);
    assert_eq!(emulator.token_requests(TENANT).len(), 1);

    // Past the refresh time (still valid): a new token, one request for all callers.
    clock.set(first.refresh_on() + Duration::from_secs(1));
    assert!(entra_cache::Clock::now(&clock) < first.expires_on());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.token().await.unwrap() })
        })
        .collect();
    let mut refreshed = Vec::new();
    for task in tasks {
        refreshed.push(task.await.unwrap());
    }
    assert!(refreshed.iter().all(|t| t == &refreshed[0]));
    assert_ne!(refreshed[0], tokens[0]);
    assert_eq!(emulator.token_requests(TENANT).len(), 2);
    let second = provider.access_token().await.unwrap();
    assert!(second.expires_on() > first.expires_on());
}

// --- secrets stay secret ----------------------------------------------------------------------------

#[tokio::test]
async fn no_secret_or_token_reaches_logs_or_errors() {
    let logs = CapturedLogs::global();
    let emulator = emulator().await;
    let clock = clock_now();
    let mut tokens = Vec::new();
    let mut shown = Vec::new();

    let credential =
        ClientSecretCredential::new(TENANT, APP, SECRET, options(&emulator, &clock)).unwrap();
    shown.push(format!("{credential:?}"));
    tokens.push(
        credential
            .get_token(&graph())
            .await
            .unwrap()
            .token()
            .expose()
            .to_owned(),
    );
    let wrong =
        ClientSecretCredential::new(TENANT, APP, "wrong-secret-5e2a", options(&emulator, &clock))
            .unwrap();
    let err = wrong.get_token(&graph()).await.unwrap_err();
    shown.push(format!("{err} {err:?}"));

    let env = MapEnv::new([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", APP),
        ("AZURE_CLIENT_SECRET", SECRET),
    ]);
    let credential = EnvironmentCredential::new(options(&emulator, &clock).env(Arc::new(env)));
    shown.push(format!("{credential:?}"));

    let dir = tool_dir();
    write_tool(&dir, "az", &az_ok(&clock));
    write_tool(
        &dir,
        "azd",
        &format!("echo 'ERROR: failed with {AZD_TOKEN}' >&2\nexit 3"),
    );
    let env = tool_env(
        &dir,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", APP),
            ("AZURE_CLIENT_SECRET", SECRET),
            ("AZURE_TOKEN_CREDENTIALS", "dev"),
        ],
    );
    let credential =
        DefaultAzureCredential::with_options(dac(env.clone(), &emulator, &clock)).unwrap();
    shown.push(format!("{credential:?}"));
    let token = credential.get_token(&graph()).await.unwrap();
    shown.push(format!("{token:?}"));
    let azd = AzureDeveloperCliCredential::new(DeveloperToolOptions::new().env(env));
    let err = azd.get_token(&graph()).await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    let provider = BearerTokenProvider::new(Arc::new(credential), [GRAPH]);
    shown.push(format!("{provider:?}"));

    let text = logs.text();
    assert!(text.contains("running developer tool"), "the capture works");
    assert!(
        text.contains("entra.token"),
        "the capture sees the token exchange"
    );
    let secrets: Vec<&str> = [
        SECRET,
        "wrong-secret-5e2a",
        AZ_TOKEN,
        AZD_TOKEN,
        "fake-az-token",
        "fake-azd-token",
    ]
    .into_iter()
    .chain(tokens.iter().map(String::as_str))
    .collect();
    for secret in secrets {
        assert!(!text.contains(secret), "a secret reached the logs");
        for s in &shown {
            assert!(!s.contains(secret), "a secret is shown: {s}");
        }
    }
}

/// The DER inside a one-object PEM.
fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[tokio::test]
async fn environment_credential_with_a_pkcs12_file_and_its_password() {
    let emulator = emulator().await;
    let cert = entra_emulator::testing::client_certificate("facade pkcs12 client");
    emulator
        .add_application(
            TENANT,
            AppRegistration::new(CERT_APP).certificate_der(cert.cert_der.clone()),
        )
        .unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![7u8; 20],
        p12_keystore::PrivateKey::from_der(&pem_der(&cert.key_pem)).unwrap(),
        [p12_keystore::Certificate::from_der(&cert.cert_der).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "client",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    let pfx = store.writer("pfx-password-91c4").write().unwrap();
    let dir = tool_dir();
    let path = dir.join("client.pfx");
    std::fs::write(&path, pfx).unwrap();
    let clock = clock_now();
    let env = |password: &str| {
        Arc::new(MapEnv::new([
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CERT_APP),
            ("AZURE_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap()),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", password),
        ]))
    };
    let credential =
        EnvironmentCredential::new(options(&emulator, &clock).env(env("pfx-password-91c4")));
    let token = credential.get_token(&graph()).await.unwrap();
    assert_eq!(
        claims_of(&emulator, TENANT, token.token().expose())["azp"],
        CERT_APP
    );

    // A wrong password is a real failure (not unavailable), and the password is not shown.
    let err = EnvironmentCredential::new(options(&emulator, &clock).env(env("wrong-pfx-password")))
        .get_token(&graph())
        .await
        .unwrap_err();
    assert!(!err.is_unavailable(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("wrong-pfx-password"), "{shown}");
}
