//! Plain reads — an account, a transfer, a page of an account's transfers — at the chosen
//! [`Consistency`]. Nothing here is proven: verified reads are in `verified`.

use crate::client::Client;
use crate::error::Error;
use crate::retry::{decode, Req};
use crate::shared::Unbatched;
use ledger::{Account, TransferRead};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A page of an account's transfers.
#[derive(Clone, Debug, Deserialize)]
pub struct HistoryPage {
    /// Transfers, oldest first, each with where it stands.
    pub transfers: Vec<TransferRead>,
    /// Pass as `from` for the next page; `None` when this was the last.
    pub next_from: Option<String>,
}

/// Read consistency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Served by (or through) the leader after confirming leadership.
    #[default]
    Linearizable,
    /// This node's last applied state.
    Stale,
}

impl Unbatched {
    /// GET `path` at consistency `c` (retrying transient failures); a 404 is `None`.
    pub(crate) async fn get_opt<T: DeserializeOwned>(
        &self,
        path: &str,
        c: Consistency,
    ) -> Result<Option<T>, Error> {
        let path = match c {
            Consistency::Linearizable => path.to_string(),
            Consistency::Stale => {
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{path}{sep}consistency=stale")
            }
        };
        decode(self.send(&Req::get(path)).await?.0)
    }
}

impl Client {
    /// Look up an account.
    pub async fn lookup_account(&self, id: u128, c: Consistency) -> Result<Option<Account>, Error> {
        self.clone_without_batcher()
            .get_opt(&format!("/v1/accounts/{id}"), c)
            .await
    }

    /// Look up a transfer: its fields and where it stands (`pending`, `posted`, `voided`,
    /// `expired` or `reversed`).
    pub async fn lookup_transfer(
        &self,
        id: u128,
        c: Consistency,
    ) -> Result<Option<TransferRead>, Error> {
        self.clone_without_batcher()
            .get_opt(&format!("/v1/transfers/{id}"), c)
            .await
    }

    /// One page of an account's transfers with timestamps in `[from, to]`.
    pub async fn account_transfers(
        &self,
        id: u128,
        from: u64,
        to: u64,
        limit: usize,
        c: Consistency,
    ) -> Result<Option<HistoryPage>, Error> {
        let path = format!("/v1/accounts/{id}/transfers?from={from}&to={to}&limit={limit}");
        self.clone_without_batcher().get_opt(&path, c).await
    }
}

/// What a query asks for; zero (`None`) fields do not filter. Timestamps are inclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryFilter {
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub ledger: u32,
    pub code: u16,
    pub timestamp_min: Option<u64>,
    pub timestamp_max: Option<u64>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    /// Results per page (the server's default when 0; at most 1,000).
    pub limit: usize,
    /// A page's `next_cursor`: continue after it.
    pub cursor: Option<u64>,
}

impl QueryFilter {
    /// The query string (without `?`).
    fn query(&self, filters: bool) -> String {
        let mut parts = Vec::new();
        if filters {
            for (name, value) in [
                ("user_data_128", self.user_data_128),
                ("user_data_64", self.user_data_64.into()),
                ("user_data_32", self.user_data_32.into()),
                ("ledger", self.ledger.into()),
                ("code", self.code.into()),
            ] {
                if value != 0 {
                    parts.push(format!("{name}={value}"));
                }
            }
        }
        for (name, value) in [
            ("timestamp_min", self.timestamp_min),
            ("timestamp_max", self.timestamp_max),
            ("cursor", self.cursor),
        ] {
            if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        }
        if self.newest_first {
            parts.push("order=desc".into());
        }
        if self.limit > 0 {
            parts.push(format!("limit={}", self.limit));
        }
        parts.join("&")
    }
}

/// One page of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as [`QueryFilter::cursor`] for the next page; `None` when this was the last.
    pub next_cursor: Option<u64>,
}

#[derive(Deserialize)]
struct WirePage<T> {
    #[serde(alias = "accounts", alias = "transfers", alias = "balances")]
    items: Vec<T>,
    next_cursor: Option<String>,
}

impl<T> WirePage<T> {
    fn page(self) -> Result<Page<T>, Error> {
        let next_cursor = self
            .next_cursor
            .map(|c| {
                c.parse::<u64>()
                    .map_err(|_| Error::Protocol(format!("next_cursor {c:?} is not a u64")))
            })
            .transpose()?;
        Ok(Page {
            items: self.items,
            next_cursor,
        })
    }
}

