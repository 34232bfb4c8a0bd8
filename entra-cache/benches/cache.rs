//! Cache-hit cost at 1, 10k and 1M entries, contended hits on all cores, and the floor: a bare
//! `HashMap` lookup plus an `Arc` clone, so every figure can be read as a multiple of it.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use entra_cache::{CacheConfig, CacheKey, CacheMode, Fresh, TokenCache};
use futures_util::FutureExt as _;

type Token = Arc<str>;
type Cache = TokenCache<Token, String>;

const SIZES: [usize; 3] = [1, 10_000, 1_000_000];

fn key(i: usize) -> CacheKey {
    CacheKey::builder(
        "login.microsoftonline.com",
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    )
    .scopes([format!("https://resource-{i}.example/.default")])
    .build()
    .expect("valid key")
}

/// A cache on the real system clock (as in production: every hit reads it) holding `n` tokens.
fn filled(n: usize) -> (Cache, Vec<CacheKey>) {
    let cache = Cache::new(CacheConfig::default());
    let token: Token =
        Arc::from("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.signature".repeat(20));
    #[allow(clippy::disallowed_methods)] // benchmarks set up real expiry times
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let keys: Vec<CacheKey> = (0..n).map(key).collect();
    for k in &keys {
        cache.insert(k.clone(), Fresh::new(Arc::clone(&token), expires));
    }
    (cache, keys)
}

fn hits(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_hit");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for n in SIZES {
        let (cache, keys) = filled(n);
        // Look up a fixed spread of keys so large caches are not measured on one hot line only.
        let probe: Vec<CacheKey> = (0..64).map(|i| keys[(i * 7919) % n].clone()).collect();

        group.bench_with_input(BenchmarkId::new("get_or_load", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 63;
                let acquired = cache
                    .get_or_load(&probe[i], CacheMode::Use, || async {
                        Err::<Fresh<Token>, String>("a hit never loads".to_owned())
                    })
                    .now_or_never()
                    .expect("a hit completes at once")
                    .expect("a hit");
                black_box(acquired)
            });
        });

        // The floor: the cheapest possible cache, a HashMap behind nothing, plus the Arc clone
        // every hit has to make.
        let floor: HashMap<CacheKey, Token> = keys
            .iter()
            .map(|k| (k.clone(), Arc::from("token")))
            .collect();
        group.bench_with_input(
            BenchmarkId::new("floor_hashmap_arc_clone", n),
            &n,
            |b, _| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) & 63;
                    black_box(floor.get(&probe[i]).map(Arc::clone))
                });
            },
        );
    }
    group.finish();
}

fn key_building(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_key");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_secs(1));
    // What every hit pays to read the (real) clock, for reading the hit figures.
    group.bench_function("system_clock_now", |b| {
        b.iter(|| black_box(entra_cache::Clock::now(&entra_cache::SystemClock)))
    });
    group.bench_function("build_plain", |b| b.iter(|| black_box(key(black_box(7)))));
    group.bench_function("build_with_extensions", |b| {
        b.iter(|| {
            black_box(
                CacheKey::builder("login.microsoftonline.com", "tenant", "blueprint")
                    .scopes(["api://AzureADTokenExchange/.default"])
                    .extension(entra_cache::FMI_PATH, black_box("agent-identity-0001"))
                    .extension(entra_cache::CLIENT_SESSION, "session-42")
                    .build()
                    .expect("valid key"),
            )
        })
    });
    group.finish();
}

/// Every core hammering hits at once: all on one key (the worst case for shared cache lines),
/// and spread over 1,000 keys.
fn contended(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut group = c.benchmark_group("contended_hits");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    let (cache, keys) = filled(1000);
    // The floor under contention: an immutable HashMap (no lock at all) and the Arc clone,
    // whose reference count is the one line every core must still write.
    let floor: HashMap<CacheKey, Token> = keys
        .iter()
        .map(|k| (k.clone(), Arc::from("token")))
        .collect();
    for (name, spread) in [("one_key", 1usize), ("thousand_keys", 1000)] {
        let id = format!("{threads}_threads");
        group.bench_function(BenchmarkId::new(name, &id), |b| {
            b.iter_custom(|iters| {
                on_all_threads(threads, iters, |t, i| {
                    black_box(cache.get(&keys[(i * 31 + t) % spread]));
                })
            })
        });
        group.bench_function(BenchmarkId::new(format!("floor_{name}"), &id), |b| {
            b.iter_custom(|iters| {
                on_all_threads(threads, iters, |t, i| {
                    black_box(floor.get(&keys[(i * 31 + t) % spread]).map(Arc::clone));
                })
            })
        });
    }
    group.finish();
}

/// Runs `op` `iters` times in total, spread over `threads` threads, and returns the elapsed
/// time scaled so that criterion's division by `iters` gives wall time per operation of the
/// whole machine (its throughput is then operations per second across all cores).
fn on_all_threads(threads: usize, iters: u64, op: impl Fn(usize, usize) + Sync) -> Duration {
    let per_thread = iters / threads as u64 + 1;
    #[allow(clippy::disallowed_methods)] // benchmarks measure real time
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let op = &op;
            s.spawn(move || {
                for i in 0..per_thread as usize {
                    op(t, i);
                }
            });
        }
    });
    start
        .elapsed()
        .mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
}

criterion_group!(benches, hits, key_building, contended);
criterion_main!(benches);
