//! entra-mi against the emulator's managed identity endpoints: every source, system- and
//! user-assigned, detection, retry rules in virtual time, Arc file rules, Service Fabric
//! pinning, malformed answers; requests counted in the emulator's log.

use std::sync::Arc;
use std::time::Duration;

use entra_core::{Error, ManualClock, MapEnv, TokenCredential, TokenRequest};
use entra_emulator::{Emulator, EndpointKind, Fault, FaultAction, FaultMatcher, ManagedIdentity};
use entra_mi::{
    ManagedIdentityCredential, ManagedIdentityId, ManagedIdentitySourceKind, SystemFileSystem,
};
use entra_tests::{CapturedLogs, TENANT, clock_now};
use serde_json::Value;

const ARM: &str = "https://management.azure.com/.default";

struct Fixture {
    emulator: Emulator,
    system: ManagedIdentity,
    users: Vec<ManagedIdentity>,
}

fn identity(n: u8, kind: &str) -> ManagedIdentity {
    ManagedIdentity::new(
        TENANT,
        format!("c1d00000-0000-0000-0000-0000000000{n:02}"),
        format!("0b100000-0000-0000-0000-0000000000{n:02}"),
        format!("/subscriptions/s/resourceGroups/rg/providers/{kind}/mi-{n}"),
    )
}

async fn fixture() -> Fixture {
    CapturedLogs::global();
    let emulator = Emulator::start().await.expect("emulator starts");
    emulator.add_tenant(TENANT).unwrap();
    let system = identity(0, "Microsoft.Compute/virtualMachines");
    emulator
        .set_system_assigned_identity(system.clone())
        .unwrap();
    let users = vec![
        identity(1, "Microsoft.ManagedIdentity/userAssignedIdentities"),
        identity(2, "Microsoft.ManagedIdentity/userAssignedIdentities"),
    ];
    for u in &users {
        emulator.add_user_assigned_identity(u.clone()).unwrap();
    }
    Fixture {
        emulator,
        system,
        users,
    }
}

/// The environment each source sets on a real host, pointing at the emulator.
fn env_for(emulator: &Emulator, source: ManagedIdentitySourceKind) -> MapEnv {
    let http = emulator.http_url();
    match source {
        ManagedIdentitySourceKind::Imds => {
            MapEnv::new([("AZURE_POD_IDENTITY_AUTHORITY_HOST", http)])
        }
        ManagedIdentitySourceKind::AppService => MapEnv::new([
            ("IDENTITY_ENDPOINT", format!("{http}/msi/token")),
            ("IDENTITY_HEADER", emulator.app_service_secret().to_owned()),
        ]),
        ManagedIdentitySourceKind::ServiceFabric => MapEnv::new([
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
            (
                "IDENTITY_SERVER_THUMBPRINT",
                emulator.service_fabric_thumbprint().to_lowercase(),
            ),
        ]),
        ManagedIdentitySourceKind::AzureArc => MapEnv::new([
            (
                "IDENTITY_ENDPOINT",
                format!("{http}/arc/metadata/identity/oauth2/token"),
            ),
            ("IMDS_ENDPOINT", http),
        ]),
        ManagedIdentitySourceKind::CloudShell => {
            MapEnv::new([("MSI_ENDPOINT", format!("{http}/cloudshell/token"))])
        }
        ManagedIdentitySourceKind::MachineLearning => MapEnv::new([
            ("MSI_ENDPOINT", format!("{http}/ml/token")),
            ("MSI_SECRET", emulator.ml_secret().to_owned()),
        ]),
        other => panic!("no environment for {other:?}"),
    }
}

