//! Property tests for the secondary indexes and balance history (`ledger::query`): every query
//! answers exactly what a brute-force filter over all accounts and transfers answers, in both
//! orders and across pages; balances as of any past point are the balances the account had then.

use ledger::query::{balance_as_of, balance_history, query, QUERY_FETCH_MAX, QUERY_LIMIT_MAX};
use ledger::{
    apply, Account, AccountFlags as AF, Batch, Filter, MemoryState, Operation, Order, Side,
    StateRead, Target, Transfer, TransferFlags as TF,
};
use proptest::prelude::*;

const ACCOUNTS: u128 = 10;

prop_compose! {
    fn account(id: u128)(
        ud128 in 0u128..3, ud64 in 0u64..3, ud32 in 0u32..3,
        ledger in 1u32..3, code in 1u16..3, history in any::<bool>(),
    ) -> Account {
        Account {
            id, user_data_128: ud128, user_data_64: ud64, user_data_32: ud32, ledger, code,
            flags: AF(if history { AF::HISTORY } else { 0 }),
            ..Default::default()
        }
    }
}

fn accounts() -> impl Strategy<Value = Vec<Account>> {
    (1..=ACCOUNTS).map(account).collect::<Vec<_>>()
}

prop_compose! {
    fn transfer()(
        id in 1u128..200, debit in 1u128..=ACCOUNTS, credit in 1u128..=ACCOUNTS,
        amount in 0u128..20, ud128 in 0u128..3, ud64 in 0u64..3, ud32 in 0u32..3,
        ledger in 1u32..3, code in 1u16..3,
        flags in prop_oneof![4 => Just(0u16), 1 => Just(TF::PENDING), 1 => Just(TF::LINKED)],
        timeout in prop_oneof![3 => Just(0u32), 1 => Just(1u32)],
    ) -> Transfer {
        Transfer {
            id, debit_account_id: debit, credit_account_id: credit, amount,
            user_data_128: ud128, user_data_64: ud64, user_data_32: ud32, ledger, code,
            flags: TF(flags), timeout: if flags == TF::PENDING { timeout } else { 0 },
            ..Default::default()
        }
    }
}

prop_compose! {
    fn filter()(
        ud128 in 0u128..3, ud64 in 0u64..3, ud32 in 0u32..3, ledger in 0u32..3, code in 0u16..3,
        lo in prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
        span in prop_oneof![3 => Just(u64::MAX), 1 => any::<u64>()],
        desc in any::<bool>(), limit in prop_oneof![1 => 1usize..4, 1 => Just(QUERY_LIMIT_MAX)],
    ) -> Filter {
        Filter {
            user_data_128: ud128, user_data_64: ud64, user_data_32: ud32, ledger, code,
            timestamp_min: lo, timestamp_max: lo.saturating_add(span),
            order: if desc { Order::Desc } else { Order::Asc }, limit,
        }
    }
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        1 => Just(Target::Accounts),
        1 => Just(Target::Transfers),
        2 => (1u128..=ACCOUNTS, 0u8..3).prop_map(|(account_id, s)| Target::AccountTransfers {
            account_id,
            side: [Side::Both, Side::Debits, Side::Credits][usize::from(s)],
        }),
    ]
}

/// Brute force: every record of `target` that `f` matches, in `f.order`, all of them.
fn expected(state: &MemoryState, target: Target, f: &Filter) -> Vec<(u64, u128)> {
    let mut all: Vec<(u64, u128)> = match target {
        Target::Accounts => state
            .accounts()
            .iter()
            .filter(|r| f.matches_account(&r.account))
            .map(|r| (r.account.timestamp, r.account.id))
            .collect(),
        _ => state
            .transfers()
            .iter()
            .filter(|r| f.matches_transfer(target, &r.transfer))
            .map(|r| (r.transfer.timestamp, r.transfer.id))
            .collect(),
    };
    all.sort_unstable();
    if f.order == Order::Desc {
        all.reverse();
    }
    all
}

/// Every page of a query, each continued strictly after the last result of the one before.
fn paged(state: &MemoryState, target: Target, f: &Filter) -> Vec<(u64, u128)> {
    let mut out = Vec::new();
    let mut page = *f;
    loop {
        let got = query(state, target, &page).expect("query");
        let Some(&(last, _)) = got.last() else {
            return out;
        };
        let full = got.len() == page.limit.min(QUERY_FETCH_MAX);
        out.extend(got);
        if !full {
            return out;
        }
        match page.order {
            Order::Asc => match last.checked_add(1) {
                Some(n) => page.timestamp_min = n,
                None => return out,
            },
            Order::Desc => match last.checked_sub(1) {
                Some(p) => page.timestamp_max = p,
                None => return out,
            },
        }
    }
}

