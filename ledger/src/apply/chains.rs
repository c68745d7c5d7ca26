//! `linked` chains: consecutive events of one request flagged `linked` (up to and including the
//! first without the flag) succeed or fail together. A chain commits only if every event in it is
//! `ok` (or every one is `exists`, a retried chain); otherwise its writes are rolled back to a
//! savepoint and every other event in it reports `linked_event_failed`. A chain still open at
//! the end of the request fails with `linked_event_chain_open`.
//!
//! Generic over the event kind: accounts and transfers each supply their codes and their per-event
//! rule. This module never decides a single event's result.

use super::engine::{Engine, Slot, Verdict};
use crate::canonical::LeafData;
use crate::results::EventResult;
use crate::state::{ReadError, StateRead};

/// The result codes chain resolution hands out, for one event kind.
pub(super) struct ChainCodes<R> {
    pub(super) ok: R,
    pub(super) exists: R,
    pub(super) linked_failed: R,
    pub(super) chain_open: R,
    /// Results that keep the event's id failed: the event is handed to `remember` once its
    /// result is final (after its chain resolved, outside any rollback).
    pub(super) keeps_id_failed: fn(R) -> bool,
}

impl<S: StateRead> Engine<'_, S> {
    /// Run a request's events, resolving `linked` chains: a chain commits only if every event
    /// in it is `ok` (or every one is `exists`, a retried chain); otherwise it is rolled back and
    /// every other event in it reports `linked_event_failed`.
    pub(super) fn run_chains<E: Copy, R: Copy + PartialEq>(
        &mut self,
        events: &[E],
        linked: impl Fn(&E) -> bool,
        codes: ChainCodes<R>,
        mut one: impl FnMut(&mut Self, &E, Slot) -> Result<Verdict<R, E>, ReadError>,
        leaf: impl Fn(&E, R) -> LeafData,
        mut remember: impl FnMut(&mut Self, &E, R) -> Result<(), ReadError>,
    ) -> Result<Vec<EventResult<R>>, ReadError> {
        let mut out: Vec<EventResult<R>> = Vec::with_capacity(events.len());
        let mut i = 0;
        while i < events.len() {
            // The chain is events[i..=end]: up to the first event without `linked`.
            let mut end = i;
            while end < events.len() && linked(&events[end]) {
                end += 1;
            }
            let open = end == events.len();
            let end = end.min(events.len() - 1);
            if end == i && !open {
                // A lone event (the common case): no chain to undo, no bookkeeping.
                let slot = self.take_slot();
                let verdict = one(self, &events[i], slot)?;
                if (codes.keeps_id_failed)(verdict.result) {
                    remember(self, &events[i], verdict.result)?;
                }
                self.set_leaf(slot, leaf(&verdict.leaf_event, verdict.result));
                let position = verdict.original.unwrap_or(slot);
                out.push(EventResult {
                    result: verdict.result,
                    timestamp: position.timestamp,
                    leaf: position.leaf,
                });
                i += 1;
                continue;
            }
            let savepoint = self.overlay.savepoint();
            let mut verdicts: Vec<(Slot, Verdict<R, E>)> = Vec::with_capacity(end - i + 1);
            let mut failed_at: Option<usize> = None;
            let mut mode: Option<R> = None;
            for (k, event) in events[i..=end].iter().enumerate() {
                let slot = self.take_slot();
                if failed_at.is_some() {
                    verdicts.push((slot, Verdict::rejected(codes.linked_failed, *event)));
                    continue;
                }
                let verdict = if open && k == end - i {
                    Verdict::rejected(codes.chain_open, *event)
                } else {
                    one(self, event, slot)?
                };
                let accepted = if end == i {
                    true // a lone event: no chain to break
                } else {
                    let expected = *mode.get_or_insert(if verdict.result == codes.exists {
                        codes.exists
                    } else {
                        codes.ok
                    });
                    verdict.result == expected
                };
                if !accepted {
                    failed_at = Some(k);
                }
                verdicts.push((slot, verdict));
            }
            if let Some(failed) = failed_at {
                self.overlay.rollback(savepoint);
                // An `ok` that breaks a chain of `exists` is not the culprit (it was rolled back):
                // blame the first event, the `exists` that set the chain's expectation.
                let blame = if verdicts[failed].1.result == codes.ok {
                    0
                } else {
                    failed
                };
                for (k, (_, verdict)) in verdicts.iter_mut().enumerate() {
                    if k != blame {
                        verdict.result = codes.linked_failed;
                        verdict.original = None;
                    }
                }
                debug_assert!(verdicts.iter().all(|(_, v)| v.result != codes.ok));
                // A chain broken by a state-dependent failure keeps all its ids failed (after
                // the rollback, so the record stays).
                if (codes.keeps_id_failed)(verdicts[blame].1.result) {
                    for (k, event) in events[i..=end].iter().enumerate() {
                        remember(self, event, verdicts[k].1.result)?;
                    }
                }
            }
            for (slot, verdict) in verdicts {
                self.set_leaf(slot, leaf(&verdict.leaf_event, verdict.result));
                let position = verdict.original.unwrap_or(slot);
                out.push(EventResult {
                    result: verdict.result,
                    timestamp: position.timestamp,
                    leaf: position.leaf,
                });
            }
            i = end + 1;
        }
        Ok(out)
    }
}
