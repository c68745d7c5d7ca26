//! Static rules: everything that can be decided from one event alone, without state. Every node
//! runs these during prevalidation, so a rejected event never reaches the leader; apply runs them
//! again so that the log is safe even if a faulty node forwarded one.

use crate::limits::id_is_valid;
use crate::results::{CreateAccountResult as A, CreateTransferResult as T};
use crate::types::{Account, AccountFlags, Transfer, TransferFlags};

/// The static verdict on a create-account event: `Ok(())` or the result code rejecting it.
pub fn account(a: &Account) -> Result<(), A> {
    if a.timestamp != 0 {
        return Err(A::TimestampMustBeZero);
    }
    if a.flags.0 & !AccountFlags::KNOWN != 0 {
        return Err(A::ReservedFlag);
    }
    if a.id == 0 {
        return Err(A::IdMustNotBeZero);
    }
    if a.id == u128::MAX {
        return Err(A::IdMustNotBeIntMax);
    }
    if a.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        && a.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
    {
        return Err(A::FlagsAreMutuallyExclusive);
    }
    if a.debits_pending != 0 {
        return Err(A::DebitsPendingMustBeZero);
    }
    if a.debits_posted != 0 {
        return Err(A::DebitsPostedMustBeZero);
    }
    if a.credits_pending != 0 {
        return Err(A::CreditsPendingMustBeZero);
    }
    if a.credits_posted != 0 {
        return Err(A::CreditsPostedMustBeZero);
    }
    if a.ledger == 0 {
        return Err(A::LedgerMustNotBeZero);
    }
    if a.code == 0 {
        return Err(A::CodeMustNotBeZero);
    }
    Ok(())
}

/// The static verdict on a create-transfer event: `Ok(())` or the result code rejecting it.
pub fn transfer(t: &Transfer) -> Result<(), T> {
    let f = t.flags;
    if t.timestamp != 0 {
        return Err(T::TimestampMustBeZero);
    }
    if f.0 & !TransferFlags::KNOWN != 0 {
        return Err(T::ReservedFlag);
    }
    if t.id == 0 {
        return Err(T::IdMustNotBeZero);
    }
    if t.id == u128::MAX {
        return Err(T::IdMustNotBeIntMax);
    }
    let phase = [
        TransferFlags::PENDING,
        TransferFlags::POST_PENDING_TRANSFER,
        TransferFlags::VOID_PENDING_TRANSFER,
        TransferFlags::REVERSAL,
    ]
    .iter()
    .filter(|bit| f.has(**bit))
    .count();
    let balancing = f.has(TransferFlags::BALANCING_DEBIT) || f.has(TransferFlags::BALANCING_CREDIT);
    let closing = f.has(TransferFlags::CLOSING_DEBIT) || f.has(TransferFlags::CLOSING_CREDIT);
    let references = t.references_transfer();
    if phase > 1 || (references && (balancing || closing)) {
        return Err(T::FlagsAreMutuallyExclusive);
    }
    if closing && !f.has(TransferFlags::PENDING) {
        return Err(T::ClosingTransferMustBePending);
    }
    if references {
        // Post, void and reversal inherit accounts, ledger, code and amount when given as 0.
        if t.debit_account_id == u128::MAX {
            return Err(T::DebitAccountIdMustNotBeIntMax);
        }
        if t.credit_account_id == u128::MAX {
            return Err(T::CreditAccountIdMustNotBeIntMax);
        }
        if t.debit_account_id != 0 && t.debit_account_id == t.credit_account_id {
            return Err(T::AccountsMustBeDifferent);
        }
        if t.pending_id == 0 {
            return Err(T::PendingIdMustNotBeZero);
        }
        if t.pending_id == u128::MAX {
            return Err(T::PendingIdMustNotBeIntMax);
        }
        if t.pending_id == t.id {
            return Err(T::PendingIdMustBeDifferent);
        }
        if t.timeout != 0 {
            return Err(T::TimeoutReservedForPendingTransfer);
        }
        return Ok(());
    }
    if t.debit_account_id == 0 {
        return Err(T::DebitAccountIdMustNotBeZero);
    }
    if t.debit_account_id == u128::MAX {
        return Err(T::DebitAccountIdMustNotBeIntMax);
    }
    if t.credit_account_id == 0 {
        return Err(T::CreditAccountIdMustNotBeZero);
    }
    if t.credit_account_id == u128::MAX {
        return Err(T::CreditAccountIdMustNotBeIntMax);
    }
    if t.debit_account_id == t.credit_account_id {
        return Err(T::AccountsMustBeDifferent);
    }
    if t.pending_id != 0 {
        return Err(T::PendingIdMustBeZero);
    }
    if t.timeout != 0 && !f.has(TransferFlags::PENDING) {
        return Err(T::TimeoutReservedForPendingTransfer);
    }
    if t.amount == 0 && !balancing {
        return Err(T::AmountMustNotBeZero);
    }
    if t.ledger == 0 {
        return Err(T::LedgerMustNotBeZero);
    }
    if t.code == 0 {
        return Err(T::CodeMustNotBeZero);
    }
    debug_assert!(id_is_valid(t.id));
    Ok(())
}

