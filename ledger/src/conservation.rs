//! Conservation of value: per ledger, the sum of `debits_posted` over all accounts equals the sum
//! of `credits_posted`, and likewise for pending. Every transfer adds the same amount to one
//! debit and one credit balance of the same ledger, so any difference is a bug or corruption.

use crate::types::Account;
use std::collections::BTreeMap;

/// A 256-bit unsigned sum, so that adding many u128 balances never overflows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sum {
    /// High 128 bits.
    pub high: u128,
    /// Low 128 bits.
    pub low: u128,
}

impl Sum {
    fn add(&mut self, v: u128) {
        let (low, carry) = self.low.overflowing_add(v);
        self.low = low;
        self.high = self.high.wrapping_add(u128::from(carry));
    }
}

/// Totals of one ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    /// The ledger.
    pub ledger: u32,
    /// Accounts in it.
    pub accounts: u64,
    /// Sum of `debits_pending`.
    pub debits_pending: Sum,
    /// Sum of `credits_pending`.
    pub credits_pending: Sum,
    /// Sum of `debits_posted`.
    pub debits_posted: Sum,
    /// Sum of `credits_posted`.
    pub credits_posted: Sum,
}

impl LedgerTotals {
    /// Whether value is conserved in this ledger.
    pub fn balanced(&self) -> bool {
        self.debits_pending == self.credits_pending && self.debits_posted == self.credits_posted
    }
}

/// Conservation does not hold in some ledger.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("conservation violated in ledger {}: {:?}", .0.ledger, .0)]
pub struct ConservationError(pub Box<LedgerTotals>);

/// Sum every ledger's balances; `Err` names the first ledger that does not balance.
pub fn check<'a>(
    accounts: impl IntoIterator<Item = &'a Account>,
) -> Result<Vec<LedgerTotals>, ConservationError> {
    let mut totals: BTreeMap<u32, LedgerTotals> = BTreeMap::new();
    for a in accounts {
        let t = totals.entry(a.ledger).or_insert_with(|| LedgerTotals {
            ledger: a.ledger,
            ..LedgerTotals::default()
        });
        t.accounts += 1;
        t.debits_pending.add(a.debits_pending);
        t.credits_pending.add(a.credits_pending);
        t.debits_posted.add(a.debits_posted);
        t.credits_posted.add(a.credits_posted);
    }
    let totals: Vec<LedgerTotals> = totals.into_values().collect();
    match totals.iter().find(|t| !t.balanced()) {
        Some(bad) => Err(ConservationError(Box::new(*bad))),
        None => Ok(totals),
    }
}
