//! `sim`: run simulated seeds. `--seed S` replays one run; otherwise `--runs N` random seeds (or
//! run until `--hours H` have passed), each in a fresh process of this binary, printing each
//! failing seed with the command that replays it.

use clap::Parser;
use sim::{Bug, Scenario};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "ron-ledger deterministic fault simulation")]
struct Args {
    /// Replay exactly this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Random seeds to run (ignored with --seed).
    #[arg(long, default_value_t = 20)]
    runs: u64,
    /// Keep running random seeds for this many hours (overrides --runs).
    #[arg(long)]
    hours: Option<f64>,
    /// Cluster size (default: 5 for seeds ≡ 3 mod 4, else 3).
    #[arg(long)]
    nodes: Option<usize>,
    /// Concurrent clients.
    #[arg(long)]
    clients: Option<usize>,
    /// Simulated seconds of client traffic.
    #[arg(long)]
    traffic_secs: Option<u64>,
    /// Change the membership 3 -> 5 -> 3 under load (default: for seeds ≡ 1 mod 4).
    #[arg(long)]
    membership: Option<bool>,
    /// `raft.snapshot_every_entries` (default: 40 for seeds divisible by 3, else 150).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// No fault injection.
    #[arg(long)]
    no_faults: bool,
    /// Every connection over TLS 1.3 with mutual TLS (a dev PKI generated for the run).
    #[arg(long)]
    tls: bool,
    /// Plant a bug: `ack-before-sync` or `double-apply-after-install`.
    #[arg(long)]
    plant: Option<String>,
    /// A third into the traffic, corrupt the leader's state; the run checks that it stops
    /// itself (safe mode, `root_mismatch`) and the others carry on.
    #[arg(long)]
    corrupt_leader: bool,
    /// Log the nodes (a tracing filter, e.g. `info` or `debug,openraft=info`).
    #[arg(long)]
    log: Option<String>,
}

fn scenario(args: &Args, seed: u64) -> anyhow::Result<Scenario> {
    let mut s = Scenario::for_seed(seed);
    if let Some(n) = args.nodes {
        s.nodes = n;
    }
    if let Some(c) = args.clients {
        s.clients = c;
    }
    if let Some(t) = args.traffic_secs {
        s.traffic = Duration::from_secs(t);
    }
    s.membership = args.membership.unwrap_or(s.membership && s.nodes == 3);
    if let Some(n) = args.snapshot_every {
        anyhow::ensure!(n >= 8, "--snapshot-every must be 8 or more");
        s.snapshot_every = n;
    }
    anyhow::ensure!(
        !s.membership || s.nodes == 3,
        "--membership true needs a 3-node cluster (it grows to 5 and shrinks back to 3)"
    );
    s.faults = !args.no_faults;
    s.tls = args.tls;
    s.corrupt_leader = args.corrupt_leader;
    s.bug = match args.plant.as_deref() {
        None => None,
        Some(name) => match Bug::from_name(name) {
            Some(bug) => Some(bug),
            None => anyhow::bail!(
                "unknown bug {name:?} (known: {})",
                Bug::ALL.map(Bug::name).join(", ")
            ),
        },
    };
    Ok(s)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(filter) = &args.log {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    if let Some(seed) = args.seed {
        let s = scenario(&args, seed)?;
        return match sim::run(&s) {
            Ok(r) => {
                println!("{r:#?}");
                Ok(())
            }
            Err(f) => {
                println!("{f}");
                std::process::exit(1);
            }
        };
    }
    let started = Instant::now();
    let deadline = args
        .hours
        .map(|h| started + Duration::from_secs_f64(h * 3600.0));
    let mut failures = 0u64;
    let mut run = 0u64;
    let mut entropy = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    loop {
        match deadline {
            Some(d) if Instant::now() >= d => break,
            None if run >= args.runs => break,
            _ => {}
        }
        entropy ^= entropy << 13;
        entropy ^= entropy >> 7;
        entropy ^= entropy << 17;
        let s = scenario(&args, entropy)?;
        let t = Instant::now();
        // Each run in a fresh process, as its replay command runs it: a run's trace depends on
        // the tokio task ids spawned before it in the process (docs/TESTING.md).
        let mut child = std::process::Command::new(std::env::current_exe()?);
        child.args(s.args());
        if let Some(filter) = &args.log {
            child.args(["--log", filter]);
        }
        let out = child.stderr(std::process::Stdio::inherit()).output()?;
        let report = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            println!(
                "ok   seed {} nodes {} acked {} applied {} terms {} ({:.1}s)",
                s.seed,
                s.nodes,
                field(&report, "acked"),
                field(&report, "applied"),
                field(&report, "terms"),
                t.elapsed().as_secs_f64()
            );
        } else if out.status.code() == Some(1) && report.contains(" failed: ") {
            failures += 1;
            println!("FAIL {}", report.trim_end());
        } else {
            failures += 1;
            println!(
                "FAIL seed {}: sim exited with {}\n{}\n  replay: {}",
                s.seed,
                out.status,
                report.trim_end(),
                s.replay_command()
            );
        }
        run += 1;
    }
    println!("{run} runs, {failures} failed");
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// The value of `name: value,` in a printed report.
fn field<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(": "))
        .map_or("?", |v| v.trim_end_matches(','))
}
