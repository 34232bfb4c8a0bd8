//! Credential-level tests: scripted transport, `MapEnv`, `ManualClock`, in-memory files.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use entra_core::{
    Error, HttpResponse, ManualClock, MapEnv, TokenCredential, TokenRequest, TransportErrorKind,
};
use http::{HeaderValue, Method};

use crate::testing::{FakeTransport, Reply, json, ok_token};
use crate::{
    ManagedIdentityCredential, ManagedIdentityId, ManagedIdentityOptions,
    ManagedIdentitySourceKind, MemoryFileSystem,
};

const VAULT: &str = "https://vault.azure.net/.default";

fn clock() -> ManualClock {
    ManualClock::at_unix_seconds(1_795_000_000)
}

fn options(
    env: MapEnv,
    transport: &Arc<FakeTransport>,
    clock: &ManualClock,
) -> ManagedIdentityOptions {
    ManagedIdentityCredential::builder()
        .env(Arc::new(env))
        .transport(transport.clone())
        .clock(Arc::new(clock.clone()))
        .file_system(Arc::new(MemoryFileSystem::new()))
}

fn imds(transport: &Arc<FakeTransport>, clock: &ManualClock) -> ManagedIdentityCredential {
    options(MapEnv::default(), transport, clock)
        .build()
        .unwrap()
}

