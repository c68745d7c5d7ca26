//! `ronctl backup`: take an online backup of one node into a new directory (the SDK's
//! `backup::take_backup`) and say what it covers.

use crate::common::{print_json, table, Fail, Options};
use std::path::Path;

pub(crate) async fn run(opts: &Options, addr: &str, out: &Path, json: bool) -> Result<(), Fail> {
    let started = std::time::Instant::now();
    let config = opts.config()?;
    // Ctrl-C or SIGTERM drops the backup: its partial directory is removed, the connection
    // closes, and the node stops its export (its one backup slot is free again).
    let taken = tokio::select! {
        taken = ron_ledger_client::backup::take_backup(&config, addr, out) => Ok(taken),
        signal = interrupted() => Err(signal),
    };
    // The select has ended: the dropped backup has removed its partial directory.
    let taken = match taken {
        Ok(taken) => taken,
        Err(signal) => {
            eprintln!("ronctl: backup interrupted; nothing was kept");
            std::process::exit(128 + signal);
        }
    };
    let taken = taken?;
    let m = &taken.manifest;
    if json {
        print_json(&serde_json::json!({
            "dir": taken.dir.display().to_string(),
            "manifest": m,
            "took_ms": started.elapsed().as_millis() as u64,
        }));
    } else {
        table(
            &["dir", "cluster", "index", "tree_size", "root", "bytes"],
            &[vec![
                taken.dir.display().to_string(),
                m["cluster_id"].as_str().unwrap_or("").to_string(),
                m["last_log_id"]["index"].to_string(),
                m["tree_size"].to_string(),
                m["root"].as_str().unwrap_or("").to_string(),
                taken.stream_bytes.to_string(),
            ]],
        );
    }
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT, 2) or SIGTERM (15) with the signal's number; never if neither
/// can be watched.
async fn interrupted() -> i32 {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if r.is_err() {
                std::future::pending::<()>().await;
            }
            2
        }
        () = term => 15,
    }
}
