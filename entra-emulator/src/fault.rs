//! Scripted faults: make the next N matching requests fail in a chosen way.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aadsts::Aadsts;
use crate::endpoint::EndpointKind;
use crate::error::EmulatorError;

/// A fault: which requests it hits, what happens to them, and how many times.
///
/// Faults are tried in order of registration; the first that matches a request is applied and
/// its count decremented, and it is removed when the count reaches zero. Requests to the
/// emulator's control API (`/_emulator/...`) are never faulted.
///
/// ```
/// use entra_emulator::{EndpointKind, Fault, FaultAction, FaultMatcher};
///
/// // The next two token requests from app "c1" get a 503 with Retry-After: 1.
/// let fault = Fault::new(
///     FaultMatcher::endpoint(EndpointKind::Token).with_client_id("c1"),
///     FaultAction::status_with_retry_after(503, 1),
/// )
/// .times(2);
/// # let _ = fault;
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Fault {
    /// Which requests the fault applies to.
    #[serde(rename = "match", default)]
    pub matcher: FaultMatcher,
    /// What happens to them.
    pub action: FaultAction,
    /// How many matching requests it applies to (at least 1).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault applied once to the next request matching `matcher`.
    pub fn new(matcher: FaultMatcher, action: FaultAction) -> Self {
        Fault {
            matcher,
            action,
            times: 1,
        }
    }

    /// A fault applied once to the next token request (any tenant, any client).
    pub fn on_token_endpoint(action: FaultAction) -> Self {
        Fault::new(FaultMatcher::endpoint(EndpointKind::Token), action)
    }

    /// Apply to the next `times` matching requests.
    #[must_use]
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), EmulatorError> {
        if self.times == 0 {
            return Err(EmulatorError::InvalidFault(
                "times must be at least 1".to_owned(),
            ));
        }
        match &self.action {
            FaultAction::Status { status, .. } if StatusCode::from_u16(*status).is_err() => Err(
                EmulatorError::InvalidFault(format!("{status} is not an http status")),
            ),
            FaultAction::Redirect { status, location } => {
                if !(300..400).contains(status) {
                    return Err(EmulatorError::InvalidFault(format!(
                        "a redirect needs a 3xx status, not {status}"
                    )));
                }
                if HeaderValue::from_str(location).is_err() {
                    return Err(EmulatorError::InvalidFault(
                        "the redirect location is not a valid header value".to_owned(),
                    ));
                }
                Ok(())
            }
            FaultAction::OversizedBody { bytes } if *bytes > 256 * 1024 * 1024 => Err(
                EmulatorError::InvalidFault("an oversized body is limited to 256 MiB".to_owned()),
            ),
            _ => Ok(()),
        }
    }
}

/// Which requests a fault applies to. Every criterion given must hold; an empty matcher
/// matches every request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FaultMatcher {
    /// The endpoint kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointKind>,
    /// A prefix of the request path (e.g. `/my-tenant/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The `client_id` form field (or query parameter; `clientid` for Azure Machine Learning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The tenant segment of the path (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl FaultMatcher {
    /// Match every request.
    pub fn any() -> Self {
        FaultMatcher::default()
    }

    /// Match requests to endpoints of `kind`.
    pub fn endpoint(kind: EndpointKind) -> Self {
        FaultMatcher {
            endpoint: Some(kind),
            ..FaultMatcher::default()
        }
    }

    /// Match requests whose path starts with `prefix`.
    pub fn path_prefix(prefix: impl Into<String>) -> Self {
        FaultMatcher {
            path_prefix: Some(prefix.into()),
            ..FaultMatcher::default()
        }
    }

    /// Also require this `client_id`.
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Also require this tenant segment.
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    pub(crate) fn matches(&self, target: &FaultTarget<'_>) -> bool {
        self.endpoint.is_none_or(|e| e == target.endpoint)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| target.path.starts_with(p))
            && self
                .client_id
                .as_deref()
                .is_none_or(|c| target.client_id.is_some_and(|t| t.eq_ignore_ascii_case(c)))
            && self
                .tenant
                .as_deref()
                .is_none_or(|t| target.tenant.is_some_and(|r| r.eq_ignore_ascii_case(t)))
    }
}

/// What a fault matcher looks at.
#[derive(Debug)]
pub(crate) struct FaultTarget<'a> {
    pub(crate) endpoint: EndpointKind,
    pub(crate) path: &'a str,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) tenant: Option<&'a str>,
}