/// An account's balances after one event, from its balance history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct BalanceAt {
    #[serde(with = "ledger::wire::dec")]
    pub account_id: u128,
    /// Timestamp of the event that set these balances.
    #[serde(with = "ledger::wire::dec")]
    pub timestamp: u64,
    #[serde(with = "ledger::wire::dec")]
    pub debits_pending: u128,
    #[serde(with = "ledger::wire::dec")]
    pub debits_posted: u128,
    #[serde(with = "ledger::wire::dec")]
    pub credits_pending: u128,
    #[serde(with = "ledger::wire::dec")]
    pub credits_posted: u128,
    /// The leaf of that event: [`Client::verified_leaf`] proves it.
    #[serde(with = "ledger::wire::dec")]
    pub leaf: u64,
}

/// The point a balance is asked as of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// Now (the latest change).
    Latest,
    /// After every event at or before this cluster timestamp.
    Timestamp(u64),
    /// Right after the event at this leaf index.
    Leaf(u64),
}

/// Which side of an account's transfers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransferSide {
    #[default]
    Both,
    Debits,
    Credits,
}

fn with_query(path: &str, q: String) -> String {
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

impl Client {
    async fn page<T: DeserializeOwned>(
        &self,
        path: String,
        c: Consistency,
    ) -> Result<Option<Page<T>>, Error> {
        match self
            .clone_without_batcher()
            .get_opt::<WirePage<T>>(&path, c)
            .await?
        {
            Some(p) => p.page().map(Some),
            None => Ok(None),
        }
    }

    /// One page of the accounts `f` matches.
    pub async fn query_accounts(
        &self,
        f: &QueryFilter,
        c: Consistency,
    ) -> Result<Page<Account>, Error> {
        self.page(with_query("/v1/accounts", f.query(true)), c)
            .await?
            .ok_or_else(|| Error::Protocol("GET /v1/accounts answered 404".into()))
    }

    /// One page of the transfers `f` matches, each with where it stands.
    pub async fn query_transfers(
        &self,
        f: &QueryFilter,
        c: Consistency,
    ) -> Result<Page<TransferRead>, Error> {
        self.page(with_query("/v1/transfers", f.query(true)), c)
            .await?
            .ok_or_else(|| Error::Protocol("GET /v1/transfers answered 404".into()))
    }

    /// One page of account `id`'s transfers on `side` that `f` matches; `None` if there is no
    /// such account.
    pub async fn query_account_transfers(
        &self,
        id: u128,
        side: TransferSide,
        f: &QueryFilter,
        c: Consistency,
    ) -> Result<Option<Page<TransferRead>>, Error> {
        let mut q = f.query(true);
        let side = match side {
            TransferSide::Both => None,
            TransferSide::Debits => Some("debits"),
            TransferSide::Credits => Some("credits"),
        };
        if let Some(s) = side {
            q = if q.is_empty() {
                format!("side={s}")
            } else {
                format!("{q}&side={s}")
            };
        }
        self.page(with_query(&format!("/v1/accounts/{id}/transfers"), q), c)
            .await
    }

    /// Account `id`'s balances as of `at` (accounts created with the `history` flag); `None` if
    /// there is no such account or it did not exist yet.
    pub async fn balance_as_of(
        &self,
        id: u128,
        at: AsOf,
        c: Consistency,
    ) -> Result<Option<BalanceAt>, Error> {
        let path = match at {
            AsOf::Latest => format!("/v1/accounts/{id}/balances"),
            AsOf::Timestamp(t) => format!("/v1/accounts/{id}/balances?as_of_timestamp={t}"),
            AsOf::Leaf(l) => format!("/v1/accounts/{id}/balances?as_of_leaf={l}"),
        };
        self.clone_without_batcher().get_opt(&path, c).await
    }

    /// One page of account `id`'s balance history (the range, order, limit and cursor of `f`
    /// apply; its field filters do not).
    pub async fn balance_history(
        &self,
        id: u128,
        f: &QueryFilter,
        c: Consistency,
    ) -> Result<Option<Page<BalanceAt>>, Error> {
        self.page(
            with_query(
                &format!("/v1/accounts/{id}/balance-history"),
                f.query(false),
            ),
            c,
        )
        .await
    }
}
