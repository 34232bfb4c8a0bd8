//! The `entra` binary end to end: the demo, decode, and exit codes.
#![allow(clippy::disallowed_methods)] // these tests run the binary: Command::new is their edge

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn entra(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_entra"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the entra binary starts");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_demo_runs_every_step_and_exits_zero() {
    let out = entra(&["demo"], None);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed ({:?}):\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(stdout.contains("8 of 8 steps worked"), "{stdout}");
    for flow in [
        "client secret",
        "certificate",
        "IMDSv1",
        "IMDSv2 mTLS PoP",
        "agent identity",
        "agent user",
        "agentic session",
        "cache hit",
    ] {
        assert!(stdout.contains(flow), "{flow} in\n{stdout}");
    }
    assert!(stdout.contains("mtls_pop"), "{stdout}");
    // No token is printed by the demo (only the table).
    assert!(!stdout.contains("eyJ"), "{stdout}");
}

#[test]
fn decode_reads_stdin_and_explains_without_claiming_verification() {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD
        .encode(r#"{"aud":"https://graph.microsoft.com","exp":1700000000,"xms_par_app_azp":"bp"}"#);
    let token = format!("{header}.{claims}.sig");
    let out = entra(&["decode"], Some(&token));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["claims"]["aud"], "https://graph.microsoft.com");
    assert_eq!(json["explained"]["exp"], "2023-11-14T22:13:20Z");
    assert!(
        json["signature"]
            .as_str()
            .unwrap()
            .starts_with("NOT VERIFIED")
    );

    let out = entra(&["decode", "my-secret-not-a-jwt"], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a JWT"), "{stderr}");
    assert!(!stderr.contains("my-secret"), "{stderr}");
}

#[test]
fn unknown_arguments_are_usage_errors() {
    let out = entra(&["frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
}
