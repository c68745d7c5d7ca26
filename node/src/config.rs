//! Node configuration: a TOML file, then `RON_LEDGER_*` environment variables, then command-line
//! flags, each overriding the one before. Unknown keys are rejected; invalid values stop start-up
//! with a message naming the key. See `deploy/node.sample.toml`.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything a node needs to start.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's id in the cluster (1, 2, 3, ...). Not 0.
    pub node_id: u64,
    /// Name of the cluster; nodes refuse peers of another cluster.
    #[serde(default = "default_cluster_id")]
    pub cluster_id: String,
    /// Where RocksDB and snapshots live (must be 0700). Ignored in amnesia mode.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Keep everything in memory; nothing is written to disk (single node only).
    #[serde(default)]
    pub amnesia: bool,
    /// Client HTTP API listen address.
    pub api_addr: SocketAddr,
    /// Raft peer RPC listen address.
    pub peer_addr: SocketAddr,
    /// Address clients are told to use for this node (defaults to `api_addr`).
    #[serde(default)]
    pub advertise_api_addr: Option<String>,
    /// Address peers use for this node (defaults to `peer_addr`).
    #[serde(default)]
    pub advertise_peer_addr: Option<String>,
    /// Raft timing and snapshots.
    #[serde(default)]
    pub raft: RaftSection,
    /// Bounds on requests and queues.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Log output.
    #[serde(default)]
    pub log: LogSection,
    /// Signed checkpoints of the Merkle tree.
    #[serde(default)]
    pub checkpoint: CheckpointSection,
    /// `[readiness]`: when `/readyz` says not ready.
    #[serde(default)]
    pub readiness: ReadinessSection,
    /// `[divergence]`: comparing this node's Merkle root with its peers' while running.
    #[serde(default)]
    pub divergence: DivergenceSection,
    /// Capabilities (macaroon-style tokens) required for writes and admin operations.
    #[serde(default)]
    pub auth: AuthSection,
    /// Install the seccomp deny-list (no exec, ptrace, module loading, raw sockets) before the
    /// runtime starts; refuse to start if the kernel will not take it. See `node::security::seccomp`.
    #[serde(default)]
    pub seccomp: bool,
    /// The client API on a Unix socket, admitted by peer uid.
    #[serde(default)]
    pub uds: UdsSection,
    /// Transport security (TLS 1.3, mutual TLS between peers).
    #[serde(default)]
    pub tls: crate::security::tls::TlsSection,
}

/// `[auth]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Require a capability for every mutation and admin operation. Turning it off leaves the
    /// API open to anyone who can reach it (the node logs a warning at start).
    pub enabled: bool,
    /// Capability root keys (JSON key ring, mode 0600; see `docs/CAPABILITIES.md`).
    pub key_file: Option<PathBuf>,
    /// Tokens must name the KID of the root key they were minted with.
    pub require_kid: bool,
    /// Tokens whose expiry is further than this from their issue time are refused.
    pub max_lifetime_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            enabled: true,
            key_file: None,
            require_kid: true,
            max_lifetime_secs: ledger::capability::DEFAULT_MAX_LIFETIME_SECS,
        }
    }
}

/// `[uds]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UdsSection {
    /// Serve the client API on this Unix socket too (off when unset). A stale socket there is
    /// replaced; any other kind of file stops start-up.
    pub path: Option<PathBuf>,
    /// Peer uids (from `SO_PEERCRED`) admitted; everyone else is disconnected. Required, non-empty,
    /// when `path` is set.
    pub allowed_uids: Vec<u32>,
    /// Permission bits of the socket file (TOML accepts `0o660`).
    pub mode: u32,
}

impl Default for UdsSection {
    fn default() -> Self {
        Self {
            path: None,
            allowed_uids: Vec::new(),
            mode: 0o660,
        }
    }
}

/// `[readiness]`: the thresholds of `/readyz` (a node is also not ready without a known leader
/// or in safe mode).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReadinessSection {
    /// Not ready (`queue_high_water`) while the sequencer queue holds at least this percentage
    /// of `limits.queue_requests_max` requests. 1 to 100.
    pub queue_high_water_percent: u8,
    /// Not ready (`apply_lagging`) while the committed index is more than this many entries
    /// ahead of the applied one.
    pub apply_lag_max: u64,
}