/// Apply the accounts, then the transfer requests one entry each, `step` ns apart; record each
/// history account's balances after every entry, at that entry's last timestamp.
fn run(
    accounts: &[Account],
    requests: &[Vec<Transfer>],
    step: u64,
) -> (MemoryState, Vec<(u64, Vec<Account>)>) {
    let mut state = MemoryState::new();
    let mut seen = Vec::new();
    let mut now = 1_000;
    let mut entries = vec![Operation::CreateAccounts(accounts.to_vec())];
    entries.extend(requests.iter().cloned().map(Operation::CreateTransfers));
    for op in entries {
        now += step;
        let batch = Batch {
            timestamp: now,
            operations: vec![op],
        };
        let (_, changes) = apply(&state, &batch).expect("apply");
        state.commit(changes);
        let at = state.meta().expect("meta").last_timestamp;
        let kept: Vec<Account> = state
            .accounts()
            .into_iter()
            .map(|r| r.account)
            .filter(|a| a.flags.has(AF::HISTORY))
            .collect();
        seen.push((at, kept));
    }
    (state, seen)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_query_answers_what_a_brute_force_filter_answers(
        accounts in accounts(),
        requests in prop::collection::vec(prop::collection::vec(transfer(), 1..20), 1..8),
        step in prop_oneof![1 => Just(1u64), 1 => Just(2_000_000_000u64)],
        queries in prop::collection::vec((target(), filter()), 1..24),
    ) {
        let (state, _) = run(&accounts, &requests, step);
        for (target, f) in queries {
            let want = expected(&state, target, &f);
            let one = query(&state, target, &f).expect("query");
            let n = f.limit.min(QUERY_FETCH_MAX).min(want.len());
            prop_assert_eq!(&one[..], &want[..n], "{:?} {:?}", target, f);
            prop_assert_eq!(paged(&state, target, &f), want, "paged {:?} {:?}", target, f);
        }
    }

    #[test]
    fn balances_as_of_any_past_point_are_the_balances_then(
        accounts in accounts(),
        requests in prop::collection::vec(prop::collection::vec(transfer(), 1..20), 1..8),
        step in prop_oneof![1 => Just(1u64), 1 => Just(2_000_000_000u64)],
    ) {
        let (state, seen) = run(&accounts, &requests, step);
        for (at, kept) in &seen {
            for a in kept {
                let (ts, e) = balance_as_of(&state, a.id, *at)
                    .expect("read")
                    .expect("a history account has an entry from its creation on");
                prop_assert!(ts <= *at);
                prop_assert_eq!(
                    (e.debits_pending, e.debits_posted, e.credits_pending, e.credits_posted),
                    (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted),
                    "account {} as of {}", a.id, at
                );
                // The entry names the leaf of the event that set these balances.
                let leaf = state.leaf_data(e.leaf).expect("leaf exists");
                let event_ts = match ledger::decode_leaf(leaf.as_bytes()).expect("decodes") {
                    ledger::LeafEvent::Account { account, .. } => account.timestamp,
                    ledger::LeafEvent::Transfer { transfer, .. } => transfer.timestamp,
                    ledger::LeafEvent::Expiry { timestamp, .. } => timestamp,
                };
                prop_assert_eq!(event_ts, ts);
            }
        }
        // Before creation there is nothing; accounts without the flag keep nothing.
        for a in &accounts {
            let created = state.account(a.id).expect("read").expect("created").account.timestamp;
            prop_assert_eq!(balance_as_of(&state, a.id, created - 1).expect("read"), None);
            let all = balance_history(&state, a.id, 0, u64::MAX, Order::Asc, QUERY_LIMIT_MAX)
                .expect("read");
            if a.flags.has(AF::HISTORY) {
                prop_assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
                let mut desc = balance_history(&state, a.id, 0, u64::MAX, Order::Desc, QUERY_LIMIT_MAX)
                    .expect("read");
                desc.reverse();
                prop_assert_eq!(desc, all);
            } else {
                prop_assert!(all.is_empty());
            }
        }
    }
}
