//! entra-agent against the emulator: blueprint T1 per `fmi_path`, agent identity tokens,
//! agent users (`user_fic`), on-behalf-of, agentic sessions, and every refusal as a typed
//! error with its AADSTS code. Real HTTPS, real signed JWTs, requests counted in the
//! emulator's log.

use std::sync::Arc;
use std::time::Duration;

use entra_agent::{
    AgentIdentityCredential, AgentSessionId, AgentUser, Blueprint, BlueprintCredential,
    SessionClaimsForm,
};
use entra_core::{
    AuthorityHost, ClientCertificate, ClientCredential, Error, Grant, HttpRequest, HttpResponse,
    HttpTransport, ManualClock, MapEnv, Secret, TokenCredential, TokenRequest, TokenSource,
};
use entra_emulator::{
    AppRegistration, Emulator, FederatedCredential, ManagedIdentity, RecordedRequest,
    TOKEN_EXCHANGE_APP_ID, UserAccount,
};
use entra_mi::{ManagedIdentityCredential, ManagedIdentityId};
use entra_tests::{CapturedLogs, GRAPH, TENANT, client, clock_now, transport};
use serde_json::Value;

const BLUEPRINT: &str = "b1000000-0000-0000-0000-000000000001";
const BLUEPRINT_SECRET: &str = "blueprint-secret-value-4f1d";
const OTHER_BLUEPRINT: &str = "b1000000-0000-0000-0000-000000000002";
const OTHER_SECRET: &str = "other-blueprint-secret-9c2e";
const AGENT_A: &str = "a9e00000-0000-0000-0000-00000000000a";
const AGENT_B: &str = "a9e00000-0000-0000-0000-00000000000b";
const AGENT_C: &str = "a9e00000-0000-0000-0000-00000000000c";
const USER_1: &str = "0a5e0000-0000-0000-0000-000000000001";
const USER_1_UPN: &str = "agent-a-user1@contoso.example";
const USER_2: &str = "0a5e0000-0000-0000-0000-000000000002";
const USER_2_UPN: &str = "agent-a-user2@contoso.example";
const HUMAN: &str = "0a5e0000-0000-0000-0000-0000000000ff";
const APP: &str = "aaaaaaaa-0000-0000-0000-0000000000a1";
const APP_SECRET: &str = "plain-app-secret-value-77aa";
const ARM: &str = "https://management.azure.com/.default";
const EXCHANGE_SCOPE: &str = "api://AzureADTokenExchange/.default";

async fn emulator() -> Emulator {
    CapturedLogs::global();
    let emulator = Emulator::start().await.expect("emulator starts");
    emulator.add_tenant(TENANT).unwrap();
    emulator
        .add_agent_blueprint(
            TENANT,
            AppRegistration::new(BLUEPRINT).client_secret(BLUEPRINT_SECRET),
        )
        .unwrap();
    emulator
        .add_agent_blueprint(
            TENANT,
            AppRegistration::new(OTHER_BLUEPRINT).client_secret(OTHER_SECRET),
        )
        .unwrap();
    for agent in [AGENT_A, AGENT_B] {
        emulator
            .add_agent_identity(TENANT, BLUEPRINT, agent)
            .unwrap();
    }
    emulator
        .add_agent_identity(TENANT, OTHER_BLUEPRINT, AGENT_C)
        .unwrap();
    emulator
        .add_agent_user(TENANT, AGENT_A, UserAccount::new(USER_1, USER_1_UPN))
        .unwrap();
    emulator
        .add_agent_user(TENANT, AGENT_A, UserAccount::new(USER_2, USER_2_UPN))
        .unwrap();
    emulator
        .add_user(TENANT, UserAccount::new(HUMAN, "human@contoso.example"))
        .unwrap();
    emulator
        .add_application(TENANT, AppRegistration::new(APP).client_secret(APP_SECRET))
        .unwrap();
    emulator
}

fn authority(emulator: &Emulator) -> AuthorityHost {
    AuthorityHost::parse(&emulator.https_url()).unwrap()
}

/// A blueprint with a client secret, outside any session (the test process's own
/// environment never leaks in: the environment is an empty map).
fn blueprint_with(
    emulator: &Emulator,
    clock: &ManualClock,
    client_id: &str,
    credential: BlueprintCredential,
) -> Blueprint {
    Blueprint::builder(client_id)
        .tenant(TENANT)
        .unwrap()
        .credential(credential)
        .authority(authority(emulator))
        .transport(transport(emulator))
        .clock(Arc::new(clock.clone()))
        .env(Arc::new(MapEnv::default()))
        .build()
        .unwrap()
}

