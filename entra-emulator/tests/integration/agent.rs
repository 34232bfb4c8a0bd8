//! Agent identities: blueprint T1 (`fmi_path`), agent identity TR/T2, agent users
//! (`user_fic`), on-behalf-of, agentic session echo.

use std::error::Error;

use base64::Engine as _;
use entra_emulator::{
    AppRegistration, Emulator, FederatedCredential, ManagedIdentity, REDACTED,
    TOKEN_EXCHANGE_APP_ID, UserAccount,
};
use serde_json::{Value, json};

use crate::common::*;

const BLUEPRINT: &str = "9471f355-173a-4466-b142-3d4acf848b03";
const BLUEPRINT_SECRET: &str = "blueprint-secret";
const OTHER_BLUEPRINT: &str = "0b0b0b0b-0000-0000-0000-000000000002";
const AGENT: &str = "cd77c677-16ea-4f9d-b5b1-0aab1841694c";
const AGENT2: &str = "dfd8586f-ed96-4632-8719-4c30bf5521fd";
const OTHER_AGENT: &str = "0a0a0a0a-0000-0000-0000-000000000003";
const AGENT_USER: &str = "629db438-941d-4e66-a9ef-bbe70e6cf3ac";
const AGENT_USER_UPN: &str = "7acd14d47a62@dev.example";
const AGENT2_USER: &str = "77777777-0000-0000-0000-000000000002";
const HUMAN: &str = "88888888-0000-0000-0000-000000000001";
const API_APP: &str = "99999999-0000-0000-0000-000000000001";
const API_SECRET: &str = "api-secret";
const EXCHANGE_SCOPE: &str = "api://AzureADTokenExchange/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const OBO_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Blueprint (secret) with agents AGENT and AGENT2, another blueprint with OTHER_AGENT, agent
/// users, a human user and an API app (secret).
async fn agents() -> Result<(Emulator, reqwest::Client), Box<dyn Error>> {
    let (emulator, client) = setup().await?;
    emulator.add_agent_blueprint(
        TENANT,
        AppRegistration::new(BLUEPRINT).client_secret(BLUEPRINT_SECRET),
    )?;
    emulator.add_agent_blueprint(
        TENANT,
        AppRegistration::new(OTHER_BLUEPRINT).client_secret("other"),
    )?;
    emulator.add_agent_identity(TENANT, BLUEPRINT, AGENT)?;
    emulator.add_agent_identity(TENANT, BLUEPRINT, AGENT2)?;
    emulator.add_agent_identity(TENANT, OTHER_BLUEPRINT, OTHER_AGENT)?;
    emulator.add_agent_user(
        TENANT,
        AGENT,
        UserAccount::new(AGENT_USER, AGENT_USER_UPN).display_name("Agent User"),
    )?;
    emulator.add_agent_user(
        TENANT,
        AGENT2,
        UserAccount::new(AGENT2_USER, "agent2-user@dev.example"),
    )?;
    emulator.add_user(
        TENANT,
        UserAccount::new(HUMAN, "alice@dev.example").display_name("Alice"),
    )?;
    emulator.add_application(
        TENANT,
        AppRegistration::new(API_APP).client_secret(API_SECRET),
    )?;
    Ok((emulator, client))
}

fn claims_of(emulator: &Emulator, token: &Value, audience: &str) -> Result<Value, Box<dyn Error>> {
    let token = token.as_str().ok_or("token is not a string")?;
    Ok(jsonwebtoken::decode::<Value>(
        token,
        &emulator.decoding_key(),
        &emulator.validation(TENANT, audience),
    )?
    .claims)
}

async fn t1_for(
    client: &reqwest::Client,
    emulator: &Emulator,
    blueprint: &str,
    secret: &str,
    fmi_path: &str,
) -> Result<String, Box<dyn Error>> {
    let mut form = secret_form(blueprint, secret, EXCHANGE_SCOPE);
    form.push(("fmi_path", fmi_path));
    let (status, body) = post_token(client, emulator, TENANT, &form).await?;
    assert_eq!(status, 200, "{body}");
    Ok(body["access_token"].as_str().ok_or("t1")?.to_owned())
}

async fn t1(
    client: &reqwest::Client,
    emulator: &Emulator,
    agent: &str,
) -> Result<String, Box<dyn Error>> {
    t1_for(client, emulator, BLUEPRINT, BLUEPRINT_SECRET, agent).await
}

