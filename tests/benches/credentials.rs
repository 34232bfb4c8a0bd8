//! What a user of the facade pays: a cache hit through `ClientSecretCredential::get_token` at
//! 1, 10k and 1M cached tokens next to the floor (a bare `HashMap` lookup plus an `Arc` clone);
//! contended hits on all cores; a cold miss against the in-process emulator; N concurrent
//! callers on a cold key (requests made, time to all answered). Memory per cached token is
//! measured by the `memory` bench (its counting allocator would slow these).
//!
//! Figures that are not times (requests made, bytes per token) are written to
//! `target/bench-extra/*.json`, which `cargo xtask bench` adds to its report.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use entra::{ClientSecretCredential, CredentialOptions};
use entra_cache::{CacheConfig, CacheKey, Fresh, TokenCache};
use entra_claims::Claims;
use entra_core::{
    AccessToken, AccessTokenCache, AuthorityHost, Secret, TokenCredential, TokenRequest, TokenType,
};
use entra_emulator::{AppRegistration, Emulator};
use futures_util::FutureExt as _;

const TENANT: &str = "11111111-1111-1111-1111-111111111111";
const APP: &str = "aaaaaaaa-0000-0000-0000-0000000000be";
const SECRET: &str = "bench-secret";
const GRAPH: &str = "https://graph.microsoft.com/.default";
const SIZES: [usize; 3] = [1, 10_000, 1_000_000];

struct Setup {
    rt: tokio::runtime::Runtime,
    emulator: Emulator,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = rt.block_on(async {
        let emulator = Emulator::start().await.expect("emulator");
        emulator.add_tenant(TENANT).expect("tenant");
        emulator
            .add_application(TENANT, AppRegistration::new(APP).client_secret(SECRET))
            .expect("app");
        emulator
    });
    Setup { rt, emulator }
}

fn credential(emulator: &Emulator, cache: AccessTokenCache) -> ClientSecretCredential {
    let options = CredentialOptions::new()
        .authority(AuthorityHost::parse(&emulator.https_url()).expect("authority"))
        .transport(entra_tests::transport(emulator))
        .cache(cache);
    ClientSecretCredential::new(TENANT, APP, SECRET, options).expect("credential")
}

fn new_cache() -> AccessTokenCache {
    TokenCache::new(CacheConfig::default())
}

#[allow(clippy::disallowed_methods)] // benchmarks set up real expiry times
fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// A cache holding `n - 1` other tokens of the same application (other resources), so the
/// credential's own token is one of `n`.
fn cache_with(n: usize) -> AccessTokenCache {
    let cache = new_cache();
    let expires = in_an_hour();
    let token = AccessToken::new(
        Secret::new("eyJ0eXAiOiJKV1QifQ.payload.signature"),
        expires,
        expires - Duration::from_secs(300),
        TokenType::Bearer,
    );
    for i in 1..n {
        let key = CacheKey::builder("127.0.0.1", TENANT, APP)
            .scopes([format!("https://resource-{i}.example/.default")])
            .build()
            .expect("key");
        cache.insert(key, Fresh::new(token.clone(), expires));
    }
    cache
}

fn hit(credential: &ClientSecretCredential, request: &TokenRequest) -> AccessToken {
    credential
        .get_token(request)
        .now_or_never()
        .expect("a hit completes at once")
        .expect("a hit")
}

fn credential_hits(c: &mut Criterion) {
    let s = setup();
    let request = TokenRequest::new([GRAPH]);
    let mut group = c.benchmark_group("credential_hit");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for n in SIZES {
        let credential = credential(&s.emulator, cache_with(n));
        s.rt.block_on(credential.get_token(&request))
            .expect("first token");
        group.bench_with_input(BenchmarkId::new("get_token", n), &n, |b, _| {
            b.iter(|| black_box(hit(&credential, &request)))
        });
        // The floor at the same size: a HashMap of n strings, one lookup and an Arc clone.
        let floor: HashMap<String, Arc<str>> = (0..n)
            .map(|i| {
                (
                    format!("https://resource-{i}.example/.default"),
                    Arc::from("t"),
                )
            })
            .collect();
        let probe = format!("https://resource-{}.example/.default", n / 2);
        group.bench_with_input(
            BenchmarkId::new("floor_hashmap_arc_clone", n),
            &n,
            |b, _| b.iter(|| black_box(floor.get(black_box(probe.as_str())).map(Arc::clone))),
        );
    }
    group.finish();
}

