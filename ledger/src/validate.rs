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