impl Default for ReadinessSection {
    fn default() -> Self {
        Self {
            queue_high_water_percent: 80,
            apply_lag_max: 1_000,
        }
    }
}

/// `[divergence]`: every `check_interval_ms` a node asks each peer for its Merkle root at this
/// node's tree size (or the peer's, if smaller) and compares it with its own there; a node whose
/// root a majority of the voters contradicts enters safe mode (`root_mismatch`). See
/// `node::divergence`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DivergenceSection {
    /// How often to compare (milliseconds); 0 turns the check off.
    pub check_interval_ms: u64,
}

impl Default for DivergenceSection {
    fn default() -> Self {
        Self {
            check_interval_ms: 1_000,
        }
    }
}

/// `[checkpoint]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointSection {
    /// Sign a checkpoint whenever the tree has grown past another multiple of this many events.
    pub interval_events: u64,
    /// Checkpoints kept (newest first); older ones are dropped. Counts those signed at an
    /// interval boundary or by `POST /v1/admin/checkpoint`, not those a read caused.
    pub retention: usize,
    /// Unauthenticated reads (`GET /v1/checkpoints/latest`, `GET /v1/export`) may sign the
    /// applied tree when it grew past the newest checkpoint, but at most once per this many
    /// milliseconds: a read inside the window waits out its rest, then gets a checkpoint that
    /// covers everything applied by then. The checkpoint a read caused is kept only until the
    /// next one replaces it, so reads never push retained checkpoints out.
    pub read_sign_interval_ms: u64,
    /// The signing key file (JSON `{"kid", "seed"}`, mode 0600). Default: `checkpoint.key` in
    /// `data_dir`, created on first start. In amnesia mode without a file, a key is generated
    /// in memory for this run only.
    pub key_file: Option<PathBuf>,
}

impl Default for CheckpointSection {
    fn default() -> Self {
        Self {
            interval_events: 10_000,
            retention: 1_000,
            read_sign_interval_ms: 100,
            key_file: None,
        }
    }
}

/// `[raft]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSection {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot (for slow followers).
    pub keep_entries_after_snapshot: u64,
    /// Timeout of one peer RPC (a vote, a snapshot). An append entries call is bounded by the
    /// smaller of this and `election_timeout_min_ms - heartbeat_ms` (the append budget: see
    /// `start::append_budget_ms`).
    pub rpc_timeout_ms: u64,
    /// Bytes per snapshot chunk sent to a follower.
    pub snapshot_chunk_bytes: u64,
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_every_entries: 5_000,
            keep_entries_after_snapshot: 1_000,
            rpc_timeout_ms: 3_000,
            snapshot_chunk_bytes: 1 << 20,
        }
    }
}

/// `[limits]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest request body accepted (bytes), JSON or binary.
    pub body_bytes_max: usize,
    /// Requests waiting for the sequencer; beyond this, 429 with Retry-After.
    pub queue_requests_max: usize,
    /// Events coalesced into one log entry (group commit).
    pub entry_events_max: usize,
    /// Log entries proposed but not yet applied (pipelining depth); at most one of them small
    /// (fewer than `pipeline::sequencer::SMALL_ENTRY_EVENTS` events), so concurrent small
    /// requests share entries.
    pub inflight_entries_max: usize,
    /// A write waits at most this long for its entry to be applied.
    pub write_timeout_ms: u64,
    /// Open connections per listener; a new one beyond this is closed at once.
    pub connections_max: usize,
    /// A connection must complete its TLS handshake within this long.
    pub handshake_timeout_ms: u64,
    /// An HTTP/1 request's headers must arrive within this long (slowloris guard).
    pub header_read_timeout_ms: u64,
    /// A request is answered 408 `timeout` if not done within this long.
    pub request_timeout_ms: u64,
    /// Client API requests per second per peer IP (token bucket refill rate).
    pub rate_per_peer_per_sec: u32,
    /// Client API token bucket size per peer IP (the burst allowed).
    pub rate_burst: u32,
    /// Open event streams (`GET /v1/events`) this node serves at once; beyond this, 429 `busy`.
    /// Each holds a producer task and up to a buffer of lines, and a following stream never
    /// ends by itself.
    pub event_streams_max: usize,
    /// Exports (`GET /v1/export`, up to 65,536 proofs built in memory) this node builds at
    /// once; beyond this, 429 `busy`.
    pub exports_max: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            body_bytes_max: 4 * 1024 * 1024,
            queue_requests_max: 4_096,
            entry_events_max: ledger::limits::ENTRY_EVENTS_MAX,
            inflight_entries_max: 8,
            write_timeout_ms: 10_000,
            connections_max: 1_024,
            handshake_timeout_ms: 5_000,
            header_read_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            rate_per_peer_per_sec: 100_000,
            rate_burst: 200_000,
            event_streams_max: 256,
            exports_max: 2,
        }
    }
}

