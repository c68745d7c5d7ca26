//! What a write answers, as the SDK reports it: one [`EventOutcome`] per event, read from the
//! node's results body, with `exists` for an event the same call had already sent reported as
//! `ok` ([`ExistsIsOk`]), since that earlier attempt is what applied it.

use crate::error::Error;
use ledger::{CreateAccountResult, CreateTransferResult};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// One event's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventOutcome<R> {
    /// Result code. `exists` for an event this call already sent is reported as `ok`.
    pub result: R,
    /// Cluster timestamp (ns), when the event was sequenced.
    pub timestamp: Option<u64>,
    /// Merkle leaf index, when the event was sequenced.
    pub leaf: Option<u64>,
}

/// Write results.
#[derive(Debug, Deserialize)]
struct WireWrite {
    results: Vec<WireEvent>,
}

#[derive(Debug, Deserialize)]
struct WireEvent {
    result: String,
    timestamp: Option<String>,
    leaf: Option<String>,
}

/// Result codes whose `exists` means "already applied".
pub trait ExistsIsOk: Sized {
    /// The `exists` code.
    const EXISTS: Self;
    /// The `ok` code.
    const OK: Self;
}

impl ExistsIsOk for CreateAccountResult {
    const EXISTS: Self = CreateAccountResult::Exists;
    const OK: Self = CreateAccountResult::Ok;
}

impl ExistsIsOk for CreateTransferResult {
    const EXISTS: Self = CreateTransferResult::Exists;
    const OK: Self = CreateTransferResult::Ok;
}

/// The outcomes in a write's results `body`, in order; `resent` says an earlier attempt of this
/// call may have reached the server.
pub(crate) fn parse_results<R>(body: &[u8], resent: bool) -> Result<Vec<EventOutcome<R>>, Error>
where
    R: DeserializeOwned + Copy + PartialEq + ExistsIsOk,
{
    let w: WireWrite = serde_json::from_slice(body).map_err(|e| Error::Protocol(e.to_string()))?;
    w.results
        .into_iter()
        .map(|e| {
            let mut result: R = serde_json::from_value(serde_json::Value::String(e.result.clone()))
                .map_err(|_| Error::Protocol(format!("unknown result code {:?}", e.result)))?;
            // Our own earlier attempt may have applied it: that is this event's success.
            if resent && result == R::EXISTS {
                result = R::OK;
            }
            Ok(EventOutcome {
                result,
                timestamp: e.timestamp.and_then(|t| t.parse().ok()),
                leaf: e.leaf.and_then(|t| t.parse().ok()),
            })
        })
        .collect()
}
