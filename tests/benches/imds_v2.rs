//! IMDSv2 costs against the in-process emulator: a cold mint (platform metadata, RSA-2048 key
//! generation, CSR, issuecredential, mTLS handshake and token leg) and a warm bound token
//! served from the caches; plus key generation alone.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use entra_core::{MapEnv, TokenCredential, TokenRequest};
use entra_emulator::{Emulator, ManagedIdentity};
use entra_mi::ManagedIdentityCredential;
use entra_mi::entra_mtls_pop::{KeyProvider, SoftwareKeyProvider};
use futures_util::FutureExt as _;

const ARM: &str = "https://management.azure.com/.default";
const TENANT: &str = "11111111-1111-1111-1111-111111111111";

fn credential(emulator: &Emulator) -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(Arc::new(MapEnv::new([(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            emulator.http_url(),
        )])))
        .mtls_proof_of_possession(true)
        .mtls_extra_root_certificates_pem(emulator.ca_pem().as_bytes().to_vec())
        .build()
        .expect("credential")
}

fn imds_v2(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = rt.block_on(async {
        let emulator = Emulator::start().await.expect("emulator");
        emulator.add_tenant(TENANT).expect("tenant");
        emulator
            .set_system_assigned_identity(ManagedIdentity::new(
                TENANT,
                "c-1",
                "o-1",
                "/subscriptions/s/vm",
            ))
            .expect("identity");
        emulator
    });
    let request = TokenRequest::new([ARM]);

    let mut group = c.benchmark_group("imds_v2");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("cold_mint_and_bound_token", |b| {
        b.iter(|| {
            rt.block_on(async {
                let credential = credential(&emulator);
                credential
                    .get_bound_token(&request)
                    .await
                    .expect("bound token")
            })
        })
    });
    group.bench_function("rsa_2048_key_generation", |b| {
        b.iter(|| SoftwareKeyProvider::default().generate().expect("key"))
    });
    group.finish();

    let warm = credential(&emulator);
    rt.block_on(warm.get_token(&request)).expect("first token");
    let mut group = c.benchmark_group("imds_v2_warm");
    group.bench_function("bound_token_from_cache", |b| {
        b.iter(|| {
            warm.get_token(&request)
                .now_or_never()
                .expect("a cached bound token is served without waiting")
                .expect("token")
        })
    });
    group.finish();
}

criterion_group!(benches, imds_v2);
criterion_main!(benches);
