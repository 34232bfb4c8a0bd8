//! Azure Arc: `GET $IDENTITY_ENDPOINT?api-version=2020-06-01&resource=…` with `Metadata: true`.
//! The agent answers 401 with `WWW-Authenticate: Basic realm=<key file>`; the key file must be
//! a `.key` file directly inside the agent's token directory and at most 4096 bytes; its
//! content is sent back as `Authorization: Basic <content>`. System-assigned only.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use entra_core::wire::endpoint;
use entra_core::{Env, Error, HttpRequest, HttpResponse, ResponseProblem, Secret};
use http::Method;
use url::Url;

use crate::detect::var;
use crate::source::{
    ManagedIdentitySource, header, parse_endpoint, request, secret_header_value,
    unsupported_selector,
};
use crate::{FileSystem, ManagedIdentityId, ManagedIdentitySourceKind};

const API_VERSION: &str = "2020-06-01";
/// The endpoint when the agent is installed but `IDENTITY_ENDPOINT` is not set.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:40342/metadata/identity/oauth2/token";
/// Where the Arc agent writes its key files on Linux.
pub const ARC_KEY_DIRECTORY: &str = "/var/opt/azcmagent/tokens";
/// Largest key file accepted.
const MAX_KEY_BYTES: u64 = 4096;

#[derive(Debug)]
pub(crate) struct AzureArc {
    endpoint: Url,
    key_directory: PathBuf,
    fs: Arc<dyn FileSystem>,
}

impl AzureArc {
    /// `key_directory` replaces the platform's token directory (tests only).
    pub(crate) fn new(
        env: &dyn Env,
        id: &ManagedIdentityId,
        fs: Arc<dyn FileSystem>,
        key_directory: Option<PathBuf>,
    ) -> Result<Self, Error> {
        if *id != ManagedIdentityId::SystemAssigned {
            return Err(unsupported_selector(
                "azure arc",
                "supports only the system-assigned identity; remove the user-assigned identity selector",
            ));
        }
        let endpoint = match var(env, "IDENTITY_ENDPOINT") {
            Some(url) => parse_endpoint("IDENTITY_ENDPOINT", url.trim())?,
            None => parse_endpoint("IDENTITY_ENDPOINT", DEFAULT_ENDPOINT)?,
        };
        let key_directory = match key_directory {
            Some(dir) => dir,
            None => default_key_directory(env)?,
        };
        Ok(Self {
            endpoint,
            key_directory,
            fs,
        })
    }

    /// The key file named by the challenge, after checking it is where the agent keeps keys.
    fn key_path(&self, response: &HttpResponse) -> Result<PathBuf, Error> {
        key_path(response, &endpoint(&self.endpoint), &self.key_directory)
    }
}

/// The key file named by a 401's `WWW-Authenticate: Basic realm=<path>`, refused unless it is
/// a `.key` file directly in `key_directory`. Errors never quote the header.
pub(crate) fn key_path(
    response: &HttpResponse,
    endpoint: &str,
    key_directory: &Path,
) -> Result<PathBuf, Error> {
    let problem = |problem| Error::UnexpectedResponse {
        status: 401,
        endpoint: endpoint.to_owned(),
        problem,
    };
    let challenge = response
        .header("www-authenticate")
        .ok_or_else(|| problem(ResponseProblem::MissingField("www-authenticate")))?;
    let invalid = || problem(ResponseProblem::InvalidField("www-authenticate"));
    let (scheme, rest) = challenge.trim().split_once(' ').ok_or_else(invalid)?;
    let (name, value) = rest.trim().split_once('=').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") || !name.trim().eq_ignore_ascii_case("realm") {
        return Err(invalid());
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let path = PathBuf::from(value);
    if !is_allowed_key_path(&path, key_directory) {
        tracing::warn!("the azure arc agent named a key file outside its token directory; refused");
        return Err(Error::Configuration(format!(
            "the azure arc agent asked for a key file that is not a .key file directly in {}; check the agent installation",
            key_directory.display()
        )));
    }
    Ok(path)
}

