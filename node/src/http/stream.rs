//! `GET /v1/events?from=N[&limit=K][&follow=false[&wait_ms=W]]`: every committed event in commit
//! order — accounts, transfers and expiries, rejected events too, each with its result, leaf
//! index and the root of the tree it completes — from leaf `N`, as NDJSON on one long-lived
//! response, served by any node from its applied state.
//!
//! The first line (`start`) carries the frontier of the first `N` leaves: pushing each event's
//! leaf hash onto it yields each event's `root`, so a consumer holding one signed checkpoint and
//! one consistency proof checks every event of a batch at once (the SDK's consumer does).
//! With `follow=false` the response ends once it has sent what was applied when it started
//! (waiting up to `wait_ms` for the first event if there was none): a long poll.
//!
//! One producer task per consumer reads leaves in chunks off the async threads and sends lines
//! into a bounded channel ([`BUFFER_LINES`]); a consumer that reads slowly fills it and the
//! producer waits, so a stalled consumer costs one buffer and never slows commits. Once caught up
//! it waits for the applied tree to grow, and writes a heartbeat line every [`HEARTBEAT`] while
//! nothing happens (so proxies keep the connection, and the consumer learns the tree size). The
//! leaves are kept for the life of the ledger, so every position up to the tree size can be
//! resumed from: the consumer's position is the next leaf index it has not processed.

use crate::error::ApiError;
use crate::http::decode::parse_u64;
use crate::http::respond::err;
use crate::node::Node;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ledger::canonical::{decode_leaf, LeafEvent};
use ledger::merkle::{leaf_hash, Frontier, Hash};
use ledger::results::{CreateAccountResult, CreateTransferResult};
use ledger::wire;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines buffered per consumer before the producer waits.
pub const BUFFER_LINES: usize = 1024;
/// Leaves read per blocking read.
const CHUNK: u64 = 512;
/// A heartbeat line after this long with nothing to send.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

pub fn routes() -> Router<Arc<Node>> {
    Router::new().route("/v1/events", get(events))
}

/// The longest `wait_ms` a long poll may ask for.
pub const WAIT_MS_MAX: u64 = 30_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    from: Option<String>,
    limit: Option<String>,
    follow: Option<String>,
    wait_ms: Option<String>,
}

/// One line of the stream.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    /// Always first: where the stream starts, and the frontier of the leaves before it.
    Start {
        #[serde(with = "wire::dec")]
        from: u64,
        /// The perfect-subtree roots of the first `from` leaves, largest first.
        #[serde(with = "wire::hashes")]
        frontier: Vec<Hash>,
    },
    /// A committed event.
    Event {
        #[serde(with = "wire::dec")]
        index: u64,
        /// The root of the tree whose last leaf is this event (its first `index + 1` leaves).
        #[serde(with = "wire::hash")]
        root: Hash,
        #[serde(flatten)]
        event: EventBody,
        /// The leaf preimage (`docs/PROOFS.md`): hash it to check an inclusion proof.
        #[serde(with = "wire::hex")]
        data: Vec<u8>,
    },
    /// Nothing new: the applied tree has `tree_size` leaves and this root.
    Heartbeat {
        #[serde(with = "wire::dec")]
        tree_size: u64,
        #[serde(with = "wire::hash")]
        root: Hash,
    },
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum EventBody {
    Account {
        result: &'static str,
        account: ledger::Account,
    },
    Transfer {
        result: &'static str,
        transfer: ledger::Transfer,
    },
    Expiry {
        #[serde(with = "wire::dec")]
        pending_id: u128,
        #[serde(with = "wire::dec")]
        timestamp: u64,
    },
}

