//! Each fault kind, as a client sees it.

use std::time::Duration;

use entra_emulator::{EndpointKind, Fault, FaultAction, FaultBody, FaultMatcher};
use serde_json::{Value, json};

use crate::common::*;

fn scope() -> String {
    format!("{GRAPH}/.default")
}

async fn send(
    client: &reqwest::Client,
    emulator: &entra_emulator::Emulator,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(emulator.token_endpoint(TENANT))
        .form(&secret_form(CLIENT, SECRET, &scope()))
        .send()
        .await
}

#[tokio::test]
async fn status_fault_with_retry_after_applies_n_times() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(
        Fault::on_token_endpoint(FaultAction::status_with_retry_after(503, 7)).times(2),
    )?;
    for _ in 0..2 {
        let response = send(&client, &emulator).await?;
        assert_eq!(response.status(), 503);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("7")
        );
        let body: Value = response.json().await?;
        assert_eq!(body["error"], "temporarily_unavailable");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.starts_with("AADSTS"))
        );
    }
    assert_eq!(send(&client, &emulator).await?.status(), 200);
    assert!(emulator.faults().is_empty());
    let faults: Vec<Option<String>> = emulator
        .requests()
        .iter()
        .map(|r| r.fault.clone())
        .collect();
    assert_eq!(
        faults,
        vec![Some("status".into()), Some("status".into()), None]
    );
    let statuses: Vec<Option<u16>> = emulator.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(503), Some(503), Some(200)]);
    Ok(())
}

#[tokio::test]
async fn status_fault_with_custom_bodies() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::Status {
        status: 400,
        body: FaultBody::Aadsts {
            error: "invalid_grant".into(),
            code: 50173,
            description: "The provided grant has expired.".into(),
        },
        retry_after: None,
    }))?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::Status {
        status: 429,
        body: FaultBody::Json {
            value: json!({"custom": true}),
        },
        retry_after: Some(1),
    }))?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::status(500)))?;

    let response = send(&client, &emulator).await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_eq!(
        (body["error"].as_str(), code(&body)),
        (Some("invalid_grant"), Some(50173))
    );

    let response = send(&client, &emulator).await?;
    assert_eq!(response.status(), 429);
    assert_eq!(response.json::<Value>().await?, json!({"custom": true}));

    let response = send(&client, &emulator).await?;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "server_error");
    Ok(())
}

#[tokio::test]
async fn delay_fault_holds_the_answer() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::delay(
        Duration::from_secs(3),
    )))?;
    let result = client
        .post(emulator.token_endpoint(TENANT))
        .form(&secret_form(CLIENT, SECRET, &scope()))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(
        result.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{result:?}"
    );
    assert_eq!(send(&client, &emulator).await?.status(), 200);
    assert_eq!(emulator.count(|r| r.fault.as_deref() == Some("delay")), 1);
    Ok(())
}

#[tokio::test]
async fn malformed_json_fault() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::MalformedJson))?;
    let response = send(&client, &emulator).await?;
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.is_err());
    Ok(())
}

#[tokio::test]
async fn truncated_body_fault() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::TruncatedBody))?;
    let response = send(&client, &emulator).await?;
    assert_eq!(response.status(), 200);
    let declared = response.content_length().ok_or("no content-length")?;
    match response.bytes().await {
        Ok(bytes) => panic!("read {} of {declared} bytes without an error", bytes.len()),
        Err(e) => assert!(e.is_body() || e.is_decode() || e.is_request(), "{e:?}"),
    }
    // The next connection works.
    assert_eq!(send(&client, &emulator).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn oversized_body_fault() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::oversized_body()))?;
    let response = send(&client, &emulator).await?;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await?;
    assert!(body.len() >= 5 * 1024 * 1024);
    assert!(serde_json::from_slice::<Value>(&body).is_ok());
    Ok(())
}

#[tokio::test]
async fn redirect_fault() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::redirect(
        "https://evil.example/token",
    )))?;
    let response = send(&client, &emulator).await?;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("https://evil.example/token")
    );
    Ok(())
}

#[tokio::test]
async fn wrong_content_type_fault() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::WrongContentType))?;
    let response = send(&client, &emulator).await?;
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(response.text().await?.contains("<html>"));
    Ok(())
}

#[tokio::test]
async fn connection_reset_fault() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::on_token_endpoint(FaultAction::ConnectionReset))?;
    let result = send(&client, &emulator).await;
    assert!(result.is_err(), "{result:?}");
    let recorded = emulator.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].fault.as_deref(), Some("connection_reset"));
    assert_eq!(recorded[0].status, None);
    assert_eq!(send(&client, &emulator).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn matchers_select_requests() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_fault(Fault::new(
        FaultMatcher::endpoint(EndpointKind::Token).with_client_id("another-client"),
        FaultAction::status(500),
    ))?;
    emulator.add_fault(Fault::new(
        FaultMatcher::endpoint(EndpointKind::Jwks),
        FaultAction::status(503),
    ))?;
    // Not this client: no fault.
    assert_eq!(send(&client, &emulator).await?.status(), 200);
    // The JWKS fault fires on the keys endpoint only.
    let keys = client.get(emulator.jwks_url()).send().await?;
    assert_eq!(keys.status(), 503);
    assert_eq!(emulator.faults().len(), 1);
    // Invalid faults are refused.
    assert!(
        emulator
            .add_fault(Fault::on_token_endpoint(FaultAction::status(200)).times(0))
            .is_err()
    );
    assert!(
        emulator
            .add_fault(Fault::on_token_endpoint(FaultAction::Redirect {
                location: "x".into(),
                status: 200
            }))
            .is_err()
    );
    emulator.clear_faults();
    assert!(emulator.faults().is_empty());
    Ok(())
}
