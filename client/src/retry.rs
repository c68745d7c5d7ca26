//! Safe retries. Every request the SDK makes is re-sent unchanged (same body, so the same event
//! ids) after a transient failure — connection error, timeout, 429 (honouring `Retry-After`),
//! 502, 503, 504 — with capped exponential backoff and jitter ([`Backoff`]), bounded in attempts
//! and total time. One attempt's answer is final otherwise: a 2xx, a 404 where the request allows
//! one, or any other 4xx as [`Error::Rejected`].
//!
//! The jitter comes from a small xorshift seeded from the clock: it only spreads retries apart, it
//! decides nothing.

use crate::caps::Capability;
use crate::error::Error;
use crate::shared::Unbatched;
use crate::transport::HttpRequest;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;
use tokio::time::Instant;

/// Backoff state for one call.
pub struct Backoff {
    next: Duration,
    max: Duration,
    rng: u64,
}

impl Backoff {
    /// Start at `base`, double up to `max`; jitter from `seed`, or from the clock if `None`.
    pub fn new(base: Duration, max: Duration, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u64)
                .unwrap_or(0x9e37)
        });
        Self {
            next: base.max(Duration::from_millis(1)),
            max,
            rng: seed | 1,
        }
    }

    /// The next pause: a random point in [next/2, next], then `next` doubles (capped).
    pub fn next_delay(&mut self) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let full = self.next.as_micros() as u64;
        let half = full / 2;
        let delay = Duration::from_micros(half + self.rng % (full - half + 1));
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

/// One HTTP request, re-sent unchanged by every retry.
pub(crate) struct Req {
    pub(crate) post: bool,
    pub(crate) path: String,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    /// A 404 answers `None` instead of being a rejection.
    pub(crate) not_found_ok: bool,
    /// Send every attempt to this node (reads that must see the tree a checkpoint came from).
    pub(crate) pin: Option<String>,
    /// A reversal's second approval (`X-Ron-Approval` header value), sent with every attempt.
    pub(crate) approval: Option<String>,
}

impl Req {
    /// A GET of `path` to whichever node serves it, a 404 answering `None`.
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self {
            post: false,
            path: path.into(),
            content_type: "",
            body: Vec::new(),
            not_found_ok: true,
            pin: None,
            approval: None,
        }
    }

    /// A POST of `body` (of `content_type`) to `path`; a 404 is a rejection.
    pub(crate) fn post(path: impl Into<String>, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            post: true,
            path: path.into(),
            content_type,
            body,
            not_found_ok: false,
            pin: None,
            approval: None,
        }
    }
}

/// How one attempt ended.
pub(crate) enum Attempt<T> {
    Done(T),
    /// Transient failure.
    Retry(String),
}

#[derive(Debug, Deserialize)]
struct WireError {
    error: WireErrorBody,
    leader: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireErrorBody {
    reason: String,
    message: String,
}

#[derive(Deserialize)]
struct LeaderHint {
    leader: Option<u64>,
}

/// Decode a JSON answer; no body (a 404 the request allowed) is `None`.
pub(crate) fn decode<T: DeserializeOwned>(body: Option<Vec<u8>>) -> Result<Option<T>, Error> {
    match body {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Protocol(e.to_string())),
    }
}

impl Unbatched {
    /// Send `req` until an attempt is final: retry transient failures (connection errors,
    /// timeouts, 429/502/503/504) with backoff, bounded in attempts and total time. Returns the
    /// body of a 2xx (`None` for a 404 when `req.not_found_ok`) and whether an earlier attempt
    /// may already have reached the server.
    pub(crate) async fn send(&self, req: &Req) -> Result<(Option<Vec<u8>>, bool), Error> {
        self.send_at(req)
            .await
            .map(|(body, resent, _)| (body, resent))
    }

