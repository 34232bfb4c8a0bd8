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

mod token {
    use super::*;
    use entra_emulator::{AppRegistration, Emulator, ManagedIdentity};

    const TENANT: &str = "11111111-1111-1111-1111-111111111111";
    const APP: &str = "aaaaaaaa-0000-0000-0000-0000000000c1";
    const SECRET: &str = "cli-test-secret-value-5b7e";
    const BLUEPRINT: &str = "b1000000-0000-0000-0000-0000000000c1";
    const AGENT: &str = "a9e00000-0000-0000-0000-0000000000c1";
    const GRAPH: &str = "https://graph.microsoft.com/.default";

    struct Fixture {
        emulator: Emulator,
        ca: std::path::PathBuf,
        _dir: TempDir,
    }

    /// A directory removed when dropped.
    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn fixture(name: &str) -> Fixture {
        let emulator = Emulator::start().await.unwrap();
        emulator.add_tenant(TENANT).unwrap();
        emulator
            .add_application(TENANT, AppRegistration::new(APP).client_secret(SECRET))
            .unwrap();
        emulator
            .add_agent_blueprint(
                TENANT,
                AppRegistration::new(BLUEPRINT).client_secret(SECRET),
            )
            .unwrap();
        emulator
            .add_agent_identity(TENANT, BLUEPRINT, AGENT)
            .unwrap();
        emulator
            .set_system_assigned_identity(ManagedIdentity::new(
                TENANT,
                "c1d00000-0000-0000-0000-0000000000c1",
                "0b100000-0000-0000-0000-0000000000c1",
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
            ))
            .unwrap();
        let dir = std::env::temp_dir().join(format!("entra-cli-{name}-{}", std::process::id()));
        let ca = emulator.write_ca_pem(&dir).unwrap();
        Fixture {
            emulator,
            ca,
            _dir: TempDir(dir),
        }
    }

    /// `entra token …` with exactly `vars` as its environment.
    fn token(f: &Fixture, vars: &[(&str, &str)], args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_entra"));
        command
            .env_clear()
            .arg("token")
            .args(["--authority", &f.emulator.https_url()])
            .arg("--ca-file")
            .arg(&f.ca)
            .args(args)
            .envs(vars.iter().copied())
            .stdin(Stdio::null());
        command.output().unwrap()
    }

    fn app_env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", APP),
            ("AZURE_CLIENT_SECRET", SECRET),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_output_format_and_the_exit_code_classes() {
        let f = fixture("formats").await;
        let env = app_env();
        let json = token(&f, &env, &["--credential", "secret", "--scope", GRAPH]);
        assert!(json.status.success(), "{}", text(&json.stderr));
        let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let jwt = value["access_token"].as_str().unwrap().to_owned();
        assert_eq!(value["token_type"], "Bearer");
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &jwt,
            &f.emulator.decoding_key(),
            &f.emulator.validation(TENANT, "https://graph.microsoft.com"),
        )
        .unwrap()
        .claims;
        assert_eq!(claims["appid"], APP);

        let raw = token(
            &f,
            &env,
            &["--credential", "env", "--scope", GRAPH, "--output", "raw"],
        );
        assert!(raw.status.success(), "{}", text(&raw.stderr));
        assert!(text(&raw.stdout).trim().starts_with("eyJ"));
        assert_eq!(text(&raw.stdout).lines().count(), 1);

