//! Client-secret grant: success, token contents, settings, and every request error.

use std::sync::Arc;
use std::time::Duration;

use entra_emulator::{AppRegistration, Emulator, TokenContext};
use serde_json::{Map, Value, json};

use crate::common::*;

fn decode(
    emulator: &Emulator,
    token: &str,
    audience: &str,
) -> Result<Map<String, Value>, Box<dyn std::error::Error>> {
    let data = jsonwebtoken::decode::<Map<String, Value>>(
        token,
        &emulator.decoding_key(),
        &emulator.validation(TENANT, audience),
    )?;
    Ok(data.claims)
}

#[tokio::test]
async fn client_secret_issues_a_verifiable_token() -> TestResult {
    let (emulator, client) = setup().await?;
    let scope = format!("{GRAPH}/.default");
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &scope),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["ext_expires_in"], 3600);
    assert!(body.get("refresh_in").is_none());
    let token = body["access_token"].as_str().ok_or("no access_token")?;

    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(emulator.signing_key().kid()));
    assert!(header.x5t.is_some());

    let claims = decode(&emulator, token, GRAPH)?;
    assert_eq!(claims["aud"], GRAPH);
    assert_eq!(claims["iss"], emulator.issuer(TENANT));
    assert_eq!(
        claims["iss"],
        format!("{}/{TENANT}/v2.0", emulator.https_url())
    );
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["appid"], CLIENT);
    assert_eq!(claims["azp"], CLIENT);
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["ver"], "2.0");
    let sp = emulator
        .service_principal_id(TENANT, CLIENT)
        .ok_or("no sp")?;
    assert_eq!(claims["oid"], sp.as_str());
    assert_eq!(claims["sub"], sp.as_str());
    let iat = claims["iat"].as_u64().ok_or("iat")?;
    let exp = claims["exp"].as_u64().ok_or("exp")?;
    assert_eq!(exp - iat, 3600);
    assert!(claims.get("xms_cc").is_none());

    // uti is unique per token.
    let (_, again) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &scope),
    )
    .await?;
    let again = decode(
        &emulator,
        again["access_token"].as_str().ok_or("token")?,
        GRAPH,
    )?;
    assert_ne!(claims["uti"], again["uti"]);
    assert_eq!(claims["oid"], again["oid"]);
    Ok(())
}

#[tokio::test]
async fn token_settings_shape_the_answer() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.set_token_lifetime(Duration::from_secs(120));
    emulator.set_refresh_in(Some(Duration::from_secs(60)));
    emulator.set_expires_in_as_string(true);
    let scope = format!("{GRAPH}/.default");
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &scope),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], "120");
    assert_eq!(body["ext_expires_in"], "120");
    assert_eq!(body["refresh_in"], "60");
    let claims = decode(
        &emulator,
        body["access_token"].as_str().ok_or("token")?,
        GRAPH,
    )?;
    assert_eq!(
        claims["exp"]
            .as_u64()
            .zip(claims["iat"].as_u64())
            .map(|(e, i)| e - i),
        Some(120)
    );

    emulator.set_refresh_in(None);
    emulator.set_expires_in_as_string(false);
    let (_, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &scope),
    )
    .await?;
    assert_eq!(body["expires_in"], 120);
    assert!(body.get("refresh_in").is_none());
    Ok(())
}

#[tokio::test]
async fn claims_request_with_capabilities_is_reflected() -> TestResult {
    let (emulator, client) = setup().await?;
    let scope = format!("{GRAPH}/.default");
    let mut form = secret_form(CLIENT, SECRET, &scope);
    form.push((
        "claims",
        r#"{"access_token":{"xms_cc":{"values":["cp1","cp2"]}}}"#,
    ));
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!(status, 200, "{body}");
    let claims = decode(
        &emulator,
        body["access_token"].as_str().ok_or("token")?,
        GRAPH,
    )?;
    assert_eq!(claims["xms_cc"], json!(["cp1", "cp2"]));

    // Other essential claims are accepted and ignored.
    let mut form = secret_form(CLIENT, SECRET, &scope);
    form.push((
        "claims",
        r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#,
    ));
    let (status, _) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn extra_claims_hook_adds_claims() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.set_extra_claims(Some(Arc::new(|ctx: &TokenContext<'_>| {
        let mut extra = Map::new();
        extra.insert("xms_test".into(), json!(ctx.client_id));
        if let Some(session) = ctx.form_value("client_session") {
            extra.insert("session".into(), json!(session));
        }
        extra
    })));
    let scope = format!("{GRAPH}/.default");
    let mut form = secret_form(CLIENT, SECRET, &scope);
    // (`fmi_path` is only for agent blueprints now; any public field reaches the hook.)
    form.push(("client_session", "session-1"));
    let (_, body) = post_token(&client, &emulator, TENANT, &form).await?;
    let claims = decode(
        &emulator,
        body["access_token"].as_str().ok_or("token")?,
        GRAPH,
    )?;
    assert_eq!(claims["xms_test"], CLIENT);
    assert_eq!(claims["session"], "session-1");
    Ok(())
}

