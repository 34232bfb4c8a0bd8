//! Shared by the fuzz targets: bytes into an HTTP answer, and the planted secret.
#![allow(dead_code)] // each target uses a part

use entra_core::HttpResponse;
use http::HeaderValue;

/// A secret planted in inputs; no error or `Debug` output may ever contain it.
pub const MARKER: &str = "zzPLANTEDSECRETzz";

/// The one endpoint every parser is told about.
pub const ENDPOINT: &str = "https://login.example/tenant/oauth2/v2.0/token";

/// Fails if `shown` (an error's or a token's Display/Debug) contains the planted secret.
pub fn assert_hidden(shown: &str) {
    assert!(
        !shown.contains(MARKER),
        "the planted secret leaked: {shown}"
    );
}

/// The fuzzer's bytes as an HTTP answer:
/// `[status: 2 bytes, big endian, mod 600][content type: 1 byte][n: 1 byte][n bytes: the value
/// of `extra_header`, raw content type][body...]`.
#[derive(Debug)]
pub struct Input<'a> {
    pub status: u16,
    content_type: u8,
    pub header: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    /// `None` when the input is too short, or holds the marker itself (a header that quotes
    /// the marker legitimately, such as a content type, is not a leak).
    pub fn new(data: &'a [u8]) -> Option<Self> {
        if String::from_utf8_lossy(data).contains(MARKER) {
            return None;
        }
        let (&[hi, lo, content_type, n], rest) = data.split_first_chunk::<4>()?;
        let n = usize::from(n).min(rest.len());
        let (header, body) = rest.split_at(n);
        Some(Self {
            status: u16::from_be_bytes([hi, lo]) % 600,
            content_type,
            header,
            body,
        })
    }

    /// The answer with `body`, the chosen content type, and `extra_header` (when named) set to
    /// the fuzzed header bytes.
    pub fn response(&self, body: Vec<u8>, extra_header: Option<&'static str>) -> HttpResponse {
        let mut response = HttpResponse::new(self.status, body);
        let content_type = match self.content_type % 5 {
            0 => Some(HeaderValue::from_static("application/json")),
            1 => Some(HeaderValue::from_static("application/json; charset=utf-8")),
            2 => Some(HeaderValue::from_static("text/html")),
            3 => None,
            _ => HeaderValue::from_bytes(self.header).ok(),
        };
        if let Some(value) = content_type {
            response.headers.insert("content-type", value);
        }
        if let Some(name) = extra_header
            && let Ok(value) = HeaderValue::from_bytes(self.header)
        {
            response.headers.insert(name, value);
        }
        response
    }
}

/// `body` with the planted secret as the value of each of `fields`, when `body` is a JSON
/// object that does not already hold the marker.
pub fn plant(body: &[u8], fields: &[&str]) -> Option<Vec<u8>> {
    let serde_json::Value::Object(mut map) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    if serde_json::Value::Object(map.clone())
        .to_string()
        .contains(MARKER)
    {
        return None;
    }
    for field in fields {
        map.insert((*field).to_owned(), MARKER.into());
    }
    Some(serde_json::Value::Object(map).to_string().into_bytes())
}

/// The marker followed by `body`: never valid JSON, so whatever is said about it must not
/// quote it.
pub fn prefixed(body: &[u8]) -> Vec<u8> {
    let mut out = MARKER.as_bytes().to_vec();
    out.extend_from_slice(body);
    out
}