fn contended(c: &mut Criterion) {
    let s = setup();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let request = TokenRequest::new([GRAPH]);
    let credential = credential(&s.emulator, new_cache());
    s.rt.block_on(credential.get_token(&request))
        .expect("first token");
    let mut group = c.benchmark_group("credential_contended");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        BenchmarkId::new("get_token", format!("{threads}_threads")),
        |b| {
            b.iter_custom(|iters| {
                on_all_threads(threads, iters, || {
                    black_box(hit(&credential, &request));
                })
            })
        },
    );
    group.finish();
}

fn cold(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("credential_cold");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    // A claims challenge bypasses the cache: every iteration is one HTTPS round trip to the
    // emulator (the connection is pooled, as in a long-running service).
    let credential = credential(&s.emulator, new_cache());
    let challenge = Claims::parse(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#)
        .expect("claims");
    let request = TokenRequest::new([GRAPH]).with_claims_challenge(challenge);
    group.bench_function("miss_round_trip", |b| {
        b.iter(|| {
            black_box(
                s.rt.block_on(credential.get_token(&request))
                    .expect("token"),
            )
        })
    });

    // N callers on a cold key: one request, all answered.
    const CALLERS: usize = 100;
    let mut requests_seen = Vec::new();
    group.bench_function(BenchmarkId::new("concurrent_cold_key", CALLERS), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let credential = Arc::new(credential_fresh(&s.emulator));
                let before = s.emulator.token_requests(TENANT).len();
                #[allow(clippy::disallowed_methods)] // benchmarks measure real time
                let start = Instant::now();
                s.rt.block_on(async {
                    let mut tasks = Vec::with_capacity(CALLERS);
                    for _ in 0..CALLERS {
                        let credential = Arc::clone(&credential);
                        tasks.push(tokio::spawn(async move {
                            credential.get_token(&TokenRequest::new([GRAPH])).await
                        }));
                    }
                    for task in tasks {
                        task.await.expect("task").expect("token");
                    }
                });
                total += start.elapsed();
                requests_seen.push(s.emulator.token_requests(TENANT).len() - before);
            }
            total
        })
    });
    group.finish();
    let max = requests_seen.iter().copied().max().unwrap_or(0);
    assert_eq!(
        max, 1,
        "{CALLERS} callers on a cold key made more than one request"
    );
    write_extra(
        "concurrent_cold_key",
        &format!(
            "{CALLERS} concurrent callers on a cold key: token requests made per round = {max} (over {} rounds)",
            requests_seen.len()
        ),
    );
}

fn credential_fresh(emulator: &Emulator) -> ClientSecretCredential {
    credential(emulator, new_cache())
}

pub(crate) fn write_extra(name: &str, line: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|root| root.join("target").join("bench-extra"))
        .expect("workspace root");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.txt")), format!("{line}\n"));
    #[allow(clippy::print_stdout)] // a bench binary reports on stdout
    {
        println!("{line}");
    }
}

fn on_all_threads(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let per_thread = iters / threads as u64 + 1;
    #[allow(clippy::disallowed_methods)] // benchmarks measure real time
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let op = &op;
            s.spawn(move || {
                for _ in 0..per_thread {
                    op();
                }
            });
        }
    });
    start
        .elapsed()
        .mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
}

criterion_group!(benches, credential_hits, contended, cold);
criterion_main!(benches);
