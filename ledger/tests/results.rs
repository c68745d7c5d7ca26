//! Table-driven tests: at least one case per result code, plus the lifecycle scenarios (two-phase,
//! expiry, closing, reversal, linked chains, idempotency) and bad-input handling.

use ledger::codec::{self, CodecError, Kind};
use ledger::{
    apply, Account, AccountFlags as AF, Batch, CreateAccountResult as A, CreateTransferResult as T,
    EventResult, MemoryState, Operation, Reply, StateRead, Transfer, TransferFlags as TF,
    TransferStatus,
};

const HALF: u128 = 1 << 127;

fn acct(id: u128, ledger: u32, flags: u16) -> Account {
    Account {
        id,
        ledger,
        code: 1,
        flags: AF(flags),
        ..Default::default()
    }
}

fn tr(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        ..Default::default()
    }
}

fn with_flags(mut t: Transfer, flags: u16) -> Transfer {
    t.flags = TF(flags);
    t
}

fn refer(id: u128, flags: u16, pending_id: u128) -> Transfer {
    Transfer {
        id,
        pending_id,
        flags: TF(flags),
        ..Default::default()
    }
}

/// Apply one batch and commit it; return the replies.
fn run(state: &mut MemoryState, timestamp: u64, operations: Vec<Operation>) -> Vec<Reply> {
    let (outcome, changes) = apply(
        state,
        &Batch {
            timestamp,
            operations,
        },
    )
    .expect("apply");
    state.commit(changes);
    assert!(ledger::conservation::check(state.accounts().iter().map(|r| &r.account)).is_ok());
    outcome.replies
}

fn transfers(
    state: &mut MemoryState,
    timestamp: u64,
    events: Vec<Transfer>,
) -> Vec<EventResult<T>> {
    match run(state, timestamp, vec![Operation::CreateTransfers(events)]).remove(0) {
        Reply::CreateTransfers(r) => r,
        other => panic!("unexpected reply {other:?}"),
    }
}

fn codes(results: &[EventResult<T>]) -> Vec<T> {
    results.iter().map(|r| r.result).collect()
}

