//! The second phase of pending transfers: post (capture all or part of the reserved amount) or
//! void (release it) by a later transfer, and expiry by cluster time at the start of an entry.
//! Either way the reservation leaves both accounts' pending balances, and a void or expiry
//! reopens accounts a closing transfer closed.
//!
//! This module never creates a pending transfer (`transfers` does) and never lets a pending
//! balance go below a transfer's reserved amount (that is corruption, not a result).

use super::engine::{corrupt, Engine, Slot};
use crate::canonical::expiry_leaf_data;
use crate::limits::{EXPIRIES_PER_ENTRY_MAX, NANOS_PER_SECOND};
use crate::results::CreateTransferResult as T;
use crate::state::{ReadError, StateRead};
use crate::types::{
    Account, AccountFlags, AccountRecord, ExpiryKey, Transfer, TransferFlags, TransferStatus,
};

impl<S: StateRead> Engine<'_, S> {
    /// Expire pending transfers whose time has come (at most [`EXPIRIES_PER_ENTRY_MAX`]), each
    /// taking a slot and an expiry leaf. Returns how many expired.
    pub(super) fn expire_pending(&mut self, now: u64) -> Result<u32, ReadError> {
        let due = self.overlay.base().expiring(now, EXPIRIES_PER_ENTRY_MAX)?;
        let mut expired = 0u32;
        for key in due {
            self.overlay.expiry_delete(key);
            if self.overlay.status(key.transfer_id)? != Some(TransferStatus::Pending) {
                continue; // already resolved; the index entry was stale
            }
            let pending = self
                .overlay
                .transfer(key.transfer_id)?
                .ok_or_else(|| corrupt("expiry index names a missing transfer"))?;
            let slot = self.take_slot();
            self.release(&pending.transfer, slot)?;
            self.overlay
                .put_status(key.transfer_id, TransferStatus::Expired);
            self.set_leaf(slot, expiry_leaf_data(key.transfer_id, slot.timestamp));
            expired += 1;
        }
        Ok(expired)
    }

    /// Post (capture, possibly partially) or void (release) a pending transfer.
    pub(super) fn post_or_void(
        &mut self,
        t: &Transfer,
        slot: Slot,
    ) -> Result<Result<Transfer, T>, ReadError> {
        let post = t.flags.has(TransferFlags::POST_PENDING_TRANSFER);
        let Some(p) = self.overlay.transfer(t.pending_id)? else {
            return Ok(Err(T::PendingTransferNotFound));
        };
        let p = p.transfer;
        if !p.flags.has(TransferFlags::PENDING) {
            return Ok(Err(T::PendingTransferNotPending));
        }
        if t.debit_account_id != 0 && t.debit_account_id != p.debit_account_id {
            return Ok(Err(T::PendingTransferHasDifferentDebitAccountId));
        }
        if t.credit_account_id != 0 && t.credit_account_id != p.credit_account_id {
            return Ok(Err(T::PendingTransferHasDifferentCreditAccountId));
        }
        if t.ledger != 0 && t.ledger != p.ledger {
            return Ok(Err(T::PendingTransferHasDifferentLedger));
        }
        if t.code != 0 && t.code != p.code {
            return Ok(Err(T::PendingTransferHasDifferentCode));
        }
        let amount = if post {
            if t.amount > p.amount {
                return Ok(Err(T::ExceedsPendingTransferAmount));
            }
            if t.amount == 0 {
                p.amount
            } else {
                t.amount
            }
        } else {
            if t.amount != 0 && t.amount != p.amount {
                return Ok(Err(T::PendingTransferHasDifferentAmount));
            }
            p.amount
        };
        match self.overlay.status(p.id)? {
            Some(TransferStatus::Pending) => {}
            Some(TransferStatus::Posted) => return Ok(Err(T::PendingTransferAlreadyPosted)),
            Some(TransferStatus::Voided) => return Ok(Err(T::PendingTransferAlreadyVoided)),
            Some(TransferStatus::Expired) => return Ok(Err(T::PendingTransferExpired)),
            Some(TransferStatus::Reversed | TransferStatus::Failed(_)) | None => {
                return Err(corrupt("pending transfer without pending status"))
            }
        }
        let expires_at = expiry_of(&p);
        if expires_at.is_some_and(|at| at <= slot.timestamp) {
            return Ok(Err(T::PendingTransferExpired));
        }
        let (mut dr, mut cr) = self.pending_accounts(&p)?;
        // Only a void may move a closed account's balances (it reopens a closing transfer's
        // account); a post may not.
        if post && dr.account.flags.has(AccountFlags::CLOSED) {
            return Ok(Err(T::DebitAccountAlreadyClosed));
        }
        if post && cr.account.flags.has(AccountFlags::CLOSED) {
            return Ok(Err(T::CreditAccountAlreadyClosed));
        }
        if post {
            if dr.account.debits_posted.checked_add(amount).is_none() {
                return Ok(Err(T::OverflowsDebitsPosted));
            }
            if cr.account.credits_posted.checked_add(amount).is_none() {
                return Ok(Err(T::OverflowsCreditsPosted));
            }
        }
        unreserve(&mut dr.account, &mut cr.account, &p)?;
        if post {
            dr.account.debits_posted += amount;
            cr.account.credits_posted += amount;
        } else {
            reopen(&mut dr.account, &mut cr.account, &p);
        }
        self.put_balances(dr, cr, slot);
        let status = if post {
            TransferStatus::Posted
        } else {
            TransferStatus::Voided
        };
        self.overlay.put_status(p.id, status);
        if let Some(expires_at) = expires_at {
            self.overlay.expiry_delete(ExpiryKey {
                expires_at,
                transfer_id: p.id,
            });
        }
        let applied = Transfer {
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            ledger: p.ledger,
            code: p.code,
            amount,
            timestamp: slot.timestamp,
            ..*t
        };
        self.record(t, applied, slot);
        Ok(Ok(applied))
    }

    /// Give back what a pending transfer reserved (expiry).
    fn release(&mut self, p: &Transfer, slot: Slot) -> Result<(), ReadError> {
        let (mut dr, mut cr) = self.pending_accounts(p)?;
        unreserve(&mut dr.account, &mut cr.account, p)?;
        reopen(&mut dr.account, &mut cr.account, p);
        self.put_balances(dr, cr, slot);
        Ok(())
    }

    /// The accounts a pending transfer reserved on, debit then credit: both must exist.
    fn pending_accounts(&self, p: &Transfer) -> Result<(AccountRecord, AccountRecord), ReadError> {
        let (Some(dr), Some(cr)) = (
            self.overlay.account(p.debit_account_id)?,
            self.overlay.account(p.credit_account_id)?,
        ) else {
            return Err(corrupt("pending transfer names a missing account"));
        };
        Ok((dr, cr))
    }
}

