//! The event consumer: every committed event in commit order from a position, each one proven
//! before it is handed over.
//!
//! It long-polls `GET /v1/events?follow=false` from its position. The stream's first line is the
//! frontier of the leaves before the position; the consumer pushes each event's leaf hash onto
//! it, so it computes every root itself and checks the root each event line claims. To prove a
//! batch it accepts a signed checkpoint (under the same rules as every verified read: signature,
//! cluster, no replay, consistency with the last accepted one) and checks one consistency proof
//! from its own root after the batch to the checkpoint's: that proves the frontier it started
//! from and every leaf of the batch at once, whatever node served the stream. Events past the
//! newest checkpoint wait for the next one (nodes sign on read, at most every 100 ms by
//! default).
//!
//! The position is the next leaf index to deliver: persist it with what the events did, and a
//! consumer restarted from it continues with no gap and no duplicate (at-least-once delivery
//! when the position is saved after processing, exactly-once when saved atomically with it).

use crate::client::Client;
use crate::error::Error;
use crate::retry::Req;
use crate::verify::VerifyError;
use ledger::canonical::{decode_leaf, LeafEvent};
use ledger::merkle::{leaf_hash, Frontier, Hash};
use ledger::proof::ConsistencyProof;
use ledger::wire;
use serde::Deserialize;
use std::time::Duration;

/// Most events one poll asks for.
pub const POLL_EVENTS_MAX: u64 = 4_096;

/// One committed event, decoded from its leaf preimage (nothing the server said beside it is
/// trusted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    /// Leaf index: the position after this event is `index + 1`.
    pub index: u64,
    /// The event and its result.
    pub event: LeafEvent,
    /// The leaf preimage.
    pub data: Vec<u8>,
    /// The root of the tree whose last leaf is this event.
    pub root: Hash,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Start {
        #[serde(with = "wire::dec")]
        from: u64,
        #[serde(with = "wire::hashes")]
        frontier: Vec<Hash>,
    },
    Event {
        #[serde(with = "wire::dec")]
        index: u64,
        #[serde(with = "wire::hash")]
        root: Hash,
        #[serde(with = "wire::hex")]
        data: Vec<u8>,
    },
    Heartbeat {},
}

/// A consumer of committed events from a position.
pub struct EventConsumer {
    client: Client,
    /// The next leaf index to deliver.
    position: u64,
    /// Whether events are proven before they are delivered.
    verify: bool,
    /// The frontier after `pending` (after `position` when nothing is pending); `None` until the
    /// first poll.
    frontier: Option<Frontier>,
    /// Received, checked against the frontier, not yet proven.
    pending: Vec<StreamEvent>,
}

impl Client {
    /// A consumer from leaf `position` that proves every event against a signed checkpoint
    /// before delivering it (needs trusted checkpoint keys in the config).
    pub fn events(&self, position: u64) -> Result<EventConsumer, Error> {
        if self.shared.config.trusted_keys.is_none() {
            return Err(Error::Invalid(
                "a verified event consumer needs trusted checkpoint keys in the config".into(),
            ));
        }
        Ok(self.consumer(position, true))
    }

    /// A consumer from leaf `position` that delivers events as the node serves them, unproven
    /// (still checked for order and against the roots it computes).
    pub fn events_unverified(&self, position: u64) -> EventConsumer {
        self.consumer(position, false)
    }

    fn consumer(&self, position: u64, verify: bool) -> EventConsumer {
        EventConsumer {
            client: self.clone(),
            position,
            verify,
            frontier: None,
            pending: Vec::new(),
        }
    }
}

fn mismatch(index: u64, reason: impl Into<String>) -> Error {
    VerifyError::StreamMismatch {
        index,
        reason: reason.into(),
    }
    .into()
}

