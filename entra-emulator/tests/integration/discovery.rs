//! Discovery documents, keys, and the server's life cycle.

use entra_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn openid_configuration_points_at_the_emulator() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_tenant_domain(TENANT, "contoso.example")?;
    let https = emulator.https_url();
    // What MSAL fetches for authority `{https}/{tenant}`.
    let config: Value = client
        .get(format!(
            "{https}/{TENANT}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(config["issuer"], emulator.issuer(TENANT));
    assert_eq!(config["token_endpoint"], emulator.token_endpoint(TENANT));
    assert_eq!(
        config["jwks_uri"],
        format!("{https}/{TENANT}/discovery/v2.0/keys")
    );
    assert_eq!(
        config["authorization_endpoint"],
        format!("{https}/{TENANT}/oauth2/v2.0/authorize")
    );
    assert_eq!(
        config["device_authorization_endpoint"],
        format!("{https}/{TENANT}/oauth2/v2.0/devicecode")
    );
    assert!(
        config["token_endpoint_auth_methods_supported"]
            .as_array()
            .is_some_and(|m| m.iter().any(|v| v == "private_key_jwt"))
    );

    // By domain: the issuer names the tenant id.
    let config: Value = client
        .get(emulator.openid_configuration_url("contoso.example"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(config["issuer"], emulator.issuer(TENANT));

    // Multi-tenant aliases use the {tenantid} template.
    let config: Value = client
        .get(emulator.openid_configuration_url("organizations"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(config["issuer"], format!("{https}/{{tenantid}}/v2.0"));

    // Over plain HTTP, endpoints use the HTTP listener; the issuer stays HTTPS.
    let config: Value = client
        .get(format!(
            "{}/{TENANT}/v2.0/.well-known/openid-configuration",
            emulator.http_url()
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        config["token_endpoint"],
        format!("{}/{TENANT}/oauth2/v2.0/token", emulator.http_url())
    );
    assert_eq!(config["issuer"], emulator.issuer(TENANT));

    let response = client
        .get(emulator.openid_configuration_url("unknown-tenant"))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_eq!(code(&body), Some(90002));
    Ok(())
}

#[tokio::test]
async fn jwks_verifies_issued_tokens() -> TestResult {
    let (emulator, client) = setup().await?;
    let scope = format!("{GRAPH}/.default");
    let (_, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &scope),
    )
    .await?;
    let token = body["access_token"].as_str().ok_or("token")?;
    let kid = jsonwebtoken::decode_header(token)?.kid.ok_or("kid")?;

    for url in [
        emulator.jwks_url(),
        format!("{}/{TENANT}/discovery/v2.0/keys", emulator.https_url()),
    ] {
        let raw: Value = client.get(url).send().await?.json().await?;
        let key = &raw["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], kid.as_str());
        assert!(key["n"].is_string() && key["e"] == "AQAB");
        assert!(key["x5c"][0].is_string());
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(raw)?;
        let jwk = jwks.find(&kid).ok_or("kid not found")?;
        let data = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk)?,
            &emulator.validation(TENANT, GRAPH),
        )?;
        assert_eq!(data.claims["appid"], CLIENT);
    }
    assert_eq!(emulator.jwks()["keys"][0]["kid"], kid.as_str());

    let instance: Value = client
        .get(format!(
            "{}/common/discovery/instance?api-version=1.1&authorization_endpoint={}/{TENANT}/oauth2/v2.0/authorize",
            emulator.https_url(),
            emulator.https_url()
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        instance["tenant_discovery_endpoint"],
        emulator.openid_configuration_url(TENANT)
    );
    Ok(())
}

#[tokio::test]
async fn starts_serves_and_stops() -> TestResult {
    let (first, second) = tokio::join!(Emulator::start(), Emulator::start());
    let (first, second) = (first?, second?);
    assert_ne!(first.https_url(), second.https_url());
    assert_ne!(first.ca_pem(), second.ca_pem());
    assert!(first.https_url().starts_with("https://127.0.0.1:"));
    assert!(first.http_url().starts_with("http://127.0.0.1:"));
    assert_eq!(first.authority_host(), first.https_url());
    assert!(!first.ca_der().is_empty());
    let dir = std::env::temp_dir().join(format!("entra-emulator-test-{}", first.https_port()));
    let path = first.write_ca_pem(&dir)?;
    assert_eq!(std::fs::read_to_string(&path)?, first.ca_pem());
    std::fs::remove_dir_all(&dir)?;

    // A client trusting the second emulator's CA cannot talk to the first.
    let other_client = client(&second)?;
    assert!(other_client.get(first.jwks_url()).send().await.is_err());

    let client = client(&first)?;
    assert_eq!(client.get(first.jwks_url()).send().await?.status(), 200);
    let url = first.jwks_url();
    first.shutdown().await;
    let fresh = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(second.ca_pem().as_bytes())?])
        .build()?;
    assert!(fresh.get(url).send().await.is_err());

    // Fixed ports are honoured.
    let port = second.https_port();
    // shutdown (not drop) waits until the listener is closed, so the port is free again.
    second.shutdown().await;
    let fixed = Emulator::start_with(EmulatorConfig::default().https_port(port)).await?;
    assert_eq!(fixed.https_port(), port);
    Ok(())
}

#[tokio::test]
async fn unknown_paths_are_404() -> TestResult {
    let (emulator, client) = setup().await?;
    let response = client
        .get(format!("{}/nothing/here", emulator.https_url()))
        .send()
        .await?;
    assert_eq!(response.status(), 404);
    Ok(())
}
