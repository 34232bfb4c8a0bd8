//! Behaviour of the token cache: hits, single-flight, refresh, bypass, removal and sweeping,
//! all with virtual time.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use entra_cache::{
    CLIENT_SESSION, CacheConfig, CacheKey, CacheMode, Clock, FMI_PATH, Fresh, ManualClock,
    TokenCache, TokenSource,
};
use futures_util::FutureExt as _;
use tokio::sync::{Barrier, Notify};

type Cache = TokenCache<String, String>;

const HOUR: Duration = Duration::from_secs(3600);

fn setup() -> (Cache, ManualClock) {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let config = CacheConfig::default()
        .with_clock(Arc::new(clock.clone()))
        .with_max_jitter(Duration::ZERO);
    (TokenCache::new(config), clock)
}

fn key(scope: &str) -> CacheKey {
    CacheKey::builder("login.microsoftonline.com", "tenant", "client")
        .scopes([scope])
        .build()
        .unwrap()
}

fn session_key(session: &str) -> CacheKey {
    CacheKey::builder("login.microsoftonline.com", "tenant", "client")
        .scopes(["https://management.azure.com/.default"])
        .extension(CLIENT_SESSION, session)
        .build()
        .unwrap()
}

/// A loader that counts its calls and returns `value` valid for `life` from the clock's now.
fn loader(
    calls: &Arc<AtomicUsize>,
    clock: &ManualClock,
    value: &str,
    life: Duration,
) -> impl FnOnce() -> futures_util::future::Ready<Result<Fresh<String>, String>> {
    let calls = Arc::clone(calls);
    let expires = clock.now() + life;
    let value = value.to_owned();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        futures_util::future::ready(Ok(Fresh::new(value, expires)))
    }
}

fn failing(
    calls: &Arc<AtomicUsize>,
) -> impl FnOnce() -> futures_util::future::Ready<Result<Fresh<String>, String>> {
    let calls = Arc::clone(calls);
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        futures_util::future::ready(Err("token endpoint answered 503".to_owned()))
    }
}

