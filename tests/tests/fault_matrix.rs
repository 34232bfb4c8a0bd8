//! The fault matrix: every endpoint family against every fault the emulator can inject, with
//! the expected outcome (success after N retries with the expected back-off, or the exact
//! typed error), all waiting on a virtual clock. Across every row, no secret may reach the
//! logs, an error's `Display`/`Debug`, or the emulator's request log.
//!
//! The table is printed (run with `--nocapture`) and written to `target/fault-matrix.md`;
//! `cargo xtask fault-matrix` does both. docs/RELIABILITY.md explains it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use entra_agent::{AgentUser, Blueprint, BlueprintCredential};
use entra_core::{
    AuthorityHost, ClientCredential, Error, HttpTransport, ManualClock, MapEnv, ReqwestTransport,
    ResponseProblem, Secret, TokenClient, TokenCredential, TokenRequest,
};
use entra_emulator::{
    AppRegistration, Emulator, EndpointKind, Fault, FaultAction, FaultBody, FaultMatcher,
    ManagedIdentity, RecordedRequest, UserAccount,
};
use entra_mi::{ManagedIdentityCredential, ManagedIdentityId, SystemFileSystem};
use entra_tests::{CapturedLogs, GRAPH, TENANT, clock_now, transport};

const ARM: &str = "https://management.azure.com/.default";
const VAULT: &str = "https://vault.azure.net/.default";
const USER_READ: &str = "https://graph.microsoft.com/User.Read";
const APP: &str = "fa000000-0000-0000-0000-0000000000a1";
const APP_SECRET: &str = "fault-matrix-app-secret-3b7e";
const BLUEPRINT: &str = "fb000000-0000-0000-0000-000000000001";
const BLUEPRINT_SECRET: &str = "fault-matrix-blueprint-secret-91c0";
const AGENT: &str = "fa9e0000-0000-0000-0000-00000000000a";
const USER_1: &str = "fa5e0000-0000-0000-0000-000000000001";
const USER_2: &str = "fa5e0000-0000-0000-0000-000000000002";
/// The transport timeout of the slow-answer rows (room for a normal answer from a debug-build
/// emulator on a loaded machine), and the delay that exceeds it.
const SHORT_TIMEOUT: Duration = Duration::from_millis(400);
const SLOW_ANSWER: Duration = Duration::from_millis(800);
/// The start of the token in the emulator's malformed and truncated bodies: an error that
/// echoed the body would show it.
const FAULT_BODY_TOKEN: &str = "eyJ0eXAiOiJKV1Qi";

/// An endpoint family: one leg of one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// entra-core `TokenClient` with a client secret.
    Token,
    Imds,
    AppService,
    ServiceFabric,
    Arc,
    CloudShell,
    MachineLearning,
    /// IMDSv2 `getplatformmetadata`.
    V2Metadata,
    /// IMDSv2 `issuecredential`.
    V2Issue,
    /// IMDSv2 token leg over mutual TLS.
    V2Mtls,
    /// Agent blueprint T1 (`fmi_path`).
    AgentT1,
    /// Agent identity TR (assertion = T1).
    AgentTr,
    /// Agent user (`user_fic`).
    AgentUser,
}

