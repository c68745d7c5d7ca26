//! Prevalidation on the receiving node: the static rules of `ledger::validate` run here, so a
//! rejected event never reaches the leader. A `linked` chain containing a rejected event is
//! rejected whole (the event with its own code, the rest `linked_event_failed`); the remaining
//! events go to the leader as one request, and the results are merged back in order.

use crate::error::ApiError;
use ledger::{
    AccountFlags, CreateAccountResult, CreateTransferResult, EventResult, Operation, Reply,
    TransferFlags,
};

/// A request split into what was decided here and what goes to the leader.
pub struct Split {
    /// Per original event: `Some(code)` if rejected here.
    pub local: Vec<Option<&'static str>>,
    /// The events to sequence, if any.
    pub forward: Option<Operation>,
}

/// One event's final answer: code and (timestamp, leaf) when it was sequenced.
pub struct MergedEvent {
    /// Result code.
    pub result: &'static str,
    /// Cluster timestamp and Merkle leaf, for sequenced events.
    pub position: Option<(u64, u64)>,
}

/// Results in request order.
pub type Merged = Vec<MergedEvent>;

/// Chains of a request as (start, end) inclusive ranges.
fn chains(linked: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, l) in linked.iter().enumerate() {
        if !l || i + 1 == linked.len() {
            out.push((start, i));
            start = i + 1;
        }
    }
    out
}

fn split_events<E: Clone>(
    events: &[E],
    linked: impl Fn(&E) -> bool,
    check: impl Fn(&E) -> Option<&'static str>,
    linked_failed: &'static str,
) -> (Vec<Option<&'static str>>, Vec<E>) {
    let flags: Vec<bool> = events.iter().map(&linked).collect();
    let mut local = vec![None; events.len()];
    let mut forward = Vec::with_capacity(events.len());
    for (start, end) in chains(&flags) {
        let verdicts: Vec<Option<&'static str>> = events[start..=end].iter().map(&check).collect();
        if let Some(bad) = verdicts.iter().position(Option::is_some) {
            for (k, slot) in local[start..=end].iter_mut().enumerate() {
                *slot = if k == bad {
                    verdicts[k]
                } else {
                    Some(linked_failed)
                };
            }
        } else {
            forward.extend_from_slice(&events[start..=end]);
        }
    }
    (local, forward)
}

/// Split a decoded request.
pub fn split(op: Operation) -> Split {
    let (local, forward) = match &op {
        Operation::CreateAccounts(a) => {
            let (local, fwd) = split_events(
                a,
                |x| x.flags.has(AccountFlags::LINKED),
                |x| {
                    ledger::validate::account(x)
                        .err()
                        .map(CreateAccountResult::as_str)
                },
                CreateAccountResult::LinkedEventFailed.as_str(),
            );
            (
                local,
                (!fwd.is_empty()).then_some(Operation::CreateAccounts(fwd)),
            )
        }
        Operation::CreateTransfers(t) => {
            let (local, fwd) = split_events(
                t,
                |x| x.flags.has(TransferFlags::LINKED),
                |x| {
                    ledger::validate::transfer(x)
                        .err()
                        .map(CreateTransferResult::as_str)
                },
                CreateTransferResult::LinkedEventFailed.as_str(),
            );
            (
                local,
                (!fwd.is_empty()).then_some(Operation::CreateTransfers(fwd)),
            )
        }
    };
    Split { local, forward }
}

fn positions<R: Copy>(results: &[EventResult<R>], name: fn(R) -> &'static str) -> Vec<MergedEvent> {
    results
        .iter()
        .map(|r| MergedEvent {
            result: name(r.result),
            position: Some((r.timestamp, r.leaf)),
        })
        .collect()
}

/// Merge the leader's reply back into request order.
pub fn merge(split: &Split, reply: Option<&Reply>) -> Result<Merged, ApiError> {
    let sequenced = match reply {
        None => Vec::new(),
        Some(Reply::CreateAccounts(r)) => positions(r, CreateAccountResult::as_str),
        Some(Reply::CreateTransfers(r)) => positions(r, CreateTransferResult::as_str),
    };
    let expected = split.local.iter().filter(|l| l.is_none()).count();
    if sequenced.len() != expected {
        return Err(ApiError::internal(format!(
            "the leader answered {} results for {expected} events",
            sequenced.len()
        )));
    }
    let mut sequenced = sequenced.into_iter();
    Ok(split
        .local
        .iter()
        .map(|l| match l {
            Some(code) => MergedEvent {
                result: code,
                position: None,
            },
            None => sequenced.next().unwrap_or(MergedEvent {
                result: "internal",
                position: None,
            }),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::Transfer;

    fn t(id: u128, linked: bool, amount: u128) -> Transfer {
        Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount,
            ledger: 1,
            code: 1,
            flags: TransferFlags(if linked { TransferFlags::LINKED } else { 0 }),
            ..Default::default()
        }
    }

    #[test]
    fn a_chain_with_a_bad_event_never_leaves_the_node() {
        let op = Operation::CreateTransfers(vec![
            t(1, false, 5),
            t(2, true, 5),
            t(3, false, 0),
            t(4, false, 5),
        ]);
        let s = split(op);
        assert_eq!(
            s.local,
            vec![
                None,
                Some("linked_event_failed"),
                Some("amount_must_not_be_zero"),
                None
            ]
        );
        match &s.forward {
            Some(Operation::CreateTransfers(v)) => {
                assert_eq!(v.iter().map(|x| x.id).collect::<Vec<_>>(), vec![1, 4])
            }
            other => panic!("{other:?}"),
        }
        let all_bad = split(Operation::CreateTransfers(vec![t(0, false, 5)]));
        assert!(all_bad.forward.is_none());
        assert!(merge(&all_bad, None).unwrap()[0].position.is_none());
    }
}
