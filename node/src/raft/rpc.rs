//! Bodies on the peer channel and the version headers every peer message carries (the cluster-version
//! module says what they are for), and the one message of ours that travels on it
//! ([`ForwardRequest`], a follower's write for the leader's sequencer): bincode with a size bound,
//! so a peer's bytes can never make this node allocate without limit.

use bincode::Options;
use ledger::Operation;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest peer message accepted (bytes): a few full log entries, or one snapshot chunk.
pub const PEER_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(PEER_BODY_BYTES_MAX as u64)
        .reject_trailing_bytes()
}

/// Encode a peer message.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    options().serialize(value).map_err(|e| e.to_string())
}

/// Decode a peer message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    options().deserialize(bytes).map_err(|e| e.to_string())
}

/// The header naming the peer wire format of a request or answer.
pub const WIRE_HEADER: &str = "x-ron-wire";
/// The header naming the highest cluster version the sender runs.
pub const RUNS_HEADER: &str = "x-ron-cluster-max";
/// The peer wire format this build speaks: 2 adds the two version headers to the bincode bodies
/// of format 1 (release 0.1.0), which are unchanged.
pub const PEER_WIRE: u32 = 2;
/// The oldest peer wire format this build reads (the previous release's).
pub const PEER_WIRE_MIN: u32 = 1;
/// The headers this node puts on every peer request.
pub fn request_headers() -> Vec<(&'static str, String)> {
    vec![
        (WIRE_HEADER, PEER_WIRE.to_string()),
        (RUNS_HEADER, raft_store::CLUSTER_VERSION.to_string()),
    ]
}

/// The peer wire format a request or answer names (`None`: the header is absent, release 0.1.0,
/// format 1), if this build reads it; else the refusal.
pub fn check_wire(header: Option<&str>) -> Result<u32, String> {
    let wire = match header {
        None => PEER_WIRE_MIN,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("peer wire format {v:?} is not a number"))?,
    };
    if (PEER_WIRE_MIN..=PEER_WIRE).contains(&wire) {
        Ok(wire)
    } else {
        Err(format!(
            "peer wire format {wire} is not read by this node (release {}, reads formats \
             {PEER_WIRE_MIN} to {PEER_WIRE}): run the same or adjacent releases in one cluster",
            env!("CARGO_PKG_VERSION")
        ))
    }
}

/// The highest cluster version a peer's answer says it runs (`None` header: release 0.1.0, 1;
/// an unreadable one counts as 1, the lowest).
pub fn runs(header: Option<&str>) -> u32 {
    header
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(raft_store::cluster_version::BASE)
}

/// A follower's request to the leader's sequencer.
#[derive(Serialize, Deserialize)]
pub struct ForwardRequest {
    /// The cluster the sender belongs to.
    pub cluster_id: String,
    /// The prevalidated request.
    pub op: Operation,
    /// Id of the capability the receiving node accepted, so the leader refuses it too if it
    /// has already applied its revocation (the receiving node may lag behind).
    pub token_id: Option<[u8; 16]>,
    /// Id of a reversal's second approval (dual control), checked again by the leader.
    pub approval_token_id: Option<[u8; 16]>,
    /// The client request's correlation id (`x-request-id`), so the leader's log lines for the
    /// write name the same `corr_id` as the receiving node's.
    pub corr_id: String,
}
