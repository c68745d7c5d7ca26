//! Auto-batching: the transfers of [`Client::submit_transfer`](crate::Client::submit_transfer)
//! callers wait in a bounded queue; one task per client coalesces them into batches of up to
//! 8,190, keeps a few requests in flight, and hands each caller its own outcome (or the batch's
//! error). The task ends when the last clone of the client is dropped.

use crate::error::Error;
use crate::outcome::EventOutcome;
use crate::shared::Unbatched;
use ledger::{CreateTransferResult, Operation, Transfer};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Pending = (
    Transfer,
    oneshot::Sender<Result<EventOutcome<CreateTransferResult>, Error>>,
);

/// Requests the auto-batcher keeps in flight; more callers wait in its queue and join bigger
/// batches.
const BATCHES_IN_FLIGHT_MAX: usize = 4;

/// The auto-batcher's queue.
#[derive(Clone)]
pub(crate) struct Batcher(mpsc::Sender<Pending>);

impl Batcher {
    /// Start the batcher task, sending through `client`; up to `queue_max` transfers wait.
    pub(crate) fn start(client: Unbatched, queue_max: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue_max.max(1));
        tokio::spawn(batcher(client, rx));
        Self(tx)
    }

    /// Queue one transfer (waiting while the queue is full) and wait for its outcome.
    pub(crate) async fn submit(
        &self,
        transfer: Transfer,
    ) -> Result<EventOutcome<CreateTransferResult>, Error> {
        if transfer.flags.has(ledger::TransferFlags::LINKED) {
            return Err(Error::Invalid(
                "linked transfers belong together in one create_transfers call, not the auto-batcher".into(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        self.0
            .send((transfer, tx))
            .await
            .map_err(|_| Error::Invalid("the client's batcher has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Invalid("the client's batcher has stopped".into()))?
    }
}

/// Coalesce queued transfers into batches of up to 8,190.
async fn batcher(client: Unbatched, mut rx: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    loop {
        // Wait for a free slot first, so that callers accumulate into the next batch meanwhile.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut group = vec![first];
        while group.len() < ledger::limits::BATCH_EVENTS_MAX {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let (transfers, replies): (Vec<Transfer>, Vec<_>) = group.into_iter().unzip();
        let c = client.clone();
        tokio::spawn(async move {
            let result = c
                .write::<CreateTransferResult>(
                    Operation::CreateTransfers(transfers),
                    "/v1/transfers",
                )
                .await;
            drop(permit);
            match result {
                Ok(results) if results.len() == replies.len() => {
                    for (reply, r) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(r));
                    }
                }
                Ok(results) => {
                    let e = Error::Protocol(format!(
                        "{} results for {} transfers",
                        results.len(),
                        replies.len()
                    ));
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}
