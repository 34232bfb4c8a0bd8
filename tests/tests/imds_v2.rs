//! IMDSv2 end to end over real mutual TLS: entra-mi's mTLS proof-of-possession flow against
//! the emulator's platform metadata, issuecredential and mTLS token endpoint.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_claims::{Claims, ClientCapabilities};
use entra_core::{Error, ManualClock, MapEnv, TokenCredential, TokenRequest, TokenType};
use entra_emulator::{Emulator, EndpointKind, Fault, FaultAction, FaultMatcher, ManagedIdentity};
use entra_mi::{
    ManagedIdentityCredential, ManagedIdentityId, NOT_SUPPORTED_FOR_ENVIRONMENT,
    NOT_SUPPORTED_IN_IMDS_V1,
};
use entra_tests::{CapturedLogs, TENANT, clock_now};
use serde_json::Value;
use sha2::{Digest, Sha256};

const ARM: &str = "https://management.azure.com/.default";
const VAULT: &str = "https://vault.azure.net/.default";

async fn emulator() -> (Emulator, ManagedIdentity) {
    CapturedLogs::global();
    let emulator = Emulator::start().await.expect("emulator starts");
    emulator.add_tenant(TENANT).unwrap();
    let system = ManagedIdentity::new(
        TENANT,
        "5a000000-0000-0000-0000-000000000001",
        "5b000000-0000-0000-0000-000000000001",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
    );
    emulator
        .set_system_assigned_identity(system.clone())
        .unwrap();
    (emulator, system)
}

fn pop_credential(emulator: &Emulator, clock: &ManualClock) -> ManagedIdentityCredential {
    pop_builder(emulator, clock).build().unwrap()
}

fn pop_builder(emulator: &Emulator, clock: &ManualClock) -> entra_mi::ManagedIdentityOptions {
    ManagedIdentityCredential::builder()
        .identity(ManagedIdentityId::SystemAssigned)
        .env(Arc::new(MapEnv::new([(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            emulator.http_url(),
        )])))
        .clock(Arc::new(clock.clone()))
        .mtls_proof_of_possession(true)
        .mtls_extra_root_certificates_pem(emulator.ca_pem().as_bytes().to_vec())
}

fn count(emulator: &Emulator, kind: EndpointKind) -> usize {
    emulator.count(|r| r.endpoint == kind)
}

fn claims_of(emulator: &Emulator, token: &str, audience: &str) -> Value {
    let validation = emulator.validation(TENANT, audience);
    jsonwebtoken::decode::<Value>(token, &emulator.decoding_key(), &validation)
        .unwrap_or_else(|e| panic!("bound token does not verify: {e}"))
        .claims
}

#[tokio::test]
async fn a_bound_token_whose_cnf_matches_the_certificate() {
    let (emulator, system) = emulator().await;
    let clock = clock_now();
    let credential = pop_credential(&emulator, &clock);
    let (token, binding) = credential
        .get_bound_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    assert_eq!(token.scheme(), "mtls_pop");
    assert_eq!(
        token.token_type(),
        &TokenType::bound("mtls_pop", binding.thumbprint()),
        "the token says it is bound, and to which certificate"
    );
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(binding.certificate_der()));
    assert_eq!(binding.thumbprint(), thumbprint);
    let claims = claims_of(
        &emulator,
        token.token().expose(),
        "https://management.azure.com",
    );
    assert_eq!(claims["cnf"]["x5t#S256"], thumbprint.as_str());
    assert_eq!(claims["appid"], system.client_id.as_str());
    assert_eq!(binding.client_id(), system.client_id);
    // The caller can make the mTLS call with the binding.
    assert!(
        binding
            .transport(Some(emulator.ca_pem().as_bytes()))
            .is_ok()
    );
    assert_eq!(count(&emulator, EndpointKind::ImdsPlatformMetadata), 1);
    assert_eq!(count(&emulator, EndpointKind::ImdsIssueCredential), 1);
    assert_eq!(count(&emulator, EndpointKind::MtlsToken), 1);
    assert_eq!(
        count(&emulator, EndpointKind::Imds),
        0,
        "no IMDS v1 request"
    );
    let sent = emulator
        .requests()
        .into_iter()
        .find(|r| r.endpoint == EndpointKind::MtlsToken)
        .unwrap();
    assert_eq!(sent.form_value("token_type"), Some("mtls_pop"));
    assert_eq!(
        sent.form_value("client_id"),
        Some(system.client_id.as_str())
    );
}

