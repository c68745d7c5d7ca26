//! Property tests for the core (proptest; a failing case prints its seed and shrinks, and
//! `PROPTEST_CASES` / the persisted regression files replay it):
//! conservation after every apply, idempotency of replays, linked atomicity, determinism of
//! roots and state digests, and no panic for any input.

use ledger::{
    apply, codec, Account, AccountFlags as AF, Batch, CreateTransferResult as T, MemoryState,
    Operation, Reply, StateRead, Transfer, TransferFlags as TF,
};
use proptest::prelude::*;

const ACCOUNTS: u128 = 8;

fn accounts() -> Vec<Account> {
    (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1 + u32::from(id == ACCOUNTS),
            code: 1,
            flags: AF(match id % 3 {
                0 => AF::DEBITS_MUST_NOT_EXCEED_CREDITS,
                1 => 0,
                _ => AF::CREDITS_MUST_NOT_EXCEED_DEBITS,
            }),
            ..Default::default()
        })
        .collect()
}

fn amount() -> impl Strategy<Value = u128> {
    prop_oneof![
        6 => 0u128..50,
        1 => Just(u128::MAX),
        1 => (u128::MAX - 5)..=u128::MAX,
        1 => any::<u128>(),
    ]
}

fn flags() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => Just(0u16),
        2 => Just(TF::LINKED),
        2 => Just(TF::PENDING),
        2 => Just(TF::POST_PENDING_TRANSFER),
        1 => Just(TF::VOID_PENDING_TRANSFER),
        1 => Just(TF::BALANCING_DEBIT),
        1 => Just(TF::BALANCING_CREDIT),
        1 => Just(TF::PENDING | TF::CLOSING_DEBIT),
        1 => Just(TF::REVERSAL),
        1 => Just(TF::LINKED | TF::PENDING),
        1 => any::<u16>(),
    ]
}

prop_compose! {
    fn transfer()(
        id in 1u128..40,
        debit in 0u128..=ACCOUNTS,
        credit in 0u128..=ACCOUNTS,
        amount in amount(),
        pending_id in prop_oneof![3 => Just(0u128), 2 => 1u128..40],
        timeout in prop_oneof![3 => Just(0u32), 1 => 1u32..3],
        ledger in 0u32..3,
        code in 0u16..2,
        flags in flags(),
    ) -> Transfer {
        Transfer {
            id, debit_account_id: debit, credit_account_id: credit, amount, pending_id,
            timeout, ledger, code, flags: TF(flags), ..Default::default()
        }
    }
}

prop_compose! {
    /// A list of entries: (cluster timestamp step in ms, requests of transfers).
    fn history()(entries in prop::collection::vec(
        (0u64..1500, prop::collection::vec(prop::collection::vec(transfer(), 1..12), 1..3)),
        1..10,
    )) -> Vec<(u64, Vec<Vec<Transfer>>)> { entries }
}

fn funded() -> MemoryState {
    let mut s = MemoryState::new();
    let mut ops = vec![Operation::CreateAccounts(accounts())];
    // Fund the wallets from the unconstrained accounts so limits matter.
    let funding: Vec<Transfer> = (1..ACCOUNTS)
        .map(|id| Transfer {
            id: 1000 + id,
            debit_account_id: if id == 1 { 4 } else { 1 },
            credit_account_id: id,
            amount: 100,
            ledger: 1,
            code: 1,
            ..Default::default()
        })
        .collect();
    ops.push(Operation::CreateTransfers(funding));
    let (_, changes) = apply(
        &s,
        &Batch {
            timestamp: 1,
            operations: ops,
        },
    )
    .unwrap();
    s.commit(changes);
    s
}

/// The (start, end) index ranges of a request's linked chains (a lone event is a chain of one).
fn chains(request: &[Transfer]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in 0..request.len() {
        if !request[end].flags.has(TF::LINKED) || end + 1 == request.len() {
            out.push((start, end));
            start = end + 1;
        }
    }
    out
}

fn batch(now: u64, requests: &[Vec<Transfer>]) -> Batch {
    Batch {
        timestamp: now,
        operations: requests
            .iter()
            .cloned()
            .map(Operation::CreateTransfers)
            .collect(),
    }
}

