//! `ronctl transfer …`: create one transfer, look one up, reverse one under dual control, import
//! many from CSV or JSON lines.

use crate::common::{
    not_found, parse_flags, print_json, progress, read_token, report, table, transfer_row, Fail,
    TRANSFER_HEADERS,
};
use clap::Subcommand;
use ledger::{Transfer, TransferFlags};
use ron_ledger_client::{Client, Consistency};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum TransferCmd {
    /// Create one transfer.
    /// Example: ronctl transfer create --id 100 --debit 1 --credit 2 --amount 25 --ledger 840 --code 1
    Create {
        #[arg(long)]
        id: u128,
        #[arg(long, default_value_t = 0)]
        debit: u128,
        #[arg(long, default_value_t = 0)]
        credit: u128,
        #[arg(long, default_value_t = 0)]
        amount: u128,
        #[arg(long, default_value_t = 0)]
        ledger: u32,
        #[arg(long, default_value_t = 0)]
        code: u16,
        /// Comma-separated flag names, e.g. pending or post_pending_transfer.
        #[arg(long, default_value = "")]
        flags: String,
        #[arg(long, default_value_t = 0)]
        pending_id: u128,
        #[arg(long, default_value_t = 0)]
        timeout: u32,
    },
    /// Look up a transfer (its fields and state). Example: ronctl transfer get 100
    Get { id: u128 },
    /// Reverse a posted transfer (governance, dual control): the same amount back between the
    /// same accounts, at most once. --token-file and --approval-token-file must be two
    /// `transfers.reverse` capabilities of two different holders (`ronctl cap mint --holder`).
    ///
    /// Example: ronctl --token-file alice.token transfer reverse --id 900 --original 100 --approval-token-file bob.token
    Reverse {
        /// Id of the reversal event (a new transfer id).
        #[arg(long)]
        id: u128,
        /// The posted transfer to reverse.
        #[arg(long)]
        original: u128,
        /// The second approval: a file holding another holder's `transfers.reverse` token
        /// (or - for stdin).
        #[arg(long)]
        approval_token_file: PathBuf,
    },
    /// Import transfers from CSV (header row of field names; flags separated by '|') or JSON
    /// lines (one transfer per line, the API's JSON form).
    /// Example: ronctl transfer import payouts.csv
    Import {
        file: PathBuf,
        /// csv or jsonl (default: from the file extension).
        #[arg(long)]
        format: Option<String>,
        /// Transfers per request (≤ 8190).
        #[arg(long, default_value_t = 8190)]
        batch: usize,
    },
}

fn transfer_flag_names() -> &'static [(&'static str, u16)] {
    <TransferFlags as ledger::wire::FlagSet>::NAMES
}

pub(crate) async fn run(
    cmd: TransferCmd,
    client: &Client,
    c: Consistency,
    json: bool,
) -> Result<(), Fail> {
    match cmd {
        TransferCmd::Create {
            id,
            debit,
            credit,
            amount,
            ledger,
            code,
            flags,
            pending_id,
            timeout,
        } => {
            let t = Transfer {
                id,
                debit_account_id: debit,
                credit_account_id: credit,
                amount,
                ledger,
                code,
                pending_id,
                timeout,
                flags: TransferFlags(parse_flags(&flags, transfer_flag_names(), ',')?),
                ..Default::default()
            };
            let r = client.create_transfers(vec![t]).await?;
            report(json, &r, |x| x.result.is_success())
        }
        TransferCmd::Get { id } => match client.lookup_transfer(id, c).await? {
            Some(t) if json => {
                print_json(&t);
                Ok(())
            }
            Some(t) => {
                table(&TRANSFER_HEADERS, &[transfer_row(&t)]);
                Ok(())
            }
            None => Err(not_found("transfer", id)),
        },
        TransferCmd::Reverse {
            id,
            original,
            approval_token_file,
        } => {
            let approval =
                ron_ledger_client::Capability::new(read_token(&approval_token_file)?.as_str());
            let t = Transfer {
                id,
                pending_id: original,
                flags: TransferFlags(TransferFlags::REVERSAL),
                ..Default::default()
            };
            let r = client.reverse_transfers(vec![t], &approval).await?;
            report(json, &r, |x| x.result.is_success())
        }
        TransferCmd::Import {
            file,
            format,
            batch,
        } => import(client, &file, format.as_deref(), batch, json).await,
    }
}

