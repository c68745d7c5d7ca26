//! `create_transfers`: each transfer is validated, compared with an existing transfer of the same
//! id (`exists` only if every field the client sent matches), or applied by kind — post or void
//! of a pending transfer (`pending`), a reversal, or a single-phase or pending transfer between
//! two accounts — with its balance limits, and then recorded and indexed under both accounts.
//!
//! This module never expires a pending transfer and never resolves a post or void itself
//! (`pending` does).

use super::chains::ChainCodes;
use super::engine::{corrupt, Engine, Slot, Verdict};
use crate::canonical::transfer_leaf_data;
use crate::limits::NANOS_PER_SECOND;
use crate::results::{CreateTransferResult as T, EventResult};
use crate::state::{ReadError, StateRead};
use crate::types::{
    Account, AccountFlags, ExpiryKey, Transfer, TransferFlags, TransferRecord, TransferStatus,
};
use crate::validate;

impl<S: StateRead> Engine<'_, S> {
    pub(super) fn transfers(
        &mut self,
        events: &[Transfer],
    ) -> Result<Vec<EventResult<T>>, ReadError> {
        let codes = ChainCodes {
            ok: T::Ok,
            exists: T::Exists,
            linked_failed: T::LinkedEventFailed,
            chain_open: T::LinkedEventChainOpen,
            keeps_id_failed: T::keeps_id_failed,
        };
        self.run_chains(
            events,
            |t| t.flags.has(TransferFlags::LINKED),
            codes,
            |engine, t, slot| engine.create_transfer(t, slot),
            |t, r| transfer_leaf_data(t, r.code()),
            |engine, t, r| {
                // Only an id nothing holds yet: not an applied transfer (an `exists` in a broken
                // chain), not an id already failed (the first failure is the one kept).
                if engine.overlay.transfer(t.id)?.is_none()
                    && engine.overlay.status(t.id)?.is_none()
                {
                    engine.overlay.put_status(t.id, TransferStatus::Failed(r));
                }
                Ok(())
            },
        )
    }

    fn create_transfer(
        &mut self,
        t: &Transfer,
        slot: Slot,
    ) -> Result<Verdict<T, Transfer>, ReadError> {
        let mut stamped = *t;
        stamped.timestamp = slot.timestamp;
        if let Err(code) = validate::transfer(t) {
            return Ok(Verdict::rejected(code, stamped));
        }
        if let Some(existing) = self.overlay.transfer(t.id)? {
            return Ok(exists_verdict(t, &existing, stamped));
        }
        // An id whose first event failed on the state stays failed: one id, one outcome.
        if let Some(TransferStatus::Failed(_)) = self.overlay.status(t.id)? {
            return Ok(Verdict::rejected(T::IdAlreadyFailed, stamped));
        }
        let decided = if t.flags.has(TransferFlags::POST_PENDING_TRANSFER)
            || t.flags.has(TransferFlags::VOID_PENDING_TRANSFER)
        {
            self.post_or_void(t, slot)?
        } else if t.flags.has(TransferFlags::REVERSAL) {
            self.reverse(t, slot)?
        } else {
            self.single_or_pending(t, slot)?
        };
        Ok(match decided {
            Ok(applied) => Verdict::accepted(T::Ok, applied),
            Err(code) => Verdict::rejected(code, stamped),
        })
    }

    /// A single-phase or pending transfer between two accounts.
    fn single_or_pending(
        &mut self,
        t: &Transfer,
        slot: Slot,
    ) -> Result<Result<Transfer, T>, ReadError> {
        let Some(mut dr) = self.overlay.account(t.debit_account_id)? else {
            return Ok(Err(T::DebitAccountNotFound));
        };
        let Some(mut cr) = self.overlay.account(t.credit_account_id)? else {
            return Ok(Err(T::CreditAccountNotFound));
        };
        let (d, c) = (&dr.account, &cr.account);
        if d.ledger != c.ledger {
            return Ok(Err(T::AccountsMustHaveTheSameLedger));
        }
        if t.ledger != d.ledger {
            return Ok(Err(T::TransferMustHaveTheSameLedgerAsAccounts));
        }
        if d.flags.has(AccountFlags::CLOSED) {
            return Ok(Err(T::DebitAccountAlreadyClosed));
        }
        if c.flags.has(AccountFlags::CLOSED) {
            return Ok(Err(T::CreditAccountAlreadyClosed));
        }
        let pending = t.flags.has(TransferFlags::PENDING);
        let mut amount = t.amount;
        if t.flags.has(TransferFlags::BALANCING_DEBIT)
            || t.flags.has(TransferFlags::BALANCING_CREDIT)
        {
            if amount == 0 {
                amount = u128::MAX;
            }
            if t.flags.has(TransferFlags::BALANCING_DEBIT) {
                let used = d.debits_pending.saturating_add(d.debits_posted);
                amount = amount.min(d.credits_posted.saturating_sub(used));
            }
            if t.flags.has(TransferFlags::BALANCING_CREDIT) {
                let used = c.credits_pending.saturating_add(c.credits_posted);
                amount = amount.min(c.debits_posted.saturating_sub(used));
            }
        }
        if let Err(code) = check_limits(d, c, amount, pending) {
            return Ok(Err(code));
        }
        let mut expires_at = None;
        if pending && t.timeout != 0 {
            let Some(at) = u64::from(t.timeout)
                .checked_mul(NANOS_PER_SECOND)
                .and_then(|ns| slot.timestamp.checked_add(ns))
            else {
                return Ok(Err(T::OverflowsTimeout));
            };
            expires_at = Some(at);
        }
        // Every check passed; the additions below cannot overflow (check_limits).
        if pending {
            dr.account.debits_pending += amount;
            cr.account.credits_pending += amount;
        } else {
            dr.account.debits_posted += amount;
            cr.account.credits_posted += amount;
        }
        if t.flags.has(TransferFlags::CLOSING_DEBIT) {
            dr.account.flags.0 |= AccountFlags::CLOSED;
        }
        if t.flags.has(TransferFlags::CLOSING_CREDIT) {
            cr.account.flags.0 |= AccountFlags::CLOSED;
        }
        let mut applied = *t;
        applied.amount = amount;
        applied.timestamp = slot.timestamp;
        self.put_balances(dr, cr, slot);
        if pending {
            self.overlay.put_status(t.id, TransferStatus::Pending);
        }
        if let Some(expires_at) = expires_at {
            self.overlay.expiry_put(ExpiryKey {
                expires_at,
                transfer_id: t.id,
            });
        }
        self.record(t, applied, slot);
        Ok(Ok(applied))
    }

    /// Reverse a posted transfer: the same amount back, between the same accounts, at most once.
    fn reverse(&mut self, t: &Transfer, slot: Slot) -> Result<Result<Transfer, T>, ReadError> {
        let Some(o) = self.overlay.transfer(t.pending_id)? else {
            return Ok(Err(T::ReversalOriginalNotFound));
        };
        let o = o.transfer;
        if o.flags.has(TransferFlags::REVERSAL) {
            return Ok(Err(T::ReversalOfReversal));
        }
        if o.flags.has(TransferFlags::PENDING) || o.flags.has(TransferFlags::VOID_PENDING_TRANSFER)
        {
            return Ok(Err(T::ReversalOriginalNotPosted));
        }
        if self.overlay.status(o.id)? == Some(TransferStatus::Reversed) {
            return Ok(Err(T::ReversalOriginalAlreadyReversed));
        }
        if (t.debit_account_id != 0 && t.debit_account_id != o.credit_account_id)
            || (t.credit_account_id != 0 && t.credit_account_id != o.debit_account_id)
        {
            return Ok(Err(T::ReversalHasDifferentAccounts));
        }
        if t.ledger != 0 && t.ledger != o.ledger {
            return Ok(Err(T::ReversalHasDifferentLedger));
        }
        if t.amount != 0 && t.amount != o.amount {
            return Ok(Err(T::ReversalHasDifferentAmount));
        }
        let (Some(mut dr), Some(mut cr)) = (
            self.overlay.account(o.credit_account_id)?,
            self.overlay.account(o.debit_account_id)?,
        ) else {
            return Err(corrupt("posted transfer names a missing account"));
        };
        if dr.account.flags.has(AccountFlags::CLOSED) {
            return Ok(Err(T::DebitAccountAlreadyClosed));
        }
        if cr.account.flags.has(AccountFlags::CLOSED) {
            return Ok(Err(T::CreditAccountAlreadyClosed));
        }
        if let Err(code) = check_limits(&dr.account, &cr.account, o.amount, false) {
            return Ok(Err(code));
        }
        dr.account.debits_posted += o.amount;
        cr.account.credits_posted += o.amount;
        self.put_balances(dr, cr, slot);
        self.overlay.put_status(o.id, TransferStatus::Reversed);
        let applied = Transfer {
            debit_account_id: o.credit_account_id,
            credit_account_id: o.debit_account_id,
            ledger: o.ledger,
            code: if t.code != 0 { t.code } else { o.code },
            amount: o.amount,
            timestamp: slot.timestamp,
            ..*t
        };
        self.record(t, applied, slot);
        Ok(Ok(applied))
    }
}

