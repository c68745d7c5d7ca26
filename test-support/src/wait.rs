//! Waiting on observable state: poll a probe until it succeeds, and fail loudly at a deadline.
//! A test waits for a condition, never for a fixed time standing in for one.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// Call `probe` every `every` until it returns `Ok`, and return that value. Once `timeout` has
/// passed since the first call, a failed probe panics with its `Err` (so the message can say
/// what the last attempt saw).
pub async fn poll<T, E, F, Fut>(timeout: Duration, every: Duration, mut probe: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Wait until `cond` holds, checking every 50 ms; panic with `timed out waiting for: {what}`
/// after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll(timeout, Duration::from_millis(50), || {
        let held = cond();
        async move {
            if held.await {
                Ok(())
            } else {
                Err(format!("timed out waiting for: {what}"))
            }
        }
    })
    .await
}
