//! Retry of managed identity requests (PROTOCOL.md section 4), waiting on the injected clock.
//!
//! - IMDS: 404, 408, 410, 429, 5xx and timeouts; 3 retries with exponential back-off (1 s,
//!   2 s, 4 s); 410 (IMDS is upgrading) keeps retrying, every 10 s, until at least 70 s have
//!   passed since the first attempt.
//! - IMDSv2 platform metadata: the IMDS rules, except that 404 is final (it means the machine
//!   speaks only IMDS v1), as MSAL.NET's `CsrMetadataProbeRetryPolicy`.
//! - Other sources: 404, 408, 429, 500, 503, 504; 3 retries, 1 s apart.
//! - Probe mode: no retry.
//!
//! A `Retry-After` header replaces the computed wait (capped at [`MAX_RETRY_AFTER`]).

use std::time::{Duration, SystemTime};

use entra_core::wire::{endpoint, retry_after};
use entra_core::{Clock, Error, HttpRequest, HttpResponse, HttpTransport, TransportErrorKind};

/// Retries after the first attempt for ordinary retryable answers.
const MAX_RETRIES: u32 = 3;
/// How long IMDS answering 410 is retried, from the first attempt.
const IMDS_GONE_WINDOW: Duration = Duration::from_secs(70);
/// The wait between attempts while IMDS answers 410.
const IMDS_GONE_DELAY: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured; a longer one is cut to this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Which retry rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryPolicy {
    /// The IMDS rules.
    Imds,
    /// The IMDS rules without retrying 404 (IMDSv2 platform metadata: 404 means IMDS v1 only).
    ImdsPlatformMetadata,
    /// The rules of every other source.
    Standard,
    /// No retry (probe mode).
    None,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Stop,
    /// Wait, then retry; `counted` says whether the retry uses up one of the [`MAX_RETRIES`].
    Retry {
        delay: Duration,
        counted: bool,
    },
}

impl RetryPolicy {
    /// The verdict after `outcome`, with `retries` counted retries made and `elapsed` since
    /// the first attempt; `retry_after` is the answer's `Retry-After`, if any.
    fn verdict(
        self,
        outcome: Result<u16, TransportErrorKind>,
        retries: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
    ) -> Verdict {
        let server_delay = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
        match self {
            Self::None => Verdict::Stop,
            Self::ImdsPlatformMetadata => {
                if outcome == Ok(404) {
                    Verdict::Stop
                } else {
                    Self::Imds.verdict(outcome, retries, elapsed, retry_after)
                }
            }
            Self::Imds => {
                if outcome == Ok(410) {
                    return if elapsed < IMDS_GONE_WINDOW {
                        Verdict::Retry {
                            delay: server_delay.unwrap_or(IMDS_GONE_DELAY),
                            counted: false,
                        }
                    } else {
                        Verdict::Stop
                    };
                }
                let retryable = match outcome {
                    Ok(status) => matches!(status, 404 | 408 | 429 | 500..=599),
                    Err(kind) => kind == TransportErrorKind::Timeout,
                };
                if retryable && retries < MAX_RETRIES {
                    Verdict::Retry {
                        delay: server_delay.unwrap_or(Duration::from_secs(1 << retries)),
                        counted: true,
                    }
                } else {
                    Verdict::Stop
                }
            }
            Self::Standard => {
                let retryable = matches!(outcome, Ok(404 | 408 | 429 | 500 | 503 | 504));
                if retryable && retries < MAX_RETRIES {
                    Verdict::Retry {
                        delay: server_delay.unwrap_or(Duration::from_secs(1)),
                        counted: true,
                    }
                } else {
                    Verdict::Stop
                }
            }
        }
    }
}