fn credential(
    emulator: &Emulator,
    source: ManagedIdentitySourceKind,
    id: ManagedIdentityId,
    clock: &ManualClock,
) -> Result<ManagedIdentityCredential, Error> {
    let mut env = env_for(emulator, source);
    if source == ManagedIdentitySourceKind::MachineLearning {
        // Azure ML names the system-assigned identity by client id in the environment.
        env = MapEnv::new([
            ("MSI_ENDPOINT", format!("{}/ml/token", emulator.http_url())),
            ("MSI_SECRET", emulator.ml_secret().to_owned()),
            (
                "DEFAULT_IDENTITY_CLIENT_ID",
                "c1d00000-0000-0000-0000-000000000000".to_owned(),
            ),
        ]);
    }
    ManagedIdentityCredential::builder()
        .identity(id)
        .env(Arc::new(env))
        .clock(Arc::new(clock.clone()))
        .file_system(Arc::new(SystemFileSystem))
        .arc_key_directory_for_tests(emulator.arc_key_directory())
        .build()
}

fn verify(emulator: &Emulator, token: &str, expected: &ManagedIdentity) {
    let validation = emulator.validation(TENANT, "https://management.azure.com");
    let claims = jsonwebtoken::decode::<Value>(token, &emulator.decoding_key(), &validation)
        .unwrap_or_else(|e| panic!("managed identity token does not verify: {e}"))
        .claims;
    assert_eq!(claims["appid"], expected.client_id.as_str());
    assert_eq!(claims["oid"], expected.object_id.as_str());
    assert_eq!(claims["xms_mirid"], expected.resource_id.as_str());
}

fn requests_to(emulator: &Emulator, kind: EndpointKind) -> usize {
    emulator.count(|r| r.endpoint == kind)
}

/// A source, the endpoint it talks to, and the selectors it supports with the identity each
/// one names.
type SourceCase = (
    ManagedIdentitySourceKind,
    EndpointKind,
    Vec<(ManagedIdentityId, ManagedIdentity)>,
);

/// Each source with the selectors it supports.
fn supported(f: &Fixture) -> Vec<SourceCase> {
    use ManagedIdentityId as Id;
    use ManagedIdentitySourceKind as S;
    let sys = (Id::SystemAssigned, f.system.clone());
    let u = &f.users[0];
    let by_client = (Id::ClientId(u.client_id.clone()), u.clone());
    let by_object = (
        Id::ObjectId(f.users[1].object_id.clone()),
        f.users[1].clone(),
    );
    let by_resource = (Id::ResourceId(u.resource_id.clone()), u.clone());
    vec![
        (
            S::Imds,
            EndpointKind::Imds,
            vec![
                sys.clone(),
                by_client.clone(),
                by_object.clone(),
                by_resource.clone(),
            ],
        ),
        (
            S::AppService,
            EndpointKind::AppService,
            vec![
                sys.clone(),
                by_client.clone(),
                by_object.clone(),
                by_resource,
            ],
        ),
        (
            S::ServiceFabric,
            EndpointKind::ServiceFabric,
            vec![sys.clone(), by_object],
        ),
        (
            S::MachineLearning,
            EndpointKind::MachineLearning,
            vec![sys.clone(), by_client],
        ),
        (S::AzureArc, EndpointKind::Arc, vec![sys.clone()]),
        (S::CloudShell, EndpointKind::CloudShell, vec![sys]),
    ]
}

#[tokio::test]
async fn every_source_and_supported_selector_gets_a_verified_token() {
    let f = fixture().await;
    let clock = clock_now();
    for (source, endpoint, selectors) in supported(&f) {
        for (id, expected) in selectors {
            let label = format!("{source:?} {id:?}");
            let c = credential(&f.emulator, source, id, &clock)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(c.source_kind(), source, "{label}: detection");
            let before = requests_to(&f.emulator, endpoint);
            let token = c
                .get_token(&TokenRequest::new([ARM]))
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            verify(&f.emulator, token.token().expose(), &expected);
            // Second call: from the cache.
            c.get_token(&TokenRequest::new([ARM])).await.unwrap();
            let made = requests_to(&f.emulator, endpoint) - before;
            let expected_requests = if source == ManagedIdentitySourceKind::AzureArc {
                2
            } else {
                1
            };
            assert_eq!(made, expected_requests, "{label}: requests made");
        }
    }
}

