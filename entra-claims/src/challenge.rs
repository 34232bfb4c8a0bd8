//! Claims challenges from a `WWW-Authenticate` response header.
//!
//! A resource that needs more than the token has (Continuous Access Evaluation, conditional
//! access) answers 401 with `WWW-Authenticate: Bearer error="insufficient_claims",
//! claims="<base64 JSON>"`. The parser follows RFC 9110 section 11.6.1 (one header may hold
//! several challenges, each an auth-scheme followed by a token68 or by `name=value` parameters)
//! and tolerates odd spacing: white space around `=` and `,`, tabs, and empty list elements.
//!
//! It is strict on size ([`MAX_HEADER_LEN`], [`MAX_PARAMS`], [`MAX_CHALLENGES`]), never panics,
//! and its errors give a byte offset, never the header text.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::Claims;
use crate::error::ClaimsError;

/// The longest `WWW-Authenticate` header parsed, in bytes (16 KiB).
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// The most parameters one header may hold, over all its challenges.
pub const MAX_PARAMS: usize = 64;

/// The most challenges one header may hold.
pub const MAX_CHALLENGES: usize = 16;

/// Parameters whose values `Debug` may show; every other value is redacted.
const SHOWN_PARAMS: &[&str] = &["realm", "error", "scope", "error_uri", "authorization_uri"];

/// The standard alphabet, no padding expected (it is stripped first), lenient on trailing bits.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// One challenge of a `WWW-Authenticate` header: an auth-scheme with a token68 or parameters.
///
/// `Debug` shows the scheme, the parameter names and the values of a few well-known parameters
/// (`realm`, `error`, `scope`, `error_uri`, `authorization_uri`); the `claims` value, the token68
/// and every other value are redacted.
///
/// ```
/// use entra_claims::parse_www_authenticate;
///
/// let header = r#"Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZX19fQ==""#;
/// let challenges = parse_www_authenticate(header)?;
/// let bearer = &challenges[0];
/// assert!(bearer.is_bearer() && bearer.is_insufficient_claims());
/// let claims = bearer.claims()?.expect("has claims");
/// assert_eq!(claims.to_json(), r#"{"access_token":{"nbf":{"essential":true}}}"#);
/// assert!(!format!("{bearer:?}").contains("eyJ"));
/// # Ok::<(), entra_claims::ClaimsError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// The auth-scheme as written, such as `Bearer`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the auth-scheme is `scheme`, ignoring ASCII case.
    #[must_use]
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// Whether this is a `Bearer` challenge (any case).
    #[must_use]
    pub fn is_bearer(&self) -> bool {
        self.is_scheme("Bearer")
    }

    /// The token68 that follows the scheme instead of parameters, if any.
    #[must_use]
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The value of the parameter `name` (ignoring ASCII case), unescaped. When a name occurs
    /// more than once, the first occurrence wins.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All parameters as `(name, value)`, in header order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The `error` parameter, such as `insufficient_claims`.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.param("error")
    }

    /// Whether `error="insufficient_claims"` (ignoring ASCII case): the resource asks for a token
    /// with more claims, which must not come from the cache.
    #[must_use]
    pub fn is_insufficient_claims(&self) -> bool {
        self.error()
            .is_some_and(|e| e.eq_ignore_ascii_case("insufficient_claims"))
    }

    /// The claims this challenge asks for: its `claims` parameter decoded from base64 (standard
    /// or URL-safe alphabet, with or without padding) and parsed as a JSON object.
    ///
    /// `Ok(None)` when there is no `claims` parameter or it is empty.
    ///
    /// # Errors
    ///
    /// [`ClaimsError::ClaimsNotBase64`], [`ClaimsError::ClaimsNotUtf8`], or any error of
    /// [`Claims::parse`] (size, depth, syntax, not an object).
    pub fn claims(&self) -> Result<Option<Claims>, ClaimsError> {
        let Some(raw) = self.param("claims") else {
            return Ok(None);
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let normalized: String = raw
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        let bytes = BASE64
            .decode(normalized)
            .map_err(|_| ClaimsError::ClaimsNotBase64)?;
        let text = String::from_utf8(bytes).map_err(|_| ClaimsError::ClaimsNotUtf8)?;
        Claims::parse(&text).map(Some)
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Challenge");
        s.field("scheme", &self.scheme);
        if self.token68.is_some() {
            s.field("token68", &Redacted);
        }
        s.field("params", &DebugParams(&self.params)).finish()
    }
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

struct DebugParams<'a>(&'a [(String, String)]);