fn blueprint(emulator: &Emulator, clock: &ManualClock) -> Blueprint {
    blueprint_with(
        emulator,
        clock,
        BLUEPRINT,
        BlueprintCredential::Secret(Secret::new(BLUEPRINT_SECRET)),
    )
}

fn verify(emulator: &Emulator, token: &str, audience: &str) -> Value {
    let validation = emulator.validation(TENANT, audience);
    jsonwebtoken::decode::<Value>(token, &emulator.decoding_key(), &validation)
        .unwrap_or_else(|e| panic!("token does not verify against the emulator's JWKS: {e}"))
        .claims
}

fn facets(claims: &Value, name: &str) -> Vec<u32> {
    claims[name]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect()
}

/// Token requests made with `client_id` for `scope` (as sent).
fn requests_for(emulator: &Emulator, client_id: &str, scope: &str) -> Vec<RecordedRequest> {
    emulator
        .token_requests(TENANT)
        .into_iter()
        .filter(|r| r.client_id() == Some(client_id) && r.form_value("scope") == Some(scope))
        .collect()
}

fn t1_requests(emulator: &Emulator, fmi_path: &str) -> usize {
    requests_for(emulator, BLUEPRINT, EXCHANGE_SCOPE)
        .iter()
        .filter(|r| r.form_value("fmi_path") == Some(fmi_path))
        .count()
}

/// The AADSTS codes of a service error, or a panic naming what came back instead.
fn codes(err: &Error) -> (String, Vec<u32>) {
    match err.service_error() {
        Some(service) => (service.error.clone(), service.codes.clone()),
        None => panic!("expected an AADSTS error, got {err:?}"),
    }
}

