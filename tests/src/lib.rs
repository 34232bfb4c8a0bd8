//! Shared helpers for the cross-crate integration tests: an emulator with a tenant and
//! applications, clients wired to it over real TLS, and log capture for secret-leak checks.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use entra_core::{
    AuthorityHost, ClientCredential, HttpTransport, ManualClock, ReqwestTransport, TokenClient,
};
use entra_emulator::Emulator;

/// The tenant every test registers.
pub const TENANT: &str = "11111111-1111-1111-1111-111111111111";
/// A scope of a resource the emulator knows.
pub const GRAPH: &str = "https://graph.microsoft.com/.default";

/// A transport that trusts only the emulator's CA.
pub fn transport(emulator: &Emulator) -> Arc<dyn HttpTransport> {
    let transport = ReqwestTransport::builder()
        .add_root_certificates_pem(emulator.ca_pem().as_bytes())
        .and_then(|b| b.only_added_roots(true).build())
        .unwrap_or_else(|e| panic!("transport for the emulator: {e}"));
    Arc::new(transport)
}

/// A token client for `client_id` with `credential`, against the emulator over https, on a
/// virtual clock.
pub fn client(
    emulator: &Emulator,
    client_id: &str,
    credential: ClientCredential,
    clock: &ManualClock,
) -> TokenClient {
    TokenClient::builder(client_id)
        .authority(AuthorityHost::parse(&emulator.https_url()).unwrap_or_else(|e| panic!("{e}")))
        .tenant(TENANT)
        .and_then(|b| {
            b.credential(credential)
                .transport(transport(emulator))
                .clock(Arc::new(clock.clone()))
                .build()
        })
        .unwrap_or_else(|e| panic!("token client: {e}"))
}

/// A virtual clock at the emulator's current time (tokens carry the emulator's real time).
pub fn clock_now() -> ManualClock {
    #[allow(clippy::disallowed_methods)] // the tests' one link to real time
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    ManualClock::at_unix_seconds(now)
}

/// Everything written through `tracing` by any test of this test binary, for secret-leak
/// checks: installed as the global subscriber on first use (thread-local subscribers miss
/// events when tests run in parallel, because callsite interest is cached process-wide).
#[derive(Clone, Default, Debug)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// The process-wide capture, installed on first call.
    pub fn global() -> &'static Self {
        static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Self::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            // Another subscriber may exist only if a test installed one; then this one stays
            // unused and the leak checks see no flow markers and fail loudly.
            let _ = tracing::subscriber::set_global_default(subscriber);
            logs
        })
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