/// The agent's token directory: fixed on Linux, under `%ProgramData%` on Windows.
fn default_key_directory(env: &dyn Env) -> Result<PathBuf, Error> {
    if cfg!(windows) {
        let program_data = var(env, "ProgramData").ok_or_else(|| {
            Error::Configuration(
                "ProgramData is not set, so the azure arc token directory is unknown".to_owned(),
            )
        })?;
        Ok(Path::new(&program_data)
            .join("AzureConnectedMachineAgent")
            .join("Tokens"))
    } else {
        Ok(PathBuf::from(ARC_KEY_DIRECTORY))
    }
}

/// `path` is `<directory>/<name>.key`: absolute, no `.` or `..` segments (checked on the text
/// too, as `Path` silently drops inner `.`), parent exactly `directory`, extension `key`. No
/// canonicalisation (which would follow links and touch disk).
fn is_allowed_key_path(path: &Path, directory: &Path) -> bool {
    let text = path.to_string_lossy();
    path.is_absolute()
        && !text
            .split(['/', '\\'])
            .any(|segment| segment == "." || segment == "..")
        && path
            .components()
            .all(|c| !matches!(c, Component::ParentDir | Component::CurDir))
        && path.parent() == Some(directory)
        && path.extension().is_some_and(|e| e == "key")
        && path.file_stem().is_some_and(|s| !s.is_empty())
}

impl ManagedIdentitySource for AzureArc {
    fn kind(&self) -> ManagedIdentitySourceKind {
        ManagedIdentitySourceKind::AzureArc
    }

    fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn request(&self, resource: &str) -> HttpRequest {
        let mut request = request(
            Method::GET,
            &self.endpoint,
            &[("api-version", API_VERSION), ("resource", resource)],
        );
        header(&mut request, "metadata", "true");
        request
    }

