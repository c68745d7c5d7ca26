//! `ronctl backup`: take an online backup of one node into a new directory (the SDK's
//! `backup::take_backup`) and say what it covers.

use crate::common::{print_json, table, Fail, Options};
use std::path::Path;

pub(crate) async fn run(opts: &Options, addr: &str, out: &Path, json: bool) -> Result<(), Fail> {
    let started = std::time::Instant::now();
    let config = opts.config()?;
    let taken = ron_ledger_client::backup::take_backup(&config, addr, out).await?;
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