impl fmt::Debug for DebugParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if SHOWN_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name)) {
                map.entry(name, value);
            } else {
                map.entry(name, &Redacted);
            }
        }
        map.finish()
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges, in order.
///
/// A resource that needs more than the token has (Continuous Access Evaluation, conditional
/// access) answers 401 with `WWW-Authenticate: Bearer error="insufficient_claims",
/// claims="<base64 JSON>"`. The grammar is RFC 9110's (section 11.6.1): one header may hold
/// several challenges, each an auth-scheme (any case) followed by a token68 or by `name=value`
/// parameters whose value is a token or a quoted string with backslash escapes. Odd spacing is
/// tolerated: white space around `=` and `,`, tabs, and empty list elements. An unquoted value
/// may also hold `/` and `=`, so unquoted base64 is read whole.
///
/// Parsing is strict on size and never panics; errors give a byte offset, never the header.
///
/// ```
/// use entra_claims::parse_www_authenticate;
///
/// let challenges = parse_www_authenticate(r#"bearer realm = "a\"b" ,, PoP nonce=x"#)?;
/// assert_eq!(challenges.len(), 2);
/// assert_eq!(challenges[0].param("REALM"), Some(r#"a"b"#));
/// assert!(challenges[1].is_scheme("pop"));
/// assert_eq!(challenges[1].param("nonce"), Some("x"));
/// # Ok::<(), entra_claims::ClaimsError>(())
/// ```
///
/// # Errors
///
/// [`ClaimsError::HeaderTooLong`] beyond [`MAX_HEADER_LEN`], [`ClaimsError::HeaderTooBig`]
/// beyond [`MAX_PARAMS`] or [`MAX_CHALLENGES`], and [`ClaimsError::HeaderSyntax`] (with a byte
/// offset) when the header does not follow the grammar.
pub fn parse_www_authenticate(header: &str) -> Result<Vec<Challenge>, ClaimsError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(ClaimsError::HeaderTooLong {
            len: header.len(),
            max: MAX_HEADER_LEN,
        });
    }
    Parser {
        text: header,
        pos: 0,
        params: 0,
    }
    .challenges()
}

/// The claims of the first `Bearer` challenge (any case) that has a non-empty `claims`
/// parameter, or `None`.
///
/// ```
/// use entra_claims::claims_challenge_from_header;
///
/// let header = r#"PoP nonce="n", Bearer error="insufficient_claims", claims="eyJpZF90b2tlbiI6e319""#;
/// let claims = claims_challenge_from_header(header)?.expect("a claims challenge");
/// assert_eq!(claims.to_json(), r#"{"id_token":{}}"#);
/// assert_eq!(claims_challenge_from_header(r#"Bearer realm="""#)?, None);
/// # Ok::<(), entra_claims::ClaimsError>(())
/// ```
///
/// # Errors
///
/// Those of [`parse_www_authenticate`] and [`Challenge::claims`].
pub fn claims_challenge_from_header(header: &str) -> Result<Option<Claims>, ClaimsError> {
    for challenge in parse_www_authenticate(header)? {
        if challenge.is_bearer()
            && let Some(claims) = challenge.claims()?
        {
            return Ok(Some(claims));
        }
    }
    Ok(None)
}

/// Whether any `Bearer` challenge of the header has `error="insufficient_claims"`.
///
/// # Errors
///
/// Those of [`parse_www_authenticate`].
pub fn is_insufficient_claims(header: &str) -> Result<bool, ClaimsError> {
    Ok(parse_www_authenticate(header)?
        .iter()
        .any(|c| c.is_bearer() && c.is_insufficient_claims()))
}