#[tokio::test]
async fn tenant_domain_and_plain_http_work() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_tenant_domain(TENANT, "contoso.example")?;
    emulator.add_resource("api://my-api")?;
    let scope = "api://my-api/.default";
    let response = client
        .post(format!(
            "{}/contoso.example/oauth2/v2.0/token",
            emulator.http_url()
        ))
        .form(&secret_form(CLIENT, SECRET, scope))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    let claims = decode(
        &emulator,
        body["access_token"].as_str().ok_or("token")?,
        "api://my-api",
    )?;
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["iss"], emulator.issuer(TENANT));

    // The scope's resource may be an application of the tenant, by client id; also
    // `openid profile offline_access` alongside `/.default` is fine.
    let scope = format!("{CLIENT}/.default offline_access openid");
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &scope),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

async fn expect_error(
    client: &reqwest::Client,
    emulator: &Emulator,
    tenant: &str,
    form: &[(&str, &str)],
    status: u16,
    error: &str,
    aadsts: u64,
) -> TestResult {
    let (got, body) = post_token(client, emulator, tenant, form).await?;
    assert_eq!(
        (got, body["error"].as_str(), code(&body)),
        (status, Some(error), Some(aadsts)),
        "{body}"
    );
    let description = body["error_description"].as_str().ok_or("no description")?;
    assert!(
        description.starts_with(&format!("AADSTS{aadsts}: ")),
        "{description}"
    );
    assert!(description.contains("Trace ID: "), "{description}");
    assert!(description.contains("Correlation ID: "), "{description}");
    assert!(description.contains("Timestamp: "), "{description}");
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    Ok(())
}

#[tokio::test]
async fn request_errors_have_entra_codes() -> TestResult {
    let (emulator, client) = setup().await?;
    let graph = format!("{GRAPH}/.default");
    let (c, e) = (&client, &emulator);

    expect_error(
        c,
        e,
        "99999999-9999-9999-9999-999999999999",
        &secret_form(CLIENT, SECRET, &graph),
        400,
        "invalid_request",
        90002,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &secret_form("no-such-app", SECRET, &graph),
        400,
        "unauthorized_client",
        700016,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &secret_form(CLIENT, "wrong", &graph),
        401,
        "invalid_client",
        7000215,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &[
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", &graph),
        ],
        400,
        "invalid_request",
        900144,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", SECRET),
            ("scope", &graph),
        ],
        400,
        "invalid_request",
        900144,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
        ],
        400,
        "invalid_request",
        900144,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &[
            ("grant_type", "password"),
            ("client_id", CLIENT),
            ("scope", &graph),
        ],
        400,
        "unsupported_grant_type",
        70003,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &secret_form(CLIENT, SECRET, "https://graph.microsoft.com/User.Read"),
        400,
        "invalid_scope",
        1002012,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &secret_form(
            CLIENT,
            SECRET,
            "https://graph.microsoft.com/.default https://vault.azure.net/.default",
        ),
        400,
        "invalid_scope",
        70011,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &secret_form(CLIENT, SECRET, "https://unknown.example/.default"),
        400,
        "invalid_resource",
        500011,
    )
    .await?;
    expect_error(
        c,
        e,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", &graph),
        ],
        401,
        "invalid_client",
        7000218,
    )
    .await?;
    let mut bad_claims = secret_form(CLIENT, SECRET, &graph);
    bad_claims.push(("claims", "[\"not an object\"]"));
    expect_error(c, e, TENANT, &bad_claims, 400, "invalid_request", 9002313).await?;
    let mut not_json = secret_form(CLIENT, SECRET, &graph);
    not_json.push(("claims", "{not json"));
    expect_error(c, e, TENANT, &not_json, 400, "invalid_request", 9002313).await?;

    // The rejected claims text is never echoed.
    let (_, body) = post_token(c, e, TENANT, &not_json).await?;
    assert!(!body.to_string().contains("not json"));

    // GET on the token endpoint.
    let response = client.get(emulator.token_endpoint(TENANT)).send().await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_eq!(code(&body), Some(900561));

    // A JSON body is not a form: grant_type is missing.
    let response = client
        .post(emulator.token_endpoint(TENANT))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await?;
    let body: Value = response.json().await?;
    assert_eq!(code(&body), Some(900144));
    Ok(())
}

#[tokio::test]
async fn correlation_id_echoes_client_request_id() -> TestResult {
    let (emulator, client) = setup().await?;
    let response = client
        .post(emulator.token_endpoint(TENANT))
        .header("client-request-id", "8a5b3c0e-1111-2222-3333-444455556666")
        .form(&secret_form(
            CLIENT,
            "wrong",
            "https://graph.microsoft.com/.default",
        ))
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("8a5b3c0e-1111-2222-3333-444455556666")
    );
    let body: Value = response.json().await?;
    assert_eq!(
        body["correlation_id"],
        "8a5b3c0e-1111-2222-3333-444455556666"
    );
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("Correlation ID: 8a5b3c0e-1111-2222-3333-444455556666"))
    );
    Ok(())
}

#[tokio::test]
async fn replacing_an_application_changes_its_secret() -> TestResult {
    let (emulator, client) = setup().await?;
    emulator.add_application(
        TENANT,
        AppRegistration::new(CLIENT).client_secret("new-secret"),
    )?;
    let scope = format!("{GRAPH}/.default");
    let (status, _) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &scope),
    )
    .await?;
    assert_eq!(status, 401);
    let (status, _) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, "new-secret", &scope),
    )
    .await?;
    assert_eq!(status, 200);
    Ok(())
}