#[tokio::test]
async fn a_second_scope_reuses_the_binding_and_hits_are_cached() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    let credential = pop_credential(&emulator, &clock);
    let (_, first) = credential
        .get_bound_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    let (_, second) = credential
        .get_bound_token(&TokenRequest::new([VAULT]))
        .await
        .unwrap();
    assert_eq!(first.thumbprint(), second.thumbprint());
    credential
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    assert_eq!(
        count(&emulator, EndpointKind::ImdsIssueCredential),
        1,
        "one certificate for both scopes"
    );
    assert_eq!(
        count(&emulator, EndpointKind::MtlsToken),
        2,
        "the repeated scope came from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_mint_once() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    let credential = Arc::new(pop_credential(&emulator, &clock));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let c = credential.clone();
            let scope = if i % 2 == 0 { ARM } else { VAULT };
            tokio::spawn(async move { c.get_token(&TokenRequest::new([scope])).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count(&emulator, EndpointKind::ImdsIssueCredential), 1);
    assert_eq!(count(&emulator, EndpointKind::ImdsPlatformMetadata), 1);
    assert_eq!(
        count(&emulator, EndpointKind::MtlsToken),
        2,
        "one per scope"
    );
}

#[tokio::test]
async fn invalid_client_re_mints_once_and_a_second_failure_is_an_error() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    let credential = pop_credential(&emulator, &clock);
    let mtls = || {
        Fault::new(
            FaultMatcher::endpoint(EndpointKind::MtlsToken),
            FaultAction::invalid_client(),
        )
    };
    emulator.add_fault(mtls()).unwrap();
    let (_, binding) = credential
        .get_bound_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    assert_eq!(
        count(&emulator, EndpointKind::ImdsIssueCredential),
        2,
        "re-minted once"
    );
    assert_eq!(count(&emulator, EndpointKind::MtlsToken), 2);

    // Twice: one re-mint, then the error (no loop).
    emulator.add_fault(mtls().times(2)).unwrap();
    let err = credential
        .get_bound_token(&TokenRequest::new([VAULT]))
        .await
        .unwrap_err();
    assert_eq!(
        err.service_error().map(|e| e.error.as_str()),
        Some("invalid_client"),
        "{err:?}"
    );
    assert_eq!(count(&emulator, EndpointKind::ImdsIssueCredential), 3);
    assert_eq!(count(&emulator, EndpointKind::MtlsToken), 4);
    assert_ne!(
        credential
            .current_binding()
            .map(|b| b.thumbprint().to_owned()),
        Some(binding.thumbprint().to_owned())
    );
}

#[tokio::test]
async fn a_tls_handshake_failure_re_mints_once() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    let credential = pop_credential(&emulator, &clock);
    emulator.reject_mtls_handshakes(1);
    credential
        .get_bound_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    assert_eq!(count(&emulator, EndpointKind::ImdsIssueCredential), 2);
    // Twice, on a new credential (an open connection would be reused without a handshake):
    // one re-mint, then the typed TLS error.
    emulator.reject_mtls_handshakes(2);
    let err = pop_credential(&emulator, &clock)
        .get_bound_token(&TokenRequest::new([VAULT]))
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
        "{err:?}"
    );
    assert_eq!(count(&emulator, EndpointKind::ImdsIssueCredential), 4);
}

#[tokio::test]
async fn a_revoked_certificate_is_replaced() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    let credential = pop_credential(&emulator, &clock);
    let (first, b1) = credential
        .get_bound_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    emulator.revoke_bound_certificates();
    // A cached token is still served (it is valid); a new scope needs the token leg.
    let (_, b2) = credential
        .get_bound_token(&TokenRequest::new([VAULT]))
        .await
        .unwrap();
    assert_ne!(b1.thumbprint(), b2.thumbprint());
    // Tokens bound to the discarded certificate are gone from the cache.
    let (again, _) = credential
        .get_bound_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    assert_ne!(again.token().expose(), first.token().expose());
}

