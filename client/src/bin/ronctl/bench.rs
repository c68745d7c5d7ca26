//! `ronctl bench`: a load generator. It creates its own accounts (ids unique per run), then
//! commits N transfers over them from C concurrent workers in batches, and reports throughput
//! and request latency percentiles. Closed loop by default (each worker sends its next request
//! when the last is answered); with `--rate`, open loop: request k is due at
//! `start + k × batch / rate` and its latency counts from then, so time spent waiting for a free
//! worker counts too (a slow answer cannot hide the requests it held back).

use crate::common::{print_json, progress, write_file, Fail};
use clap::Args;
use ledger::{Account, CreateTransferResult, Transfer};
use ron_ledger_client::{Client, Error};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub(crate) struct BenchArgs {
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
    /// Offered load in transfers per second (open loop; --concurrency caps requests in
    /// flight). Without it, each worker sends as fast as it is answered.
    #[arg(long)]
    rate: Option<f64>,
    /// Write the result as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A latency histogram of microseconds, 1 µs to 120 s, 3 significant digits.
fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

pub(crate) async fn run(client: &Client, a: BenchArgs, json: bool) -> Result<(), Fail> {
    if a.batch == 0
        || a.batch > ledger::limits::BATCH_EVENTS_MAX
        || a.concurrency == 0
        || a.accounts < 2
    {
        return Err(Fail::Usage(
            "need --batch 1..=8190, --concurrency >= 1, --accounts >= 2".into(),
        ));
    }
    // With --rate, the interval between the due times of consecutive requests. The whole
    // schedule must fit in 10,000,000 s, so no due time can overflow.
    let interval = match a.rate {
        None => None,
        Some(r) => {
            let fits = r.is_finite() && r > 0.0 && a.transfers as f64 / r <= 1e7;
            match Duration::try_from_secs_f64(a.batch as f64 / r) {
                Ok(every) if fits => Some(every),
                _ => {
                    return Err(Fail::Usage(
                        "--rate must be a positive number of transfers/s, with --transfers / \
                         --rate at most 10,000,000 s"
                            .into(),
                    ))
                }
            }
        }
    };
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
            let mut hist = histogram();
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
                let t0 = match interval {
                    Some(every) => {
                        let due = start + every.mul_f64((first / batch) as f64);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
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
    let mut hist = histogram();
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
        "not_ok": not_ok, "offered_rate": a.rate,
        "request_latency_ms": {"p50": ms(0.50), "p95": ms(0.95), "p99": ms(0.99), "max": hist.max() as f64 / 1000.0},
    });
    if json {
        print_json(&result);
    } else {
        out!("{} transfers in {:.2} s = {:.0} committed transfers/s ({} requests of {}, concurrency {})",
            a.transfers, secs, a.transfers as f64 / secs, hist.len(), a.batch, a.concurrency);
        if let Some(rate) = a.rate {
            out!("offered {rate:.0} transfers/s (open loop; latency counted from each request's due time)");
        }
        out!(
            "request latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
            ms(0.50),
            ms(0.95),
            ms(0.99),
            hist.max() as f64 / 1000.0
        );
        if not_ok > 0 {
            out!("{not_ok} transfers were not ok");
        }
    }
    if let Some(path) = a.out {
        write_file(
            &path,
            &serde_json::to_vec_pretty(&result).unwrap_or_default(),
        )?;
    }
    if not_ok > 0 {
        Err(Fail::NotAllOk)
    } else {
        Ok(())
    }
}
