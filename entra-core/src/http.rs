//! The HTTP edge: a small transport trait and its reqwest + rustls implementation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method};
use url::Url;

use crate::Error;
use crate::error::{BoxError, ResponseProblem, TransportErrorKind};

/// An HTTP request. `Debug` never shows the body (it carries credentials) nor header values.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl HttpRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("endpoint", &endpoint(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// An HTTP answer. `Debug` never shows the body (it carries tokens).
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most the transport's size limit).
    pub body: Bytes,
}

impl HttpResponse {
    /// An answer with `status` and `body` and no headers.
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Sends HTTP requests. The default is [`ReqwestTransport`]; tests and unusual hosts inject
/// their own. Implementations never follow redirects and never log bodies.
#[async_trait]
pub trait HttpTransport: Send + Sync + fmt::Debug {
    /// Sends `request` and returns the answer, whatever its status.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error>;
}

/// The endpoint of `url` for messages: scheme, host, port and path, never the query (which can
/// carry identity selectors) nor credentials.
pub fn endpoint(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

/// Default largest answer accepted: token answers are a few kilobytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The default transport: reqwest with rustls, no redirects, bounded time and size.
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl ReqwestTransport {
    /// A transport with the default settings (system roots, 10 s connect, 30 s read, 60 s
    /// total, 1 MiB answers).
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Configures a transport.
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder::default()
    }
}

/// Builds a [`ReqwestTransport`].
#[derive(Clone)]
pub struct ReqwestTransportBuilder {
    connect_timeout: Duration,
    read_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    extra_roots: Vec<reqwest::Certificate>,
    only_extra_roots: bool,
    user_agent: String,
    preconfigured_tls: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl fmt::Debug for ReqwestTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransportBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("extra_roots", &self.extra_roots.len())
            .field("only_extra_roots", &self.only_extra_roots)
            .finish_non_exhaustive()
    }
}

impl Default for ReqwestTransportBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            extra_roots: Vec::new(),
            only_extra_roots: false,
            user_agent: crate::USER_AGENT.to_owned(),
            preconfigured_tls: None,
        }
    }
}

impl ReqwestTransportBuilder {
    /// Time allowed to connect (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed between reads of the answer (default 30 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Time allowed for a whole request (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest answer accepted (default 1 MiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Trusts the root certificates in `pem` in addition to the system's (for example the
    /// emulator's CA).
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| {
            Error::Configuration(
                "the extra root certificates are not valid PEM certificates".to_owned(),
            )
        })?;
        if certs.is_empty() {
            return Err(Error::Configuration(
                "no certificate found in the extra root certificates PEM".to_owned(),
            ));
        }
        self.extra_roots.extend(certs);
        Ok(self)
    }

    /// Trusts only the added root certificates, not the system's.
    pub fn only_added_roots(mut self, only: bool) -> Self {
        self.only_extra_roots = only;
        self
    }

    /// Replaces the `User-Agent`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Uses a ready-made `rustls::ClientConfig` (for certificate pinning or mutual TLS); the
    /// root-certificate settings are then ignored.
    pub fn rustls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.preconfigured_tls = Some(Arc::new(config));
        self
    }

    /// Builds the transport.
    pub fn build(self) -> Result<ReqwestTransport, Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent)
            .no_proxy();
        if let Some(tls) = self.preconfigured_tls {
            let config = tls
                .downcast_ref::<rustls::ClientConfig>()
                .cloned()
                .ok_or_else(|| {
                    Error::Configuration("unexpected TLS configuration type".to_owned())
                })?;
            builder = builder.tls_backend_preconfigured(config);
        } else if self.only_extra_roots {
            builder = builder.tls_certs_only(self.extra_roots);
        } else {
            builder = builder.tls_certs_merge(self.extra_roots);
        }
        let client = builder.build().map_err(|e| Error::Transport {
            endpoint: String::new(),
            kind: TransportErrorKind::Other,
            source: Some(Arc::new(e)),
        })?;
        Ok(ReqwestTransport {
            client,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

#[async_trait]
impl HttpTransport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let shown = endpoint(&request.url);
        let mut response = self
            .client
            .request(request.method, request.url)
            .headers(request.headers)
            .body(request.body)
            .send()
            .await
            .map_err(|e| transport_error(&shown, e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let too_large = || Error::UnexpectedResponse {
            status,
            endpoint: shown.clone(),
            problem: ResponseProblem::TooLarge {
                limit: self.max_response_bytes,
            },
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_response_bytes {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(transport_error(&shown, e)),
                Err(_) => {
                    return Err(Error::UnexpectedResponse {
                        status,
                        endpoint: shown,
                        problem: ResponseProblem::Truncated,
                    });
                }
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body: body.freeze(),
        })
    }
}

fn transport_error(endpoint: &str, error: reqwest::Error) -> Error {
    let kind = if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if is_tls(&error) {
        TransportErrorKind::Tls
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_request() || error.is_body() {
        TransportErrorKind::Io
    } else {
        TransportErrorKind::Other
    };
    // reqwest's error text names the URL with its query; keep only the source chain below it.
    let source: Option<BoxError> =
        std::error::Error::source(&error).map(|s| Arc::new(Described(s.to_string())) as BoxError);
    Error::Transport {
        endpoint: endpoint.to_owned(),
        kind,
        source,
    }
}

/// Whether a rustls error (certificate rejected, handshake alert) is in the chain.
///
/// `io::Error` hides a wrapped error from `source()` (it reports the wrapped error's own
/// source), so wrapped errors are followed through `get_ref()` too.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && is_tls(inner)
    {
        return true;
    }
    error.source().is_some_and(is_tls)
}

/// An error kept as text (the original is not `Clone`).
#[derive(Debug)]
struct Described(String);

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Described {}

/// Reads a `Retry-After` header: delay seconds or an HTTP date (relative to `now`).
pub fn retry_after(response: &HttpResponse, now: std::time::SystemTime) -> Option<Duration> {
    let value = response.header("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    httpdate_parse(value).map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers send today.
fn httpdate_parse(value: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    u64::try_from(secs)
        .ok()
        .map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s))
}

/// Header value from a string known to be valid (ASCII without control characters).
pub(crate) fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        let mut r = HttpResponse::new(429, "");
        r.headers
            .insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&r, now), Some(Duration::from_secs(7)));
        r.headers.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&r, now), Some(Duration::from_secs(7)));
        r.headers
            .insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&r, now), None);
    }

    #[test]
    fn endpoints_drop_query_and_credentials() {
        let url = Url::parse("https://user:pw@host:8443/a/b?client_id=x#f").unwrap();
        assert_eq!(endpoint(&url), "https://host:8443/a/b");
    }

    #[test]
    fn debug_hides_bodies() {
        let mut req = HttpRequest::new(Method::POST, Url::parse("https://h/p?secret=1").unwrap());
        req.body = Bytes::from_static(b"client_secret=hunter2");
        let shown = format!("{req:?} {:?}", HttpResponse::new(200, "access_token=eyJ"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("eyJ") && !shown.contains("secret=1"),
            "{shown}"
        );
    }
}
