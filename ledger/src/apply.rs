//! `apply`: one sequenced [`Batch`] and the current state in, per-event results and the entry's
//! [`Changes`] out. A plain deterministic function: no clock, no randomness, no I/O beyond the
//! [`StateRead`] it is given. The caller commits the changes atomically.

use crate::batch::{Batch, Operation, Outcome, Reply};
use crate::canonical::{account_leaf_data, expiry_leaf_data, transfer_leaf_data, LeafData};
use crate::limits::{EXPIRIES_PER_ENTRY_MAX, NANOS_PER_SECOND};
use crate::merkle::Hash;
use crate::overlay::Overlay;
use crate::results::{CreateAccountResult, CreateTransferResult as T, EventResult};
use crate::state::{Changes, ReadError, StateRead};
use crate::types::{
    Account, AccountFlags, AccountRecord, ExpiryKey, HistoryKey, Transfer, TransferFlags,
    TransferRecord, TransferStatus,
};
use crate::validate;

/// The largest proposed timestamp apply accepts as is (larger proposals are lowered to it).
pub const TIMESTAMP_PROPOSAL_MAX: u64 = u64::MAX - (1 << 40);

/// Apply one entry. Errors only when the state cannot be read (or is found inconsistent); then
/// nothing may be committed and the node must enter safe mode.
pub fn apply<S: StateRead>(state: &S, batch: &Batch) -> Result<(Outcome, Changes), ReadError> {
    let mut meta = state.meta()?;
    let first_leaf = meta.tree.size;
    // Strictly increasing cluster time, whatever the leader proposed. Proposals are capped so
    // that 2^40 events of headroom remain before u64 cluster time could saturate.
    let base = batch
        .timestamp
        .min(TIMESTAMP_PROPOSAL_MAX)
        .max(meta.last_timestamp.saturating_add(1));
    let mut engine = Engine {
        overlay: Overlay::new(state),
        leaves: Vec::new(),
        leaf_data: Vec::new(),
        first_leaf,
        next_timestamp: base,
    };

    let expired = engine.expire_pending(base)?;
    let mut replies = Vec::with_capacity(batch.operations.len());
    for op in &batch.operations {
        replies.push(match op {
            Operation::CreateAccounts(events) => Reply::CreateAccounts(engine.accounts(events)?),
            Operation::CreateTransfers(events) => Reply::CreateTransfers(engine.transfers(events)?),
        });
    }

    let mut nodes = Vec::with_capacity(engine.leaves.len());
    for leaf in &engine.leaves {
        meta.tree.push_recording(*leaf, &mut nodes);
    }
    if !engine.leaves.is_empty() {
        meta.last_timestamp = engine.next_timestamp - 1;
    }
    meta.root = meta.tree.root();
    debug_assert!(meta.tree.is_consistent());
    let outcome = Outcome {
        replies,
        expired,
        tree_size: meta.tree.size,
        root: meta.root,
        last_timestamp: meta.last_timestamp,
    };
    let Engine {
        overlay,
        leaves,
        leaf_data,
        ..
    } = engine;
    let changes = overlay.into_changes(leaves, leaf_data, first_leaf, nodes, meta);
    Ok((outcome, changes))
}

struct Engine<'a, S: StateRead> {
    overlay: Overlay<'a, S>,
    /// Leaf hashes, and beside them their preimages: each hashed once, here.
    leaves: Vec<Hash>,
    leaf_data: Vec<LeafData>,
    first_leaf: u64,
    next_timestamp: u64,
}

/// The position (timestamp and leaf index) an event takes.
#[derive(Clone, Copy)]
struct Slot {
    timestamp: u64,
    leaf: u64,
}

/// Result of one event before chain resolution: code, and the record to hash as its leaf.
struct Verdict<R, E> {
    result: R,
    /// The event as applied (on success) or as submitted and stamped (on failure).
    leaf_event: E,
    /// For `exists`: the original position.
    original: Option<Slot>,
}