fn request(scope: &str) -> TokenRequest {
    TokenRequest::new([scope])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_calls_make_one_request() {
    let transport = Arc::new(FakeTransport::repeat(ok_token("T", 86_400)));
    let credential = imds(&transport, &clock());
    let calls = (0..15).map(|_| {
        let credential = credential.clone();
        tokio::spawn(async move { credential.get_token(&request(VAULT)).await })
    });
    for call in futures_util::future::join_all(calls).await {
        assert_eq!(call.unwrap().unwrap().token().expose(), "T");
    }
    assert_eq!(transport.requests().len(), 1);
}

#[tokio::test]
async fn tokens_are_cached_per_resource_and_selector_and_refreshed_at_half_life() {
    let transport = Arc::new(FakeTransport::repeat(ok_token("T", 86_400)));
    let clock = clock();
    let credential = imds(&transport, &clock);
    credential.get_token(&request(VAULT)).await.unwrap();
    // The same resource, with or without /.default, in another case: a hit.
    credential
        .get_token(&request("https://VAULT.azure.net"))
        .await
        .unwrap();
    assert_eq!(transport.requests().len(), 1);
    credential
        .get_token(&request("https://storage.azure.com/.default"))
        .await
        .unwrap();
    assert_eq!(transport.requests().len(), 2);
    // Another selector sharing the cache does not get the system identity's token.
    let user = options(MapEnv::default(), &transport, &clock)
        .identity(ManagedIdentityId::ClientId("c-1".into()))
        .cache(credential.cache().clone())
        .build()
        .unwrap();
    user.get_token(&request(VAULT)).await.unwrap();
    assert_eq!(transport.requests().len(), 3);
    assert!(
        transport.requests()[2]
            .url
            .query()
            .unwrap()
            .contains("client_id=c-1")
    );
    // ...but a second credential with the same selector and cache does.
    let again = options(MapEnv::default(), &transport, &clock)
        .cache(credential.cache().clone())
        .build()
        .unwrap();
    again.get_token(&request(VAULT)).await.unwrap();
    assert_eq!(transport.requests().len(), 3);
    // Long-lived managed identity tokens are refreshed at half-life.
    clock.advance(Duration::from_secs(11 * 3600));
    credential.get_token(&request(VAULT)).await.unwrap();
    assert_eq!(transport.requests().len(), 3);
    clock.advance(Duration::from_secs(2 * 3600));
    credential.get_token(&request(VAULT)).await.unwrap();
    assert_eq!(transport.requests().len(), 4);
    // A claims challenge bypasses the cache.
    let challenged = request(VAULT).with_claims_challenge(
        entra_claims::Claims::parse(r#"{"access_token":{"nbf":{"essential":true}}}"#).unwrap(),
    );
    credential.get_token(&challenged).await.unwrap();
    assert_eq!(transport.requests().len(), 5);
}

#[tokio::test]
async fn exactly_one_scope_becomes_the_resource() {
    let transport = Arc::new(FakeTransport::repeat(ok_token("T", 3600)));
    let credential = imds(&transport, &clock());
    for scopes in [
        vec![],
        vec!["a/.default", "b/.default"],
        vec!["a/.default b/.default"],
        vec!["  "],
    ] {
        let err = credential
            .get_token(&TokenRequest::new(scopes.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Configuration(m) if m.contains("managed identity takes exactly one scope")),
            "{scopes:?}: {err}"
        );
    }
    assert!(matches!(
        credential.get_token(&request("/.default")).await,
        Err(Error::Configuration(_))
    ));
    assert!(transport.requests().is_empty());
    credential.get_token(&request(VAULT)).await.unwrap();
    let sent = &transport.requests()[0];
    assert_eq!(
        sent.url.as_str(),
        "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
    );
    assert_eq!(sent.headers["metadata"], "true");
}

#[tokio::test]
async fn imds_retries_through_the_credential() {
    let transport = Arc::new(FakeTransport::repeat(HttpResponse::new(500, "")));
    let clock = clock();
    let err = imds(&transport, &clock)
        .get_token(&request(VAULT))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(clock.sleeps(), [1, 2, 4].map(Duration::from_secs));

    let mut script: Vec<HttpResponse> = (0..7).map(|_| HttpResponse::new(410, "")).collect();
    script.push(ok_token("T", 86_400));
    let transport = Arc::new(FakeTransport::script(script));
    let clock = self::clock();
    let token = imds(&transport, &clock)
        .get_token(&request(VAULT))
        .await
        .unwrap();
    assert!(clock.sleeps().iter().sum::<Duration>() >= Duration::from_secs(70));
    // The token lives 24 h from the successful request, not from the first attempt.
    assert_eq!(
        token.expires_on(),
        entra_cache::Clock::now(&clock) + Duration::from_secs(86_400)
    );
}

#[tokio::test]
async fn other_sources_retry_one_second_apart() {
    let env = MapEnv::new([
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
        ("IDENTITY_HEADER", "H"),
    ]);
    let transport = Arc::new(FakeTransport::script(vec![
        HttpResponse::new(503, ""),
        HttpResponse::new(404, ""),
        ok_token("T", 3600),
    ]));
    let clock = clock();
    options(env, &transport, &clock)
        .build()
        .unwrap()
        .get_token(&request(VAULT))
        .await
        .unwrap();
    assert_eq!(clock.sleeps(), [1, 1].map(Duration::from_secs));
}

#[tokio::test]
async fn probe_mode_fails_fast_as_unavailable() {
    for kind in [TransportErrorKind::Connect, TransportErrorKind::Timeout] {
        let transport = Arc::new(FakeTransport::failing(kind));
        let clock = clock();
        let credential = options(MapEnv::default(), &transport, &clock)
            .probe_mode(true)
            .build()
            .unwrap();
        let err = credential.get_token(&request(VAULT)).await.unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert_eq!(transport.requests().len(), 1);
        assert!(clock.sleeps().is_empty());
    }
    // Without probe mode the same failure is a real one.
    let transport = Arc::new(FakeTransport::failing(TransportErrorKind::Connect));
    let err = imds(&transport, &clock())
        .get_token(&request(VAULT))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }));

    // IMDS's "identity not found" while probing is unavailable too.
    let transport = Arc::new(FakeTransport::script(vec![json(
        400,
        r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
    )]));
    let credential = options(MapEnv::default(), &transport, &clock())
        .probe_mode(true)
        .build()
        .unwrap();
    assert!(
        credential
            .get_token(&request(VAULT))
            .await
            .unwrap_err()
            .is_unavailable()
    );
}

#[tokio::test]
async fn probe_mode_does_not_retry_and_ends_once_the_endpoint_answered() {
    let transport = Arc::new(FakeTransport::script(vec![
        HttpResponse::new(500, ""),
        HttpResponse::new(500, ""),
        ok_token("T", 3600),
    ]));
    let clock = clock();
    let credential = options(MapEnv::default(), &transport, &clock)
        .probe_mode(true)
        .build()
        .unwrap();
    let err = credential.get_token(&request(VAULT)).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(!err.is_unavailable());
    assert!(clock.sleeps().is_empty());
    // The endpoint exists: the next call retries normally.
    credential.get_token(&request(VAULT)).await.unwrap();
    assert_eq!(clock.sleeps(), [Duration::from_secs(1)]);
}