fn accounts(state: &mut MemoryState, events: Vec<Account>) -> Vec<A> {
    match run(state, 1, vec![Operation::CreateAccounts(events)]).remove(0) {
        Reply::CreateAccounts(r) => r.iter().map(|r| r.result).collect(),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Accounts 1..=12 and a few transfers every case starts from:
/// 1 issuance (no limits), 2 wallet (debits ≤ credits) funded with 1000, 3 (credits ≤ debits),
/// 4 on ledger 2, 5 created closed, 7/8 posted to u128::MAX, 9/10 pending u128::MAX,
/// 11/12 posted 2^127. Transfers: 100 posted, 101 pending 100, 102 pending with timeout 1s,
/// 103 pending then posted, 104 pending then voided, 105 posted then reversed by 106.
fn setup() -> MemoryState {
    let mut s = MemoryState::new();
    let mut accs: Vec<Account> = (1..=12).map(|id| acct(id, 1, 0)).collect();
    accs[1].flags = AF(AF::DEBITS_MUST_NOT_EXCEED_CREDITS);
    accs[2].flags = AF(AF::CREDITS_MUST_NOT_EXCEED_DEBITS);
    accs[3].ledger = 2;
    accs[4].flags = AF(AF::CLOSED);
    assert!(accounts(&mut s, accs).iter().all(|r| *r == A::Ok));
    let setup = vec![
        tr(100, 1, 2, 1000),
        with_flags(tr(101, 1, 2, 100), TF::PENDING),
        Transfer {
            timeout: 1,
            ..with_flags(tr(102, 1, 6, 7), TF::PENDING)
        },
        with_flags(tr(103, 1, 6, 5), TF::PENDING),
        refer(1030, TF::POST_PENDING_TRANSFER, 103),
        with_flags(tr(104, 1, 6, 5), TF::PENDING),
        refer(1040, TF::VOID_PENDING_TRANSFER, 104),
        tr(105, 1, 6, 9),
        refer(106, TF::REVERSAL, 105),
        tr(110, 7, 8, u128::MAX),
        with_flags(tr(111, 9, 10, u128::MAX), TF::PENDING),
        tr(112, 11, 12, HALF),
    ];
    let results = transfers(&mut s, 2, setup);
    assert!(results.iter().all(|r| r.result == T::Ok), "{results:?}");
    s
}

#[test]
fn every_transfer_result_code_has_a_case() {
    let base = tr(200, 1, 6, 10);
    let stamped = Transfer {
        timestamp: 5,
        ..base
    };
    let cases: Vec<(&str, u64, Transfer, T)> = vec![
        ("ok", 10, base, T::Ok),
        ("timestamp", 10, stamped, T::TimestampMustBeZero),
        (
            "reserved flag",
            10,
            with_flags(base, 1 << 15),
            T::ReservedFlag,
        ),
        (
            "id zero",
            10,
            Transfer { id: 0, ..base },
            T::IdMustNotBeZero,
        ),
        (
            "id max",
            10,
            Transfer {
                id: u128::MAX,
                ..base
            },
            T::IdMustNotBeIntMax,
        ),
        (
            "pending+post",
            10,
            with_flags(base, TF::PENDING | TF::POST_PENDING_TRANSFER),
            T::FlagsAreMutuallyExclusive,
        ),
        (
            "void+balancing",
            10,
            refer(200, TF::VOID_PENDING_TRANSFER | TF::BALANCING_DEBIT, 101),
            T::FlagsAreMutuallyExclusive,
        ),
        (
            "debit zero",
            10,
            Transfer {
                debit_account_id: 0,
                ..base
            },
            T::DebitAccountIdMustNotBeZero,
        ),
        (
            "debit max",
            10,
            Transfer {
                debit_account_id: u128::MAX,
                ..base
            },
            T::DebitAccountIdMustNotBeIntMax,
        ),
        (
            "credit zero",
            10,
            Transfer {
                credit_account_id: 0,
                ..base
            },
            T::CreditAccountIdMustNotBeZero,
        ),
        (
            "credit max",
            10,
            Transfer {
                credit_account_id: u128::MAX,
                ..base
            },
            T::CreditAccountIdMustNotBeIntMax,
        ),
        (
            "same accounts",
            10,
            tr(200, 1, 1, 10),
            T::AccountsMustBeDifferent,
        ),
        (
            "pending id on plain",
            10,
            Transfer {
                pending_id: 101,
                ..base
            },
            T::PendingIdMustBeZero,
        ),
        (
            "post without pending id",
            10,
            refer(200, TF::POST_PENDING_TRANSFER, 0),
            T::PendingIdMustNotBeZero,
        ),
        (
            "post pending id max",
            10,
            refer(200, TF::POST_PENDING_TRANSFER, u128::MAX),
            T::PendingIdMustNotBeIntMax,
        ),
        (
            "post itself",
            10,
            refer(200, TF::POST_PENDING_TRANSFER, 200),
            T::PendingIdMustBeDifferent,
        ),
        (
            "timeout on plain",
            10,
            Transfer { timeout: 5, ..base },
            T::TimeoutReservedForPendingTransfer,
        ),
        (
            "closing not pending",
            10,
            with_flags(base, TF::CLOSING_DEBIT),
            T::ClosingTransferMustBePending,
        ),
        (
            "amount zero",
            10,
            Transfer { amount: 0, ..base },
            T::AmountMustNotBeZero,
        ),
        (
            "ledger zero",
            10,
            Transfer { ledger: 0, ..base },
            T::LedgerMustNotBeZero,
        ),
        (
            "code zero",
            10,
            Transfer { code: 0, ..base },
            T::CodeMustNotBeZero,
        ),
        (
            "no debit account",
            10,
            tr(200, 99, 6, 1),
            T::DebitAccountNotFound,
        ),
        (
            "no credit account",
            10,
            tr(200, 1, 99, 1),
            T::CreditAccountNotFound,
        ),
        (
            "ledgers differ",
            10,
            tr(200, 1, 4, 1),
            T::AccountsMustHaveTheSameLedger,
        ),
        (
            "transfer ledger",
            10,
            Transfer { ledger: 2, ..base },
            T::TransferMustHaveTheSameLedgerAsAccounts,
        ),
        (
            "post missing",
            10,
            refer(200, TF::POST_PENDING_TRANSFER, 999),
            T::PendingTransferNotFound,
        ),
        (
            "post not pending",
            10,
            refer(200, TF::POST_PENDING_TRANSFER, 100),
            T::PendingTransferNotPending,
        ),
        (
            "post other debit",
            10,
            Transfer {
                debit_account_id: 3,
                ..refer(200, TF::POST_PENDING_TRANSFER, 101)
            },
            T::PendingTransferHasDifferentDebitAccountId,
        ),
        (
            "post other credit",
            10,
            Transfer {
                credit_account_id: 3,
                ..refer(200, TF::POST_PENDING_TRANSFER, 101)
            },
            T::PendingTransferHasDifferentCreditAccountId,
        ),
        (
            "post other ledger",
            10,
            Transfer {
                ledger: 2,
                ..refer(200, TF::POST_PENDING_TRANSFER, 101)
            },
            T::PendingTransferHasDifferentLedger,
        ),
        (
            "post other code",
            10,
            Transfer {
                code: 9,
                ..refer(200, TF::POST_PENDING_TRANSFER, 101)
            },
            T::PendingTransferHasDifferentCode,
        ),
        (
            "post too much",
            10,
            Transfer {
                amount: 101,
                ..refer(200, TF::POST_PENDING_TRANSFER, 101)
            },
            T::ExceedsPendingTransferAmount,
        ),
        (
            "void other amount",
            10,
            Transfer {
                amount: 5,
                ..refer(200, TF::VOID_PENDING_TRANSFER, 101)
            },
            T::PendingTransferHasDifferentAmount,
        ),
        (
            "post posted",
            10,
            refer(200, TF::POST_PENDING_TRANSFER, 103),
            T::PendingTransferAlreadyPosted,
        ),
        (
            "void voided",
            10,
            refer(200, TF::VOID_PENDING_TRANSFER, 104),
            T::PendingTransferAlreadyVoided,
        ),
        (
            "post expired",
            5_000_000_000,
            refer(200, TF::POST_PENDING_TRANSFER, 102),
            T::PendingTransferExpired,
        ),
        (
            "exists flags",
            10,
            with_flags(tr(100, 1, 2, 1000), TF::PENDING),
            T::ExistsWithDifferentFlags,
        ),
        (
            "exists debit",
            10,
            tr(100, 3, 2, 1000),
            T::ExistsWithDifferentDebitAccountId,
        ),
        (
            "exists credit",
            10,
            tr(100, 1, 3, 1000),
            T::ExistsWithDifferentCreditAccountId,
        ),
        (
            "exists amount",
            10,
            tr(100, 1, 2, 999),
            T::ExistsWithDifferentAmount,
        ),
        (
            "exists pending id",
            10,
            refer(1030, TF::POST_PENDING_TRANSFER, 104),
            T::ExistsWithDifferentPendingId,
        ),
        (
            "exists ud128",
            10,
            Transfer {
                user_data_128: 1,
                ..tr(100, 1, 2, 1000)
            },
            T::ExistsWithDifferentUserData128,
        ),
        (
            "exists ud64",
            10,
            Transfer {
                user_data_64: 1,
                ..tr(100, 1, 2, 1000)
            },
            T::ExistsWithDifferentUserData64,
        ),
        (
            "exists ud32",
            10,
            Transfer {
                user_data_32: 1,
                ..tr(100, 1, 2, 1000)
            },
            T::ExistsWithDifferentUserData32,
        ),
        (
            "exists timeout",
            10,
            Transfer {
                timeout: 2,
                ..with_flags(tr(101, 1, 2, 100), TF::PENDING)
            },
            T::ExistsWithDifferentTimeout,
        ),
        (
            "exists ledger",
            10,
            Transfer {
                ledger: 2,
                ..tr(100, 1, 2, 1000)
            },
            T::ExistsWithDifferentLedger,
        ),
        (
            "exists code",
            10,
            Transfer {
                code: 2,
                ..tr(100, 1, 2, 1000)
            },
            T::ExistsWithDifferentCode,
        ),
        ("exists", 10, tr(100, 1, 2, 1000), T::Exists),
        (
            "exists post as sent",
            10,
            refer(1030, TF::POST_PENDING_TRANSFER, 103),
            T::Exists,
        ),
        (
            "overflow debits pending",
            10,
            with_flags(tr(200, 9, 1, 1), TF::PENDING),
            T::OverflowsDebitsPending,
        ),
        (
            "overflow credits pending",
            10,
            with_flags(tr(200, 1, 10, 1), TF::PENDING),
            T::OverflowsCreditsPending,
        ),
        (
            "overflow debits posted",
            10,
            tr(200, 7, 1, 1),
            T::OverflowsDebitsPosted,
        ),
        (
            "overflow credits posted",
            10,
            tr(200, 1, 8, 1),
            T::OverflowsCreditsPosted,
        ),
        (
            "overflow debits",
            10,
            with_flags(tr(200, 11, 1, HALF), TF::PENDING),
            T::OverflowsDebits,
        ),
        (
            "overflow credits",
            10,
            with_flags(tr(200, 1, 12, HALF), TF::PENDING),
            T::OverflowsCredits,
        ),
        (
            "overflow timeout",
            u64::MAX - 10,
            Transfer {
                timeout: u32::MAX,
                ..with_flags(base, TF::PENDING)
            },
            T::OverflowsTimeout,
        ),
        (
            "exceeds credits",
            10,
            tr(200, 2, 1, 1001),
            T::ExceedsCredits,
        ),
        ("exceeds debits", 10, tr(200, 1, 3, 1), T::ExceedsDebits),
        (
            "debit closed",
            10,
            tr(200, 5, 1, 1),
            T::DebitAccountAlreadyClosed,
        ),
        (
            "credit closed",
            10,
            tr(200, 1, 5, 1),
            T::CreditAccountAlreadyClosed,
        ),
        (
            "reverse missing",
            10,
            refer(200, TF::REVERSAL, 999),
            T::ReversalOriginalNotFound,
        ),
        (
            "reverse pending",
            10,
            refer(200, TF::REVERSAL, 101),
            T::ReversalOriginalNotPosted,
        ),
        (
            "reverse twice",
            10,
            refer(200, TF::REVERSAL, 105),
            T::ReversalOriginalAlreadyReversed,
        ),
        (
            "reverse reversal",
            10,
            refer(200, TF::REVERSAL, 106),
            T::ReversalOfReversal,
        ),
        (
            "reverse other accounts",
            10,
            Transfer {
                debit_account_id: 1,
                ..refer(200, TF::REVERSAL, 100)
            },
            T::ReversalHasDifferentAccounts,
        ),
        (
            "reverse other amount",
            10,
            Transfer {
                amount: 1,
                ..refer(200, TF::REVERSAL, 100)
            },
            T::ReversalHasDifferentAmount,
        ),
        (
            "reverse other ledger",
            10,
            Transfer {
                ledger: 2,
                ..refer(200, TF::REVERSAL, 100)
            },
            T::ReversalHasDifferentLedger,
        ),
    ];
    // Chain tests and `a_failed_id_stays_failed` below.
    let mut covered: Vec<T> = vec![
        T::LinkedEventFailed,
        T::LinkedEventChainOpen,
        T::IdAlreadyFailed,
    ];
    for (name, timestamp, transfer, expected) in cases {
        let mut state = setup();
        let before = state.digest().unwrap();
        let accounts_before = state.accounts();
        let results = transfers(&mut state, timestamp, vec![transfer]);
        assert_eq!(results[0].result, expected, "case {name:?}");
        // Cases run past transfer 102's one-second deadline see the expiry sweep move value.
        if !expected.is_success() && timestamp < 1_000_000_000 {
            assert_eq!(
                state.accounts(),
                accounts_before,
                "case {name:?} changed balances"
            );
        }
        assert_ne!(
            state.digest().unwrap(),
            before,
            "every event is a leaf, even a rejected one"
        );
        covered.push(expected);
    }
    let missing: Vec<&T> = T::ALL.iter().filter(|c| !covered.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "result codes without a case: {missing:?}"
    );
}

#[test]
fn every_account_result_code_has_a_case() {
    let base = acct(50, 1, 0);
    let cases: Vec<(&str, Account, A)> = vec![
        ("ok", base, A::Ok),
        (
            "timestamp",
            Account {
                timestamp: 1,
                ..base
            },
            A::TimestampMustBeZero,
        ),
        (
            "reserved flag",
            Account {
                flags: AF(1 << 9),
                ..base
            },
            A::ReservedFlag,
        ),
        ("id zero", Account { id: 0, ..base }, A::IdMustNotBeZero),
        (
            "id max",
            Account {
                id: u128::MAX,
                ..base
            },
            A::IdMustNotBeIntMax,
        ),
        (
            "both limits",
            acct(
                50,
                1,
                AF::DEBITS_MUST_NOT_EXCEED_CREDITS | AF::CREDITS_MUST_NOT_EXCEED_DEBITS,
            ),
            A::FlagsAreMutuallyExclusive,
        ),
        (
            "debits pending",
            Account {
                debits_pending: 1,
                ..base
            },
            A::DebitsPendingMustBeZero,
        ),
        (
            "debits posted",
            Account {
                debits_posted: 1,
                ..base
            },
            A::DebitsPostedMustBeZero,
        ),
        (
            "credits pending",
            Account {
                credits_pending: 1,
                ..base
            },
            A::CreditsPendingMustBeZero,
        ),
        (
            "credits posted",
            Account {
                credits_posted: 1,
                ..base
            },
            A::CreditsPostedMustBeZero,
        ),
        (
            "ledger zero",
            Account { ledger: 0, ..base },
            A::LedgerMustNotBeZero,
        ),
        (
            "code zero",
            Account { code: 0, ..base },
            A::CodeMustNotBeZero,
        ),
        ("exists flags", acct(2, 1, 0), A::ExistsWithDifferentFlags),
        (
            "exists ud128",
            Account {
                user_data_128: 1,
                ..acct(1, 1, 0)
            },
            A::ExistsWithDifferentUserData128,
        ),
        (
            "exists ud64",
            Account {
                user_data_64: 1,
                ..acct(1, 1, 0)
            },
            A::ExistsWithDifferentUserData64,
        ),
        (
            "exists ud32",
            Account {
                user_data_32: 1,
                ..acct(1, 1, 0)
            },
            A::ExistsWithDifferentUserData32,
        ),
        ("exists ledger", acct(1, 2, 0), A::ExistsWithDifferentLedger),
        (
            "exists code",
            Account {
                code: 2,
                ..acct(1, 1, 0)
            },
            A::ExistsWithDifferentCode,
        ),
        ("exists", acct(1, 1, 0), A::Exists),
    ];
    let mut covered = vec![A::LinkedEventFailed, A::LinkedEventChainOpen];
    for (name, account, expected) in cases {
        let mut state = setup();
        assert_eq!(
            accounts(&mut state, vec![account]),
            vec![expected],
            "case {name:?}"
        );
        covered.push(expected);
    }
    let missing: Vec<&A> = A::ALL.iter().filter(|c| !covered.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "result codes without a case: {missing:?}"
    );
}

fn balances(state: &MemoryState, id: u128) -> (u128, u128, u128, u128) {
    let a = state.account(id).unwrap().unwrap().account;
    (
        a.debits_pending,
        a.debits_posted,
        a.credits_pending,
        a.credits_posted,
    )
}

#[test]
fn linked_chain_is_all_or_nothing() {
    let mut state = setup();
    let before = state.accounts();
    let chain = vec![
        with_flags(tr(300, 1, 6, 10), TF::LINKED),
        with_flags(tr(301, 2, 6, 5000), TF::LINKED), // exceeds wallet 2's credits
        tr(302, 1, 6, 10),
        tr(303, 1, 6, 10), // not in the chain
    ];
    let results = transfers(&mut state, 10, chain);
    assert_eq!(
        codes(&results),
        vec![
            T::LinkedEventFailed,
            T::ExceedsCredits,
            T::LinkedEventFailed,
            T::Ok
        ]
    );
    for id in [300, 301, 302] {
        assert!(
            state.transfer(id).unwrap().is_none(),
            "transfer {id} of a failed chain"
        );
    }
    let (_, dp, _, _) = balances(&state, 1);
    let before_1 = before
        .iter()
        .find(|r| r.account.id == 1)
        .unwrap()
        .account
        .debits_posted;
    assert_eq!(dp, before_1 + 10, "only the unlinked transfer moved value");

    // A chain left open at the end of the request fails as a whole.
    let results = transfers(
        &mut state,
        11,
        vec![with_flags(tr(310, 1, 6, 1), TF::LINKED)],
    );
    assert_eq!(codes(&results), vec![T::LinkedEventChainOpen]);
    let results = transfers(
        &mut state,
        12,
        vec![
            with_flags(tr(311, 1, 6, 1), TF::LINKED),
            with_flags(tr(312, 1, 6, 1), TF::LINKED),
        ],
    );
    assert_eq!(
        codes(&results),
        vec![T::LinkedEventFailed, T::LinkedEventChainOpen]
    );
    assert!(state.transfer(311).unwrap().is_none());

    // Account chains behave the same way.
    let r = accounts(&mut state, vec![acct(60, 1, AF::LINKED), acct(61, 0, 0)]);
    assert_eq!(r, vec![A::LinkedEventFailed, A::LedgerMustNotBeZero]);
    assert!(state.account(60).unwrap().is_none());
}

#[test]
fn retried_chain_reports_exists_with_original_positions() {
    let mut state = setup();
    let chain = vec![with_flags(tr(320, 1, 6, 3), TF::LINKED), tr(321, 1, 6, 4)];
    let first = transfers(&mut state, 10, chain.clone());
    assert_eq!(codes(&first), vec![T::Ok, T::Ok]);
    let digest_accounts = state.accounts();
    let again = transfers(&mut state, 11, chain);
    assert_eq!(codes(&again), vec![T::Exists, T::Exists]);
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(
            (a.timestamp, a.leaf),
            (b.timestamp, b.leaf),
            "exists carries the original position"
        );
    }
    assert_eq!(state.accounts(), digest_accounts, "a retry moves nothing");
}

#[test]
fn two_phase_partial_post_releases_the_remainder() {
    let mut state = setup();
    let before = balances(&state, 1);
    let r = transfers(
        &mut state,
        10,
        vec![with_flags(tr(400, 1, 6, 100), TF::PENDING)],
    );
    assert_eq!(r[0].result, T::Ok);
    assert_eq!(balances(&state, 1).0, before.0 + 100);
    let post = Transfer {
        amount: 60,
        ..refer(401, TF::POST_PENDING_TRANSFER, 400)
    };
    assert_eq!(codes(&transfers(&mut state, 11, vec![post])), vec![T::Ok]);
    let after = balances(&state, 1);
    assert_eq!(after.0, before.0, "the whole reservation is released");
    assert_eq!(after.1, before.1 + 60, "only the captured part is posted");
    assert_eq!(state.status(400).unwrap(), Some(TransferStatus::Posted));
    let applied = state.transfer(401).unwrap().unwrap();
    assert_eq!(
        applied.transfer.debit_account_id, 1,
        "post inherits the accounts"
    );
    assert_eq!(
        applied.as_submitted().debit_account_id,
        0,
        "but remembers what was sent"
    );
}

#[test]
fn pending_transfers_expire_by_cluster_time_only() {
    let mut state = setup();
    // Transfer 102 (7 units, timeout 1s) was created at cluster time ~2ns.
    let pending_before = balances(&state, 1).0;
    // An entry before the deadline expires nothing.
    let r = run(
        &mut state,
        500_000_000,
        vec![Operation::CreateTransfers(vec![tr(500, 1, 6, 1)])],
    );
    assert!(matches!(&r[0], Reply::CreateTransfers(v) if v[0].result == T::Ok));
    assert_eq!(state.status(102).unwrap(), Some(TransferStatus::Pending));
    // The first entry at or past the deadline expires it and releases the reservation.
    let (outcome, changes) = apply(
        &state,
        &Batch {
            timestamp: 1_000_000_100,
            operations: vec![Operation::CreateTransfers(vec![tr(501, 1, 6, 1)])],
        },
    )
    .unwrap();
    state.commit(changes);
    assert_eq!(outcome.expired, 1);
    assert_eq!(state.status(102).unwrap(), Some(TransferStatus::Expired));
    assert_eq!(balances(&state, 1).0, pending_before - 7);
    assert_eq!(
        state.expiring(u64::MAX, 10).unwrap(),
        vec![],
        "index entry removed"
    );
    let r = transfers(
        &mut state,
        1_000_000_200,
        vec![refer(502, TF::VOID_PENDING_TRANSFER, 102)],
    );
    assert_eq!(r[0].result, T::PendingTransferExpired);
}

#[test]
fn closing_transfer_closes_and_void_reopens() {
    let mut state = setup();
    let close = with_flags(tr(600, 6, 1, 1), TF::PENDING | TF::CLOSING_DEBIT);
    assert_eq!(codes(&transfers(&mut state, 10, vec![close])), vec![T::Ok]);
    assert_eq!(
        codes(&transfers(&mut state, 11, vec![tr(601, 6, 1, 1)])),
        vec![T::DebitAccountAlreadyClosed]
    );
    let void = refer(602, TF::VOID_PENDING_TRANSFER, 600);
    assert_eq!(codes(&transfers(&mut state, 12, vec![void])), vec![T::Ok]);
    assert_eq!(
        codes(&transfers(&mut state, 13, vec![tr(603, 6, 1, 1)])),
        vec![T::Ok]
    );
}

#[test]
fn reversal_nets_the_original_to_zero_once() {
    let mut state = setup();
    let before = (balances(&state, 1), balances(&state, 6));
    assert_eq!(
        codes(&transfers(&mut state, 10, vec![tr(700, 1, 6, 40)])),
        vec![T::Ok]
    );
    let r = transfers(&mut state, 11, vec![refer(701, TF::REVERSAL, 700)]);
    assert_eq!(codes(&r), vec![T::Ok]);
    let (a1, a6) = (balances(&state, 1), balances(&state, 6));
    let net = |b: (u128, u128, u128, u128)| b.3.wrapping_sub(b.1);
    assert_eq!(
        net(a1),
        net(before.0),
        "net balance of the debit side restored"
    );
    assert_eq!(
        net(a6),
        net(before.1),
        "net balance of the credit side restored"
    );
    assert_ne!(
        a1, before.0,
        "both the transfer and its reversal are on record"
    );
    let again = transfers(&mut state, 12, vec![refer(702, TF::REVERSAL, 700)]);
    assert_eq!(codes(&again), vec![T::ReversalOriginalAlreadyReversed]);
    assert!(refer(701, TF::REVERSAL, 700).requires_governance());
}

#[test]
fn balancing_debit_moves_at_most_what_is_available() {
    let mut state = setup();
    // Wallet 2 holds 1000 posted credits and has debited nothing.
    let t = with_flags(tr(800, 2, 1, 0), TF::BALANCING_DEBIT);
    assert_eq!(codes(&transfers(&mut state, 10, vec![t])), vec![T::Ok]);
    let applied = state.transfer(800).unwrap().unwrap();
    assert_eq!(applied.transfer.amount, 1000);
    let (dp, dpost, _, cpost) = balances(&state, 2);
    assert_eq!(dp + dpost, cpost, "wallet drained to exactly zero");
}

#[test]
fn timestamps_strictly_increase_whatever_the_leader_proposes() {
    let mut state = setup();
    let a = transfers(&mut state, 1_000, vec![tr(900, 1, 6, 1), tr(901, 1, 6, 1)]);
    let b = transfers(&mut state, 5, vec![tr(902, 1, 6, 1)]); // a proposal from the past
    assert!(a[0].timestamp < a[1].timestamp);
    assert!(b[0].timestamp > a[1].timestamp);
    assert_eq!(b[0].leaf, a[1].leaf + 1);
}

#[test]
fn json_wire_form_is_strict() {
    let ok = br#"{"create_transfers":[{"id":"340282366920938463463374607431768211454","debit_account_id":"1","credit_account_id":"2","amount":"5","ledger":1,"code":1,"flags":["linked","pending"]}]}"#;
    let op = codec::operation_from_json(ok).unwrap();
    let Operation::CreateTransfers(t) = &op else {
        panic!()
    };
    assert_eq!(t[0].id, u128::MAX - 1);
    assert_eq!(t[0].flags, TF(TF::LINKED | TF::PENDING));
    let round = serde_json::to_string(&op).unwrap();
    assert!(round.contains(r#""amount":"5""#), "{round}");
    let bad: &[(&str, &[u8])] = &[
        ("unknown field", br#"{"create_transfers":[{"id":"1","colour":"red"}]}"#),
        ("number not string", br#"{"create_transfers":[{"id":1,"ledger":1,"code":1}]}"#),
        ("negative", br#"{"create_transfers":[{"id":"-1","ledger":1,"code":1}]}"#),
        ("plus sign", br#"{"create_transfers":[{"id":"+1","ledger":1,"code":1}]}"#),
        ("too big", br#"{"create_transfers":[{"id":"340282366920938463463374607431768211456","ledger":1,"code":1}]}"#),
        ("unknown flag", br#"{"create_transfers":[{"id":"1","flags":["sideways"]}]}"#),
        ("unknown operation", br#"{"delete_everything":[]}"#),
        ("empty", br#"{"create_transfers":[]}"#),
        ("not json", b"\xff\x00"),
    ];
    for (name, text) in bad {
        assert!(
            codec::operation_from_json(text).is_err(),
            "{name} was accepted"
        );
    }
}

#[test]
fn binary_codec_round_trips_and_rejects_bad_records() {
    let batch = Batch {
        timestamp: 42,
        operations: vec![Operation::CreateTransfers(vec![tr(1, 2, 3, u128::MAX)])],
    };
    let bytes = codec::encode(Kind::Batch, &batch);
    assert_eq!(codec::decode_batch(&bytes).unwrap(), batch);

    let mut future = bytes.clone();
    future[2] = codec::CODEC_VERSION + 1;
    assert!(matches!(
        codec::decode_batch(&future),
        Err(CodecError::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        codec::decode::<Batch>(Kind::Operation, &bytes),
        Err(CodecError::WrongKind { .. })
    ));
    assert!(matches!(
        codec::decode_batch(&bytes[..bytes.len() - 1]),
        Err(CodecError::Malformed(_))
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        codec::decode_batch(&trailing),
        Err(CodecError::Malformed(_))
    ));
    assert!(matches!(
        codec::decode_batch(b"XX"),
        Err(CodecError::BadHeader)
    ));

    let oversized =
        Operation::CreateTransfers(vec![tr(1, 2, 3, 4); ledger::limits::BATCH_EVENTS_MAX + 1]);
    let bytes = codec::encode(Kind::Operation, &oversized);
    assert!(matches!(
        codec::decode_operation(&bytes),
        Err(CodecError::Bounds(_))
    ));
    // A length prefix claiming billions of events is refused without allocating them.
    let mut huge = vec![b'R', b'L', codec::CODEC_VERSION, Kind::Operation as u8, 1];
    huge.extend_from_slice(&[0xfc, 0xff, 0xff, 0xff, 0x7f]);
    assert!(codec::decode_operation(&huge).is_err());
}

#[test]
fn a_chain_mixing_exists_and_new_events_fails_without_reporting_ok() {
    let mut state = setup();
    let first = vec![with_flags(tr(340, 1, 6, 1), TF::LINKED), tr(341, 1, 6, 1)];
    assert_eq!(codes(&transfers(&mut state, 10, first)), vec![T::Ok, T::Ok]);
    // 340 exists (identical, linked as before), 342 would be new: neither all-new nor a retry.
    let mixed = vec![with_flags(tr(340, 1, 6, 1), TF::LINKED), tr(342, 1, 6, 1)];
    let r = transfers(&mut state, 11, mixed);
    assert_eq!(codes(&r), vec![T::Exists, T::LinkedEventFailed]);
    assert!(
        state.transfer(342).unwrap().is_none(),
        "the new event was rolled back"
    );
    // And the other way round: a new event, then an existing one.
    let mixed = vec![with_flags(tr(343, 1, 6, 1), TF::LINKED), tr(341, 1, 6, 1)];
    let r = transfers(&mut state, 12, mixed);
    assert_eq!(codes(&r), vec![T::LinkedEventFailed, T::Exists]);
    assert!(state.transfer(343).unwrap().is_none());
    // Accounts too.
    let r = accounts(&mut state, vec![acct(78, 1, AF::LINKED), acct(79, 1, 0)]);
    assert_eq!(r, vec![A::Ok, A::Ok]);
    let r = accounts(&mut state, vec![acct(78, 1, AF::LINKED), acct(80, 1, 0)]);
    assert_eq!(r, vec![A::Exists, A::LinkedEventFailed]);
    assert!(state.account(80).unwrap().is_none());
}

#[test]
fn closed_accounts_refuse_posts_but_allow_voids() {
    let mut state = setup();
    let hold = with_flags(tr(610, 6, 1, 3), TF::PENDING);
    let close = with_flags(tr(611, 6, 1, 1), TF::PENDING | TF::CLOSING_DEBIT);
    assert_eq!(
        codes(&transfers(&mut state, 10, vec![hold, close])),
        vec![T::Ok, T::Ok]
    );
    let post = refer(612, TF::POST_PENDING_TRANSFER, 610);
    assert_eq!(
        codes(&transfers(&mut state, 11, vec![post])),
        vec![T::DebitAccountAlreadyClosed]
    );
    let post_closing = refer(613, TF::POST_PENDING_TRANSFER, 611);
    assert_eq!(
        codes(&transfers(&mut state, 12, vec![post_closing])),
        vec![T::DebitAccountAlreadyClosed]
    );
    let void = refer(614, TF::VOID_PENDING_TRANSFER, 610);
    assert_eq!(codes(&transfers(&mut state, 13, vec![void])), vec![T::Ok]);
}

#[test]
fn proposals_near_the_end_of_time_never_saturate() {
    let mut state = setup();
    let a = transfers(
        &mut state,
        u64::MAX,
        vec![tr(920, 1, 6, 1), tr(921, 1, 6, 1)],
    );
    assert!(a[0].timestamp < a[1].timestamp, "still strictly increasing");
    // (The expiry sweep of the setup's pending transfer takes the first slot.)
    assert!(a[1].timestamp <= ledger::apply::TIMESTAMP_PROPOSAL_MAX + 10);
}

/// An id whose first event failed on the state stays failed: a later event with the id, even
/// one that would now succeed, answers `id_already_failed` and changes nothing but its leaf;
/// static failures (validation) do not reserve the id; a chain broken by a state-dependent
/// failure keeps every id in it failed; an `exists` in a broken chain keeps its transfer.
#[test]
fn a_failed_id_stays_failed() {
    let mut state = setup();
    // Account 2 (debits must not exceed credits) holds 1000: 1001 fails on its balance.
    let first = transfers(&mut state, 10, vec![tr(300, 2, 1, 1001)]);
    assert_eq!(codes(&first), [T::ExceedsCredits]);
    assert_eq!(
        state.status(300).unwrap(),
        Some(TransferStatus::Failed(T::ExceedsCredits))
    );
    // The same id for an amount that fits, later, and within one request: still failed.
    let before = state.accounts();
    let retry = transfers(&mut state, 20, vec![tr(300, 2, 1, 1), tr(300, 2, 1, 1)]);
    assert_eq!(codes(&retry), [T::IdAlreadyFailed, T::IdAlreadyFailed]);
    assert_eq!(state.accounts(), before, "a failed id moved money");
    assert!(state.transfer(300).unwrap().is_none());
    // Failing and retrying inside one request.
    let same_request = transfers(&mut state, 30, vec![tr(301, 2, 1, 5000), tr(301, 2, 1, 1)]);
    assert_eq!(
        codes(&same_request),
        [T::ExceedsCredits, T::IdAlreadyFailed]
    );
    // A static failure does not reserve the id.
    let zero = transfers(&mut state, 40, vec![tr(302, 2, 1, 0)]);
    assert_eq!(codes(&zero), [T::AmountMustNotBeZero]);
    assert_eq!(state.status(302).unwrap(), None);
    assert_eq!(
        codes(&transfers(&mut state, 50, vec![tr(302, 2, 1, 1)])),
        [T::Ok]
    );
    // A chain broken by a balance keeps all its ids failed.
    let linked = |t: Transfer| with_flags(t, TF::LINKED);
    let chain = transfers(
        &mut state,
        60,
        vec![linked(tr(310, 1, 2, 1)), tr(311, 2, 1, 1_000_000)],
    );
    assert_eq!(codes(&chain), [T::LinkedEventFailed, T::ExceedsCredits]);
    for id in [310, 311] {
        assert!(matches!(
            state.status(id).unwrap(),
            Some(TransferStatus::Failed(_))
        ));
    }
    assert_eq!(
        codes(&transfers(&mut state, 70, vec![tr(310, 1, 2, 1)])),
        [T::IdAlreadyFailed]
    );
    // ... but an `exists` in such a chain keeps its transfer, and gets no failure record.
    let pair = transfers(
        &mut state,
        80,
        vec![linked(tr(330, 1, 2, 1)), tr(331, 1, 2, 1)],
    );
    assert_eq!(codes(&pair), [T::Ok, T::Ok]);
    let broken = transfers(
        &mut state,
        90,
        vec![linked(tr(330, 1, 2, 1)), tr(332, 2, 1, 1_000_000)],
    );
    assert_eq!(codes(&broken), [T::LinkedEventFailed, T::ExceedsCredits]);
    assert!(state.transfer(330).unwrap().is_some());
    assert_eq!(state.status(330).unwrap(), None);
    assert!(matches!(
        state.status(332).unwrap(),
        Some(TransferStatus::Failed(T::ExceedsCredits))
    ));
    // A recorded failure is state: in the digest.
    let mut other = setup();
    transfers(&mut other, 10, vec![tr(300, 2, 1, 1)]);
    let mut failed = setup();
    transfers(&mut failed, 10, vec![tr(300, 2, 1, 1001)]);
    assert_ne!(other.digest().unwrap(), failed.digest().unwrap());
}