fn result_name<T: Copy>(all: &[T], code: u16, name: fn(T) -> &'static str) -> &'static str {
    all.get(usize::from(code)).map_or("unknown", |r| name(*r))
}

fn event_body(event: LeafEvent) -> EventBody {
    match event {
        LeafEvent::Account { account, result } => EventBody::Account {
            result: result_name(
                CreateAccountResult::ALL,
                result,
                CreateAccountResult::as_str,
            ),
            account,
        },
        LeafEvent::Transfer { transfer, result } => EventBody::Transfer {
            result: result_name(
                CreateTransferResult::ALL,
                result,
                CreateTransferResult::as_str,
            ),
            transfer,
        },
        LeafEvent::Expiry {
            pending_id,
            timestamp,
        } => EventBody::Expiry {
            pending_id,
            timestamp,
        },
    }
}

fn json_line(line: &Line) -> Bytes {
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

async fn events(
    State(node): State<Arc<Node>>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return err(&node, ApiError::bad_request("invalid_query", e.body_text())),
    };
    let (from, limit, wait) = match (
        parse_u64(q.from.as_deref(), "from"),
        parse_u64(q.limit.as_deref(), "limit"),
        parse_u64(q.wait_ms.as_deref(), "wait_ms"),
    ) {
        (Ok(f), Ok(l), Ok(w)) => (f.unwrap_or(0), l, w),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return err(&node, e),
    };
    if limit == Some(0) {
        return err(
            &node,
            ApiError::bad_request("invalid_query", "limit must be at least 1"),
        );
    }
    let follow = match q.follow.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return err(
                &node,
                ApiError::bad_request(
                    "invalid_query",
                    format!("follow must be true or false, not {other:?}"),
                ),
            )
        }
    };
    let wait = match wait {
        Some(_) if follow => {
            return err(
                &node,
                ApiError::bad_request("invalid_query", "wait_ms applies only with follow=false"),
            )
        }
        Some(w) if w > WAIT_MS_MAX => {
            return err(
                &node,
                ApiError::bad_request(
                    "invalid_query",
                    format!("wait_ms must be at most {WAIT_MS_MAX}"),
                ),
            )
        }
        w => Duration::from_millis(w.unwrap_or(0)),
    };
    let size = match tree_size(&node).await {
        Ok(s) => s.0,
        Err(e) => return err(&node, e),
    };
    if from > size {
        return err(
            &node,
            ApiError::bad_request(
                "invalid_range",
                format!("from {from} is beyond this node's applied tree ({size} leaves)"),
            ),
        );
    }
    let slot = match node.heavy_reads.stream() {
        Ok(s) => s,
        Err(e) => return err(&node, e),
    };
    let frontier = match start_frontier(&node, from).await {
        Ok(f) => f,
        Err(e) => return err(&node, e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(BUFFER_LINES);
    let first = json_line(&Line::Start {
        from,
        frontier: frontier.nodes.clone(),
    });
    // The channel is empty: the start line always fits.
    let _ = tx.try_send(first);
    let mode = if follow {
        Mode::Follow
    } else {
        Mode::Until {
            end: size,
            wait: (size == from).then_some(wait),
        }
    };
    tokio::spawn(produce(node, frontier, limit, mode, tx));
    // The body holds the stream's slot: it is free again when the last line has been handed on
    // or the consumer went away — not when the producer is done, which can be long before a
    // slow consumer has read the buffered lines.
    let body = futures_util::stream::unfold((rx, slot), |(mut rx, slot)| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, Infallible>(line), (rx, slot)))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The applied tree's size and root.
async fn tree_size(node: &Arc<Node>) -> Result<(u64, Hash), ApiError> {
    let worker = node.clone();
    tokio::task::spawn_blocking(move || worker.state.ledger_meta().map(|m| (m.tree.size, m.root)))
        .await
        .map_err(|e| ApiError::internal(format!("read task: {e}")))?
        .map_err(ApiError::storage)
}

async fn start_frontier(node: &Arc<Node>, from: u64) -> Result<Frontier, ApiError> {
    let worker = node.clone();
    tokio::task::spawn_blocking(move || worker.state.frontier_at(from))
        .await
        .map_err(|e| ApiError::internal(format!("read task: {e}")))?
        .map_err(ApiError::storage)
}

/// The leaves from `frontier.size` to `end` as lines, and the frontier after them.
async fn read_lines(
    node: &Arc<Node>,
    mut frontier: Frontier,
    end: u64,
) -> Result<(Vec<Bytes>, Frontier), ApiError> {
    let worker = node.clone();
    tokio::task::spawn_blocking(move || {
        let lines = (frontier.size..end)
            .map(|index| {
                let data = worker
                    .state
                    .leaf_data(index)
                    .map_err(ApiError::storage)?
                    .ok_or_else(|| ApiError::internal(format!("leaf {index} is missing")))?;
                let event = decode_leaf(&data).map_err(|e| {
                    ApiError::internal(format!("leaf {index} does not decode: {e}"))
                })?;
                frontier.push(leaf_hash(&data));
                Ok(json_line(&Line::Event {
                    index,
                    root: frontier.root(),
                    event: event_body(event),
                    data,
                }))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok((lines, frontier))
    })
    .await
    .map_err(|e| ApiError::internal(format!("read task: {e}")))?
}

/// How long a response lasts.
#[derive(Clone, Copy)]
enum Mode {
    /// Until the consumer goes away (or `limit`).
    Follow,
    /// Until leaf `end` is sent; when `wait` is set (nothing was there at the start), first
    /// wait up to that long for the tree to grow, and then send what it grew to.
    Until { end: u64, wait: Option<Duration> },
}

/// Send leaves from `frontier.size` on until `limit` is reached, the mode's end, or the consumer
/// goes away. A read error ends the stream (the consumer reconnects from its position; a
/// checksum failure has put the node in safe mode through the same path as any read).
async fn produce(
    node: Arc<Node>,
    mut frontier: Frontier,
    limit: Option<u64>,
    mut mode: Mode,
    tx: mpsc::Sender<Bytes>,
) {
    let end_at = limit.map(|l| frontier.size.saturating_add(l));
    let mut applied = node.raft.metrics();
    // Raft's metrics change often (not only when the tree grows): the heartbeat is due a fixed
    // time after the last line sent, however often they wake the producer.
    let mut last_sent = tokio::time::Instant::now();
    loop {
        if let Mode::Until {
            end,
            wait: Some(wait),
        } = mode
        {
            let grew = tokio::time::timeout(wait, async {
                loop {
                    match tree_size(&node).await {
                        Ok((s, _)) if s > end => return Ok(s),
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                    if applied.changed().await.is_err() {
                        return Ok(end);
                    }
                }
            })
            .await;
            mode = match grew {
                Ok(Ok(s)) => Mode::Until { end: s, wait: None },
                Ok(Err(e)) => return stop(&node, e),
                Err(_) => return,
            };
        }
        let next = frontier.size;
        if end_at.is_some_and(|e| next >= e) {
            return;
        }
        let (size, root) = match tree_size(&node).await {
            Ok(s) => s,
            Err(e) => return stop(&node, e),
        };
        let size = match mode {
            Mode::Until { end, .. } => size.min(end),
            Mode::Follow => size,
        };
        if next < size {
            let mut end = size.min(next + CHUNK);
            if let Some(e) = end_at {
                end = end.min(e);
            }
            let lines = match read_lines(&node, frontier, end).await {
                Ok((l, f)) => {
                    frontier = f;
                    l
                }
                Err(e) => return stop(&node, e),
            };
            for line in lines {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            last_sent = tokio::time::Instant::now();
            continue;
        }
        if let Mode::Until { .. } = mode {
            return;
        }
        tokio::select! {
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(last_sent + HEARTBEAT) => {
                let beat = Line::Heartbeat { tree_size: size, root };
                if tx.send(json_line(&beat)).await.is_err() {
                    return;
                }
                last_sent = tokio::time::Instant::now();
            }
            () = tx.closed() => return,
        }
    }
}

fn stop(node: &Node, e: ApiError) {
    tracing::warn!(node = node.id, reason = %e.reason, message = %e.message, "event stream ended by a read error");
    if let Some(reason) = e.fault {
        node.enter_safe_mode(crate::safe_mode::Fault {
            reason: reason.into(),
            message: e.message.clone(),
        });
    }
}
