//! Retries with exponential backoff and full jitter, for every transient failure of a request.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// How often and how patiently to retry one request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Returns the delay before retry number `retry` (1 for the first retry): a random duration
    /// up to `base_delay * 2^(retry-1)`, capped at `max_delay` ("full jitter").
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// Runs `operation` until it succeeds, fails with an error that `is_retryable` rejects, or runs
/// out of attempts; the last error is returned.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    is_retryable: impl Fn(&E) -> bool,
    mut operation: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut attempt = 1;
    loop {
        match operation(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < policy.max_attempts && is_retryable(&error) => {
                let delay = policy.delay(attempt);
                tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, %error, "retrying after a transient failure");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, String> = retry(
            &quick(),
            |_| true,
            |attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if attempt < 3 {
                        Err("flaky".to_string())
                    } else {
                        Ok(attempt)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn stops_at_the_first_permanent_error() {
        let calls = AtomicU32::new(0);
        let result: Result<(), String> = retry(
            &quick(),
            |_| false,
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err("denied".to_string()) }
            },
        )
        .await;
        assert_eq!(result, Err("denied".to_string()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<(), String> = retry(
            &quick(),
            |_| true,
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err("down".to_string()) }
            },
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn delay_never_exceeds_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for retry_number in 1..30 {
            assert!(policy.delay(retry_number) <= Duration::from_millis(300));
        }
    }
}
