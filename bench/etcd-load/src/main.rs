//! `etcd-load --endpoints A,B,C --puts N --concurrency C [--value-bytes 256]`: N puts of distinct
//! keys with values of `value-bytes` bytes from C workers, each with one request in flight
//! (every worker shares the client's connections, as `ronctl bench`'s workers share theirs).
//! Prints one JSON object: puts, seconds, puts/s and per-put latency percentiles in ms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

struct Args {
    endpoints: Vec<String>,
    puts: u64,
    concurrency: u64,
    value_bytes: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        endpoints: vec!["127.0.0.1:2379".into()],
        puts: 10_000,
        concurrency: 1,
        value_bytes: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--endpoints" => a.endpoints = value.split(',').map(str::to_string).collect(),
            "--puts" => a.puts = number()?,
            "--concurrency" => a.concurrency = number()?,
            "--value-bytes" => a.value_bytes = number()? as usize,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.puts == 0 || a.concurrency == 0 {
        return Err("--puts and --concurrency must be at least 1".into());
    }
    Ok(a)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("etcd-load: {e}");
            std::process::exit(2);
        }
    };
    let client = match etcd_client::Client::connect(&a.endpoints, None).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("etcd-load: cannot connect to {:?}: {e}", a.endpoints);
            std::process::exit(1);
        }
    };
    let run = std::process::id();
    let value = vec![b'v'; a.value_bytes];
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.concurrency {
        let (mut kv, next, value, total) = (client.kv_client(), next.clone(), value.clone(), a.puts);
        workers.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, etcd_client::Error>(micros);
                }
                let sent = Instant::now();
                kv.put(format!("bench/{run}/{i:012}"), value.clone(), None).await?;
                micros.push(sent.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut all = Vec::with_capacity(a.puts as usize);
    for w in workers {
        match w.await {
            Ok(Ok(m)) => all.extend(m),
            Ok(Err(e)) => {
                eprintln!("etcd-load: put failed: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("etcd-load: worker: {e}");
                std::process::exit(1);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{{\"puts\":{},\"seconds\":{:.3},\"puts_per_sec\":{:.1},\"concurrency\":{},\"value_bytes\":{},\"p50_ms\":{:.3},\"p95_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        all.len(),
        secs,
        all.len() as f64 / secs,
        a.concurrency,
        a.value_bytes,
        percentile(&all, 0.50),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
        percentile(&all, 1.0)
    );
}
