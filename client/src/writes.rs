//! Writes: [`Client::create_accounts`] and [`Client::create_transfers`] send one operation as
//! the compact binary body (bounds checked first), retried to the leader, and return one outcome
//! per event; [`Client::submit_transfer`] goes through the auto-batcher instead.

use crate::client::Client;
use crate::error::Error;
use crate::outcome::{parse_results, EventOutcome, ExistsIsOk};
use crate::retry::Req;
use crate::shared::Unbatched;
use ledger::codec::{self, Kind};
use ledger::{Account, CreateAccountResult, CreateTransferResult, Operation, Transfer};
use serde::de::DeserializeOwned;

impl Unbatched {
    /// Send `op` to `path` and read its outcomes.
    pub(crate) async fn write<R>(
        &self,
        op: Operation,
        path: &'static str,
    ) -> Result<Vec<EventOutcome<R>>, Error>
    where
        R: DeserializeOwned + Copy + PartialEq + ExistsIsOk,
    {
        op.check_bounds()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let req = Req::post(
            path,
            "application/x-ron-ledger",
            codec::encode(Kind::Operation, &op),
        );
        let (body, resent) = self.send(&req).await?;
        let body = body.ok_or_else(|| Error::Protocol("empty write response".into()))?;
        parse_results::<R>(&body, resent)
    }
}

impl Client {
    /// Create accounts; one outcome per account, in order.
    pub async fn create_accounts(
        &self,
        accounts: Vec<Account>,
    ) -> Result<Vec<EventOutcome<CreateAccountResult>>, Error> {
        self.clone_without_batcher()
            .write(Operation::CreateAccounts(accounts), "/v1/accounts")
            .await
    }

    /// Create transfers; one outcome per transfer, in order.
    pub async fn create_transfers(
        &self,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<EventOutcome<CreateTransferResult>>, Error> {
        self.clone_without_batcher()
            .write(Operation::CreateTransfers(transfers), "/v1/transfers")
            .await
    }

    /// Create one transfer through the auto-batcher: concurrent calls share requests of up to
    /// 8,190 transfers.
    pub async fn submit_transfer(
        &self,
        transfer: Transfer,
    ) -> Result<EventOutcome<CreateTransferResult>, Error> {
        self.batcher.submit(transfer).await
    }
}
