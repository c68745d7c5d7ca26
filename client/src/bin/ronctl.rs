//! `ronctl`: the ron-ledger command-line tool for people and scripts.
//!
//! Exit codes: 0 success; 1 the request was processed but some events were not `ok`, or a
//! verification failed (`verify`: the bundle does not verify); 2 usage or input error (including
//! an unreadable or malformed bundle or keys file); 3 the server rejected the request; 4 the
//! cluster was unavailable.

use clap::{Args, Parser, Subcommand};
use ledger::{Account, AccountFlags, CreateTransferResult, Transfer, TransferFlags};
use ron_ledger_client::{Client, ClientConfig, ClientTls, Consistency, Error, EventOutcome};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "ronctl/audit.rs"]
mod audit;
#[path = "ronctl/cap.rs"]
mod cap;

#[derive(Parser)]
#[command(
    name = "ronctl",
    version,
    about = "Command-line tool for ron-ledger clusters"
)]
struct Cli {
    /// Node API addresses to start from (comma-separated).
    #[arg(
        long,
        env = "RONCTL_SEEDS",
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
        global = true
    )]
    seeds: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Read this node's applied state instead of a linearizable read.
    #[arg(long, global = true)]
    stale: bool,
    /// Give up on an unreachable cluster after this many seconds (retries included).
    #[arg(long, value_name = "SECS", default_value_t = 15, global = true)]
    retry_for: u64,
    /// File holding the capability sent with every request (writes and admin operations need
    /// one). The token can also come from the RONCTL_TOKEN environment variable.
    #[arg(long, env = "RONCTL_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
    /// The cluster CA (PEM): talk HTTPS to the nodes, trusting only this CA.
    #[arg(long, env = "RONCTL_CA", value_name = "FILE", global = true)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --key and --ca.
    #[arg(long, env = "RONCTL_CERT", value_name = "FILE", global = true)]
    cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs --cert and --ca.
    #[arg(long, env = "RONCTL_KEY", value_name = "FILE", global = true)]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Accounts: create, look up, history.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Transfers: create, import, look up.
    #[command(subcommand)]
    Transfer(TransferCmd),
    /// Cluster status and membership.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Load generator: N transfers, C concurrent requests, over A accounts.
    ///
    /// Example: ronctl bench --transfers 200000 --concurrency 4 --batch 2000 --accounts 10000
    Bench(BenchArgs),
    /// Write leaves [FROM, TO) with their proofs against a signed checkpoint to FILE (not
    /// verified here: check it with `ronctl verify`).
    ///
    /// Example: ronctl export --from 0 --to 1000 bundle.json
    Export {
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
        file: PathBuf,
        /// Indented JSON instead of one line.
        #[arg(long)]
        pretty: bool,
    },
    /// Check an export bundle offline: the checkpoint's signature against KEYS, every event's
    /// inclusion proof against its root. Exit 0 verified, 1 failed, 2 unreadable input.
    ///
    /// Example: ronctl verify bundle.json --keys keys.json --cluster-id prod
    Verify {
        file: PathBuf,
        /// Trusted keys: `{"<kid>": "<hex>"}` or the file `ronctl keys` writes.
        #[arg(long)]
        keys: PathBuf,
        /// The cluster the checkpoint must name (default: the keys file's, if it names one).
        #[arg(long)]
        cluster_id: Option<String>,
    },
    /// Collect every member's checkpoint keys into one keys file.
    ///
    /// Example: ronctl keys --out keys.json
    Keys {
        #[arg(long)]
        out: PathBuf,
    },
    /// Capabilities: mint, attenuate, inspect, revoke, list revoked.
    #[command(subcommand)]
    Cap(cap::CapCmd),
    /// Show the latest signed checkpoint, or (--now) have a node sign one now.
    ///
    /// Example: ronctl checkpoint --now
    Checkpoint {
        #[arg(long)]
        now: bool,
    },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Create an account. Example: ronctl account create --id 1 --ledger 840 --code 1
    Create {
        #[arg(long)]
        id: u128,
        #[arg(long)]
        ledger: u32,
        #[arg(long)]
        code: u16,
        /// Comma-separated flag names, e.g. debits_must_not_exceed_credits.
        #[arg(long, default_value = "")]
        flags: String,
        #[arg(long, default_value_t = 0)]
        user_data_128: u128,
    },
    /// Look up an account. Example: ronctl account get 1
    Get { id: u128 },
    /// An account's transfers. Example: ronctl account history 1 --limit 20
    History {
        id: u128,
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = u64::MAX)]
        to: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum TransferCmd {
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
    /// Look up a transfer. Example: ronctl transfer get 100
    Get { id: u128 },
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

#[derive(Subcommand)]
enum ClusterCmd {
    /// Every node's view. Example: ronctl cluster status
    Status,
    /// Add a non-voting member. Example: ronctl cluster add-learner 4 127.0.0.1:7004 127.0.0.1:7104
    AddLearner {
        node_id: u64,
        api_addr: String,
        peer_addr: String,
    },
    /// Make a learner a voter. Example: ronctl cluster promote 4
    Promote { node_id: u64 },
    /// Remove a member. Example: ronctl cluster remove 4
    Remove { node_id: u64 },
}

#[derive(Args)]
struct BenchArgs {
    /// Transfers to commit.
    #[arg(long, default_value_t = 100_000)]
    transfers: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Transfers per request (≤ 8190).
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Accounts to spread transfers over.
    #[arg(long, default_value_t = 10_000)]
    accounts: u64,
    /// Write the result as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

enum Fail {
    Usage(String),
    Client(Error),
    NotAllOk,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Client(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ronctl: {e}");
            return ExitCode::from(4);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::NotAllOk) => ExitCode::from(1),
        Err(Fail::Usage(m)) => {
            eprintln!("ronctl: {m}");
            ExitCode::from(2)
        }
        Err(Fail::Client(e @ Error::Rejected { .. })) => {
            eprintln!("ronctl: the server rejected the request: {e}");
            ExitCode::from(3)
        }
        Err(Fail::Client(Error::Invalid(m))) => {
            eprintln!("ronctl: {m}");
            ExitCode::from(2)
        }
        Err(Fail::Client(e @ Error::Verification(_))) => {
            eprintln!("ronctl: {e}");
            ExitCode::from(1)
        }
        Err(Fail::Client(e)) => {
            eprintln!("ronctl: cluster unavailable: {e}");
            ExitCode::from(4)
        }
    }
}

fn parse_flags(text: &str, names: &[(&str, u16)], sep: char) -> Result<u16, Fail> {
    let mut bits = 0;
    for name in text.split(sep).map(str::trim).filter(|s| !s.is_empty()) {
        let bit = names
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                Fail::Usage(format!(
                    "unknown flag {name:?}; known: {}",
                    names.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ))
            })?;
        bits |= bit;
    }
    Ok(bits)
}