    /// [`Unbatched::send`], also naming the node whose answer was final.
    pub(crate) async fn send_at(
        &self,
        req: &Req,
    ) -> Result<(Option<Vec<u8>>, bool, String), Error> {
        let cfg = &self.shared.config;
        let start = Instant::now();
        let call = self
            .shared
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = cfg
            .jitter_seed
            .map(|s| s ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut backoff = Backoff::new(cfg.backoff_base, cfg.backoff_max, seed);
        let mut last = String::new();
        // Nodes this request could not reach; once every seed is among them, all are tried again.
        let mut unreached: Vec<String> = Vec::new();
        for attempt in 0..cfg.retry_attempts_max {
            let addr = self.target(req, attempt, &unreached).await;
            let (why, after) = match self.attempt(&addr, req).await {
                Ok(done) => return done.map(|body| (body, attempt > 0, addr)),
                Err(retry) => retry,
            };
            last = format!("{addr}: {why}");
            // A busy leader (429) is still the leader; anything else may mean it moved.
            if !why.starts_with("429") {
                self.shared.forget_leader();
            }
            if !answered(&why) && !unreached.contains(&addr) {
                unreached.push(addr.clone());
            }
            let pause = after.unwrap_or_else(|| backoff.next_delay());
            if start.elapsed() + pause > cfg.retry_total {
                return Err(Error::Unavailable {
                    attempts: attempt + 1,
                    last,
                });
            }
            tokio::time::sleep(pause).await;
        }
        Err(Error::Unavailable {
            attempts: cfg.retry_attempts_max,
            last,
        })
    }

    /// One attempt. `Ok(final result)` or `Err((why, retry-after))` to retry; `why` starts
    /// with the HTTP status when the node answered (see [`answered`]).
    #[allow(clippy::type_complexity)]
    async fn attempt(
        &self,
        addr: &str,
        req: &Req,
    ) -> Result<Result<Option<Vec<u8>>, Error>, (String, Option<Duration>)> {
        let reply = self
            .shared
            .http
            .send(HttpRequest {
                post: req.post,
                addr: addr.to_string(),
                path: req.path.clone(),
                content_type: req.content_type,
                body: req.body.clone(),
                timeout: self.shared.config.request_timeout,
                authorization: self
                    .shared
                    .config
                    .capability
                    .as_ref()
                    .map(Capability::header),
                approval: req.approval.clone(),
            })
            .await
            .map_err(|e| (e, None))?;
        let status = reply.status;
        let retry_after = reply
            .retry_after
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = reply.body;
        if (200..300).contains(&status) {
            if let Ok(w) = serde_json::from_slice::<LeaderHint>(&bytes) {
                self.shared.note_leader(w.leader);
            }
            return Ok(Ok(Some(bytes)));
        }
        if status == 404 && req.not_found_ok {
            return Ok(Ok(None));
        }
        let err: Option<WireError> = serde_json::from_slice(&bytes).ok();
        if let Some(e) = &err {
            self.shared.note_leader(e.leader);
        }
        let (reason, message) = err
            .map(|e| (e.error.reason, e.error.message))
            .unwrap_or_else(|| {
                (
                    "unknown".into(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                )
            });
        match status {
            429 | 502 | 503 | 504 => Err((format!("{status} {reason}"), retry_after)),
            _ => Ok(Err(Error::Rejected {
                status,
                reason,
                message,
            })),
        }
    }

    /// One GET of `path` at `addr`, no retry: the decoded answer (`None` for a 404), or why
    /// to try elsewhere.
    pub(crate) async fn once_get<T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
    ) -> Attempt<Result<Option<T>, Error>> {
        match self.attempt(addr, &Req::get(path)).await {
            Ok(answer) => Attempt::Done(answer.and_then(decode)),
            Err((why, _)) => Attempt::Retry(why),
        }
    }

    /// One POST of `body` (JSON) to `path` at `addr`, no retry (for node-local changes that
    /// must not be repeated, or land elsewhere): the decoded answer, or why it failed.
    pub(crate) async fn once_post<T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, Error> {
        let req = Req::post(path, "application/json", body);
        match self.attempt(addr, &req).await {
            Ok(answer) => answer
                .and_then(decode)?
                .ok_or_else(|| Error::Protocol(format!("empty answer to {path}"))),
            Err((why, _)) => Err(Error::Unavailable {
                attempts: 1,
                last: format!("{addr}: {why}"),
            }),
        }
    }
}

/// Whether a retry reason is a node's answer (`"503 unavailable"`) rather than no answer at
/// all (a connection refused, a name that does not resolve, a timeout).
fn answered(why: &str) -> bool {
    let b = why.as_bytes();
    b.len() > 3 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' '
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_inside_bounds() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100), None);
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(5) && delays[0] <= Duration::from_millis(10));
        for d in &delays {
            assert!(*d <= Duration::from_millis(100));
        }
        assert!(delays[7] >= Duration::from_millis(50), "{delays:?}");
    }
}

#[cfg(test)]
mod answered_tests {
    #[test]
    fn statuses_are_answers_and_transport_errors_are_not() {
        for why in ["429 busy", "503 safe_mode", "504 timeout"] {
            assert!(super::answered(why), "{why}");
        }
        for why in [
            "error sending request for url (https://node1:7001/v1/accounts)",
            "connection refused",
            "",
            "50",
        ] {
            assert!(!super::answered(why), "{why}");
        }
    }
}