/// Overflow and balance-limit checks for moving `amount` from `d` to `c`.
fn check_limits(d: &Account, c: &Account, amount: u128, pending: bool) -> Result<(), T> {
    if pending {
        if d.debits_pending.checked_add(amount).is_none() {
            return Err(T::OverflowsDebitsPending);
        }
        if c.credits_pending.checked_add(amount).is_none() {
            return Err(T::OverflowsCreditsPending);
        }
    } else {
        if d.debits_posted.checked_add(amount).is_none() {
            return Err(T::OverflowsDebitsPosted);
        }
        if c.credits_posted.checked_add(amount).is_none() {
            return Err(T::OverflowsCreditsPosted);
        }
    }
    let Some(debits) = d
        .debits_pending
        .checked_add(d.debits_posted)
        .and_then(|x| x.checked_add(amount))
    else {
        return Err(T::OverflowsDebits);
    };
    let Some(credits) = c
        .credits_pending
        .checked_add(c.credits_posted)
        .and_then(|x| x.checked_add(amount))
    else {
        return Err(T::OverflowsCredits);
    };
    if d.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) && debits > d.credits_posted {
        return Err(T::ExceedsCredits);
    }
    if c.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) && credits > c.debits_posted {
        return Err(T::ExceedsDebits);
    }
    Ok(())
}

