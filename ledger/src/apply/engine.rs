//! The engine one entry runs on: the overlay of the entry's uncommitted writes, cluster time
//! handed out one timestamp per event, and the entry's leaves. Each event takes a [`Slot`] (its
//! timestamp and leaf index) when it is reached and fills its leaf once its chain resolves; what
//! it reaches before that is a [`Verdict`]. Every kind of applied transfer is recorded here the
//! same way: stored, and indexed under both accounts.
//!
//! This module never decides an event's result (`accounts`, `transfers` and `pending` do) and
//! never commits anything.

use crate::canonical::{expiry_leaf_data, LeafData};
use crate::merkle::Hash;
use crate::overlay::Overlay;
use crate::query::{balance_key, BalanceEntry};
use crate::state::{ReadError, StateRead};
use crate::types::{AccountFlags, AccountRecord, HistoryKey, Transfer, TransferRecord};

/// The state of one entry being applied.
pub(super) struct Engine<'a, S: StateRead> {
    pub(super) overlay: Overlay<'a, S>,
    /// Leaf hashes, and beside them their preimages: each hashed once, here.
    pub(super) leaves: Vec<Hash>,
    pub(super) leaf_data: Vec<LeafData>,
    pub(super) first_leaf: u64,
    pub(super) next_timestamp: u64,
}

/// The position (timestamp and leaf index) an event takes.
#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) timestamp: u64,
    pub(super) leaf: u64,
}

/// Result of one event before chain resolution: code, and the record to hash as its leaf.
pub(super) struct Verdict<R, E> {
    pub(super) result: R,
    /// The event as applied (on success) or as submitted and stamped (on failure).
    pub(super) leaf_event: E,
    /// For `exists`: the original position.
    pub(super) original: Option<Slot>,
}

impl<S: StateRead> Engine<'_, S> {
    pub(super) fn take_slot(&mut self) -> Slot {
        let slot = Slot {
            timestamp: self.next_timestamp,
            leaf: self.first_leaf + self.leaves.len() as u64,
        };
        self.next_timestamp = self.next_timestamp.saturating_add(1);
        // Reserve the leaf; it is filled when the event's chain resolves.
        self.leaves.push(Hash::default());
        self.leaf_data.push(expiry_leaf_data(0, 0));
        slot
    }

    pub(super) fn set_leaf(&mut self, slot: Slot, data: LeafData) {
        let at = (slot.leaf - self.first_leaf) as usize;
        self.leaves[at] = data.hash();
        self.leaf_data[at] = data;
    }

    /// Store the new balances of an event's two accounts, and keep them in the balance history
    /// of those created with the `history` flag.
    pub(super) fn put_balances(&mut self, dr: AccountRecord, cr: AccountRecord, slot: Slot) {
        for r in [dr, cr] {
            if r.account.flags.has(AccountFlags::HISTORY) {
                self.overlay.balance(
                    balance_key(r.account.id, slot.timestamp),
                    BalanceEntry::of(&r.account, slot.leaf),
                );
            }
            self.overlay.put_account(r);
        }
    }

    /// Store a new transfer and index it under both accounts.
    pub(super) fn record(&mut self, submitted: &Transfer, applied: Transfer, slot: Slot) {
        let mut stamped = *submitted;
        stamped.timestamp = slot.timestamp;
        let submitted = (stamped != applied).then(|| Box::new(stamped));
        for account_id in [applied.debit_account_id, applied.credit_account_id] {
            self.overlay.history(
                HistoryKey {
                    account_id,
                    timestamp: slot.timestamp,
                },
                applied.id,
            );
        }
        self.overlay.put_transfer(TransferRecord {
            transfer: applied,
            submitted,
            leaf: slot.leaf,
        });
    }
}

impl<R, E> Verdict<R, E> {
    pub(super) fn rejected(result: R, leaf_event: E) -> Self {
        Self {
            result,
            leaf_event,
            original: None,
        }
    }
    pub(super) fn accepted(result: R, leaf_event: E) -> Self {
        Self::rejected(result, leaf_event)
    }
}

/// Stored state that contradicts itself: apply stops (safe mode).
pub(super) fn corrupt(what: &str) -> ReadError {
    ReadError::Corruption {
        what: what.to_string(),
    }
}