const FAMILIES: [Family; 13] = [
    Family::Token,
    Family::Imds,
    Family::AppService,
    Family::ServiceFabric,
    Family::Arc,
    Family::CloudShell,
    Family::MachineLearning,
    Family::V2Metadata,
    Family::V2Issue,
    Family::V2Mtls,
    Family::AgentT1,
    Family::AgentTr,
    Family::AgentUser,
];

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Token => "token endpoint (client secret)",
            Family::Imds => "IMDS v1",
            Family::AppService => "App Service",
            Family::ServiceFabric => "Service Fabric",
            Family::Arc => "Azure Arc",
            Family::CloudShell => "Cloud Shell",
            Family::MachineLearning => "Azure ML",
            Family::V2Metadata => "IMDSv2 platform metadata",
            Family::V2Issue => "IMDSv2 issuecredential",
            Family::V2Mtls => "IMDSv2 mTLS token leg",
            Family::AgentT1 => "agent blueprint T1",
            Family::AgentTr => "agent identity TR",
            Family::AgentUser => "agent user (user_fic)",
        }
    }

    fn endpoint(self) -> EndpointKind {
        match self {
            Family::Token | Family::AgentT1 | Family::AgentTr | Family::AgentUser => {
                EndpointKind::Token
            }
            Family::Imds => EndpointKind::Imds,
            Family::AppService => EndpointKind::AppService,
            Family::ServiceFabric => EndpointKind::ServiceFabric,
            Family::Arc => EndpointKind::Arc,
            Family::CloudShell => EndpointKind::CloudShell,
            Family::MachineLearning => EndpointKind::MachineLearning,
            Family::V2Metadata => EndpointKind::ImdsPlatformMetadata,
            Family::V2Issue => EndpointKind::ImdsIssueCredential,
            Family::V2Mtls => EndpointKind::MtlsToken,
        }
    }

    /// The client id the fault matcher narrows to, for the legs that share the token endpoint.
    fn client_id(self) -> Option<&'static str> {
        match self {
            Family::Token => Some(APP),
            Family::AgentT1 => Some(BLUEPRINT),
            Family::AgentTr | Family::AgentUser => Some(AGENT),
            _ => None,
        }
    }

    /// Whether `request` is an attempt of this leg.
    fn is_attempt(self, r: &RecordedRequest) -> bool {
        r.endpoint == self.endpoint()
            && self.client_id().is_none_or(|c| r.client_id() == Some(c))
            && (self != Family::AgentUser || r.grant_type() == Some("user_fic"))
    }

    fn retry(self) -> Policy {
        match self {
            Family::Token
            | Family::V2Mtls
            | Family::AgentT1
            | Family::AgentTr
            | Family::AgentUser => Policy::TokenEndpoint,
            // Platform metadata: the IMDS rules, but 404 (IMDS v1 only) is final.
            Family::Imds | Family::V2Metadata | Family::V2Issue => Policy::Imds,
            _ => Policy::Standard,
        }
    }
}

/// The retry policy a family follows (docs/RELIABILITY.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// entra-core: 429, 5xx, dropped connections and timeouts, once, `Retry-After` or 1 s.
    TokenEndpoint,
    /// 404, 408, 429, 5xx and timeouts, 3 times, 1-2-4 s; 410 every 10 s for 70 s.
    Imds,
    /// 404, 408, 429, 500, 503, 504, 3 times, 1 s.
    Standard,
}

/// A fault the emulator injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultKind {
    Status(u16),
    GoneBurst,
    RetryAfter429,
    Slow,
    Reset,
    Truncated,
    /// The emulator's `malformed_json`: JSON that stops mid-string.
    Malformed,
    /// A 200 JSON answer with a syntax error in the middle.
    BadSyntax,
    Html,
    Oversized,
    Redirect,
    /// The server certificate is not trusted (token endpoint) or its pinned thumbprint does
    /// not match (Service Fabric).
    UntrustedServer,
    /// The mTLS listener rejects the handshake once / twice.
    TlsHandshake,
    TlsHandshakeTwice,
    /// The bound certificate is revoked after a first token.
    Revoked,
    /// `invalid_client` once / twice.
    InvalidClient,
    InvalidClientTwice,
}

const STATUSES: [u16; 8] = [404, 408, 410, 429, 500, 502, 503, 504];

fn faults() -> Vec<FaultKind> {
    let mut all: Vec<FaultKind> = STATUSES.iter().map(|s| FaultKind::Status(*s)).collect();
    all.extend([
        FaultKind::GoneBurst,
        FaultKind::RetryAfter429,
        FaultKind::Slow,
        FaultKind::Reset,
        FaultKind::Truncated,
        FaultKind::Malformed,
        FaultKind::BadSyntax,
        FaultKind::Html,
        FaultKind::Oversized,
        FaultKind::Redirect,
        FaultKind::UntrustedServer,
        FaultKind::TlsHandshake,
        FaultKind::TlsHandshakeTwice,
        FaultKind::Revoked,
        FaultKind::InvalidClient,
        FaultKind::InvalidClientTwice,
    ]);
    all
}

