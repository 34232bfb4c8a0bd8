//! `TokenClient` against a scripted transport: form building, claims merging, caching,
//! retries with virtual time, and error mapping. (Real HTTP against the emulator is in the
//! workspace's `tests/` crate.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use entra_core::entra_claims::{AgentSessionId, Claims, ClientCapabilities, SessionClaimsForm};
use entra_core::{
    ClientCredential, Error, Grant, HttpRequest, HttpResponse, HttpTransport, ManualClock,
    ResponseProblem, Secret, TokenClient, TokenRequest, TokenSource, TransportErrorKind,
};
use http::HeaderValue;

/// What the transport saw of one request: URL, form fields, header names.
type Seen = (String, Vec<(String, String)>, Vec<String>);

#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<HttpResponse, Error>>>,
    seen: Mutex<Vec<Seen>>,
}

impl Scripted {
    fn new(answers: Vec<Result<HttpResponse, Error>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into()),
            seen: Mutex::default(),
        })
    }
    fn forms(&self) -> Vec<Vec<(String, String)>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.1.clone())
            .collect()
    }
    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

#[async_trait]
impl HttpTransport for Scripted {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let form = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let headers = request.headers.keys().map(|k| k.to_string()).collect();
        self.seen
            .lock()
            .unwrap()
            .push((request.url.to_string(), form, headers));
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Ok(token("default-token", 3600)))
    }
}