        let az = token(
            &f,
            &env,
            &["--credential", "secret", "--scope", GRAPH, "--output", "az"],
        );
        let value: serde_json::Value = serde_json::from_slice(&az.stdout).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "accessToken",
                "expiresOn",
                "expires_on",
                "subscription",
                "tenant",
                "tokenType"
            ]
        );

        let mut exec_env = env.clone();
        exec_env.push((
            "KUBERNETES_EXEC_INFO",
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#,
        ));
        let exec = token(
            &f,
            &exec_env,
            &[
                "--credential",
                "secret",
                "--scope",
                GRAPH,
                "--output",
                "exec-credential",
            ],
        );
        let value: serde_json::Value = serde_json::from_slice(&exec.stdout).unwrap();
        assert_eq!(value["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(value["kind"], "ExecCredential");
        assert!(
            value["status"]["token"]
                .as_str()
                .unwrap()
                .starts_with("eyJ")
        );

        // Refused by the identity platform: exit 4, the AADSTS code shown, no secret.
        let bad = token(
            &f,
            &[
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", APP),
                ("AZURE_CLIENT_SECRET", "wrong-secret-value"),
            ],
            &["--credential", "secret", "--scope", GRAPH],
        );
        assert_eq!(bad.status.code(), Some(4), "{}", text(&bad.stderr));
        let stderr = text(&bad.stderr);
        assert!(stderr.contains("7000215"), "{stderr}");
        assert!(!stderr.contains("wrong-secret-value"), "{stderr}");
        assert!(bad.stdout.is_empty());

        // Usage: no scope (2); unavailable: no az on PATH (3).
        assert_eq!(
            token(&f, &env, &["--credential", "secret"]).status.code(),
            Some(2)
        );
        let cli = token(
            &f,
            &[("PATH", "/nonexistent")],
            &["--credential", "cli", "--scope", GRAPH],
        );
        assert_eq!(cli.status.code(), Some(3), "{}", text(&cli.stderr));
        // Network: nothing listens there (5).
        let mut offline = Command::new(env!("CARGO_BIN_EXE_entra"));
        let offline = offline
            .env_clear()
            .envs(env.iter().copied())
            .args([
                "token",
                "--credential",
                "secret",
                "--scope",
                GRAPH,
                "--authority",
                "https://127.0.0.1:9",
            ])
            .output()
            .unwrap();
        assert_eq!(offline.status.code(), Some(5), "{}", text(&offline.stderr));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agent_fmi_path_managed_identity_and_session() {
        let f = fixture("agents").await;
        let blueprint_env = [("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_SECRET", SECRET)];
        // The blueprint's T1 for an agent identity.
        let t1 = token(
            &f,
            &blueprint_env,
            &[
                "--credential",
                "secret",
                "--client-id",
                BLUEPRINT,
                "--fmi-path",
                AGENT,
                "--output",
                "raw",
            ],
        );
        assert!(t1.status.success(), "{}", text(&t1.stderr));
        let decoded = entra(&["decode"], Some(&text(&t1.stdout)));
        let value: serde_json::Value = serde_json::from_slice(&decoded.stdout).unwrap();
        assert!(value["claims"]["sub"].as_str().unwrap().ends_with(AGENT));

        // The agent identity's token, in an agentic session from the environment.
        let mut session_env = blueprint_env.to_vec();
        session_env.push(("COPILOT_AGENT_SESSION_ID", "cli-session-7"));
        let agent = token(
            &f,
            &session_env,
            &[
                "--credential",
                "agent",
                "--blueprint-id",
                BLUEPRINT,
                "--agent-id",
                AGENT,
                "--scope",
                GRAPH,
                "--output",
                "raw",
            ],
        );
        assert!(agent.status.success(), "{}", text(&agent.stderr));
        let decoded = entra(&["decode"], Some(&text(&agent.stdout)));
        let value: serde_json::Value = serde_json::from_slice(&decoded.stdout).unwrap();
        assert_eq!(value["claims"]["xms_par_app_azp"], BLUEPRINT);
        assert_eq!(value["claims"]["xms_cli_ses"], "cli-session-7");
        assert!(value["explained"]["xms_par_app_azp"].as_str().is_some());

        // agent-user needs exactly one of --user-id / --username.
        let both = token(
            &f,
            &blueprint_env,
            &[
                "--credential",
                "agent-user",
                "--blueprint-id",
                BLUEPRINT,
                "--agent-id",
                AGENT,
                "--user-id",
                "u",
                "--username",
                "n",
                "--scope",
                GRAPH,
            ],
        );
        assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));

        // Managed identity through IMDS at the emulator.
        let http = f.emulator.http_url();
        let mi = token(
            &f,
            &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", http.as_str())],
            &[
                "--credential",
                "mi",
                "--scope",
                "https://management.azure.com/.default",
            ],
        );
        assert!(mi.status.success(), "{}", text(&mi.stderr));
    }
}

/// `entra emulator --config FILE.toml` in the foreground, then `entra token` against it with
/// the application the TOML seeded.
#[test]
fn the_emulator_command_serves_what_its_toml_config_seeds() {
    use std::io::{BufRead as _, BufReader};
    let dir = std::env::temp_dir().join(format!("entra-cli-emulator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("emulator.toml");
    std::fs::write(
        &config,
        r#"
[emulator]
bind = "127.0.0.1"

[[seed.tenants]]
tenant_id = "33333333-3333-3333-3333-333333333333"

[[seed.tenants.applications]]
client_id = "aaaaaaaa-0000-0000-0000-0000000000e1"
client_secrets = ["toml-seeded-secret"]
"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_entra"))
        .arg("emulator")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut authority = None;
    let mut ca = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("authority"), Some("host")) => authority = words.next().map(str::to_owned),
            (Some("CA"), Some("certificate")) => ca = words.next().map(str::to_owned),
            _ => {}
        }
        if line.contains("admin API") {
            break;
        }
    }
    let (authority, ca) = (authority.expect("authority line"), ca.expect("CA line"));
    let out = Command::new(env!("CARGO_BIN_EXE_entra"))
        .env_clear()
        .env("AZURE_CLIENT_SECRET", "toml-seeded-secret")
        .args([
            "token",
            "--credential",
            "secret",
            "--tenant",
            "33333333-3333-3333-3333-333333333333",
            "--client-id",
            "aaaaaaaa-0000-0000-0000-0000000000e1",
            "--scope",
            "https://graph.microsoft.com/.default",
            "--output",
            "raw",
            "--authority",
            &authority,
            "--ca-file",
            &ca,
        ])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("eyJ"));
}