fn transfer_results(replies: &[Reply]) -> Vec<Vec<T>> {
    replies
        .iter()
        .map(|r| match r {
            Reply::CreateTransfers(v) => v.iter().map(|e| e.result).collect(),
            Reply::CreateAccounts(_) => Vec::new(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn conservation_holds_after_every_apply(history in history()) {
        let mut state = funded();
        let mut now = 10u64;
        for (step, requests) in &history {
            now += step * 1_000_000;
            let (outcome, changes) = apply(&state, &batch(now, requests)).unwrap();
            state.commit(changes);
            prop_assert_eq!(outcome.tree_size, state.meta().unwrap().tree.size);
            let accounts: Vec<Account> = state.accounts().iter().map(|r| r.account).collect();
            prop_assert!(ledger::conservation::check(&accounts).is_ok());
        }
    }

    #[test]
    fn same_batches_give_same_roots_and_digests(history in history()) {
        let mut a = funded();
        let mut b = funded();
        let mut now = 10u64;
        for (step, requests) in &history {
            now += step * 1_000_000;
            let batch = batch(now, requests);
            // Round-trip through the log encoding, as a follower would receive it.
            let decoded = codec::decode_batch(&codec::encode(codec::Kind::Batch, &batch)).unwrap();
            let (oa, ca) = apply(&a, &batch).unwrap();
            let (ob, cb) = apply(&b, &decoded).unwrap();
            prop_assert_eq!(&oa, &ob);
            prop_assert_eq!(&ca, &cb);
            a.commit(ca);
            b.commit(cb);
            prop_assert_eq!(a.digest().unwrap(), b.digest().unwrap());
            // The stored frontier continues the tree exactly as all the leaves would.
            prop_assert_eq!(oa.root, ledger::merkle::root_of(a.leaves()));
        }
    }

    #[test]
    fn replaying_succeeded_events_changes_nothing(history in history()) {
        let mut state = funded();
        let mut now = 10u64;
        // The succeeded part of every request: whole chains that committed, in order.
        let mut replay: Vec<Vec<Transfer>> = Vec::new();
        for (step, requests) in &history {
            now += step * 1_000_000;
            let (outcome, changes) = apply(&state, &batch(now, requests)).unwrap();
            state.commit(changes);
            for (request, codes) in requests.iter().zip(transfer_results(&outcome.replies)) {
                let kept: Vec<Transfer> = chains(request)
                    .into_iter()
                    .filter(|(s, e)| codes[*s..=*e].iter().all(|c| *c == T::Ok))
                    .flat_map(|(s, e)| request[s..=e].to_vec())
                    .collect();
                if !kept.is_empty() {
                    replay.push(kept);
                }
            }
        }
        let accounts = state.accounts();
        let transfers = state.transfers();
        for requests in replay.chunks(8) {
            now += 1;
            let (outcome, changes) = apply(&state, &batch(now, requests)).unwrap();
            state.commit(changes);
            for codes in transfer_results(&outcome.replies) {
                prop_assert!(codes.iter().all(|c| *c == T::Exists), "{:?}", codes);
            }
        }
        prop_assert_eq!(state.accounts(), accounts);
        prop_assert_eq!(state.transfers(), transfers);
    }

    /// One id, one outcome: once an id's first event succeeded, no later event with the id is
    /// applied again (`exists*` or a validation refusal); once it failed on the state, every
    /// later event with the id fails too and nothing is ever stored under it.
    #[test]
    fn the_first_outcome_of_an_id_is_the_only_one_a_retry_can_see(history in history()) {
        let mut state = funded();
        let mut now = 10u64;
        // id -> whether its first event (not refused by validation) was applied (`true`) or
        // failed on the state and was recorded (`false`).
        let mut first: std::collections::BTreeMap<u128, bool> = std::collections::BTreeMap::new();
        // Skipped: events answered with their own validation refusal (decided by the event
        // alone). An invalid event in a chain that an earlier event already broke is answered
        // `linked_event_failed` instead, and that outcome is checked like any other.
        let validation = |t: &Transfer, code: T| ledger::validate::transfer(t).err() == Some(code);
        for (step, requests) in &history {
            now += step * 1_000_000;
            let (outcome, changes) = apply(&state, &batch(now, requests)).unwrap();
            state.commit(changes);
            // The record is read after the whole batch: an id sent more than once in it may
            // have been recorded by a later event than the one being judged.
            let mut in_batch: std::collections::BTreeMap<u128, usize> = Default::default();
            for t in requests.iter().flatten() {
                *in_batch.entry(t.id).or_default() += 1;
            }
            for (request, codes) in requests.iter().zip(transfer_results(&outcome.replies)) {
                for (t, code) in request.iter().zip(codes) {
                    if validation(t, code) {
                        continue;
                    }
                    match first.get(&t.id) {
                        None if code == T::Ok => {
                            first.insert(t.id, true);
                        }
                        None => {
                            let recorded = matches!(
                                state.status(t.id).unwrap(),
                                Some(ledger::TransferStatus::Failed(_))
                            );
                            let expected = code.keeps_id_failed()
                                || (code == T::LinkedEventFailed && recorded)
                                || code == T::IdAlreadyFailed;
                            if in_batch[&t.id] == 1 {
                                prop_assert_eq!(recorded, expected, "id {} failed {:?}", t.id, code);
                            } else if code.keeps_id_failed() {
                                prop_assert!(recorded, "id {} failed {:?}, not recorded", t.id, code);
                            }
                            if recorded {
                                first.insert(t.id, false);
                            }
                        }
                        Some(true) => prop_assert!(
                            code != T::Ok && code != T::IdAlreadyFailed,
                            "id {} applied, later {:?}", t.id, code
                        ),
                        Some(false) => prop_assert!(
                            !code.is_success(),
                            "id {} failed on the state, later {:?}", t.id, code
                        ),
                    }
                }
            }
        }
        for (id, applied) in &first {
            if !applied {
                prop_assert!(state.transfer(*id).unwrap().is_none(), "failed id {} stored", id);
            }
        }
    }

    #[test]
    fn linked_chains_are_atomic(history in history()) {
        let mut state = funded();
        let mut now = 10u64;
        for (step, requests) in &history {
            now += step * 1_000_000;
            let (outcome, changes) = apply(&state, &batch(now, requests)).unwrap();
            state.commit(changes);
            for (request, reply) in requests.iter().zip(&outcome.replies) {
                let Reply::CreateTransfers(results) = reply else { continue };
                let codes: Vec<T> = results.iter().map(|r| r.result).collect();
                for (start, end) in chains(request) {
                    let chain = &codes[start..=end];
                    let oks = chain.iter().filter(|c| **c == T::Ok).count();
                    prop_assert!(oks == 0 || oks == chain.len(), "chain {:?}", chain);
                    // A chain that failed left none of its events behind: whatever is stored
                    // under their ids (if anything) was written by another event (another leaf).
                    if oks == 0 {
                        for (t, r) in request[start..=end].iter().zip(&results[start..=end]) {
                            let stored = state.transfer(t.id).unwrap();
                            prop_assert!(
                                stored.is_none_or(|s| s.leaf != r.leaf),
                                "a failed chain wrote {} at leaf {}", t.id, r.leaf
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn apply_never_panics_on_any_transfer(
        events in prop::collection::vec(any::<(u128, u128, u128, u128, u128, u32, u32, u16, u16)>(), 1..20),
        now in any::<u64>(),
    ) {
        let state = funded();
        let transfers: Vec<Transfer> = events
            .into_iter()
            .map(|(id, d, c, amount, pending_id, timeout, ledger, code, flags)| Transfer {
                id: id % 64, debit_account_id: d % 10, credit_account_id: c % 10, amount,
                pending_id: pending_id % 64, timeout, ledger: ledger % 3, code, flags: TF(flags),
                ..Default::default()
            })
            .collect();
        let result = apply(&state, &batch(now, &[transfers]));
        prop_assert!(result.is_ok());
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = codec::decode_batch(&bytes);
        let _ = codec::decode_operation(&bytes);
        let _ = codec::operation_from_json(&bytes);
        let mut framed = vec![b'R', b'L', codec::CODEC_VERSION, codec::Kind::Batch as u8];
        framed.extend_from_slice(&bytes);
        let _ = codec::decode_batch(&framed);
    }
}