/// The first id named twice within one `linked` chain of a request, as `(id, first event,
/// second event)`. Such a chain cannot mean what it says: the second event would answer
/// `exists` of the first one, which the chain's failure then rolls back, so nothing is written
/// while the client is told the id exists. The node refuses the whole request instead (400). The
/// same id in separate chains, or outside chains, is fine (the later one is an idempotent
/// `exists` of a committed event).
pub fn repeated_id_in_chain(op: &crate::Operation) -> Option<(u128, usize, usize)> {
    fn scan<E>(
        events: &[E],
        id: impl Fn(&E) -> u128,
        linked: impl Fn(&E) -> bool,
    ) -> Option<(u128, usize, usize)> {
        let mut chain: std::collections::HashMap<u128, usize> = std::collections::HashMap::new();
        for (i, e) in events.iter().enumerate() {
            if let Some(first) = chain.insert(id(e), i) {
                return Some((id(e), first, i));
            }
            if !linked(e) {
                chain.clear();
            }
        }
        None
    }
    match op {
        crate::Operation::CreateAccounts(accounts) => {
            scan(accounts, |a| a.id, |a| a.flags.has(AccountFlags::LINKED))
        }
        crate::Operation::CreateTransfers(transfers) => {
            scan(transfers, |t| t.id, |t| t.flags.has(TransferFlags::LINKED))
        }
    }
}

#[cfg(test)]
mod chain_tests {
    use super::repeated_id_in_chain;
    use crate::types::{Account, AccountFlags, Transfer, TransferFlags};
    use crate::Operation;

    fn account(id: u128, linked: bool) -> Account {
        let mut a = Account {
            id,
            ledger: 1,
            code: 1,
            ..Account::default()
        };
        if linked {
            a.flags = AccountFlags(AccountFlags::LINKED);
        }
        a
    }

    #[test]
    fn an_id_twice_in_one_chain_is_found_and_nowhere_else() {
        let ops = |events: &[(u128, bool)]| {
            Operation::CreateAccounts(events.iter().map(|&(id, l)| account(id, l)).collect())
        };
        // In one chain (the chain ends with the first event without `linked`).
        assert_eq!(
            repeated_id_in_chain(&ops(&[(9, true), (9, true), (10, false)])),
            Some((9, 0, 1))
        );
        assert_eq!(
            repeated_id_in_chain(&ops(&[(1, false), (9, true), (8, true), (9, false)])),
            Some((9, 1, 3))
        );
        // Outside chains, or in two chains: not repeated within one.
        assert_eq!(repeated_id_in_chain(&ops(&[(9, false), (9, false)])), None);
        assert_eq!(
            repeated_id_in_chain(&ops(&[(9, true), (8, false), (9, true), (7, false)])),
            None
        );
        let transfer = |id: u128, linked: bool| Transfer {
            id,
            flags: if linked {
                TransferFlags(TransferFlags::LINKED)
            } else {
                TransferFlags::default()
            },
            ..Transfer::default()
        };
        assert_eq!(
            repeated_id_in_chain(&Operation::CreateTransfers(vec![
                transfer(5, true),
                transfer(5, false)
            ])),
            Some((5, 0, 1))
        );
    }
}