/// `[log]`
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `json` (one JSON object per line) or `text`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `info,openraft=warn`.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: "json".into(),
            level: "info,openraft=warn".into(),
        }
    }
}

fn default_cluster_id() -> String {
    "ron-ledger".into()
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML (after overrides) did not deserialize.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A key has an invalid value.
    #[error("invalid value for `{key}`: {reason}")]
    Value {
        /// The key, dotted.
        key: String,
        /// Why.
        reason: String,
    },
}

const ENV_PREFIX: &str = "RON_LEDGER_";

/// Build the configuration: the file (if any), then environment variables (`RON_LEDGER_NODE_ID`,
/// `RON_LEDGER_RAFT__HEARTBEAT_MS` for `[raft] heartbeat_ms`), then `overrides` (`key=value`
/// pairs from flags, dotted keys for sections).
pub fn load(
    file: Option<&std::path::Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> Result<Config, ConfigError> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
        }
        None => toml::Table::new(),
    };
    // (dotted key, value, the variable's own name)
    let mut env: Vec<(String, String, String)> = env
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(ENV_PREFIX)
                .map(|key| (key.to_lowercase().replace("__", "."), v, k.clone()))
        })
        .collect();
    env.sort();
    for (key, value, _) in &env {
        set(&mut table, key, value)?;
    }
    for (key, value) in overrides {
        set(&mut table, key, value)?;
    }
    let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| invalid(e, &env, overrides))?;
    validate(&config)?;
    Ok(config)
}

/// A configuration that does not deserialize, described by the dotted key it failed at and
/// where that key was set: an environment variable is named as the operator wrote it
/// (`RON_LEDGER_BIN`), not only by the key it maps to (`bin`).
fn invalid(
    e: serde_path_to_error::Error<toml::de::Error>,
    env: &[(String, String, String)],
    overrides: &[(String, String)],
) -> ConfigError {
    let mut key = e.path().to_string();
    let message = e.into_inner().message().to_string();
    // An unknown field is reported at its section; the key is that section plus the field.
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
    {
        if key.rsplit('.').next() != Some(field) {
            key = if key == "." || key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
        }
    }
    // Overrides are applied last: if one set the key, it is the value in force.
    let origin = if overrides.iter().any(|(k, _)| *k == key) {
        format!("the command-line setting `{key}`")
    } else if let Some((_, _, var)) = env.iter().find(|(k, _, _)| *k == key) {
        format!("environment variable {var} (config key `{key}`)")
    } else {
        format!("config key `{key}`")
    };
    ConfigError::Invalid(format!("{origin}: {message}"))
}