/// What happens to a faulted request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer `status` with `body` and, if given, a `Retry-After` header (seconds).
    Status {
        /// The HTTP status.
        status: u16,
        /// The body.
        #[serde(default)]
        body: FaultBody,
        /// The `Retry-After` value in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Wait before handling the request normally.
    Delay {
        /// How long, in milliseconds.
        millis: u64,
    },
    /// Answer 200 `application/json` with a body that is not valid JSON.
    MalformedJson,
    /// Answer 200 with a `Content-Length` larger than the bytes sent, then close.
    TruncatedBody,
    /// Answer 200 with a huge but valid JSON body.
    OversizedBody {
        /// Body size in bytes (default 5 MiB).
        #[serde(default = "five_mib")]
        bytes: usize,
    },
    /// Answer a redirect.
    Redirect {
        /// The `Location` header.
        location: String,
        /// The status (default 302).
        #[serde(default = "found")]
        status: u16,
    },
    /// Answer 200 with an HTML page (`text/html`).
    WrongContentType,
    /// Close the connection without answering.
    ConnectionReset,
}

fn five_mib() -> usize {
    5 * 1024 * 1024
}

fn found() -> u16 {
    302
}

impl FaultAction {
    /// Answer `status` with the AADSTS error Entra usually sends with it.
    pub fn status(status: u16) -> Self {
        FaultAction::Status {
            status,
            body: FaultBody::Default,
            retry_after: None,
        }
    }

    /// Answer `status` with the usual AADSTS error and `Retry-After: seconds`.
    pub fn status_with_retry_after(status: u16, seconds: u64) -> Self {
        FaultAction::Status {
            status,
            body: FaultBody::Default,
            retry_after: Some(seconds),
        }
    }

    /// Wait `delay`, then answer normally.
    pub fn delay(delay: Duration) -> Self {
        FaultAction::Delay {
            millis: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Answer `302 Found` with `Location: location`.
    pub fn redirect(location: impl Into<String>) -> Self {
        FaultAction::Redirect {
            location: location.into(),
            status: 302,
        }
    }

    /// Answer 401 with an AADSTS `invalid_client` error (e.g. once on the IMDSv2 mutual-TLS
    /// token leg, which makes a client re-mint its certificate).
    pub fn invalid_client() -> Self {
        FaultAction::Status {
            status: 401,
            body: FaultBody::Aadsts {
                error: "invalid_client".to_owned(),
                code: 700027,
                description: "Client assertion failed signature validation.".to_owned(),
            },
            retry_after: None,
        }
    }

    /// Answer 200 with 5 MiB of valid JSON.
    pub fn oversized_body() -> Self {
        FaultAction::OversizedBody { bytes: five_mib() }
    }

    /// The name recorded in the request log (`status`, `delay`, `malformed_json`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FaultAction::Status { .. } => "status",
            FaultAction::Delay { .. } => "delay",
            FaultAction::MalformedJson => "malformed_json",
            FaultAction::TruncatedBody => "truncated_body",
            FaultAction::OversizedBody { .. } => "oversized_body",
            FaultAction::Redirect { .. } => "redirect",
            FaultAction::WrongContentType => "wrong_content_type",
            FaultAction::ConnectionReset => "connection_reset",
        }
    }
}

/// The body of a [`FaultAction::Status`] answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultBody {
    /// The AADSTS error Entra usually sends with the status (e.g. `temporarily_unavailable`
    /// for 503).
    #[default]
    Default,
    /// An AADSTS error of your choice.
    Aadsts {
        /// The OAuth `error` (e.g. `invalid_grant`).
        error: String,
        /// The AADSTS code (e.g. 50173).
        code: u32,
        /// The description after `AADSTSnnnnn: `.
        description: String,
    },
    /// Any JSON value.
    Json {
        /// The body.
        value: Value,
    },
    /// Raw text with a content type.
    Raw {
        /// The `Content-Type` header.
        content_type: String,
        /// The body.
        body: String,
    },
}