impl FaultKind {
    fn name(self) -> String {
        match self {
            FaultKind::Status(s) => format!("HTTP {s}"),
            FaultKind::GoneBurst => "410 burst (7×)".into(),
            FaultKind::RetryAfter429 => "429 + Retry-After: 5".into(),
            FaultKind::Slow => "slow answer > timeout".into(),
            FaultKind::Reset => "connection reset".into(),
            FaultKind::Truncated => "truncated body".into(),
            FaultKind::Malformed => "malformed JSON (ends mid-string)".into(),
            FaultKind::BadSyntax => "JSON syntax error".into(),
            FaultKind::Html => "HTML content type".into(),
            FaultKind::Oversized => "5 MiB body".into(),
            FaultKind::Redirect => "302 redirect".into(),
            FaultKind::UntrustedServer => "untrusted server cert".into(),
            FaultKind::TlsHandshake => "mTLS handshake rejected 1×".into(),
            FaultKind::TlsHandshakeTwice => "mTLS handshake rejected 2×".into(),
            FaultKind::Revoked => "bound cert revoked".into(),
            FaultKind::InvalidClient => "invalid_client 1×".into(),
            FaultKind::InvalidClientTwice => "invalid_client 2×".into(),
        }
    }
}

/// The expected outcome of one row.
#[derive(Clone, Debug)]
struct Expect {
    /// How many matching requests the fault applies to.
    times: u32,
    /// `ok`, or the error class as [`class`] writes it.
    outcome: String,
    /// Attempts of the faulted leg recorded by the emulator.
    attempts: usize,
    /// Virtual waits, in seconds.
    sleeps: Vec<u64>,
    /// A second acceptable observation (outcome, attempts, waits), for the one race the
    /// network decides: see [`TLS13_RACE`].
    or: Vec<(&'static str, usize, Vec<u64>)>,
}

/// Why a rejected mutual-TLS handshake has two acceptable observations. With TLS 1.3 the
/// server checks the client certificate after the client has finished its side of the
/// handshake; the client learns of the rejection when it uses the connection. Usually the
/// server's alert arrives first (`Transport(Tls)`: the binding is re-minted); when the server's
/// close overtakes it, the client sees a broken connection (`Transport(Io)`), which the token
/// endpoint policy retries once after 1 s on a new connection.
const TLS13_RACE: &str = "TLS 1.3 client-certificate rejection: alert or reset";

fn ok(times: u32, attempts: usize, sleeps: &[u64]) -> Expect {
    Expect {
        times,
        outcome: "ok".into(),
        attempts,
        sleeps: sleeps.to_vec(),
        or: Vec::new(),
    }
}

fn fail(outcome: impl Into<String>, attempts: usize) -> Expect {
    Expect {
        times: 1,
        outcome: outcome.into(),
        attempts,
        sleeps: Vec::new(),
        or: Vec::new(),
    }
}

/// The table: the expected outcome of `fault` on `family`, or why the pair is not covered.
fn expect(family: Family, fault: FaultKind) -> Result<Expect, &'static str> {
    use FaultKind as F;
    let policy = family.retry();
    let v2 = matches!(
        family,
        Family::V2Metadata | Family::V2Issue | Family::V2Mtls
    );
    Ok(match fault {
        F::Status(404) if family == Family::V2Metadata => {
            fail("NotSupported(mtls_pop_token_not_supported_in_imds_v1)", 1)
        }
        F::Status(s) => {
            let retried = match policy {
                Policy::TokenEndpoint => s == 429 || s >= 500,
                Policy::Imds => s != 410,
                Policy::Standard => matches!(s, 404 | 408 | 429 | 500 | 503 | 504),
            };
            match (policy, retried, s) {
                // 410 from IMDS: one answer while upgrading, retried after 10 s.
                (Policy::Imds, _, 410) => ok(1, 2, &[10]),
                (Policy::TokenEndpoint, true, _) => ok(1, 2, &[1]),
                (Policy::Imds, true, _) => ok(3, 4, &[1, 2, 4]),
                (Policy::Standard, true, _) => ok(3, 4, &[1, 1, 1]),
                _ => fail(format!("Service({s})"), 1),
            }
        }
        F::GoneBurst => match policy {
            Policy::Imds => ok(7, 8, &[10; 7]),
            _ => return Err("410 has no special meaning outside IMDS (HTTP 410 row)"),
        },
        F::RetryAfter429 => ok(1, 2, &[5]),
        F::Slow => match family {
            Family::ServiceFabric => {
                return Err(
                    "the thumbprint-pinning transport is built inside entra-mi; an injected one replaces the pinning",
                );
            }
            Family::V2Mtls => {
                return Err(
                    "the mTLS transport is built from the binding; its timeout is not injectable",
                );
            }
            _ => match policy {
                Policy::TokenEndpoint | Policy::Imds => ok(1, 2, &[1]),
                _ => fail("Transport(Timeout)", 1),
            },
        },
        F::Reset => match policy {
            Policy::TokenEndpoint => ok(1, 2, &[1]),
            _ => fail("Transport(Io)", 1),
        },
        F::Truncated => fail("UnexpectedResponse(Truncated)", 1),
        // The emulator's malformed body stops inside a string: JSON that ends early is read as
        // a cut answer (entra-core's `json_object`, by design and unit-tested).
        F::Malformed => fail("UnexpectedResponse(Truncated)", 1),
        F::BadSyntax => fail("UnexpectedResponse(MalformedJson)", 1),
        F::Html => fail("UnexpectedResponse(NotJson)", 1),
        F::Oversized => fail("UnexpectedResponse(TooLarge)", 1),
        F::Redirect => fail("UnexpectedResponse(Redirect)", 1),
        F::UntrustedServer => match family {
            Family::Token => fail("Transport(Tls)", 0),
            Family::ServiceFabric => fail("Transport(Tls)", 0),
            _ => {
                return Err(
                    "one row per server-authentication scheme: CA trust (token endpoint), thumbprint pinning (Service Fabric)",
                );
            }
        },
        F::TlsHandshake | F::TlsHandshakeTwice | F::Revoked if family != Family::V2Mtls => {
            return Err("only the IMDSv2 token leg authenticates the client with a certificate");
        }
        // A rejected handshake never reaches the request log; the binding is re-minted once.
        // Or (TLS13_RACE) the reset is retried after 1 s and the second handshake succeeds.
        F::TlsHandshake => Expect {
            or: vec![("ok", 1, vec![1])],
            ..ok(1, 1, &[])
        },
        // Or (TLS13_RACE) one rejection is a reset, retried after 1 s, and the other an alert,
        // after which the binding is re-minted: a token after 1 s. Or both are resets: the
        // one retry is spent and the reset is the error.
        F::TlsHandshakeTwice => Expect {
            or: vec![("ok", 1, vec![1]), ("Transport(Io)", 0, vec![1])],
            ..fail("Transport(Tls)", 0)
        },
        // The refused attempt with the revoked certificate, then the one with the new one.
        F::Revoked => ok(1, 2, &[]),
        F::InvalidClient | F::InvalidClientTwice if v2 && family != Family::V2Mtls => {
            return Err("invalid_client is an answer of the token leg, not of IMDS");
        }
        F::InvalidClient if family == Family::V2Mtls => ok(1, 2, &[]),
        F::InvalidClientTwice if family == Family::V2Mtls => Expect {
            times: 2,
            ..fail("Service(401 invalid_client)", 2)
        },
        F::InvalidClient => match policy {
            Policy::TokenEndpoint => fail("Service(401 invalid_client)", 1),
            _ => {
                return Err(
                    "managed identity sources authenticate with a header secret, not client credentials",
                );
            }
        },
        F::InvalidClientTwice => {
            return Err(
                "the second invalid_client only matters where the first one triggers a re-mint (IMDSv2)",
            );
        }
    })
}

