//! The shape every managed identity source shares: build a request, maybe answer a challenge;
//! the answer is read by `response.rs` for all of them.

use std::fmt;

use entra_core::{Env, Error, HttpRequest, HttpResponse, Secret};
use http::{HeaderName, HeaderValue, Method};
use url::Url;

use crate::ManagedIdentitySourceKind;
use crate::detect::var;

/// A managed identity source: where the request goes and what it carries.
pub(crate) trait ManagedIdentitySource: Send + Sync + fmt::Debug {
    /// Which source this is.
    fn kind(&self) -> ManagedIdentitySourceKind;

    /// The token endpoint (its host keys the cache).
    fn endpoint(&self) -> &Url;

    /// The request for a token for `resource`. The identity selector was checked when the
    /// source was made.
    fn request(&self, resource: &str) -> HttpRequest;

    /// The request to send after `response` when it is a challenge this source answers (Azure
    /// Arc's 401 naming a key file), or `None` when `response` is the answer to read.
    fn challenge(
        &self,
        _resource: &str,
        _response: &HttpResponse,
    ) -> Result<Option<HttpRequest>, Error> {
        Ok(None)
    }
}

/// The URL in variable `name`, which must be http or https.
pub(crate) fn endpoint_from_env(env: &dyn Env, name: &str) -> Result<Url, Error> {
    let value = var(env, name).ok_or_else(|| {
        Error::Configuration(format!(
            "{name} is not set; set it to the managed identity endpoint URL"
        ))
    })?;
    parse_endpoint(name, value.trim())
}

pub(crate) fn parse_endpoint(name: &str, value: &str) -> Result<Url, Error> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        _ => Err(Error::Configuration(format!(
            "{name} is not an http or https URL; check the managed identity environment variables"
        ))),
    }
}

/// The secret in variable `name`.
pub(crate) fn secret_from_env(env: &dyn Env, name: &str) -> Result<Secret, Error> {
    var(env, name)
        .map(Secret::new)
        .ok_or_else(|| Error::Configuration(format!("{name} is not set")))
}

/// `method url?query` with no headers.
pub(crate) fn request(method: Method, url: &Url, query: &[(&str, &str)]) -> HttpRequest {
    let mut url = url.clone();
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in query {
            pairs.append_pair(name, value);
        }
    }
    HttpRequest::new(method, url)
}

/// Adds a plain header.
pub(crate) fn header(request: &mut HttpRequest, name: &'static str, value: &'static str) {
    request.headers.insert(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    );
}

/// A header value holding a secret, marked sensitive (HTTP/2 never indexes it; `Debug` hides
/// it). A value that cannot be a header is an error that does not echo it.
pub(crate) fn secret_header_value(value: &Secret, what: &str) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::from_str(value.expose().trim()).map_err(|_| {
        Error::Configuration(format!(
            "{what} holds characters that cannot be sent in an HTTP header; check its value"
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The configuration error for a selector a source cannot use.
pub(crate) fn unsupported_selector(source: &str, what: &str) -> Error {
    Error::Configuration(format!(
        "{source} managed identity {what}; use a supported identity selector or run where another managed identity source is available"
    ))
}
