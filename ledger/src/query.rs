//! Reading the ledger back out: the secondary indexes apply maintains, the filtered queries they
//! answer, and balances as of a point in time for accounts created with the `history` flag.
//!
//! Every index entry is `(field, value, timestamp) → id`. Timestamps are unique cluster-wide and
//! grow with commit order, so each index is a list of events sorted by commit order, and a query
//! over several filters walks them together: seek every list to the same timestamp, jump to the
//! largest one any list answers, and emit an event once every list agrees (a zig-zag merge join).
//! A query with one filter costs O(results · log n); each further filter adds the entries it
//! skips, bounded by the shortest list. Nothing scans the ledger.
//!
//! The indexes, like the history index, are replicated state: written in the same [`Changes`]
//! as the event, equal on every node, carried in snapshots and covered by the state digest.
//!
//! [`Changes`]: crate::Changes

use crate::state::{MemoryState, ReadError};
use crate::types::{Account, HistoryKey, Transfer};
use serde::{Deserialize, Serialize};

// The stored index types live with the other stored records in `types`; named here too.
pub use crate::types::{BalanceEntry, IndexField, IndexKey, Order};

/// Most results one page of a query returns.
pub const QUERY_LIMIT_MAX: usize = 1_000;

/// Most results one call to [`query`] or [`balance_history`] fetches: a full page and one more,
/// so the caller can tell whether a next page exists.
pub const QUERY_FETCH_MAX: usize = QUERY_LIMIT_MAX + 1;

fn push_nonzero(
    out: &mut Vec<(IndexKey, u128)>,
    field: IndexField,
    value: u128,
    ts: u64,
    id: u128,
) {
    if value != 0 {
        out.push((
            IndexKey {
                field,
                value,
                timestamp: ts,
            },
            id,
        ));
    }
}

/// The index entries of a created account. Zero `user_data` fields are not indexed (zero means
/// "not set", and a zero filter means "any").
pub fn account_entries(a: &Account, out: &mut Vec<(IndexKey, u128)>) {
    use IndexField as F;
    let ts = a.timestamp;
    out.push((
        IndexKey {
            field: F::AccountAll,
            value: 0,
            timestamp: ts,
        },
        a.id,
    ));
    push_nonzero(out, F::AccountUserData128, a.user_data_128, ts, a.id);
    push_nonzero(out, F::AccountUserData64, a.user_data_64.into(), ts, a.id);
    push_nonzero(out, F::AccountUserData32, a.user_data_32.into(), ts, a.id);
    push_nonzero(out, F::AccountLedger, a.ledger.into(), ts, a.id);
    push_nonzero(out, F::AccountCode, a.code.into(), ts, a.id);
}

/// The index entries of an applied transfer (the by-either-account entries are the history
/// index, written separately).
pub fn transfer_entries(t: &Transfer, out: &mut Vec<(IndexKey, u128)>) {
    use IndexField as F;
    let ts = t.timestamp;
    out.push((
        IndexKey {
            field: F::TransferAll,
            value: 0,
            timestamp: ts,
        },
        t.id,
    ));
    push_nonzero(out, F::TransferUserData128, t.user_data_128, ts, t.id);
    push_nonzero(out, F::TransferUserData64, t.user_data_64.into(), ts, t.id);
    push_nonzero(out, F::TransferUserData32, t.user_data_32.into(), ts, t.id);
    push_nonzero(out, F::TransferLedger, t.ledger.into(), ts, t.id);
    push_nonzero(out, F::TransferCode, t.code.into(), ts, t.id);
    push_nonzero(out, F::TransferDebitAccount, t.debit_account_id, ts, t.id);
    push_nonzero(out, F::TransferCreditAccount, t.credit_account_id, ts, t.id);
}

/// What the indexes offer a query: one seek, O(log n).
pub trait IndexRead {
    /// The entry of `(field, value)` nearest `timestamp` in `order`: the first at or after it
    /// (`Asc`) or the last at or before it (`Desc`), as `(timestamp, id)`.
    fn index_seek(
        &self,
        field: IndexField,
        value: u128,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, u128)>, ReadError>;