#[tokio::test]
async fn unsupported_selectors_are_clear_errors_before_any_request() {
    use ManagedIdentityId as Id;
    use ManagedIdentitySourceKind as S;
    let f = fixture().await;
    let clock = clock_now();
    let u = &f.users[0];
    for (source, id) in [
        (S::AzureArc, Id::ClientId(u.client_id.clone())),
        (S::CloudShell, Id::ObjectId(u.object_id.clone())),
        (S::ServiceFabric, Id::ClientId(u.client_id.clone())),
        (S::ServiceFabric, Id::ResourceId(u.resource_id.clone())),
        (S::MachineLearning, Id::ObjectId(u.object_id.clone())),
        (S::MachineLearning, Id::ResourceId(u.resource_id.clone())),
    ] {
        let result = match credential(&f.emulator, source, id.clone(), &clock) {
            Err(e) => Err(e),
            Ok(c) => c.get_token(&TokenRequest::new([ARM])).await.map(|_| ()),
        };
        let err = result.expect_err("unsupported selector must fail");
        assert!(
            matches!(err, Error::Configuration(_)),
            "{source:?} {id:?}: {err:?}"
        );
    }
    assert_eq!(f.emulator.requests().len(), 0, "no request was sent");
}

#[tokio::test]
async fn identity_not_assigned_and_scope_errors() {
    let f = fixture().await;
    let clock = clock_now();
    for source in [
        ManagedIdentitySourceKind::Imds,
        ManagedIdentitySourceKind::AppService,
    ] {
        let c = credential(
            &f.emulator,
            source,
            ManagedIdentityId::ClientId("not-assigned".into()),
            &clock,
        )
        .unwrap();
        let err = c.get_token(&TokenRequest::new([ARM])).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{source:?}: {err}");
        assert!(
            err.service_error().is_some(),
            "{source:?}: both error shapes map to a service error: {err:?}"
        );
    }
    let c = credential(
        &f.emulator,
        ManagedIdentitySourceKind::Imds,
        ManagedIdentityId::SystemAssigned,
        &clock,
    )
    .unwrap();
    for scopes in [vec![], vec![ARM, "https://vault.azure.net/.default"]] {
        let err = c.get_token(&TokenRequest::new(scopes)).await.unwrap_err();
        assert!(matches!(err, Error::Configuration(_)), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_make_one_request() {
    let f = fixture().await;
    let clock = clock_now();
    let c = Arc::new(
        credential(
            &f.emulator,
            ManagedIdentitySourceKind::Imds,
            ManagedIdentityId::SystemAssigned,
            &clock,
        )
        .unwrap(),
    );
    let tasks: Vec<_> = (0..15)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get_token(&TokenRequest::new([ARM])).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(requests_to(&f.emulator, EndpointKind::Imds), 1);
}

fn imds_fault(emulator: &Emulator, action: FaultAction, times: u32) {
    emulator
        .add_fault(Fault::new(FaultMatcher::endpoint(EndpointKind::Imds), action).times(times))
        .unwrap();
}

#[tokio::test]
async fn imds_retry_rules_in_virtual_time() {
    let f = fixture().await;
    let imds = |clock: &ManualClock| {
        credential(
            &f.emulator,
            ManagedIdentitySourceKind::Imds,
            ManagedIdentityId::SystemAssigned,
            clock,
        )
        .unwrap()
    };
    let secs = |s: &[u64]| {
        s.iter()
            .map(|&x| Duration::from_secs(x))
            .collect::<Vec<_>>()
    };

    // 500 three times, then success: 1, 2, 4 s.
    let clock = clock_now();
    f.emulator.clear_requests();
    imds_fault(&f.emulator, FaultAction::status(500), 3);
    imds(&clock)
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    assert_eq!(clock.sleeps(), secs(&[1, 2, 4]));
    assert_eq!(requests_to(&f.emulator, EndpointKind::Imds), 4);

    // 404 forever: fails after the three retries.
    let clock = clock_now();
    f.emulator.clear_requests();
    imds_fault(&f.emulator, FaultAction::status(404), 100);
    let err = imds(&clock)
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(requests_to(&f.emulator, EndpointKind::Imds), 4);
    f.emulator.clear_faults();

    // 410 (IMDS upgrading) for 70 s, then success: retried past the three retries other
    // statuses get, every 10 s.
    let clock = clock_now();
    f.emulator.clear_requests();
    imds_fault(&f.emulator, FaultAction::status(410), 7);
    imds(&clock)
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    let waited: Duration = clock.sleeps().iter().sum();
    assert!(
        waited >= Duration::from_secs(60),
        "waited {waited:?}: {:?}",
        clock.sleeps()
    );
    assert_eq!(requests_to(&f.emulator, EndpointKind::Imds), 8);

    // 410 forever: gives up only after 70 s.
    let clock = clock_now();
    imds_fault(&f.emulator, FaultAction::status(410), 1000);
    let err = imds(&clock)
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(410));
    let waited: Duration = clock.sleeps().iter().sum();
    assert!(waited >= Duration::from_secs(70), "waited {waited:?}");
    f.emulator.clear_faults();

    // 429 with Retry-After.
    let clock = clock_now();
    imds_fault(&f.emulator, FaultAction::status_with_retry_after(429, 5), 1);
    imds(&clock)
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    assert_eq!(clock.sleeps(), secs(&[5]));
}

#[tokio::test]
async fn long_lived_tokens_refresh_at_half_life() {
    let f = fixture().await;
    let clock = clock_now();
    let c = credential(
        &f.emulator,
        ManagedIdentitySourceKind::Imds,
        ManagedIdentityId::SystemAssigned,
        &clock,
    )
    .unwrap();
    let first = c.get_token(&TokenRequest::new([ARM])).await.unwrap();
    let life = first
        .expires_on()
        .duration_since(first.refresh_on())
        .unwrap()
        * 2;
    assert!(
        life >= Duration::from_secs(86_000),
        "24 h tokens: refresh_on at half-life"
    );
    // Just before half-life (and any jitter window): served from the cache.
    clock.advance(life / 2 - Duration::from_secs(60));
    c.get_token(&TokenRequest::new([ARM])).await.unwrap();
    assert_eq!(requests_to(&f.emulator, EndpointKind::Imds), 1);
    // Past half-life: one refresh.
    clock.advance(Duration::from_secs(61));
    let second = c.get_token(&TokenRequest::new([ARM])).await.unwrap();
    assert_ne!(second.token().expose(), first.token().expose());
    assert_eq!(requests_to(&f.emulator, EndpointKind::Imds), 2);
}

#[tokio::test]
async fn other_sources_retry_three_times_one_second_apart() {
    let f = fixture().await;
    let clock = clock_now();
    f.emulator
        .add_fault(
            Fault::new(
                FaultMatcher::endpoint(EndpointKind::AppService),
                FaultAction::status(503),
            )
            .times(3),
        )
        .unwrap();
    credential(
        &f.emulator,
        ManagedIdentitySourceKind::AppService,
        ManagedIdentityId::SystemAssigned,
        &clock,
    )
    .unwrap()
    .get_token(&TokenRequest::new([ARM]))
    .await
    .unwrap();
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(1); 3]);
    assert_eq!(requests_to(&f.emulator, EndpointKind::AppService), 4);
}