fn read_transfers(file: &PathBuf, format: Option<&str>) -> Result<Vec<Transfer>, Fail> {
    let format = format.map(str::to_string).unwrap_or_else(|| {
        file.extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_lowercase()
    });
    let open =
        || std::fs::File::open(file).map_err(|e| Fail::Usage(format!("{}: {e}", file.display())));
    match format.as_str() {
        "jsonl" | "ndjson" | "json" => {
            let mut out = Vec::new();
            for (n, line) in std::io::BufReader::new(open()?).lines().enumerate() {
                let line = line.map_err(|e| Fail::Usage(e.to_string()))?;
                if line.trim().is_empty() {
                    continue;
                }
                out.push(
                    serde_json::from_str(&line)
                        .map_err(|e| Fail::Usage(format!("line {}: {e}", n + 1)))?,
                );
            }
            Ok(out)
        }
        "csv" => {
            let mut out = Vec::new();
            let mut rdr = csv::Reader::from_reader(open()?);
            let headers = rdr
                .headers()
                .map_err(|e| Fail::Usage(e.to_string()))?
                .clone();
            for (n, rec) in rdr.records().enumerate() {
                let rec = rec.map_err(|e| Fail::Usage(format!("row {}: {e}", n + 1)))?;
                let mut obj = serde_json::Map::new();
                for (h, v) in headers.iter().zip(rec.iter()) {
                    let v = v.trim();
                    let value = match h {
                        "flags" => serde_json::Value::Array(
                            v.split('|')
                                .filter(|s| !s.is_empty())
                                .map(|s| serde_json::Value::String(s.into()))
                                .collect(),
                        ),
                        "ledger" | "code" | "timeout" | "user_data_32" => {
                            serde_json::Value::Number(
                                v.parse::<u64>()
                                    .map_err(|_| {
                                        Fail::Usage(format!("row {}: {h} must be a number", n + 1))
                                    })?
                                    .into(),
                            )
                        }
                        _ => serde_json::Value::String(v.into()),
                    };
                    obj.insert(h.to_string(), value);
                }
                out.push(
                    serde_json::from_value(serde_json::Value::Object(obj))
                        .map_err(|e| Fail::Usage(format!("row {}: {e}", n + 1)))?,
                );
            }
            Ok(out)
        }
        other => Err(Fail::Usage(format!(
            "unknown format {other:?}: use --format csv or jsonl"
        ))),
    }
}

async fn import(
    client: &Client,
    file: &PathBuf,
    format: Option<&str>,
    batch: usize,
    json: bool,
) -> Result<(), Fail> {
    if batch == 0 || batch > ledger::limits::BATCH_EVENTS_MAX {
        return Err(Fail::Usage("--batch must be 1..=8190".into()));
    }
    let transfers = read_transfers(file, format)?;
    let total = transfers.len();
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    let mut done = 0usize;
    for chunk in transfers.chunks(batch) {
        let r = client.create_transfers(chunk.to_vec()).await?;
        for x in &r {
            *by_code.entry(x.result.to_string()).or_default() += 1;
        }
        done += chunk.len();
        progress(done as u64, total as u64);
    }
    eprintln!();
    if json {
        print_json(&serde_json::json!({"total": total, "results": by_code}));
    } else {
        table(
            &["result", "count"],
            &by_code
                .iter()
                .map(|(k, v)| vec![k.clone(), v.to_string()])
                .collect::<Vec<_>>(),
        );
    }
    let failed = by_code.iter().any(|(k, _)| k != "ok" && k != "exists");
    if failed {
        Err(Fail::NotAllOk)
    } else {
        Ok(())
    }
}
