//! entra-core's `TokenClient` against the emulator: real HTTPS, real signed JWTs, every
//! request counted in the emulator's log.

use std::sync::Arc;
use std::time::Duration;

use entra_claims::{Claims, ClientCapabilities};
use entra_core::{
    AuthorityHost, ClientCertificate, ClientCredential, Error, ManualClock, ResponseProblem,
    Secret, TokenClient, TokenRequest, TokenSource, TransportErrorKind,
};
use entra_emulator::{AppRegistration, Emulator, Fault, FaultAction, FederatedCredential};
use entra_tests::{CapturedLogs, GRAPH, TENANT, client, clock_now, transport};
use serde_json::Value;

const APP: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const CERT_APP: &str = "aaaaaaaa-0000-0000-0000-000000000002";
const FED_APP: &str = "aaaaaaaa-0000-0000-0000-000000000003";
const SECRET: &str = "emulator-client-secret-value";

async fn emulator() -> Emulator {
    CapturedLogs::global();
    let emulator = Emulator::start().await.expect("emulator starts");
    emulator.add_tenant(TENANT).unwrap();
    emulator
        .add_application(TENANT, AppRegistration::new(APP).client_secret(SECRET))
        .unwrap();
    emulator
}

fn secret_client(emulator: &Emulator, clock: &ManualClock) -> TokenClient {
    client(
        emulator,
        APP,
        ClientCredential::Secret(Secret::new(SECRET)),
        clock,
    )
}

fn token_requests(emulator: &Emulator) -> usize {
    emulator.token_requests(TENANT).len()
}

fn verify(emulator: &Emulator, token: &str, audience: &str) -> Value {
    let validation = emulator.validation(TENANT, audience);
    jsonwebtoken::decode::<Value>(token, &emulator.decoding_key(), &validation)
        .unwrap_or_else(|e| panic!("token does not verify against the emulator's JWKS: {e}"))
        .claims
}

#[tokio::test]
async fn client_secret_token_verifies_against_the_jwks() {
    let emulator = emulator().await;
    let clock = clock_now();
    let token = secret_client(&emulator, &clock)
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap();
    let claims = verify(
        &emulator,
        token.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["iss"], emulator.issuer(TENANT));
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["azp"], APP);
    assert_eq!(claims["appid"], APP);
    assert!(claims["uti"].as_str().is_some_and(|u| !u.is_empty()));
    let exp = claims["exp"].as_u64().unwrap();
    let expires_on = token
        .expires_on()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        exp.abs_diff(expires_on) <= 5,
        "exp {exp} vs expires_on {expires_on}"
    );
    assert_eq!(token.scheme(), "Bearer");
}