#[tokio::test]
async fn arc_answers_the_challenge_with_the_key_file() {
    let fs = MemoryFileSystem::new().with_file("/var/opt/azcmagent/tokens/t.key", "ARC-KEY");
    let mut challenge = HttpResponse::new(401, "");
    challenge.headers.insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=/var/opt/azcmagent/tokens/t.key"),
    );
    let transport = Arc::new(FakeTransport::script(vec![challenge, ok_token("T", 3600)]));
    let env = MapEnv::new([
        (
            "IDENTITY_ENDPOINT",
            "http://127.0.0.1:40342/metadata/identity/oauth2/token",
        ),
        ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
    ]);
    let credential = options(env, &transport, &clock())
        .file_system(Arc::new(fs))
        .build()
        .unwrap();
    assert_eq!(
        credential.source_kind(),
        ManagedIdentitySourceKind::AzureArc
    );
    assert_eq!(
        credential
            .get_token(&request(VAULT))
            .await
            .unwrap()
            .token()
            .expose(),
        "T"
    );
    let sent = transport.requests();
    assert_eq!(sent.len(), 2);
    assert!(!sent[0].headers.contains_key("authorization"));
    assert_eq!(sent[1].headers["authorization"], "Basic ARC-KEY");
    assert_eq!(sent[0].url, sent[1].url);
}

#[tokio::test]
async fn the_arc_agent_binary_selects_arc_with_the_default_endpoint() {
    let fs = MemoryFileSystem::new().with_file(crate::ARC_AGENT_BINARY, "");
    let transport = Arc::new(FakeTransport::repeat(ok_token("T", 3600)));
    let credential = options(MapEnv::default(), &transport, &clock())
        .file_system(Arc::new(fs))
        .build()
        .unwrap();
    credential.get_token(&request(VAULT)).await.unwrap();
    assert!(transport.requests()[0].url.as_str().starts_with(
        "http://127.0.0.1:40342/metadata/identity/oauth2/token?api-version=2020-06-01&resource="
    ));
}

#[tokio::test]
async fn every_source_end_to_end() {
    let thumbprint = "AB".repeat(20);
    type Case<'a> = (
        Vec<(&'a str, &'a str)>,
        ManagedIdentitySourceKind,
        Method,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            vec![
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
                ("IDENTITY_HEADER", "H"),
            ],
            ManagedIdentitySourceKind::AppService,
            Method::GET,
            "http://127.0.0.1:41741/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net",
        ),
        (
            vec![
                (
                    "IDENTITY_ENDPOINT",
                    "https://127.0.0.1:2377/metadata/identity/oauth2/token",
                ),
                ("IDENTITY_HEADER", "H"),
                ("IDENTITY_SERVER_THUMBPRINT", &thumbprint),
            ],
            ManagedIdentitySourceKind::ServiceFabric,
            Method::GET,
            "https://127.0.0.1:2377/metadata/identity/oauth2/token?api-version=2019-07-01-preview&resource=https%3A%2F%2Fvault.azure.net",
        ),
        (
            vec![
                ("MSI_ENDPOINT", "http://127.0.0.1:46808/"),
                ("MSI_SECRET", "S"),
            ],
            ManagedIdentitySourceKind::MachineLearning,
            Method::GET,
            "http://127.0.0.1:46808/?api-version=2017-09-01&resource=https%3A%2F%2Fvault.azure.net",
        ),
        (
            vec![("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")],
            ManagedIdentitySourceKind::CloudShell,
            Method::POST,
            "http://localhost:50342/oauth2/token",
        ),
    ];
    for (vars, kind, method, url) in cases {
        // App Service has sent expires_on as a date; ML as an integer.
        let transport = Arc::new(FakeTransport::script(vec![json(
            200,
            r#"{"access_token":"T","expires_on":"11/24/2026 14:05:00 +00:00","resource":"https://vault.azure.net","token_type":"Bearer"}"#,
        )]));
        let credential = options(MapEnv::new(vars), &transport, &clock())
            .build()
            .unwrap();
        assert_eq!(credential.source_kind(), kind);
        let token = credential.get_token(&request(VAULT)).await.unwrap();
        assert_eq!(token.token().expose(), "T");
        let sent = &transport.requests()[0];
        assert_eq!((&sent.method, sent.url.as_str()), (&method, url), "{kind}");
    }
}