impl<S: StateRead> Engine<'_, S> {
    fn take_slot(&mut self) -> Slot {
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

    fn expire_pending(&mut self, now: u64) -> Result<u32, ReadError> {
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
            self.release(&pending.transfer)?;
            self.overlay
                .put_status(key.transfer_id, TransferStatus::Expired);
            let slot = self.take_slot();
            self.set_leaf(slot, expiry_leaf_data(key.transfer_id, slot.timestamp));
            expired += 1;
        }
        Ok(expired)
    }

    fn set_leaf(&mut self, slot: Slot, data: LeafData) {
        let at = (slot.leaf - self.first_leaf) as usize;
        self.leaves[at] = data.hash();
        self.leaf_data[at] = data;
    }

    /// Run a request's events, resolving `linked` chains: a chain commits only if every event
    /// in it is `ok` (or every one is `exists`, a retried chain); otherwise it is rolled back and
    /// every other event in it reports `linked_event_failed`.
    fn run_chains<E: Copy, R: Copy + PartialEq>(
        &mut self,
        events: &[E],
        linked: impl Fn(&E) -> bool,
        codes: ChainCodes<R>,
        mut one: impl FnMut(&mut Self, &E, Slot) -> Result<Verdict<R, E>, ReadError>,
        leaf: impl Fn(&E, R) -> LeafData,
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

    fn accounts(
        &mut self,
        events: &[Account],
    ) -> Result<Vec<EventResult<CreateAccountResult>>, ReadError> {
        use CreateAccountResult as A;
        let codes = ChainCodes {
            ok: A::Ok,
            exists: A::Exists,
            linked_failed: A::LinkedEventFailed,
            chain_open: A::LinkedEventChainOpen,
        };
        self.run_chains(
            events,
            |a| a.flags.has(AccountFlags::LINKED),
            codes,
            |engine, a, slot| engine.create_account(a, slot),
            |a, r| account_leaf_data(a, r.code()),
        )
    }

    fn transfers(&mut self, events: &[Transfer]) -> Result<Vec<EventResult<T>>, ReadError> {
        let codes = ChainCodes {
            ok: T::Ok,
            exists: T::Exists,
            linked_failed: T::LinkedEventFailed,
            chain_open: T::LinkedEventChainOpen,
        };
        self.run_chains(
            events,
            |t| t.flags.has(TransferFlags::LINKED),
            codes,
            |engine, t, slot| engine.create_transfer(t, slot),
            |t, r| transfer_leaf_data(t, r.code()),
        )
    }

    fn create_account(
        &mut self,
        a: &Account,
        slot: Slot,
    ) -> Result<Verdict<CreateAccountResult, Account>, ReadError> {
        use CreateAccountResult as A;
        let mut stamped = *a;
        stamped.timestamp = slot.timestamp;
        if let Err(code) = validate::account(a) {
            return Ok(Verdict::rejected(code, stamped));
        }
        if let Some(existing) = self.overlay.account(a.id)? {
            let e = existing.account;
            let result = if (e.flags.0 ^ a.flags.0) & !AccountFlags::CLOSED != 0 {
                A::ExistsWithDifferentFlags
            } else if e.user_data_128 != a.user_data_128 {
                A::ExistsWithDifferentUserData128
            } else if e.user_data_64 != a.user_data_64 {
                A::ExistsWithDifferentUserData64
            } else if e.user_data_32 != a.user_data_32 {
                A::ExistsWithDifferentUserData32
            } else if e.ledger != a.ledger {
                A::ExistsWithDifferentLedger
            } else if e.code != a.code {
                A::ExistsWithDifferentCode
            } else {
                let original = Slot {
                    timestamp: e.timestamp,
                    leaf: existing.leaf,
                };
                return Ok(Verdict {
                    result: A::Exists,
                    leaf_event: stamped,
                    original: Some(original),
                });
            };
            return Ok(Verdict::rejected(result, stamped));
        }
        self.overlay.put_account(AccountRecord {
            account: stamped,
            leaf: slot.leaf,
        });
        Ok(Verdict::accepted(A::Ok, stamped))
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
        self.overlay.put_account(dr);
        self.overlay.put_account(cr);
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

    /// Post (capture, possibly partially) or void (release) a pending transfer.
    fn post_or_void(&mut self, t: &Transfer, slot: Slot) -> Result<Result<Transfer, T>, ReadError> {
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
            Some(TransferStatus::Reversed) | None => {
                return Err(corrupt("pending transfer without pending status"))
            }
        }
        let expires_at = expiry_of(&p);
        if expires_at.is_some_and(|at| at <= slot.timestamp) {
            return Ok(Err(T::PendingTransferExpired));
        }
        let (Some(mut dr), Some(mut cr)) = (
            self.overlay.account(p.debit_account_id)?,
            self.overlay.account(p.credit_account_id)?,
        ) else {
            return Err(corrupt("pending transfer names a missing account"));
        };
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
        dr.account.debits_pending = checked_release(dr.account.debits_pending, p.amount)?;
        cr.account.credits_pending = checked_release(cr.account.credits_pending, p.amount)?;
        if post {
            dr.account.debits_posted += amount;
            cr.account.credits_posted += amount;
        } else {
            reopen(&mut dr.account, &mut cr.account, &p);
        }
        self.overlay.put_account(dr);
        self.overlay.put_account(cr);
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
        self.overlay.put_account(dr);
        self.overlay.put_account(cr);
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

    /// Store a new transfer and index it under both accounts.
    fn record(&mut self, submitted: &Transfer, applied: Transfer, slot: Slot) {
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

    /// Give back what a pending transfer reserved (expiry).
    fn release(&mut self, p: &Transfer) -> Result<(), ReadError> {
        let (Some(mut dr), Some(mut cr)) = (
            self.overlay.account(p.debit_account_id)?,
            self.overlay.account(p.credit_account_id)?,
        ) else {
            return Err(corrupt("pending transfer names a missing account"));
        };
        dr.account.debits_pending = checked_release(dr.account.debits_pending, p.amount)?;
        cr.account.credits_pending = checked_release(cr.account.credits_pending, p.amount)?;
        reopen(&mut dr.account, &mut cr.account, p);
        self.overlay.put_account(dr);
        self.overlay.put_account(cr);
        Ok(())
    }
}

struct ChainCodes<R> {
    ok: R,
    exists: R,
    linked_failed: R,
    chain_open: R,
}

impl<R, E> Verdict<R, E> {
    fn rejected(result: R, leaf_event: E) -> Self {
        Self {
            result,
            leaf_event,
            original: None,
        }
    }
    fn accepted(result: R, leaf_event: E) -> Self {
        Self::rejected(result, leaf_event)
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

fn checked_release(balance: u128, amount: u128) -> Result<u128, ReadError> {
    balance
        .checked_sub(amount)
        .ok_or_else(|| corrupt("pending balance below a pending transfer's amount"))
}

fn corrupt(what: &str) -> ReadError {
    ReadError::Corruption {
        what: what.to_string(),
    }
}