impl EventConsumer {
    /// The next leaf index this consumer will deliver.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next events, at most `max` (at least 1), proven if this consumer verifies. Waits a
    /// while for new events when there are none; an empty answer means none arrived (or none is
    /// provable yet): call again.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<StreamEvent>, Error> {
        let max = max.max(1);
        if self.pending.len() < max {
            self.poll(max - self.pending.len()).await?;
        }
        let ready = if self.verify {
            self.provable(max).await?
        } else {
            self.pending.len().min(max)
        };
        let out: Vec<StreamEvent> = self.pending.drain(..ready).collect();
        if let Some(last) = out.last() {
            self.position = last.index + 1;
        }
        Ok(out)
    }

    /// Fetch up to `want` events after the pending ones.
    async fn poll(&mut self, want: usize) -> Result<(), Error> {
        let from = self.position + self.pending.len() as u64;
        let limit = (want as u64).min(POLL_EVENTS_MAX);
        // A long poll well inside the request timeout.
        let wait = (self.client.shared.config.request_timeout / 3).min(Duration::from_secs(5));
        let path = format!(
            "/v1/events?from={from}&limit={limit}&follow=false&wait_ms={}",
            wait.as_millis()
        );
        let req = Req {
            not_found_ok: false,
            ..Req::get(path.clone())
        };
        let (body, _, _) = self.client.clone_without_batcher().send_at(&req).await?;
        let body = body.ok_or_else(|| Error::Protocol(format!("empty answer to {path}")))?;
        let mut next = from;
        for (n, text) in body.split(|b| *b == b'\n').enumerate() {
            if text.is_empty() {
                continue;
            }
            let line: Line = serde_json::from_slice(text)
                .map_err(|e| Error::Protocol(format!("{path}: line {}: {e}", n + 1)))?;
            match line {
                Line::Start {
                    from: start,
                    frontier,
                } => {
                    if start != from {
                        return Err(mismatch(from, format!("the stream starts at {start}")));
                    }
                    let offered = Frontier {
                        size: start,
                        nodes: frontier,
                    };
                    match &self.frontier {
                        // Ours was computed from proven (or checked) leaves: it must agree.
                        Some(ours) if *ours != offered => {
                            return Err(mismatch(from, "the stream's frontier is not ours"))
                        }
                        Some(_) => {}
                        None if !offered.is_consistent() => {
                            return Err(mismatch(from, "malformed frontier"))
                        }
                        None => self.frontier = Some(offered),
                    }
                }
                Line::Event { index, root, data } => {
                    let frontier = self
                        .frontier
                        .as_mut()
                        .ok_or_else(|| mismatch(index, "an event before the start line"))?;
                    if index != next {
                        return Err(mismatch(next, format!("got leaf {index} instead")));
                    }
                    if index == u64::MAX {
                        // The tree after it would hold more leaves than a u64 counts.
                        return Err(mismatch(index, "no tree holds this leaf"));
                    }
                    let event = decode_leaf(&data).map_err(VerifyError::LeafUndecodable)?;
                    let mut after = frontier.clone();
                    after.push(leaf_hash(&data));
                    if after.root() != root {
                        return Err(mismatch(
                            index,
                            "the root it claims is not its leaves' root",
                        ));
                    }
                    *frontier = after;
                    self.pending.push(StreamEvent {
                        index,
                        event,
                        data,
                        root,
                    });
                    next += 1;
                }
                Line::Heartbeat {} => {}
            }
        }
        Ok(())
    }

    /// How many of the first `max` pending events a signed checkpoint proves now.
    async fn provable(&mut self, max: usize) -> Result<usize, Error> {
        let candidates = self.pending.len().min(max);
        if candidates == 0 {
            return Ok(0);
        }
        let (cp, addr) = self.client.advance_checkpoint().await?;
        // The last candidate the checkpoint covers.
        let covered = self.pending[..candidates]
            .iter()
            .rposition(|e| e.index < cp.tree_size);
        let Some(last) = covered else {
            return Ok(0);
        };
        let event = &self.pending[last];
        let size = event.index + 1;
        if size == cp.tree_size {
            if event.root != cp.root {
                return Err(mismatch(
                    event.index,
                    "the leaves do not give the checkpoint's root",
                ));
            }
        } else {
            let path = format!("/v1/proofs/consistency?from={size}&to={}", cp.tree_size);
            let (proof, _) = self
                .client
                .clone_without_batcher()
                .get_json::<ConsistencyProof>(&path, Some(addr))
                .await?;
            crate::verify::check_consistency_shape(&proof, size, cp.tree_size)?;
            proof
                .verify(&event.root, &cp.root)
                .map_err(|e| mismatch(event.index, format!("not in the signed tree: {e}")))?;
        }
        Ok(last + 1)
    }
}
