//! Writes: [`Client::create_accounts`] and [`Client::create_transfers`] send one operation as
//! the compact binary body (bounds checked first), retried to the leader, and return one outcome
//! per event; [`Client::submit_transfer`] goes through the auto-batcher instead, and
//! [`Client::reverse_transfers`] carries a second capability (dual control).

use crate::caps::Capability;
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
        self.write_approved(op, path, None).await
    }

    /// [`Unbatched::write`] with a second capability in `X-Ron-Approval` (dual control).
    pub(crate) async fn write_approved<R>(
        &self,
        op: Operation,
        path: &'static str,
        approval: Option<&Capability>,
    ) -> Result<Vec<EventOutcome<R>>, Error>
    where
        R: DeserializeOwned + Copy + PartialEq + ExistsIsOk,
    {
        op.check_bounds()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let req = Req {
            approval: approval.map(Capability::header),
            ..Req::post(
                path,
                "application/x-ron-ledger",
                codec::encode(Kind::Operation, &op),
            )
        };
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

    /// Reverse posted transfers (governance, under dual control): the client's capability and
    /// `approval` must both allow `transfers.reverse` and belong to two different holders.
    /// Each event is a `reversal` transfer naming the original in `pending_id`. Not batched with
    /// other calls; one outcome per event, in order.
    pub async fn reverse_transfers(
        &self,
        reversals: Vec<Transfer>,
        approval: &Capability,
    ) -> Result<Vec<EventOutcome<CreateTransferResult>>, Error> {
        if let Some(t) = reversals.iter().find(|t| !t.requires_governance()) {
            return Err(Error::Invalid(format!(
                "transfer {} is not a reversal (flag `reversal`)",
                t.id
            )));
        }
        self.clone_without_batcher()
            .write_approved(
                Operation::CreateTransfers(reversals),
                "/v1/transfers",
                Some(approval),
            )
            .await
    }

    /// Create one transfer through the auto-batcher: concurrent calls share requests of up to
    /// 8,190 transfers.
    pub async fn submit_transfer(
        &self,
        transfer: Transfer,
    ) -> Result<EventOutcome<CreateTransferResult>, Error> {
        // A reversal needs its own approval; in a shared request it would be refused and take
        // the other callers' transfers with it.
        if transfer.requires_governance() {
            return Err(Error::Invalid(format!(
                "transfer {} is a reversal: send it with reverse_transfers and an approval",
                transfer.id
            )));
        }
        self.batcher.submit(transfer).await
    }
}