#[tokio::test]
async fn certificate_token_from_pem_and_the_request_it_sent() {
    let emulator = emulator().await;
    let cert = entra_emulator::testing::client_certificate("entra-rs test client");
    emulator
        .add_application(
            TENANT,
            AppRegistration::new(CERT_APP).certificate_der(cert.cert_der.clone()),
        )
        .unwrap();
    let certificate =
        ClientCertificate::from_pem_parts(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
            .unwrap();
    assert_eq!(
        certificate.thumbprint_sha256(),
        cert.sha256_thumbprint_b64url
    );
    let clock = clock_now();
    let client = client(
        &emulator,
        CERT_APP,
        ClientCredential::certificate(certificate),
        &clock,
    );
    let token = client.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    let claims = verify(
        &emulator,
        token.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(claims["azp"], CERT_APP);
    let sent = &emulator.token_requests(TENANT)[0];
    assert_eq!(
        sent.form_value("client_assertion_type"),
        Some(entra_core::JWT_BEARER_ASSERTION_TYPE)
    );
    assert!(sent.has_form_field("client_assertion"));
    assert!(!sent.has_form_field("client_secret"));
    // A second request needs a new assertion (the emulator refuses a replayed jti): bypass
    // the cache with a claims challenge to force one.
    let challenge =
        Claims::parse(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#).unwrap();
    client
        .get_token(&TokenRequest::new([GRAPH]).with_claims_challenge(challenge))
        .await
        .unwrap();
    assert_eq!(token_requests(&emulator), 2);
}

#[tokio::test]
async fn federated_assertion_from_a_callback() {
    let emulator = emulator().await;
    let issuer = emulator.add_external_issuer("github").unwrap();
    emulator
        .add_application(
            TENANT,
            AppRegistration::new(FED_APP).federated_credential(FederatedCredential::new(
                issuer.clone(),
                "repo:contoso/app:ref:refs/heads/main",
            )),
        )
        .unwrap();
    let clock = clock_now();
    let minted = emulator
        .mint_external_token(
            "github",
            "repo:contoso/app:ref:refs/heads/main",
            "api://AzureADTokenExchange",
            Duration::from_secs(600),
        )
        .unwrap();
    let credential = ClientCredential::assertion_fn(move |_ctx| {
        let minted = minted.clone();
        async move { Ok(Secret::new(minted)) }
    });
    let token = client(&emulator, FED_APP, credential, &clock)
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap();
    assert_eq!(
        verify(
            &emulator,
            token.token().expose(),
            "https://graph.microsoft.com"
        )["azp"],
        FED_APP
    );

    // A token for another subject is refused with the federated-credential AADSTS code.
    let wrong = emulator
        .mint_external_token(
            "github",
            "repo:contoso/other:ref:refs/heads/main",
            "api://AzureADTokenExchange",
            Duration::from_secs(600),
        )
        .unwrap();
    let credential = ClientCredential::assertion_fn(move |_ctx| {
        let wrong = wrong.clone();
        async move { Ok(Secret::new(wrong)) }
    });
    let err = client(&emulator, FED_APP, credential, &clock)
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap_err();
    assert!(err.service_error().unwrap().has_code(70021), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hit_and_single_flight_counted_in_the_log() {
    let emulator = emulator().await;
    let clock = clock_now();
    let client = secret_client(&emulator, &clock);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .exchange(
                    &TokenRequest::new([GRAPH]),
                    &entra_core::Grant::client_credentials(),
                )
                .await
        }));
    }
    let mut fetched = 0;
    let mut token = None;
    for task in tasks {
        let got = task.await.unwrap().unwrap();
        fetched += usize::from(got.source == TokenSource::Fetched);
        let value = got.value.token().expose().to_owned();
        assert!(
            token.get_or_insert(value.clone()) == &value,
            "callers got different tokens"
        );
    }
    assert_eq!(fetched, 1);
    assert_eq!(
        token_requests(&emulator),
        1,
        "100 concurrent callers made one request"
    );
    let hit = client
        .exchange(
            &TokenRequest::new([GRAPH]),
            &entra_core::Grant::client_credentials(),
        )
        .await
        .unwrap();
    assert_eq!(hit.source, TokenSource::Cache);
    assert_eq!(token_requests(&emulator), 1);
}

#[tokio::test]
async fn proactive_refresh_in_virtual_time() {
    let emulator = emulator().await;
    emulator.set_refresh_in(Some(Duration::from_secs(600)));
    emulator.set_expires_in_as_string(true);
    let clock = clock_now();
    let client = secret_client(&emulator, &clock);
    let request = TokenRequest::new([GRAPH]);
    let first = client.get_token(&request).await.unwrap();
    assert_eq!(
        first.refresh_on(),
        first.expires_on() - Duration::from_secs(3600 - 600)
    );
    clock.advance(Duration::from_secs(500));
    assert_eq!(
        client.get_token(&request).await.unwrap().token().expose(),
        first.token().expose()
    );
    assert_eq!(token_requests(&emulator), 1);
    clock.advance(Duration::from_secs(101));
    let refreshed = client.get_token(&request).await.unwrap();
    assert_ne!(refreshed.token().expose(), first.token().expose());
    assert_eq!(token_requests(&emulator), 2);
    // While a refresh fails, the still-valid token is served.
    clock.advance(Duration::from_secs(700));
    emulator
        .add_fault(Fault::on_token_endpoint(FaultAction::status(500)).times(2))
        .unwrap();
    let served = client.get_token(&request).await.unwrap();
    assert_eq!(served.token().expose(), refreshed.token().expose());
    assert_eq!(token_requests(&emulator), 4, "one refresh, retried once");
}

#[tokio::test]
async fn claims_challenge_bypasses_the_cache_and_capabilities_reach_the_token() {
    let emulator = emulator().await;
    let clock = clock_now();
    let client = TokenClient::builder(APP)
        .authority(AuthorityHost::parse(&emulator.https_url()).unwrap())
        .tenant(TENANT)
        .unwrap()
        .credential(ClientCredential::Secret(Secret::new(SECRET)))
        .client_capabilities(ClientCapabilities::new(["cp1"]).unwrap())
        .transport(transport(&emulator))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let token = client.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    let claims = verify(
        &emulator,
        token.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(claims["xms_cc"], serde_json::json!(["cp1"]));
    client.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    assert_eq!(
        token_requests(&emulator),
        1,
        "capabilities alone do not bypass the cache"
    );

    let header = r#"Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNjA0MTA2NjUxIn19fQ==""#;
    let challenge = entra_claims::claims_challenge_from_header(header)
        .unwrap()
        .unwrap();
    let fresh = client
        .get_token(&TokenRequest::new([GRAPH]).with_claims_challenge(challenge))
        .await
        .unwrap();
    assert_ne!(fresh.token().expose(), token.token().expose());
    assert_eq!(token_requests(&emulator), 2);
    let sent = emulator.token_requests(TENANT)[1]
        .form_value("claims")
        .unwrap()
        .to_owned();
    assert_eq!(
        sent,
        r#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"},"xms_cc":{"values":["cp1"]}}}"#
    );
    // The challenge's token replaced the cached one.
    let after = client.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    assert_eq!(after.token().expose(), fresh.token().expose());
    assert_eq!(token_requests(&emulator), 2);
}

fn problem(err: &Error) -> Option<&ResponseProblem> {
    match err {
        Error::UnexpectedResponse { problem, .. } => Some(problem),
        _ => None,
    }
}

#[tokio::test]
async fn each_failure_is_the_right_typed_error() {
    let emulator = emulator().await;
    let clock = clock_now();
    let request = TokenRequest::new([GRAPH]);

    // Bad secret.
    let bad = client(
        &emulator,
        APP,
        ClientCredential::Secret(Secret::new("wrong")),
        &clock,
    );
    let err = bad.get_token(&request).await.unwrap_err();
    let service = err.service_error().expect("an AADSTS error");
    assert_eq!(
        (service.status, service.error.as_str()),
        (401, "invalid_client")
    );
    assert!(service.has_code(7000215));
    assert!(service.correlation_id.is_some() && service.trace_id.is_some());

    // Unknown tenant.
    let err = secret_client(&emulator, &clock)
        .get_token(
            &request
                .clone()
                .with_tenant("99999999-9999-9999-9999-999999999999"),
        )
        .await
        .unwrap_err();
    assert!(err.service_error().unwrap().has_code(90002), "{err}");

    // Unknown client.
    let err = client(
        &emulator,
        "nobody",
        ClientCredential::Secret(Secret::new("x")),
        &clock,
    )
    .get_token(&request)
    .await
    .unwrap_err();
    assert!(err.service_error().unwrap().has_code(700016), "{err}");

    // Scope without /.default in client credentials.
    let err = secret_client(&emulator, &clock)
        .get_token(&TokenRequest::new([
            "https://graph.microsoft.com/User.Read",
        ]))
        .await
        .unwrap_err();
    assert!(err.service_error().unwrap().has_code(1002012), "{err}");

    // 500 then success: one retry, after the default delay, in virtual time.
    let before = token_requests(&emulator);
    emulator
        .add_fault(Fault::on_token_endpoint(FaultAction::status(500)))
        .unwrap();
    let c = secret_client(&emulator, &clock);
    assert!(c.get_token(&request).await.is_ok());
    assert_eq!(token_requests(&emulator) - before, 2);
    assert_eq!(clock.sleeps().last(), Some(&Duration::from_secs(1)));

    // 429 with Retry-After then success.
    emulator
        .add_fault(Fault::on_token_endpoint(
            FaultAction::status_with_retry_after(429, 3),
        ))
        .unwrap();
    let c = secret_client(&emulator, &clock);
    assert!(
        c.get_token(&TokenRequest::new(["https://vault.azure.net/.default"]))
            .await
            .is_ok()
    );
    assert_eq!(clock.sleeps().last(), Some(&Duration::from_secs(3)));

    // 503 twice: the error after one retry.
    emulator
        .add_fault(Fault::on_token_endpoint(FaultAction::status(503)).times(2))
        .unwrap();
    let err = secret_client(&emulator, &clock)
        .get_token(&request)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));

    let faulted = |action: FaultAction| {
        emulator
            .add_fault(Fault::on_token_endpoint(action).times(2))
            .unwrap();
        secret_client(&emulator, &clock)
    };
    let err = faulted(FaultAction::MalformedJson)
        .get_token(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(
            problem(&err),
            Some(ResponseProblem::MalformedJson { .. } | ResponseProblem::Truncated)
        ),
        "{err}"
    );
    emulator.clear_faults();
    let err = faulted(FaultAction::oversized_body())
        .get_token(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(problem(&err), Some(ResponseProblem::TooLarge { .. })),
        "{err}"
    );
    emulator.clear_faults();
    let err = faulted(FaultAction::redirect("https://example.com/steal"))
        .get_token(&request)
        .await
        .unwrap_err();
    assert_eq!(problem(&err), Some(&ResponseProblem::Redirect), "{err}");
    emulator.clear_faults();
    let err = faulted(FaultAction::WrongContentType)
        .get_token(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(problem(&err), Some(ResponseProblem::NotJson { .. })),
        "{err}"
    );
    emulator.clear_faults();
    let err = faulted(FaultAction::TruncatedBody)
        .get_token(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(problem(&err), Some(ResponseProblem::Truncated))
            || matches!(
                err,
                Error::Transport {
                    kind: TransportErrorKind::Io,
                    ..
                }
            ),
        "{err:?}"
    );
    emulator.clear_faults();
    let before = token_requests(&emulator);
    let err = faulted(FaultAction::ConnectionReset)
        .get_token(&request)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(
        token_requests(&emulator) - before,
        2,
        "a dropped connection is retried once"
    );
}