#[tokio::test]
async fn probe_mode_fails_fast_as_unavailable() {
    let f = fixture().await;
    let clock = clock_now();
    // Nothing listens on this loopback port.
    let env = MapEnv::new([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")]);
    let c = ManagedIdentityCredential::builder()
        .env(Arc::new(env))
        .clock(Arc::new(clock.clone()))
        .probe_mode(true)
        .build()
        .unwrap();
    let err = c.get_token(&TokenRequest::new([ARM])).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(clock.sleeps().is_empty(), "probe mode does not retry");
    drop(f);
}

#[tokio::test]
async fn service_fabric_pins_the_thumbprint() {
    let f = fixture().await;
    let clock = clock_now();
    let ok = credential(
        &f.emulator,
        ManagedIdentitySourceKind::ServiceFabric,
        ManagedIdentityId::SystemAssigned,
        &clock,
    )
    .unwrap()
    .get_token(&TokenRequest::new([ARM]))
    .await;
    assert!(ok.is_ok(), "{ok:?}");
    let env = MapEnv::new([
        (
            "IDENTITY_ENDPOINT",
            format!(
                "{}/metadata/identity/oauth2/token",
                f.emulator.service_fabric_url()
            ),
        ),
        (
            "IDENTITY_HEADER",
            f.emulator.service_fabric_secret().to_owned(),
        ),
        ("IDENTITY_SERVER_THUMBPRINT", "00".repeat(20)),
    ]);
    let err = ManagedIdentityCredential::builder()
        .env(Arc::new(env))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: entra_core::TransportErrorKind::Tls,
                ..
            }
        ),
        "a wrong thumbprint is a TLS failure: {err:?}"
    );
}