/// Cluster time at which a pending transfer expires, if it has a timeout.
fn expiry_of(p: &Transfer) -> Option<u64> {
    (p.timeout != 0).then(|| {
        p.timestamp
            .saturating_add(u64::from(p.timeout).saturating_mul(NANOS_PER_SECOND))
    })
}

/// A closing pending transfer that is voided or expires reopens its accounts.
fn reopen(dr: &mut Account, cr: &mut Account, p: &Transfer) {
    if p.flags.has(TransferFlags::CLOSING_DEBIT) {
        dr.flags.0 &= !AccountFlags::CLOSED;
    }
    if p.flags.has(TransferFlags::CLOSING_CREDIT) {
        cr.flags.0 &= !AccountFlags::CLOSED;
    }
}

/// Take a pending transfer's reservation out of its accounts' pending balances.
fn unreserve(dr: &mut Account, cr: &mut Account, p: &Transfer) -> Result<(), ReadError> {
    dr.debits_pending = checked_release(dr.debits_pending, p.amount)?;
    cr.credits_pending = checked_release(cr.credits_pending, p.amount)?;
    Ok(())
}

fn checked_release(balance: u128, amount: u128) -> Result<u128, ReadError> {
    balance
        .checked_sub(amount)
        .ok_or_else(|| corrupt("pending balance below a pending transfer's amount"))
}
