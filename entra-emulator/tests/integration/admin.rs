//! The admin HTTP API, round trip.

use entra_emulator::Emulator;
use entra_emulator::testing::client_certificate;
use serde_json::{Value, json};

use crate::common::*;

async fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    };
    Ok((status, value))
}

#[tokio::test]
async fn admin_api_round_trip() -> TestResult {
    let emulator = Emulator::start().await?;
    let client = client(&emulator)?;
    let base = format!("{}/_emulator", emulator.https_url());
    let cert = client_certificate("admin");
    use reqwest::Method;

    let (status, body) = admin(
        &client,
        Method::POST,
        format!("{base}/tenants"),
        Some(json!({
            "tenant_id": TENANT,
            "domains": ["fabrikam.example"],
            "applications": [{"client_id": "app-1", "client_secrets": ["sec-1"]}],
        })),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["issuer"], emulator.issuer(TENANT));
    assert_eq!(body["token_endpoint"], emulator.token_endpoint(TENANT));

    let (status, body) = admin(
        &client,
        Method::POST,
        format!("{base}/tenants/fabrikam.example/applications"),
        Some(json!({
            "client_id": "app-2",
            "display_name": "App Two",
            "certificates": [cert.cert_pem],
        })),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["object_id"].as_str(),
        emulator.service_principal_id(TENANT, "app-2").as_deref()
    );

    let (status, _) = admin(
        &client,
        Method::POST,
        format!("{base}/resources"),
        Some(json!({"uri": "api://orders"})),
    )
    .await?;
    assert_eq!(status, 201);

    // The registrations work at the token endpoint.
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form("app-1", "sec-1", "api://orders/.default"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let assertion =
        cert.client_assertion("app-2", &emulator.token_endpoint(TENANT), emulator.now())?;
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app-2"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("scope", "api://orders/.default"),
        ],
    )
    .await?;
    assert_eq!(status, 200, "{body}");

    // External issuers and federated credentials over HTTP.
    let (status, body) = admin(
        &client,
        Method::POST,
        format!("{base}/issuers"),
        Some(json!({"name": "gha"})),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let issuer = body["issuer"].as_str().ok_or("issuer")?.to_owned();
    let (status, _) = admin(
        &client,
        Method::POST,
        format!("{base}/tenants/{TENANT}/applications"),
        Some(json!({
            "client_id": "app-3",
            "federated_credentials": [{"issuer": issuer, "subject": "repo:o/r:environment:prod"}],
        })),
    )
    .await?;
    assert_eq!(status, 201);
    let (status, body) = admin(
        &client,
        Method::POST,
        format!("{base}/issuers/gha/tokens"),
        Some(json!({"subject": "repo:o/r:environment:prod"})),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let federated = body["token"].as_str().ok_or("token")?.to_owned();
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app-3"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &federated),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await?;
    assert_eq!(status, 200, "{body}");

    // Request log over HTTP.
    let (status, log) = admin(&client, Method::GET, format!("{base}/requests"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(log.as_array().map(Vec::len), Some(3));
    assert_eq!(log[0]["form"][2]["name"], "client_secret");
    assert_eq!(log[0]["form"][2]["value"], "<redacted>");
    assert_eq!(log[0]["endpoint"], "token");
    let (status, _) = admin(&client, Method::DELETE, format!("{base}/requests"), None).await?;
    assert_eq!(status, 204);
    assert!(emulator.requests().is_empty());

    // Faults over HTTP.
    let (status, body) = admin(&client, Method::POST, format!("{base}/faults"), Some(json!([
        {"match": {"endpoint": "token"}, "action": {"kind": "status", "status": 503, "retry_after": 2}, "times": 1},
        {"action": {"kind": "wrong_content_type"}}
    ]))).await?;
    assert_eq!(status, 201, "{body}");
    let (_, faults) = admin(&client, Method::GET, format!("{base}/faults"), None).await?;
    assert_eq!(faults.as_array().map(Vec::len), Some(2));
    let (status, _) = post_token_status(&client, &emulator).await?;
    assert_eq!(status, 503);
    let (status, _) = admin(&client, Method::DELETE, format!("{base}/faults"), None).await?;
    assert_eq!(status, 204);
    assert!(emulator.faults().is_empty());

    // Settings.
    let (status, body) = admin(
        &client,
        Method::POST,
        format!("{base}/settings"),
        Some(json!({"token_lifetime_secs": 600, "expires_in_as_string": true})),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (_, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form("app-1", "sec-1", "api://orders/.default"),
    )
    .await?;
    assert_eq!(body["expires_in"], "600");

    // CA and info.
    let ca = client
        .get(format!("{base}/ca.pem"))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(ca, emulator.ca_pem());
    let (_, info) = admin(&client, Method::GET, format!("{base}/info"), None).await?;
    assert_eq!(info["https"], emulator.https_url());

    // Errors.
    let (status, body) = admin(
        &client,
        Method::POST,
        format!("{base}/tenants/nope/applications"),
        Some(json!({"client_id": "x"})),
    )
    .await?;
    assert_eq!(status, 404, "{body}");
    let (status, body) = admin(
        &client,
        Method::POST,
        format!("{base}/tenants"),
        Some(json!({"domains": []})),
    )
    .await?;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("tenant_id")),
        "{body}"
    );
    let (status, body) = admin(
        &client,
        Method::POST,
        format!("{base}/tenants/{TENANT}/applications"),
        Some(json!({"client_id": "y", "client_secrets": 42})),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    let (status, _) = admin(
        &client,
        Method::POST,
        format!("{base}/faults"),
        Some(json!({"action": {"kind": "explode"}})),
    )
    .await?;
    assert_eq!(status, 400);

    // Seed.
    let response = client.post(format!("{base}/seed")).json(&json!({
        "tenants": [{"tenant_id": "seeded", "applications": [{"client_id": "s-app", "client_secrets": ["s"]}]}],
        "resources": ["api://seeded"],
    })).send().await?;
    assert_eq!(response.status(), 204);
    let (status, body) = post_token(
        &client,
        &emulator,
        "seeded",
        &secret_form("s-app", "s", "api://seeded/.default"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

async fn post_token_status(
    client: &reqwest::Client,
    emulator: &Emulator,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let response = client
        .post(emulator.token_endpoint(TENANT))
        .form(&secret_form("app-1", "sec-1", "api://orders/.default"))
        .send()
        .await?;
    Ok((response.status().as_u16(), Value::Null))
}

#[tokio::test]
async fn seed_documents_parse() -> TestResult {
    let seed = entra_emulator::Seed::from_json(
        r#"{"tenants":[{"tenant_id":"t","domains":["d.example"],"applications":[{"client_id":"a","client_secrets":["x"],"federated_credentials":[{"issuer":"https://i","subject":"s"}]}]}],"external_issuers":["k"],"settings":{"refresh_in_secs":30}}"#,
    )?;
    let emulator = Emulator::start().await?;
    emulator.apply_seed(&seed)?;
    assert!(emulator.service_principal_id("d.example", "a").is_some());
    assert!(
        entra_emulator::Seed::from_json(r#"{"tenants":[{"tenant_id":"t","nope":1}]}"#).is_err()
    );
    Ok(())
}