#[tokio::test]
async fn not_supported_errors() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    emulator.set_imds_v2_enabled(false);
    let err = pop_credential(&emulator, &clock)
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap_err();
    assert_eq!(
        err.not_supported_code(),
        Some(NOT_SUPPORTED_IN_IMDS_V1),
        "{err:?}"
    );
    // Without PoP, the same machine gives IMDS v1 bearer tokens.
    let plain = ManagedIdentityCredential::builder()
        .env(Arc::new(MapEnv::new([(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            emulator.http_url(),
        )])))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let token = plain.get_token(&TokenRequest::new([ARM])).await.unwrap();
    assert_eq!(token.scheme(), "Bearer");
    assert_eq!(count(&emulator, EndpointKind::Imds), 1);
    emulator.set_imds_v2_enabled(true);
    let plain_again = plain.get_token(&TokenRequest::new([VAULT])).await.unwrap();
    assert_eq!(
        plain_again.scheme(),
        "Bearer",
        "IMDS v1 even on an IMDSv2 machine"
    );

    let app_service = ManagedIdentityCredential::builder()
        .env(Arc::new(MapEnv::new([
            (
                "IDENTITY_ENDPOINT",
                format!("{}/msi/token", emulator.http_url()),
            ),
            ("IDENTITY_HEADER", emulator.app_service_secret().to_owned()),
        ])))
        .clock(Arc::new(clock.clone()))
        .mtls_proof_of_possession(true)
        .build()
        .unwrap();
    let err = app_service
        .get_token(&TokenRequest::new([ARM]))
        .await
        .unwrap_err();
    assert_eq!(
        err.not_supported_code(),
        Some(NOT_SUPPORTED_FOR_ENVIRONMENT),
        "{err:?}"
    );
    assert_eq!(count(&emulator, EndpointKind::AppService), 0);
}

#[tokio::test]
async fn client_claims_are_forwarded_and_key_the_cache() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    let credential = pop_builder(&emulator, &clock)
        .client_capabilities(ClientCapabilities::new(["cp1"]).unwrap())
        .build()
        .unwrap();
    let cc = |v: &str| {
        Claims::parse(&format!(
            r#"{{"access_token":{{"acrs":{{"value":"{v}"}}}}}}"#
        ))
        .unwrap()
    };
    let request = |v: &str| TokenRequest::new([ARM]).with_client_claims(cc(v));
    let (token, _) = credential.get_bound_token(&request("c1")).await.unwrap();
    credential.get_bound_token(&request("c1")).await.unwrap();
    assert_eq!(
        count(&emulator, EndpointKind::MtlsToken),
        1,
        "same claims hit"
    );
    credential.get_bound_token(&request("c2")).await.unwrap();
    assert_eq!(
        count(&emulator, EndpointKind::MtlsToken),
        2,
        "different claims miss"
    );
    let sent: Vec<String> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == EndpointKind::MtlsToken)
        .filter_map(|r| r.form_value("claims").map(str::to_owned))
        .collect();
    assert_eq!(
        sent[0],
        r#"{"access_token":{"acrs":{"value":"c1"},"xms_cc":{"values":["cp1"]}}}"#
    );
    assert_eq!(
        sent[1],
        r#"{"access_token":{"acrs":{"value":"c2"},"xms_cc":{"values":["cp1"]}}}"#
    );
    let claims = claims_of(
        &emulator,
        token.token().expose(),
        "https://management.azure.com",
    );
    assert_eq!(claims["xms_cc"], serde_json::json!(["cp1"]));
}

#[tokio::test]
async fn token_type_mismatch_and_missing_are_typed_errors() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    for (answer, expected) in [
        (Some("Bearer"), "token_type_mismatch"),
        (Some(""), "token_type_missing"),
    ] {
        emulator.set_mtls_token_type_override(answer.map(str::to_owned));
        let err = pop_credential(&emulator, &clock)
            .get_token(&TokenRequest::new([ARM]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[tokio::test]
async fn no_key_certificate_or_token_reaches_the_logs() {
    let (emulator, _) = emulator().await;
    let clock = clock_now();
    let credential = pop_credential(&emulator, &clock);
    let (token, binding) = credential
        .get_bound_token(&TokenRequest::new([ARM]))
        .await
        .unwrap();
    let shown = format!("{credential:?} {token:?} {binding:?}");
    let log = CapturedLogs::global().text();
    let key = binding.key().private_key_pkcs8_der().unwrap();
    for secret in [token.token().expose(), &key.expose()[..40]] {
        assert!(!log.contains(secret), "a secret reached the log");
        assert!(!shown.contains(secret), "a secret reached Debug");
    }
}
