//! `sim`: run simulated seeds. `--seed S` replays one run; otherwise `--runs N` random seeds (or
//! run until `--hours H` have passed), printing each failing seed with the command that replays
//! it.

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
    /// No fault injection.
    #[arg(long)]
    no_faults: bool,
    /// Plant a bug: `ack-before-sync`.
    #[arg(long)]
    plant: Option<String>,
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
    s.faults = !args.no_faults;
    s.bug = match args.plant.as_deref() {
        None => None,
        Some("ack-before-sync") => Some(Bug::AckBeforeSync),
        Some(other) => anyhow::bail!("unknown bug {other:?} (known: ack-before-sync)"),
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
        match sim::run(&s) {
            Ok(r) => println!(
                "ok   seed {} nodes {} acked {} applied {} terms {} faults {} ({:.1}s)",
                s.seed,
                s.nodes,
                r.acked,
                r.applied,
                r.terms,
                r.faults.len() / 2,
                t.elapsed().as_secs_f64()
            ),
            Err(f) => {
                failures += 1;
                println!("FAIL {f}");
            }
        }
        run += 1;
    }
    println!("{run} runs, {failures} failed");
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