#[tokio::test]
async fn miss_then_hit() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("https://graph.microsoft.com/.default");
    let first = cache
        .get_or_load(&k, CacheMode::Use, loader(&calls, &clock, "A", HOUR))
        .await
        .unwrap();
    assert_eq!(
        (first.value.as_str(), first.source),
        ("A", TokenSource::Fetched)
    );
    let second = cache
        .get_or_load(&k, CacheMode::Use, loader(&calls, &clock, "B", HOUR))
        .await
        .unwrap();
    assert_eq!(
        (second.value.as_str(), second.source),
        ("A", TokenSource::Cache)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A different scope set is a different key.
    let other = cache
        .get_or_load(
            &key("https://vault.azure.net/.default"),
            CacheMode::Use,
            loader(&calls, &clock, "C", HOUR),
        )
        .await
        .unwrap();
    assert_eq!(other.value, "C");
    assert_eq!(cache.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_under_a_thousand_concurrent_callers() {
    const CALLERS: usize = 1000;
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let started = Arc::new(Barrier::new(CALLERS + 1));
    let expires = clock.now() + HOUR;
    let k = key("https://graph.microsoft.com/.default");

    let mut tasks = Vec::with_capacity(CALLERS);
    for _ in 0..CALLERS {
        let (cache, calls, gate, started, k) = (
            cache.clone(),
            Arc::clone(&calls),
            Arc::clone(&gate),
            Arc::clone(&started),
            k.clone(),
        );
        tasks.push(tokio::spawn(async move {
            started.wait().await;
            cache
                .get_or_load(&k, CacheMode::Use, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // Hold the load open until the test lets it finish.
                    gate.notified().await;
                    Ok::<_, String>(Fresh::new("the-token".to_owned(), expires))
                })
                .await
        }));
    }
    started.wait().await;
    // Wait (without sleeping) until the one load has started, then let it finish.
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();

    let mut fetched = 0;
    for task in tasks {
        let acquired = task.await.unwrap().unwrap();
        assert_eq!(acquired.value, "the-token");
        if acquired.source == TokenSource::Fetched {
            fetched += 1;
        }
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the loader ran more than once"
    );
    assert_eq!(fetched, 1);
}

#[tokio::test(start_paused = true)]
async fn different_keys_load_in_parallel() {
    let (cache, clock) = setup();
    let expires = clock.now() + HOUR;
    let a_started = Arc::new(Notify::new());
    let b_ran = Arc::new(Notify::new());
    let (key_a, key_b) = (key("a"), key("b"));
    // Key A's load can only finish once key B's load has run: if loads were serialised
    // behind one lock this would never complete (virtual time makes the timeout instant).
    let load_a = {
        let (a_started, b_ran) = (a_started.clone(), b_ran.clone());
        cache.get_or_load(&key_a, CacheMode::Use, move || async move {
            a_started.notify_one();
            b_ran.notified().await;
            Ok::<_, String>(Fresh::new("A".to_owned(), expires))
        })
    };
    let load_b = async {
        a_started.notified().await;
        let b_ran = b_ran.clone();
        cache
            .get_or_load(&key_b, CacheMode::Use, move || async move {
                b_ran.notify_one();
                Ok::<_, String>(Fresh::new("B".to_owned(), expires))
            })
            .await
    };
    let (ra, rb) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(load_a, load_b)
    })
    .await
    .expect("loads for different keys were serialised");
    assert_eq!(ra.unwrap().value, "A");
    assert_eq!(rb.unwrap().value, "B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_is_shared_and_the_next_call_tries_again() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    // A latch, not a one-shot `Notify`: a caller that arrives after the failure starts a new
    // load, which must not wait forever for a notification that was already spent.
    let (open_gate, gate) = tokio::sync::watch::channel(false);
    let k = key("s");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (cache, calls, mut gate, k) = (cache.clone(), calls.clone(), gate.clone(), k.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load(&k, CacheMode::Use, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.wait_for(|open| *open)
                        .await
                        .expect("the test holds the sender");
                    Err::<Fresh<String>, _>("AADSTS7000215: invalid client secret".to_owned())
                })
                .await
        }));
    }
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    open_gate.send_replace(true);
    let mut failures = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(e) => {
                assert!(e.starts_with("AADSTS7000215"));
                failures += 1;
            }
            // A caller that arrived after the failure started a new load, which fails the
            // same way; none may succeed.
            Ok(_) => panic!("no load succeeds"),
        }
    }
    assert_eq!(failures, 50);
    let shared_loads = calls.load(Ordering::SeqCst);
    assert!(shared_loads < 50, "{shared_loads} loads for 50 callers");
    // Errors are not cached: the next call loads again.
    let ok = cache
        .get_or_load(&k, CacheMode::Use, loader(&calls, &clock, "A", HOUR))
        .await
        .unwrap();
    assert_eq!(ok.source, TokenSource::Fetched);
}

