//! Fuzz what the Azure CLI (`az account get-access-token`) and the Azure Developer CLI
//! (`azd auth token`) print, through `entra::AzureCliCredential` and
//! `entra::AzureDeveloperCliCredential` with an injected process runner: any exit code, stdout
//! and stderr. Checks: no panic; a token planted in stdout (as `accessToken` / `token`) or as a
//! JWT-like word in stderr never appears in the resulting error's Display or Debug, nor in the
//! token's Debug; a success returns exactly the planted token.

#![no_main]

mod common;

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use common::{MARKER, assert_hidden, plant};
use entra::{
    AzureCliCredential, AzureDeveloperCliCredential, DeveloperToolOptions, ProcessCommand,
    ProcessError, ProcessOutput, ProcessRunner,
};
use entra_core::{AccessToken, Error, MapEnv, TokenCredential, TokenRequest};

/// A JWT-like token whose payload is the marker.
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.zzPLANTEDSECRETzz.c2lnbmF0dXJl";

#[derive(Debug)]
struct Canned(ProcessOutput);

#[async_trait::async_trait]
impl ProcessRunner for Canned {
    async fn run(&self, _command: &ProcessCommand) -> Result<ProcessOutput, ProcessError> {
        Ok(self.0.clone())
    }
}

/// A directory holding empty `az` and `azd` files, for the PATH lookup.
fn tool_directory() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("entra-fuzz-tools-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        for tool in ["az", "azd"] {
            std::fs::write(dir.join(tool), b"").expect("a tool file");
        }
        dir
    })
}

/// Polls once: the canned runner never waits.
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a developer tool credential waited on a canned process"),
    }
}

fn check(output: ProcessOutput, planted: bool) {
    let options = || {
        let path = tool_directory().to_string_lossy().into_owned();
        DeveloperToolOptions::new()
            .env(Arc::new(MapEnv::new([("PATH", path)])))
            .process_runner(Arc::new(Canned(output.clone())))
    };
    let request = TokenRequest::new(["https://management.azure.com/.default"]);
    let results: [Result<AccessToken, Error>; 2] = [
        now_or_never(AzureCliCredential::new(options()).get_token(&request)),
        now_or_never(AzureDeveloperCliCredential::new(options()).get_token(&request)),
    ];
    for result in results {
        match result {
            Ok(token) => {
                assert!(output.success);
                assert!(!token.token().expose().trim().is_empty());
                if planted {
                    assert_eq!(token.token().expose(), MARKER);
                    assert_hidden(&format!("{token:?}"));
                }
            }
            Err(e) if planted => assert_hidden(&format!("{e} {e:?}")),
            Err(_) => {}
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&code, rest)) = data.split_first() else {
        return;
    };
    if String::from_utf8_lossy(rest).contains(MARKER) {
        return;
    }
    let code = match code % 4 {
        0 => 0,
        1 => 1,
        2 => 127,
        _ => i32::from(code),
    };
    // stdout, NUL, stderr.
    let (stdout, stderr) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    check(ProcessOutput::new(code, stdout, stderr), false);

    let stdout = plant(stdout, &["accessToken", "token"]).unwrap_or_else(|| stdout.to_vec());
    // The token as a word of its own, between the fuzzer's halves of stderr.
    let half = stderr.len() / 2;
    let mut planted_stderr = stderr[..half].to_vec();
    planted_stderr.extend_from_slice(format!(" {JWT} ").as_bytes());
    planted_stderr.extend_from_slice(&stderr[half..]);
    check(ProcessOutput::new(code, stdout, planted_stderr), true);
});