    /// The balance-history entry of `account_id` nearest `timestamp` in `order`.
    fn balance_seek(
        &self,
        account_id: u128,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, BalanceEntry)>, ReadError>;
}

/// Seeks straight from memory (the in-memory backend, the simulation and the tests).
impl IndexRead for MemoryState {
    fn index_seek(
        &self,
        field: IndexField,
        value: u128,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, u128)>, ReadError> {
        Ok(if field == IndexField::TransferAccount {
            self.history_seek(value, timestamp, order)
        } else {
            self.index_seek_in_memory(field, value, timestamp, order)
        })
    }

    fn balance_seek(
        &self,
        account_id: u128,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, BalanceEntry)>, ReadError> {
        Ok(self.balance_seek_in_memory(account_id, timestamp, order))
    }
}

/// Which side of an account's transfers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Both debits and credits.
    #[default]
    Both,
    /// Transfers that debit the account.
    Debits,
    /// Transfers that credit the account.
    Credits,
}

/// What a query asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Accounts,
    Transfers,
    /// One account's transfers.
    AccountTransfers {
        account_id: u128,
        side: Side,
    },
}

/// A query's filters; zero fields do not filter. Timestamps are inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub ledger: u32,
    pub code: u16,
    pub timestamp_min: u64,
    pub timestamp_max: u64,
    pub order: Order,
    /// At most this many results (capped at [`QUERY_FETCH_MAX`]).
    pub limit: usize,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
            ledger: 0,
            code: 0,
            timestamp_min: 0,
            timestamp_max: u64::MAX,
            order: Order::Asc,
            limit: QUERY_LIMIT_MAX,
        }
    }
}

impl Filter {
    /// The index lists this query walks for `target`, most selective kinds first.
    pub fn conditions(&self, target: Target) -> Vec<(IndexField, u128)> {
        use IndexField as F;
        let (all, ud128, ud64, ud32, ledger, code) = match target {
            Target::Accounts => (
                F::AccountAll,
                F::AccountUserData128,
                F::AccountUserData64,
                F::AccountUserData32,
                F::AccountLedger,
                F::AccountCode,
            ),
            Target::Transfers | Target::AccountTransfers { .. } => (
                F::TransferAll,
                F::TransferUserData128,
                F::TransferUserData64,
                F::TransferUserData32,
                F::TransferLedger,
                F::TransferCode,
            ),
        };
        let mut out = Vec::new();
        if let Target::AccountTransfers { account_id, side } = target {
            let field = match side {
                Side::Both => F::TransferAccount,
                Side::Debits => F::TransferDebitAccount,
                Side::Credits => F::TransferCreditAccount,
            };
            out.push((field, account_id));
        }
        for (field, value) in [
            (ud128, self.user_data_128),
            (ud64, self.user_data_64.into()),
            (ud32, self.user_data_32.into()),
            (code, self.code.into()),
            (ledger, self.ledger.into()),
        ] {
            if value != 0 {
                out.push((field, value));
            }
        }
        if out.is_empty() {
            out.push((all, 0));
        }
        out
    }
}

impl Filter {
    fn matches_common(
        &self,
        ud128: u128,
        ud64: u64,
        ud32: u32,
        ledger: u32,
        code: u16,
        ts: u64,
    ) -> bool {
        (self.user_data_128 == 0 || self.user_data_128 == ud128)
            && (self.user_data_64 == 0 || self.user_data_64 == ud64)
            && (self.user_data_32 == 0 || self.user_data_32 == ud32)
            && (self.ledger == 0 || self.ledger == ledger)
            && (self.code == 0 || self.code == code)
            && self.timestamp_min <= ts
            && ts <= self.timestamp_max
    }

    /// Whether `a` is one of this filter's accounts (the definition [`query`] answers by index).
    pub fn matches_account(&self, a: &Account) -> bool {
        self.matches_common(
            a.user_data_128,
            a.user_data_64,
            a.user_data_32,
            a.ledger,
            a.code,
            a.timestamp,
        )
    }