#[test]
fn selector_errors_are_configuration_errors() {
    let transport = Arc::new(FakeTransport::repeat(ok_token("T", 3600)));
    let err = options(MapEnv::default(), &transport, &clock())
        .identity(ManagedIdentityId::ClientId("  ".into()))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Configuration(m) if m.contains("client_id is empty")));
    let env = MapEnv::new([("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]);
    let err = options(env, &transport, &clock())
        .identity(ManagedIdentityId::ResourceId("/r".into()))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Configuration(m) if m.contains("cloud shell")));
}

#[test]
fn default_transports_build_for_every_source() {
    let thumbprint = "0A".repeat(20);
    for vars in [
        vec![],
        vec![
            ("IDENTITY_ENDPOINT", "https://127.0.0.1:2377/t"),
            ("IDENTITY_HEADER", "H"),
            ("IDENTITY_SERVER_THUMBPRINT", thumbprint.as_str()),
        ],
    ] {
        for probe in [false, true] {
            let credential = ManagedIdentityCredential::builder()
                .env(Arc::new(MapEnv::new(vars.clone())))
                .file_system(Arc::new(MemoryFileSystem::new()))
                .probe_mode(probe)
                .build()
                .unwrap();
            assert!(format!("{credential:?}").contains("probing"));
        }
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_reaches_traces_errors_or_debug() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut shown = String::new();

    // App Service header secret and the token, with a retry and a failure on the way.
    let env = MapEnv::new([
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
        ("IDENTITY_HEADER", "HEADER-SECRET"),
    ]);
    let transport = Arc::new(FakeTransport::script(vec![
        HttpResponse::new(500, "BODY-SECRET"),
        json(200, r#"{"access_token":"TOKEN-SECRET","expires_in":3600}"#),
        json(
            400,
            r#"{"error":"invalid_request","error_description":"nope"}"#,
        ),
    ]));
    let credential = options(env, &transport, &clock()).build().unwrap();
    let token = credential.get_token(&request(VAULT)).await.unwrap();
    shown += &format!("{token:?} {credential:?} {:?}", transport.requests());
    let err = credential
        .get_token(&request("https://other/.default"))
        .await
        .unwrap_err();
    shown += &format!("{err} {err:?}");

    // Machine learning secret.
    let env = MapEnv::new([
        ("MSI_ENDPOINT", "http://127.0.0.1:46808/"),
        ("MSI_SECRET", "ML-SECRET"),
    ]);
    let transport = Arc::new(FakeTransport::repeat(ok_token("TOKEN-SECRET", 3600)));
    let credential = options(env, &transport, &clock()).build().unwrap();
    credential.get_token(&request(VAULT)).await.unwrap();
    shown += &format!("{credential:?} {:?}", transport.requests());

    // Arc key file, and a refused key path.
    let fs = MemoryFileSystem::new().with_file("/var/opt/azcmagent/tokens/t.key", "ARC-KEY-SECRET");
    let mut challenge = HttpResponse::new(401, "");
    challenge.headers.insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=/var/opt/azcmagent/tokens/t.key"),
    );
    let transport = Arc::new(FakeTransport::replies(vec![
        Reply::Answer(challenge),
        Reply::Answer(ok_token("TOKEN-SECRET", 3600)),
    ]));
    let env = MapEnv::new([
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:40342/t"),
        ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
    ]);
    let credential = options(env, &transport, &clock())
        .file_system(Arc::new(fs.clone()))
        .build()
        .unwrap();
    credential.get_token(&request(VAULT)).await.unwrap();
    shown += &format!("{credential:?} {:?} {fs:?}", transport.requests());

    let traces = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(traces.contains("entra.managed_identity"), "{traces}");
    assert!(
        traces.contains("app_service") && traces.contains("azure_arc"),
        "{traces}"
    );
    for secret in [
        "HEADER-SECRET",
        "TOKEN-SECRET",
        "BODY-SECRET",
        "ML-SECRET",
        "ARC-KEY-SECRET",
    ] {
        assert!(!traces.contains(secret), "{secret} in traces: {traces}");
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}