/// Render a fault answer (every action except `Delay` and `ConnectionReset`, which the server
/// handles itself).
pub(crate) fn render(
    action: &FaultAction,
    base_url: &str,
    now_unix: u64,
    correlation_id: Option<&str>,
) -> Response {
    match action {
        FaultAction::Status {
            status,
            body,
            retry_after,
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = match body {
                FaultBody::Default => {
                    Aadsts::for_status(status).into_response(base_url, now_unix, correlation_id)
                }
                FaultBody::Aadsts {
                    error,
                    code,
                    description,
                } => {
                    Aadsts::new(status, error.clone(), *code, description.clone())
                        .into_response(base_url, now_unix, correlation_id)
                }
                FaultBody::Json { value } => {
                    crate::aadsts::json_response(status, value, correlation_id)
                }
                FaultBody::Raw { content_type, body } => {
                    raw(status, content_type, Bytes::from(body.clone()))
                }
            };
            *response.status_mut() = status;
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            response
        }
        FaultAction::MalformedJson => raw(
            StatusCode::OK,
            "application/json; charset=utf-8",
            Bytes::from_static(b"{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"eyJ0eXAiOiJKV1Qi"),
        ),
        FaultAction::TruncatedBody => truncated(),
        FaultAction::OversizedBody { bytes } => oversized(*bytes),
        FaultAction::Redirect { location, status } => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::FOUND);
            if let Ok(value) = HeaderValue::from_str(location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        FaultAction::WrongContentType => raw(
            StatusCode::OK,
            "text/html; charset=utf-8",
            Bytes::from_static(
                b"<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body><p>Something went wrong.</p></body></html>",
            ),
        ),
        // Handled by the server; answering 500 keeps this total.
        FaultAction::Delay { .. } | FaultAction::ConnectionReset => {
            Aadsts::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response(
                base_url,
                now_unix,
                correlation_id,
            )
        }
    }
}

fn raw(status: StatusCode, content_type: &str, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// 200 with `Content-Length` larger than what is sent; the stream then fails, which makes the
/// server close the connection.
fn truncated() -> Response {
    let full = br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"}"#;
    let sent = Bytes::from_static(&full[..full.len() / 2]);
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let sent = sent.clone();
        async move {
            match step {
                0 => Some((Ok::<Bytes, std::io::Error>(sent), 1)),
                1 => {
                    // Give the server time to flush what was sent before failing the body.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "truncated body fault",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
    response
}

fn oversized(bytes: usize) -> Response {
    let head = r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":""#;
    let tail = r#""}"#;
    let padding = bytes.saturating_sub(head.len() + tail.len());
    let mut body = String::with_capacity(head.len() + padding + tail.len());
    body.push_str(head);
    body.extend(std::iter::repeat_n('A', padding));
    body.push_str(tail);
    raw(
        StatusCode::OK,
        "application/json; charset=utf-8",
        Bytes::from(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(client_id: Option<&'a str>) -> FaultTarget<'a> {
        FaultTarget {
            endpoint: EndpointKind::Token,
            path: "/t/oauth2/v2.0/token",
            client_id,
            tenant: Some("t"),
        }
    }

    #[test]
    fn matcher_criteria_all_apply() {
        assert!(FaultMatcher::any().matches(&target(None)));
        let m = FaultMatcher::endpoint(EndpointKind::Token).with_client_id("c1");
        assert!(m.matches(&target(Some("C1"))));
        assert!(!m.matches(&target(Some("c2"))));
        assert!(!m.matches(&target(None)));
        assert!(!FaultMatcher::endpoint(EndpointKind::Jwks).matches(&target(None)));
        assert!(FaultMatcher::path_prefix("/t/").matches(&target(None)));
        assert!(!FaultMatcher::any().with_tenant("u").matches(&target(None)));
    }

    #[test]
    fn faults_round_trip_through_json() {
        let fault = Fault::new(
            FaultMatcher::endpoint(EndpointKind::Token),
            FaultAction::status_with_retry_after(429, 3),
        )
        .times(2);
        let text = serde_json::to_string(&fault).unwrap_or_default();
        let back: Fault = serde_json::from_str(&text)
            .unwrap_or_else(|_| Fault::new(FaultMatcher::any(), FaultAction::MalformedJson));
        assert_eq!(back, fault);
        let parsed: Result<Fault, _> =
            serde_json::from_str(r#"{"action":{"kind":"connection_reset"}}"#);
        assert!(matches!(
            parsed,
            Ok(Fault {
                times: 1,
                action: FaultAction::ConnectionReset,
                ..
            })
        ));
    }

    #[test]
    fn oversized_body_has_the_requested_size() {
        let response = oversized(1000);
        let len = axum::body::HttpBody::size_hint(response.body()).exact();
        assert_eq!(len, Some(1000));
    }
}