async fn agent_cc(
    client: &reqwest::Client,
    emulator: &Emulator,
    agent: &str,
    assertion: &str,
    scope: &str,
) -> Result<(u16, Value), Box<dyn Error>> {
    post_token(
        client,
        emulator,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", agent),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", scope),
        ],
    )
    .await
}

#[tokio::test]
async fn blueprint_t1_carries_the_fmi_path() -> TestResult {
    let (emulator, client) = agents().await?;
    let token = t1(&client, &emulator, AGENT).await?;
    let claims = claims_of(&emulator, &json!(token), TOKEN_EXCHANGE_APP_ID)?;
    assert_eq!(claims["aud"], TOKEN_EXCHANGE_APP_ID);
    assert_eq!(claims["azp"], BLUEPRINT);
    assert_eq!(claims["appid"], BLUEPRINT);
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["xms_act_fct"], "9 3");
    assert_eq!(claims["xms_sub_fct"], "3 9");
    let sub = claims["sub"].as_str().ok_or("sub")?;
    assert!(sub.starts_with("/eid1/c/pub/t/"), "{sub}");
    assert!(
        sub.ends_with(&format!("/a/VfNxlDoXZkSxQj1Kz4SLAw/{AGENT}")),
        "{sub}"
    );
    assert_eq!(
        claims["oid"].as_str(),
        emulator.service_principal_id(TENANT, BLUEPRINT).as_deref()
    );

    // The sovereign exchange audiences are accepted too.
    for scope in [
        "api://AzureADTokenExchangeUSGov/.default",
        "api://AzureADTokenExchangeChina/.default",
    ] {
        let mut form = secret_form(BLUEPRINT, BLUEPRINT_SECRET, scope);
        form.push(("fmi_path", AGENT));
        let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
        assert_eq!(status, 200, "{body}");
        let claims = claims_of(&emulator, &body["access_token"], TOKEN_EXCHANGE_APP_ID)?;
        assert!(claims["sub"].as_str().unwrap_or_default().ends_with(AGENT));
    }

    // Without fmi_path a blueprint is an ordinary application.
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(BLUEPRINT, BLUEPRINT_SECRET, &format!("{GRAPH}/.default")),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
    assert_eq!(claims["azp"], BLUEPRINT);
    assert!(claims.get("xms_act_fct").is_none());
    Ok(())
}

#[tokio::test]
async fn fmi_path_refusals() -> TestResult {
    let (emulator, client) = agents().await?;
    let mut form = secret_form(BLUEPRINT, BLUEPRINT_SECRET, EXCHANGE_SCOPE);
    form.push(("fmi_path", ""));
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!((status, code(&body)), (400, Some(90100)), "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("fmi_path")
    );

    let mut form = secret_form(CLIENT, SECRET, EXCHANGE_SCOPE);
    form.push(("fmi_path", AGENT));
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!((status, code(&body)), (400, Some(9002313)), "{body}");
    assert_eq!(body["error"], "invalid_request");

    let scope = format!("{GRAPH}/.default");
    let mut form = secret_form(BLUEPRINT, BLUEPRINT_SECRET, &scope);
    form.push(("fmi_path", AGENT));
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!((status, code(&body)), (400, Some(70011)), "{body}");
    Ok(())
}

#[tokio::test]
async fn agent_identity_tr_and_t2() -> TestResult {
    let (emulator, client) = agents().await?;
    let t1 = t1(&client, &emulator, AGENT).await?;
    let scope = format!("{GRAPH}/.default");
    let (status, body) = agent_cc(&client, &emulator, AGENT, &t1, &scope).await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
    let agent_oid = emulator.service_principal_id(TENANT, AGENT).ok_or("oid")?;
    assert_eq!(claims["appid"], AGENT);
    assert_eq!(claims["azp"], AGENT);
    assert_eq!(claims["oid"], agent_oid.as_str());
    assert_eq!(claims["sub"], agent_oid.as_str());
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["xms_par_app_azp"], BLUEPRINT);
    assert_eq!(claims["xms_act_fct"], "3 11 9");
    assert_eq!(claims["xms_sub_fct"], "9 3 11");

    // The T1 is reusable until it expires; for the exchange audience the answer is a T2.
    let (status, body) = agent_cc(&client, &emulator, AGENT, &t1, EXCHANGE_SCOPE).await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], TOKEN_EXCHANGE_APP_ID)?;
    assert_eq!(claims["azp"], AGENT);
    assert_eq!(claims["xms_par_app_azp"], BLUEPRINT);
    Ok(())
}