fn account_flag_names() -> &'static [(&'static str, u16)] {
    <AccountFlags as ledger::wire::FlagSet>::NAMES
}

fn transfer_flag_names() -> &'static [(&'static str, u16)] {
    <TransferFlags as ledger::wire::FlagSet>::NAMES
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Print rows as an aligned table.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!(
        "{}",
        line(headers.iter().map(|h| h.to_uppercase()).collect())
    );
    for r in rows {
        println!("{}", line(r.clone()));
    }
}

fn outcome_rows<R: std::fmt::Display + Copy>(results: &[EventOutcome<R>]) -> Vec<Vec<String>> {
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                i.to_string(),
                r.result.to_string(),
                r.timestamp.map_or("-".into(), |t| t.to_string()),
                r.leaf.map_or("-".into(), |t| t.to_string()),
            ]
        })
        .collect()
}

async fn run(cli: Cli) -> Result<(), Fail> {
    if let Cmd::Verify {
        file,
        keys,
        cluster_id,
    } = &cli.command
    {
        // Offline: no client, no network.
        return audit::verify(file, keys, cluster_id.as_deref(), cli.json);
    }
    if let Cmd::Cap(c) = &cli.command {
        if cap::run_offline(c, cli.json)?.is_some() {
            return Ok(());
        }
    }
    let seeds: Vec<String> = cli
        .seeds
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let mut config = ClientConfig::new(seeds);
    config.tls = match (&cli.ca, &cli.cert, &cli.key) {
        (None, None, None) => None,
        (Some(ca), None, None) => Some(ClientTls::from_files(ca, None).map_err(Error::Invalid)?),
        (Some(ca), Some(cert), Some(key)) => Some(
            ClientTls::from_files(ca, Some((cert.as_path(), key.as_path())))
                .map_err(Error::Invalid)?,
        ),
        _ => {
            return Err(Fail::Usage(
                "--cert and --key go together, and both need --ca".into(),
            ))
        }
    };
    config.retry_total = Duration::from_secs(cli.retry_for.max(1));
    config.request_timeout = config.request_timeout.min(config.retry_total);
    config.capability = match (&cli.token_file, std::env::var("RONCTL_TOKEN")) {
        (Some(path), _) => Some(ron_ledger_client::Capability::new(
            cap::read_token(path)?.as_str(),
        )),
        (None, Ok(token)) if !token.trim().is_empty() => {
            Some(ron_ledger_client::Capability::new(token))
        }
        _ => None,
    };
    let client = Client::new(config)?;
    let c = if cli.stale {
        Consistency::Stale
    } else {
        Consistency::Linearizable
    };
    match cli.command {
        Cmd::Account(AccountCmd::Create {
            id,
            ledger,
            code,
            flags,
            user_data_128,
        }) => {
            let a = Account {
                id,
                ledger,
                code,
                user_data_128,
                flags: AccountFlags(parse_flags(&flags, account_flag_names(), ',')?),
                ..Default::default()
            };
            let r = client.create_accounts(vec![a]).await?;
            report(&cli.json, &r, |x| x.result.is_success())
        }
        Cmd::Account(AccountCmd::Get { id }) => match client.lookup_account(id, c).await? {
            Some(a) if cli.json => {
                print_json(&a);
                Ok(())
            }
            Some(a) => {
                table(
                    &[
                        "id",
                        "ledger",
                        "code",
                        "debits_pending",
                        "debits_posted",
                        "credits_pending",
                        "credits_posted",
                        "flags",
                    ],
                    &[vec![
                        a.id.to_string(),
                        a.ledger.to_string(),
                        a.code.to_string(),
                        a.debits_pending.to_string(),
                        a.debits_posted.to_string(),
                        a.credits_pending.to_string(),
                        a.credits_posted.to_string(),
                        serde_json::to_string(&a.flags).unwrap_or_default(),
                    ]],
                );
                Ok(())
            }
            None => Err(Fail::Client(Error::Rejected {
                status: 404,
                reason: "account_not_found".into(),
                message: format!("no account {id}"),
            })),
        },
        Cmd::Account(AccountCmd::History {
            id,
            from,
            to,
            limit,
        }) => {
            let page = client
                .account_transfers(id, from, to, limit, c)
                .await?
                .ok_or_else(|| {
                    Fail::Client(Error::Rejected {
                        status: 404,
                        reason: "account_not_found".into(),
                        message: format!("no account {id}"),
                    })
                })?;
            if cli.json {
                print_json(
                    &serde_json::json!({"transfers": page.transfers, "next_from": page.next_from}),
                );
            } else {
                table(
                    &["timestamp", "id", "debit", "credit", "amount", "flags"],
                    &page.transfers.iter().map(transfer_row).collect::<Vec<_>>(),
                );
                if let Some(n) = page.next_from {
                    println!("more: --from {n}");
                }
            }
            Ok(())
        }
        Cmd::Transfer(TransferCmd::Create {
            id,
            debit,
            credit,
            amount,
            ledger,
            code,
            flags,
            pending_id,
            timeout,
        }) => {
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
            report(&cli.json, &r, |x| x.result.is_success())
        }
        Cmd::Transfer(TransferCmd::Get { id }) => match client.lookup_transfer(id, c).await? {
            Some(t) if cli.json => {
                print_json(&t);
                Ok(())
            }
            Some(t) => {
                table(
                    &["timestamp", "id", "debit", "credit", "amount", "flags"],
                    &[transfer_row(&t)],
                );
                Ok(())
            }
            None => Err(Fail::Client(Error::Rejected {
                status: 404,
                reason: "transfer_not_found".into(),
                message: format!("no transfer {id}"),
            })),
        },
        Cmd::Transfer(TransferCmd::Import {
            file,
            format,
            batch,
        }) => import(&client, &file, format.as_deref(), batch, cli.json).await,
        Cmd::Cluster(ClusterCmd::Status) => {
            let all = client.cluster_status().await;
            if cli.json {
                let v: Vec<serde_json::Value> = all.iter().map(|(a, s)| match s {
                    Ok(s) => serde_json::json!({"addr": a, "node": s.node_id, "role": s.role, "term": s.term, "leader": s.leader,
                        "last_log_index": s.last_log_index, "committed_index": s.committed_index, "applied_index": s.applied_index, "root": s.root}),
                    Err(e) => serde_json::json!({"addr": a, "error": e.to_string()}),
                }).collect();
                print_json(&v);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|(a, s)| match s {
                        Ok(s) => vec![
                            s.node_id.to_string(),
                            a.clone(),
                            s.role.clone(),
                            s.term.to_string(),
                            opt(s.last_log_index),
                            opt(s.committed_index),
                            opt(s.applied_index),
                            s.root.clone().unwrap_or_default(),
                        ],
                        Err(e) => vec![
                            "?".into(),
                            a.clone(),
                            format!("unreachable ({e})"),
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                        ],
                    })
                    .collect();
                table(
                    &[
                        "node",
                        "addr",
                        "role",
                        "term",
                        "last_log",
                        "committed",
                        "applied",
                        "root",
                    ],
                    &rows,
                );
            }
            if all.iter().all(|(_, s)| s.is_err()) {
                return Err(Fail::Client(Error::Unavailable {
                    attempts: all.len() as u32,
                    last: "no node answered".into(),
                }));
            }
            Ok(())
        }
        Cmd::Cluster(ClusterCmd::AddLearner {
            node_id,
            api_addr,
            peer_addr,
        }) => {
            client.add_learner(node_id, &api_addr, &peer_addr).await?;
            println!("node {node_id} added as a learner");
            Ok(())
        }
        Cmd::Cluster(ClusterCmd::Promote { node_id }) => {
            let mut voters = current_voters(&client).await?;
            voters.push(node_id);
            voters.sort_unstable();
            voters.dedup();
            client.change_membership(&voters).await?;
            println!("voters now {voters:?}");
            Ok(())
        }
        Cmd::Cluster(ClusterCmd::Remove { node_id }) => {
            let voters: Vec<u64> = current_voters(&client)
                .await?
                .into_iter()
                .filter(|v| *v != node_id)
                .collect();
            if voters.is_empty() {
                return Err(Fail::Usage("cannot remove the last voter".into()));
            }
            client.change_membership(&voters).await?;
            println!("voters now {voters:?}");
            Ok(())
        }
        Cmd::Bench(args) => bench(&client, args, cli.json).await,
        Cmd::Export {
            from,
            to,
            file,
            pretty,
        } => audit::export(&client, from, to, &file, pretty, cli.json).await,
        Cmd::Verify { .. } => Err(Fail::Usage("verify runs offline".into())),
        Cmd::Keys { out } => audit::keys(&client, &out, cli.json).await,
        Cmd::Cap(c) => cap::run_online(c, &client, cli.json).await,
        Cmd::Checkpoint { now } => {
            let cp = if now {
                client.make_checkpoint().await?
            } else {
                client.latest_checkpoint().await?
            };
            if cli.json {
                print_json(&cp);
            } else {
                table(
                    &["cluster", "tree_size", "root", "timestamp", "kid"],
                    &[vec![
                        cp.cluster_id.clone(),
                        cp.tree_size.to_string(),
                        cp.root.to_string(),
                        cp.timestamp.to_string(),
                        cp.kid.clone(),
                    ]],
                );
            }
            Ok(())
        }
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

fn transfer_row(t: &Transfer) -> Vec<String> {
    vec![
        t.timestamp.to_string(),
        t.id.to_string(),
        t.debit_account_id.to_string(),
        t.credit_account_id.to_string(),
        t.amount.to_string(),
        serde_json::to_string(&t.flags).unwrap_or_default(),
    ]
}

/// The voters as the current leader sees them (a lagging follower's view could drop members).
async fn current_voters(client: &Client) -> Result<Vec<u64>, Fail> {
    for (_, s) in client.cluster_status().await {
        if let Ok(s) = s {
            if s.role == "leader" {
                return Ok(s.members.iter().filter(|m| m.voter).map(|m| m.id).collect());
            }
        }
    }
    Err(Fail::Client(Error::Unavailable {
        attempts: 1,
        last: "no node answered".into(),
    }))
}

fn report<R: std::fmt::Display + Copy + serde::Serialize>(
    json: &bool,
    r: &[EventOutcome<R>],
    ok: impl Fn(&EventOutcome<R>) -> bool,
) -> Result<(), Fail> {
    if *json {
        let v: Vec<serde_json::Value> = r
            .iter()
            .enumerate()
            .map(|(i, x)| {
                serde_json::json!({"index": i, "result": x.result.to_string(),
            "timestamp": x.timestamp.map(|t| t.to_string()), "leaf": x.leaf.map(|t| t.to_string())})
            })
            .collect();
        print_json(&v);
    } else {
        table(&["index", "result", "timestamp", "leaf"], &outcome_rows(r));
    }
    if r.iter().all(ok) {
        Ok(())
    } else {
        Err(Fail::NotAllOk)
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

fn progress(done: u64, total: u64) {
    let width = 30u64;
    let filled = (done * width).checked_div(total).unwrap_or(width);
    let bar: String = (0..width)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    eprint!("\r[{bar}] {done}/{total}");
    let _ = std::io::stderr().flush();
}

async fn bench(client: &Client, a: BenchArgs, json: bool) -> Result<(), Fail> {
    if a.batch == 0
        || a.batch > ledger::limits::BATCH_EVENTS_MAX
        || a.concurrency == 0
        || a.accounts < 2
    {
        return Err(Fail::Usage(
            "need --batch 1..=8190, --concurrency >= 1, --accounts >= 2".into(),
        ));
    }
    // Unique ids per run, so repeated runs against one cluster never collide.
    // Unique per run (nanoseconds mixed with the process id), kept below 2^62 so ids fit.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let run = (nanos ^ (u128::from(std::process::id()) << 40)) & ((1u128 << 62) - 1);
    let account_base = run << 64;
    let accounts: Vec<Account> = (1..=u128::from(a.accounts))
        .map(|i| Account {
            id: account_base + i,
            ledger: 1,
            code: 1,
            ..Default::default()
        })
        .collect();
    for chunk in accounts.chunks(ledger::limits::BATCH_EVENTS_MAX) {
        let r = client.create_accounts(chunk.to_vec()).await?;
        if r.iter().any(|x| !x.result.is_success()) {
            return Err(Fail::NotAllOk);
        }
    }
    let next = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..a.concurrency {
        let (client, next, committed) = (client.clone(), next.clone(), committed.clone());
        let (total, batch, n_accounts) = (a.transfers, a.batch as u64, u128::from(a.accounts));
        workers.push(tokio::spawn(async move {
            let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)
                .expect("histogram bounds");
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1);
            let mut not_ok = 0u64;
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    break;
                }
                let n = batch.min(total - first);
                let transfers: Vec<Transfer> = (first..first + n)
                    .map(|i| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let d = 1 + u128::from(rng) % n_accounts;
                        let c = 1 + (d + u128::from(rng >> 20) % (n_accounts - 1)) % n_accounts;
                        Transfer {
                            id: account_base + (1 << 40) + u128::from(i),
                            debit_account_id: account_base + d,
                            credit_account_id: account_base + c,
                            amount: 1,
                            ledger: 1,
                            code: 1,
                            ..Default::default()
                        }
                    })
                    .collect();
                let t0 = Instant::now();
                let r = client.create_transfers(transfers).await?;
                let _ = hist.record((t0.elapsed().as_micros() as u64).max(1));
                not_ok += r
                    .iter()
                    .filter(|x| x.result != CreateTransferResult::Ok)
                    .count() as u64;
                committed.fetch_add(n, Ordering::Relaxed);
            }
            Ok::<_, Error>((hist, not_ok))
        }));
    }
    let ticker = {
        let committed = committed.clone();
        let total = a.transfers;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                progress(committed.load(Ordering::Relaxed), total);
            }
        })
    };
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)
        .expect("histogram bounds");
    let mut not_ok = 0;
    for w in workers {
        let (h, bad) = w.await.map_err(|e| Fail::Usage(e.to_string()))??;
        hist.add(h).map_err(|e| Fail::Usage(e.to_string()))?;
        not_ok += bad;
    }
    ticker.abort();
    let secs = start.elapsed().as_secs_f64();
    progress(a.transfers, a.transfers);
    eprintln!();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let result = serde_json::json!({
        "transfers": a.transfers, "concurrency": a.concurrency, "batch": a.batch, "accounts": a.accounts,
        "seconds": secs, "transfers_per_second": a.transfers as f64 / secs, "requests": hist.len(),
        "not_ok": not_ok,
        "request_latency_ms": {"p50": ms(0.50), "p95": ms(0.95), "p99": ms(0.99), "max": hist.max() as f64 / 1000.0},
    });
    if json {
        print_json(&result);
    } else {
        println!("{} transfers in {:.2} s = {:.0} committed transfers/s ({} requests of {}, concurrency {})",
            a.transfers, secs, a.transfers as f64 / secs, hist.len(), a.batch, a.concurrency);
        println!(
            "request latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
            ms(0.50),
            ms(0.95),
            ms(0.99),
            hist.max() as f64 / 1000.0
        );
        if not_ok > 0 {
            println!("{not_ok} transfers were not ok");
        }
    }
    if let Some(path) = a.out {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&result).unwrap_or_default(),
        )
        .map_err(|e| Fail::Usage(format!("{}: {e}", path.display())))?;
    }
    if not_ok > 0 {
        Err(Fail::NotAllOk)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
