//! Prometheus metrics of the process, served on `GET /metrics` (text exposition format).
//!
//! Counters are per process: `ron-ledger dev` and the simulation run several nodes in one
//! process, so their counts add up there. Every rejected request is counted once under its reason
//! code — the same string the API answers with in `error.reason` (see [`crate::error`]).

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;

struct Metrics {
    registry: Registry,
    rejected: IntCounterVec,
    auth_failures: IntCounter,
    tls_handshake_failures: IntCounter,
    uds_denied: IntCounter,
    connections_rejected: IntCounter,
    applied_index: IntGauge,
    queue_depth: IntGauge,
    root_mismatches: IntCounter,
    safe_mode: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help)).expect("valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::with_opts(Opts::new(name, help)).expect("valid metric name");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let registry = Registry::new();
        let rejected = IntCounterVec::new(
            Opts::new(
                "rejected_total",
                "Requests rejected, by the reason code the API answered with.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(rejected.clone()))
            .expect("metric registered once");
        let safe_mode = IntGaugeVec::new(
            Opts::new(
                "safe_mode",
                "1 while a node of this process is in safe mode for this reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(safe_mode.clone()))
            .expect("metric registered once");
        Metrics {
            safe_mode,
            root_mismatches: counter(
                &registry,
                "root_mismatches_total",
                "Divergence checks in which a peer's Merkle root at a tree size differed from this node's.",
            ),
            rejected,
            auth_failures: counter(
                &registry,
                "auth_failures_total",
                "Requests refused for missing, invalid, expired or revoked capabilities, or a missing client certificate.",
            ),
            tls_handshake_failures: counter(
                &registry,
                "tls_handshake_failures_total",
                "TLS handshakes that failed or timed out (plaintext to a TLS port, no or untrusted client certificate, old protocol).",
            ),
            uds_denied: counter(
                &registry,
                "uds_denied_total",
                "Unix-socket connections closed because the peer's uid is not allowed.",
            ),
            connections_rejected: counter(
                &registry,
                "connections_rejected_total",
                "Connections closed at accept because the listener was at its connection cap.",
            ),
            applied_index: gauge(
                &registry,
                "ledger_applied_index",
                "Index of the last log entry applied on this node (at scrape time).",
            ),
            queue_depth: gauge(
                &registry,
                "ledger_queue_depth",
                "Requests waiting for the sequencer on this node (at scrape time).",
            ),
            registry,
        }
    })
}

/// Count a rejected request under its reason code.
pub fn rejected(reason: &str) {
    metrics().rejected.with_label_values(&[reason]).inc();
}

/// Count an authentication or authorization failure.
pub fn auth_failure() {
    metrics().auth_failures.inc();
}

/// Count a failed or timed-out TLS handshake.
pub fn tls_handshake_failure() {
    metrics().tls_handshake_failures.inc();
}

/// Count a Unix-socket connection refused by the uid allow-list.
pub fn uds_denied() {
    metrics().uds_denied.inc();
}

/// Count a connection closed because the listener was full.
pub fn connection_rejected() {
    metrics().connections_rejected.inc();
}

/// Count a peer whose root differed from this node's at one tree size.
pub fn root_mismatch() {
    metrics().root_mismatches.inc();
}

/// Current value of `root_mismatches_total`.
pub fn root_mismatch_count() -> u64 {
    metrics().root_mismatches.get()
}

/// Set `safe_mode{reason}` to 1.
pub fn safe_mode(reason: &str) {
    metrics().safe_mode.with_label_values(&[reason]).set(1);
}

/// Current value of `safe_mode{reason}`.
pub fn safe_mode_value(reason: &str) -> i64 {
    metrics().safe_mode.with_label_values(&[reason]).get()
}

/// Current value of `rejected_total{reason}`.
pub fn rejected_count(reason: &str) -> u64 {
    metrics().rejected.with_label_values(&[reason]).get()
}

/// Current value of `auth_failures_total`.
pub fn auth_failure_count() -> u64 {
    metrics().auth_failures.get()
}

/// Current value of `tls_handshake_failures_total`.
pub fn tls_handshake_failure_count() -> u64 {
    metrics().tls_handshake_failures.get()
}

/// Current value of `uds_denied_total`.
pub fn uds_denied_count() -> u64 {
    metrics().uds_denied.get()
}

/// Current value of `connections_rejected_total`.
pub fn connection_rejected_count() -> u64 {
    metrics().connections_rejected.get()
}

/// The exposition text, with the scrape-time gauges set from this node.
pub fn render(applied_index: u64, queue_depth: u64) -> String {
    let m = metrics();
    m.applied_index
        .set(i64::try_from(applied_index).unwrap_or(i64::MAX));
    m.queue_depth
        .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        return format!("# metrics encoding failed: {e}\n");
    }
    String::from_utf8(out).unwrap_or_else(|_| "# metrics were not UTF-8\n".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_exposition_text() {
        let before = rejected_count("cap_invalid");
        rejected("cap_invalid");
        auth_failure();
        tls_handshake_failure();
        assert_eq!(rejected_count("cap_invalid"), before + 1);
        let text = render(7, 3);
        assert!(text.contains("rejected_total{reason=\"cap_invalid\"}"));
        assert!(text.contains("auth_failures_total "));
        assert!(text.contains("tls_handshake_failures_total "));
        assert!(text.contains("ledger_applied_index 7"));
        assert!(text.contains("ledger_queue_depth 3"));
    }
}
