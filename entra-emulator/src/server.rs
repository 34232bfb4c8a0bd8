//! The listeners: accept loops, TLS, and the outer service that records requests and applies
//! faults before handing requests to the router.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::endpoint::{EndpointKind, classify, classify_mtls};
use crate::fault::{self, FaultAction, FaultTarget};
use crate::log::{RecordedRequest, Scheme, record_form, record_headers};
use crate::state::Shared;

/// The largest request body the emulator reads.
const MAX_BODY: usize = 1024 * 1024;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-request facts handlers may need, passed as a request extension.
#[derive(Clone, Debug)]
pub(crate) struct RequestInfo {
    pub(crate) scheme: Scheme,
}

impl RequestInfo {
    /// The base URL of the listener the request arrived on.
    pub(crate) fn base_url<'a>(&self, shared: &'a Shared) -> &'a str {
        match self.scheme {
            Scheme::Https => &shared.urls.https,
            Scheme::Http => &shared.urls.http,
        }
    }
}

/// The client certificate (DER) presented on a mutual-TLS connection, passed to handlers as a
/// request extension (`None` on other listeners).
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerCertificate(pub(crate) Option<Arc<Vec<u8>>>);

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListenerRole {
    /// The Entra ID endpoints, the managed identity endpoints and the control API.
    Main,
    /// The Service Fabric managed identity endpoint (its own certificate, its own port).
    ServiceFabric,
    /// The IMDSv2 mutual-TLS token endpoint.
    Mtls,
}

/// The `Server` header every IMDS answer carries.
pub(crate) const IMDS_SERVER: &str = "IMDS/150.870.65.1854";

/// A bound listener, ready to serve.
pub(crate) struct Listener {
    pub(crate) scheme: Scheme,
    pub(crate) role: ListenerRole,
    pub(crate) tcp: TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
    /// An acceptor whose handshakes fail, used instead of `tls` while the emulator is told to
    /// reject handshakes (mutual-TLS listener only).
    pub(crate) reject_tls: Option<TlsAcceptor>,
}

/// The error that makes hyper drop a connection without answering.
#[derive(Debug)]
struct CloseConnection;

impl fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection closed by a connection_reset fault")
    }
}

impl std::error::Error for CloseConnection {}

/// Serve `listener` until `shutdown` turns true; dropping the returned task's handle (or
/// aborting it) also drops every open connection.
pub(crate) fn spawn(
    listener: Listener,
    shared: Arc<Shared>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                accepted = listener.tcp.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let _ = stream.set_nodelay(true);
                        let shared = Arc::clone(&shared);
                        let router = router.clone();
                        let tls = match &listener.reject_tls {
                            Some(reject) if shared.imds_v2.take_handshake_rejection() => {
                                tracing::debug!("rejecting a tls handshake (fault)");
                                Some(reject.clone())
                            }
                            _ => listener.tls.clone(),
                        };
                        let scheme = listener.scheme;
                        let role = listener.role;
                        connections.spawn(async move {
                            match tls {
                                Some(acceptor) => {
                                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                        Ok(Ok(tls_stream)) => {
                                            let peer = PeerCertificate(
                                                tls_stream
                                                    .get_ref()
                                                    .1
                                                    .peer_certificates()
                                                    .and_then(|c| c.first())
                                                    .map(|c| Arc::new(c.to_vec())),
                                            );
                                            serve(tls_stream, shared, router, scheme, role, peer).await;
                                        }
                                        Ok(Err(e)) => tracing::debug!(error = %e, "tls handshake failed"),
                                        Err(_) => tracing::debug!("tls handshake timed out"),
                                    }
                                }
                                None => {
                                    serve(stream, shared, router, scheme, role, PeerCertificate::default()).await;
                                }
                            }
                        });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    })
}

async fn serve<IO>(
    io: IO,
    shared: Arc<Shared>,
    router: Router,
    scheme: Scheme,
    role: ListenerRole,
    peer: PeerCertificate,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        handle(
            Arc::clone(&shared),
            router.clone(),
            scheme,
            role,
            peer.clone(),
            request,
        )
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Read the body, record the request, apply a fault if one matches, and route.
async fn handle(
    shared: Arc<Shared>,
    router: Router,
    scheme: Scheme,
    role: ListenerRole,
    peer: PeerCertificate,
    request: Request<Incoming>,
) -> Result<Response, CloseConnection> {
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(Body::new(body), MAX_BODY).await else {
        let mut response = Response::new(Body::from(
            r#"{"error":"invalid_request","error_description":"the request body is too large or could not be read"}"#,
        ));
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    };
    parts.extensions.insert(RequestInfo { scheme });
    parts.extensions.insert(peer);
    let path = parts.uri.path().to_owned();
    let (endpoint, tenant) = match role {
        ListenerRole::Main => classify(&path),
        ListenerRole::ServiceFabric => (EndpointKind::ServiceFabric, None),
        ListenerRole::Mtls => classify_mtls(&path),
    };
    if endpoint == EndpointKind::Admin {
        let request = Request::from_parts(parts, Body::from(bytes));
        return Ok(route(router, request).await);
    }

    let form = parse_form(&parts.headers, &bytes);
    let query = parts.uri.query().map(str::to_owned);
    let client_id = form
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            query.as_deref().and_then(|q| {
                // `clientid` is how Azure Machine Learning selects an identity.
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "client_id" || k == "clientid")
                    .map(|(_, v)| v.into_owned())
            })
        });
    let id = shared.log_start(RecordedRequest {
        id: 0,
        unix_time: shared.now_unix(),
        scheme,
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query,
        endpoint,
        tenant: tenant.clone(),
        headers: record_headers(&parts.headers),
        form: record_form(&form),
        status: None,
        fault: None,
    });
    let fault = shared.take_fault(&FaultTarget {
        endpoint,
        path: &path,
        client_id: client_id.as_deref(),
        tenant: tenant.as_deref(),
    });
    let fault_name = fault.as_ref().map(|f| f.action.name());
    if fault_name.is_some() {
        // Record the fault now: a delayed request may be abandoned by its client.
        shared.log_finish(id, None, fault_name);
    }
    let correlation = parts
        .headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let mut response = match fault.map(|f| f.action) {
        None => route(router, Request::from_parts(parts, Body::from(bytes))).await,
        Some(FaultAction::Delay { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            route(router, Request::from_parts(parts, Body::from(bytes))).await
        }
        Some(FaultAction::ConnectionReset) => {
            shared.log_finish(id, None, fault_name);
            return Err(CloseConnection);
        }
        Some(action) => {
            let base = if role == ListenerRole::Mtls {
                shared.urls.mtls.clone()
            } else {
                RequestInfo { scheme }.base_url(&shared).to_owned()
            };
            fault::render(&action, &base, shared.now_unix(), correlation.as_deref())
        }
    };
    if matches!(
        endpoint,
        EndpointKind::Imds | EndpointKind::ImdsPlatformMetadata | EndpointKind::ImdsIssueCredential
    ) {
        // Every IMDS answer names its server, faults included: clients use it to tell IMDS
        // from a proxy that answers in its place.
        response
            .headers_mut()
            .insert(header::SERVER, HeaderValue::from_static(IMDS_SERVER));
    }
    shared.log_finish(id, Some(response.status().as_u16()), fault_name);
    Ok(response)
}

async fn route(router: Router, request: Request<Body>) -> Response {
    let service = TowerToHyperService::new(router);
    match hyper::service::Service::call(&service, request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    }
}

/// The fields of an `application/x-www-form-urlencoded` body (empty for other content types).
pub(crate) fn parse_form(headers: &http::HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Vec::new();
    }
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
