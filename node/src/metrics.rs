//! Prometheus metrics of the process, served on `GET /metrics` (text exposition format).
//!
//! Counters are per process: `ron-ledger dev` and the simulation run several nodes in one
//! process, so their counts add up there. Every rejected request is counted once under its reason
//! code — the same string the API answers with in `error.reason` (see [`crate::error`]).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;

struct Metrics {
    registry: Registry,
    rejected: IntCounterVec,
    auth_failures: IntCounterVec,
    tls_handshake_failures: IntCounter,
    uds_denied: IntCounter,
    connections_rejected: IntCounter,
    applied_index: IntGauge,
    queue_depth: IntGauge,
    root_mismatches: IntCounter,
    safe_mode: IntGaugeVec,
    wal_fsync_failures: IntCounter,
    seq_gaps: IntCounter,
    leader_changes: IntCounter,
    new_store_votes: IntCounter,
    prevotes_failed: IntCounter,
    commit_latency: Histogram,
    request_duration: HistogramVec,
    raft_term: IntGauge,
    commit_lag: IntGauge,
    apply_lag: IntGauge,
    is_leader: IntGauge,
    replication_lag: IntGaugeVec,
    snapshots: HistogramVec,
    wal_syncs: IntCounter,
    wal_bytes: IntGauge,
    table_bytes: IntGauge,
    memtable_bytes: IntGauge,
    data_dir_available: IntGauge,
    data_dir_size: IntGauge,
}

/// The `peer` label of `auth_failures_total`: the kind of caller, never its address (the address
/// is in the log line), so the series stay few.
pub const AUTH_PEERS: [&str; 4] = ["node", "client", "unix", "anonymous"];

/// Every safe-mode reason (`docs/OPERATIONS.md` has a runbook for each): `safe_mode{reason}` is
/// exported at 0 for each from the start, so an alert rule on it is never left without a series.
pub const SAFE_MODE_REASONS: [&str; 10] = [
    "root_mismatch",
    "checksum_mismatch",
    "log_gap",
    "snapshot_invalid",
    "version_unsupported",
    "disk_full",
    "fsync_failed",
    "io_error",
    "raft_panicked",
    "safe_mode_marker",
];

