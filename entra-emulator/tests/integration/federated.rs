//! Federated assertions from external issuers.

use std::time::Duration;

use entra_emulator::{AppRegistration, FederatedCredential, TOKEN_EXCHANGE_AUDIENCE};
use serde_json::{Value, json};

use crate::common::*;

const FIC_APP: &str = "ffffffff-0000-0000-0000-000000000001";
const SUBJECT: &str = "system:serviceaccount:default:workload";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn send(
    client: &reqwest::Client,
    emulator: &entra_emulator::Emulator,
    assertion: &str,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let scope = "https://vault.azure.net/.default";
    post_token(
        client,
        emulator,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", FIC_APP),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", scope),
        ],
    )
    .await
}

#[tokio::test]
async fn federated_assertion_succeeds_and_mismatches_fail() -> TestResult {
    let (emulator, client) = setup().await?;
    let issuer = emulator.add_external_issuer("k8s")?;
    assert_eq!(
        issuer,
        format!("{}/_emulator/issuers/k8s", emulator.https_url())
    );
    let other_issuer = emulator.add_external_issuer("github")?;
    emulator.add_application(
        TENANT,
        AppRegistration::new(FIC_APP)
            .federated_credential(FederatedCredential::new(&issuer, SUBJECT)),
    )?;
    let hour = Duration::from_secs(3600);

    let good = emulator.mint_external_token("k8s", SUBJECT, TOKEN_EXCHANGE_AUDIENCE, hour)?;
    let (status, body) = send(&client, &emulator, &good).await?;
    assert_eq!(status, 200, "{body}");
    let claims = jsonwebtoken::decode::<Value>(
        body["access_token"].as_str().ok_or("token")?,
        &emulator.decoding_key(),
        &emulator.validation(TENANT, "https://vault.azure.net"),
    )?
    .claims;
    assert_eq!(claims["appid"], FIC_APP);
    // Federated assertions (like a projected Kubernetes token) may be reused.
    let (status, _) = send(&client, &emulator, &good).await?;
    assert_eq!(status, 200);

    let wrong_subject =
        emulator.mint_external_token("k8s", "someone-else", TOKEN_EXCHANGE_AUDIENCE, hour)?;
    let (status, body) = send(&client, &emulator, &wrong_subject).await?;
    assert_eq!((status, code(&body)), (401, Some(70021)), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("someone-else"))
    );

    let wrong_audience = emulator.mint_external_token("k8s", SUBJECT, "api://other", hour)?;
    let (status, body) = send(&client, &emulator, &wrong_audience).await?;
    assert_eq!((status, code(&body)), (401, Some(70021)), "{body}");

    let wrong_issuer =
        emulator.mint_external_token("github", SUBJECT, TOKEN_EXCHANGE_AUDIENCE, hour)?;
    let (status, body) = send(&client, &emulator, &wrong_issuer).await?;
    assert_eq!((status, code(&body)), (401, Some(70021)), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains(&other_issuer))
    );

    // Signed by github's key but claiming to be k8s.
    let mut forged = serde_json::Map::new();
    let now = emulator
        .now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    for (k, v) in [
        ("iss", json!(issuer)),
        ("sub", json!(SUBJECT)),
        ("aud", json!(TOKEN_EXCHANGE_AUDIENCE)),
        ("exp", json!(now + 600)),
    ] {
        forged.insert(k.into(), v);
    }
    let forged = emulator.mint_external_token_with_claims("github", forged)?;
    let (status, body) = send(&client, &emulator, &forged).await?;
    assert_eq!((status, code(&body)), (401, Some(700027)), "{body}");

    let mut expired = serde_json::Map::new();
    for (k, v) in [
        ("sub", json!(SUBJECT)),
        ("aud", json!(TOKEN_EXCHANGE_AUDIENCE)),
        ("iat", json!(now - 7200)),
        ("exp", json!(now - 3600)),
    ] {
        expired.insert(k.into(), v);
    }
    let expired = emulator.mint_external_token_with_claims("k8s", expired)?;
    let (status, body) = send(&client, &emulator, &expired).await?;
    assert_eq!((status, code(&body)), (401, Some(700024)), "{body}");
    Ok(())
}

#[tokio::test]
async fn external_issuer_publishes_discovery_and_keys() -> TestResult {
    let (emulator, client) = setup().await?;
    let issuer = emulator.add_external_issuer("gh")?;
    let config: Value = client
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(config["issuer"], issuer.as_str());
    let jwks: jsonwebtoken::jwk::JwkSet = client
        .get(config["jwks_uri"].as_str().ok_or("jwks_uri")?)
        .send()
        .await?
        .json()
        .await?;
    let token = emulator.mint_external_token(
        "gh",
        "repo:o/r:ref:refs/heads/main",
        "api://AzureADTokenExchange",
        Duration::from_secs(300),
    )?;
    let kid = jsonwebtoken::decode_header(&token)?.kid.ok_or("kid")?;
    let jwk = jwks.find(&kid).ok_or("kid not in jwks")?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["api://AzureADTokenExchange"]);
    validation.set_issuer(&[&issuer]);
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk)?,
        &validation,
    )?;
    assert_eq!(data.claims["sub"], "repo:o/r:ref:refs/heads/main");
    assert!(
        emulator
            .mint_external_token("nope", "s", "a", Duration::from_secs(1))
            .is_err()
    );
    Ok(())
}
