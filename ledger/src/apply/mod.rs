//! `apply`: one sequenced [`Batch`] and the current state in, per-event results and the entry's
//! [`Changes`] out. A plain deterministic function: no clock, no randomness, no I/O beyond the
//! [`StateRead`] it is given. The caller commits the changes atomically.
//!
//! This file runs an entry: cluster time for the entry, expiry first, then each operation, then
//! the tree. The rules live in the parts, each readable alone and each depending only on those
//! listed before it:
//!
//! - `engine`: the per-entry engine — overlay, cluster time, leaf slots — and an event's verdict.
//! - `chains`: `linked` chains, all or nothing over consecutive events of one request.
//! - `accounts`: `create_accounts`.
//! - `pending`: the second phase of pending transfers: post, void and expiry.
//! - `transfers`: `create_transfers` — single-phase and pending transfers, reversals.

mod accounts;
mod chains;
mod engine;
mod pending;
mod transfers;

use crate::batch::{Batch, Operation, Outcome, Reply};
use crate::overlay::Overlay;
use crate::state::{Changes, ReadError, StateRead};
use engine::Engine;

/// The largest proposed timestamp apply accepts as is (larger proposals are lowered to it).
pub const TIMESTAMP_PROPOSAL_MAX: u64 = u64::MAX - (1 << 40);

/// Apply one entry. Errors only when the state cannot be read (or is found inconsistent); then
/// nothing may be committed and the node must enter safe mode.
pub fn apply<S: StateRead>(state: &S, batch: &Batch) -> Result<(Outcome, Changes), ReadError> {
    let mut meta = state.meta()?;
    let first_leaf = meta.tree.size;
    // Strictly increasing cluster time, whatever the leader proposed. Proposals are capped so
    // that 2^40 events of headroom remain before u64 cluster time could saturate.
    let base = batch
        .timestamp
        .min(TIMESTAMP_PROPOSAL_MAX)
        .max(meta.last_timestamp.saturating_add(1));
    let events: usize = batch.operations.iter().map(Operation::len).sum();
    let mut engine = Engine {
        overlay: Overlay::new(state, events),
        leaves: Vec::with_capacity(events),
        leaf_data: Vec::with_capacity(events),
        first_leaf,
        next_timestamp: base,
    };

    let expired = engine.expire_pending(base)?;
    let mut replies = Vec::with_capacity(batch.operations.len());
    for op in &batch.operations {
        replies.push(match op {
            Operation::CreateAccounts(events) => Reply::CreateAccounts(engine.accounts(events)?),
            Operation::CreateTransfers(events) => Reply::CreateTransfers(engine.transfers(events)?),
        });
    }

    let mut nodes = Vec::with_capacity(engine.leaves.len());
    for leaf in &engine.leaves {
        meta.tree.push_recording(*leaf, &mut nodes);
    }
    if !engine.leaves.is_empty() {
        meta.last_timestamp = engine.next_timestamp - 1;
    }
    meta.root = meta.tree.root();
    debug_assert!(meta.tree.is_consistent());
    let outcome = Outcome {
        replies,
        expired,
        tree_size: meta.tree.size,
        root: meta.root,
        last_timestamp: meta.last_timestamp,
    };
    let Engine {
        overlay,
        leaves,
        leaf_data,
        ..
    } = engine;
    let changes = overlay.into_changes(base, leaves, leaf_data, first_leaf, nodes, meta);
    Ok((outcome, changes))
}