/// The class of an error, as the table writes it.
fn class(error: &Error) -> String {
    match error {
        Error::Transport { kind, .. } => format!("Transport({kind:?})"),
        Error::UnexpectedResponse { problem, .. } => {
            let p = match problem {
                ResponseProblem::Redirect => "Redirect".to_owned(),
                ResponseProblem::TooLarge { .. } => "TooLarge".to_owned(),
                ResponseProblem::Truncated => "Truncated".to_owned(),
                ResponseProblem::NotJson { .. } => "NotJson".to_owned(),
                ResponseProblem::MalformedJson { .. } => "MalformedJson".to_owned(),
                ResponseProblem::ErrorStatus => "ErrorStatus".to_owned(),
                other => format!("{other:?}").replace('"', ""),
            };
            format!("UnexpectedResponse({p})")
        }
        Error::Service(e) if e.error == "invalid_client" => {
            format!("Service({} invalid_client)", e.status)
        }
        Error::Service(e) => format!("Service({})", e.status),
        Error::Unavailable { .. } => "Unavailable".to_owned(),
        Error::NotSupported { code, .. } => format!("NotSupported({code})"),
        other => format!("other: {other}"),
    }
}

struct Ctx {
    emulator: Emulator,
    /// Every secret seen or issued during the run.
    secrets: Vec<String>,
    /// Every error's Display and Debug.
    shown: String,
    /// The emulator's request log of every row (`Debug`).
    request_log: String,
    /// Arc key files read (their content is among the secrets).
    arc_keys: usize,
}