fn exists_verdict(
    t: &Transfer,
    existing: &TransferRecord,
    stamped: Transfer,
) -> Verdict<T, Transfer> {
    let e = existing.as_submitted();
    let result = if e.flags != t.flags {
        T::ExistsWithDifferentFlags
    } else if e.debit_account_id != t.debit_account_id {
        T::ExistsWithDifferentDebitAccountId
    } else if e.credit_account_id != t.credit_account_id {
        T::ExistsWithDifferentCreditAccountId
    } else if e.amount != t.amount {
        T::ExistsWithDifferentAmount
    } else if e.pending_id != t.pending_id {
        T::ExistsWithDifferentPendingId
    } else if e.user_data_128 != t.user_data_128 {
        T::ExistsWithDifferentUserData128
    } else if e.user_data_64 != t.user_data_64 {
        T::ExistsWithDifferentUserData64
    } else if e.user_data_32 != t.user_data_32 {
        T::ExistsWithDifferentUserData32
    } else if e.timeout != t.timeout {
        T::ExistsWithDifferentTimeout
    } else if e.ledger != t.ledger {
        T::ExistsWithDifferentLedger
    } else if e.code != t.code {
        T::ExistsWithDifferentCode
    } else {
        return Verdict {
            result: T::Exists,
            leaf_event: stamped,
            original: Some(Slot {
                timestamp: existing.transfer.timestamp,
                leaf: existing.leaf,
            }),
        };
    };
    Verdict::rejected(result, stamped)
}
