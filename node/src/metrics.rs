//! Counters other modules bump. A stub until the `prometheus`-backed `node::metrics` (owned by
//! the integrator) lands: same function names, so callers do not change when it does.

use std::sync::atomic::{AtomicU64, Ordering};

static UDS_DENIED: AtomicU64 = AtomicU64::new(0);

/// Count one Unix-socket connection refused by the peer-credential check (`uds_denied_total`).
pub fn uds_denied() {
    UDS_DENIED.fetch_add(1, Ordering::Relaxed);
}

/// Unix-socket connections refused so far in this process.
pub fn uds_denied_count() -> u64 {
    UDS_DENIED.load(Ordering::Relaxed)
}
