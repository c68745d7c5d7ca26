//! What one Raft log entry carries ([`Batch`]) and what applying it returns ([`Outcome`]).

use crate::limits::{BATCH_EVENTS_MAX, BATCH_REQUESTS_MAX, ENTRY_EVENTS_MAX};
use crate::merkle::Hash;
use crate::results::{CreateAccountResult, CreateTransferResult, EventResult};
use crate::types::{Account, Transfer};
use serde::{Deserialize, Serialize};

/// One client request: a list of events of one kind, applied in order. `linked` chains never
/// cross request boundaries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Create accounts.
    CreateAccounts(Vec<Account>),
    /// Create transfers.
    CreateTransfers(Vec<Transfer>),
}

impl Operation {
    /// Number of events carried.
    pub fn len(&self) -> usize {
        match self {
            Operation::CreateAccounts(v) => v.len(),
            Operation::CreateTransfers(v) => v.len(),
        }
    }

    /// Whether it carries no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check the size bounds of one request.
    pub fn check_bounds(&self) -> Result<(), BatchError> {
        match self.len() {
            0 => Err(BatchError::Empty),
            n if n > BATCH_EVENTS_MAX => Err(BatchError::TooManyEvents {
                events: n,
                max: BATCH_EVENTS_MAX,
            }),
            _ => Ok(()),
        }
    }
}

/// The payload of one log entry: requests the sequencer coalesced, with the cluster timestamp it
/// assigned. Apply gives each event its own timestamp, counting up from
/// `max(timestamp, last applied timestamp + 1)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Cluster time (ns) chosen by the leader's sequencer.
    #[serde(with = "crate::wire::dec")]
    pub timestamp: u64,
    /// The coalesced requests, in sequencing order.
    pub operations: Vec<Operation>,
}

impl Batch {
    /// Check every bound a log entry must respect. Decoders call this; apply never relies on it
    /// for memory safety, only prevalidation does.
    pub fn check_bounds(&self) -> Result<(), BatchError> {
        if self.operations.len() > BATCH_REQUESTS_MAX {
            return Err(BatchError::TooManyRequests {
                requests: self.operations.len(),
                max: BATCH_REQUESTS_MAX,
            });
        }
        let mut total = 0usize;
        for op in &self.operations {
            op.check_bounds()?;
            total += op.len();
        }
        if total > ENTRY_EVENTS_MAX {
            return Err(BatchError::TooManyEvents {
                events: total,
                max: ENTRY_EVENTS_MAX,
            });
        }
        Ok(())
    }
}

/// A request or entry outside the bounds of [`crate::limits`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A request with no events.
    #[error("a request must carry at least one event")]
    Empty,
    /// Too many events.
    #[error("{events} events exceed the limit of {max}")]
    TooManyEvents {
        /// Events carried.
        events: usize,
        /// The bound.
        max: usize,
    },
    /// Too many requests in one entry.
    #[error("{requests} requests exceed the limit of {max} per entry")]
    TooManyRequests {
        /// Requests carried.
        requests: usize,
        /// The bound.
        max: usize,
    },
}

/// Results for one request, one per event, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// For [`Operation::CreateAccounts`].
    CreateAccounts(Vec<EventResult<CreateAccountResult>>),
    /// For [`Operation::CreateTransfers`].
    CreateTransfers(Vec<EventResult<CreateTransferResult>>),
}

/// What applying one entry produced: the replies and the receipt data (tree size and root after
/// the entry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// One reply per operation, in order.
    pub replies: Vec<Reply>,
    /// Pending transfers expired by cluster time at the start of this entry.
    pub expired: u32,
    /// Merkle tree size after the entry.
    pub tree_size: u64,
    /// Merkle root after the entry.
    pub root: Hash,
    /// Cluster timestamp of the last event in the state after this entry.
    pub last_timestamp: u64,
}