async fn setup() -> Ctx {
    CapturedLogs::global();
    let emulator = Emulator::start().await.expect("emulator starts");
    emulator.add_tenant(TENANT).unwrap();
    emulator
        .add_application(TENANT, AppRegistration::new(APP).client_secret(APP_SECRET))
        .unwrap();
    emulator
        .add_agent_blueprint(
            TENANT,
            AppRegistration::new(BLUEPRINT).client_secret(BLUEPRINT_SECRET),
        )
        .unwrap();
    emulator
        .add_agent_identity(TENANT, BLUEPRINT, AGENT)
        .unwrap();
    for (id, upn) in [
        (USER_1, "fm-user1@contoso.example"),
        (USER_2, "fm-user2@contoso.example"),
    ] {
        emulator
            .add_agent_user(TENANT, AGENT, UserAccount::new(id, upn))
            .unwrap();
    }
    emulator
        .set_system_assigned_identity(ManagedIdentity::new(
            TENANT,
            "fc1d0000-0000-0000-0000-000000000000",
            "f0b10000-0000-0000-0000-000000000000",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        ))
        .unwrap();
    let secrets = vec![
        APP_SECRET.to_owned(),
        BLUEPRINT_SECRET.to_owned(),
        emulator.app_service_secret().to_owned(),
        emulator.service_fabric_secret().to_owned(),
        emulator.ml_secret().to_owned(),
        FAULT_BODY_TOKEN.to_owned(),
    ];
    Ctx {
        emulator,
        secrets,
        shown: String::new(),
        request_log: String::new(),
        arc_keys: 0,
    }
}

/// A transport to the emulator (trusting its CA) that gives up after [`SHORT_TIMEOUT`].
fn short_timeout(emulator: &Emulator) -> Arc<dyn HttpTransport> {
    Arc::new(
        ReqwestTransport::builder()
            .add_root_certificates_pem(emulator.ca_pem().as_bytes())
            .unwrap()
            .only_added_roots(true)
            .timeout(SHORT_TIMEOUT)
            .read_timeout(SHORT_TIMEOUT)
            .build()
            .unwrap(),
    )
}

fn mi_env(emulator: &Emulator, family: Family, thumbprint: String) -> MapEnv {
    let http = emulator.http_url();
    match family {
        Family::AppService => MapEnv::new([
            ("IDENTITY_ENDPOINT", format!("{http}/msi/token")),
            ("IDENTITY_HEADER", emulator.app_service_secret().to_owned()),
        ]),
        Family::ServiceFabric => MapEnv::new([
            (
                "IDENTITY_ENDPOINT",
                format!(
                    "{}/metadata/identity/oauth2/token",
                    emulator.service_fabric_url()
                ),
            ),
            (
                "IDENTITY_HEADER",
                emulator.service_fabric_secret().to_owned(),
            ),
            ("IDENTITY_SERVER_THUMBPRINT", thumbprint),
        ]),
        Family::Arc => MapEnv::new([
            (
                "IDENTITY_ENDPOINT",
                format!("{http}/arc/metadata/identity/oauth2/token"),
            ),
            ("IMDS_ENDPOINT", http),
        ]),
        Family::CloudShell => MapEnv::new([("MSI_ENDPOINT", format!("{http}/cloudshell/token"))]),
        Family::MachineLearning => MapEnv::new([
            ("MSI_ENDPOINT", format!("{http}/ml/token")),
            ("MSI_SECRET", emulator.ml_secret().to_owned()),
            (
                "DEFAULT_IDENTITY_CLIENT_ID",
                "fc1d0000-0000-0000-0000-000000000000".to_owned(),
            ),
        ]),
        _ => MapEnv::new([("AZURE_POD_IDENTITY_AUTHORITY_HOST", http)]),
    }
}

