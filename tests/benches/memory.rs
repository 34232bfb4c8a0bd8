//! Memory per cached token at 1M tokens, measured with a counting allocator (so it is in its
//! own bench binary: counting would slow the timing benches). Writes
//! `target/bench-extra/memory_per_token.txt`, which `cargo xtask bench` adds to its report.

use std::alloc::System;
use std::time::{Duration, SystemTime};

use entra_cache::{CacheConfig, CacheKey, Fresh, TokenCache};
use entra_core::{AccessToken, AccessTokenCache, Secret, TokenType};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 1_000_000;
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

fn key(i: usize) -> CacheKey {
    CacheKey::builder("login.microsoftonline.com", TENANT, APP)
        .scopes([format!("https://resource-{i}.example/.default")])
        .build()
        .expect("key")
}

fn net(region: &Region<'_, System>) -> isize {
    let stats = region.change();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize + stats.bytes_reallocated
}

fn main() {
    // `cargo bench` passes criterion-style flags; this binary has no options.
    #[allow(clippy::disallowed_methods)] // benchmarks set up real expiry times
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let token = AccessToken::new(
        Secret::new("eyJ0eXAiOiJKV1QifQ.payload.signature"),
        expires,
        expires - Duration::from_secs(300),
        TokenType::Bearer,
    );
    // Everything a cached token costs: its key (built here), the map slot, the entry.
    let region = Region::new(GLOBAL);
    let cache: AccessTokenCache = TokenCache::new(CacheConfig::default());
    for i in 0..N {
        cache.insert(key(i), Fresh::new(token.clone(), expires));
    }
    let total = net(&region);
    // The key alone, for the breakdown.
    let region = Region::new(GLOBAL);
    let sample: Vec<CacheKey> = (0..10_000).map(key).collect();
    let keys = (net(&region) as usize - sample.capacity() * size_of::<CacheKey>()) as f64
        / sample.len() as f64;
    assert_eq!(cache.len(), N);
    let per_token = total as f64 / N as f64;
    let line = format!(
        "memory per cached token at 1M tokens: {per_token:.0} bytes (of which the key's heap \
         data {keys:.0} bytes); token text is shared here, a real token adds its own length \
         (~1.5 KB)"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|root| root.join("target").join("bench-extra"))
        .expect("workspace root");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("memory_per_token.txt"), format!("{line}\n"));
    #[allow(clippy::print_stdout)] // a bench binary reports on stdout
    {
        println!("{line}");
    }
}