/// Set a dotted key to a scalar parsed as TOML (integer, float, boolean) or else a string.
fn set(table: &mut toml::Table, key: &str, raw: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.split('.').collect();
    let value = raw
        .parse::<i64>()
        .map(toml::Value::Integer)
        .or_else(|_| raw.parse::<bool>().map(toml::Value::Boolean))
        .unwrap_or_else(|_| toml::Value::String(raw.to_string()));
    let mut current = table;
    for part in &parts[..parts.len() - 1] {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| ConfigError::Value {
            key: key.to_string(),
            reason: format!("`{part}` is not a section"),
        })?;
    }
    current.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn validate(c: &Config) -> Result<(), ConfigError> {
    let bad = |key: &str, reason: &str| {
        Err(ConfigError::Value {
            key: key.into(),
            reason: reason.into(),
        })
    };
    if c.node_id == 0 {
        return bad("node_id", "must be 1 or more");
    }
    for (key, addr) in [
        ("advertise_api_addr", &c.advertise_api_addr),
        ("advertise_peer_addr", &c.advertise_peer_addr),
    ] {
        if let Some(Err(reason)) = addr.as_deref().map(check_host_port) {
            return bad(key, &reason);
        }
    }
    if c.cluster_id.is_empty() || c.cluster_id.len() > 64 {
        return bad("cluster_id", "must be 1 to 64 characters");
    }
    if !c.amnesia && c.data_dir.is_none() {
        return bad("data_dir", "required unless amnesia = true");
    }
    if c.api_addr == c.peer_addr {
        return bad("peer_addr", "must differ from api_addr");
    }
    let r = &c.raft;
    if r.heartbeat_ms == 0
        || r.heartbeat_ms
            .checked_mul(3)
            .is_none_or(|three| three > r.election_timeout_min_ms)
    {
        return bad(
            "raft.heartbeat_ms",
            "must be > 0 and at most a third of raft.election_timeout_min_ms",
        );
    }
    if r.election_timeout_max_ms <= r.election_timeout_min_ms {
        return bad(
            "raft.election_timeout_max_ms",
            "must exceed raft.election_timeout_min_ms",
        );
    }
    if r.rpc_timeout_ms == 0 {
        return bad("raft.rpc_timeout_ms", "must be > 0");
    }
    if r.snapshot_every_entries == 0 {
        return bad("raft.snapshot_every_entries", "must be > 0");
    }
    if r.snapshot_chunk_bytes < 4096 || r.snapshot_chunk_bytes > 16 << 20 {
        return bad(
            "raft.snapshot_chunk_bytes",
            "must be between 4 KiB and 16 MiB",
        );
    }
    let l = &c.limits;
    if l.body_bytes_max < 1024 || l.body_bytes_max > 64 << 20 {
        return bad("limits.body_bytes_max", "must be between 1 KiB and 64 MiB");
    }
    if l.queue_requests_max == 0 || l.queue_requests_max > 1_000_000 {
        return bad("limits.queue_requests_max", "must be 1 to 1000000");
    }
    if l.entry_events_max < ledger::limits::BATCH_EVENTS_MAX
        || l.entry_events_max > ledger::limits::ENTRY_EVENTS_MAX
    {
        return bad("limits.entry_events_max", "must be between 8190 and 32760");
    }
    if l.inflight_entries_max == 0 || l.inflight_entries_max > 256 {
        return bad("limits.inflight_entries_max", "must be 1 to 256");
    }
    if l.write_timeout_ms == 0 {
        return bad("limits.write_timeout_ms", "must be > 0");
    }
    if l.connections_max == 0 || l.connections_max > 1_000_000 {
        return bad("limits.connections_max", "must be 1 to 1000000");
    }
    if l.event_streams_max == 0 || l.event_streams_max > 100_000 {
        return bad("limits.event_streams_max", "must be 1 to 100000");
    }
    if l.exports_max == 0 || l.exports_max > 64 {
        return bad("limits.exports_max", "must be 1 to 64");
    }
    for (key, ms) in [
        ("limits.handshake_timeout_ms", l.handshake_timeout_ms),
        ("limits.header_read_timeout_ms", l.header_read_timeout_ms),
        ("limits.request_timeout_ms", l.request_timeout_ms),
    ] {
        if ms == 0 || ms > 3_600_000 {
            return bad(key, "must be 1 to 3600000");
        }
    }
    if l.request_timeout_ms <= l.write_timeout_ms {
        return bad(
            "limits.request_timeout_ms",
            "must exceed limits.write_timeout_ms (a write answers 504 first)",
        );
    }
    if l.rate_per_peer_per_sec == 0 {
        return bad("limits.rate_per_peer_per_sec", "must be > 0");
    }
    if l.rate_burst == 0 {
        return bad("limits.rate_burst", "must be > 0");
    }
    if c.tls.enabled {
        for (key, set) in [
            ("tls.cert_file", c.tls.cert_file.is_some()),
            ("tls.key_file", c.tls.key_file.is_some()),
            ("tls.ca_file", c.tls.ca_file.is_some()),
        ] {
            if !set {
                return bad(key, "required when tls.enabled = true");
            }
        }
    }
    if c.checkpoint.interval_events == 0 {
        return bad("checkpoint.interval_events", "must be > 0");
    }
    if !(1..=100).contains(&c.readiness.queue_high_water_percent) {
        return bad("readiness.queue_high_water_percent", "must be 1 to 100");
    }
    if c.checkpoint.read_sign_interval_ms > 60_000 {
        return bad("checkpoint.read_sign_interval_ms", "must be at most 60000");
    }
    if c.checkpoint.retention == 0 || c.checkpoint.retention > 1_000_000 {
        return bad("checkpoint.retention", "must be 1 to 1000000");
    }
    if c.auth.max_lifetime_secs == 0 || c.auth.max_lifetime_secs > 366 * 24 * 3600 {
        return bad("auth.max_lifetime_secs", "must be 1 to 31622400 (366 days)");
    }
    if c.auth.enabled && c.auth.key_file.is_none() {
        return bad(
            "auth.key_file",
            "required while auth.enabled = true (`ron-ledger certs` writes one); set auth.enabled = false only for an open test node",
        );
    }
    if c.tls.mtls_required && !c.tls.enabled {
        return bad(
            "tls.mtls_required",
            "is true (the default), so tls.enabled = true with cert_file, key_file and ca_file is required; \
             set tls.mtls_required = false to run without TLS (development and tests only)",
        );
    }
    if c.uds.path.is_some() && c.uds.allowed_uids.is_empty() {
        return bad(
            "uds.allowed_uids",
            "must list at least one uid when uds.path is set",
        );
    }
    if c.uds.mode > 0o777 {
        return bad("uds.mode", "must be permission bits, at most 0o777");
    }
    if c.log.format != "json" && c.log.format != "text" {
        return bad("log.format", "must be \"json\" or \"text\"");
    }
    Ok(())
}