fn blueprint(emulator: &Emulator, clock: &ManualClock, t: Arc<dyn HttpTransport>) -> Blueprint {
    Blueprint::builder(BLUEPRINT)
        .tenant(TENANT)
        .unwrap()
        .credential(BlueprintCredential::Secret(Secret::new(BLUEPRINT_SECRET)))
        .authority(AuthorityHost::parse(&emulator.https_url()).unwrap())
        .transport(t)
        .clock(Arc::new(clock.clone()))
        .env(Arc::new(MapEnv::default()))
        .build()
        .unwrap()
}

fn token_client(
    emulator: &Emulator,
    clock: &ManualClock,
    t: Arc<dyn HttpTransport>,
) -> TokenClient {
    TokenClient::builder(APP)
        .authority(AuthorityHost::parse(&emulator.https_url()).unwrap())
        .tenant(TENANT)
        .unwrap()
        .credential(ClientCredential::Secret(Secret::new(APP_SECRET)))
        .transport(t)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// What one row did.
struct Observed {
    outcome: String,
    attempts: usize,
    sleeps: Vec<u64>,
}

fn action(fault: FaultKind, emulator: &Emulator) -> Option<FaultAction> {
    Some(match fault {
        FaultKind::Status(s) => FaultAction::status(s),
        FaultKind::GoneBurst => FaultAction::status(410),
        FaultKind::RetryAfter429 => FaultAction::status_with_retry_after(429, 5),
        FaultKind::Slow => FaultAction::delay(SLOW_ANSWER),
        FaultKind::Reset => FaultAction::ConnectionReset,
        FaultKind::Truncated => FaultAction::TruncatedBody,
        FaultKind::Malformed => FaultAction::MalformedJson,
        FaultKind::BadSyntax => FaultAction::Status {
            status: 200,
            body: FaultBody::Raw {
                content_type: "application/json".to_owned(),
                body: r#"{"token_type":"Bearer","expires_in":3599,"access_token":nope}"#.to_owned(),
            },
            retry_after: None,
        },
        FaultKind::Html => FaultAction::WrongContentType,
        FaultKind::Oversized => FaultAction::oversized_body(),
        FaultKind::Redirect => FaultAction::redirect(format!("{}/elsewhere", emulator.http_url())),
        FaultKind::InvalidClient | FaultKind::InvalidClientTwice => FaultAction::invalid_client(),
        FaultKind::UntrustedServer
        | FaultKind::TlsHandshake
        | FaultKind::TlsHandshakeTwice
        | FaultKind::Revoked => return None,
    })
}

async fn run_row(ctx: &mut Ctx, family: Family, fault: FaultKind, times: u32) -> Observed {
    let emulator = &ctx.emulator;
    emulator.clear_faults();
    emulator.clear_requests();
    let clock = clock_now();
    let slow = fault == FaultKind::Slow;
    let t: Arc<dyn HttpTransport> = if slow {
        short_timeout(emulator)
    } else if fault == FaultKind::UntrustedServer {
        // The public roots only: the emulator's certificate is not trusted.
        Arc::new(ReqwestTransport::new().unwrap())
    } else {
        transport(emulator)
    };
    let request = match family {
        Family::AgentUser => TokenRequest::new([USER_READ]),
        Family::Imds
        | Family::AppService
        | Family::ServiceFabric
        | Family::Arc
        | Family::CloudShell
        | Family::MachineLearning
        | Family::V2Metadata
        | Family::V2Issue
        | Family::V2Mtls => TokenRequest::new([VAULT]),
        _ => TokenRequest::new([GRAPH]),
    };
    let inject = |emulator: &Emulator| {
        if let Some(a) = action(fault, emulator) {
            let mut matcher = FaultMatcher::endpoint(family.endpoint());
            if let Some(c) = family.client_id() {
                matcher = matcher.with_client_id(c);
            }
            emulator
                .add_fault(Fault::new(matcher, a).times(times))
                .unwrap();
        }
        match fault {
            FaultKind::TlsHandshake => emulator.reject_mtls_handshakes(1),
            FaultKind::TlsHandshakeTwice => emulator.reject_mtls_handshakes(2),
            _ => {}
        }
    };
    let result: Result<String, Error> = match family {
        Family::Token => {
            let c = token_client(emulator, &clock, t);
            inject(emulator);
            c.get_token(&request)
                .await
                .map(|t| t.token().expose().to_owned())
        }
        Family::AgentT1 | Family::AgentTr | Family::AgentUser => {
            let b = blueprint(emulator, &clock, t);
            let agent = b.agent_identity(AGENT).unwrap();
            // Warm the legs before the faulted one, so the fault meets the leg under test.
            match family {
                Family::AgentTr => {
                    agent.get_token(&TokenRequest::new([ARM])).await.unwrap();
                }
                Family::AgentUser => {
                    let warm = agent.agent_user(AgentUser::object_id(USER_1).unwrap());
                    warm.get_token(&request).await.unwrap();
                }
                _ => {}
            }
            // T1 (and T2) are in the cache: record them as secrets.
            if family != Family::AgentT1 {
                let t1 = b.t1(AGENT).await.unwrap();
                ctx.secrets.push(t1.value.token().expose().to_owned());
            }
            emulator.clear_requests();
            inject(emulator);
            let result = match family {
                Family::AgentUser => {
                    agent
                        .agent_user(AgentUser::object_id(USER_2).unwrap())
                        .get_token(&request)
                        .await
                }
                _ => agent.get_token(&request).await,
            };
            result.map(|t| t.token().expose().to_owned())
        }
        Family::V2Metadata | Family::V2Issue | Family::V2Mtls => {
            let mut builder = ManagedIdentityCredential::builder()
                .identity(ManagedIdentityId::SystemAssigned)
                .env(Arc::new(mi_env(emulator, family, String::new())))
                .clock(Arc::new(clock.clone()))
                .mtls_proof_of_possession(true)
                .mtls_extra_root_certificates_pem(emulator.ca_pem().as_bytes().to_vec());
            if slow {
                builder = builder.transport(t);
            }
            let c = builder.build().unwrap();
            if fault == FaultKind::Revoked {
                let first = c.get_token(&TokenRequest::new([ARM])).await.unwrap();
                ctx.secrets.push(first.token().expose().to_owned());
                emulator.revoke_bound_certificates();
                emulator.clear_requests();
            }
            inject(emulator);
            c.get_token(&request)
                .await
                .map(|t| t.token().expose().to_owned())
        }
        _ => {
            let thumbprint = if fault == FaultKind::UntrustedServer {
                "00".repeat(20)
            } else {
                emulator.service_fabric_thumbprint().to_lowercase()
            };
            let mut builder = ManagedIdentityCredential::builder()
                .identity(ManagedIdentityId::SystemAssigned)
                .env(Arc::new(mi_env(emulator, family, thumbprint)))
                .clock(Arc::new(clock.clone()))
                .file_system(Arc::new(SystemFileSystem))
                .arc_key_directory_for_tests(emulator.arc_key_directory());
            if slow {
                builder = builder.transport(t);
            }
            let c = builder.build().unwrap();
            inject(emulator);
            let result = c
                .get_token(&request)
                .await
                .map(|t| t.token().expose().to_owned());
            if family == Family::Arc {
                let keys = arc_key_files(emulator);
                ctx.arc_keys += keys.len();
                ctx.secrets.extend(keys);
            }
            result
        }
    };
    let mut attempts = emulator.count(|r| family.is_attempt(r));
    let outcome = match result {
        Ok(token) => {
            ctx.secrets.push(token);
            // Arc: the request answering the challenge is not an attempt of the faulted leg.
            if family == Family::Arc {
                attempts -= 1;
            }
            "ok".to_owned()
        }
        Err(e) => {
            let _ = write!(ctx.shown, "{e}\n{e:?}\n");
            class(&e)
        }
    };
    let _ = writeln!(ctx.request_log, "{:?}", emulator.requests());
    // Clear what a row left behind (a fault not used up, handshakes still to reject).
    emulator.clear_faults();
    emulator.reject_mtls_handshakes(0);
    Observed {
        outcome,
        attempts,
        sleeps: clock.sleeps().iter().map(Duration::as_secs).collect(),
    }
}

/// The content of the Arc key files the emulator wrote.
fn arc_key_files(emulator: &Emulator) -> Vec<String> {
    std::fs::read_dir(emulator.arc_key_directory())
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn secs(s: &[u64]) -> String {
    if s.is_empty() {
        "0 s".to_owned()
    } else {
        format!("{} s ({})", s.iter().sum::<u64>(), {
            let parts: Vec<String> = s.iter().map(u64::to_string).collect();
            parts.join("+")
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)] // printing the summary table is this test's second job
async fn fault_matrix() {
    let mut ctx = setup().await;
    let mut table = String::from(
        "| family | fault | outcome | attempts | virtual wait |\n|---|---|---|---|---|\n",
    );
    let mut skipped = String::new();
    let mut failures = Vec::new();
    let mut rows = 0;
    for family in FAMILIES {
        for fault in faults() {
            let expected = match expect(family, fault) {
                Ok(e) => e,
                Err(why) => {
                    let _ = writeln!(skipped, "| {} | {} | {why} |", family.name(), fault.name());
                    continue;
                }
            };
            rows += 1;
            let seen = run_row(&mut ctx, family, fault, expected.times).await;
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} | {} |",
                family.name(),
                fault.name(),
                if seen.outcome == "ok" {
                    "ok".to_owned()
                } else {
                    format!("`{}`", seen.outcome)
                },
                seen.attempts,
                secs(&seen.sleeps)
            );
            let primary = seen.outcome == expected.outcome
                && seen.attempts == expected.attempts
                && seen.sleeps == expected.sleeps;
            let alternative = expected
                .or
                .iter()
                .any(|(o, a, w)| seen.outcome == *o && seen.attempts == *a && seen.sleeps == *w);
            if alternative && !primary {
                println!("{} × {}: {TLS13_RACE}", family.name(), fault.name());
            }
            if !primary && !alternative {
                failures.push(format!(
                    "{} × {}: expected {} in {} attempts waiting {:?}, saw {} in {} attempts waiting {:?}",
                    family.name(),
                    fault.name(),
                    expected.outcome,
                    expected.attempts,
                    expected.sleeps,
                    seen.outcome,
                    seen.attempts,
                    seen.sleeps
                ));
            }
        }
    }
    let summary = format!(
        "# Fault matrix\n\n{rows} rows. outcome: `ok` (a token) or the class of the `entra_core::Error`; attempts: requests of the faulted leg in the emulator's request log (a rejected TLS handshake never reaches it); virtual wait: the sum of `ManualClock::sleeps()` with each wait in parentheses.\n\n{table}\n## Pairs not covered\n\n| family | fault | why |\n|---|---|---|\n{skipped}"
    );
    println!("{summary}");
    // `cargo xtask fault-matrix` names the file (it knows the target directory).
    #[allow(clippy::disallowed_methods)]
    let out = std::env::var_os("FAULT_MATRIX_OUT").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fault-matrix.md"),
        PathBuf::from,
    );
    if let Err(e) = std::fs::write(&out, &summary) {
        println!("could not write {}: {e}", out.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Leak check across every row.
    let logs = CapturedLogs::global().text();
    assert!(
        logs.contains("retrying"),
        "the log capture saw the flows' events"
    );
    let request_log = ctx.request_log.clone();
    assert!(ctx.secrets.len() > 20, "tokens were collected");
    assert!(ctx.arc_keys > 0, "the Arc key files were read");
    for secret in &ctx.secrets {
        let short: String = secret.chars().take(12).collect();
        for (name, text) in [
            ("the log", &logs),
            ("an error's Display or Debug", &ctx.shown),
            ("the emulator's request log", &request_log),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret ({short}…) reached {name}"
            );
        }
    }
    for text in [&logs, &ctx.shown, &request_log] {
        assert!(
            !text.contains("PRIVATE KEY"),
            "a private key reached the output"
        );
    }
}