/// Latency buckets (seconds): sub-millisecond to seconds, dense around the seed's SLO
/// (p95 ≤ 80 ms, p99 ≤ 150 ms).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5.0,
];

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
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
        // Every series starts at 0, so `increase()` sees a request's first rejection.
        for reason in crate::error::REASONS {
            rejected.with_label_values(&[reason]);
        }
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
        for reason in SAFE_MODE_REASONS {
            safe_mode.with_label_values(&[reason]).set(0);
        }
        let commit_latency = Histogram::with_opts(
            HistogramOpts::new(
                "committer_batch_latency_seconds",
                "From proposing a log entry (one group-committed batch) to its being applied, on the leader.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(commit_latency.clone()))
            .expect("metric registered once");
        raft_store::stats::observe_with(snapshot_observed);
        let snapshots = histogram_vec(
            &registry,
            "snapshot_duration_seconds",
            "Snapshot builds and installs on a node, by what (build, install) and outcome (ok, failed).",
            &["what", "outcome"],
        );
        for what in ["build", "install"] {
            for outcome in ["ok", "failed"] {
                snapshots.with_label_values(&[what, outcome]);
            }
        }
        Metrics {
            snapshots,
            data_dir_available: gauge(
                &registry,
                "data_dir_available_bytes",
                "Bytes available to the node on the file system of its data directory (at scrape time).",
            ),
            data_dir_size: gauge(
                &registry,
                "data_dir_size_bytes",
                "Size in bytes of the file system of the node's data directory (at scrape time).",
            ),
            commit_latency,
            request_duration: histogram_vec(
                &registry,
                "http_request_duration_seconds",
                "Client API requests from routing to the response, by route.",
                &["route"],
            ),
            wal_fsync_failures: counter(
                &registry,
                "wal_fsync_fail_total",
                "Storage write or fsync failures (io_error, disk_full) that stopped Raft on a node.",
            ),
            seq_gaps: counter(
                &registry,
                "seq_gap_detected_total",
                "Raft logs found not contiguous (log_gap) on a node.",
            ),
            new_store_votes: counter(
                &registry,
                "raft_new_store_votes_refused_total",
                "Votes and pre-votes not counted because a voter answered from a new data directory (it lost its Raft store).",
            ),
            prevotes_failed: counter(
                &registry,
                "raft_prevotes_failed_total",
                "Pre-vote rounds in which a quorum of the voters a node knows would not vote for it, so it did not stand for election.",
            ),
            leader_changes: counter(
                &registry,
                "raft_leader_changes_total",
                "Times a node saw its known leader change (to another node or to none).",
            ),
            raft_term: gauge(&registry, "raft_term", "The node's current Raft term (at scrape time)."),
            commit_lag: gauge(
                &registry,
                "raft_commit_lag",
                "Entries in the node's log past its committed index (at scrape time).",
            ),
            apply_lag: gauge(
                &registry,
                "raft_apply_lag",
                "Entries committed but not yet applied on the node (at scrape time).",
            ),
            is_leader: gauge(&registry, "raft_is_leader", "1 while the node leads and a quorum acknowledged it within twice the election timeout (at scrape time)."),
            replication_lag: gauge_vec(
                &registry,
                "raft_replication_lag",
                "On the leader: entries of its log a follower has not matched yet (at scrape time).",
                &["follower"],
            ),
            safe_mode,
            root_mismatches: counter(
                &registry,
                "root_mismatches_total",
                "Divergence checks in which a peer's Merkle root at a tree size differed from this node's.",
            ),
            rejected,
            auth_failures: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "auth_failures_total",
                        "Requests refused for missing, invalid, expired or revoked capabilities, or a missing client certificate, by the kind of caller (node, client, unix, anonymous).",
                    ),
                    &["peer"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(c.clone()))
                    .expect("metric registered once");
                for peer in AUTH_PEERS {
                    c.with_label_values(&[peer]);
                }
                c
            },
            wal_syncs: counter(
                &registry,
                "rocksdb_wal_syncs_total",
                "Syncs of RocksDB's write-ahead log since the node's store was opened.",
            ),
            wal_bytes: gauge(
                &registry,
                "rocksdb_wal_bytes",
                "Bytes in RocksDB's write-ahead log files.",
            ),
            table_bytes: gauge(
                &registry,
                "rocksdb_sst_bytes",
                "Bytes in RocksDB's table (SST) files, every column family.",
            ),
            memtable_bytes: gauge(
                &registry,
                "rocksdb_memtable_bytes",
                "Bytes in RocksDB's memtables (in the write-ahead log, not yet in tables).",
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

/// Register the process's metrics (and raft-store's observer) now, before anything is
/// reported.
pub fn init() {
    metrics();
}

/// Count a rejected request under its reason code.
pub fn rejected(reason: &str) {
    metrics().rejected.with_label_values(&[reason]).inc();
}

/// Count an authentication or authorization failure by the kind of caller (one of
/// [`AUTH_PEERS`]).
pub fn auth_failure(peer: &str) {
    metrics().auth_failures.with_label_values(&[peer]).inc();
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

/// A storage fault that stopped Raft, by its safe-mode reason: `fsync_failed`, `io_error` and
/// `disk_full` count in `wal_fsync_fail_total`, `log_gap` in `seq_gap_detected_total`.
pub fn storage_fault(reason: &str) {
    match reason {
        "fsync_failed" | "io_error" | "disk_full" => metrics().wal_fsync_failures.inc(),
        "log_gap" => metrics().seq_gaps.inc(),
        _ => {}
    }
}

/// Current value of `wal_fsync_fail_total`.
pub fn wal_fsync_fail_count() -> u64 {
    metrics().wal_fsync_failures.get()
}

/// raft-store's report of a snapshot build or install.
fn snapshot_observed(event: raft_store::stats::Event, took: std::time::Duration, ok: bool) {
    let what = match event {
        raft_store::stats::Event::SnapshotBuilt => "build",
        raft_store::stats::Event::SnapshotInstalled => "install",
    };
    metrics()
        .snapshots
        .with_label_values(&[what, if ok { "ok" } else { "failed" }])
        .observe(took.as_secs_f64());
}

/// Count a vote not counted because the voter's store is new.
pub fn new_store_vote_refused() {
    metrics().new_store_votes.inc();
}

/// Count a pre-vote round that did not reach a quorum.
pub fn prevote_failed() {
    metrics().prevotes_failed.inc();
}

/// Count a change of the known leader.
pub fn leader_changed() {
    metrics().leader_changes.inc();
}

/// Observe one entry's commit latency (proposal to applied, on the leader).
pub fn commit_latency(seconds: f64) {
    metrics().commit_latency.observe(seconds);
}

/// Observe one client API request's duration on `route` (the matched path pattern).
pub fn request_duration(route: &str, seconds: f64) {
    metrics()
        .request_duration
        .with_label_values(&[route])
        .observe(seconds);
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

/// Current value of `auth_failures_total`, every kind of caller.
pub fn auth_failure_count() -> u64 {
    AUTH_PEERS
        .iter()
        .map(|p| metrics().auth_failures.with_label_values(&[p]).get())
        .sum()
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

/// The node's values behind the scrape-time gauges.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// Last applied log index.
    pub applied_index: u64,
    /// Requests waiting for the sequencer.
    pub queue_depth: u64,
    /// Current term.
    pub term: u64,
    /// Last log index.
    pub last_log_index: u64,
    /// Committed index.
    pub committed_index: u64,
    /// Whether the node leads.
    pub leader: bool,
    /// On the leader: follower id → entries it has not matched.
    pub replication_lag: Vec<(u64, u64)>,
    /// The storage engine's disk figures (`None` in memory).
    pub disk: Option<raft_store::DiskStats>,
    /// The data directory's file system: (bytes available, size); `None` in memory.
    pub filesystem: Option<(u64, u64)>,
}

fn set(g: &IntGauge, v: u64) {
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
}

/// The exposition text, with the scrape-time gauges set from this node.
pub fn render(s: &Scrape) -> String {
    let m = metrics();
    set(&m.applied_index, s.applied_index);
    set(&m.queue_depth, s.queue_depth);
    set(&m.raft_term, s.term);
    set(
        &m.commit_lag,
        s.last_log_index.saturating_sub(s.committed_index),
    );
    set(
        &m.apply_lag,
        s.committed_index.saturating_sub(s.applied_index),
    );
    set(&m.is_leader, u64::from(s.leader));
    m.replication_lag.reset();
    for (follower, lag) in &s.replication_lag {
        set(
            &m.replication_lag
                .with_label_values(&[&follower.to_string()]),
            *lag,
        );
    }
    if let Some(d) = &s.disk {
        // A counter read from RocksDB's statistics: advance it to the store's count.
        m.wal_syncs
            .inc_by(d.wal_syncs.saturating_sub(m.wal_syncs.get()));
        set(&m.wal_bytes, d.wal_bytes);
        set(&m.table_bytes, d.table_bytes);
        set(&m.memtable_bytes, d.memtable_bytes);
    }
    if let Some((available, size)) = s.filesystem {
        set(&m.data_dir_available, available);
        set(&m.data_dir_size, size);
    }
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
        auth_failure("client");
        tls_handshake_failure();
        assert_eq!(rejected_count("cap_invalid"), before + 1);
        commit_latency(0.003);
        let text = render(&Scrape {
            applied_index: 7,
            queue_depth: 3,
            term: 2,
            last_log_index: 9,
            committed_index: 8,
            leader: true,
            replication_lag: vec![(2, 4)],
            disk: Some(raft_store::DiskStats {
                wal_syncs: 5,
                wal_bytes: 4096,
                table_bytes: 0,
                memtable_bytes: 512,
            }),
            filesystem: Some((1_000, 4_000)),
        });
        assert!(text.contains("data_dir_available_bytes 1000"));
        assert!(text.contains("data_dir_size_bytes 4000"));
        assert!(text.contains("safe_mode{reason=\"log_gap\"} 0"));
        // The two reasons the node sets outside the storage mapping are there from the start too.
        assert!(text.contains("safe_mode{reason=\"raft_panicked\"} 0"));
        assert!(text.contains("safe_mode{reason=\"safe_mode_marker\"} 0"));
        assert!(text.contains("rejected_total{reason=\"unknown_kind\"} 0"));
        assert!(
            text.contains("snapshot_duration_seconds_count{outcome=\"failed\",what=\"install\"} 0")
        );
        assert!(text.contains("rejected_total{reason=\"cap_invalid\"}"));
        assert!(text.contains("auth_failures_total{peer=\"client\"}"));
        assert!(text.contains("auth_failures_total{peer=\"node\"} 0"));
        assert!(text.contains("rocksdb_wal_syncs_total 5"));
        assert!(text.contains("rocksdb_wal_bytes 4096"));
        assert!(text.contains("rocksdb_memtable_bytes 512"));
        assert!(text.contains("tls_handshake_failures_total "));
        assert!(text.contains("ledger_applied_index 7"));
        assert!(text.contains("ledger_queue_depth 3"));
        assert!(text.contains("raft_term 2"));
        assert!(text.contains("raft_commit_lag 1"));
        assert!(text.contains("raft_apply_lag 1"));
        assert!(text.contains("raft_replication_lag{follower=\"2\"} 4"));
        assert!(text.contains("committer_batch_latency_seconds_bucket{le=\"0.005\"}"));
    }
}
