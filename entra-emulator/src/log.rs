//! The request log: every request the emulator serves (outside `/_emulator/`), with secrets
//! redacted before they are stored.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::endpoint::EndpointKind;

/// What the log stores in place of a secret value.
pub const REDACTED: &str = "<redacted>";

/// Form fields whose values are recorded as sent.
const PUBLIC_FIELDS: &[&str] = &[
    "grant_type",
    "client_id",
    "scope",
    "claims",
    "fmi_path",
    "client_session",
    "token_type",
    "client_assertion_type",
    "requested_token_use",
    "user_id",
    "username",
    "client_info",
    "resource",
    "api-version",
    "redirect_uri",
    "response_type",
];

/// Headers that are recorded as sent (plus every `x-client-*` header).
const PUBLIC_HEADERS: &[&str] = &[
    "user-agent",
    "client-request-id",
    "content-type",
    "return-client-request-id",
    "metadata",
    "x-ms-client-request-id",
];

/// Headers whose presence is recorded but whose value is redacted.
const SECRET_HEADERS: &[&str] = &["authorization", "x-identity-header", "secret"];

/// Whether the value of form field `name` may be recorded. Unknown fields are treated as
/// secret: the log records their name only.
pub(crate) fn is_public_field(name: &str) -> bool {
    PUBLIC_FIELDS.contains(&name)
}

/// The listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scheme {
    /// The HTTPS listener.
    Https,
    /// The plain HTTP listener.
    Http,
}

/// One form field as recorded: its name, and its value or [`REDACTED`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FormField {
    /// The field name.
    pub name: String,
    /// The value for non-secret fields, [`REDACTED`] for the others.
    pub value: String,
}

/// One request as the emulator saw it.
///
/// Secret form fields (`client_secret`, `client_assertion`, `assertion`, `refresh_token`,
/// `user_federated_identity_credential`, `password`, and any field not known to be public) and
/// secret headers are stored as [`REDACTED`], so neither `Debug` nor the JSON form can leak them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// Sequence number, in order of arrival, starting at 1.
    pub id: u64,
    /// Arrival time, in seconds since the Unix epoch (emulator clock).
    pub unix_time: u64,
    /// The listener it arrived on.
    pub scheme: Scheme,
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The endpoint the path names.
    pub endpoint: EndpointKind,
    /// The tenant segment of a tenant-scoped path, as sent.
    pub tenant: Option<String>,
    /// Selected headers (lower-case names): `user-agent`, `client-request-id`, `content-type`,
    /// `x-client-*`, and a few more.
    pub headers: BTreeMap<String, String>,
    /// The form fields of a `application/x-www-form-urlencoded` body, in order.
    pub form: Vec<FormField>,
    /// The status answered; `None` while in flight or when the connection was closed without
    /// an answer.
    pub status: Option<u16>,
    /// The fault applied to this request, if any (the action's name, e.g. `status`).
    pub fault: Option<String>,
}

impl RecordedRequest {
    /// The recorded value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The recorded value of the first form field called `name` ([`REDACTED`] for secrets).
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }

    /// Whether the body had a form field called `name`.
    pub fn has_form_field(&self, name: &str) -> bool {
        self.form.iter().any(|f| f.name == name)
    }

    /// The names of the form fields, in order.
    pub fn form_names(&self) -> Vec<&str> {
        self.form.iter().map(|f| f.name.as_str()).collect()
    }

    /// The `client_id` form field, if sent.
    pub fn client_id(&self) -> Option<&str> {
        self.form_value("client_id")
    }

    /// The `grant_type` form field, if sent.
    pub fn grant_type(&self) -> Option<&str> {
        self.form_value("grant_type")
    }

    /// Whether this was a request to the token endpoint of `tenant` (compared
    /// case-insensitively with the path segment as sent).
    pub fn is_token_request_for(&self, tenant: &str) -> bool {
        self.endpoint == EndpointKind::Token
            && self
                .tenant
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(tenant))
    }
}

/// Select and redact the headers worth recording.
pub(crate) fn record_headers(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        let value = if SECRET_HEADERS.contains(&name) {
            REDACTED.to_owned()
        } else if PUBLIC_HEADERS.contains(&name) || name.starts_with("x-client-") {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        } else {
            continue;
        };
        out.insert(name.to_owned(), value);
    }
    out
}

/// Redact form fields for the log.
pub(crate) fn record_form(form: &[(String, String)]) -> Vec<FormField> {
    form.iter()
        .map(|(name, value)| FormField {
            name: name.clone(),
            value: if is_public_field(name) {
                value.clone()
            } else {
                REDACTED.to_owned()
            },
        })
        .collect()
}

/// The bounded log itself.
#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: VecDeque<RecordedRequest>,
    next_id: u64,
    capacity: usize,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize) -> Self {
        RequestLog {
            entries: VecDeque::new(),
            next_id: 1,
            capacity: capacity.max(1),
        }
    }

    /// Store `entry` (its id is assigned here) and return the id.
    pub(crate) fn start(&mut self, mut entry: RecordedRequest) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        entry.id = id;
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        id
    }

    pub(crate) fn finish(&mut self, id: u64, status: Option<u16>, fault: Option<&str>) {
        if let Some(entry) = self.entries.iter_mut().rev().find(|e| e.id == id) {
            entry.status = status;
            entry.fault = fault.map(str::to_owned);
        }
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        self.entries.iter().cloned().collect()
    }

    pub(crate) fn count(&self, predicate: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.entries.iter().filter(|e| predicate(e)).count()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_unknown_fields_are_redacted() {
        let form = vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_secret".to_owned(), "hunter2".to_owned()),
            ("client_assertion".to_owned(), "eyJhbGciOi".to_owned()),
            ("something_new".to_owned(), "maybe-secret".to_owned()),
        ];
        let recorded = record_form(&form);
        assert_eq!(recorded[0].value, "client_credentials");
        assert_eq!(recorded[1].value, REDACTED);
        assert_eq!(recorded[2].value, REDACTED);
        assert_eq!(recorded[3].value, REDACTED);
        assert!(!format!("{recorded:?}").contains("hunter2"));
    }

    #[test]
    fn agent_fields_are_public_and_agent_secrets_are_not() {
        for name in [
            "fmi_path",
            "client_session",
            "user_id",
            "username",
            "requested_token_use",
        ] {
            assert!(is_public_field(name), "{name}");
        }
        let secrets = [
            "user_federated_identity_credential",
            "assertion",
            "client_assertion",
            "client_secret",
            "refresh_token",
        ];
        let form: Vec<(String, String)> = secrets
            .iter()
            .map(|n| ((*n).to_owned(), format!("secret-of-{n}")))
            .collect();
        let recorded = record_form(&form);
        for field in &recorded {
            assert!(!is_public_field(&field.name), "{}", field.name);
            assert_eq!(field.value, REDACTED, "{}", field.name);
        }
        assert!(!format!("{recorded:?}").contains("secret-of-"));
    }

    #[test]
    fn log_is_bounded() {
        let mut log = RequestLog::new(2);
        for _ in 0..3 {
            log.start(RecordedRequest {
                id: 0,
                unix_time: 0,
                scheme: Scheme::Http,
                method: "GET".into(),
                path: "/".into(),
                query: None,
                endpoint: EndpointKind::Other,
                tenant: None,
                headers: BTreeMap::new(),
                form: Vec::new(),
                status: None,
                fault: None,
            });
        }
        let ids: Vec<u64> = log.all().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![2, 3]);
    }
}