    /// Whether `t` is one of this filter's transfers of `target`.
    pub fn matches_transfer(&self, target: Target, t: &Transfer) -> bool {
        let side = match target {
            Target::Accounts => return false,
            Target::Transfers => true,
            Target::AccountTransfers { account_id, side } => match side {
                Side::Both => t.debit_account_id == account_id || t.credit_account_id == account_id,
                Side::Debits => t.debit_account_id == account_id,
                Side::Credits => t.credit_account_id == account_id,
            },
        };
        side && self.matches_common(
            t.user_data_128,
            t.user_data_64,
            t.user_data_32,
            t.ledger,
            t.code,
            t.timestamp,
        )
    }
}

/// The `(timestamp, id)` of every event of `target` matching `filter`, in `filter.order`, at
/// most `filter.limit` (capped at [`QUERY_FETCH_MAX`]).
pub fn query<I: IndexRead + ?Sized>(
    src: &I,
    target: Target,
    filter: &Filter,
) -> Result<Vec<(u64, u128)>, ReadError> {
    let limit = filter.limit.min(QUERY_FETCH_MAX);
    let (lo, hi) = (filter.timestamp_min, filter.timestamp_max);
    let mut out = Vec::new();
    if limit == 0 || lo > hi {
        return Ok(out);
    }
    let conds = filter.conditions(target);
    let in_range = |ts: u64| lo <= ts && ts <= hi;
    let mut cand = match filter.order {
        Order::Asc => lo,
        Order::Desc => hi,
    };
    let n = conds.len();
    'events: loop {
        // Seek the lists round-robin until `n` in a row land on `cand`.
        let (mut agreed, mut i, mut id) = (0usize, 0usize, 0u128);
        while agreed < n {
            let (field, value) = conds[i];
            let Some((ts, got)) = src.index_seek(field, value, cand, filter.order)? else {
                break 'events;
            };
            if !in_range(ts) {
                break 'events;
            }
            if ts == cand {
                if agreed > 0 && got != id {
                    return Err(ReadError::Corruption {
                        what: format!("index entries at timestamp {ts} name two ids"),
                    });
                }
                agreed += 1;
            } else {
                cand = ts;
                agreed = 1;
            }
            id = got;
            i = (i + 1) % n;
        }
        out.push((cand, id));
        if out.len() >= limit {
            break;
        }
        cand = match filter.order {
            Order::Asc => match cand.checked_add(1) {
                Some(c) => c,
                None => break,
            },
            Order::Desc => match cand.checked_sub(1) {
                Some(c) => c,
                None => break,
            },
        };
    }
    Ok(out)
}

/// `account_id`'s balances as of `timestamp` (after every event at or before it), with the
/// timestamp of the event that set them; `None` before the account existed.
pub fn balance_as_of<I: IndexRead + ?Sized>(
    src: &I,
    account_id: u128,
    timestamp: u64,
) -> Result<Option<(u64, BalanceEntry)>, ReadError> {
    src.balance_seek(account_id, timestamp, Order::Desc)
}

/// `account_id`'s balance changes with timestamps in `[lo, hi]`, in `order`, at most `limit`
/// (capped at [`QUERY_FETCH_MAX`]).
pub fn balance_history<I: IndexRead + ?Sized>(
    src: &I,
    account_id: u128,
    lo: u64,
    hi: u64,
    order: Order,
    limit: usize,
) -> Result<Vec<(u64, BalanceEntry)>, ReadError> {
    let limit = limit.min(QUERY_FETCH_MAX);
    let mut out = Vec::new();
    if lo > hi {
        return Ok(out);
    }
    let mut cand = match order {
        Order::Asc => lo,
        Order::Desc => hi,
    };
    while out.len() < limit {
        let Some((ts, entry)) = src.balance_seek(account_id, cand, order)? else {
            break;
        };
        if ts < lo || ts > hi {
            break;
        }
        out.push((ts, entry));
        cand = match order {
            Order::Asc => match ts.checked_add(1) {
                Some(c) => c,
                None => break,
            },
            Order::Desc => match ts.checked_sub(1) {
                Some(c) => c,
                None => break,
            },
        };
    }
    Ok(out)
}

/// The history key a balance entry is stored under.
pub fn balance_key(account_id: u128, timestamp: u64) -> HistoryKey {
    HistoryKey {
        account_id,
        timestamp,
    }
}