#[tokio::test]
async fn no_secret_reaches_logs_or_errors_in_any_flow() {
    let emulator = emulator().await;
    let cert = entra_emulator::testing::client_certificate("leak test");
    emulator
        .add_application(
            TENANT,
            AppRegistration::new(CERT_APP).certificate_der(cert.cert_der.clone()),
        )
        .unwrap();
    let clock = clock_now();
    let mut seen = Vec::new();
    let mut shown = String::new();
    let secret_client = secret_client(&emulator, &clock);
    let certificate =
        ClientCertificate::from_pem_parts(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
            .unwrap();
    let cert_client = client(
        &emulator,
        CERT_APP,
        ClientCredential::certificate(certificate.clone()),
        &clock,
    );
    let claims =
        Claims::parse(r#"{"access_token":{"leaky-claim-name":{"essential":true}}}"#).unwrap();
    for c in [&secret_client, &cert_client] {
        let t = c.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
        seen.push(t.token().expose().to_owned());
        let t = c
            .get_token(&TokenRequest::new([GRAPH]).with_claims_challenge(claims.clone()))
            .await
            .unwrap();
        seen.push(t.token().expose().to_owned());
        shown.push_str(&format!("{t:?} {c:?}"));
        emulator
            .add_fault(Fault::on_token_endpoint(FaultAction::status(500)).times(2))
            .unwrap();
        let err = c
            .get_token(&TokenRequest::new(["https://vault.azure.net/.default"]))
            .await
            .unwrap_err();
        shown.push_str(&format!("{err} {err:?}"));
    }
    let err = client(
        &emulator,
        APP,
        ClientCredential::Secret(Secret::new("wrong-secret-value")),
        &clock,
    )
    .get_token(&TokenRequest::new([GRAPH]))
    .await
    .unwrap_err();
    shown.push_str(&format!("{err} {err:?} {certificate:?}"));
    // The emulator's request log keeps `claims` on purpose (tests assert on it), but never a
    // credential or token.
    let request_log = format!("{:?}", emulator.requests());

    let log = CapturedLogs::global().text();
    assert!(log.contains("entra.token"), "spans are logged:\n{log}");
    let mut secrets = vec![
        SECRET.to_owned(),
        "wrong-secret-value".to_owned(),
        "leaky-claim-name".to_owned(),
    ];
    secrets.push(cert.key_pem.lines().nth(1).unwrap().to_owned());
    secrets.extend(seen);
    for (i, secret) in secrets.iter().enumerate().filter(|(i, _)| *i != 2) {
        assert!(
            !request_log.contains(secret.as_str()),
            "secret #{i} reached the emulator's request log"
        );
    }
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !log.contains(secret.as_str()),
            "secret #{i} reached the log"
        );
        assert!(
            !shown.contains(secret.as_str()),
            "secret #{i} reached Debug/Display/the request log"
        );
    }
    assert!(
        !log.contains("eyJ"),
        "something JWT-shaped reached the log:\n{log}"
    );
}
