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