#[tokio::test]
async fn refresh_runs_once_while_everyone_else_is_served_the_cached_token() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("s");
    cache
        .get_or_load(&k, CacheMode::Use, loader(&calls, &clock, "old", HOUR))
        .await
        .unwrap();
    let (refresh_at, expires_at) = cache.schedule(&k).unwrap();
    assert_eq!(
        expires_at.duration_since(refresh_at).unwrap(),
        Duration::from_secs(300)
    );

    // Just before the refresh time: a hit, no load.
    clock.set(refresh_at - Duration::from_millis(1));
    let hit = cache
        .get_or_load(&k, CacheMode::Use, loader(&calls, &clock, "x", HOUR))
        .await
        .unwrap();
    assert_eq!(
        (hit.value.as_str(), hit.source),
        ("old", TokenSource::Cache)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Past it: the first caller refreshes; its load is held open by a gate.
    clock.set(refresh_at + Duration::from_secs(1));
    let gate = Arc::new(Notify::new());
    let expires = clock.now() + HOUR;
    let refresher = {
        let (calls, gate) = (calls.clone(), gate.clone());
        cache.get_or_load(&k, CacheMode::Use, move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            Ok::<_, String>(Fresh::new("new".to_owned(), expires))
        })
    };
    let mut refresher = Box::pin(refresher);
    assert!(
        (&mut refresher).now_or_never().is_none(),
        "the refresh is waiting on the gate"
    );

    // Meanwhile every other caller gets the cached token at once, without loading.
    for _ in 0..10 {
        let served = cache
            .get_or_load(&k, CacheMode::Use, failing(&calls))
            .now_or_never()
            .expect("served without waiting")
            .unwrap();
        assert_eq!(
            (served.value.as_str(), served.source),
            ("old", TokenSource::Cache)
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    gate.notify_one();
    let refreshed = refresher.await.unwrap();
    assert_eq!(
        (refreshed.value.as_str(), refreshed.source),
        ("new", TokenSource::Fetched)
    );
    assert_eq!(cache.get(&k).as_deref(), Some("new"));
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_valid_token_and_an_expired_one_is_never_served() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("s");
    cache
        .get_or_load(&k, CacheMode::Use, loader(&calls, &clock, "old", HOUR))
        .await
        .unwrap();
    let (refresh_at, expires_at) = cache.schedule(&k).unwrap();

    clock.set(refresh_at);
    let served = cache
        .get_or_load(&k, CacheMode::Use, failing(&calls))
        .await
        .unwrap();
    assert_eq!(
        (served.value.as_str(), served.source),
        ("old", TokenSource::Cache)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Within the retry interval nobody tries again.
    clock.advance(Duration::from_secs(29));
    let served = cache
        .get_or_load(&k, CacheMode::Use, failing(&calls))
        .await
        .unwrap();
    assert_eq!(served.value, "old");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // After it, one caller tries again (and fails again, still served).
    clock.advance(Duration::from_secs(2));
    let served = cache
        .get_or_load(&k, CacheMode::Use, failing(&calls))
        .await
        .unwrap();
    assert_eq!(served.value, "old");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Within the expiry margin the token counts as expired: the failure is reported.
    clock.set(expires_at - Duration::from_secs(60));
    assert_eq!(cache.get(&k), None);
    let err = cache
        .get_or_load(&k, CacheMode::Use, failing(&calls))
        .await
        .unwrap_err();
    assert!(err.contains("503"));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn server_refresh_in_is_honoured() {
    let (cache, clock) = setup();
    let k = key("s");
    let now = clock.now();
    cache.insert(
        k.clone(),
        Fresh::new("t".to_owned(), now + HOUR).with_refresh_on(now + Duration::from_secs(600)),
    );
    assert_eq!(
        cache.schedule(&k).unwrap().0,
        now + Duration::from_secs(600)
    );
    // A refresh time past expiry is clamped to the expiry.
    cache.insert(
        k.clone(),
        Fresh::new("t".to_owned(), now + HOUR).with_refresh_on(now + 2 * HOUR),
    );
    assert_eq!(cache.schedule(&k).unwrap().0, now + HOUR);
}

#[tokio::test]
async fn long_lived_tokens_refresh_at_half_life_with_bounded_jitter() {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let cache: Cache = TokenCache::new(
        CacheConfig::default()
            .with_clock(Arc::new(clock.clone()))
            .with_max_jitter(Duration::from_secs(30)),
    );
    let now = clock.now();
    let mut offsets = std::collections::BTreeSet::new();
    for i in 0..64 {
        let k = key(&format!("scope-{i}"));
        cache.insert(k.clone(), Fresh::new("t".to_owned(), now + 24 * HOUR));
        let (refresh_at, _) = cache.schedule(&k).unwrap();
        let half = now + 12 * HOUR;
        assert!(refresh_at <= half && refresh_at >= half - Duration::from_secs(30));
        offsets.insert(half.duration_since(refresh_at).unwrap().as_millis());
    }
    assert!(
        offsets.len() > 32,
        "jitter does not spread refreshes: {offsets:?}"
    );
}

#[tokio::test]
async fn bypass_always_loads_and_replaces_the_cached_token() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("s");
    cache
        .get_or_load(&k, CacheMode::Use, loader(&calls, &clock, "plain", HOUR))
        .await
        .unwrap();
    let challenged = cache
        .get_or_load(
            &k,
            CacheMode::Bypass,
            loader(&calls, &clock, "with-claims", HOUR),
        )
        .await
        .unwrap();
    assert_eq!(
        (challenged.value.as_str(), challenged.source),
        ("with-claims", TokenSource::Fetched)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let next = cache
        .get_or_load(&k, CacheMode::Use, failing(&calls))
        .await
        .unwrap();
    assert_eq!(
        (next.value.as_str(), next.source),
        ("with-claims", TokenSource::Cache)
    );
    // A failed bypass leaves the cached token alone and reports the error.
    let err = cache
        .get_or_load(&k, CacheMode::Bypass, failing(&calls))
        .await
        .unwrap_err();
    assert!(err.contains("503"));
    assert_eq!(cache.get(&k).as_deref(), Some("with-claims"));
}

#[tokio::test]
async fn sessions_are_partitioned_and_evicted_by_predicate() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let manual = CacheKey::builder("login.microsoftonline.com", "tenant", "client")
        .scopes(["https://management.azure.com/.default"])
        .build()
        .unwrap();
    for (k, v) in [
        (&manual, "manual"),
        (&session_key("s1"), "agent-s1"),
        (&session_key("s2"), "agent-s2"),
    ] {
        cache
            .get_or_load(k, CacheMode::Use, loader(&calls, &clock, v, HOUR))
            .await
            .unwrap();
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "each partition is its own miss"
    );
    assert_eq!(cache.get(&manual).as_deref(), Some("manual"));
    assert_eq!(cache.get(&session_key("s1")).as_deref(), Some("agent-s1"));

    let removed = cache.remove_where(|k| k.extension(CLIENT_SESSION) == Some("s1"));
    assert_eq!(removed, 1);
    assert_eq!(cache.get(&session_key("s1")), None);
    assert_eq!(cache.get(&session_key("s2")).as_deref(), Some("agent-s2"));
    assert_eq!(cache.get(&manual).as_deref(), Some("manual"));
    assert_eq!(cache.remove(&manual).as_deref(), Some("manual"));
    cache.clear();
    assert!(cache.is_empty());
}

#[tokio::test]
async fn fmi_paths_never_share_a_token() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let t1 = |agent: &str| {
        CacheKey::builder("login.microsoftonline.com", "tenant", "blueprint")
            .scopes(["api://AzureADTokenExchange/.default"])
            .extension(FMI_PATH, agent)
            .build()
            .unwrap()
    };
    let a = cache
        .get_or_load(
            &t1("agent-a"),
            CacheMode::Use,
            loader(&calls, &clock, "T1-a", HOUR),
        )
        .await
        .unwrap();
    let b = cache
        .get_or_load(
            &t1("agent-b"),
            CacheMode::Use,
            loader(&calls, &clock, "T1-b", HOUR),
        )
        .await
        .unwrap();
    assert_eq!((a.value.as_str(), b.value.as_str()), ("T1-a", "T1-b"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn expired_entries_are_swept_so_memory_stays_bounded() {
    let clock = ManualClock::at_unix_seconds(1_700_000_000);
    let cache: Cache = TokenCache::new(
        CacheConfig::default()
            .with_clock(Arc::new(clock.clone()))
            .with_shards(1)
            .with_sweep_interval(Duration::from_secs(60)),
    );
    // Many short-lived tokens over a long time: the cache holds only recent ones.
    for i in 0..1000u64 {
        let now = clock.now();
        cache.insert(
            key(&format!("scope-{i}")),
            Fresh::new("t".to_owned(), now + Duration::from_secs(120)),
        );
        clock.advance(Duration::from_secs(10));
    }
    // Tokens live 120 s (60 s of it usable); inserts every 10 s, sweeps every 60 s.
    assert!(cache.len() <= 14, "{} entries kept", cache.len());
    clock.advance(HOUR);
    let before = cache.len();
    assert!(before > 0);
    assert_eq!(cache.sweep_expired(), before);
    assert!(cache.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_does_not_strand_the_waiters() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let k = key("s");
    let expires = clock.now() + HOUR;
    let leader = {
        let (calls, gate) = (calls.clone(), gate.clone());
        cache.get_or_load(&k, CacheMode::Use, move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            Ok::<_, String>(Fresh::new("T".to_owned(), expires))
        })
    };
    let mut leader = Box::pin(leader);
    assert!((&mut leader).now_or_never().is_none());
    let waiter = {
        let (cache, k) = (cache.clone(), k.clone());
        let calls = calls.clone();
        tokio::spawn(async move { cache.get_or_load(&k, CacheMode::Use, failing(&calls)).await })
    };
    tokio::task::yield_now().await;
    drop(leader); // the caller that started the load goes away
    gate.notify_one();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!((got.value.as_str(), got.source), ("T", TokenSource::Shared));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_panicking_loader_does_not_poison_the_key() {
    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("s");
    let cache2 = cache.clone();
    let k2 = k.clone();
    let panicked = tokio::spawn(async move {
        cache2
            .get_or_load(&k2, CacheMode::Use, || async {
                if true {
                    panic!("loader bug");
                }
                Ok::<Fresh<String>, String>(Fresh::new(String::new(), SystemTime::UNIX_EPOCH))
            })
            .await
    })
    .await;
    assert!(panicked.is_err());
    let ok = cache
        .get_or_load(&k, CacheMode::Use, loader(&calls, &clock, "T", HOUR))
        .await
        .unwrap();
    assert_eq!((ok.value.as_str(), ok.source), ("T", TokenSource::Fetched));
}

/// Captures `tracing` output into a buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn refresh_failures_are_logged_without_the_token_or_key_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (cache, clock) = setup();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = CacheKey::builder("login.microsoftonline.com", "tenant", "client")
        .scopes(["s"])
        .extension(
            entra_cache::CLIENT_CLAIMS,
            r#"{"access_token":{"SECRET-CLAIM":null}}"#,
        )
        .build()
        .unwrap();
    cache
        .get_or_load(
            &k,
            CacheMode::Use,
            loader(&calls, &clock, "eyJSECRET-TOKEN", HOUR),
        )
        .await
        .unwrap();
    clock.advance(HOUR - Duration::from_secs(200));
    let served = cache
        .get_or_load(&k, CacheMode::Use, failing(&calls))
        .await
        .unwrap();
    assert_eq!(served.value, "eyJSECRET-TOKEN");
    let _ = format!("{cache:?} {k:?} {served:?}");
    tracing::info!(key = ?k, cache = ?cache, acquired = ?served, "debug output of every type");

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("proactive token refresh failed"), "{log}");
    assert!(log.contains("503"), "{log}");
    assert!(!log.contains("SECRET"), "a secret reached the log:\n{log}");
}

/// Loads that finish instantly leave the smallest window between one caller's miss and its
/// registration of a load: a caller that missed just before another's load finished must use
/// that load's token, not start a second load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_finishing_between_miss_and_registration_is_not_repeated() {
    let (cache, clock) = setup();
    let expires = clock.now() + HOUR;
    for round in 0..1000 {
        let calls = Arc::new(AtomicUsize::new(0));
        let k = key(&format!("round-{round}"));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, calls, k) = (cache.clone(), calls.clone(), k.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(&k, CacheMode::Use, move || async move {
                            // Counted when the load runs, not when it is created.
                            calls.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, String>(Fresh::new("t".to_owned(), expires))
                        })
                        .await
                })
            })
            .collect();
        let mut sources = Vec::new();
        for t in tasks {
            sources.push(t.await.unwrap().unwrap().source);
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "round {round}: the load ran more than once: {sources:?}"
        );
    }
}