/// `tchar` of RFC 9110: the characters of a token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Characters of a token68 before its trailing `=`.
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// Characters of an unquoted parameter value: a token, leniently widened to token68 (so that
/// unquoted base64 with `/` and `=` is read whole).
fn is_bare_value_char(b: u8) -> bool {
    is_tchar(b) || b == b'/' || b == b'='
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    params: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn peek_at(&self, pos: usize) -> Option<u8> {
        self.text.as_bytes().get(pos).copied()
    }

    fn syntax_error<T>(&self) -> Result<T, ClaimsError> {
        Err(ClaimsError::HeaderSyntax { offset: self.pos })
    }

    /// Skips spaces and tabs; tells whether there were any.
    fn skip_ows(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Skips list separators: commas, spaces and tabs (empty list elements are allowed).
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    /// Reads a run of bytes accepted by `allowed` (all ASCII, so the slice is on char
    /// boundaries).
    fn run(&mut self, allowed: fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(allowed) {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or_default()
    }

    fn challenges(mut self) -> Result<Vec<Challenge>, ClaimsError> {
        let mut challenges = Vec::new();
        loop {
            self.skip_separators();
            if self.peek().is_none() {
                return Ok(challenges);
            }
            if challenges.len() == MAX_CHALLENGES {
                return Err(ClaimsError::HeaderTooBig {
                    what: "challenges",
                    max: MAX_CHALLENGES,
                });
            }
            challenges.push(self.challenge()?);
        }
    }

    /// One challenge, starting at its scheme; stops at the start of the next challenge or at the
    /// end.
    fn challenge(&mut self) -> Result<Challenge, ClaimsError> {
        let scheme = self.run(is_tchar);
        if scheme.is_empty() {
            return self.syntax_error();
        }
        let mut challenge = Challenge {
            scheme: scheme.to_owned(),
            token68: None,
            params: Vec::new(),
        };
        let spaced = self.skip_ows();
        match self.peek() {
            None | Some(b',') => return Ok(challenge),
            Some(_) if !spaced => return self.syntax_error(),
            Some(_) => {}
        }
        if let Some(token68) = self.token68() {
            challenge.token68 = Some(token68.to_owned());
            return Ok(challenge);
        }
        loop {
            let name_start = self.pos;
            let name = self.run(is_tchar);
            if name.is_empty() {
                return self.syntax_error();
            }
            self.skip_ows();
            if self.peek() != Some(b'=') {
                // Not a parameter: `name` is the scheme of the next challenge.
                self.pos = name_start;
                return Ok(challenge);
            }
            self.pos += 1;
            self.skip_ows();
            let value = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                let value = self.run(is_bare_value_char);
                if value.is_empty() {
                    return self.syntax_error();
                }
                value.to_owned()
            };
            if self.params == MAX_PARAMS {
                return Err(ClaimsError::HeaderTooBig {
                    what: "parameters",
                    max: MAX_PARAMS,
                });
            }
            self.params += 1;
            challenge.params.push((name.to_owned(), value));
            self.skip_ows();
            match self.peek() {
                None => return Ok(challenge),
                Some(b',') => {
                    self.skip_separators();
                    if self.peek().is_none() {
                        return Ok(challenge);
                    }
                }
                Some(_) => return self.syntax_error(),
            }
        }
    }

    /// A token68 (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`) when it is the
    /// whole rest of the challenge, that is when a comma or the end follows it.
    fn token68(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let mut end = start;
        while self.peek_at(end).is_some_and(is_token68_char) {
            end += 1;
        }
        if end == start {
            return None;
        }
        while self.peek_at(end) == Some(b'=') {
            end += 1;
        }
        let mut after = end;
        while matches!(self.peek_at(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        if !matches!(self.peek_at(after), None | Some(b',')) {
            return None;
        }
        self.pos = end;
        self.text.get(start..end)
    }

    /// A quoted string, starting at its opening quote; backslash escapes the next character.
    fn quoted(&mut self) -> Result<String, ClaimsError> {
        let open = self.pos;
        let rest = self.text.get(open + 1..).unwrap_or_default();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = open + 1 + i + 1;
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(ClaimsError::HeaderSyntax { offset: open })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}`, standard alphabet,
    /// padded (this is the example Microsoft documents for CAE).
    const CAE: &str =
        "eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0=";

    fn cae_claims() -> Claims {
        Claims::try_from(json!({"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}))
            .unwrap()
    }

    fn one(header: &str) -> Challenge {
        let mut challenges = parse_www_authenticate(header).unwrap();
        assert_eq!(challenges.len(), 1, "{header}");
        challenges.remove(0)
    }

    fn syntax_error(header: &str) -> bool {
        matches!(
            parse_www_authenticate(header),
            Err(ClaimsError::HeaderSyntax { .. })
        )
    }

    #[test]
    fn parses_the_documented_cae_challenge() {
        let header = format!(
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="{CAE}""#
        );
        let c = one(&header);
        assert_eq!(c.scheme(), "Bearer");
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some(""));
        assert_eq!(
            c.param("authorization_uri"),
            Some("https://login.microsoftonline.com/common/oauth2/authorize")
        );
        assert_eq!(c.error(), Some("insufficient_claims"));
        assert!(c.is_insufficient_claims());
        assert_eq!(c.claims(), Ok(Some(cae_claims())));
        assert_eq!(c.params().count(), 5);
        assert_eq!(
            claims_challenge_from_header(&header),
            Ok(Some(cae_claims()))
        );
        assert_eq!(is_insufficient_claims(&header), Ok(true));
    }

    #[test]
    fn scheme_and_param_names_are_case_insensitive() {
        let c = one(&format!(
            r#"bEaReR Error="insufficient_claims", CLAIMS="{CAE}""#
        ));
        assert!(c.is_bearer());
        assert_eq!(c.scheme(), "bEaReR");
        assert_eq!(c.param("error"), Some("insufficient_claims"));
        assert_eq!(c.claims(), Ok(Some(cae_claims())));
        assert!(one(r#"bearer error="INSUFFICIENT_CLAIMS""#).is_insufficient_claims());
    }

    #[test]
    fn tolerates_odd_spacing() {
        for header in [
            r#"Bearer realm="r",error="e""#,
            r#"Bearer realm = "r" , error = "e""#,
            "Bearer\trealm\t=\t\"r\"\t,\terror=\"e\"",
            r#"  Bearer   realm="r",, ,error="e" ,"#,
            r#", Bearer realm="r", error=e"#,
            "Bearer realm=r,\t, error=e\t",
        ] {
            let c = one(header);
            assert_eq!(c.param("realm"), Some("r"), "{header}");
            assert_eq!(c.param("error"), Some("e"), "{header}");
            assert_eq!(c.params().count(), 2, "{header}");
        }
    }

    #[test]
    fn quoted_strings_unescape() {
        let c = one(r#"Bearer realm="a\"b\\c\d", error="", scope="x, y=z""#);
        assert_eq!(c.param("realm"), Some(r#"a"b\cd"#));
        assert_eq!(c.error(), Some(""));
        assert_eq!(c.param("scope"), Some("x, y=z"));
        let c = one("Bearer realm=\"é ü\"");
        assert_eq!(c.param("realm"), Some("é ü"));
    }

    #[test]
    fn bare_values_may_hold_unquoted_base64() {
        let c = one(&format!("Bearer error=insufficient_claims, claims={CAE}"));
        assert_eq!(c.param("claims"), Some(CAE));
        assert_eq!(c.claims(), Ok(Some(cae_claims())));
    }

    #[test]
    fn multiple_challenges() {
        let header = format!(
            r#"Bearer realm="", error="insufficient_claims", claims="{CAE}", PoP nonce="x""#
        );
        let challenges = parse_www_authenticate(&header).unwrap();
        assert_eq!(challenges.len(), 2);
        assert!(challenges[0].is_bearer());
        assert_eq!(challenges[0].params().count(), 3);
        assert!(challenges[1].is_scheme("POP"));
        assert_eq!(challenges[1].param("nonce"), Some("x"));
        assert_eq!(challenges[1].param("claims"), None);

        let challenges =
            parse_www_authenticate(r#"Basic, Negotiate abc==, Bearer realm="r", Digest"#).unwrap();
        let schemes: Vec<&str> = challenges.iter().map(Challenge::scheme).collect();
        assert_eq!(schemes, ["Basic", "Negotiate", "Bearer", "Digest"]);
        assert_eq!(challenges[0].params().count(), 0);
        assert_eq!(challenges[1].token68(), Some("abc=="));
        assert_eq!(challenges[2].param("realm"), Some("r"));
    }

    #[test]
    fn token68_challenges() {
        let c = one("Negotiate YIIB+/_-.~x==");
        assert_eq!(c.token68(), Some("YIIB+/_-.~x=="));
        assert_eq!(c.params().count(), 0);
        let c = one("Basic abc  ");
        assert_eq!(c.token68(), Some("abc"));
        // A name with an empty value is, by the grammar, a token68.
        assert_eq!(one("Bearer realm=").token68(), Some("realm="));
    }

    #[test]
    fn first_bearer_with_claims_wins() {
        let other = "eyJpZF90b2tlbiI6e319"; // {"id_token":{}}
        let header = format!(
            r#"PoP claims="{other}", Bearer realm="", Bearer claims="", Bearer claims="{CAE}", Bearer claims="{other}""#
        );
        assert_eq!(
            claims_challenge_from_header(&header),
            Ok(Some(cae_claims()))
        );
    }

    #[test]
    fn missing_claims_is_none() {
        let c = one(r#"Bearer realm="", error="invalid_token""#);
        assert_eq!(c.claims(), Ok(None));
        assert!(!c.is_insufficient_claims());
        assert_eq!(claims_challenge_from_header(r#"Bearer realm="""#), Ok(None));
        assert_eq!(claims_challenge_from_header(""), Ok(None));
        assert_eq!(claims_challenge_from_header("Basic realm=x"), Ok(None));
        assert_eq!(one(r#"Bearer claims="  ""#).claims(), Ok(None));
        assert_eq!(
            is_insufficient_claims(r#"Basic error="insufficient_claims""#),
            Ok(false)
        );
        assert_eq!(parse_www_authenticate(" , ,"), Ok(Vec::new()));
    }

    #[test]
    fn accepts_both_alphabets_with_or_without_padding() {
        // 11 bytes, so padded; '+' in standard base64, '-' in URL-safe.
        let json = r#"{"a":"??>"}"#;
        let expected = Claims::parse(json).unwrap();
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let mut encodings: Vec<String> = engines.iter().map(|e| e.encode(json)).collect();
        encodings.dedup();
        assert_eq!(encodings.len(), 4, "{encodings:?}");
        assert!(encodings.iter().any(|e| e.contains('/') || e.contains('+')));
        assert!(encodings.iter().any(|e| e.contains('_') || e.contains('-')));
        for encoded in encodings {
            let c = one(&format!(r#"Bearer claims="{encoded}""#));
            assert_eq!(c.claims(), Ok(Some(expected.clone())), "{encoded}");
        }
    }

    #[test]
    fn bad_base64_is_an_error() {
        for bad in ["e$J9", "eyJ9!", "a", "ey J9"] {
            assert_eq!(
                one(&format!(r#"Bearer claims="{bad}""#)).claims(),
                Err(ClaimsError::ClaimsNotBase64),
                "{bad}"
            );
        }
        assert_eq!(
            claims_challenge_from_header(r#"Bearer claims="%%%""#),
            Err(ClaimsError::ClaimsNotBase64)
        );
    }

    #[test]
    fn non_utf8_claims_are_an_error() {
        let encoded = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b'{']);
        assert_eq!(
            one(&format!(r#"Bearer claims="{encoded}""#)).claims(),
            Err(ClaimsError::ClaimsNotUtf8)
        );
    }

    #[test]
    fn non_object_claims_are_an_error() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("[1,2]");
        assert_eq!(
            one(&format!(r#"Bearer claims="{encoded}""#)).claims(),
            Err(ClaimsError::NotAnObject {
                found: crate::JsonKind::Array
            })
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode("{nope");
        assert!(matches!(
            one(&format!(r#"Bearer claims="{encoded}""#)).claims(),
            Err(ClaimsError::Syntax { .. })
        ));
    }

    #[test]
    fn decoded_claims_respect_the_claims_cap() {
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(crate::MAX_CLAIMS_LEN));
        let challenge = Challenge {
            scheme: "Bearer".to_owned(),
            token68: None,
            params: vec![(
                "claims".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(&big),
            )],
        };
        assert!(matches!(
            challenge.claims(),
            Err(ClaimsError::TooLarge { .. })
        ));
    }

    #[test]
    fn oversize_header_is_an_error() {
        let header = format!(r#"Bearer realm="{}""#, "x".repeat(MAX_HEADER_LEN));
        assert_eq!(
            parse_www_authenticate(&header),
            Err(ClaimsError::HeaderTooLong {
                len: header.len(),
                max: MAX_HEADER_LEN
            })
        );
        let fits = format!(r#"Bearer realm="{}""#, "x".repeat(MAX_HEADER_LEN - 15));
        assert_eq!(fits.len(), MAX_HEADER_LEN);
        assert!(parse_www_authenticate(&fits).is_ok());
    }

    #[test]
    fn too_many_params_is_an_error() {
        let params: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        let header = format!("Bearer {}", params.join(", "));
        assert_eq!(
            parse_www_authenticate(&header),
            Err(ClaimsError::HeaderTooBig {
                what: "parameters",
                max: MAX_PARAMS
            })
        );
        let header = format!("Bearer {}", params[..MAX_PARAMS].join(", "));
        assert_eq!(
            parse_www_authenticate(&header).unwrap()[0].params().count(),
            MAX_PARAMS
        );
    }

    #[test]
    fn too_many_challenges_is_an_error() {
        let header = vec!["Basic"; MAX_CHALLENGES + 1].join(", ");
        assert_eq!(
            parse_www_authenticate(&header),
            Err(ClaimsError::HeaderTooBig {
                what: "challenges",
                max: MAX_CHALLENGES
            })
        );
        let header = vec!["Basic"; MAX_CHALLENGES].join(", ");
        assert_eq!(
            parse_www_authenticate(&header).unwrap().len(),
            MAX_CHALLENGES
        );
    }

    #[test]
    fn malformed_headers_are_syntax_errors() {
        for header in [
            r#"Bearer realm="unterminated"#,
            r#"Bearer realm="x\"#,
            r#"Bearer realm="a" error="b""#,
            r#"Bearer realm=, error=x"#,
            r#"Bearer "quoted""#,
            r#"="x""#,
            r#"Bearer="x""#,
            "Bearer realm=\"a\"b",
            "Bearer a=b, =c",
            "Bear{er realm=x",
            "Bearer réalm=x",
        ] {
            assert!(syntax_error(header), "{header}");
        }
    }

    #[test]
    fn debug_redacts_values_but_keeps_names() {
        let c = one(&format!(
            r#"Bearer realm="r", error="insufficient_claims", claims="{CAE}", nonce="n-123""#
        ));
        let shown = format!("{c:?}");
        assert!(shown.contains("Bearer"), "{shown}");
        assert!(shown.contains(r#""realm": "r""#), "{shown}");
        assert!(
            shown.contains(r#""error": "insufficient_claims""#),
            "{shown}"
        );
        assert!(shown.contains(r#""claims": <redacted>"#), "{shown}");
        assert!(shown.contains(r#""nonce": <redacted>"#), "{shown}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(!shown.contains("n-123"), "{shown}");
        let shown = format!("{:?}", one("Negotiate c2VjcmV0"));
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("token68: <redacted>"), "{shown}");
    }

    #[test]
    fn duplicate_params_first_wins() {
        let c = one("Bearer error=a, ERROR=b");
        assert_eq!(c.error(), Some("a"));
        assert_eq!(c.params().count(), 2);
    }
}
