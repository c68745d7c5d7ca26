//! The leader's Sequencer/Committer. Requests (already prevalidated, from this node's ingress or
//! forwarded by followers) wait in one bounded queue; the sequencer coalesces what is waiting
//! into one log entry up to `entry_events_max` events (group commit), stamps it with the cluster
//! timestamp, hands it to openraft in order, and answers each request with its own reply once
//! the entry is applied. Up to `inflight_entries_max` entries are in flight at once, but only one
//! small entry (fewer than [`SMALL_ENTRY_EVENTS`] events): a small group waits for the small
//! entry in flight and takes along what queued meanwhile, so many concurrent single-transfer
//! requests share entries instead of each paying an entry's replication, fsyncs and apply.

use crate::error::ApiError;
use crate::seam::Clock;
use ledger::{Batch, Hash, Operation, Reply};
use openraft::error::{ClientWriteError, RaftError};
use raft_store::{Command, NodeId, NodeInfo, Response, TypeConfig};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Entries with fewer events than this are small: one at a time is in flight (see the module
/// docs). Measured on the 3-node dev cluster (docs/BENCHMARKS.md, "Group commit"): with 64
/// single-transfer requests in flight, entries carried 4.7 transfers with eight small entries in
/// flight and about 20 with one.
pub const SMALL_ENTRY_EVENTS: usize = 64;

/// What a committed request gets back: its per-event results and the receipt of its entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// One result per event.
    pub reply: Reply,
    /// The log index of the entry that carried the request.
    pub log_index: u64,
    /// Merkle tree size after the entry.
    pub tree_size: u64,
    /// Merkle root after the entry.
    pub root: Hash,
}

/// A request waiting for the sequencer.
pub struct Submission {
    /// The prevalidated request.
    pub op: Operation,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Receipt, ApiError>>,
}

/// Handle to the sequencer's queue.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Submission>,
    depth: Arc<AtomicU64>,
    /// The permits of entries in flight (see [`Sequencer::busy`]).
    inflight: Arc<Semaphore>,
    inflight_max: usize,
}

impl Sequencer {
    /// Start the sequencer task for `raft`.
    pub fn start(
        raft: openraft::Raft<TypeConfig>,
        clock: Arc<dyn Clock>,
        state: Arc<dyn raft_store::StateBackend>,
        write_timeout: std::time::Duration,
        queue_requests_max: usize,
        entry_events_max: usize,
        inflight_entries_max: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue_requests_max);
        let depth = Arc::new(AtomicU64::new(0));
        let inflight = Arc::new(Semaphore::new(inflight_entries_max));
        tokio::spawn(run(
            Pipeline {
                raft,
                clock,
                state,
                write_timeout,
                depth: depth.clone(),
                entry_events_max,
                inflight: inflight.clone(),
                small_inflight: Arc::new(Semaphore::new(1)),
            },
            rx,
        ));
        Self {
            tx,
            depth,
            inflight,
            inflight_max: inflight_entries_max,
        }
    }

    /// Queue a request; a full queue is an immediate 429, never a wait.
    pub fn submit(
        &self,
        op: Operation,
    ) -> Result<oneshot::Receiver<Result<Receipt, ApiError>>, ApiError> {
        let (reply, rx) = oneshot::channel();
        // Count before sending: the sequencer may take the request (and count it out) at once.
        self.depth.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Submission { op, reply }) {
            Ok(()) => Ok(rx),
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => {
                        ApiError::busy("the write queue is full; retry later with the same ids")
                    }
                    mpsc::error::TrySendError::Closed(_) => {
                        ApiError::internal("the sequencer has stopped")
                    }
                })
            }
        }
    }

    /// Requests waiting in the queue.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Whether requests are waiting or entries are in flight: openraft is at work on this
    /// leader's writes (perhaps in a slow log append, during which it reports nothing).
    pub fn busy(&self) -> bool {
        self.depth() > 0 || self.inflight.available_permits() < self.inflight_max
    }
}

/// What the sequencer task owns.
struct Pipeline {
    raft: openraft::Raft<TypeConfig>,
    clock: Arc<dyn Clock>,
    state: Arc<dyn raft_store::StateBackend>,
    write_timeout: std::time::Duration,
    depth: Arc<AtomicU64>,
    entry_events_max: usize,
    inflight: Arc<Semaphore>,
    /// The one permit of a small entry in flight.
    small_inflight: Arc<Semaphore>,
}

/// Add to `group` what is waiting in the queue, within the entry's limits (`BATCH_REQUESTS_MAX`
/// requests, `entry_events_max` events); the first request that does not fit goes to `carry`.
/// Returns how many requests it took.
fn take_queued(
    rx: &mut mpsc::Receiver<Submission>,
    group: &mut Vec<Submission>,
    events: &mut usize,
    carry: &mut Option<Submission>,
    entry_events_max: usize,
) -> usize {
    let before = group.len();
    while group.len() < ledger::limits::BATCH_REQUESTS_MAX {
        match rx.try_recv() {
            Ok(s) if *events + s.op.len() <= entry_events_max => {
                *events += s.op.len();
                group.push(s);
            }
            Ok(s) => {
                *carry = Some(s);
                break;
            }
            Err(_) => break,
        }
    }
    group.len() - before
}

