//! Security counters (a stub with plain atomics, named per the design contract; the integrator
//! replaces it with the prometheus registry behind GET /metrics, keeping these function names).

use std::sync::atomic::{AtomicU64, Ordering};

static TLS_HANDSHAKE_FAILURES: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS_REJECTED: AtomicU64 = AtomicU64::new(0);
static REJECTED: AtomicU64 = AtomicU64::new(0);

/// Count a failed or timed-out TLS handshake (`tls_handshake_failures_total`).
pub fn tls_handshake_failure() {
    TLS_HANDSHAKE_FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// Count a connection dropped at the connection cap (`connections_rejected_total`).
pub fn connection_rejected() {
    CONNECTIONS_REJECTED.fetch_add(1, Ordering::Relaxed);
}

/// Count a rejected request (`rejected_total{reason}`); the stub keeps only the total.
pub fn rejected(reason: &str) {
    let _ = reason;
    REJECTED.fetch_add(1, Ordering::Relaxed);
}

/// `tls_handshake_failures_total` so far (process-wide).
pub fn tls_handshake_failures_total() -> u64 {
    TLS_HANDSHAKE_FAILURES.load(Ordering::Relaxed)
}

/// `connections_rejected_total` so far (process-wide).
pub fn connections_rejected_total() -> u64 {
    CONNECTIONS_REJECTED.load(Ordering::Relaxed)
}

/// `rejected_total` summed over reasons so far (process-wide).
pub fn rejected_total() -> u64 {
    REJECTED.load(Ordering::Relaxed)
}