/// Sends `request`, retrying as `policy` says; returns the last answer (whatever its status)
/// with the time its request was sent, or the last transport error.
pub(crate) async fn send(
    transport: &dyn HttpTransport,
    clock: &dyn Clock,
    policy: RetryPolicy,
    request: HttpRequest,
) -> Result<(HttpResponse, SystemTime), Error> {
    let shown = endpoint(&request.url);
    let started = clock.now();
    let mut retries = 0;
    let mut attempt = 0u32;
    loop {
        let sent_at = clock.now();
        let result = transport.send(request.clone()).await;
        let now = clock.now();
        let elapsed = now.duration_since(started).unwrap_or_default();
        let (outcome, server_delay) = match &result {
            Ok(response) => {
                tracing::debug!(attempt, status = response.status, endpoint = %shown, "managed identity endpoint answered");
                (Ok(response.status), retry_after(response, now))
            }
            Err(Error::Transport { kind, .. }) => {
                tracing::debug!(attempt, error = %kind, endpoint = %shown, "managed identity request failed");
                (Err(*kind), None)
            }
            Err(_) => return result.map(|r| (r, sent_at)),
        };
        match policy.verdict(outcome, retries, elapsed, server_delay) {
            Verdict::Stop => return result.map(|r| (r, sent_at)),
            Verdict::Retry { delay, counted } => {
                if counted {
                    retries += 1;
                }
                attempt += 1;
                tracing::info!(
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "retrying the managed identity request"
                );
                clock.sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{FakeTransport, ok_token};
    use entra_core::ManualClock;
    use http::Method;
    use url::Url;

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    async fn run(
        policy: RetryPolicy,
        transport: &FakeTransport,
        clock: &ManualClock,
    ) -> Result<HttpResponse, Error> {
        let request =
            HttpRequest::new(Method::GET, Url::parse("http://169.254.169.254/t").unwrap());
        send(transport, clock, policy, request)
            .await
            .map(|(response, _)| response)
    }

    fn clock() -> ManualClock {
        ManualClock::at_unix_seconds(1_795_000_000)
    }

    #[tokio::test]
    async fn imds_backs_off_exponentially_then_gives_up() {
        let transport = FakeTransport::repeat(HttpResponse::new(500, ""));
        let clock = clock();
        let response = run(RetryPolicy::Imds, &transport, &clock).await.unwrap();
        assert_eq!(response.status, 500);
        assert_eq!(clock.sleeps(), secs(&[1, 2, 4]));
        assert_eq!(transport.requests().len(), 4);
    }

    #[tokio::test]
    async fn imds_keeps_retrying_410_for_70_seconds() {
        let mut script: Vec<HttpResponse> = (0..7).map(|_| HttpResponse::new(410, "")).collect();
        script.push(ok_token("t", 3600));
        let transport = FakeTransport::script(script);
        let clock = clock();
        let response = run(RetryPolicy::Imds, &transport, &clock).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(clock.sleeps(), secs(&[10; 7]));
        assert!(clock.sleeps().iter().sum::<Duration>() >= Duration::from_secs(70));

        // 410 for ever: the last attempt is made at 70 s, then the 410 is returned.
        let transport = FakeTransport::repeat(HttpResponse::new(410, ""));
        let clock = self::clock();
        let response = run(RetryPolicy::Imds, &transport, &clock).await.unwrap();
        assert_eq!(response.status, 410);
        assert_eq!(clock.sleeps(), secs(&[10; 7]));
        assert_eq!(transport.requests().len(), 8);
    }

    #[tokio::test]
    async fn not_found_for_ever_fails_after_the_retries() {
        for (policy, sleeps) in [
            (RetryPolicy::Imds, secs(&[1, 2, 4])),
            (RetryPolicy::Standard, secs(&[1, 1, 1])),
        ] {
            let transport = FakeTransport::repeat(HttpResponse::new(404, ""));
            let clock = clock();
            let response = run(policy, &transport, &clock).await.unwrap();
            assert_eq!(response.status, 404);
            assert_eq!(clock.sleeps(), sleeps, "{policy:?}");
        }
    }

    #[tokio::test]
    async fn retry_after_is_honoured() {
        for policy in [RetryPolicy::Imds, RetryPolicy::Standard] {
            let mut throttled = HttpResponse::new(429, "");
            throttled
                .headers
                .insert("retry-after", http::HeaderValue::from_static("5"));
            let transport = FakeTransport::script(vec![throttled, ok_token("t", 3600)]);
            let clock = clock();
            let response = run(policy, &transport, &clock).await.unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(clock.sleeps(), secs(&[5]), "{policy:?}");
        }
        let mut throttled = HttpResponse::new(503, "");
        throttled
            .headers
            .insert("retry-after", http::HeaderValue::from_static("3600"));
        let transport = FakeTransport::script(vec![throttled, ok_token("t", 3600)]);
        let clock = clock();
        run(RetryPolicy::Standard, &transport, &clock)
            .await
            .unwrap();
        assert_eq!(clock.sleeps(), vec![MAX_RETRY_AFTER]);
    }

    #[tokio::test]
    async fn what_is_retried_by_whom() {
        // Standard sources do not retry 410, 501 or 502; IMDS does. Nobody retries 400 or 401.
        for (status, imds, standard) in [
            (400, 0, 0),
            (401, 0, 0),
            (403, 0, 0),
            (404, 3, 3),
            (408, 3, 3),
            (429, 3, 3),
            (500, 3, 3),
            (501, 3, 0),
            (502, 3, 0),
            (503, 3, 3),
            (504, 3, 3),
        ] {
            for (policy, expected) in [(RetryPolicy::Imds, imds), (RetryPolicy::Standard, standard)]
            {
                let transport = FakeTransport::repeat(HttpResponse::new(status, ""));
                let clock = clock();
                run(policy, &transport, &clock).await.unwrap();
                assert_eq!(clock.sleeps().len(), expected, "{status} {policy:?}");
            }
        }
    }

    #[tokio::test]
    async fn timeouts_are_retried_by_imds_only_and_probes_never_retry() {
        let transport = FakeTransport::failing(TransportErrorKind::Timeout);
        let clock = clock();
        let err = run(RetryPolicy::Imds, &transport, &clock)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Transport {
                kind: TransportErrorKind::Timeout,
                ..
            }
        ));
        assert_eq!(clock.sleeps(), secs(&[1, 2, 4]));

        let transport = FakeTransport::failing(TransportErrorKind::Connect);
        let clock = self::clock();
        run(RetryPolicy::Imds, &transport, &clock)
            .await
            .unwrap_err();
        assert!(clock.sleeps().is_empty());

        let transport = FakeTransport::failing(TransportErrorKind::Timeout);
        let clock = self::clock();
        run(RetryPolicy::Standard, &transport, &clock)
            .await
            .unwrap_err();
        assert!(clock.sleeps().is_empty());

        for status in [410, 500, 429] {
            let transport = FakeTransport::repeat(HttpResponse::new(status, ""));
            let clock = self::clock();
            run(RetryPolicy::None, &transport, &clock).await.unwrap();
            assert!(clock.sleeps().is_empty());
            assert_eq!(transport.requests().len(), 1);
        }
    }

    #[tokio::test]
    async fn platform_metadata_retries_like_imds_except_404() {
        let transport = FakeTransport::repeat(HttpResponse::new(404, ""));
        let clock = clock();
        let response = run(RetryPolicy::ImdsPlatformMetadata, &transport, &clock)
            .await
            .unwrap();
        assert_eq!(response.status, 404);
        assert!(clock.sleeps().is_empty(), "404 means IMDS v1 only");
        for (status, sleeps) in [
            (503, secs(&[1, 2, 4])),
            (429, secs(&[1, 2, 4])),
            (410, secs(&[10; 7])),
        ] {
            let transport = FakeTransport::repeat(HttpResponse::new(status, ""));
            let clock = self::clock();
            run(RetryPolicy::ImdsPlatformMetadata, &transport, &clock)
                .await
                .unwrap();
            assert_eq!(clock.sleeps(), sleeps, "{status}");
        }
    }

    #[test]
    fn gone_and_counted_retries_mix() {
        let p = RetryPolicy::Imds;
        // 410 does not use up the ordinary retries...
        assert_eq!(
            p.verdict(Ok(410), 3, Duration::from_secs(30), None),
            Verdict::Retry {
                delay: IMDS_GONE_DELAY,
                counted: false
            }
        );
        // ...and stops once the window has passed.
        assert_eq!(
            p.verdict(Ok(410), 0, Duration::from_secs(70), None),
            Verdict::Stop
        );
        assert_eq!(
            p.verdict(Ok(500), 2, Duration::from_secs(100), None),
            Verdict::Retry {
                delay: Duration::from_secs(4),
                counted: true
            }
        );
        assert_eq!(p.verdict(Ok(200), 0, Duration::ZERO, None), Verdict::Stop);
    }
}