#[tokio::test]
async fn arc_key_file_rules() {
    let f = fixture().await;
    let clock = clock_now();
    // An oversized key file is refused.
    f.emulator.set_arc_key_file_size(4097);
    let err = credential(
        &f.emulator,
        ManagedIdentitySourceKind::AzureArc,
        ManagedIdentityId::SystemAssigned,
        &clock,
    )
    .unwrap()
    .get_token(&TokenRequest::new([ARM]))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("4096"), "{err}");
    // A key file outside the allowed directory is refused: the emulator writes into a
    // directory the client was not told about.
    f.emulator.set_arc_key_file_size(32);
    let elsewhere =
        std::env::temp_dir().join(format!("entra-arc-elsewhere-{}", std::process::id()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    let allowed = f.emulator.arc_key_directory();
    f.emulator.set_arc_key_directory(elsewhere.clone());
    let c = ManagedIdentityCredential::builder()
        .env(Arc::new(env_for(
            &f.emulator,
            ManagedIdentitySourceKind::AzureArc,
        )))
        .clock(Arc::new(clock.clone()))
        .file_system(Arc::new(SystemFileSystem))
        .arc_key_directory_for_tests(allowed)
        .build()
        .unwrap();
    let err = c.get_token(&TokenRequest::new([ARM])).await.unwrap_err();
    assert!(!err.is_unavailable(), "{err:?}");
    let _ = std::fs::remove_dir_all(elsewhere);
}

#[tokio::test]
async fn malformed_answers_are_typed_errors() {
    let f = fixture().await;
    for action in [
        FaultAction::MalformedJson,
        FaultAction::WrongContentType,
        FaultAction::oversized_body(),
        FaultAction::TruncatedBody,
    ] {
        let clock = clock_now();
        f.emulator.clear_requests();
        imds_fault(&f.emulator, action.clone(), 10);
        let err = credential(
            &f.emulator,
            ManagedIdentitySourceKind::Imds,
            ManagedIdentityId::SystemAssigned,
            &clock,
        )
        .unwrap()
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnexpectedResponse { .. } | Error::Transport { .. }
            ),
            "{}: {err:?}",
            action.name()
        );
        // Malformed answers are not retried; a dropped body may be (as a transport failure).
        let made = requests_to(&f.emulator, EndpointKind::Imds);
        assert!(
            (1..=4).contains(&made),
            "{}: {made} requests",
            action.name()
        );
        f.emulator.clear_faults();
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let f = fixture().await;
    let clock = clock_now();
    let mut shown = String::new();
    for (source, _, selectors) in supported(&f) {
        let (id, _) = selectors[0].clone();
        let c = credential(&f.emulator, source, id, &clock).unwrap();
        let t = c.get_token(&TokenRequest::new([ARM])).await.unwrap();
        shown.push_str(&format!("{c:?} {t:?}"));
        assert!(!shown.contains(t.token().expose()));
    }
    let log = CapturedLogs::global().text();
    for secret in [
        f.emulator.app_service_secret(),
        f.emulator.service_fabric_secret(),
        f.emulator.ml_secret(),
    ] {
        assert!(
            !log.contains(secret),
            "a managed identity secret reached the log"
        );
        assert!(
            !shown.contains(secret),
            "a managed identity secret reached Debug"
        );
    }
    assert!(!log.contains("eyJ"), "a token reached the log");
}
