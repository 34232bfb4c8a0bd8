//! The request log and its redaction.

use entra_emulator::testing::client_certificate;
use entra_emulator::{AppRegistration, EndpointKind, REDACTED};

use crate::common::*;

#[tokio::test]
async fn log_records_requests_and_redacts_secrets() -> TestResult {
    let (emulator, client) = setup().await?;
    let cert = client_certificate("log");
    emulator.add_application(
        TENANT,
        AppRegistration::new("cert-app").certificate_der(cert.cert_der.clone()),
    )?;
    let scope = format!("{GRAPH}/.default");
    let claims = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;
    let mut form = secret_form(CLIENT, SECRET, &scope);
    form.push(("claims", claims));
    form.push(("refresh_token", "rt-secret-value"));
    form.push(("password", "pw-secret-value"));
    form.push(("brand_new_field", "unknown-value"));
    let response = client
        .post(emulator.token_endpoint(TENANT))
        .header("client-request-id", "corr-1")
        .header("x-client-sku", "entra-rs")
        .header("x-client-ver", "0.1.0")
        .header("user-agent", "entra-test")
        .header("x-not-recorded", "nope")
        .form(&form)
        .send()
        .await?;
    assert_eq!(response.status(), 200);

    let assertion =
        cert.client_assertion("cert-app", &emulator.token_endpoint(TENANT), emulator.now())?;
    let (status, _) = post_token(
        &client,
        &emulator,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "cert-app"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("scope", &scope),
        ],
    )
    .await?;
    assert_eq!(status, 200);

    // Admin requests are not logged.
    client
        .get(format!("{}/_emulator/requests", emulator.https_url()))
        .send()
        .await?;

    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(first.endpoint, EndpointKind::Token);
    assert_eq!(first.tenant.as_deref(), Some(TENANT));
    assert_eq!(first.status, Some(200));
    assert_eq!(first.header("client-request-id"), Some("corr-1"));
    assert_eq!(first.header("X-Client-SKU"), Some("entra-rs"));
    assert_eq!(first.header("user-agent"), Some("entra-test"));
    assert!(
        first
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    );
    assert_eq!(first.header("x-not-recorded"), None);
    assert_eq!(first.grant_type(), Some("client_credentials"));
    assert_eq!(first.client_id(), Some(CLIENT));
    assert_eq!(first.form_value("scope"), Some(scope.as_str()));
    assert_eq!(first.form_value("claims"), Some(claims));
    for secret_field in [
        "client_secret",
        "refresh_token",
        "password",
        "brand_new_field",
    ] {
        assert_eq!(
            first.form_value(secret_field),
            Some(REDACTED),
            "{secret_field}"
        );
    }
    assert_eq!(
        first.form_names(),
        vec![
            "grant_type",
            "client_id",
            "client_secret",
            "scope",
            "claims",
            "refresh_token",
            "password",
            "brand_new_field"
        ]
    );
    assert_eq!(requests[1].form_value("client_assertion"), Some(REDACTED));
    assert!(
        requests[1]
            .form_value("client_assertion_type")
            .is_some_and(|t| t.ends_with("jwt-bearer"))
    );

    let debug = format!("{requests:?}");
    let json = serde_json::to_string(&requests)?;
    let over_http = client
        .get(format!("{}/_emulator/requests", emulator.https_url()))
        .send()
        .await?
        .text()
        .await?;
    for text in [&debug, &json, &over_http] {
        for secret in [
            SECRET,
            "rt-secret-value",
            "pw-secret-value",
            "unknown-value",
            assertion.as_str(),
        ] {
            assert!(!text.contains(secret), "a secret leaked into the log");
        }
    }

    assert_eq!(emulator.token_requests(TENANT).len(), 2);
    assert_eq!(emulator.token_requests("other").len(), 0);
    assert_eq!(emulator.count(|r| r.client_id() == Some("cert-app")), 1);
    emulator.clear_requests();
    assert!(emulator.requests().is_empty());
    Ok(())
}