#[tokio::test]
async fn agent_identity_refusals() -> TestResult {
    let (emulator, client) = agents().await?;
    let scope = format!("{GRAPH}/.default");
    // A T1 for another agent identity.
    let t1_agent2 = t1(&client, &emulator, AGENT2).await?;
    let (status, body) = agent_cc(&client, &emulator, AGENT, &t1_agent2, &scope).await?;
    assert_eq!((status, code(&body)), (401, Some(700211)), "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("another agent identity")
    );
    // A T1 from a blueprint that is not the agent's parent.
    let foreign = t1_for(&client, &emulator, OTHER_BLUEPRINT, "other", AGENT).await?;
    let (status, body) = agent_cc(&client, &emulator, AGENT, &foreign, &scope).await?;
    assert_eq!((status, code(&body)), (401, Some(700213)), "{body}");
    // A client secret.
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(AGENT, BLUEPRINT_SECRET, &scope),
    )
    .await?;
    assert_eq!((status, code(&body)), (401, Some(7000215)), "{body}");
    // An emulator token that is not a T1 (the agent's own TR, or the blueprint's graph token).
    let t1 = t1(&client, &emulator, AGENT).await?;
    let (_, tr) = agent_cc(&client, &emulator, AGENT, &t1, EXCHANGE_SCOPE).await?;
    let t2 = tr["access_token"].as_str().ok_or("t2")?;
    let (status, body) = agent_cc(&client, &emulator, AGENT, t2, &scope).await?;
    assert_eq!((status, code(&body)), (401, Some(70021)), "{body}");
    let (_, graph) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(BLUEPRINT, BLUEPRINT_SECRET, &scope),
    )
    .await?;
    let graph = graph["access_token"].as_str().ok_or("graph")?;
    let (status, body) = agent_cc(&client, &emulator, AGENT, graph, &scope).await?;
    assert_eq!((status, code(&body)), (401, Some(70021)), "{body}");
    // A tampered T1.
    let tampered = format!("{}x", &t1[..t1.len() - 1]);
    let (status, body) = agent_cc(&client, &emulator, AGENT, &tampered, &scope).await?;
    assert_eq!((status, code(&body)), (401, Some(700027)), "{body}");
    // Registration errors.
    assert!(
        emulator
            .add_agent_identity(TENANT, CLIENT, "x-agent")
            .is_err()
    );
    assert!(
        emulator
            .add_agent_user(TENANT, CLIENT, UserAccount::new("u", "u@x"))
            .is_err()
    );
    assert!(
        emulator
            .mint_user_token(TENANT, "nobody", API_APP, API_APP, "x")
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn managed_identity_token_is_a_blueprint_federated_credential() -> TestResult {
    let (emulator, client) = agents().await?;
    let mi_client = "a1a1a1a1-0000-0000-0000-000000000001";
    let mi_object = "b1b1b1b1-0000-0000-0000-000000000001";
    emulator.set_system_assigned_identity(ManagedIdentity::new(
        TENANT,
        mi_client,
        mi_object,
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
    ))?;
    let mi_blueprint = "c1c1c1c1-0000-0000-0000-000000000001";
    emulator.add_agent_blueprint(
        TENANT,
        AppRegistration::new(mi_blueprint)
            .federated_credential(FederatedCredential::new(emulator.issuer(TENANT), mi_object)),
    )?;
    let mi: Value = reqwest::Client::new()
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api://AzureADTokenExchange",
            emulator.http_url()
        ))
        .header("Metadata", "true")
        .send()
        .await?
        .json()
        .await?;
    let mi_token = mi["access_token"].as_str().ok_or("mi token")?;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", mi_blueprint),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", mi_token),
        ("scope", EXCHANGE_SCOPE),
        ("fmi_path", AGENT),
    ];
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], TOKEN_EXCHANGE_APP_ID)?;
    assert_eq!(claims["azp"], mi_blueprint);
    assert!(claims["sub"].as_str().unwrap_or_default().ends_with(AGENT));
    // Another blueprint whose credential names another subject refuses it.
    emulator.add_agent_blueprint(
        TENANT,
        AppRegistration::new(mi_blueprint).federated_credential(FederatedCredential::new(
            emulator.issuer(TENANT),
            "someone-else",
        )),
    )?;
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!((status, code(&body)), (401, Some(70021)), "{body}");
    Ok(())
}