    fn challenge(
        &self,
        resource: &str,
        response: &HttpResponse,
    ) -> Result<Option<HttpRequest>, Error> {
        if response.status != 401 {
            return Ok(None);
        }
        let path = self.key_path(response)?;
        let content = self
            .fs
            .read_at_most(&path, MAX_KEY_BYTES + 1)
            .map_err(|e| {
                Error::Configuration(format!(
                    "cannot read the azure arc key file ({}); run as a user in the himds group or as root",
                    e.kind()
                ))
            })?;
        if content.len() as u64 > MAX_KEY_BYTES {
            return Err(Error::Configuration(format!(
                "the azure arc key file is larger than {MAX_KEY_BYTES} bytes; check the agent installation"
            )));
        }
        let key = String::from_utf8(content).map_err(|_| {
            Error::Configuration(
                "the azure arc key file is not text; check the agent installation".to_owned(),
            )
        })?;
        let key = Secret::new(key.trim());
        let authorization = secret_header_value(
            &Secret::new(format!("Basic {}", key.expose())),
            "the azure arc key file",
        )?;
        let mut request = self.request(resource);
        request.headers.insert("authorization", authorization);
        Ok(Some(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryFileSystem;
    use entra_core::MapEnv;
    use http::HeaderValue;

    const DIR: &str = "/var/opt/azcmagent/tokens";

    fn arc(fs: &MemoryFileSystem) -> AzureArc {
        AzureArc::new(
            &MapEnv::default(),
            &ManagedIdentityId::SystemAssigned,
            Arc::new(fs.clone()),
            None,
        )
        .unwrap()
    }

    fn challenge(realm: &str) -> HttpResponse {
        let mut r = HttpResponse::new(401, "");
        r.headers
            .insert("www-authenticate", HeaderValue::from_str(realm).unwrap());
        r
    }

    #[test]
    fn first_request_and_default_endpoint() {
        let source = arc(&MemoryFileSystem::new());
        let request = source.request("https://management.azure.com");
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:40342/metadata/identity/oauth2/token?api-version=2020-06-01&resource=https%3A%2F%2Fmanagement.azure.com"
        );
        assert_eq!(request.headers["metadata"], "true");
        assert!(!request.headers.contains_key("authorization"));
        let env = MapEnv::new([(
            "IDENTITY_ENDPOINT",
            "http://localhost:40342/metadata/identity/oauth2/token",
        )]);
        let source = AzureArc::new(
            &env,
            &ManagedIdentityId::SystemAssigned,
            Arc::new(MemoryFileSystem::new()),
            None,
        )
        .unwrap();
        assert_eq!(source.endpoint().host_str(), Some("localhost"));
        // Other answers are not challenges.
        assert!(
            source
                .challenge("r", &HttpResponse::new(200, ""))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_challenge_is_answered_with_the_key_file() {
        let fs = MemoryFileSystem::new().with_file(format!("{DIR}/abc.key"), "KEY-SECRET\n");
        let source = arc(&fs);
        for realm in [
            format!("Basic realm={DIR}/abc.key"),
            format!("basic realm=\"{DIR}/abc.key\""),
        ] {
            let request = source
                .challenge("https://management.azure.com", &challenge(&realm))
                .unwrap()
                .unwrap();
            assert_eq!(request.headers["authorization"], "Basic KEY-SECRET");
            assert!(request.headers["authorization"].is_sensitive());
            assert_eq!(request.headers["metadata"], "true");
            assert!(
                request
                    .url
                    .as_str()
                    .contains("api-version=2020-06-01&resource=")
            );
            assert!(!format!("{request:?}").contains("KEY-SECRET"));
        }
    }

    #[test]
    fn key_paths_outside_the_directory_are_refused_without_reading() {
        let fs = MemoryFileSystem::new();
        for bad in [
            format!("{DIR}/../../../etc/shadow.key"),
            format!("{DIR}/sub/abc.key"),
            format!("{DIR}/./abc.key"),
            format!("{DIR}/abc.txt"),
            format!("{DIR}/abc"),
            format!("{DIR}/.key"),
            "/etc/abc.key".to_owned(),
            "abc.key".to_owned(),
            "/var/opt/azcmagent/tokens2/abc.key".to_owned(),
        ] {
            let err = arc(&fs)
                .challenge("r", &challenge(&format!("Basic realm={bad}")))
                .unwrap_err();
            assert!(matches!(err, Error::Configuration(_)), "{bad}: {err}");
        }
        assert!(fs.reads().is_empty());
    }

    #[test]
    fn malformed_challenges_and_files_are_errors() {
        let fs = MemoryFileSystem::new()
            .with_file(format!("{DIR}/big.key"), vec![b'k'; 4097])
            .with_file(format!("{DIR}/max.key"), vec![b'k'; 4096])
            .with_file(format!("{DIR}/bin.key"), vec![0xff, 0xfe]);
        let source = arc(&fs);
        for header in [
            String::new(),
            "Bearer realm=x".to_owned(),
            format!("Basic {DIR}/max.key"),
            "Basic".to_owned(),
        ] {
            let response = if header.is_empty() {
                HttpResponse::new(401, "")
            } else {
                challenge(&header)
            };
            assert!(
                matches!(
                    source.challenge("r", &response),
                    Err(Error::UnexpectedResponse { status: 401, .. })
                ),
                "{header}"
            );
        }
        assert!(matches!(
            source.challenge("r", &challenge(&format!("Basic realm={DIR}/big.key"))),
            Err(Error::Configuration(m)) if m.contains("4096")
        ));
        assert!(
            source
                .challenge("r", &challenge(&format!("Basic realm={DIR}/max.key")))
                .is_ok()
        );
        assert!(
            source
                .challenge("r", &challenge(&format!("Basic realm={DIR}/bin.key")))
                .is_err()
        );
        assert!(matches!(
            source.challenge("r", &challenge(&format!("Basic realm={DIR}/missing.key"))),
            Err(Error::Configuration(m)) if m.contains("cannot read")
        ));
    }

    #[test]
    fn the_test_directory_replaces_the_platform_one_and_selectors_are_refused() {
        let fs = MemoryFileSystem::new().with_file("/tmp/arc-test/k.key", "K");
        let source = AzureArc::new(
            &MapEnv::default(),
            &ManagedIdentityId::SystemAssigned,
            Arc::new(fs.clone()),
            Some(PathBuf::from("/tmp/arc-test")),
        )
        .unwrap();
        assert!(
            source
                .challenge("r", &challenge("Basic realm=/tmp/arc-test/k.key"))
                .is_ok()
        );
        assert!(
            source
                .challenge("r", &challenge(&format!("Basic realm={DIR}/k.key")))
                .is_err()
        );
        for id in [
            ManagedIdentityId::ClientId("c".into()),
            ManagedIdentityId::ObjectId("o".into()),
            ManagedIdentityId::ResourceId("/r".into()),
        ] {
            assert!(matches!(
                AzureArc::new(&MapEnv::default(), &id, Arc::new(fs.clone()), None),
                Err(Error::Configuration(m)) if m.contains("system-assigned")
            ));
        }
    }
}
