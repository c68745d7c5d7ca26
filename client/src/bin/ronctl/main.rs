//! `ronctl`: the ron-ledger command-line tool for people and scripts.
//!
//! Exit codes: 0 success; 1 the request was processed but some events were not `ok`, or a
//! verification failed (`verify`: the bundle does not verify); 2 usage or input error (including
//! an unreadable or malformed bundle or keys file); 3 the server rejected the request; 4 the
//! cluster was unavailable.
//!
//! This file parses the command line and dispatches; each top-level command is a module
//! (`account`, `transfer`, `cluster`, `bench`, `audit` for export/verify/keys, `cap`,
//! `checkpoint`), and `common` holds what they share: the global options and the client they
//! describe, the failure type and its exit code, and the output helpers.
//!
//! Output goes through [`out!`]: when the reader of stdout goes away (`ronctl tail | head`),
//! ronctl stops quietly with exit 141 (128 + SIGPIPE) instead of panicking.

/// `println!` for ronctl's results: a closed stdout (the reader of a pipe went away) ends
/// ronctl quietly with exit 141; any other write failure ends it with exit 4.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::common::stdout_failed(e)
        }
    }};
}

use clap::{Parser, Subcommand};
use common::{Fail, Options};
use std::path::PathBuf;
use std::process::ExitCode;

mod account;
mod audit;
mod backup;
mod bench;
mod cap;
mod checkpoint;
mod cluster;
mod common;
mod query;
mod tail;
mod transfer;

#[derive(Parser)]
#[command(
    name = "ronctl",
    version,
    about = "Command-line tool for ron-ledger clusters"
)]
struct Cli {
    #[command(flatten)]
    opts: Options,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Accounts: create, look up, history.
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Transfers: create, import, look up.
    #[command(subcommand)]
    Transfer(transfer::TransferCmd),
    /// Cluster status and membership.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// Queries: accounts and transfers by their fields, balances as of a point.
    #[command(subcommand)]
    Query(query::QueryCmd),
    /// Print committed events in commit order from --from (leaf index), following new ones;
    /// with --keys each batch is proven against a signed checkpoint before it is printed.
    ///
    /// Example: ronctl tail --from 0 --keys keys.json --json
    Tail {
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Stop after this many events (default: follow until interrupted).
        #[arg(long)]
        count: Option<u64>,
        /// Trusted checkpoint keys (`ronctl keys` output).
        #[arg(long, value_name = "FILE")]
        keys: Option<PathBuf>,
    },
    /// Load generator: N transfers, C concurrent requests, over A accounts.
    ///
    /// Example: ronctl bench --transfers 200000 --concurrency 4 --batch 2000 --accounts 10000
    Bench(bench::BenchArgs),
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
    /// Back up one node (admin): a consistent copy of its state at one applied index, taken
    /// while it keeps serving, written to a new directory (manifest.json + state.rlsnap, every
    /// file fsynced). Restore it with `ron-ledger restore` (docs/OPERATIONS.md).
    ///
    /// Example: ronctl backup --node 10.0.0.1:7001 --out /backups/ledger-2026-12-06
    Backup {
        /// The directory to create (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// API address of the node to back up (default: the first of --seeds).
        #[arg(long, value_name = "NODE_ADDR")]
        node: Option<String>,
    },
    /// Capabilities: mint, attenuate, inspect, revoke, list revoked.
    #[command(subcommand)]
    Cap(cap::CapCmd),
    /// Show the latest signed checkpoint, or (--now) have a node sign one now. With --keys,
    /// verify it first: signed by a trusted key and, with --state, consistent with the last
    /// checkpoint accepted before (a fork or a replay exits 1, naming it).
    ///
    /// Example: ronctl checkpoint --keys keys.json --state ~/.local/state/ronctl/checkpoints.json
    ///
    /// With --rotate NODE_ADDR (admin): that node retires its checkpoint key and signs with a new
    /// one; run `ronctl keys` afterwards so verifiers trust the new key (the retired one stays
    /// published, trusted for the tree sizes it signed).
    Checkpoint {
        #[arg(long)]
        now: bool,
        /// Rotate the checkpoint key of the node at this API address (host:port).
        #[arg(long, value_name = "NODE_ADDR", conflicts_with_all = ["now", "keys"])]
        rotate: Option<String>,
        /// Trusted checkpoint keys (`ronctl keys` output): verify before showing.
        #[arg(long, value_name = "FILE")]
        keys: Option<PathBuf>,
        /// With --keys: the state file remembering the last accepted checkpoint per cluster
        /// (created 0600; every later checkpoint must extend it).
        #[arg(
            long,
            value_name = "FILE",
            env = "RONCTL_CHECKPOINT_STATE",
            requires = "keys"
        )]
        state: Option<PathBuf>,
    },
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
        Err(fail) => fail.exit(),
    }
}

async fn run(cli: Cli) -> Result<(), Fail> {
    let json = cli.opts.json;
    if let Cmd::Verify {
        file,
        keys,
        cluster_id,
    } = &cli.command
    {
        // Offline: no client, no network.
        return audit::verify(file, keys, cluster_id.as_deref(), json);
    }
    if let Cmd::Cap(c) = &cli.command {
        if cap::run_offline(c, json)?.is_some() {
            return Ok(());
        }
    }
    if let Cmd::Checkpoint {
        now,
        keys: Some(keys),
        state,
        ..
    } = &cli.command
    {
        return checkpoint::verified(&cli.opts, *now, keys, state.as_deref(), json).await;
    }
    if let Cmd::Tail { from, count, keys } = &cli.command {
        let args = tail::TailArgs {
            from: *from,
            count: *count,
            keys: keys.as_deref(),
        };
        return tail::run(&cli.opts, args, json).await;
    }
    if let Cmd::Backup { out, node } = &cli.command {
        let addr = node
            .as_deref()
            .map(common::bare_addr)
            .unwrap_or(cli.opts.first_seed());
        return backup::run(&cli.opts, addr, out, json).await;
    }
    let client = cli.opts.connect()?;
    let c = cli.opts.consistency();
    match cli.command {
        Cmd::Account(cmd) => account::run(cmd, &client, c, json).await,
        Cmd::Transfer(cmd) => transfer::run(cmd, &client, c, json).await,
        Cmd::Cluster(cmd) => cluster::run(cmd, &client, &cli.opts, json).await,
        Cmd::Query(cmd) => query::run(cmd, &client, c, json).await,
        Cmd::Tail { .. } => Err(Fail::Usage("tail connects by itself".into())),
        Cmd::Bench(args) => bench::run(&client, args, json).await,
        Cmd::Export {
            from,
            to,
            file,
            pretty,
        } => audit::export(&client, from, to, &file, pretty, json).await,
        Cmd::Verify { .. } => Err(Fail::Usage("verify runs offline".into())),
        Cmd::Backup { .. } => Err(Fail::Usage("backup connects by itself".into())),
        Cmd::Keys { out } => audit::keys(&client, &out, json).await,
        Cmd::Cap(c) => cap::run_online(c, &client, json).await,
        Cmd::Checkpoint {
            rotate: Some(addr), ..
        } => checkpoint::rotate(&client, common::bare_addr(&addr), json).await,
        Cmd::Checkpoint { now, .. } => checkpoint::run(&client, now, json).await,
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
