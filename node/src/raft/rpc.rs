//! Bodies on the peer channel, and the one message of ours that travels on it
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