fn json(status: u16, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(status, body);
    r.headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn token(value: &str, expires_in: u64) -> HttpResponse {
    json(
        200,
        format!(
            r#"{{"token_type":"Bearer","expires_in":{expires_in},"ext_expires_in":{expires_in},"access_token":"{value}"}}"#
        ),
    )
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn client(transport: Arc<Scripted>, clock: &ManualClock) -> TokenClient {
    TokenClient::builder("app-1")
        .tenant("tenant-1")
        .unwrap()
        .credential(ClientCredential::Secret(Secret::new("s3cret-value")))
        .transport(transport)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

const GRAPH: &str = "https://graph.microsoft.com/.default";

#[tokio::test]
async fn client_secret_form_and_cache_hit() {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let transport = Scripted::new(vec![Ok(token("T1", 3600))]);
    let client = client(transport.clone(), &clock);
    let request = TokenRequest::new([GRAPH]);
    let first = client
        .exchange(&request, &Grant::client_credentials())
        .await
        .unwrap();
    assert_eq!(
        (first.value.token().expose(), first.source),
        ("T1", TokenSource::Fetched)
    );
    let second = client
        .exchange(&request, &Grant::client_credentials())
        .await
        .unwrap();
    assert_eq!(second.source, TokenSource::Cache);
    assert_eq!(transport.count(), 1);
    let form = &transport.forms()[0];
    assert_eq!(field(form, "grant_type"), Some("client_credentials"));
    assert_eq!(field(form, "client_id"), Some("app-1"));
    assert_eq!(field(form, "client_secret"), Some("s3cret-value"));
    assert_eq!(field(form, "scope"), Some(GRAPH));
    assert_eq!(field(form, "claims"), None);
    let seen = transport.seen.lock().unwrap();
    assert_eq!(
        seen[0].0,
        "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token"
    );
    assert!(seen[0].2.iter().any(|h| h == "client-request-id"));
}

#[tokio::test]
async fn capabilities_challenge_client_claims_and_session_are_merged_and_keyed() {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let transport = Scripted::new(vec![]);
    let client = TokenClient::builder("app-1")
        .tenant("tenant-1")
        .unwrap()
        .client_capabilities(ClientCapabilities::new(["cp1"]).unwrap())
        .transport(transport.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let plain = TokenRequest::new([GRAPH]);
    client.get_token(&plain).await.unwrap();
    assert_eq!(
        field(&transport.forms()[0], "claims"),
        Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#)
    );
    // Capabilities alone do not bypass the cache.
    client.get_token(&plain).await.unwrap();
    assert_eq!(transport.count(), 1);

    // Client claims key the cache: same claims hit, different claims miss.
    let cc = |v: &str| {
        Claims::parse(&format!(
            r#"{{"access_token":{{"acrs":{{"value":"{v}"}}}}}}"#
        ))
        .unwrap()
    };
    client
        .get_token(&plain.clone().with_client_claims(cc("c1")))
        .await
        .unwrap();
    client
        .get_token(&plain.clone().with_client_claims(cc("c1")))
        .await
        .unwrap();
    assert_eq!(transport.count(), 2);
    client
        .get_token(&plain.clone().with_client_claims(cc("c2")))
        .await
        .unwrap();
    assert_eq!(transport.count(), 3);
    assert_eq!(
        field(&transport.forms()[2], "claims"),
        Some(r#"{"access_token":{"acrs":{"value":"c2"},"xms_cc":{"values":["cp1"]}}}"#)
    );

    // A claims challenge bypasses the cache and keeps the capabilities.
    let challenge =
        Claims::parse(r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#)
            .unwrap();
    client
        .get_token(&plain.clone().with_claims_challenge(challenge.clone()))
        .await
        .unwrap();
    client
        .get_token(&plain.clone().with_claims_challenge(challenge))
        .await
        .unwrap();
    assert_eq!(transport.count(), 5);
    assert_eq!(
        field(&transport.forms()[4], "claims"),
        Some(
            r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"},"xms_cc":{"values":["cp1"]}}}"#
        )
    );

    // Agentic session: released claims form, client_session, and its own cache partition.
    let session = AgentSessionId::new("session-1").unwrap();
    let in_session = plain
        .clone()
        .with_agent_session(session.clone(), SessionClaimsForm::Released);
    client.get_token(&in_session).await.unwrap();
    assert_eq!(transport.count(), 6, "manual -> agent misses");
    let form = &transport.forms()[5];
    assert_eq!(field(form, "client_session"), Some("session-1"));
    assert_eq!(
        field(form, "claims"),
        Some(
            r#"{"access_token":{"xms_cc":{"values":["cp1"]},"xms_cli_sid":{"values":["session-1"]}}}"#
        )
    );
    client.get_token(&in_session).await.unwrap();
    assert_eq!(transport.count(), 6, "agent -> agent in one session hits");
    let other = plain.clone().with_agent_session(
        AgentSessionId::new("session-2").unwrap(),
        SessionClaimsForm::Seed,
    );
    client.get_token(&other).await.unwrap();
    assert_eq!(transport.count(), 7, "session 1 -> session 2 misses");
    assert_eq!(
        field(&transport.forms()[6], "claims"),
        Some(
            r#"{"access_token":{"xms_agent_session":{"essential":true,"value":"session-2"},"xms_cc":{"values":["cp1"]}}}"#
        )
    );
}

#[tokio::test]
async fn retries_once_on_5xx_honouring_retry_after_in_virtual_time() {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let mut busy = json(429, r#"{"error":"temporarily_unavailable"}"#.to_owned());
    busy.headers
        .insert("retry-after", HeaderValue::from_static("7"));
    let transport = Scripted::new(vec![Ok(busy), Ok(token("T", 3600))]);
    let c = client_for(&transport, &clock);
    let got = c.get_token(&TokenRequest::new([GRAPH])).await.unwrap();
    assert_eq!(got.token().expose(), "T");
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(7)]);
    assert_eq!(transport.count(), 2);

    // 500 twice: one retry after the default second, then the error.
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let transport = Scripted::new(vec![
        Ok(json(500, "{}".to_owned())),
        Ok(json(
            503,
            r#"{"error":"server_error","error_codes":[50000]}"#.to_owned(),
        )),
    ]);
    let c = client_for(&transport, &clock);
    let err = c.get_token(&TokenRequest::new([GRAPH])).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.service_error().unwrap().has_code(50000));
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(1)]);
    assert_eq!(transport.count(), 2);

    // A dropped connection is retried too; a 400 is not.
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let reset = Error::Transport {
        endpoint: "e".into(),
        kind: TransportErrorKind::Io,
        source: None,
    };
    let transport = Scripted::new(vec![Err(reset), Ok(token("T", 3600))]);
    assert!(
        client_for(&transport, &clock)
            .get_token(&TokenRequest::new([GRAPH]))
            .await
            .is_ok()
    );
    let transport = Scripted::new(vec![Ok(json(
        400,
        r#"{"error":"invalid_scope"}"#.to_owned(),
    ))]);
    let err = client_for(&transport, &clock)
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap_err();
    assert_eq!(err.service_error().unwrap().error, "invalid_scope");
    assert_eq!(transport.count(), 1);
}

fn client_for(transport: &Arc<Scripted>, clock: &ManualClock) -> TokenClient {
    client(transport.clone(), clock)
}

#[tokio::test]
async fn refresh_in_drives_proactive_refresh() {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let transport = Scripted::new(vec![
        Ok(json(200, r#"{"token_type":"Bearer","expires_in":"86400","refresh_in":"600","access_token":"old"}"#.to_owned())),
        Ok(token("new", 86400)),
    ]);
    let client = client(transport.clone(), &clock);
    let request = TokenRequest::new([GRAPH]);
    let old = client.get_token(&request).await.unwrap();
    assert_eq!(
        old.refresh_on(),
        old.expires_on() - Duration::from_secs(86400 - 600)
    );
    clock.advance(Duration::from_secs(599 - 30)); // before any jitter window
    assert_eq!(
        client.get_token(&request).await.unwrap().token().expose(),
        "old"
    );
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        client.get_token(&request).await.unwrap().token().expose(),
        "new"
    );
    assert_eq!(transport.count(), 2);
}

#[tokio::test]
async fn assertions_are_fresh_for_every_attempt() {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let transport = Scripted::new(vec![Ok(json(500, "{}".to_owned())), Ok(token("T", 3600))]);
    let counter = Arc::new(Mutex::new(0));
    let c = counter.clone();
    let client = TokenClient::builder("agent-id")
        .tenant("tenant-1")
        .unwrap()
        .credential(ClientCredential::assertion_fn(move |ctx| {
            let c = c.clone();
            async move {
                assert_eq!(ctx.client_id, "agent-id");
                let mut n = c.lock().unwrap();
                *n += 1;
                Ok(Secret::new(format!("assertion-{n}")))
            }
        }))
        .transport(transport.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let grant = Grant::client_credentials().with_fmi_path("agent-a");
    client
        .exchange(
            &TokenRequest::new(["api://AzureADTokenExchange/.default"]),
            &grant,
        )
        .await
        .unwrap();
    let forms = transport.forms();
    assert_eq!(field(&forms[0], "client_assertion"), Some("assertion-1"));
    assert_eq!(field(&forms[1], "client_assertion"), Some("assertion-2"));
    assert_eq!(
        field(&forms[1], "client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(field(&forms[1], "fmi_path"), Some("agent-a"));
    // Another fmi_path is another token.
    let b = Grant::client_credentials().with_fmi_path("agent-b");
    let got = client
        .exchange(
            &TokenRequest::new(["api://AzureADTokenExchange/.default"]),
            &b,
        )
        .await
        .unwrap();
    assert_eq!(got.source, TokenSource::Fetched);
}

#[tokio::test]
async fn bad_requests_fail_before_the_network() {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let transport = Scripted::new(vec![]);
    let client = client(transport.clone(), &clock);
    assert!(matches!(
        client
            .get_token(&TokenRequest::new(Vec::<String>::new()))
            .await,
        Err(Error::Configuration(_))
    ));
    assert!(matches!(
        client
            .get_token(&TokenRequest::new([GRAPH]).with_tenant("../x"))
            .await,
        Err(Error::Configuration(_))
    ));
    assert_eq!(transport.count(), 0);
    let transport = Scripted::new(vec![Ok(HttpResponse::new(200, "<html>"))]);
    let err = client_for(&transport, &clock)
        .get_token(&TokenRequest::new([GRAPH]))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::UnexpectedResponse {
            problem: ResponseProblem::NotJson { .. },
            ..
        }
    ));
    assert!(
        TokenClient::builder("app").build().is_err(),
        "a tenant is required"
    );
    assert!(
        TokenClient::builder("app")
            .tenant("t")
            .unwrap()
            .token_endpoint(url::Url::parse("http://example.com/token").unwrap())
            .build()
            .is_err(),
        "plain http off loopback is refused"
    );
}

/// Captures everything `tracing` writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let error_body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"trace_id":"t","correlation_id":"c"}"#;
    let transport = Scripted::new(vec![
        Ok(json(500, "{}".to_owned())),
        Ok(token("eyJ-ACCESS-TOKEN-SECRET", 3600)),
        Ok(json(401, error_body.to_owned())),
        Ok(json(
            200,
            r#"{"access_token":"eyJ-SECOND-SECRET","expires_in":"nope"}"#.to_owned(),
        )),
    ]);
    let client = TokenClient::builder("app-1")
        .tenant("tenant-1")
        .unwrap()
        .credential(ClientCredential::Secret(Secret::new("CLIENT-SECRET-VALUE")))
        .client_capabilities(ClientCapabilities::new(["cp1"]).unwrap())
        .transport(transport.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let claims = Claims::parse(r#"{"access_token":{"CLAIMS-SECRET":{"essential":true}}}"#).unwrap();
    let mut shown = String::new();
    let ok = client
        .get_token(&TokenRequest::new([GRAPH]).with_client_claims(claims.clone()))
        .await
        .unwrap();
    shown.push_str(&format!("{ok:?} {client:?}"));
    for request in [
        TokenRequest::new(["https://vault.azure.net/.default"])
            .with_claims_challenge(claims.clone()),
        TokenRequest::new(["https://storage.azure.com/.default"]),
    ] {
        let err = client.get_token(&request).await.unwrap_err();
        shown.push_str(&format!("{err} {err:?} {request:?}"));
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("retrying the token request"), "{log}");
    assert!(log.contains("7000215"), "{log}");
    for secret in [
        "CLIENT-SECRET-VALUE",
        "ACCESS-TOKEN-SECRET",
        "SECOND-SECRET",
        "CLAIMS-SECRET",
        "eyJ",
    ] {
        assert!(!log.contains(secret), "{secret} reached the log:\n{log}");
        assert!(
            !shown.contains(secret),
            "{secret} reached Debug/Display:\n{shown}"
        );
    }
}