async fn user_fic(
    client: &reqwest::Client,
    emulator: &Emulator,
    agent: &str,
    t1: &str,
    t2: &str,
    user: &[(&str, &str)],
    scope: &str,
) -> Result<(u16, Value), Box<dyn Error>> {
    let mut form = vec![
        ("grant_type", "user_fic"),
        ("client_id", agent),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", t1),
        ("user_federated_identity_credential", t2),
        ("scope", scope),
        ("client_info", "1"),
    ];
    form.extend_from_slice(user);
    post_token(client, emulator, TENANT, &form).await
}

async fn t1_t2(
    client: &reqwest::Client,
    emulator: &Emulator,
    agent: &str,
) -> Result<(String, String), Box<dyn Error>> {
    let t1 = t1(client, emulator, agent).await?;
    let (status, body) = agent_cc(client, emulator, agent, &t1, EXCHANGE_SCOPE).await?;
    assert_eq!(status, 200, "{body}");
    let t2 = body["access_token"].as_str().ok_or("t2")?.to_owned();
    Ok((t1, t2))
}

#[tokio::test]
async fn agent_user_token() -> TestResult {
    let (emulator, client) = agents().await?;
    let (t1, t2) = t1_t2(&client, &emulator, AGENT).await?;
    let scope = format!("{GRAPH}/User.Read {GRAPH}/Mail.Read openid offline_access profile");
    let (status, body) = user_fic(
        &client,
        &emulator,
        AGENT,
        &t1,
        &t2,
        &[("user_id", AGENT_USER)],
        &scope,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    for field in [
        "token_type",
        "scope",
        "expires_in",
        "ext_expires_in",
        "refresh_token",
    ] {
        assert!(body.get(field).is_some(), "{field} missing: {body}");
    }
    let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
    assert_eq!(claims["scp"], "User.Read Mail.Read");
    assert_eq!(claims["idtyp"], "user");
    assert_eq!(claims["oid"], AGENT_USER);
    assert_eq!(claims["sub"], AGENT_USER);
    assert_eq!(claims["upn"], AGENT_USER_UPN);
    assert_eq!(claims["preferred_username"], AGENT_USER_UPN);
    assert_eq!(claims["appid"], AGENT);
    assert_eq!(claims["azp"], AGENT);
    assert_eq!(claims["xms_par_app_azp"], BLUEPRINT);
    assert_eq!(claims["xms_act_fct"], "3 11 9");
    assert_eq!(claims["xms_sub_fct"], "13");
    let id = claims_of(&emulator, &body["id_token"], AGENT)?;
    assert_eq!(id["oid"], AGENT_USER);
    assert_eq!(id["preferred_username"], AGENT_USER_UPN);
    assert_eq!(id["name"], "Agent User");
    assert_eq!(id["ver"], "2.0");
    let info = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body["client_info"].as_str().ok_or("client_info")?)?;
    let info: Value = serde_json::from_slice(&info)?;
    assert_eq!(info, json!({"uid": AGENT_USER, "utid": TENANT}));

    // By UPN, with /.default: the user's default scopes.
    let (status, body) = user_fic(
        &client,
        &emulator,
        AGENT,
        &t1,
        &t2,
        &[("username", AGENT_USER_UPN)],
        &format!("{GRAPH}/.default openid offline_access profile"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
    assert_eq!(claims["scp"], "User.Read");
    Ok(())
}

#[tokio::test]
async fn agent_user_refusals() -> TestResult {
    let (emulator, client) = agents().await?;
    let (t1, t2) = t1_t2(&client, &emulator, AGENT).await?;
    let scope = format!("{GRAPH}/User.Read openid");
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, u64, &'a str);
    let cases: [Case<'_>; 5] = [
        (&[], 400, 90014, "invalid_request"),
        (
            &[("user_id", AGENT_USER), ("username", AGENT_USER_UPN)],
            400,
            90100,
            "invalid_request",
        ),
        (&[("user_id", AGENT2_USER)], 400, 50034, "invalid_grant"),
        (&[("user_id", HUMAN)], 400, 50034, "invalid_grant"),
        (
            &[("username", "nobody@dev.example")],
            400,
            50034,
            "invalid_grant",
        ),
    ];
    for (user, status, aadsts, error) in cases {
        let (s, body) = user_fic(&client, &emulator, AGENT, &t1, &t2, user, &scope).await?;
        assert_eq!((s, code(&body)), (status, Some(aadsts)), "{user:?}: {body}");
        assert_eq!(body["error"], error);
    }
    // The T2 of another agent identity, and a T1 in place of the T2.
    let (_, t2_other) = t1_t2(&client, &emulator, AGENT2).await?;
    for wrong in [&t2_other, &t1] {
        let (s, body) = user_fic(
            &client,
            &emulator,
            AGENT,
            &t1,
            wrong,
            &[("user_id", AGENT_USER)],
            &scope,
        )
        .await?;
        assert_eq!((s, code(&body)), (400, Some(700211)), "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    // The T1 of another agent as client assertion.
    let t1_other = self::t1(&client, &emulator, AGENT2).await?;
    let (s, body) = user_fic(
        &client,
        &emulator,
        AGENT,
        &t1_other,
        &t2,
        &[("user_id", AGENT_USER)],
        &scope,
    )
    .await?;
    assert_eq!((s, code(&body)), (401, Some(700211)), "{body}");
    // user_fic from an ordinary application.
    let (s, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &[
            ("grant_type", "user_fic"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("user_federated_identity_credential", &t2),
            ("user_id", AGENT_USER),
            ("scope", &scope),
        ],
    )
    .await?;
    assert_eq!((s, code(&body)), (400, Some(9002313)), "{body}");
    Ok(())
}

async fn obo(
    client: &reqwest::Client,
    emulator: &Emulator,
    credential: &[(&str, &str)],
    incoming: &str,
    scope: &str,
) -> Result<(u16, Value), Box<dyn Error>> {
    let mut form = vec![
        ("grant_type", OBO_GRANT),
        ("requested_token_use", "on_behalf_of"),
        ("assertion", incoming),
        ("scope", scope),
    ];
    form.extend_from_slice(credential);
    post_token(client, emulator, TENANT, &form).await
}

#[tokio::test]
async fn on_behalf_of_for_apps_and_agents() -> TestResult {
    let (emulator, client) = agents().await?;
    let scope = format!("{GRAPH}/User.Read openid profile offline_access");
    let app_credential = [("client_id", API_APP), ("client_secret", API_SECRET)];
    let incoming = emulator.mint_user_token(
        TENANT,
        HUMAN,
        "spa-client",
        &format!("api://{API_APP}"),
        "access_as_user",
    )?;
    let (status, body) = obo(&client, &emulator, &app_credential, &incoming, &scope).await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
    assert_eq!(claims["oid"], HUMAN);
    assert_eq!(claims["scp"], "User.Read");
    assert_eq!(claims["idtyp"], "user");
    assert_eq!(claims["appid"], API_APP);
    assert_eq!(claims["azp"], API_APP);
    assert!(claims.get("xms_par_app_azp").is_none());
    assert!(body.get("id_token").is_some());

    // A token for another audience is refused.
    let wrong = emulator.mint_user_token(TENANT, HUMAN, "spa-client", GRAPH, "User.Read")?;
    let (status, body) = obo(&client, &emulator, &app_credential, &wrong, &scope).await?;
    assert_eq!((status, code(&body)), (400, Some(500131)), "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // An app token is not a user assertion.
    let (_, app_token) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &format!("{API_APP}/.default")),
    )
    .await?;
    let (status, body) = obo(
        &client,
        &emulator,
        &app_credential,
        app_token["access_token"].as_str().unwrap_or_default(),
        &scope,
    )
    .await?;
    assert_eq!((status, code(&body)), (400, Some(50013)), "{body}");
    // requested_token_use is required.
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &[
            ("grant_type", OBO_GRANT),
            ("client_id", API_APP),
            ("client_secret", API_SECRET),
            ("assertion", &incoming),
            ("scope", &scope),
        ],
    )
    .await?;
    assert_eq!((status, code(&body)), (400, Some(900144)), "{body}");

    // An agent identity: the incoming token is addressed to its blueprint.
    let t1 = t1(&client, &emulator, AGENT).await?;
    let agent_credential = [
        ("client_id", AGENT),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", t1.as_str()),
    ];
    let to_blueprint =
        emulator.mint_user_token(TENANT, HUMAN, "spa-client", BLUEPRINT, "access_as_user")?;
    let (status, body) = obo(&client, &emulator, &agent_credential, &to_blueprint, &scope).await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
    assert_eq!(claims["oid"], HUMAN);
    assert_eq!(claims["appid"], AGENT);
    assert_eq!(claims["xms_par_app_azp"], BLUEPRINT);
    let to_agent_api = emulator.mint_user_token(TENANT, HUMAN, "spa-client", API_APP, "x")?;
    let (status, body) = obo(&client, &emulator, &agent_credential, &to_agent_api, &scope).await?;
    assert_eq!((status, code(&body)), (400, Some(500131)), "{body}");
    Ok(())
}

#[tokio::test]
async fn agentic_session_claims_are_echoed() -> TestResult {
    let (emulator, client) = agents().await?;
    let scope = format!("{GRAPH}/.default");
    for claims in [
        r#"{"access_token":{"xms_cli_sid":{"values":["session-42"]}}}"#,
        r#"{"access_token":{"xms_agent_session":{"essential":true,"value":"session-42"}}}"#,
    ] {
        let mut form = secret_form(CLIENT, SECRET, &scope);
        form.push(("claims", claims));
        form.push(("client_session", "session-42"));
        let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
        assert_eq!(status, 200, "{body}");
        let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
        assert_eq!(claims["xms_cli_ses"], "session-42");
        assert_eq!(claims["xms_sess_fct"], "21");
    }
    // And on an agent grant.
    let t1 = t1(&client, &emulator, AGENT).await?;
    let (status, body) = post_token(
        &client,
        &emulator,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", AGENT),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &t1),
            ("scope", &scope),
            (
                "claims",
                r#"{"access_token":{"xms_cli_sid":{"values":["s-7"]}}}"#,
            ),
        ],
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
    assert_eq!(claims["xms_cli_ses"], "s-7");
    let (_, plain) = post_token(
        &client,
        &emulator,
        TENANT,
        &secret_form(CLIENT, SECRET, &scope),
    )
    .await?;
    let claims = claims_of(&emulator, &plain["access_token"], GRAPH)?;
    assert!(claims.get("xms_cli_ses").is_none());
    Ok(())
}

#[tokio::test]
async fn agent_requests_are_logged_without_secrets() -> TestResult {
    let (emulator, client) = agents().await?;
    let (t1, t2) = t1_t2(&client, &emulator, AGENT).await?;
    let (status, body) = user_fic(
        &client,
        &emulator,
        AGENT,
        &t1,
        &t2,
        &[("username", AGENT_USER_UPN)],
        &format!("{GRAPH}/User.Read"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let requests = emulator.token_requests(TENANT);
    let fmi = requests
        .iter()
        .find(|r| r.has_form_field("fmi_path"))
        .ok_or("no fmi_path request")?;
    assert_eq!(fmi.form_value("fmi_path"), Some(AGENT));
    assert_eq!(fmi.form_value("client_secret"), Some(REDACTED));
    let fic = requests
        .iter()
        .find(|r| r.grant_type() == Some("user_fic"))
        .ok_or("no user_fic request")?;
    assert_eq!(fic.form_value("username"), Some(AGENT_USER_UPN));
    assert_eq!(fic.form_value("client_assertion"), Some(REDACTED));
    assert_eq!(
        fic.form_value("user_federated_identity_credential"),
        Some(REDACTED)
    );
    let everything = format!("{requests:?}");
    for secret in [t1.as_str(), t2.as_str(), BLUEPRINT_SECRET] {
        assert!(!everything.contains(secret));
    }
    Ok(())
}

#[tokio::test]
async fn admin_api_registers_agents() -> TestResult {
    let emulator = Emulator::start().await?;
    let client = client(&emulator)?;
    let base = format!("{}/_emulator", emulator.https_url());
    let post = |path: String, body: Value| {
        let client = client.clone();
        async move { client.post(path).json(&body).send().await }
    };
    assert_eq!(
        post(format!("{base}/tenants"), json!({"tenant_id": TENANT}))
            .await?
            .status(),
        201
    );
    let t = format!("{base}/tenants/{TENANT}");
    let r = post(
        format!("{t}/agent-blueprints"),
        json!({"client_id": BLUEPRINT, "client_secrets": [BLUEPRINT_SECRET]}),
    )
    .await?;
    assert_eq!(r.status(), 201);
    let r = post(
        format!("{t}/agent-identities"),
        json!({"blueprint_client_id": BLUEPRINT, "agent_client_id": AGENT}),
    )
    .await?;
    assert_eq!(r.status(), 201);
    let answer: Value = r.json().await?;
    assert_eq!(
        answer["object_id"].as_str(),
        emulator.service_principal_id(TENANT, AGENT).as_deref()
    );
    let r = post(
        format!("{t}/agent-identities"),
        json!({"blueprint_client_id": "unknown", "agent_client_id": "x"}),
    )
    .await?;
    assert_eq!(r.status(), 404);
    let r = post(
        format!("{t}/agent-users"),
        json!({"agent_client_id": AGENT, "object_id": AGENT_USER, "user_principal_name": AGENT_USER_UPN}),
    )
    .await?;
    assert_eq!(r.status(), 201);
    let r = post(
        format!("{t}/users"),
        json!({"object_id": HUMAN, "user_principal_name": "alice@dev.example", "default_scopes": ["Mail.Read"]}),
    )
    .await?;
    assert_eq!(r.status(), 201);
    let r = post(
        format!("{t}/user-tokens"),
        json!({"user_object_id": HUMAN, "client_id": "spa", "audience": "api://x", "scopes": "a b"}),
    )
    .await?;
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await?;
    let claims = claims_of(&emulator, &token["token"], "api://x")?;
    assert_eq!(claims["scp"], "a b");
    assert_eq!(claims["oid"], HUMAN);
    // The registrations work at the token endpoint.
    let (t1_, t2) = t1_t2(&client, &emulator, AGENT).await?;
    let (status, body) = user_fic(
        &client,
        &emulator,
        AGENT,
        &t1_,
        &t2,
        &[("user_id", AGENT_USER)],
        &format!("{GRAPH}/User.Read"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn seed_registers_agents() -> TestResult {
    let emulator = Emulator::start().await?;
    let seed = entra_emulator::Seed::from_json(
        &json!({
            "tenants": [{
                "tenant_id": TENANT,
                "agent_blueprints": [{"client_id": BLUEPRINT, "client_secrets": [BLUEPRINT_SECRET]}],
                "agent_identities": [{"blueprint_client_id": BLUEPRINT, "agent_client_id": AGENT}],
                "agent_users": [{"agent_client_id": AGENT, "object_id": AGENT_USER, "user_principal_name": AGENT_USER_UPN}],
                "users": [{"object_id": HUMAN, "user_principal_name": "alice@dev.example"}]
            }]
        })
        .to_string(),
    )?;
    emulator.apply_seed(&seed)?;
    let client = client(&emulator)?;
    let (t1_, t2) = t1_t2(&client, &emulator, AGENT).await?;
    let (status, body) = user_fic(
        &client,
        &emulator,
        AGENT,
        &t1_,
        &t2,
        &[("user_id", AGENT_USER)],
        &format!("{GRAPH}/User.Read"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert!(
        emulator
            .mint_user_token(TENANT, HUMAN, "a", "b", "c")
            .is_ok()
    );
    Ok(())
}

#[tokio::test]
async fn t1_with_certificate_and_federated_credentials() -> TestResult {
    let (emulator, client) = agents().await?;
    let cert = entra_emulator::testing::client_certificate("blueprint");
    let cert_blueprint = "c2c2c2c2-0000-0000-0000-000000000002";
    emulator.add_agent_blueprint(
        TENANT,
        AppRegistration::new(cert_blueprint).certificate_pem(&cert.cert_pem)?,
    )?;
    let issuer = emulator.add_external_issuer("github")?;
    let fic_blueprint = "c3c3c3c3-0000-0000-0000-000000000003";
    emulator.add_agent_blueprint(
        TENANT,
        AppRegistration::new(fic_blueprint)
            .federated_credential(FederatedCredential::new(&issuer, "repo:org/agent")),
    )?;
    let cert_assertion = cert.client_assertion(
        cert_blueprint,
        &emulator.token_endpoint(TENANT),
        emulator.now(),
    )?;
    let fic_assertion = emulator.mint_external_token(
        "github",
        "repo:org/agent",
        entra_emulator::TOKEN_EXCHANGE_AUDIENCE,
        std::time::Duration::from_secs(600),
    )?;
    for (blueprint, assertion) in [
        (cert_blueprint, cert_assertion.as_str()),
        (fic_blueprint, fic_assertion.as_str()),
    ] {
        let agent = format!("agent-of-{blueprint}");
        emulator.add_agent_identity(TENANT, blueprint, &agent)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", blueprint),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", EXCHANGE_SCOPE),
            ("fmi_path", agent.as_str()),
        ];
        let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
        assert_eq!(status, 200, "{body}");
        let claims = claims_of(&emulator, &body["access_token"], TOKEN_EXCHANGE_APP_ID)?;
        assert_eq!(claims["azp"], blueprint);
        assert_eq!(claims["azpacr"], "2");
        let t1 = body["access_token"].as_str().ok_or("t1")?;
        let (status, body) =
            agent_cc(&client, &emulator, &agent, t1, &format!("{GRAPH}/.default")).await?;
        assert_eq!(status, 200, "{body}");
        let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
        assert_eq!(claims["xms_par_app_azp"], blueprint);
    }
    Ok(())
}

#[tokio::test]
async fn expired_t1_t2_and_user_assertions_are_refused() -> TestResult {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    // A frozen clock that the test moves forward.
    let start = entra_emulator::Clock::system().now();
    let offset = Arc::new(AtomicU64::new(0));
    let clock_offset = Arc::clone(&offset);
    let clock = entra_emulator::Clock::from_fn(move || {
        start + Duration::from_secs(clock_offset.load(Ordering::SeqCst))
    });
    let emulator =
        Emulator::start_with(entra_emulator::EmulatorConfig::default().clock(clock)).await?;
    let client = client(&emulator)?;
    emulator.add_tenant(TENANT)?;
    emulator.add_agent_blueprint(
        TENANT,
        AppRegistration::new(BLUEPRINT).client_secret(BLUEPRINT_SECRET),
    )?;
    emulator.add_agent_identity(TENANT, BLUEPRINT, AGENT)?;
    emulator.add_agent_user(TENANT, AGENT, UserAccount::new(AGENT_USER, AGENT_USER_UPN))?;
    emulator.add_user(TENANT, UserAccount::new(HUMAN, "alice@dev.example"))?;
    let (old_t1, old_t2) = t1_t2(&client, &emulator, AGENT).await?;
    let incoming = emulator.mint_user_token(TENANT, HUMAN, "spa", BLUEPRINT, "access_as_user")?;

    // Two hours later (tokens live one hour, skew is five minutes).
    offset.store(7200, Ordering::SeqCst);
    let scope = format!("{GRAPH}/.default");
    let (status, body) = agent_cc(&client, &emulator, AGENT, &old_t1, &scope).await?;
    assert_eq!((status, code(&body)), (401, Some(700024)), "{body}");
    let fresh_t1 = t1(&client, &emulator, AGENT).await?;
    let (status, body) = user_fic(
        &client,
        &emulator,
        AGENT,
        &fresh_t1,
        &old_t2,
        &[("user_id", AGENT_USER)],
        &format!("{GRAPH}/User.Read"),
    )
    .await?;
    assert_eq!((status, code(&body)), (400, Some(500133)), "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = obo(
        &client,
        &emulator,
        &[
            ("client_id", AGENT),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &fresh_t1),
        ],
        &incoming,
        &format!("{GRAPH}/User.Read"),
    )
    .await?;
    assert_eq!((status, code(&body)), (400, Some(500133)), "{body}");
    Ok(())
}

#[tokio::test]
async fn user_tokens_refresh() -> TestResult {
    let (emulator, client) = agents().await?;
    let (t1, t2) = t1_t2(&client, &emulator, AGENT).await?;
    let (status, body) = user_fic(
        &client,
        &emulator,
        AGENT,
        &t1,
        &t2,
        &[("user_id", AGENT_USER)],
        &format!("{GRAPH}/User.Read openid offline_access profile"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let refresh_token = body["refresh_token"].as_str().ok_or("refresh_token")?;
    let refresh = |client_id: &'static str, credential: Vec<(&'static str, String)>| {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", client_id.to_owned()),
            ("refresh_token", refresh_token.to_owned()),
            ("scope", format!("{GRAPH}/Mail.Read openid offline_access")),
        ];
        form.extend(credential);
        form
    };
    let t1_credential = vec![
        ("client_assertion_type", JWT_BEARER.to_owned()),
        ("client_assertion", t1.clone()),
    ];
    let form = refresh(AGENT, t1_credential.clone());
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!(status, 200, "{body}");
    let claims = claims_of(&emulator, &body["access_token"], GRAPH)?;
    assert_eq!(claims["oid"], AGENT_USER);
    assert_eq!(claims["scp"], "Mail.Read");
    assert_eq!(claims["xms_sub_fct"], "13");
    assert_eq!(claims["xms_par_app_azp"], BLUEPRINT);
    assert!(body.get("refresh_token").is_some() && body.get("id_token").is_some());

    // Another client, an unknown token, no credential.
    let form = refresh(API_APP, vec![("client_secret", API_SECRET.to_owned())]);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!((status, code(&body)), (400, Some(70000)), "{body}");
    let mut form = refresh(AGENT, t1_credential);
    form[2].1 = "not-a-refresh-token".to_owned();
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!((status, code(&body)), (400, Some(70000)), "{body}");
    let form = refresh(AGENT, Vec::new());
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = post_token(&client, &emulator, TENANT, &form).await?;
    assert_eq!((status, code(&body)), (401, Some(7000218)), "{body}");
    Ok(())
}