#[tokio::test]
async fn t1_is_per_fmi_path_with_the_exchange_audience() {
    let emulator = emulator().await;
    let clock = clock_now();
    let blueprint = blueprint(&emulator, &clock);
    let t1 = blueprint.t1(AGENT_A).await.unwrap();
    assert_eq!(t1.source, TokenSource::Fetched);
    let claims = verify(&emulator, t1.value.token().expose(), TOKEN_EXCHANGE_APP_ID);
    assert!(
        claims["sub"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{AGENT_A}")),
        "T1 sub ends with the fmi_path: {}",
        claims["sub"]
    );
    assert_eq!(claims["azp"], BLUEPRINT);
    assert_eq!(claims["idtyp"], "app");
    let sent = &requests_for(&emulator, BLUEPRINT, EXCHANGE_SCOPE)[0];
    assert_eq!(sent.form_value("fmi_path"), Some(AGENT_A));
    assert_eq!(sent.grant_type(), Some("client_credentials"));

    // Same fmi_path: from the cache. Another agent: its own T1.
    assert_eq!(
        blueprint.t1(AGENT_A).await.unwrap().source,
        TokenSource::Cache
    );
    let t1_b = blueprint.t1(AGENT_B).await.unwrap();
    assert_eq!(t1_b.source, TokenSource::Fetched);
    assert_ne!(t1_b.value.token(), t1.value.token());
    assert_eq!(
        (
            t1_requests(&emulator, AGENT_A),
            t1_requests(&emulator, AGENT_B)
        ),
        (1, 1)
    );

    // An empty fmi_path is refused before anything is sent.
    let err = blueprint.t1("  ").await.unwrap_err();
    assert!(matches!(err, Error::Configuration(_)), "{err:?}");
    assert!(err.to_string().contains("fmi_path"), "{err}");
}

#[tokio::test]
async fn agent_identity_token_carries_the_blueprint_and_t1_is_shared_across_resources() {
    let emulator = emulator().await;
    let clock = clock_now();
    let blueprint = blueprint(&emulator, &clock);
    let agent = blueprint.agent_identity(AGENT_A).unwrap();
    let graph = agent.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    let claims = verify(
        &emulator,
        graph.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(claims["appid"], AGENT_A);
    assert_eq!(claims["azp"], AGENT_A);
    assert_eq!(claims["xms_par_app_azp"], BLUEPRINT);
    assert_eq!(claims["idtyp"], "app");
    assert!(facets(&claims, "xms_act_fct").contains(&11), "{claims}");
    assert!(facets(&claims, "xms_sub_fct").contains(&11), "{claims}");
    let sent = &requests_for(&emulator, AGENT_A, GRAPH)[0];
    assert_eq!(sent.grant_type(), Some("client_credentials"));
    assert_eq!(
        sent.form_value("client_assertion_type"),
        Some(entra_core::JWT_BEARER_ASSERTION_TYPE)
    );
    assert!(!sent.has_form_field("fmi_path"));

    // A second resource of the same agent reuses its T1; repeats are cache hits.
    let arm = agent.acquire(&TokenRequest::new([ARM])).await.unwrap();
    assert_eq!(arm.source, TokenSource::Fetched);
    assert_eq!(
        agent
            .acquire(&TokenRequest::new([GRAPH]))
            .await
            .unwrap()
            .source,
        TokenSource::Cache
    );
    assert_eq!(t1_requests(&emulator, AGENT_A), 1);
    assert_eq!(emulator.token_requests(TENANT).len(), 3, "T1 + two TR");

    // Another agent never gets agent A's T1.
    let b = blueprint.agent_identity(AGENT_B).unwrap();
    let b_token = b.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    assert_eq!(
        verify(
            &emulator,
            b_token.token().expose(),
            "https://graph.microsoft.com"
        )["appid"],
        AGENT_B
    );
    assert_eq!(
        (
            t1_requests(&emulator, AGENT_A),
            t1_requests(&emulator, AGENT_B)
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn t1_is_refreshed_before_it_expires_in_virtual_time() {
    let emulator = emulator().await;
    let clock = clock_now();
    let agent = blueprint(&emulator, &clock)
        .agent_identity(AGENT_A)
        .unwrap();
    agent.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    assert_eq!(t1_requests(&emulator, AGENT_A), 1);
    // One-hour tokens refresh five minutes before expiry: at 56 minutes both the TR and the
    // T1 behind it are due, and the refresh of the TR fetches a new T1 first.
    clock.advance(Duration::from_secs(56 * 60));
    let refreshed = agent.acquire(&TokenRequest::new([GRAPH])).await.unwrap();
    assert_eq!(refreshed.source, TokenSource::Fetched);
    assert_eq!(t1_requests(&emulator, AGENT_A), 2);
    assert_eq!(requests_for(&emulator, AGENT_A, GRAPH).len(), 2);
}

#[tokio::test]
async fn blueprint_with_a_certificate() {
    let emulator = emulator().await;
    let cert = entra_emulator::testing::client_certificate("agent blueprint");
    let cert_blueprint = "b1000000-0000-0000-0000-0000000000ce";
    emulator
        .add_agent_blueprint(
            TENANT,
            AppRegistration::new(cert_blueprint).certificate_der(cert.cert_der.clone()),
        )
        .unwrap();
    let agent = "a9e00000-0000-0000-0000-0000000000ce";
    emulator
        .add_agent_identity(TENANT, cert_blueprint, agent)
        .unwrap();
    let certificate =
        ClientCertificate::from_pem_parts(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
            .unwrap();
    let clock = clock_now();
    let blueprint = blueprint_with(
        &emulator,
        &clock,
        cert_blueprint,
        BlueprintCredential::certificate(certificate),
    );
    let token = blueprint
        .agent_identity(agent)
        .unwrap()
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap();
    let claims = verify(
        &emulator,
        token.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(
        (claims["appid"].as_str(), claims["xms_par_app_azp"].as_str()),
        (Some(agent), Some(cert_blueprint))
    );
    let t1 = &requests_for(&emulator, cert_blueprint, EXCHANGE_SCOPE)[0];
    assert!(t1.has_form_field("client_assertion"));
    assert!(!t1.has_form_field("client_secret"));
}

#[tokio::test]
async fn blueprint_with_a_managed_identity_as_its_federated_credential() {
    let emulator = emulator().await;
    let mi = ManagedIdentity::new(
        TENANT,
        "c1d00000-0000-0000-0000-0000000000b1",
        "0b100000-0000-0000-0000-0000000000b1",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/agent-host",
    );
    emulator.set_system_assigned_identity(mi.clone()).unwrap();
    let mi_blueprint = "b1000000-0000-0000-0000-0000000000f1";
    emulator
        .add_agent_blueprint(
            TENANT,
            AppRegistration::new(mi_blueprint).federated_credential(FederatedCredential::new(
                emulator.issuer(TENANT),
                mi.object_id.clone(),
            )),
        )
        .unwrap();
    let agent = "a9e00000-0000-0000-0000-0000000000f1";
    emulator
        .add_agent_identity(TENANT, mi_blueprint, agent)
        .unwrap();
    let clock = clock_now();
    let managed_identity = ManagedIdentityCredential::builder()
        .identity(ManagedIdentityId::SystemAssigned)
        .env(Arc::new(MapEnv::new([(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            emulator.http_url(),
        )])))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let blueprint = blueprint_with(
        &emulator,
        &clock,
        mi_blueprint,
        BlueprintCredential::federated(managed_identity),
    );
    let token = blueprint
        .agent_identity(agent)
        .unwrap()
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap();
    let claims = verify(
        &emulator,
        token.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(claims["xms_par_app_azp"], mi_blueprint);
    // The managed identity was asked for the exchange audience, once.
    let imds: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/metadata/identity/oauth2/token"))
        .collect();
    assert_eq!(imds.len(), 1);
    assert!(
        imds[0]
            .query
            .as_deref()
            .unwrap_or_default()
            .contains("AzureADTokenExchange"),
        "{:?}",
        imds[0].query
    );
}

#[tokio::test]
async fn sovereign_clouds_use_their_exchange_audience() {
    /// Sends what a client addressed to a sovereign cloud's authority to the emulator instead.
    #[derive(Debug)]
    struct Redirect {
        to: url::Url,
        inner: Arc<dyn HttpTransport>,
    }
    #[async_trait::async_trait]
    impl HttpTransport for Redirect {
        async fn send(&self, mut request: HttpRequest) -> Result<HttpResponse, Error> {
            let path = request.url.path().to_owned();
            request.url = self.to.join(&path).unwrap();
            self.inner.send(request).await
        }
    }
    let emulator = emulator().await;
    let clock = clock_now();
    for (host, audience) in [
        (
            "https://login.microsoftonline.us",
            "api://AzureADTokenExchangeUSGov",
        ),
        (
            "https://login.chinacloudapi.cn",
            "api://AzureADTokenExchangeChina",
        ),
    ] {
        let redirect = Redirect {
            to: url::Url::parse(&emulator.https_url()).unwrap(),
            inner: transport(&emulator),
        };
        let blueprint = Blueprint::builder(BLUEPRINT)
            .tenant(TENANT)
            .unwrap()
            .credential(BlueprintCredential::Secret(Secret::new(BLUEPRINT_SECRET)))
            .authority(AuthorityHost::parse(host).unwrap())
            .transport(Arc::new(redirect))
            .clock(Arc::new(clock.clone()))
            .env(Arc::new(MapEnv::default()))
            .build()
            .unwrap();
        blueprint.t1(AGENT_A).await.unwrap();
        let scope = format!("{audience}/.default");
        assert_eq!(
            requests_for(&emulator, BLUEPRINT, &scope).len(),
            1,
            "{host} asks for {scope}"
        );
    }
}

#[tokio::test]
async fn refusals_are_typed_errors_with_their_aadsts_codes() {
    let emulator = emulator().await;
    let clock = clock_now();
    let blueprint = blueprint(&emulator, &clock);

    // A T1 minted for agent B presented by agent A.
    let t1_b = blueprint.t1(AGENT_B).await.unwrap().value.token().clone();
    let wrong_t1 = client(
        &emulator,
        AGENT_A,
        ClientCredential::assertion_fn(move |_| {
            let t1 = t1_b.clone();
            async move { Ok(t1) }
        }),
        &clock,
    );
    let err = wrong_t1
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap_err();
    assert_eq!(codes(&err), ("invalid_client".to_owned(), vec![700211]));

    // Agent A used through a blueprint that is not its parent.
    let other = blueprint_with(
        &emulator,
        &clock,
        OTHER_BLUEPRINT,
        BlueprintCredential::Secret(Secret::new(OTHER_SECRET)),
    );
    let err = other
        .agent_identity(AGENT_A)
        .unwrap()
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap_err();
    assert_eq!(codes(&err), ("invalid_client".to_owned(), vec![700213]));

    // An empty fmi_path sent anyway (a client that does not check it).
    let raw_blueprint = client(
        &emulator,
        BLUEPRINT,
        ClientCredential::Secret(Secret::new(BLUEPRINT_SECRET)),
        &clock,
    );
    let err = raw_blueprint
        .exchange(
            &TokenRequest::new([EXCHANGE_SCOPE]),
            &Grant::client_credentials().with_field("fmi_path", ""),
        )
        .await
        .unwrap_err();
    assert_eq!(codes(&err), ("invalid_request".to_owned(), vec![90100]));

    // user_fic without a user, and with both selectors.
    let agent = blueprint.agent_identity(AGENT_A).unwrap();
    let t1_a = blueprint.t1(AGENT_A).await.unwrap().value.token().clone();
    let t2 = agent
        .get_token(&TokenRequest::new([EXCHANGE_SCOPE]))
        .await
        .unwrap()
        .token()
        .clone();
    let raw_agent = client(
        &emulator,
        AGENT_A,
        ClientCredential::assertion_fn(move |_| {
            let t1 = t1_a.clone();
            async move { Ok(t1) }
        }),
        &clock,
    );
    let user_fic = |fields: &[(&'static str, &str)]| {
        let mut grant = Grant::new("user_fic")
            .with_secret_field("user_federated_identity_credential", t2.clone())
            .with_field("client_info", "1");
        for (name, value) in fields {
            grant = grant.with_field(*name, *value);
        }
        grant
    };
    let delegated = TokenRequest::new(["https://graph.microsoft.com/User.Read", "openid"]);
    let err = raw_agent
        .exchange(&delegated, &user_fic(&[]))
        .await
        .unwrap_err();
    assert_eq!(codes(&err), ("invalid_request".to_owned(), vec![90014]));
    let err = raw_agent
        .exchange(
            &delegated,
            &user_fic(&[("user_id", USER_1), ("username", USER_1_UPN)]),
        )
        .await
        .unwrap_err();
    assert_eq!(codes(&err), ("invalid_request".to_owned(), vec![90100]));

    // Our API cannot even express those: a typed configuration error instead.
    for (id, name) in [
        (None, None),
        (Some(USER_1), Some(USER_1_UPN)),
        (Some(" "), None),
    ] {
        let err = AgentUser::from_parts(id, name).unwrap_err();
        assert!(matches!(err, Error::Configuration(_)), "{err:?}");
    }

    // A user that is not an agent user of this agent identity.
    let err = agent
        .agent_user(AgentUser::object_id(HUMAN).unwrap())
        .get_token(&TokenRequest::new([
            "https://graph.microsoft.com/User.Read",
        ]))
        .await
        .unwrap_err();
    assert_eq!(codes(&err), ("invalid_grant".to_owned(), vec![50034]));

    // On-behalf-of with an incoming token addressed to someone else.
    let incoming = emulator
        .mint_user_token(
            TENANT,
            HUMAN,
            APP,
            "api://not-the-blueprint",
            "access_as_user",
        )
        .unwrap();
    let err = agent
        .on_behalf_of(Secret::new(incoming))
        .unwrap()
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap_err();
    assert_eq!(codes(&err), ("invalid_grant".to_owned(), vec![500131]));
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("500131"), "the code is shown: {shown}");
}

#[tokio::test]
async fn agent_user_tokens_are_delegated_and_cached_per_user() {
    let emulator = emulator().await;
    let clock = clock_now();
    let agent = blueprint(&emulator, &clock)
        .agent_identity(AGENT_A)
        .unwrap();
    let user_read = TokenRequest::new(["https://graph.microsoft.com/User.Read"]);

    let by_id = agent.agent_user(AgentUser::object_id(USER_1).unwrap());
    let token = by_id.acquire(&user_read).await.unwrap();
    assert_eq!(token.source, TokenSource::Fetched);
    let claims = verify(
        &emulator,
        token.value.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(claims["idtyp"], "user");
    assert_eq!(claims["oid"], USER_1);
    assert_eq!(claims["scp"], "User.Read");
    assert_eq!(claims["appid"], AGENT_A);
    assert_eq!(claims["xms_par_app_azp"], BLUEPRINT);
    assert!(facets(&claims, "xms_sub_fct").contains(&13), "{claims}");

    let sent: Vec<_> = emulator
        .token_requests(TENANT)
        .into_iter()
        .filter(|r| r.grant_type() == Some("user_fic"))
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].client_id(), Some(AGENT_A));
    assert_eq!(sent[0].form_value("user_id"), Some(USER_1));
    assert!(!sent[0].has_form_field("username"));
    assert_eq!(sent[0].form_value("client_info"), Some("1"));
    let scope = sent[0].form_value("scope").unwrap();
    for s in [
        "https://graph.microsoft.com/User.Read",
        "openid",
        "offline_access",
        "profile",
    ] {
        assert!(scope.split(' ').any(|x| x == s), "{s} in {scope}");
    }
    assert!(sent[0].has_form_field("user_federated_identity_credential"));
    // T1 → T2 → user_fic: one of each.
    assert_eq!(t1_requests(&emulator, AGENT_A), 1);
    assert_eq!(requests_for(&emulator, AGENT_A, EXCHANGE_SCOPE).len(), 1);

    // The same user again: a hit. Another user (by UPN): a miss, reusing T1 and T2.
    assert_eq!(
        by_id.acquire(&user_read).await.unwrap().source,
        TokenSource::Cache
    );
    let by_name = agent.agent_user(AgentUser::username(USER_2_UPN).unwrap());
    let other = by_name.acquire(&user_read).await.unwrap();
    assert_eq!(other.source, TokenSource::Fetched);
    assert_eq!(
        verify(
            &emulator,
            other.value.token().expose(),
            "https://graph.microsoft.com"
        )["oid"],
        USER_2
    );
    let user_fic = emulator.count(|r| r.grant_type() == Some("user_fic"));
    assert_eq!(user_fic, 2);
    assert_eq!(t1_requests(&emulator, AGENT_A), 1);
    assert_eq!(requests_for(&emulator, AGENT_A, EXCHANGE_SCOPE).len(), 1);
}

#[tokio::test]
async fn on_behalf_of_is_cached_per_incoming_token() {
    let emulator = emulator().await;
    let clock = clock_now();
    let agent = blueprint(&emulator, &clock)
        .agent_identity(AGENT_A)
        .unwrap();
    let incoming = emulator
        .mint_user_token(TENANT, HUMAN, APP, BLUEPRINT, "access_as_user")
        .unwrap();
    let obo = agent.on_behalf_of(Secret::new(incoming.clone())).unwrap();
    let token = obo.acquire(&TokenRequest::new([GRAPH])).await.unwrap();
    assert_eq!(token.source, TokenSource::Fetched);
    let claims = verify(
        &emulator,
        token.value.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(claims["oid"], HUMAN);
    assert_eq!(claims["idtyp"], "user");
    assert_eq!(claims["appid"], AGENT_A);
    assert_eq!(claims["xms_par_app_azp"], BLUEPRINT);
    let sent: Vec<_> = emulator
        .token_requests(TENANT)
        .into_iter()
        .filter(|r| r.grant_type() == Some(entra_agent::JWT_BEARER_GRANT))
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].form_value("requested_token_use"),
        Some("on_behalf_of")
    );
    assert!(sent[0].has_form_field("assertion"));

    // The same incoming token: a hit, even through a new credential value.
    let again = agent.on_behalf_of(Secret::new(incoming)).unwrap();
    assert_eq!(
        again
            .acquire(&TokenRequest::new([GRAPH]))
            .await
            .unwrap()
            .source,
        TokenSource::Cache
    );
    // Another incoming token of the same user: a miss (never another caller's token).
    let second = emulator
        .mint_user_token(
            TENANT,
            HUMAN,
            APP,
            &format!("api://{BLUEPRINT}"),
            "access_as_user",
        )
        .unwrap();
    let other = agent.on_behalf_of(Secret::new(second)).unwrap();
    assert_eq!(
        other
            .acquire(&TokenRequest::new([GRAPH]))
            .await
            .unwrap()
            .source,
        TokenSource::Fetched
    );

    // An ordinary confidential client: the incoming token is addressed to it.
    let app_incoming = emulator
        .mint_user_token(TENANT, HUMAN, "some-spa", APP, "access_as_user")
        .unwrap();
    let app = client(
        &emulator,
        APP,
        ClientCredential::Secret(Secret::new(APP_SECRET)),
        &clock,
    );
    let token = entra_agent::OnBehalfOfCredential::new(app, Secret::new(app_incoming))
        .unwrap()
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap();
    let claims = verify(
        &emulator,
        token.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(
        (claims["oid"].as_str(), claims["appid"].as_str()),
        (Some(HUMAN), Some(APP))
    );
}

/// Which side of the session boundary a call is made from.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Manual,
    Session(&'static str),
}

fn as_caller(agent: &AgentIdentityCredential, caller: Caller) -> AgentIdentityCredential {
    match caller {
        Caller::Manual => agent.outside_session(),
        Caller::Session(id) => agent.in_session(AgentSessionId::new(id).unwrap()),
    }
}

#[tokio::test]
async fn agentic_session_matrix() {
    let emulator = emulator().await;
    let clock = clock_now();
    let agent = blueprint(&emulator, &clock)
        .agent_identity(AGENT_A)
        .unwrap();
    let cases = [
        (Caller::Manual, Caller::Manual, TokenSource::Cache),
        (
            Caller::Session("s1"),
            Caller::Session("s1"),
            TokenSource::Cache,
        ),
        (Caller::Manual, Caller::Session("s1"), TokenSource::Fetched),
        (Caller::Session("s1"), Caller::Manual, TokenSource::Fetched),
        (
            Caller::Session("s1"),
            Caller::Session("s2"),
            TokenSource::Fetched,
        ),
    ];
    for (n, (first, second, expected)) in cases.into_iter().enumerate() {
        // A resource of its own per case, so earlier cases cannot answer.
        let resource = format!("https://case-{n}.example");
        emulator.add_resource(&resource).unwrap();
        let scope = format!("{resource}/.default");
        let request = TokenRequest::new([scope.as_str()]);
        let a = as_caller(&agent, first).acquire(&request).await.unwrap();
        assert_eq!(a.source, TokenSource::Fetched, "case {n}: first call");
        let b = as_caller(&agent, second).acquire(&request).await.unwrap();
        assert_eq!(b.source, expected, "case {n}: {first:?} then {second:?}");
        let sent = requests_for(&emulator, AGENT_A, &scope);
        let expected_requests = if expected == TokenSource::Cache { 1 } else { 2 };
        assert_eq!(
            sent.len(),
            expected_requests,
            "case {n}: counted in the emulator"
        );
        // What was sent and what came back, for each call.
        for (caller, request, token) in [(first, &sent[0], &a), (second, sent.last().unwrap(), &b)]
        {
            let claims = verify(&emulator, token.value.token().expose(), &resource);
            match caller {
                Caller::Manual => {
                    assert!(!request.has_form_field("client_session"), "case {n}");
                    assert!(claims.get("xms_cli_ses").is_none(), "case {n}");
                }
                Caller::Session(id) => {
                    if token.source == TokenSource::Fetched {
                        assert_eq!(request.form_value("client_session"), Some(id), "case {n}");
                        assert!(
                            request
                                .form_value("claims")
                                .unwrap_or_default()
                                .contains("xms_cli_sid"),
                            "case {n}"
                        );
                    }
                    assert_eq!(claims["xms_cli_ses"], id, "case {n}");
                    assert!(facets(&claims, "xms_sess_fct").contains(&21), "case {n}");
                }
            }
        }
    }
}

#[tokio::test]
async fn session_from_the_environment_the_seed_form_and_eviction() {
    let emulator = emulator().await;
    let clock = clock_now();
    let blueprint = Blueprint::builder(BLUEPRINT)
        .tenant(TENANT)
        .unwrap()
        .credential(BlueprintCredential::Secret(Secret::new(BLUEPRINT_SECRET)))
        .authority(authority(&emulator))
        .transport(transport(&emulator))
        .clock(Arc::new(clock.clone()))
        .env(Arc::new(MapEnv::new([(
            "COPILOT_AGENT_SESSION_ID",
            "env-session-1",
        )])))
        .build()
        .unwrap();
    assert_eq!(
        blueprint.agent_session().map(AgentSessionId::as_str),
        Some("env-session-1")
    );
    let agent = blueprint.agent_identity(AGENT_A).unwrap();
    let token = agent.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    let claims = verify(
        &emulator,
        token.token().expose(),
        "https://graph.microsoft.com",
    );
    assert_eq!(claims["xms_cli_ses"], "env-session-1");
    // T1 is an intermediate: never sent in a session.
    let t1 = &requests_for(&emulator, BLUEPRINT, EXCHANGE_SCOPE)[0];
    assert!(!t1.has_form_field("client_session"));
    assert!(!t1.has_form_field("claims"));

    // The seed form is producible and understood.
    let seed = agent
        .in_session(AgentSessionId::new("seed-session").unwrap())
        .with_session_claims_form(SessionClaimsForm::Seed);
    let token = seed.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    let sent = requests_for(&emulator, AGENT_A, GRAPH);
    let claims_sent = sent.last().unwrap().form_value("claims").unwrap();
    assert!(claims_sent.contains("xms_agent_session"), "{claims_sent}");
    assert_eq!(
        verify(
            &emulator,
            token.token().expose(),
            "https://graph.microsoft.com"
        )["xms_cli_ses"],
        "seed-session"
    );

    // Agent user tokens are session-bound too. Then the session ends: its tokens go, the
    // others stay.
    let user = agent.agent_user(AgentUser::object_id(USER_1).unwrap());
    user.get_token(&TokenRequest::new([
        "https://graph.microsoft.com/User.Read",
    ]))
    .await
    .unwrap();
    let manual = agent.outside_session();
    manual.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    let env_session = AgentSessionId::new("env-session-1").unwrap();
    assert_eq!(
        blueprint.evict_session(&env_session),
        2,
        "the TR and the agent-user token"
    );
    assert_eq!(blueprint.evict_session(&env_session), 0);
    assert_eq!(
        agent
            .acquire(&TokenRequest::new([GRAPH]))
            .await
            .unwrap()
            .source,
        TokenSource::Fetched
    );
    assert_eq!(
        seed.acquire(&TokenRequest::new([GRAPH]))
            .await
            .unwrap()
            .source,
        TokenSource::Cache
    );
    assert_eq!(
        manual
            .acquire(&TokenRequest::new([GRAPH]))
            .await
            .unwrap()
            .source,
        TokenSource::Cache
    );
    // T1 survived the eviction: still one.
    assert_eq!(t1_requests(&emulator, AGENT_A), 1);

    // An invalid session id in the environment is a clear configuration error.
    let err = Blueprint::builder(BLUEPRINT)
        .tenant(TENANT)
        .unwrap()
        .credential(BlueprintCredential::Secret(Secret::new(BLUEPRINT_SECRET)))
        .env(Arc::new(MapEnv::new([(
            "COPILOT_AGENT_SESSION_ID",
            "bad\u{7}id",
        )])))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Claims(_)), "{err:?}");
}

#[tokio::test]
async fn concurrent_first_calls_make_one_t1_and_one_tr() {
    let emulator = emulator().await;
    let clock = clock_now();
    let agent = blueprint(&emulator, &clock)
        .agent_identity(AGENT_A)
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let agent = agent.clone();
        tasks.push(tokio::spawn(async move {
            agent.get_token(&TokenRequest::new([GRAPH])).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(t1_requests(&emulator, AGENT_A), 1);
    assert_eq!(requests_for(&emulator, AGENT_A, GRAPH).len(), 1);
}

#[tokio::test]
async fn no_secret_reaches_logs_or_errors_in_the_agent_flows() {
    let emulator = emulator().await;
    let clock = clock_now();
    let blueprint = blueprint(&emulator, &clock);
    let agent = blueprint
        .agent_identity(AGENT_A)
        .unwrap()
        .in_session(AgentSessionId::new("leak-check-session").unwrap());
    let mut secrets = vec![BLUEPRINT_SECRET.to_owned(), OTHER_SECRET.to_owned()];
    let mut shown = String::new();
    let t1 = blueprint.t1(AGENT_A).await.unwrap().value;
    secrets.push(t1.token().expose().to_owned());
    let tr = agent.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    secrets.push(tr.token().expose().to_owned());
    let user = agent.agent_user(AgentUser::username(USER_1_UPN).unwrap());
    let ut = user
        .get_token(&TokenRequest::new([
            "https://graph.microsoft.com/User.Read",
        ]))
        .await
        .unwrap();
    secrets.push(ut.token().expose().to_owned());
    let incoming = emulator
        .mint_user_token(TENANT, HUMAN, APP, BLUEPRINT, "access_as_user")
        .unwrap();
    secrets.push(incoming.clone());
    let obo = agent.on_behalf_of(Secret::new(incoming)).unwrap();
    secrets.push(
        obo.get_token(&TokenRequest::new([GRAPH]))
            .await
            .unwrap()
            .token()
            .expose()
            .to_owned(),
    );
    shown.push_str(&format!(
        "{blueprint:?} {agent:?} {user:?} {obo:?} {t1:?} {tr:?} {ut:?}"
    ));
    // Failure paths: wrong parent, unknown user, bad incoming token.
    let other = blueprint_with(
        &emulator,
        &clock,
        OTHER_BLUEPRINT,
        BlueprintCredential::Secret(Secret::new(OTHER_SECRET)),
    );
    let err = other
        .agent_identity(AGENT_A)
        .unwrap()
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap_err();
    shown.push_str(&format!("{err} {err:?}"));
    let err = agent
        .agent_user(AgentUser::object_id(HUMAN).unwrap())
        .get_token(&TokenRequest::new([
            "https://graph.microsoft.com/User.Read",
        ]))
        .await
        .unwrap_err();
    shown.push_str(&format!("{err} {err:?}"));
    let err = agent
        .on_behalf_of(Secret::new("not.a.jwt-but-secret-incoming"))
        .unwrap()
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap_err();
    secrets.push("not.a.jwt-but-secret-incoming".to_owned());
    shown.push_str(&format!("{err} {err:?}"));
    let request_log = format!("{:?}", emulator.requests());

    let log = CapturedLogs::global().text();
    assert!(log.contains("entra.token"), "spans are logged");
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !log.contains(secret.as_str()),
            "secret #{i} reached the log"
        );
        assert!(
            !shown.contains(secret.as_str()),
            "secret #{i} reached Debug/Display"
        );
        assert!(
            !request_log.contains(secret.as_str()),
            "secret #{i} reached the emulator's request log"
        );
    }
    assert!(!log.contains("eyJ"), "something JWT-shaped reached the log");
    assert!(
        !shown.contains("eyJ"),
        "something JWT-shaped reached Debug/Display"
    );
}

#[test]
fn a_client_without_tenant_or_credential_says_what_is_missing() {
    let err = Blueprint::builder(BLUEPRINT)
        .credential(BlueprintCredential::Secret(Secret::new("x")))
        .env(Arc::new(MapEnv::default()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("tenant"), "{err}");
    let err = Blueprint::builder(BLUEPRINT)
        .tenant(TENANT)
        .unwrap()
        .env(Arc::new(MapEnv::default()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("credential"), "{err}");
    let blueprint = Blueprint::builder(BLUEPRINT)
        .tenant(TENANT)
        .unwrap()
        .credential(BlueprintCredential::Secret(Secret::new("x")))
        .env(Arc::new(MapEnv::default()))
        .build()
        .unwrap();
    let err = blueprint.agent_identity("").unwrap_err();
    assert!(matches!(err, Error::Configuration(_)));
    let _: &dyn TokenCredential = &blueprint;
}