async fn run(p: Pipeline, mut rx: mpsc::Receiver<Submission>) {
    let Pipeline {
        raft,
        clock,
        state,
        write_timeout,
        depth,
        entry_events_max,
        inflight,
        small_inflight,
    } = p;
    let mut carry: Option<Submission> = None;
    let mut last_timestamp = 0u64;
    loop {
        let first = match carry.take() {
            Some(s) => s,
            None => match rx.recv().await {
                Some(s) => s,
                None => return,
            },
        };
        let mut events = first.op.len();
        let mut group = vec![first];
        take_queued(
            &mut rx,
            &mut group,
            &mut events,
            &mut carry,
            entry_events_max,
        );
        depth.fetch_sub(group.len() as u64, Ordering::Relaxed);
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            return;
        };
        // A small group waits for the small entry in flight, then takes what queued meanwhile
        // (within the same limits).
        let small_permit = if events < SMALL_ENTRY_EVENTS {
            let Ok(p) = small_inflight.clone().acquire_owned().await else {
                return;
            };
            if carry.is_none() {
                let taken = take_queued(
                    &mut rx,
                    &mut group,
                    &mut events,
                    &mut carry,
                    entry_events_max,
                );
                depth.fetch_sub(taken as u64, Ordering::Relaxed);
            }
            Some(p)
        } else {
            None
        };
        // Propose the leader's clock, but never at or below what this node proposed before or
        // what is already applied — so a new leader with a slow clock never goes backwards.
        // (Apply enforces `max(proposed, last + 1)` as well, so the log stays strictly increasing
        // even if a proposal races an entry that is not applied here yet.)
        let applied = state.ledger_meta().map(|m| m.last_timestamp).unwrap_or(0);
        last_timestamp = clock.now_ns().max(last_timestamp + 1).max(applied + 1);
        let (ops, replies): (Vec<Operation>, Vec<_>) =
            group.into_iter().map(|s| (s.op, s.reply)).unzip();
        let batch = Batch {
            timestamp: last_timestamp,
            operations: ops,
        };
        let proposed = tokio::time::Instant::now();
        match raft.client_write_ff(Command::Ledger(batch)).await {
            Ok(pending) => {
                tokio::spawn(async move {
                    // openraft may never resolve a responder whose entry vanished (e.g. purged
                    // behind an installed snapshot): never hold the in-flight permit forever.
                    let result = tokio::time::timeout(write_timeout, pending).await;
                    drop(permit);
                    drop(small_permit);
                    let Ok(result) = result else {
                        for reply in replies {
                            let _ = reply.send(Err(ApiError::write_timeout()));
                        }
                        return;
                    };
                    match result {
                        Ok(Ok(resp)) => {
                            crate::metrics::commit_latency(proposed.elapsed().as_secs_f64());
                            let log_index = resp.log_id.index;
                            let Response::Ledger(outcome) = resp.data else {
                                let err = ApiError::internal("a ledger entry got an admin reply");
                                for reply in replies {
                                    let _ = reply.send(Err(err.clone()));
                                }
                                return;
                            };
                            let mut outs = outcome.replies.into_iter();
                            for reply in replies {
                                let answer = match outs.next() {
                                    Some(r) => Ok(Receipt {
                                        reply: r,
                                        log_index,
                                        tree_size: outcome.tree_size,
                                        root: outcome.root,
                                    }),
                                    None => Err(ApiError::internal(
                                        "entry returned fewer replies than requests",
                                    )),
                                };
                                let _ = reply.send(answer);
                            }
                        }
                        Ok(Err(e)) => {
                            let err = write_error(&e);
                            for reply in replies {
                                let _ = reply.send(Err(err.clone()));
                            }
                        }
                        Err(_) => {
                            for reply in replies {
                                let _ = reply.send(Err(ApiError::no_leader()));
                            }
                        }
                    }
                });
            }
            Err(fatal) => {
                drop(permit);
                drop(small_permit);
                let err = ApiError::safe_mode(format!("raft stopped: {fatal}"));
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}

fn write_error(e: &ClientWriteError<NodeId, NodeInfo>) -> ApiError {
    match e {
        ClientWriteError::ForwardToLeader(_) => ApiError::no_leader(),
        ClientWriteError::ChangeMembershipError(e) => ApiError::internal(e.to_string()),
    }
}

/// Map a raft error of a client write to the taxonomy.
pub fn raft_write_error(e: &RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>) -> ApiError {
    match e {
        RaftError::APIError(api) => write_error(api),
        RaftError::Fatal(f) => ApiError::safe_mode(format!("raft stopped: {f}")),
    }
}