/// A member address as peers and clients dial it: `host:port`, the host a DNS name (letters,
/// digits, `-` and `_` — container and service names use `_` — with or without a final dot), an
/// IPv4 address or a bracketed IPv6 address, but not an unspecified one (`0.0.0.0`, `[::]`:
/// nobody can dial it); the port 1 to 65535.
pub fn check_host_port(addr: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "{addr:?} is not host:port (a DNS name, IPv4 address or [IPv6] address, then a port \
             from 1 to 65535)"
        ))
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        return bad();
    };
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| !ip.is_unspecified())
    } else if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        !ip.is_unspecified()
    } else {
        let name = host.strip_suffix('.').unwrap_or(host);
        !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    if port_ok && host_ok {
        Ok(())
    } else {
        bad()
    }
}

impl Config {
    /// The address clients should use for this node.
    pub fn public_api_addr(&self) -> String {
        self.advertise_api_addr
            .clone()
            .unwrap_or_else(|| self.api_addr.to_string())
    }

    /// The address peers should use for this node.
    pub fn public_peer_addr(&self) -> String {
        self.advertise_peer_addr
            .clone()
            .unwrap_or_else(|| self.peer_addr.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_addresses_must_be_host_and_port() {
        for ok in [
            "127.0.0.1:7001",
            "node-1.ledger.svc:7101",
            "[::1]:7001",
            "localhost:65535",
            "ron_ledger_node1:7001",
            "node-1.ledger.svc.cluster.local.:7101",
        ] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "not an addr",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:+80",
            ":7001",
            "http://x:7001",
            "::1:7001",
            "a..b:7001",
            "-a:7001",
            "[zz]:7001",
            "0.0.0.0:7001",
            "[::]:7001",
            ".:7001",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn base() -> Vec<(String, String)> {
        vec![
            ("node_id".into(), "1".into()),
            ("api_addr".into(), "127.0.0.1:7001".into()),
            ("peer_addr".into(), "127.0.0.1:7101".into()),
            ("amnesia".into(), "true".into()),
            ("auth.key_file".into(), "/etc/ron-ledger/caps.keys".into()),
            ("tls.mtls_required".into(), "false".into()),
        ]
    }

    #[test]
    fn without_tls_the_node_refuses_to_start_unless_mtls_is_waived() {
        let mut o = base();
        o.retain(|(k, _)| k != "tls.mtls_required");
        let e = load(None, vec![], &o).unwrap_err().to_string();
        assert!(e.contains("tls.mtls_required"), "{e}");
        o.push(("tls.enabled".into(), "true".into()));
        o.push(("tls.cert_file".into(), "/c.pem".into()));
        o.push(("tls.key_file".into(), "/k.pem".into()));
        o.push(("tls.ca_file".into(), "/ca.pem".into()));
        assert!(load(None, vec![], &o).unwrap().tls.mtls_required);
    }

    #[test]
    fn capabilities_are_on_by_default_and_need_a_key_file() {
        let c = load(None, vec![], &base()).unwrap();
        assert!(c.auth.enabled && c.auth.require_kid);
        assert_eq!(c.auth.max_lifetime_secs, 30 * 24 * 3600);
        let e = load(None, vec![], &base()[..4]).unwrap_err().to_string();
        assert!(e.contains("auth.key_file"), "{e}");
        let mut o = base()[..4].to_vec();
        o.push(("auth.enabled".into(), "false".into()));
        o.push(("tls.mtls_required".into(), "false".into()));
        assert!(!load(None, vec![], &o).unwrap().auth.enabled);
    }

    /// Values that would overflow later (a queue tokio cannot allocate, a heartbeat whose
    /// triple wraps) are refused at load, naming the key — never a panic after start-up.
    #[test]
    fn values_that_would_overflow_later_are_refused_at_load() {
        for (key, value) in [
            ("limits.queue_requests_max", "4611686018427387904"),
            ("raft.heartbeat_ms", "6148914691236517206"),
            ("limits.event_streams_max", "0"),
            ("limits.exports_max", "65"),
        ] {
            let mut o = base();
            o.push(("auth.enabled".into(), "false".into()));
            o.push(("tls.mtls_required".into(), "false".into()));
            o.push((key.into(), value.into()));
            let e = load(None, vec![], &o).unwrap_err().to_string();
            assert!(e.contains(key), "{key}={value}: {e}");
        }
    }

    #[test]
    fn a_full_binary_batch_fits_the_default_body_cap() {
        use ledger::{Operation, Transfer, TransferFlags};
        let worst = Transfer {
            id: u128::MAX - 1,
            debit_account_id: u128::MAX - 1,
            credit_account_id: u128::MAX - 2,
            amount: u128::MAX,
            pending_id: u128::MAX - 3,
            user_data_128: u128::MAX,
            user_data_64: u64::MAX,
            user_data_32: u32::MAX,
            timeout: u32::MAX,
            ledger: u32::MAX,
            code: u16::MAX,
            flags: TransferFlags(u16::MAX),
            timestamp: u64::MAX,
        };
        let op = Operation::CreateTransfers(vec![worst; ledger::limits::BATCH_EVENTS_MAX]);
        let bytes = ledger::codec::encode(ledger::codec::Kind::Operation, &op).len();
        let json = serde_json::to_vec(&op).unwrap().len();
        println!("8,190 worst-case transfers: binary {bytes} bytes, JSON {json} bytes");
        assert!(bytes <= LimitsSection::default().body_bytes_max);
    }

    #[test]
    fn seccomp_and_uds_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("n.toml");
        std::fs::write(&file, "node_id = 1\napi_addr = \"127.0.0.1:1\"\npeer_addr = \"127.0.0.1:2\"\namnesia = true\nseccomp = true\n[auth]\nkey_file = \"/k\"\n[tls]\nmtls_required = false\n[uds]\npath = \"/run/x.sock\"\nallowed_uids = [0, 1000]\nmode = 0o600\n").unwrap();
        let c = load(Some(&file), vec![], &[]).unwrap();
        assert!(c.seccomp);
        assert_eq!(
            c.uds.path.as_deref(),
            Some(std::path::Path::new("/run/x.sock"))
        );
        assert_eq!(c.uds.allowed_uids, vec![0, 1000]);
        assert_eq!(c.uds.mode, 0o600);
        let c = load(None, vec![], &base()).unwrap();
        assert!(!c.seccomp, "off by default");
        assert_eq!(c.uds, UdsSection::default());
        assert_eq!(c.uds.mode, 0o660);
    }

    #[test]
    fn the_sample_file_loads_with_and_without_its_hardening_entries() {
        let sample = test_support::paths::workspace_root(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/node.sample.toml");
        let text = std::fs::read_to_string(sample).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("n.toml");
        std::fs::write(&file, &text).unwrap();
        let c = load(Some(&file), vec![], &[]).unwrap();
        assert!(!c.seccomp);
        assert!(c.uds.path.is_none());
        let uncommented: String = text
            .lines()
            .map(|l| {
                let hardening = ["# seccomp", "# [uds]", "# path", "# allowed_uids", "# mode"];
                if hardening.iter().any(|p| l.starts_with(p)) {
                    &l[2..]
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&file, uncommented).unwrap();
        let c = load(Some(&file), vec![], &[]).unwrap();
        assert!(c.seccomp);
        assert!(c.uds.path.is_some());
        assert!(!c.uds.allowed_uids.is_empty());
        assert_eq!(c.uds.mode, 0o660);
    }

    #[test]
    fn the_sample_config_loads() {
        let file = test_support::paths::workspace_root(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/node.sample.toml");
        let c = load(Some(&file), vec![], &[]).unwrap();
        assert_eq!(c.limits, LimitsSection::default());
        assert!(
            c.tls.enabled && c.tls.mtls_required,
            "the sample is the production template"
        );
        assert!(c.tls.cert_file.is_some() && c.tls.key_file.is_some() && c.tls.ca_file.is_some());
        assert!(c.auth.enabled && c.auth.key_file.is_some());
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("n.toml");
        std::fs::write(&file, "node_id = 1\napi_addr = \"127.0.0.1:1\"\npeer_addr = \"127.0.0.1:2\"\ndata_dir = \"/tmp/x\"\n[auth]\nenabled = false\n[tls]\nmtls_required = false\n[raft]\nheartbeat_ms = 50\n").unwrap();
        let env = vec![
            ("RON_LEDGER_NODE_ID".to_string(), "2".to_string()),
            (
                "RON_LEDGER_RAFT__HEARTBEAT_MS".to_string(),
                "60".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = load(Some(&file), env, &[("node_id".into(), "3".into())]).unwrap();
        assert_eq!(c.node_id, 3, "flags win");
        assert_eq!(c.raft.heartbeat_ms, 60, "env beats file");
        assert_eq!(c.api_addr.port(), 1);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let mut o = base();
        o.push(("colour".into(), "red".into()));
        let e = load(None, vec![], &o).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let mut o = base();
        o.push(("raft.heartbeat_ms".into(), "0".into()));
        let e = load(None, vec![], &o).unwrap_err().to_string();
        assert!(e.contains("raft.heartbeat_ms"), "{e}");
        let e = load(
            None,
            vec![("RON_LEDGER_LIMITS__NOPE".into(), "1".into())],
            &base(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope"), "{e}");
        assert!(
            e.contains("environment variable RON_LEDGER_LIMITS__NOPE"),
            "the variable is named: {e}"
        );
        let e = load(None, vec![("RON_LEDGER_BIN".into(), "x".into())], &base())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("environment variable RON_LEDGER_BIN") && e.contains("`bin`"),
            "{e}"
        );
        let e = load(
            None,
            vec![("RON_LEDGER_RAFT__HEARTBEAT_MS".into(), "soon".into())],
            &base(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("RON_LEDGER_RAFT__HEARTBEAT_MS") && e.contains("raft.heartbeat_ms"),
            "a bad value names the variable and the key: {e}"
        );
        let mut o = base();
        o.push(("api_addr".into(), "not-an-address".into()));
        assert!(load(None, vec![], &o).is_err());
        let mut o = base();
        o.push(("uds.path".into(), "/tmp/x.sock".into()));
        let e = load(None, vec![], &o).unwrap_err().to_string();
        assert!(e.contains("uds.allowed_uids"), "{e}");
        let mut o = base();
        o.push(("uds.mode".into(), "4096".into()));
        let e = load(None, vec![], &o).unwrap_err().to_string();
        assert!(e.contains("uds.mode"), "{e}");
        assert!(load(None, vec![], &base()[..3])
            .unwrap_err()
            .to_string()
            .contains("data_dir"));
    }
}
