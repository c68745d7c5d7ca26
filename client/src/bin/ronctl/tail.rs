//! `ronctl tail`: print committed events in commit order from a position, proven against signed
//! checkpoints with `--keys` (unproven otherwise, and said so), as a table or one JSON object per
//! line.

use crate::common::{table, Fail, Options};
use ledger::canonical::LeafEvent;
use ledger::{CreateAccountResult, CreateTransferResult};
use ron_ledger_client::checkpoints::KeysFile;
use ron_ledger_client::{Client, StreamEvent};
use std::path::Path;

/// What `ronctl tail` was asked.
pub(crate) struct TailArgs<'a> {
    pub(crate) from: u64,
    pub(crate) count: Option<u64>,
    pub(crate) keys: Option<&'a Path>,
}

fn result_name<T: Copy>(all: &[T], code: u16, name: fn(T) -> &'static str) -> &'static str {
    all.get(usize::from(code)).map_or("unknown", |r| name(*r))
}

fn row(e: &StreamEvent) -> Vec<String> {
    let index = e.index.to_string();
    match &e.event {
        LeafEvent::Account { account, result } => vec![
            index,
            "account".into(),
            account.id.to_string(),
            result_name(
                CreateAccountResult::ALL,
                *result,
                CreateAccountResult::as_str,
            )
            .into(),
            format!("ledger {} code {}", account.ledger, account.code),
        ],
        LeafEvent::Transfer { transfer, result } => vec![
            index,
            "transfer".into(),
            transfer.id.to_string(),
            result_name(
                CreateTransferResult::ALL,
                *result,
                CreateTransferResult::as_str,
            )
            .into(),
            format!(
                "{} -> {} amount {}",
                transfer.debit_account_id, transfer.credit_account_id, transfer.amount
            ),
        ],
        LeafEvent::Expiry {
            pending_id,
            timestamp,
        } => vec![
            index,
            "expiry".into(),
            pending_id.to_string(),
            "expired".into(),
            format!("at {timestamp}"),
        ],
    }
}

fn json_of(e: &StreamEvent, verified: bool) -> serde_json::Value {
    let (kind, body) = match &e.event {
        LeafEvent::Account { account, result } => (
            "account",
            serde_json::json!({"account": account,
                "result": result_name(CreateAccountResult::ALL, *result, CreateAccountResult::as_str)}),
        ),
        LeafEvent::Transfer { transfer, result } => (
            "transfer",
            serde_json::json!({"transfer": transfer,
                "result": result_name(CreateTransferResult::ALL, *result, CreateTransferResult::as_str)}),
        ),
        LeafEvent::Expiry {
            pending_id,
            timestamp,
        } => (
            "expiry",
            serde_json::json!({"pending_id": pending_id.to_string(),
                "timestamp": timestamp.to_string()}),
        ),
    };
    let mut v = serde_json::json!({
        "index": e.index.to_string(),
        "kind": kind,
        "root": e.root.to_hex(),
        "verified": verified,
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), body) {
        obj.extend(extra);
    }
    v
}

pub(crate) async fn run(opts: &Options, args: TailArgs<'_>, json: bool) -> Result<(), Fail> {
    let verified = args.keys.is_some();
    let mut consumer = match args.keys {
        Some(keys) => {
            let text = std::fs::read_to_string(keys)
                .map_err(|e| Fail::Usage(format!("read keys {}: {e}", keys.display())))?;
            let keys = KeysFile::parse(&text)
                .map_err(|e| Fail::Usage(format!("keys {}: {e}", keys.display())))?;
            let config = opts.config()?.with_trusted_keys(keys.keys, keys.cluster_id);
            Client::new(config)?.events(args.from)?
        }
        None => {
            eprintln!("ronctl tail: no --keys, so events are shown unproven");
            opts.connect()?.events_unverified(args.from)
        }
    };
    let mut left = args.count;
    while left != Some(0) {
        let max = left.map_or(1024, |l| l.min(1024) as usize);
        let batch = consumer.next_batch(max).await?;
        if json {
            for e in &batch {
                out!("{}", json_of(e, verified));
            }
        } else if !batch.is_empty() {
            table(
                &["INDEX", "KIND", "ID", "RESULT", "DETAIL"],
                &batch.iter().map(row).collect::<Vec<_>>(),
            );
        }
        if let Some(l) = left.as_mut() {
            *l -= (batch.len() as u64).min(*l);
        }
    }
    if !json {
        out!("next: --from {}", consumer.position());
    }
    Ok(())
}
